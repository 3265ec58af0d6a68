// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio 1.x modern PCI transport (virtio 1.2 §4.1): see virtio.h. */
#include "virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "../vm.h"
#include "log.h"
#include "state.h"
#include "util.h"

#define PCI_CAP_ID_VNDR 0x09
#define COMMON_CFG_LEN  0x40
#define TRANSPORT_FEATURES                                                                         \
    (1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |                            \
     1ull << VIRTIO_RING_F_EVENT_IDX)
#define ISR_QUEUE  1 /* ISR bits (§4.1.4.5) */
#define ISR_CONFIG 2
#define EP_STOP    UINT64_C(0xffffffff)
#define EP_FD_BASE UINT64_C(0x10000)

static uint8_t status_of(struct virtio_dev *vd)
{
    uint8_t s = vd->status;
    if (__atomic_load_n(&vd->needs_reset, __ATOMIC_ACQUIRE))
        s |= VIRTIO_CONFIG_S_NEEDS_RESET;
    return s;
}

bool virtio_ready(struct virtio_dev *vd)
{
    return (vd->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !__atomic_load_n(&vd->needs_reset, __ATOMIC_ACQUIRE);
}

static void signal_config(struct virtio_dev *vd)
{
    uint16_t vec = __atomic_load_n(&vd->config_vector, __ATOMIC_RELAXED);
    if (!msix_notify(&vd->msix, vec))
        __atomic_fetch_or(&vd->isr, ISR_CONFIG, __ATOMIC_RELAXED);
}

void virtio_fail(struct virtio_dev *vd, const char *fmt, ...)
{
    if (__atomic_exchange_n(&vd->needs_reset, true, __ATOMIC_ACQ_REL))
        return; /* logged once per reset already */
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warn_limited("%s: %s; the device needs a reset", vd->name, msg);
    signal_config(vd);
}

void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q)
{
    struct virtio_queue *vq = &vd->queues[q];
    if (!vq_should_notify(&vq->vq))
        return;
    uint16_t vec = __atomic_load_n(&vq->msix_vector, __ATOMIC_RELAXED);
    /* Without MSI-X there is no INTx line: the ISR bit is all we can do. */
    if (!msix_notify(&vd->msix, vec))
        __atomic_fetch_or(&vd->isr, ISR_QUEUE, __ATOMIC_RELAXED);
}

void virtio_config_update(struct virtio_dev *vd, uint32_t off, const void *data, uint32_t len)
{
    if (!range_within(off, len, vd->config_len))
        return;
    pthread_mutex_lock(&vd->lock);
    memcpy(vd->config + off, data, len);
    vd->config_gen++;
    bool ok = vd->status & VIRTIO_CONFIG_S_DRIVER_OK;
    pthread_mutex_unlock(&vd->lock);
    if (ok)
        signal_config(vd);
}

/* ---- ioeventfds: queue kicks that never leave the kernel ---- */

static void ioeventfd_set(struct virtio_dev *vd, uint64_t base, bool assign)
{
    if (!vd->vm || vd->vm->vm_fd < 0)
        return;
    for (unsigned q = 0; q < vd->nr_queues; q++) {
        struct kvm_ioeventfd io = {
            .addr = base + VIRTIO_NOTIFY_OFF + (uint64_t)q * VIRTIO_NOTIFY_MULT,
            .len = 2,
            .fd = vd->queues[q].kick_efd,
            .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
        };
        /* On failure the MMIO handler still turns the kick into the same eventfd. */
        if (ioctl(vd->vm->vm_fd, KVM_IOEVENTFD, &io) < 0 && assign)
            log_debug("%s: KVM_IOEVENTFD failed (%s); kicks go through MMIO exits", vd->name,
                      strerror(errno));
    }
}

/* Follow BAR 0 (called under cfg_lock after each config write). */
static void follow_bar(struct virtio_dev *vd)
{
    uint64_t base = pci_bar_addr(&vd->pci, VIRTIO_BAR);
    pthread_mutex_lock(&vd->lock);
    if (base != vd->ioev_base) {
        if (vd->ioev_base)
            ioeventfd_set(vd, vd->ioev_base, false);
        if (base)
            ioeventfd_set(vd, base, true);
        vd->ioev_base = base;
    }
    pthread_mutex_unlock(&vd->lock);
}

/* ---- reset, status, features ---- */

static void kick_drain(int efd)
{
    uint64_t v;
    while (read(efd, &v, sizeof(v)) == sizeof(v))
        ;
}

/* Caller holds lock and qlock. */
static void do_reset(struct virtio_dev *vd)
{
    if (vd->ops->reset)
        vd->ops->reset(vd);
    for (unsigned q = 0; q < vd->nr_queues; q++) {
        struct virtio_queue *vq = &vd->queues[q];
        vq_reset(&vq->vq);
        vq->size = vq->max_size;
        vq->msix_vector = VIRTIO_NO_VECTOR;
        vq->enabled = false;
        vq->desc = vq->driver = vq->device = 0;
        if (!vq->kernel_kick)
            kick_drain(vq->kick_efd);
    }
    vd->driver_features = vd->features = 0;
    vd->dfsel = vd->gfsel = 0;
    vd->status = 0;
    vd->config_vector = VIRTIO_NO_VECTOR;
    vd->queue_sel = 0;
    vd->kick_after_load = false;
    __atomic_store_n(&vd->isr, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&vd->needs_reset, false, __ATOMIC_RELEASE);
}

/* Caller holds lock and qlock. */
static void write_status(struct virtio_dev *vd, uint8_t val)
{
    if (val == 0) {
        do_reset(vd);
        return;
    }
    /* Bits are only ever added until reset; NEEDS_RESET is the device's. */
    uint8_t old = vd->status;
    uint8_t new = (old | val) & ~VIRTIO_CONFIG_S_NEEDS_RESET;

    if ((new &VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
        uint64_t f = vd->driver_features;
        if ((f & ~vd->host_features) || !(f & (1ull << VIRTIO_F_VERSION_1))) {
            /* The driver reads FEATURES_OK back as clear and gives up (§3.1.1). */
            log_warn_limited("%s: driver accepted features 0x%llx not offered or without VERSION_1",
                             vd->name, (unsigned long long)f);
            new &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        } else {
            vd->features = f;
        }
    }
    if ((new &VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
        vd->status = new;
        if (!(new &VIRTIO_CONFIG_S_FEATURES_OK)) {
            virtio_fail(vd, "driver set DRIVER_OK without FEATURES_OK");
            return;
        }
        int ret = vd->ops->start ? vd->ops->start(vd) : 0;
        if (ret < 0) {
            virtio_fail(vd, "cannot start: %s", strerror(-ret));
            return;
        }
        /* Serve buffers the driver queued before DRIVER_OK. */
        uint64_t one = 1;
        for (unsigned q = 0; q < vd->nr_queues; q++) {
            if (vd->queues[q].enabled && write(vd->queues[q].kick_efd, &one, 8) < 0)
                log_debug("%s: kick eventfd write failed", vd->name);
        }
    }
    vd->status = new;
}

/* Caller holds lock and qlock. */
static void enable_queue(struct virtio_dev *vd, struct virtio_queue *vq, unsigned q)
{
    const char *why;
    if (vq->enabled)
        return;
    if (!(vd->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
        virtio_fail(vd, "queue %u enabled before FEATURES_OK", q);
        return;
    }
    if (vq->size > vq->max_size) {
        virtio_fail(vd, "queue %u: size %u is above the device's maximum %u", q, vq->size,
                    vq->max_size);
        return;
    }
    int ret = vq_setup(&vq->vq, &vd->vm->mem, vq->size, vq->desc, vq->driver, vq->device,
                       virtio_has_feature(vd, VIRTIO_RING_F_EVENT_IDX),
                       virtio_has_feature(vd, VIRTIO_RING_F_INDIRECT_DESC), &why);
    if (ret < 0) {
        virtio_fail(vd, "queue %u: %s", q, why);
        return;
    }
    vq->enabled = true;
}

/* ---- common configuration ---- */

static void common_image(struct virtio_dev *vd, uint8_t *img)
{
    memset(img, 0, COMMON_CFG_LEN);
    le32_put(img + VIRTIO_PCI_COMMON_DFSELECT, vd->dfsel);
    if (vd->dfsel < 2)
        le32_put(img + VIRTIO_PCI_COMMON_DF, (uint32_t)(vd->host_features >> (32 * vd->dfsel)));
    le32_put(img + VIRTIO_PCI_COMMON_GFSELECT, vd->gfsel);
    if (vd->gfsel < 2)
        le32_put(img + VIRTIO_PCI_COMMON_GF, (uint32_t)(vd->driver_features >> (32 * vd->gfsel)));
    le16_put(img + VIRTIO_PCI_COMMON_MSIX, vd->config_vector);
    le16_put(img + VIRTIO_PCI_COMMON_NUMQ, (uint16_t)vd->nr_queues);
    img[VIRTIO_PCI_COMMON_STATUS] = status_of(vd);
    img[VIRTIO_PCI_COMMON_CFGGENERATION] = vd->config_gen;
    le16_put(img + VIRTIO_PCI_COMMON_Q_SELECT, vd->queue_sel);
    if (vd->queue_sel < vd->nr_queues) {
        struct virtio_queue *vq = &vd->queues[vd->queue_sel];
        le16_put(img + VIRTIO_PCI_COMMON_Q_SIZE, vq->size);
        le16_put(img + VIRTIO_PCI_COMMON_Q_MSIX, vq->msix_vector);
        le16_put(img + VIRTIO_PCI_COMMON_Q_ENABLE, vq->enabled);
        le16_put(img + VIRTIO_PCI_COMMON_Q_NOFF, vd->queue_sel);
        le64_put(img + VIRTIO_PCI_COMMON_Q_DESCLO, vq->desc);
        le64_put(img + VIRTIO_PCI_COMMON_Q_AVAILLO, vq->driver);
        le64_put(img + VIRTIO_PCI_COMMON_Q_USEDLO, vq->device);
    }
}

static bool touches(uint64_t off, uint32_t len, unsigned field, unsigned size)
{
    return off < field + size && field < off + len;
}

static uint16_t vector_or_none(struct virtio_dev *vd, uint16_t v)
{
    return v < vd->msix.nr ? v : VIRTIO_NO_VECTOR;
}

/* Apply a write: merge it into the register image, then act on each field it touched. */
static void common_write(struct virtio_dev *vd, uint64_t off, const uint8_t *data, uint32_t len)
{
    uint8_t img[COMMON_CFG_LEN];
    common_image(vd, img);
    memcpy(img + off, data, len);
    struct virtio_queue *vq = vd->queue_sel < vd->nr_queues ? &vd->queues[vd->queue_sel] : NULL;
    bool frozen = vd->status & (VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);

    if (touches(off, len, VIRTIO_PCI_COMMON_DFSELECT, 4))
        vd->dfsel = le32_get(img + VIRTIO_PCI_COMMON_DFSELECT);
    if (touches(off, len, VIRTIO_PCI_COMMON_GFSELECT, 4))
        vd->gfsel = le32_get(img + VIRTIO_PCI_COMMON_GFSELECT);
    if (touches(off, len, VIRTIO_PCI_COMMON_GF, 4) && !frozen && vd->gfsel < 2) {
        unsigned sh = 32 * vd->gfsel;
        vd->driver_features &= ~(UINT64_C(0xffffffff) << sh);
        vd->driver_features |= (uint64_t)le32_get(img + VIRTIO_PCI_COMMON_GF) << sh;
    }
    if (touches(off, len, VIRTIO_PCI_COMMON_MSIX, 2)) {
        uint16_t v = img[VIRTIO_PCI_COMMON_MSIX] | img[VIRTIO_PCI_COMMON_MSIX + 1] << 8;
        __atomic_store_n(&vd->config_vector, vector_or_none(vd, v), __ATOMIC_RELAXED);
    }
    if (touches(off, len, VIRTIO_PCI_COMMON_Q_SELECT, 2)) {
        vd->queue_sel = img[VIRTIO_PCI_COMMON_Q_SELECT] | img[VIRTIO_PCI_COMMON_Q_SELECT + 1] << 8;
        return; /* the other queue fields in this write belong to the old queue */
    }
    /* Queue fields are frozen once the queue or the driver is running. */
    if (vq && !vq->enabled && !(vd->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        if (touches(off, len, VIRTIO_PCI_COMMON_Q_SIZE, 2)) {
            uint16_t s = img[VIRTIO_PCI_COMMON_Q_SIZE] | img[VIRTIO_PCI_COMMON_Q_SIZE + 1] << 8;
            /* Checked when the queue is enabled: the driver may write in steps. */
            vq->size = s;
        }
        if (touches(off, len, VIRTIO_PCI_COMMON_Q_DESCLO, 8))
            vq->desc = le64_get(img + VIRTIO_PCI_COMMON_Q_DESCLO);
        if (touches(off, len, VIRTIO_PCI_COMMON_Q_AVAILLO, 8))
            vq->driver = le64_get(img + VIRTIO_PCI_COMMON_Q_AVAILLO);
        if (touches(off, len, VIRTIO_PCI_COMMON_Q_USEDLO, 8))
            vq->device = le64_get(img + VIRTIO_PCI_COMMON_Q_USEDLO);
    }
    if (vq && touches(off, len, VIRTIO_PCI_COMMON_Q_MSIX, 2)) {
        uint16_t v = img[VIRTIO_PCI_COMMON_Q_MSIX] | img[VIRTIO_PCI_COMMON_Q_MSIX + 1] << 8;
        __atomic_store_n(&vq->msix_vector, vector_or_none(vd, v), __ATOMIC_RELAXED);
    }
    if (vq && touches(off, len, VIRTIO_PCI_COMMON_Q_ENABLE, 2) &&
        img[VIRTIO_PCI_COMMON_Q_ENABLE] == 1)
        enable_queue(vd, vq, vd->queue_sel);
    if (touches(off, len, VIRTIO_PCI_COMMON_STATUS, 1))
        write_status(vd, img[VIRTIO_PCI_COMMON_STATUS]);
}

/* ---- BAR 0 ---- */

void virtio_bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct virtio_dev *vd = opaque;

    if (off >= VIRTIO_NOTIFY_OFF) {
        /* A kick that did not hit an ioeventfd (no KVM support, odd width). */
        uint64_t q = (off - VIRTIO_NOTIFY_OFF) / VIRTIO_NOTIFY_MULT, one = 1;
        if (is_write && q < vd->nr_queues) {
            if (write(vd->queues[q].kick_efd, &one, sizeof(one)) < 0)
                log_debug("%s: kick eventfd write failed", vd->name);
        }
        if (!is_write)
            memset(data, 0, len);
        return;
    }
    if (off >= VIRTIO_ISR_OFF && off < VIRTIO_DEVCFG_OFF) {
        if (!is_write)
            memset(data, 0, len);
        if (!is_write && off == VIRTIO_ISR_OFF)
            data[0] = __atomic_exchange_n(&vd->isr, 0, __ATOMIC_ACQ_REL); /* read clears */
        return;
    }

    pthread_mutex_lock(&vd->lock);
    if (off < COMMON_CFG_LEN && len <= COMMON_CFG_LEN - off) {
        if (is_write) {
            pthread_mutex_lock(&vd->qlock);
            common_write(vd, off, data, len);
            pthread_mutex_unlock(&vd->qlock);
        } else {
            uint8_t img[COMMON_CFG_LEN];
            common_image(vd, img);
            memcpy(data, img + off, len);
        }
    } else if (off >= VIRTIO_DEVCFG_OFF && off - VIRTIO_DEVCFG_OFF < vd->config_len &&
               len <= vd->config_len - (off - VIRTIO_DEVCFG_OFF)) {
        uint32_t o = (uint32_t)(off - VIRTIO_DEVCFG_OFF);
        if (!is_write)
            memcpy(data, vd->config + o, len);
        else if (vd->ops->config_write)
            vd->ops->config_write(vd, o, data, len);
    } else if (!is_write) {
        memset(data, 0, len);
    }
    pthread_mutex_unlock(&vd->lock);
}

/* ---- PCI config hooks: MSI-X control, BAR moves, the PCI_CFG window ---- */

/* Forward a PCI_CFG window access to BAR 0 (§4.1.4.9). */
static void pcicfg_access(struct virtio_dev *vd, bool is_write)
{
    uint8_t *cap = vd->pci.cfg + vd->pcicfg_cap;
    uint32_t bar = cap[VIRTIO_PCI_CAP_BAR];
    uint32_t off = le32_get(cap + VIRTIO_PCI_CAP_OFFSET);
    uint32_t len = le32_get(cap + VIRTIO_PCI_CAP_LENGTH);
    uint8_t *win = cap + 16;
    if (bar != VIRTIO_BAR || (len != 1 && len != 2 && len != 4) ||
        !range_within(off, len, VIRTIO_BAR_SIZE) || off % len)
        return;
    virtio_bar_access(vd, off, win, len, is_write);
}

static void config_written(struct pci_device *dev, uint32_t off, uint32_t len)
{
    struct virtio_dev *vd = dev->opaque;
    msix_config_written(&vd->msix, off, len);
    /* A restored window is just bytes: no BAR access the guest did not make. */
    if (!dev->loading && touches(off, len, vd->pcicfg_cap + 16, 4))
        pcicfg_access(vd, true);
    follow_bar(vd);
}

static void config_read(struct pci_device *dev, uint32_t off, uint32_t len)
{
    struct virtio_dev *vd = dev->opaque;
    if (touches(off, len, vd->pcicfg_cap + 16, 4))
        pcicfg_access(vd, false);
}

static int add_vcap(struct virtio_dev *vd, uint8_t type, uint32_t off, uint32_t len,
                    const void *extra, uint8_t extra_len, uint8_t *cap_off)
{
    uint8_t body[18] = {0};
    body[0] = 16 + extra_len; /* cap_len */
    body[1] = type;
    body[2] = VIRTIO_BAR;
    le32_put(body + 6, off);
    le32_put(body + 10, len);
    if (extra_len)
        memcpy(body + 14, extra, extra_len);
    return pci_add_capability(&vd->pci, PCI_CAP_ID_VNDR, body, 14 + extra_len, cap_off);
}

/* ---- the device thread ---- */

void virtio_handle_kick(struct virtio_dev *vd, unsigned q)
{
    pthread_mutex_lock(&vd->qlock);
    struct virtio_queue *vq = &vd->queues[q];
    if (!(vd->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        if (!vd->logged_early_kick) {
            vd->logged_early_kick = true;
            /* Linux's virtio_balloon kicks its stats queue before DRIVER_OK on
             * every boot: harmless, so not a warning. */
            log_debug("%s: queue %u kicked before DRIVER_OK; ignored", vd->name, q);
        }
    } else if (virtio_ready(vd) && vq->enabled && !vq->vq.broken) {
        vd->ops->queue_notify(vd, q);
        if (vq->vq.broken)
            virtio_fail(vd, "queue %u: %s", q, vq->vq.broken_why);
    }
    pthread_mutex_unlock(&vd->qlock);
}

static void *device_thread(void *arg)
{
    struct virtio_dev *vd = arg;
    struct epoll_event ev[16];

    for (;;) {
        int n = epoll_wait(vd->epfd, ev, ARRAY_SIZE(ev), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_err("%s: epoll_wait failed: %s; the device stops", vd->name, strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            uint64_t id = ev[i].data.u64, v;
            if (id == EP_STOP)
                return NULL;
            if (id >= EP_FD_BASE) {
                unsigned k = (unsigned)(id - EP_FD_BASE);
                pthread_mutex_lock(&vd->qlock);
                /* The slot may have been closed by an earlier event of this batch. */
                if (vd->fds[k].fd >= 0)
                    vd->fds[k].fn(vd, vd->fds[k].fd, ev[i].events, vd->fds[k].arg);
                pthread_mutex_unlock(&vd->qlock);
                continue;
            }
            if (read(vd->queues[id].kick_efd, &v, sizeof(v)) == sizeof(v))
                virtio_handle_kick(vd, (unsigned)id);
        }
    }
}

void virtio_serve_queue(struct virtio_dev *vd, unsigned q, virtio_chain_fn fn, void *arg)
{
    struct vq *vq = &vd->queues[q].vq;
    bool pushed = false;
    int r;

    do {
        vq_notify_disable(vq);
        while ((r = vq_pop(vq, vd->chain)) > 0) {
            int64_t w = fn(vd, vd->chain, arg);
            if (w == VIRTIO_CHAIN_KEEP)
                continue;
            if (w < 0) {
                vq_unpop(vq); /* the device cannot take it now */
                r = 0;
                goto out;
            }
            vq_push(vq, vd->chain->head, (uint32_t)w);
            pushed = true;
        }
    } while (r == 0 && vq_notify_enable(vq));
out:
    if (pushed)
        virtio_queue_interrupt(vd, q);
}

int virtio_add_fd(struct virtio_dev *vd, int fd, uint32_t events, virtio_fd_fn fn, void *arg)
{
    unsigned k = 0;
    while (k < vd->nr_fds && vd->fds[k].fd >= 0)
        k++;
    if (k == VIRTIO_MAX_FDS)
        return -ENOSPC;
    struct epoll_event ev = {.events = events, .data.u64 = EP_FD_BASE + k};
    if (epoll_ctl(vd->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    vd->fds[k].fd = fd;
    vd->fds[k].fn = fn;
    vd->fds[k].arg = arg;
    if (k == vd->nr_fds)
        vd->nr_fds++;
    return 0;
}

void virtio_del_fd(struct virtio_dev *vd, int fd)
{
    for (unsigned k = 0; k < vd->nr_fds; k++) {
        if (vd->fds[k].fd == fd) {
            epoll_ctl(vd->epfd, EPOLL_CTL_DEL, fd, NULL);
            vd->fds[k].fd = -1;
        }
    }
}

int virtio_mod_fd(struct virtio_dev *vd, int fd, uint32_t events)
{
    for (unsigned k = 0; k < vd->nr_fds; k++) {
        if (vd->fds[k].fd != fd)
            continue;
        struct epoll_event ev = {.events = events, .data.u64 = EP_FD_BASE + k};
        return epoll_ctl(vd->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
    }
    return -ENOENT;
}

/* ---- set-up ---- */

int virtio_dev_init(struct virtio_dev *vd, struct vm *vm, const char *name, uint16_t type,
                    unsigned nr_queues, uint16_t queue_size, uint64_t features, uint32_t config_len,
                    const struct virtio_ops *ops, void *priv)
{
    int ret;

    if (nr_queues == 0 || nr_queues > VIRTIO_MAX_QUEUES || config_len > VIRTIO_CONFIG_MAX)
        return -EINVAL;
    memset(vd, 0, sizeof(*vd));
    vd->vm = vm;
    vd->name = name;
    vd->ops = ops;
    vd->priv = priv;
    vd->nr_queues = nr_queues;
    vd->config_len = config_len;
    vd->host_features = features | TRANSPORT_FEATURES;
    vd->config_vector = VIRTIO_NO_VECTOR;
    vd->epfd = vd->stop_efd = -1;
    pthread_mutex_init(&vd->lock, NULL);
    pthread_mutex_init(&vd->qlock, NULL);
    for (unsigned q = 0; q < nr_queues; q++) {
        struct virtio_queue *vq = &vd->queues[q];
        vq->max_size = vq->size = queue_size;
        vq->msix_vector = VIRTIO_NO_VECTOR;
        vq->kick_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vq->kick_efd < 0)
            goto err_errno;
    }
    vd->chain = malloc(sizeof(*vd->chain));
    if (!vd->chain) {
        errno = ENOMEM;
        goto err_errno;
    }
    vd->epfd = epoll_create1(EPOLL_CLOEXEC);
    vd->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vd->epfd < 0 || vd->stop_efd < 0)
        goto err_errno;

    struct pci_device *p = &vd->pci;
    p->name = name;
    p->vendor_id = 0x1af4;
    p->device_id = 0x1040 + type;
    p->subsys_vendor_id = 0x1af4;
    p->subsys_id = 0x40 + type;
    p->revision = 1; /* non-transitional (§4.1.2.1) */
    p->class_code = 0xff0000;
    p->config_written = config_written;
    p->config_read = config_read;
    p->opaque = vd;
    p->bar_def[VIRTIO_BAR] = (struct pci_bar_def){
        .size = VIRTIO_BAR_SIZE,
        .handler = virtio_bar_access,
        .opaque = vd,
    };

    uint32_t mult = VIRTIO_NOTIFY_MULT;
    uint8_t cap;
    if ((ret = add_vcap(vd, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_COMMON_OFF, COMMON_CFG_LEN, NULL, 0,
                        &cap)) ||
        (ret = add_vcap(vd, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_NOTIFY_OFF,
                        nr_queues * VIRTIO_NOTIFY_MULT, &mult, 4, &cap)) ||
        (ret = add_vcap(vd, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_ISR_OFF, 1, NULL, 0, &cap)) ||
        (config_len && (ret = add_vcap(vd, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_DEVCFG_OFF, config_len,
                                       NULL, 0, &cap))))
        goto err;
    uint8_t zero[4] = {0};
    if ((ret = add_vcap(vd, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, zero, 4, &cap)))
        goto err;
    vd->pcicfg_cap = cap;
    /* The PCI_CFG window: bar, offset, length and data are the driver's. */
    static const uint8_t ones[4] = {0xff, 0xff, 0xff, 0xff};
    pci_set_wmask(p, cap + VIRTIO_PCI_CAP_BAR, ones, 1);
    pci_set_wmask(p, cap + VIRTIO_PCI_CAP_OFFSET, ones, 4);
    pci_set_wmask(p, cap + VIRTIO_PCI_CAP_LENGTH, ones, 4);
    pci_set_wmask(p, cap + 16, ones, 4);

    if ((ret = msix_init(&vd->msix, p, vm ? &vm->irq : NULL, nr_queues + 1, VIRTIO_MSIX_BAR)))
        goto err;
    if (vm && vm->vm_fd < 0)
        vd->msix.irq = NULL; /* unit tests: no KVM */

    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EP_STOP};
    if (epoll_ctl(vd->epfd, EPOLL_CTL_ADD, vd->stop_efd, &ev) < 0)
        goto err_errno;
    return 0;

err_errno:
    ret = -errno;
err:
    log_err("%s: cannot set up the virtio device: %s", name, strerror(-ret));
    virtio_dev_destroy(vd);
    return ret;
}

static int start_thread(struct virtio_dev *vd)
{
    int ret = pthread_create(&vd->thread, NULL, device_thread, vd);
    if (ret) {
        log_err("%s: cannot start the device thread: %s", vd->name, strerror(ret));
        return -ret;
    }
    vd->thread_running = true;
    return 0;
}

static void stop_thread(struct virtio_dev *vd)
{
    if (!vd->thread_running)
        return;
    uint64_t one = 1;
    if (write(vd->stop_efd, &one, sizeof(one)) == sizeof(one))
        pthread_join(vd->thread, NULL);
    vd->thread_running = false;
    kick_drain(vd->stop_efd); /* so that the next thread does not stop at once */
}

void virtio_dev_quiesce(struct virtio_dev *vd)
{
    stop_thread(vd);
    pthread_mutex_lock(&vd->lock);
    pthread_mutex_lock(&vd->qlock);
    if (vd->ops->quiesce)
        vd->ops->quiesce(vd);
    pthread_mutex_unlock(&vd->qlock);
    pthread_mutex_unlock(&vd->lock);
}

void virtio_dev_resume(struct virtio_dev *vd)
{
    pthread_mutex_lock(&vd->lock);
    pthread_mutex_lock(&vd->qlock);
    if (vd->ops->resume)
        vd->ops->resume(vd);
    /*
     * After a restore the kicks of the old process are gone: kick every
     * running queue once, so that what the guest queued is served (vhost
     * polls the same eventfds).
     */
    if (vd->kick_after_load) {
        uint64_t one = 1;
        for (unsigned q = 0; q < vd->nr_queues; q++) {
            if (vd->queues[q].enabled && write(vd->queues[q].kick_efd, &one, 8) < 0)
                log_debug("%s: kick eventfd write failed", vd->name);
        }
        vd->kick_after_load = false;
    }
    pthread_mutex_unlock(&vd->qlock);
    pthread_mutex_unlock(&vd->lock);
    /* Kicks and fd events that came meanwhile are still pending: the thread sees them. */
    if (!vd->thread_running && start_thread(vd) < 0)
        virtio_fail(vd, "cannot restart after a pause");
}

void virtio_dev_reset(struct virtio_dev *vd)
{
    pthread_mutex_lock(&vd->lock);
    pthread_mutex_lock(&vd->qlock);
    do_reset(vd);
    msix_reset(&vd->msix);
    vd->logged_fail = vd->logged_early_kick = false;
    pthread_mutex_unlock(&vd->qlock);
    pthread_mutex_unlock(&vd->lock);
    pci_device_reset(&vd->pci); /* takes cfg_lock, then lock (follow_bar): after ours */
}

static void dev_quiesce(struct device *d)
{
    virtio_dev_quiesce(d->priv);
}

static void dev_resume(struct device *d)
{
    virtio_dev_resume(d->priv);
}

static void dev_reset(struct device *d)
{
    virtio_dev_reset(d->priv);
}

static void dev_destroy(struct device *d)
{
    virtio_dev_destroy(d->priv);
}

/* ---- save / restore ---- */

#define STATUS_BITS                                                                                \
    (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |            \
     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_FAILED)

/* Caller holds lock and qlock; the device is quiesced. */
static void transport_save(struct virtio_dev *vd, struct state_out *out)
{
    state_put_u8(out, vd->status);
    state_put_u64(out, vd->host_features);
    state_put_u64(out, vd->driver_features);
    state_put_u64(out, vd->features);
    state_put_u32(out, vd->dfsel);
    state_put_u32(out, vd->gfsel);
    state_put_u8(out, vd->config_gen);
    state_put_u16(out, vd->config_vector);
    state_put_u16(out, vd->queue_sel);
    state_put_bool(out, __atomic_load_n(&vd->needs_reset, __ATOMIC_ACQUIRE));
    state_put_u8(out, __atomic_load_n(&vd->isr, __ATOMIC_ACQUIRE));
    state_put_u16(out, (uint16_t)vd->config_len);
    state_put_bytes(out, vd->config, vd->config_len);
    state_put_u16(out, (uint16_t)vd->nr_queues);
    for (unsigned q = 0; q < vd->nr_queues; q++) {
        const struct virtio_queue *vq = &vd->queues[q];
        state_put_u16(out, vq->size);
        state_put_bool(out, vq->enabled);
        state_put_u16(out, vq->msix_vector);
        state_put_u64(out, vq->desc);
        state_put_u64(out, vq->driver);
        state_put_u64(out, vq->device);
        /* For vhost rings, the positions the device's quiesce read from the kernel. */
        state_put_u16(out, vq->vq.last_avail);
        state_put_u16(out, vq->vq.used_idx);
        state_put_u16(out, vq->vq.signalled_used);
        state_put_bool(out, vq->vq.signalled_valid);
        state_put_bool(out, vq->vq.broken);
    }
}

struct queue_state {
    uint16_t size, vector, last_avail, used_idx, signalled_used;
    bool enabled, signalled_valid, broken;
    uint64_t desc, driver, device;
    struct vq vq;
};

static bool vector_ok(const struct virtio_dev *vd, uint16_t v)
{
    return v == VIRTIO_NO_VECTOR || v < vd->msix.nr;
}

/* Read and check everything, then apply. Caller holds lock and qlock. */
static int transport_load(struct virtio_dev *vd, struct state_in *in)
{
    struct queue_state qs[VIRTIO_MAX_QUEUES];
    uint8_t config[VIRTIO_CONFIG_MAX];

    uint8_t status = state_get_u8(in);
    uint64_t host_features = state_get_u64(in);
    uint64_t driver_features = state_get_u64(in);
    uint64_t features = state_get_u64(in);
    uint32_t dfsel = state_get_u32(in), gfsel = state_get_u32(in);
    uint8_t config_gen = state_get_u8(in);
    uint16_t config_vector = state_get_u16(in);
    uint16_t queue_sel = state_get_u16(in);
    bool needs_reset = state_get_bool(in);
    uint8_t isr = state_get_u8(in);
    uint16_t config_len = state_get_u16(in);
    if (!state_in_ok(in))
        return -1;
    if (config_len != vd->config_len)
        return state_in_fail(in, "%u bytes of device config saved, the device has %u", config_len,
                             vd->config_len);
    state_get_bytes(in, config, config_len);
    unsigned nr_queues = state_get_u16(in);
    if (!state_in_ok(in))
        return -1;
    if (nr_queues != vd->nr_queues)
        return state_in_fail(in, "%u queues saved, the device has %u", nr_queues, vd->nr_queues);
    for (unsigned q = 0; q < nr_queues; q++) {
        struct queue_state *s = &qs[q];
        s->size = state_get_u16(in);
        s->enabled = state_get_bool(in);
        s->vector = state_get_u16(in);
        s->desc = state_get_u64(in);
        s->driver = state_get_u64(in);
        s->device = state_get_u64(in);
        s->last_avail = state_get_u16(in);
        s->used_idx = state_get_u16(in);
        s->signalled_used = state_get_u16(in);
        s->signalled_valid = state_get_bool(in);
        s->broken = state_get_bool(in);
    }
    if (!state_in_ok(in))
        return -1;

    if (status & ~STATUS_BITS)
        return state_in_fail(in, "device status 0x%02x has bits no driver can set", status);
    bool features_ok = status & VIRTIO_CONFIG_S_FEATURES_OK;
    if (features & ~vd->host_features)
        return state_in_fail(in,
                             "the guest uses features 0x%llx, this device offers only 0x%llx "
                             "(0x%llx when saved)",
                             (unsigned long long)features, (unsigned long long)vd->host_features,
                             (unsigned long long)host_features);
    if (features_ok ? features != driver_features || !(features & (1ull << VIRTIO_F_VERSION_1))
                    : features != 0)
        return state_in_fail(in,
                             "negotiated features 0x%llx do not follow from status 0x%02x "
                             "and the driver's features 0x%llx",
                             (unsigned long long)features, status,
                             (unsigned long long)driver_features);
    if (!vector_ok(vd, config_vector))
        return state_in_fail(in, "config vector %u is past the MSI-X table (%u vectors)",
                             config_vector, vd->msix.nr);
    if (isr & ~(ISR_QUEUE | ISR_CONFIG))
        return state_in_fail(in, "ISR 0x%02x has undefined bits", isr);
    for (unsigned q = 0; q < nr_queues; q++) {
        struct queue_state *s = &qs[q];
        const char *why;
        if (!vector_ok(vd, s->vector))
            return state_in_fail(in, "queue %u: vector %u is past the MSI-X table (%u vectors)", q,
                                 s->vector, vd->msix.nr);
        if (!s->enabled) {
            if (s->last_avail || s->used_idx || s->signalled_used || s->signalled_valid ||
                s->broken)
                return state_in_fail(in, "queue %u is disabled but has ring positions", q);
            continue;
        }
        if (!features_ok)
            return state_in_fail(in, "queue %u is enabled without FEATURES_OK", q);
        if (s->size > vd->queues[q].max_size)
            return state_in_fail(in, "queue %u: size %u is above the device's maximum %u", q,
                                 s->size, vd->queues[q].max_size);
        if (vq_setup(&s->vq, &vd->vm->mem, s->size, s->desc, s->driver, s->device,
                     features & (1ull << VIRTIO_RING_F_EVENT_IDX),
                     features & (1ull << VIRTIO_RING_F_INDIRECT_DESC), &why) < 0)
            return state_in_fail(in, "queue %u: %s", q, why);
        if ((uint16_t)(s->last_avail - s->used_idx) > s->size)
            return state_in_fail(in, "queue %u: %u chains in flight in a ring of %u", q,
                                 (uint16_t)(s->last_avail - s->used_idx), s->size);
        s->vq.last_avail = s->last_avail;
        s->vq.used_idx = s->used_idx;
        s->vq.signalled_used = s->signalled_used;
        s->vq.signalled_valid = s->signalled_valid;
        if (s->broken) {
            s->vq.broken = true;
            s->vq.broken_why = "the queue was broken when the VM was saved";
        }
    }

    vd->status = status;
    vd->driver_features = driver_features;
    vd->features = features;
    vd->dfsel = dfsel;
    vd->gfsel = gfsel;
    vd->config_gen = config_gen;
    vd->config_vector = config_vector;
    vd->queue_sel = queue_sel;
    __atomic_store_n(&vd->needs_reset, needs_reset, __ATOMIC_RELEASE);
    __atomic_store_n(&vd->isr, isr, __ATOMIC_RELEASE);
    memcpy(vd->config, config, config_len);
    for (unsigned q = 0; q < nr_queues; q++) {
        struct virtio_queue *vq = &vd->queues[q];
        struct queue_state *s = &qs[q];
        vq->size = s->size;
        vq->enabled = s->enabled;
        vq->msix_vector = s->vector;
        vq->desc = s->desc;
        vq->driver = s->driver;
        vq->device = s->device;
        if (s->enabled)
            vq->vq = s->vq;
        else
            vq_reset(&vq->vq);
        if (!vq->kernel_kick)
            kick_drain(vq->kick_efd);
    }
    vd->kick_after_load = status & VIRTIO_CONFIG_S_DRIVER_OK;
    return 0;
}

/* PCI config space, MSI-X, the transport, then the device's own part. */
static int dev_save(struct device *d, struct state_out *out)
{
    struct virtio_dev *vd = d->priv;
    if (pci_device_save(&vd->pci, out) < 0 || msix_save(&vd->msix, out) < 0)
        return -1;
    pthread_mutex_lock(&vd->lock);
    pthread_mutex_lock(&vd->qlock);
    transport_save(vd, out);
    int ret = out->failed ? -1 : 0;
    if (ret == 0 && vd->ops->save)
        ret = vd->ops->save(vd, out);
    pthread_mutex_unlock(&vd->qlock);
    pthread_mutex_unlock(&vd->lock);
    return ret < 0 || out->failed ? -1 : 0;
}

static int dev_load(struct device *d, struct state_in *in)
{
    struct virtio_dev *vd = d->priv;
    /* cfg_lock (PCI) before lock: the hooks pci_device_load calls take lock. */
    if (pci_device_load(&vd->pci, in) < 0 || msix_load(&vd->msix, in) < 0)
        return -1;
    pthread_mutex_lock(&vd->lock);
    pthread_mutex_lock(&vd->qlock);
    int ret = transport_load(vd, in);
    if (ret == 0 && vd->ops->load)
        ret = vd->ops->load(vd, in);
    pthread_mutex_unlock(&vd->qlock);
    pthread_mutex_unlock(&vd->lock);
    return ret < 0 || !state_in_ok(in) ? -1 : 0;
}

int virtio_dev_save(struct virtio_dev *vd, struct state_out *out)
{
    return dev_save(&vd->dev, out);
}

int virtio_dev_load(struct virtio_dev *vd, struct state_in *in)
{
    return dev_load(&vd->dev, in);
}

static const struct device_ops virtio_device_ops = {
    .save = dev_save,
    .load = dev_load,
    .quiesce = dev_quiesce,
    .resume = dev_resume,
    .reset = dev_reset,
    .destroy = dev_destroy,
};

int virtio_dev_start(struct virtio_dev *vd)
{
    int ret;

    for (unsigned q = 0; q < vd->nr_queues; q++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = q};
        if (!vd->queues[q].kernel_kick &&
            epoll_ctl(vd->epfd, EPOLL_CTL_ADD, vd->queues[q].kick_efd, &ev) < 0)
            return -errno;
    }
    if ((ret = pci_register(vd->vm->pci, &vd->pci)))
        return ret;
    if ((ret = start_thread(vd)))
        return ret;
    device_add(vd->vm, &vd->dev, &virtio_device_ops, vd->name, vd->pci.slot, vd);
    return 0;
}

void virtio_dev_destroy(struct virtio_dev *vd)
{
    stop_thread(vd);
    pthread_mutex_lock(&vd->lock);
    pthread_mutex_lock(&vd->qlock);
    if (vd->ops && vd->ops->reset)
        vd->ops->reset(vd);
    pthread_mutex_unlock(&vd->qlock);
    pthread_mutex_unlock(&vd->lock);
    msix_destroy(&vd->msix);
    for (unsigned q = 0; q < vd->nr_queues; q++) {
        if (vd->queues[q].kick_efd > 0)
            close(vd->queues[q].kick_efd);
        vd->queues[q].kick_efd = -1;
    }
    free(vd->chain);
    vd->chain = NULL;
    if (vd->epfd >= 0)
        close(vd->epfd);
    if (vd->stop_efd >= 0)
        close(vd->stop_efd);
    vd->epfd = vd->stop_efd = -1;
}
