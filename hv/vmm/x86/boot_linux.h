/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Direct Linux boot: a bzImage through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst), or an ELF vmlinux through the PVH entry.
 */
#ifndef HV_VMM_X86_BOOT_LINUX_H
#define HV_VMM_X86_BOOT_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

/* Where the loader puts things in low guest memory (see docs/vmm.md). */
#define BOOT_GDT_GPA        UINT64_C(0x500)
#define BOOT_START_INFO_GPA UINT64_C(0x6000) /* PVH hvm_start_info, memmap, modules */
#define BOOT_ZERO_PAGE_GPA  UINT64_C(0x7000)
#define BOOT_STACK_GPA      UINT64_C(0x8ff0) /* Linux's entry pushes before it sets a stack */
#define BOOT_PML4_GPA       UINT64_C(0x9000) /* then the PDPT and four PDs: 4 GiB identity */
#define BOOT_CMDLINE_GPA    UINT64_C(0x20000)
#define BOOT_CMDLINE_MAX    UINT64_C(0x10000)
#define BOOT_EBDA_GPA       UINT64_C(0x9fc00) /* reserved up to 1 MiB from here... */
#define BOOT_BIOS_GPA       UINT64_C(0xe0000) /* ...RAM again in 0xA0000-0xE0000 is not used */
#define BOOT_ACPI_GPA       UINT64_C(0xe0000) /* ACPI tables, RSDP first */
#define BOOT_ACPI_MAX       UINT64_C(0x20000)
#define BOOT_KERNEL_GPA     UINT64_C(0x100000)

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_MAX      32

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

/* The guest's memory map from its RAM regions; returns the number of entries. */
unsigned e820_build(const struct guest_mem *mem, struct e820_entry *out, unsigned max);

/* What the loader found in a bzImage's setup header. */
struct bzimage_info {
    uint16_t version;
    uint8_t setup_sects;
    uint8_t loadflags;
    uint16_t xloadflags;
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
    uint32_t init_size;
    size_t payload_offset; /* the protected-mode kernel in the file */
    size_t header_end;     /* copy [0x1F1, header_end) into the zero page */
};

/* Check a bzImage; 0, or -1 with *err set to a sentence. */
int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *bi, const char **err);

/* The PVH entry of an ELF vmlinux (XEN_ELFNOTE_PHYS32_ENTRY), or 0 when absent. */
uint32_t pvh_find_entry(const uint8_t *img, size_t len);

enum boot_kind {
    BOOT_LINUX64, /* bzImage, 64-bit entry: long mode, RSI = zero page */
    BOOT_PVH,     /* vmlinux, PVH entry: 32-bit protected mode, EBX = start info */
};

struct boot_info {
    enum boot_kind kind;
    uint64_t entry;
    uint64_t params_gpa;
};

/*
 * The kernel and initrd, opened once when the VM is created: a reboot in
 * place reads them again through these fds, after the sandbox has taken
 * away the right to open files.
 */
struct boot_files {
    const char *kernel, *initrd; /* names, for messages; initrd NULL: none */
    int kernel_fd, initrd_fd;    /* -1: not open */
};
/* A whole file (kernel or initrd) from its fd, at most max bytes (malloc'd); NULL logged. */
uint8_t *boot_read_file(const char *what, const char *path, int fd, uint64_t max, size_t *len);

/* 0, or -1 after logging which file cannot be opened. */
int boot_files_open(struct boot_files *f, const char *kernel, const char *initrd);
void boot_files_close(struct boot_files *f);

/*
 * Load the kernel (bzImage or vmlinux with a PVH note), the initrd and the
 * command line into guest memory and build the zero page / start info.
 * rsdp_gpa: where the ACPI tables are (0: none). Returns 0 or -1 after
 * logging what is wrong with which file.
 */
int boot_linux_load(const struct guest_mem *mem, const struct boot_files *f, const char *cmdline,
                    uint64_t rsdp_gpa, struct boot_info *out);

/*
 * Can this file be booted at all (a bzImage, or an ELF left to the loader)?
 * Checked before KVM is touched, so a wrong file gets its own message.
 * 0, or -1 with a sentence in err.
 */
int boot_kernel_check(const char *path, char *err, size_t errlen);

/* Put the boot vCPU in the entry state for info. */
int boot_linux_setup_vcpu(int vcpu_fd, const struct boot_info *info);

#endif
