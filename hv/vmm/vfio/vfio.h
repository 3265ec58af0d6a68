/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A host PCI function given to the guest through VFIO (--pci BDF; see
 * docs/passthrough.md). The device sits on hv-vmm's PCI bus like an emulated
 * one, but its config space is the real device's except for the parts hv-vmm
 * must own (BARs, command, capability list, MSI-X control), its BARs are the
 * device's memory mapped straight into the guest (KVM memory slots) where
 * VFIO allows it and trapped elsewhere, and its MSI-X table is emulated
 * (msix.c) with vectors programmed into the device as eventfds that are KVM
 * irqfds. Guest RAM is mapped for the device's DMA through the IOMMU.
 *
 *   container.c  /dev/vfio/vfio, the groups, DMA mapping of guest RAM
 *   config.c     config space: what is the device's, what is virtual
 *   bar.c        BAR regions: mmap, KVM slots, trapped accesses
 *   device.c     one device: open, register on the bus, MSI-X, reset
 */
#ifndef HV_VMM_VFIO_H
#define HV_VMM_VFIO_H

#include <stdbool.h>
#include <stdint.h>

#include "msix.h"
#include "pci.h"

struct vm;

#define VFIO_BAR_MAX_PIECES 8

/* A page-aligned part of a BAR that is mmap()ed and can be a KVM slot. */
struct vfio_piece {
    uint64_t off, size; /* within the BAR */
    uint8_t *hva;       /* host mapping of off */
};

struct vfio_pci;

struct vfio_bar {
    struct vfio_pci *vp;
    unsigned index;
    uint64_t size;   /* the region's real size (the guest may see it rounded up) */
    uint64_t offset; /* of the region in the device fd */
    bool is_io, is_64, prefetch;
    struct vfio_piece pieces[VFIO_BAR_MAX_PIECES];
    unsigned nr_pieces;
    /* mmap()s of the region's mappable areas, unmapped at exit */
    struct vfio_piece maps[VFIO_BAR_MAX_PIECES];
    unsigned nr_maps;
    uint64_t slot_gpa; /* where the pieces are KVM slots now, 0: nowhere */
};

struct vfio_pci {
    struct vm *vm;
    char bdf[16];
    unsigned index; /* among this VM's --pci devices: picks KVM slot numbers */
    int group_fd, fd;
    uint32_t flags; /* VFIO_DEVICE_FLAGS_* */
    uint64_t cfg_offset, cfg_size;
    struct pci_device pci;
    struct vfio_bar bars[PCI_NR_BARS];
    uint8_t virt[PCI_CFG_SIZE]; /* 1: hv-vmm's shadow byte, 0: the device's */

    /* MSI-X: the device's capability, table and PBA; the table is ours. */
    bool has_msix, msix_on;
    uint8_t msix_cap;
    unsigned msix_bar, msix_real_nr;
    uint64_t msix_table_off, msix_pba_off;
    struct msix msix;

    bool logged_bad; /* one log line per device for guest mistakes */
};

struct vfio_vm {
    int container_fd;
    bool iommu_set; /* VFIO_SET_IOMMU is done once the first group is in */
    unsigned nr;
    struct vfio_pci *devs[8];
};

/* container.c */
int vfio_container_open(struct vm *vm);
int vfio_group_attach(struct vm *vm, int group, int *group_fd);
int vfio_dma_map_ram(struct vm *vm);

/* config.c */
int vfio_config_read(struct vfio_pci *vp, uint32_t off, void *buf, uint32_t len);
int vfio_config_write(struct vfio_pci *vp, uint32_t off, const void *buf, uint32_t len);
/* Fill vp->pci from the device (IDs, BARs, capabilities) before pci_register. */
int vfio_config_setup(struct vfio_pci *vp, const uint8_t *raw);
/* After pci_register: the shadow, the virtual bytes and write masks. */
void vfio_config_finish(struct vfio_pci *vp, const uint8_t *raw);
void vfio_config_hooks(struct vfio_pci *vp);
/* Forward the command register (the guest's value, INTx kept off). */
void vfio_config_push_command(struct vfio_pci *vp);

/* bar.c */
int vfio_bars_setup(struct vfio_pci *vp, const uint8_t *raw);
void vfio_bars_sync(struct vfio_pci *vp);
void vfio_bars_unmap(struct vfio_pci *vp);
void vfio_bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

/* device.c */
void vfio_msix_update(struct vfio_pci *vp);
void vfio_bad(struct vfio_pci *vp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
