/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest RAM: one mapping in hv-vmm (private anonymous memory that KSM can
 * merge, or a shared memfd), split into KVM memory slots around the 32-bit
 * PCI hole (docs/memory.md). Every guest physical address that comes from the
 * guest goes through guest_mem_ptr(), which refuses anything outside RAM.
 */
#ifndef HV_VMM_MEM_H
#define HV_VMM_MEM_H

#include <stdbool.h>
#include <stdint.h>

/* The guest-physical memory map (x86, Q35-like). */
#define MEM_LOW_RAM_MAX   UINT64_C(0xC0000000) /* RAM below 4 GiB ends at 3 GiB at most */
#define MEM_PCI_MMIO_BASE UINT64_C(0xC0000000) /* 32-bit BAR window */
#define MEM_PCI_MMIO_SIZE UINT64_C(0x20000000)
#define MEM_PCI_ECAM_BASE UINT64_C(0xE0000000) /* PCIe ECAM, bus 0 only */
#define MEM_PCI_ECAM_SIZE UINT64_C(0x00100000)
#define MEM_IOAPIC_BASE   UINT64_C(0xFEC00000)
#define MEM_LAPIC_BASE    UINT64_C(0xFEE00000)
#define MEM_HIGH_RAM_BASE UINT64_C(0x100000000)

#define MEM_MAX_REGIONS 2

/*
 * KVM memory slot numbers, one table so that no two users take the same one
 * (a second KVM_SET_USER_MEMORY_REGION of a slot silently replaces it): RAM
 * has 0..MEM_MAX_REGIONS-1, 2..5 are kept for firmware images and flash, the
 * Bochs display's framebuffer has 6 (hw/bochs_vbe.c), the --pci BARs start
 * at 8 (vfio/bar.c).
 */
#define MEM_KVM_SLOT_FIRMWARE 2 /* the --firmware image below 4 GiB (x86/boot_firmware.c) */
#define MEM_KVM_SLOT_VBE      6

struct mem_region {
    uint64_t gpa;  /* guest-physical start */
    uint64_t size; /* bytes */
    uint8_t *hva;  /* host address of gpa */
};

struct guest_mem {
    int memfd;        /* the shared memfd, or -1 (private anonymous memory) */
    bool shared;      /* GUEST_MEM_SHARED: RAM is memfd's, mapped MAP_SHARED */
    bool merge;       /* marked MADV_MERGEABLE (KSM) */
    bool file_mapped; /* parts of RAM map a save file privately (--instant-on) */
    uint8_t *base;    /* host mapping of the whole of RAM */
    uint64_t size;    /* RAM bytes in total */
    unsigned nr_regions;
    struct mem_region regions[MEM_MAX_REGIONS];
};

/* guest_mem_init_flags: */
#define GUEST_MEM_SHARED  1u /* a memfd mapped shared (KSM cannot merge it) */
#define GUEST_MEM_NOMERGE 2u /* do not mark RAM mergeable (KSM) */

/*
 * Map ram_size bytes of zeroed RAM, RAM below 4 GiB ending at low_max at most
 * (firmware wants room for its ECAM): private anonymous memory marked
 * MADV_MERGEABLE, unless flags say otherwise. Returns 0 or -errno; logs why.
 */
int guest_mem_init_flags(struct guest_mem *mem, uint64_t ram_size, uint64_t low_max,
                         unsigned flags);
/* The same with the defaults (private, mergeable). */
int guest_mem_init(struct guest_mem *mem, uint64_t ram_size);
int guest_mem_init_split(struct guest_mem *mem, uint64_t ram_size, uint64_t low_max);
void guest_mem_destroy(struct guest_mem *mem);

/*
 * Map fresh RAM over all of it again (after --instant-on mapped parts of a
 * save file there): what a reboot needs before it wipes RAM. 0 or -errno.
 */
int guest_mem_drop_file_maps(struct guest_mem *mem);

/*
 * Give [off, off + len) of RAM (offsets into the mapping, 4 KiB aligned)
 * back to the host; the guest finds zeroes there next. 0, or -EINVAL for a
 * range outside RAM, or -errno of madvise/fallocate.
 */
int guest_mem_discard(const struct guest_mem *mem, uint64_t off, uint64_t len);

/* Register each region as a KVM user memory slot. */
int guest_mem_map_kvm(const struct guest_mem *mem, int vm_fd);

/*
 * Host pointer to [gpa, gpa + len) if that range lies wholly inside one RAM
 * region, else NULL. Overflow-safe; len 0 is allowed (returns the pointer for
 * a valid gpa).
 */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy to/from guest memory; -1 when the range is not RAM. */
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *buf, uint64_t len);
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *buf, uint64_t len);

#endif
