// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Config space of a passed-through function. pci.c keeps a shadow (cfg) and
 * write mask (wmask) per device; here each byte is either the device's
 * (virt 0: reads refresh the shadow from the device, writes go through with
 * wmask 0xff) or hv-vmm's (virt 1: the shadow is the truth). Ours: command
 * (forwarded after pci.c has moved the BARs), header type, BARs and ROM,
 * interrupt line and pin (no INTx: pin 0), BIST, the capability pointers
 * (the list keeps only capabilities we can support), MSI-X message control,
 * and all of extended config space (hidden: reads 0).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "vfio.h"

#define CFG_COMMAND    0x04
#define CFG_HDR_TYPE   0x0E
#define CFG_BIST       0x0F
#define CFG_BAR0       0x10
#define CFG_ROM        0x30
#define CFG_CAP_PTR    0x34
#define CFG_INT_LINE   0x3C
#define CFG_INT_PIN    0x3D
#define CMD_INTX_OFF   0x0400
#define CAP_ID_PM      0x01
#define CAP_ID_PCIE    0x10
#define CAP_ID_MSIX    0x11
#define MSIX_CTRL_MASK 0xC0 /* enable and function mask, in the control's high byte */

int vfio_config_read(struct vfio_pci *vp, uint32_t off, void *buf, uint32_t len)
{
    if (!range_within(off, len, vp->cfg_size))
        return -EINVAL;
    ssize_t n = pread(vp->fd, buf, len, (off_t)(vp->cfg_offset + off));
    return n == (ssize_t)len ? 0 : -EIO;
}

int vfio_config_write(struct vfio_pci *vp, uint32_t off, const void *buf, uint32_t len)
{
    if (!range_within(off, len, vp->cfg_size))
        return -EINVAL;
    ssize_t n = pwrite(vp->fd, buf, len, (off_t)(vp->cfg_offset + off));
    return n == (ssize_t)len ? 0 : -EIO;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

int vfio_config_setup(struct vfio_pci *vp, const uint8_t *raw)
{
    struct pci_device *d = &vp->pci;
    if ((raw[CFG_HDR_TYPE] & 0x7f) != 0) {
        log_err("%s is not an ordinary PCI function (header type %u): bridges cannot be passed "
                "through",
                vp->bdf, raw[CFG_HDR_TYPE] & 0x7f);
        return -1;
    }
    d->vendor_id = rd16(raw);
    d->device_id = rd16(raw + 2);
    d->revision = raw[0x08];
    d->class_code = (uint32_t)raw[0x0B] << 16 | (uint32_t)raw[0x0A] << 8 | raw[0x09];
    d->subsys_vendor_id = rd16(raw + 0x2C);
    d->subsys_id = rd16(raw + 0x2E);

    /* The MSI-X capability, if the device has one: where its table and PBA are. */
    uint8_t pos = raw[CFG_CAP_PTR] & 0xfc;
    for (unsigned guard = 0; pos >= 0x40 && pos <= 0xfc - 12 && guard < 48; guard++) {
        if (raw[pos] == CAP_ID_MSIX) {
            uint16_t ctrl = rd16(raw + pos + 2);
            uint32_t table = raw[pos + 4] | raw[pos + 5] << 8 | raw[pos + 6] << 16 |
                             (uint32_t)raw[pos + 7] << 24;
            uint32_t pba = raw[pos + 8] | raw[pos + 9] << 8 | raw[pos + 10] << 16 |
                           (uint32_t)raw[pos + 11] << 24;
            vp->has_msix = true;
            vp->msix_cap = pos;
            vp->msix_real_nr = (ctrl & 0x7ff) + 1u;
            vp->msix_bar = table & 7;
            vp->msix_table_off = table & ~7u;
            vp->msix_pba_off = pba & ~7u;
            if (vp->msix_bar >= PCI_NR_BARS || (pba & 7) != vp->msix_bar) {
                log_warn("%s: MSI-X table and PBA are in different or invalid BARs: MSI-X "
                         "hidden",
                         vp->bdf);
                vp->has_msix = false;
            }
            break;
        }
        pos = raw[pos + 1] & 0xfc;
    }
    return 0;
}

static void set_virt(struct vfio_pci *vp, uint32_t off, uint32_t len)
{
    memset(vp->virt + off, 1, len);
}

void vfio_config_finish(struct vfio_pci *vp, const uint8_t *raw)
{
    struct pci_device *d = &vp->pci;
    uint8_t *cfg = d->cfg, *wm = d->wmask;

    set_virt(vp, CFG_COMMAND, 2);
    set_virt(vp, 0x0C, 4); /* cache line, latency (pci.c's), header type, BIST */
    set_virt(vp, CFG_BAR0, 4 * PCI_NR_BARS);
    set_virt(vp, CFG_ROM, 4); /* no option ROM */
    set_virt(vp, CFG_CAP_PTR, 1);
    set_virt(vp, CFG_INT_LINE, 2);
    set_virt(vp, 0x100, PCI_CFG_SIZE - 0x100); /* extended capabilities hidden */
    memset(cfg + 0x100, 0, PCI_CFG_SIZE - 0x100);
    memset(wm + 0x100, 0, PCI_CFG_SIZE - 0x100);
    /* The device's bytes get wmask 0xff below: the shadow carries the guest's write through. */
    cfg[CFG_HDR_TYPE] = 0; /* one function: no multi-function bit */
    cfg[CFG_BIST] = 0;
    cfg[CFG_INT_PIN] = 0; /* MSI-X only (docs/passthrough.md) */
    for (unsigned i = 0; i < PCI_NR_BARS; i++)
        if (vp->bars[i].prefetch)
            cfg[CFG_BAR0 + 4 * i] |= 0x08;

    /* Rebuild the capability list with the ones we can support. */
    uint8_t *link = &cfg[CFG_CAP_PTR];
    *link = 0;
    uint8_t pos = raw[CFG_CAP_PTR] & 0xfc;
    for (unsigned guard = 0; pos >= 0x40 && pos <= 0xfc && guard < 48; guard++) {
        uint8_t id = raw[pos], next = raw[pos + 1] & 0xfc;
        bool keep = id == CAP_ID_PM || id == CAP_ID_PCIE || (id == CAP_ID_MSIX && vp->has_msix);
        if (keep) {
            *link = pos;
            set_virt(vp, pos, 2); /* ID and next pointer */
            cfg[pos] = id;
            cfg[pos + 1] = 0;
            wm[pos] = wm[pos + 1] = 0;
            link = &cfg[pos + 1];
        } else {
            log_debug("%s: capability 0x%02x at 0x%02x hidden from the guest", vp->bdf, id, pos);
        }
        pos = next;
    }
    for (unsigned i = 0; i < 0x100; i++)
        if (!vp->virt[i])
            wm[i] = 0xff;
    if (vp->has_msix) {
        uint8_t c = vp->msix_cap;
        unsigned nr = MIN(vp->msix_real_nr, MSIX_MAX_VECTORS);
        set_virt(vp, c + 2, 2);
        cfg[c + 2] = (uint8_t)((nr - 1) & 0xff);
        cfg[c + 3] = (uint8_t)((nr - 1) >> 8);
        wm[c + 2] = 0;
        wm[c + 3] = MSIX_CTRL_MASK;
    }
}

void vfio_config_push_command(struct vfio_pci *vp)
{
    uint16_t cmd = rd16(vp->pci.cfg + CFG_COMMAND) | CMD_INTX_OFF;
    uint8_t b[2] = {(uint8_t)cmd, (uint8_t)(cmd >> 8)};
    if (vfio_config_write(vp, CFG_COMMAND, b, 2) < 0)
        vfio_bad(vp, "cannot write the command register");
}

static bool overlaps(uint32_t off, uint32_t len, uint32_t start, uint32_t end)
{
    return off < end && start < off + len;
}

/* pci.c: before a guest read, refresh the device's bytes in the shadow. */
static void config_read(struct pci_device *dev, uint32_t off, uint32_t len)
{
    struct vfio_pci *vp = dev->opaque;
    uint8_t buf[8];

    if (len > sizeof(buf) || !range_within(off, len, 0x100))
        return;
    if (vfio_config_read(vp, off, buf, len) < 0) {
        vfio_bad(vp, "cannot read config space at 0x%x", off);
        return;
    }
    for (uint32_t i = 0; i < len; i++)
        if (!vp->virt[off + i])
            dev->cfg[off + i] = buf[i];
}

/* pci.c: after a guest write reached the shadow (and pci.c moved BARs). */
static void config_written(struct pci_device *dev, uint32_t off, uint32_t len)
{
    struct vfio_pci *vp = dev->opaque;

    /* Runs of the device's own bytes go through as written. */
    for (uint32_t i = 0; i < len && off + i < 0x100;) {
        if (vp->virt[off + i]) {
            i++;
            continue;
        }
        uint32_t j = i;
        while (j < len && off + j < 0x100 && !vp->virt[off + j])
            j++;
        if (vfio_config_write(vp, off + i, dev->cfg + off + i, j - i) < 0)
            vfio_bad(vp, "cannot write config space at 0x%x", off + i);
        i = j;
    }
    bool cmd = overlaps(off, len, CFG_COMMAND, CFG_COMMAND + 2);
    if (cmd)
        vfio_config_push_command(vp);
    if (cmd || overlaps(off, len, CFG_BAR0, CFG_BAR0 + 4 * PCI_NR_BARS))
        vfio_bars_sync(vp);
    if (vp->has_msix && overlaps(off, len, vp->msix_cap + 2u, vp->msix_cap + 4u)) {
        msix_config_written(&vp->msix, off, len);
        vfio_msix_update(vp);
    }
}

void vfio_config_hooks(struct vfio_pci *vp)
{
    vp->pci.config_read = config_read;
    vp->pci.config_written = config_written;
    vp->pci.opaque = vp;
}
