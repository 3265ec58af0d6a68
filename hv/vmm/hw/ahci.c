// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The AHCI controller (docs/ahci.md): PCI function, the HBA and port
 * registers in ABAR, the command list, command tables and PRDTs a port
 * walks, the FISes it posts into the received-FIS area, interrupts, and the
 * device interface (reset, quiesce, save, load). The devices behind the
 * ports are in ahci_ata.c (SATA disk) and atapi.c (CD-ROM).
 *
 * A command runs whole on the vCPU that sets its PxCI bit, under the
 * controller's lock: the interface is simple, the guest sees each command
 * complete (its PxCI bit clear, its FIS posted, the interrupt raised) by the
 * time its write returns. Native command queueing is kept as the guest sees
 * it (PxSACT, set device bits FISes) with the commands served in slot order.
 */
#include "ahci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../block/block.h"
#include "ahci_int.h"
#include "devices.h"
#include "le.h"
#include "log.h"
#include "mem.h"
#include "state.h"
#include "util.h"
#include "vm.h"

#define AHCI_VS     0x00010301u /* 1.3.1 */
#define SIG_ATA     0x00000101u
#define SIG_ATAPI   0xeb140101u
#define SSTS_UP     0x113u /* device present, phy up, Gen1, interface active */
#define RFIS_DSFIS  0x00
#define RFIS_PSFIS  0x20
#define RFIS_RFIS   0x40
#define RFIS_SDBFIS 0x58
#define SG_IOV      64 /* host segments per image request */

static unsigned nr_controllers;

static uint32_t cap_value(void)
{
    return (AHCI_PORTS - 1) | 31u << 8 /* NCS: 32 slots */ | 3u << 20 /* ISS: Gen3 */ |
           1u << 18 /* SAM: AHCI only */ | 1u << 24 /* SCLO */ | 1u << 30 /* SNCQ */ |
           1u << 31 /* S64A */;
}

void ahci_log_bad(struct ahci *h, const char *what)
{
    if (!h->logged_bad)
        log_warn("%s: the guest %s; the command fails (said once)", h->name, what);
    h->logged_bad = true;
}

/* ---- interrupts (lock held) ---- */

/* IS from the ports' enabled status; the vector fires while anything is pending. */
static void update_irq(struct ahci *h)
{
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        if (h->port[i].is & h->port[i].ie)
            h->is |= 1u << i;
    if ((h->ghc & GHC_IE) && h->is)
        msix_notify(&h->msix, 0);
}

/* ---- FISes into the received-FIS area ---- */

static void post_fis(struct ahci_port *p, unsigned off, const uint8_t *fis, unsigned len)
{
    if (!(p->cmd & CMD_FRE))
        return;
    uint8_t *dst = guest_mem_ptr(&p->hba->vm->mem, p->fb + off, len);
    if (!dst) {
        ahci_log_bad(p->hba, "put its received-FIS area outside RAM");
        return;
    }
    memcpy(dst, fis, len);
}

/* The device's signature after a reset, as a D2H register FIS and in PxSIG/PxTFD. */
static void device_reset(struct ahci_port *p)
{
    if (p->kind == AHCI_NONE)
        return;
    p->srst = false;
    p->sig = p->kind == AHCI_ATAPI ? SIG_ATAPI : SIG_ATA;
    uint8_t status = p->kind == AHCI_ATAPI ? 0 : ATA_OK;
    p->tfd = 1u << 8 | status; /* error 01h: diagnostics passed */
    uint8_t fis[20] = {0x34, 0, status, 1};
    fis[4] = 1; /* sector number 1, count 1, the cylinder bytes carry the type */
    fis[12] = 1;
    fis[5] = (uint8_t)(p->sig >> 16);
    fis[6] = (uint8_t)(p->sig >> 24);
    post_fis(p, RFIS_RFIS, fis, sizeof(fis));
    if (p->kind == AHCI_ATA)
        p->ata.ncq_err = false;
}

/* ---- the PRDT ---- */

/* PRD idx: its guest address and length. false (host_error set) if it cannot be read. */
static bool prd(struct ahci_cmd *c, uint32_t idx, uint64_t *addr, uint32_t *len)
{
    uint8_t e[16];
    if (guest_mem_read(&c->port->hba->vm->mem, c->prdt + 16ull * idx, e, 16) < 0) {
        ahci_log_bad(c->port->hba, "put a PRDT outside RAM");
        c->host_error = true;
        return false;
    }
    uint32_t dw3 = le32_get(e + 12);
    *addr = le64_get(e) & ~UINT64_C(1);
    *len = (dw3 & 0x3fffff) + 1;
    if (dw3 & 1u << 31)
        c->dps = true;
    return true;
}

/* Walks the PRDT: each call gives the next host piece, at most `want` bytes. */
struct sg_walk {
    uint32_t idx, used; /* PRD, bytes of it already consumed */
};

static void *sg_next(struct ahci_cmd *c, struct sg_walk *w, uint64_t want, uint64_t *got)
{
    *got = 0;
    for (;;) {
        if (w->idx >= c->prdtl)
            return NULL;
        uint64_t addr;
        uint32_t len;
        if (!prd(c, w->idx, &addr, &len))
            return NULL;
        if (w->used >= len) {
            w->idx++;
            w->used = 0;
            continue;
        }
        uint64_t n = MIN((uint64_t)(len - w->used), want);
        void *ptr = guest_mem_ptr(&c->port->hba->vm->mem, addr + w->used, n);
        if (!ptr) {
            ahci_log_bad(c->port->hba, "gave a PRD outside RAM");
            c->host_error = true;
            return NULL;
        }
        w->used += (uint32_t)n;
        *got = n;
        return ptr;
    }
}

static int64_t sg_copy(struct ahci_cmd *c, uint8_t *buf, uint64_t len, bool to_guest)
{
    struct sg_walk w = {0};
    uint64_t done = 0, n;
    while (done < len) {
        uint8_t *ptr = sg_next(c, &w, len - done, &n);
        if (!ptr)
            break;
        if (to_guest)
            memcpy(ptr, buf + done, n);
        else
            memcpy(buf + done, ptr, n);
        done += n;
    }
    if (c->host_error)
        return -1;
    c->xferred += (uint32_t)done;
    return (int64_t)done;
}

int64_t ahci_sg_to_guest(struct ahci_cmd *c, const void *buf, uint64_t len)
{
    return sg_copy(c, (uint8_t *)buf, len, true);
}

int64_t ahci_sg_from_guest(struct ahci_cmd *c, void *buf, uint64_t len)
{
    return sg_copy(c, buf, len, false);
}

int ahci_sg_disk(struct ahci_cmd *c, uint64_t off, uint64_t len, bool to_disk)
{
    struct bdev *b = c->port->disk.bdev;
    struct sg_walk w = {0};
    struct iovec iov[SG_IOV];
    uint64_t done = 0;
    while (done < len) {
        unsigned nr = 0;
        uint64_t piece = 0, n;
        while (nr < SG_IOV && done + piece < len) {
            void *ptr = sg_next(c, &w, len - done - piece, &n);
            if (!ptr)
                break;
            iov[nr++] = (struct iovec){ptr, n};
            piece += n;
        }
        if (c->host_error)
            return -1;
        if (nr == 0)
            return -3; /* the PRDT ends before the transfer does */
        int ret =
            to_disk ? bdev_pwritev(b, iov, nr, off + done) : bdev_preadv(b, iov, nr, off + done);
        if (ret < 0) {
            log_warn_limited("%s: port %u: the image failed a %s at %llu: %s", c->port->hba->name,
                             c->port->index, to_disk ? "write" : "read",
                             (unsigned long long)(off + done), strerror(-ret));
            return -2;
        }
        done += piece;
        c->xferred += (uint32_t)piece;
    }
    return 0;
}

/* ---- commands ---- */

/* A fatal error: the port stops with the slot's PxCI bit set, until ST goes 0. */
static void port_fatal(struct ahci_port *p, unsigned slot, uint32_t bit)
{
    p->is |= bit;
    p->fatal = true;
    p->ccs = (uint8_t)slot;
}

static void complete(struct ahci_port *p, struct ahci_cmd *c)
{
    uint8_t fis[20] = {0};
    bool err = c->status & ATA_ERR;

    if (c->dps)
        p->is |= IS_DPS;
    if (c->host_error) {
        p->tfd = ATA_ABRT << 8 | ATA_DRDY | ATA_ERR;
        port_fatal(p, c->slot, IS_HBDS);
        return;
    }
    if (c->pio) {
        /* PIO setup: D (device to host) and I; E_Status in byte 15, the count in 16-17. */
        fis[0] = 0x5f;
        fis[1] = 0x60;
        fis[2] = err ? c->status : ATA_DRDY | ATA_DRQ | ATA_DSC; /* a poller reads this one */
        fis[3] = c->error;
        memcpy(fis + 4, c->fis + 4, 9);
        fis[12] = c->count;
        fis[15] = c->status;
        le16_put(fis + 16, (uint16_t)MIN(c->xferred, 0xffffu));
        post_fis(p, RFIS_PSFIS, fis, 20);
        p->is |= IS_PSS;
        memset(fis, 0, sizeof(fis));
    }
    if (c->ncq) {
        /* Set device bits: the status' low and high halves, the tags done in SActive. */
        fis[0] = 0xa1;
        fis[1] = 0x40;
        fis[2] = c->status & 0x77;
        fis[3] = c->error;
        le32_put(fis + 4, err ? 0 : 1u << c->tag);
        post_fis(p, RFIS_SDBFIS, fis, 8);
        if (!err)
            p->sact &= ~(1u << c->tag);
        p->is |= IS_SDBS;
    } else {
        fis[0] = 0x34;
        fis[1] = 0x40; /* I */
        fis[2] = c->status;
        fis[3] = c->error;
        if (c->res_lba_set) {
            uint64_t l = c->res_lba;
            fis[4] = (uint8_t)l, fis[5] = (uint8_t)(l >> 8), fis[6] = (uint8_t)(l >> 16);
            fis[8] = (uint8_t)(l >> 24), fis[9] = (uint8_t)(l >> 32), fis[10] = (uint8_t)(l >> 40);
            fis[7] = c->fis[7] & 0xf0;
            if (!c->res_lba48)
                fis[7] = (uint8_t)((c->fis[7] & 0xf0) | ((l >> 24) & 0xf));
        } else {
            memcpy(fis + 4, c->fis + 4, 7);
        }
        fis[12] = c->count;
        post_fis(p, RFIS_RFIS, fis, 20);
        p->is |= IS_DHRS;
    }
    p->tfd = (uint32_t)c->error << 8 | c->status;
    if (err) {
        port_fatal(p, c->slot, IS_TFES);
        return;
    }
    p->ci &= ~(1u << c->slot);
}

static void run_slot(struct ahci_port *p, unsigned slot)
{
    struct ahci *h = p->hba;
    const struct guest_mem *mem = &h->vm->mem;
    uint8_t hdr[32];
    struct ahci_cmd c = {.port = p, .slot = slot, .status = ATA_OK};

    p->ccs = (uint8_t)slot;
    if (guest_mem_read(mem, p->clb + 32ull * slot, hdr, sizeof(hdr)) < 0) {
        ahci_log_bad(h, "put its command list outside RAM");
        return port_fatal(p, slot, IS_HBFS);
    }
    uint32_t dw0 = le32_get(hdr);
    uint64_t ctba = le64_get(hdr + 8) & ~UINT64_C(0x7f);
    unsigned cfl = dw0 & 0x1f;
    c.prdtl = dw0 >> 16;
    c.write = dw0 & 1u << 6;
    c.prdt = ctba + 0x80;
    if (cfl < 5 || guest_mem_read(mem, ctba, c.fis, sizeof(c.fis)) < 0 ||
        guest_mem_read(mem, ctba + 0x40, c.acmd, sizeof(c.acmd)) < 0 || c.fis[0] != 0x27) {
        ahci_log_bad(h, "gave a command table outside RAM or without a register FIS");
        return port_fatal(p, slot, IS_HBFS);
    }
    if (!(c.fis[1] & 0x80)) {
        /* A control FIS: SRST held, then released (software reset). */
        if (c.fis[15] & 0x04) {
            p->srst = true;
            p->tfd = ATA_BSY;
        } else if (p->srst) {
            device_reset(p);
        }
        p->ci &= ~(1u << slot);
    } else if (p->kind == AHCI_ATAPI) {
        atapi_command(&c);
        complete(p, &c);
    } else {
        ata_command(&c);
        complete(p, &c);
    }
    uint8_t *prdbc = guest_mem_ptr(mem, p->clb + 32ull * slot + 4, 4);
    if (prdbc)
        le32_put(prdbc, c.xferred);
}

/* Every command the guest issued on the port, in slot order (lock held). */
static void port_run(struct ahci_port *p)
{
    struct ahci *h = p->hba;
    if (h->quiesced || !__atomic_load_n(&h->bus_master, __ATOMIC_ACQUIRE) || !(p->cmd & CMD_ST) ||
        p->kind == AHCI_NONE || p->srst_link)
        return;
    bool any = false;
    for (unsigned slot = 0; slot < AHCI_SLOTS && !p->fatal; slot++) {
        if (p->ci & (1u << slot)) {
            run_slot(p, slot);
            any = true;
        }
    }
    if (any)
        update_irq(h);
}

/* ---- registers ---- */

static void port_power_on(struct ahci_port *p)
{
    p->clb = p->fb = 0;
    p->is = p->ie = p->cmd = p->serr = p->sact = p->ci = p->sntf = p->sctl = 0;
    p->fatal = p->srst = p->srst_link = false;
    p->ccs = 0;
    p->tfd = 0x7f;
    p->sig = 0xffffffffu;
    if (p->kind == AHCI_ATA)
        ata_power_on(p);
    else if (p->kind == AHCI_ATAPI)
        atapi_power_on(p);
    device_reset(p);
}

/* GHC.HR: every port as at power-on but its command list and FIS addresses. */
static void hba_reset(struct ahci *h)
{
    h->ghc = 0;
    h->is = 0;
    for (unsigned i = 0; i < AHCI_PORTS; i++) {
        struct ahci_port *p = &h->port[i];
        uint64_t clb = p->clb, fb = p->fb;
        struct ata_state ata = p->ata;
        port_power_on(p);
        p->clb = clb;
        p->fb = fb;
        p->ata = ata; /* SET FEATURES stick across a reset */
        p->ata.ncq_err = false;
    }
}

static uint32_t ssts(const struct ahci_port *p)
{
    if (p->kind == AHCI_NONE || (p->sctl & 0xf) == 1)
        return 0;
    if ((p->sctl & 0xf) == 4)
        return 4; /* offline */
    return SSTS_UP;
}

static uint32_t port_read(struct ahci_port *p, unsigned off)
{
    switch (off) {
    case PX_CLB:
        return (uint32_t)p->clb;
    case PX_CLBU:
        return (uint32_t)(p->clb >> 32);
    case PX_FB:
        return (uint32_t)p->fb;
    case PX_FBU:
        return (uint32_t)(p->fb >> 32);
    case PX_IS:
        return p->is;
    case PX_IE:
        return p->ie;
    case PX_CMD:
        return p->cmd | CMD_SUD | CMD_POD | (p->cmd & CMD_ST ? CMD_CR : 0) |
               (p->cmd & CMD_FRE ? CMD_FR : 0) | (uint32_t)p->ccs << 8;
    case PX_TFD:
        return p->tfd;
    case PX_SIG:
        return p->sig;
    case PX_SSTS:
        return ssts(p);
    case PX_SCTL:
        return p->sctl;
    case PX_SERR:
        return p->serr;
    case PX_SACT:
        return p->sact;
    case PX_CI:
        return p->ci;
    case PX_SNTF:
        return p->sntf;
    default:
        return 0;
    }
}

static void port_write(struct ahci_port *p, unsigned off, uint32_t v)
{
    switch (off) {
    case PX_CLB:
        p->clb = (p->clb & ~UINT64_C(0xffffffff)) | (v & ~0x3ffu);
        break;
    case PX_CLBU:
        p->clb = (p->clb & 0xffffffffu) | (uint64_t)v << 32;
        break;
    case PX_FB:
        p->fb = (p->fb & ~UINT64_C(0xffffffff)) | (v & ~0xffu);
        break;
    case PX_FBU:
        p->fb = (p->fb & 0xffffffffu) | (uint64_t)v << 32;
        break;
    case PX_IS:
        p->is &= ~v;
        break;
    case PX_IE:
        p->ie = v & IS_MASK;
        update_irq(p->hba);
        break;
    case PX_CMD: {
        uint32_t old = p->cmd;
        if (v & CMD_CLO)
            p->tfd &= ~(uint32_t)(ATA_BSY | ATA_DRQ);
        p->cmd = v & CMD_WMASK & ~CMD_CLO;
        if ((old & CMD_ST) && !(p->cmd & CMD_ST)) {
            /* The port stops: what was issued is dropped, a fatal error forgotten. */
            p->ci = p->sact = 0;
            p->fatal = false;
            p->ccs = 0;
        }
        if (!(old & CMD_FRE) && (p->cmd & CMD_FRE) && p->kind != AHCI_NONE && !(p->tfd & ATA_BSY)) {
            /* The signature FIS reaches a FIS area enabled after the reset. */
            uint8_t fis[20] = {0x34,
                               0,
                               (uint8_t)p->tfd,
                               (uint8_t)(p->tfd >> 8),
                               1,
                               (uint8_t)(p->sig >> 16),
                               (uint8_t)(p->sig >> 24)};
            fis[12] = 1;
            post_fis(p, RFIS_RFIS, fis, sizeof(fis));
        }
        break;
    }
    case PX_SCTL: {
        uint32_t old = p->sctl & 0xf;
        p->sctl = v & 0xfff;
        if ((v & 0xf) == 1) {
            p->srst_link = true; /* COMRESET held: the link is down */
            p->tfd = ATA_BSY;
        } else if (old == 1) {
            p->srst_link = false;
            device_reset(p);
        }
        break;
    }
    case PX_SERR:
        p->serr &= ~v;
        break;
    case PX_SACT:
        if (p->cmd & CMD_ST)
            p->sact |= v;
        break;
    case PX_CI:
        if (p->cmd & CMD_ST)
            p->ci |= v;
        port_run(p);
        break;
    case PX_SNTF:
        p->sntf &= ~v;
        break;
    default: /* TFD, SIG, SSTS and the rest: read-only */
        break;
    }
}

static uint32_t hba_read(struct ahci *h, unsigned off)
{
    switch (off) {
    case HBA_CAP:
        return cap_value();
    case HBA_GHC:
        return GHC_AE | h->ghc;
    case HBA_IS:
        return h->is;
    case HBA_PI:
        return (1u << AHCI_PORTS) - 1;
    case HBA_VS:
        return AHCI_VS;
    default:
        return 0;
    }
}

static void hba_write(struct ahci *h, unsigned off, uint32_t v)
{
    switch (off) {
    case HBA_GHC:
        if (v & GHC_HR) {
            hba_reset(h);
            break;
        }
        h->ghc = v & GHC_IE;
        update_irq(h);
        break;
    case HBA_IS:
        h->is &= ~v;
        /* A port whose status is still pending sets its bit again (and interrupts). */
        update_irq(h);
        break;
    default:
        break;
    }
}

static void bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct ahci *h = opaque;
    unsigned reg = (unsigned)(off & ~UINT64_C(3));

    if (!is_write)
        memset(data, 0, len);
    if (off >= AHCI_ABAR_SIZE || len > 4 || (off & 3) + len > 4)
        return;
    pthread_mutex_lock(&h->lock);
    struct ahci_port *p = NULL;
    if (reg >= AHCI_PORT_BASE && reg < AHCI_PORT_BASE + AHCI_PORTS * AHCI_PORT_SIZE)
        p = &h->port[(reg - AHCI_PORT_BASE) / AHCI_PORT_SIZE];
    unsigned poff = (reg - AHCI_PORT_BASE) % AHCI_PORT_SIZE;
    if (!is_write) {
        uint32_t v = p ? port_read(p, poff) : hba_read(h, reg);
        uint8_t b[4];
        le32_put(b, v);
        memcpy(data, b + (off & 3), len);
    } else if (len == 4) {
        uint32_t v = le32_get(data);
        if (p)
            port_write(p, poff, v);
        else
            hba_write(h, reg, v);
    }
    pthread_mutex_unlock(&h->lock);
}

/* ---- PCI ---- */

static void config_written(struct pci_device *pci, uint32_t off, uint32_t len)
{
    struct ahci *h = pci->opaque;
    msix_config_written(&h->msix, off, len);
    /* Commands issued without bus mastering wait for the next PxCI write. */
    __atomic_store_n(&h->bus_master, (pci->cfg[4] & 4) != 0, __ATOMIC_RELEASE);
}

struct pci_device *ahci_pci(struct ahci *h)
{
    return &h->pci;
}

/* ---- the device interface ---- */

static void ahci_quiesce(struct device *dev)
{
    struct ahci *h = dev->priv;
    pthread_mutex_lock(&h->lock); /* a command in progress on a vCPU ends first */
    h->quiesced = true;
    pthread_mutex_unlock(&h->lock);
}

static void ahci_resume(struct device *dev)
{
    struct ahci *h = dev->priv;
    pthread_mutex_lock(&h->lock);
    h->quiesced = false;
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        port_run(&h->port[i]); /* issued while quiesced, or restored */
    pthread_mutex_unlock(&h->lock);
}

static void ahci_reset(struct device *dev)
{
    struct ahci *h = dev->priv;
    pthread_mutex_lock(&h->lock);
    h->ghc = h->is = 0;
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        port_power_on(&h->port[i]);
    pthread_mutex_unlock(&h->lock);
    msix_reset(&h->msix);
    pci_device_reset(&h->pci);
}

static void ahci_destroy(struct device *dev)
{
    struct ahci *h = dev->priv;
    msix_destroy(&h->msix);
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        if (h->port[i].kind != AHCI_NONE)
            blk_disk_close(&h->port[i].disk);
    /* The PCI bus keeps pointing at h (pci_bus_destroy): h itself stays. */
}

static void save_port(struct state_out *out, const struct ahci_port *p)
{
    state_put_u8(out, (uint8_t)p->kind);
    state_put_u64(out, p->kind == AHCI_NONE ? 0 : p->disk.sectors);
    state_put_u64(out, p->clb);
    state_put_u64(out, p->fb);
    state_put_u32(out, p->is);
    state_put_u32(out, p->ie);
    state_put_u32(out, p->cmd);
    state_put_u32(out, p->tfd);
    state_put_u32(out, p->sig);
    state_put_u32(out, p->sctl);
    state_put_u32(out, p->serr);
    state_put_u32(out, p->sact);
    state_put_u32(out, p->ci);
    state_put_u32(out, p->sntf);
    state_put_u8(out, p->ccs);
    state_put_bool(out, p->fatal);
    state_put_bool(out, p->srst);
    state_put_bool(out, p->srst_link);
    const struct ata_state *a = &p->ata;
    state_put_u8(out, a->xfer_mode);
    state_put_bool(out, a->wcache);
    state_put_bool(out, a->lookahead);
    state_put_u8(out, a->mult);
    state_put_bool(out, a->ncq_err);
    state_put_u8(out, a->ncq_tag);
    state_put_u8(out, a->ncq_status);
    state_put_u8(out, a->ncq_error);
    state_put_u64(out, a->ncq_lba);
    const struct atapi_state *t = &p->atapi;
    state_put_u8(out, t->sense_key);
    state_put_u8(out, t->asc);
    state_put_u8(out, t->ascq);
    state_put_bool(out, t->media_event);
    state_put_bool(out, t->locked);
    state_put_bool(out, t->stopped);
}

/* PCI config space and MSI-X, GHC and IS, then each port and its device. */
static int ahci_save(struct device *dev, struct state_out *out)
{
    struct ahci *h = dev->priv;
    if (pci_device_save(&h->pci, out) < 0 || msix_save(&h->msix, out) < 0)
        return -1;
    pthread_mutex_lock(&h->lock);
    /* Commands run whole under the lock: none is in flight, each completed one was written. */
    for (unsigned i = 0; i < AHCI_PORTS; i++) {
        struct ahci_port *p = &h->port[i];
        int ret = p->kind == AHCI_ATA && !p->disk.readonly ? bdev_flush(p->disk.bdev) : 0;
        if (ret < 0) {
            pthread_mutex_unlock(&h->lock);
            return state_fail(out, "cannot flush the disk image of port %u: %s", i, strerror(-ret));
        }
    }
    state_put_u32(out, h->ghc);
    state_put_u32(out, h->is);
    state_put_u8(out, AHCI_PORTS);
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        save_port(out, &h->port[i]);
    pthread_mutex_unlock(&h->lock);
    return out->failed ? -1 : 0;
}

static void load_port(struct state_in *in, struct ahci_port *s, uint8_t *kind, uint64_t *sectors)
{
    *kind = state_get_u8(in);
    *sectors = state_get_u64(in);
    s->clb = state_get_u64(in);
    s->fb = state_get_u64(in);
    s->is = state_get_u32(in);
    s->ie = state_get_u32(in);
    s->cmd = state_get_u32(in);
    s->tfd = state_get_u32(in);
    s->sig = state_get_u32(in);
    s->sctl = state_get_u32(in);
    s->serr = state_get_u32(in);
    s->sact = state_get_u32(in);
    s->ci = state_get_u32(in);
    s->sntf = state_get_u32(in);
    s->ccs = state_get_u8(in);
    s->fatal = state_get_bool(in);
    s->srst = state_get_bool(in);
    s->srst_link = state_get_bool(in);
    struct ata_state *a = &s->ata;
    a->xfer_mode = state_get_u8(in);
    a->wcache = state_get_bool(in);
    a->lookahead = state_get_bool(in);
    a->mult = state_get_u8(in);
    a->ncq_err = state_get_bool(in);
    a->ncq_tag = state_get_u8(in);
    a->ncq_status = state_get_u8(in);
    a->ncq_error = state_get_u8(in);
    a->ncq_lba = state_get_u64(in);
    struct atapi_state *t = &s->atapi;
    t->sense_key = state_get_u8(in);
    t->asc = state_get_u8(in);
    t->ascq = state_get_u8(in);
    t->media_event = state_get_bool(in);
    t->locked = state_get_bool(in);
    t->stopped = state_get_bool(in);
}

static int check_port(struct ahci *h, unsigned i, const struct ahci_port *s, uint8_t kind,
                      uint64_t sectors, struct state_in *in)
{
    const struct ahci_port *p = &h->port[i];
    if (kind != p->kind)
        return state_in_fail(in, "port %u had %s, it has %s now", i,
                             kind == AHCI_ATA     ? "a disk"
                             : kind == AHCI_ATAPI ? "a CD-ROM"
                                                  : "nothing",
                             p->kind == AHCI_ATA     ? "a disk"
                             : p->kind == AHCI_ATAPI ? "a CD-ROM"
                                                     : "nothing");
    if (p->kind != AHCI_NONE && sectors != p->disk.sectors)
        return state_in_fail(in, "port %u: the image had %llu sectors, it has %llu now", i,
                             (unsigned long long)sectors, (unsigned long long)p->disk.sectors);
    if (s->clb & 0x3ff || s->fb & 0xff)
        return state_in_fail(in, "port %u: the command list or FIS address is misaligned", i);
    if (s->cmd & ~CMD_WMASK || s->cmd & CMD_CLO)
        return state_in_fail(in, "port %u: PxCMD 0x%x has bits the guest cannot set", i, s->cmd);
    if ((s->is | s->ie) & ~IS_MASK)
        return state_in_fail(in, "port %u: PxIS/PxIE hold reserved bits", i);
    if (s->sctl & ~0xfffu || s->tfd & ~0xffffu || s->ccs >= AHCI_SLOTS)
        return state_in_fail(in, "port %u: a register value out of range", i);
    if (!(s->cmd & CMD_ST) && (s->ci || s->sact || s->fatal))
        return state_in_fail(in, "port %u is stopped but has commands issued", i);
    if (s->srst_link != ((s->sctl & 0xf) == 1))
        return state_in_fail(in, "port %u: the link reset does not match PxSCTL", i);
    const struct ata_state *a = &s->ata;
    if (a->mult > 16 || (a->mult & (a->mult - 1)) || a->ncq_tag >= AHCI_SLOTS)
        return state_in_fail(in, "port %u: the disk's settings are out of range", i);
    if (s->atapi.sense_key > 0xf)
        return state_in_fail(in, "port %u: sense key 0x%x", i, s->atapi.sense_key);
    return 0;
}

static int ahci_load(struct device *dev, struct state_in *in)
{
    struct ahci *h = dev->priv;
    if (pci_device_load(&h->pci, in) < 0 || msix_load(&h->msix, in) < 0)
        return -1;
    struct ahci_port *s = calloc(AHCI_PORTS, sizeof(*s));
    if (!s)
        return state_in_fail(in, "out of memory");
    uint8_t kind[AHCI_PORTS];
    uint64_t sectors[AHCI_PORTS];
    uint32_t ghc = state_get_u32(in), is = state_get_u32(in);
    unsigned nr = state_get_u8(in);
    int ret = 0;
    if (state_in_ok(in) && nr != AHCI_PORTS)
        ret = state_in_fail(in, "%u ports saved, the controller has %u", nr, AHCI_PORTS);
    for (unsigned i = 0; ret == 0 && i < AHCI_PORTS; i++)
        load_port(in, &s[i], &kind[i], &sectors[i]);
    if (ret == 0 && !state_in_ok(in))
        ret = -1;
    if (ret == 0 && (ghc & ~GHC_IE || is & ~((1u << AHCI_PORTS) - 1)))
        ret = state_in_fail(in, "GHC 0x%x or IS 0x%x holds reserved bits", ghc, is);
    for (unsigned i = 0; ret == 0 && i < AHCI_PORTS; i++)
        ret = check_port(h, i, &s[i], kind[i], sectors[i], in);
    if (ret == 0) {
        pthread_mutex_lock(&h->lock);
        h->ghc = ghc;
        h->is = is;
        for (unsigned i = 0; i < AHCI_PORTS; i++) {
            struct ahci_port *p = &h->port[i];
            p->clb = s[i].clb, p->fb = s[i].fb, p->is = s[i].is, p->ie = s[i].ie;
            p->cmd = s[i].cmd, p->tfd = s[i].tfd, p->sig = s[i].sig, p->sctl = s[i].sctl;
            p->serr = s[i].serr, p->sact = s[i].sact, p->ci = s[i].ci, p->sntf = s[i].sntf;
            p->ccs = s[i].ccs, p->fatal = s[i].fatal, p->srst = s[i].srst;
            p->srst_link = s[i].srst_link;
            p->ata = s[i].ata;
            p->atapi = s[i].atapi;
        }
        pthread_mutex_unlock(&h->lock);
    }
    free(s);
    return ret;
}

static const struct device_ops ahci_ops = {
    .reset = ahci_reset,
    .quiesce = ahci_quiesce,
    .resume = ahci_resume,
    .destroy = ahci_destroy,
    .save = ahci_save,
    .load = ahci_load,
};

/* ---- creation ---- */

static int open_port(struct ahci *h, unsigned i, const struct vm_disk *d, enum ahci_kind kind)
{
    struct ahci_port *p = &h->port[i];
    p->disk.name = h->name;
    int ret = blk_disk_open(&p->disk, d->path, kind == AHCI_ATAPI || d->readonly, d->format,
                            h->vm->cfg ? h->vm->cfg->image_dirs : NULL);
    if (ret)
        return ret;
    p->kind = kind;
    ata_identify_ids(p);
    log_info("%s: port %u: %s %s (%s), %llu MiB%s", h->name, i,
             kind == AHCI_ATAPI ? "CD-ROM" : "disk", d->path, p->disk.bdev->format,
             (unsigned long long)(p->disk.sectors * BLK_SECTOR / MiB),
             kind == AHCI_ATAPI || d->readonly ? ", read-only" : "");
    return 0;
}

int ahci_create_dev(struct vm *vm, const struct vm_disk *const *disks, unsigned nr,
                    const struct vm_disk *cdrom, struct ahci **out)
{
    if (nr + (cdrom ? 1 : 0) > AHCI_PORTS) {
        log_err("the AHCI controller has %u ports: %u disks and %s CD-ROM do not fit", AHCI_PORTS,
                nr, cdrom ? "a" : "no");
        return -EINVAL;
    }
    struct ahci *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->vm = vm;
    snprintf(h->name, sizeof(h->name), "ahci%u", nr_controllers);
    pthread_mutex_init(&h->lock, NULL);
    int ret = 0;
    for (unsigned i = 0; i < AHCI_PORTS; i++) {
        h->port[i].hba = h;
        h->port[i].index = i;
    }
    for (unsigned i = 0; i < nr && ret == 0; i++)
        ret = open_port(h, i, disks[i], AHCI_ATA);
    if (ret == 0 && cdrom)
        ret = open_port(h, nr, cdrom, AHCI_ATAPI);
    if (ret) {
        for (unsigned i = 0; i < AHCI_PORTS; i++)
            if (h->port[i].kind != AHCI_NONE)
                blk_disk_close(&h->port[i].disk);
        free(h);
        return ret;
    }
    h->nr_used = nr + (cdrom ? 1 : 0);
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        port_power_on(&h->port[i]);

    struct pci_device *p = &h->pci;
    p->name = h->name;
    p->vendor_id = 0x8086; /* ICH9's 6-port SATA AHCI controller */
    p->device_id = 0x2922;
    p->subsys_vendor_id = 0x1af4;
    p->subsys_id = 0x1100;
    p->class_code = 0x010601; /* mass storage, SATA, AHCI 1.0 */
    p->revision = 2;
    p->bar_def[AHCI_ABAR] = (struct pci_bar_def){
        .size = AHCI_ABAR_SIZE < 4096 ? 4096 : AHCI_ABAR_SIZE, .handler = bar_access, .opaque = h};
    p->config_written = config_written;
    p->opaque = h;
    if ((ret = msix_init(&h->msix, p, &vm->irq, 1, AHCI_MSIX_BAR)) < 0) {
        log_err("%s: cannot set up MSI-X: %s", h->name, strerror(-ret));
        return ret; /* the VM is not started: the process ends */
    }
    if (vm->vm_fd < 0)
        h->msix.irq = NULL; /* unit tests and fuzzers: no KVM */
    if ((ret = pci_register(vm->pci, p)) < 0)
        return ret;
    device_add(vm, &h->dev, &ahci_ops, h->name, p->slot, h);
    nr_controllers++;
    log_info("%s: AHCI at 00:%02x.0, %u of %u ports used", h->name, p->slot, h->nr_used,
             AHCI_PORTS);
    if (out)
        *out = h;
    return 0;
}

/* The VM's --disk ...,bus=ahci and --cdrom, on one controller. */
int ahci_create(struct vm *vm)
{
    const struct vm_config *cfg = vm->cfg;
    const struct vm_disk *disks[VM_MAX_DISKS];
    unsigned nr = 0;
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        if (cfg->disks[i].bus == VM_DISK_AHCI)
            disks[nr++] = &cfg->disks[i];
    if (nr == 0 && !cfg->cdrom.path)
        return 0;
    return ahci_create_dev(vm, disks, nr, cfg->cdrom.path ? &cfg->cdrom : NULL, NULL);
}
