// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The --pci devices of a VM: opened through their IOMMU group before the
 * sandbox drops root (sandbox.c), put on hv-vmm's PCI bus, reset when the
 * guest reboots and when the VM ends. Listed in devices.c as a platform
 * device so that its reset and destroy hooks run at the right moments.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "devices.h"
#include "log.h"
#include "pt.h"
#include "util.h"
#include "vfio.h"
#include "vm.h"

void vfio_bad(struct vfio_pci *vp, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (vp->logged_bad)
        return;
    vp->logged_bad = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warn("%s: %s (further problems with this device are not logged)", vp->bdf, msg);
}

/* Hand the vectors' eventfds to the device when the guest enables MSI-X, take them back after. */
void vfio_msix_update(struct vfio_pci *vp)
{
    bool want = msix_enabled(&vp->msix);
    if (want == vp->msix_on)
        return;
    unsigned nr = want ? vp->msix.nr : 0;
    size_t size = sizeof(struct vfio_irq_set) + nr * sizeof(int32_t);
    struct vfio_irq_set *set = calloc(1, size);
    if (!set)
        return;
    set->argsz = (uint32_t)size;
    set->index = VFIO_PCI_MSIX_IRQ_INDEX;
    set->start = 0;
    set->count = nr;
    set->flags =
        VFIO_IRQ_SET_ACTION_TRIGGER | (want ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE);
    int32_t *fds = (int32_t *)set->data;
    for (unsigned i = 0; i < nr; i++)
        fds[i] = msix_vector_fd(&vp->msix, i);
    if (ioctl(vp->fd, VFIO_DEVICE_SET_IRQS, set) < 0)
        log_err("%s: cannot %s MSI-X: %s", vp->bdf, want ? "enable" : "disable", strerror(errno));
    else
        vp->msix_on = want;
    free(set);
}

/* What sysfs says: the device exists, is on vfio-pci and has an IOMMU group. */
static int check_device(const char *bdf, struct pt_device *info)
{
    struct pt_sys sys = {.root = ""};
    char err[512];

    if (pt_device_get(&sys, bdf, info, err, sizeof(err)) < 0) {
        log_err("--pci %s: %s", bdf, err);
        return -1;
    }
    if (strcmp(info->driver, PT_VFIO) != 0) {
        log_err("--pci %s: the device is on %s, not vfio-pci: bind it first (hv-pci bind %s)",
                info->bdf, info->driver[0] ? info->driver : "no driver", info->bdf);
        return -1;
    }
    if (info->group < 0) {
        log_err("--pci %s: the device has no IOMMU group (is the IOMMU on?)", info->bdf);
        return -1;
    }
    return 0;
}

static int open_device(struct vm *vm, struct vfio_pci *vp)
{
    struct pt_device info;

    if (check_device(vp->bdf, &info) < 0)
        return -1;
    memcpy(vp->bdf, info.bdf, PT_BDF_LEN);
    if (vfio_group_attach(vm, info.group, &vp->group_fd) < 0)
        return -1;
    vp->fd = ioctl(vp->group_fd, VFIO_GROUP_GET_DEVICE_FD, vp->bdf);
    if (vp->fd < 0) {
        log_err("--pci %s: VFIO gives no device fd: %s", vp->bdf, strerror(errno));
        return -1;
    }
    struct vfio_device_info di = {.argsz = sizeof(di)};
    if (ioctl(vp->fd, VFIO_DEVICE_GET_INFO, &di) < 0 || !(di.flags & VFIO_DEVICE_FLAGS_PCI)) {
        log_err("--pci %s: VFIO does not see a PCI device", vp->bdf);
        return -1;
    }
    vp->flags = di.flags;
    struct vfio_region_info ri = {.argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX};
    if (ioctl(vp->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0 || ri.size < 0x100) {
        log_err("--pci %s: no config space region", vp->bdf);
        return -1;
    }
    vp->cfg_offset = ri.offset;
    vp->cfg_size = MIN(ri.size, (uint64_t)PCI_CFG_SIZE);
    return 0;
}

static int create_one(struct vm *vm, const char *bdf, unsigned index)
{
    struct vfio_pci *vp = calloc(1, sizeof(*vp));
    uint8_t raw[0x100];

    if (!vp)
        return -ENOMEM;
    vp->vm = vm;
    vp->index = index;
    vp->group_fd = vp->fd = -1;
    snprintf(vp->bdf, sizeof(vp->bdf), "%s", bdf);
    vm->vfio->devs[vm->vfio->nr++] = vp; /* destroy() finds it even half built */
    if (open_device(vm, vp) < 0)
        return -1;
    if (vfio_config_read(vp, 0, raw, sizeof(raw)) < 0) {
        log_err("--pci %s: cannot read its config space", vp->bdf);
        return -1;
    }
    /* Quiet until the guest's driver wants it: no decoding, no DMA, no INTx. */
    uint8_t cmd[2] = {0, 0x04};
    vfio_config_write(vp, 0x04, cmd, 2);
    if (vp->flags & VFIO_DEVICE_FLAGS_RESET)
        ioctl(vp->fd, VFIO_DEVICE_RESET);

    vp->pci.name = vp->bdf;
    if (vfio_config_setup(vp, raw) < 0 || vfio_bars_setup(vp, raw) < 0)
        return -1;
    if (vp->has_msix) {
        unsigned nr = MIN(vp->msix_real_nr, MSIX_MAX_VECTORS);
        if (!vp->bars[vp->msix_bar].size || msix_init_vectors(&vp->msix, &vp->pci, &vm->irq, nr)) {
            log_warn("%s: MSI-X cannot be set up: hidden from the guest", vp->bdf);
            vp->has_msix = false;
        } else {
            vp->msix.cap = vp->msix_cap;
        }
    }
    if (!vp->has_msix)
        log_warn("%s: the device has no usable MSI-X, and hv-vmm does not pass MSI or INTx "
                 "through yet: its driver will get no interrupts",
                 vp->bdf);
    vfio_config_hooks(vp);
    if (pci_register(vm->pci, &vp->pci) < 0)
        return -1;
    vfio_config_finish(vp, raw);
    log_info("%s: passed through as 00:%02x.0 (%04x:%04x, class %06x%s)", vp->bdf, vp->pci.slot,
             vp->pci.vendor_id, vp->pci.device_id, vp->pci.class_code,
             vp->has_msix ? ", MSI-X" : "");
    return 0;
}

int vfio_init(struct vm *vm)
{
    const struct vm_config *cfg = vm->cfg;
    struct pt_device info;

    if (!cfg->nr_pci)
        return 0;
    for (unsigned i = 0; i < cfg->nr_pci; i++) /* the user's mistakes first */
        if (check_device(cfg->pci[i], &info) < 0)
            return -ENODEV;
    vm->vfio = calloc(1, sizeof(*vm->vfio));
    if (!vm->vfio)
        return -ENOMEM;
    vm->vfio->container_fd = -1;
    if (vfio_container_open(vm) < 0)
        return -EIO;
    for (unsigned i = 0; i < cfg->nr_pci; i++)
        if (create_one(vm, cfg->pci[i], i) < 0)
            return -EIO;
    /* The IOMMU context exists once a group is in the container: map RAM now. */
    if (vfio_dma_map_ram(vm) < 0)
        return -EIO;
    return 0;
}

static void quiesce(struct vfio_pci *vp)
{
    if (vp->fd < 0)
        return;
    if (vp->has_msix) {
        msix_reset(&vp->msix);
        vfio_msix_update(vp);
    }
    if (vp->flags & VFIO_DEVICE_FLAGS_RESET && ioctl(vp->fd, VFIO_DEVICE_RESET) < 0)
        log_warn("%s: device reset failed: %s", vp->bdf, strerror(errno));
}

/* The guest rebooted (vCPUs paused): a reset device, as firmware would leave it. */
void vfio_reset(struct vm *vm)
{
    if (!vm->vfio)
        return;
    for (unsigned i = 0; i < vm->vfio->nr; i++) {
        struct vfio_pci *vp = vm->vfio->devs[i];
        quiesce(vp);
        /* The reset cleared the device's command register; our shadow kept the guest's. */
        pthread_mutex_lock(&vp->pci.cfg_lock);
        vfio_config_push_command(vp);
        pthread_mutex_unlock(&vp->pci.cfg_lock);
    }
}

void vfio_destroy(struct vm *vm)
{
    if (!vm->vfio)
        return;
    for (unsigned i = 0; i < vm->vfio->nr; i++) {
        struct vfio_pci *vp = vm->vfio->devs[i];
        quiesce(vp);
        vfio_bars_unmap(vp);
        if (vp->fd >= 0)
            close(vp->fd);
        if (vp->group_fd >= 0)
            close(vp->group_fd);
        vp->fd = vp->group_fd = -1;
    }
    if (vm->vfio->container_fd >= 0)
        close(vm->vfio->container_fd);
    vm->vfio->container_fd = -1;
}
