// SPDX-License-Identifier: GPL-2.0-or-later
/* MSI-X capability, table and PBA: see msix.h for the eventfd scheme. */
#include "msix.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "irq.h"
#include "le.h"
#include "log.h"
#include "state.h"
#include "util.h"

#define PCI_CAP_ID_MSIX 0x11
#define CTRL_FMASK      0x4000
#define CTRL_ENABLE     0x8000
#define VEC_MASKED      1

int msix_init_vectors(struct msix *m, struct pci_device *dev, struct irq_router *irq, unsigned nr)
{
    if (nr == 0 || nr > MSIX_MAX_VECTORS)
        return -EINVAL;
    memset(m, 0, sizeof(*m));
    m->dev = dev;
    m->irq = irq;
    m->nr = nr;
    pthread_mutex_init(&m->lock, NULL);
    m->v = calloc(nr, sizeof(*m->v));
    if (!m->v)
        return -ENOMEM;
    for (unsigned i = 0; i < nr; i++)
        m->v[i].efd = -1;
    for (unsigned i = 0; i < nr; i++) {
        m->v[i].gsi = UINT32_MAX;
        m->v[i].entry[12] = VEC_MASKED; /* every vector starts masked */
        m->v[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->v[i].efd < 0) {
            int err = -errno;
            log_err("%s: cannot create an MSI-X eventfd: %s", dev->name, strerror(errno));
            msix_destroy(m);
            return err;
        }
    }
    return 0;
}

int msix_init(struct msix *m, struct pci_device *dev, struct irq_router *irq, unsigned nr,
              unsigned bar)
{
    if (bar >= PCI_NR_BARS)
        return -EINVAL;
    int ret = msix_init_vectors(m, dev, irq, nr);
    if (ret)
        return ret;

    /* Message control (table size - 1), table offset/BIR, PBA offset/BIR. */
    uint8_t body[10] = {0};
    body[0] = (nr - 1) & 0xff;
    body[1] = (nr - 1) >> 8;
    uint32_t table = MSIX_TABLE_OFF | bar, pba = MSIX_PBA_OFF | bar;
    memcpy(body + 2, &table, 4);
    memcpy(body + 6, &pba, 4);
    ret = pci_add_capability(dev, PCI_CAP_ID_MSIX, body, sizeof(body), &m->cap);
    if (ret) {
        msix_destroy(m);
        return ret;
    }
    uint8_t mask = (CTRL_ENABLE | CTRL_FMASK) >> 8;
    pci_set_wmask(dev, m->cap + 3, &mask, 1);

    dev->bar_def[bar] = (struct pci_bar_def){
        .size = MSIX_BAR_SIZE,
        .handler = msix_bar_access,
        .opaque = m,
    };
    return 0;
}

void msix_destroy(struct msix *m)
{
    if (!m->v)
        return;
    for (unsigned i = 0; i < m->nr; i++) {
        struct msix_vector *v = &m->v[i];
        if (v->live && m->irq)
            irq_irqfd_deassign(m->irq, v->efd, v->gsi);
        if (v->efd >= 0)
            close(v->efd);
    }
    free(m->v);
    m->v = NULL;
    pthread_mutex_destroy(&m->lock);
}

static void msix_error(struct msix *m, const char *what, int err)
{
    if (m->logged_error)
        return;
    m->logged_error = true;
    log_err("%s: MSI-X %s failed: %s; its interrupts are lost", m->dev->name, what, strerror(-err));
}

/* Attach or detach vector i's irqfd to match the masks. Caller holds m->lock. */
static void refresh(struct msix *m, unsigned i)
{
    struct msix_vector *v = &m->v[i];
    bool want = m->enabled && !m->fmask && !(v->entry[12] & VEC_MASKED);
    uint64_t addr = le32_get(v->entry) | (uint64_t)le32_get(v->entry + 4) << 32;
    uint32_t data = le32_get(v->entry + 8);
    int ret;

    if (!want) {
        if (v->live && m->irq)
            irq_irqfd_deassign(m->irq, v->efd, v->gsi);
        v->live = false;
        return;
    }
    if (!m->irq) {
        v->live = true;
        return;
    }
    if (v->gsi == UINT32_MAX && (ret = irq_msi_alloc(m->irq, &v->gsi)) < 0) {
        v->gsi = UINT32_MAX;
        return msix_error(m, "GSI allocation", ret);
    }
    /* Linux rewrites address/data of live vectors (affinity): follow it. */
    if (!v->live || addr != v->route_addr || data != v->route_data) {
        if ((ret = irq_msi_update(m->irq, v->gsi, addr, data)) < 0)
            return msix_error(m, "route update", ret);
        v->route_addr = addr;
        v->route_data = data;
    }
    if (!v->live) {
        /* KVM injects at once if the eventfd is already signalled (pending). */
        if ((ret = irq_irqfd_assign(m->irq, v->efd, v->gsi)) < 0)
            return msix_error(m, "irqfd", ret);
        v->live = true;
    }
}

void msix_config_written(struct msix *m, uint32_t off, uint32_t len)
{
    if (!(off < m->cap + 4u && m->cap + 2u < off + len))
        return;
    uint16_t ctrl = m->dev->cfg[m->cap + 2] | m->dev->cfg[m->cap + 3] << 8;
    pthread_mutex_lock(&m->lock);
    __atomic_store_n(&m->enabled, (ctrl & CTRL_ENABLE) != 0, __ATOMIC_RELAXED);
    m->fmask = ctrl & CTRL_FMASK;
    for (unsigned i = 0; i < m->nr; i++)
        refresh(m, i);
    pthread_mutex_unlock(&m->lock);
}

void msix_reset(struct msix *m)
{
    pthread_mutex_lock(&m->lock);
    m->enabled = false;
    m->fmask = false;
    for (unsigned i = 0; i < m->nr; i++) {
        struct msix_vector *v = &m->v[i];
        uint64_t n;
        if (v->live && m->irq)
            irq_irqfd_deassign(m->irq, v->efd, v->gsi);
        v->live = false;
        memset(v->entry, 0, sizeof(v->entry));
        v->entry[12] = VEC_MASKED;
        if (read(v->efd, &n, sizeof(n)) < 0) /* drop a pending interrupt */
            n = 0;
    }
    m->dev->cfg[m->cap + 3] &= (uint8_t) ~((CTRL_ENABLE | CTRL_FMASK) >> 8);
    pthread_mutex_unlock(&m->lock);
}

bool msix_enabled(struct msix *m)
{
    return __atomic_load_n(&m->enabled, __ATOMIC_RELAXED);
}

bool msix_notify(struct msix *m, unsigned vec)
{
    if (vec >= m->nr || !msix_enabled(m))
        return false;
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: an interrupt is pending anyway. */
    if (write(m->v[vec].efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return false;
    return true;
}

int msix_vector_fd(struct msix *m, unsigned vec)
{
    return vec < m->nr ? m->v[vec].efd : -1;
}

/* A masked vector is pending when its eventfd was written since. */
static bool pending(const struct msix_vector *v)
{
    if (v->live)
        return false;
    struct pollfd p = {.fd = v->efd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

void msix_bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct msix *m = opaque;
    uint64_t table_end = MSIX_TABLE_OFF + 16 * (uint64_t)m->nr;

    pthread_mutex_lock(&m->lock);
    if (off + len <= table_end) { /* the table starts at offset 0 */
        unsigned first = (unsigned)(off / 16), last = (unsigned)((off + len - 1) / 16);
        for (uint32_t i = 0; i < len; i++) {
            uint8_t *b = &m->v[(off + i) / 16].entry[(off + i) % 16];
            /* Of the vector control word only the mask bit is writable. */
            bool ctrl = (off + i) % 16 >= 12;
            if (!is_write)
                data[i] = *b;
            else if (!ctrl)
                *b = data[i];
            else if ((off + i) % 16 == 12)
                *b = data[i] & VEC_MASKED;
        }
        if (is_write) {
            for (unsigned v = first; v <= last; v++)
                refresh(m, v);
        }
    } else if (!is_write && off >= MSIX_PBA_OFF && off + len <= MSIX_BAR_SIZE) {
        for (uint32_t i = 0; i < len; i++) {
            uint8_t byte = 0;
            for (unsigned bit = 0; bit < 8; bit++) {
                uint64_t vec = (off - MSIX_PBA_OFF + i) * 8 + bit;
                if (vec < m->nr && pending(&m->v[vec]))
                    byte |= 1u << bit;
            }
            data[i] = byte;
        }
    } else if (!is_write) {
        memset(data, 0, len);
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- save / restore ---- */

int msix_save(struct msix *m, struct state_out *out)
{
    pthread_mutex_lock(&m->lock);
    state_put_u16(out, (uint16_t)m->nr);
    state_put_bool(out, m->enabled);
    state_put_bool(out, m->fmask);
    for (unsigned i = 0; i < m->nr; i++)
        state_put_bytes(out, m->v[i].entry, sizeof(m->v[i].entry));
    for (unsigned i = 0; i < m->nr; i += 8) {
        uint8_t byte = 0;
        for (unsigned b = 0; b < 8 && i + b < m->nr; b++)
            if (pending(&m->v[i + b]))
                byte |= (uint8_t)(1u << b);
        state_put_u8(out, byte);
    }
    pthread_mutex_unlock(&m->lock);
    return out->failed ? -1 : 0;
}

int msix_load(struct msix *m, struct state_in *in)
{
    uint8_t entry[MSIX_MAX_VECTORS][16], pba[MSIX_MAX_VECTORS / 8] = {0};

    unsigned nr = state_get_u16(in);
    bool enabled = state_get_bool(in), fmask = state_get_bool(in);
    if (!state_in_ok(in))
        return -1;
    if (nr != m->nr)
        return state_in_fail(in, "%u MSI-X vectors saved, the device has %u", nr, m->nr);
    for (unsigned i = 0; i < nr; i++)
        state_get_bytes(in, entry[i], 16);
    state_get_bytes(in, pba, (nr + 7) / 8);
    if (!state_in_ok(in))
        return -1;
    if (enabled != msix_enabled(m) || fmask != m->fmask)
        return state_in_fail(in, "the MSI-X enable and mask bits disagree with PCI config space");
    for (unsigned i = 0; i < nr; i++) {
        if ((entry[i][12] & ~VEC_MASKED) || entry[i][13] || entry[i][14] || entry[i][15])
            return state_in_fail(in, "MSI-X vector %u has read-only control bits set", i);
        bool live = enabled && !fmask && !(entry[i][12] & VEC_MASKED);
        if (live && (pba[i / 8] >> (i % 8) & 1))
            return state_in_fail(in, "MSI-X vector %u is saved both unmasked and pending", i);
    }
    if (nr % 8 && pba[nr / 8] >> (nr % 8))
        return state_in_fail(in, "MSI-X pending bits set past the table's %u vectors", nr);

    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < nr; i++) {
        struct msix_vector *v = &m->v[i];
        uint64_t one = 1, n;
        memcpy(v->entry, entry[i], 16);
        if (read(v->efd, &n, sizeof(n)) < 0)
            n = 0;
        /* Pending: left readable, so KVM injects it when the irqfd is attached. */
        if ((pba[i / 8] >> (i % 8) & 1) && write(v->efd, &one, sizeof(one)) < 0)
            msix_error(m, "pending bit", -errno);
        refresh(m, i);
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}
