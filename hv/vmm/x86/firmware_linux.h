/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Linux booted by the firmware (--firmware with --kernel): the kernel's
 * setup part, its protected-mode part, the initrd and the command line as
 * the fw_cfg items that QEMU's Linux loader option ROM reads, and that ROM
 * (Debian's qemu-system-data ships it) as fw_cfg file genroms/linuxboot_dma.bin,
 * which SeaBIOS runs and boots first. The ROM loads each part where the
 * items say, follows the boot protocol's real-mode entry, and the kernel
 * finds hv's ACPI tables where the firmware's table loader put them.
 */
#ifndef HV_VMM_X86_FIRMWARE_LINUX_H
#define HV_VMM_X86_FIRMWARE_LINUX_H

#include <stddef.h>

#include "mem.h"

struct boot_files;
struct fw_cfg;

#define FIRMWARE_LINUXBOOT_ROM  "/usr/share/qemu/linuxboot_dma.bin"
#define FIRMWARE_LINUXBOOT_FILE "genroms/linuxboot_dma.bin"
/* Its boot order entry: SeaBIOS names a fw_cfg option ROM /rom@FILE. */
#define FIRMWARE_LINUXBOOT_BOOTORDER "/rom@" FIRMWARE_LINUXBOOT_FILE "\n"

/* Where the loader puts the parts (boot protocol 2.02+: setup low, kernel at 1 MiB). */
#define FIRMWARE_LINUX_SETUP_GPA   UINT64_C(0x10000)
#define FIRMWARE_LINUX_CMDLINE_GPA UINT64_C(0x20000)
#define FIRMWARE_LINUX_CMDLINE_MAX UINT64_C(0x10000)
#define FIRMWARE_LINUX_KERNEL_GPA  UINT64_C(0x100000)

/*
 * Before KVM: is the option ROM at rom there and an option ROM, and the
 * kernel a bzImage (an ELF vmlinux has no real-mode entry)? 0, or -1 with
 * one sentence in err.
 */
int firmware_linux_check(const char *kernel, const char *rom, char *err, size_t errlen);

/* The items and the ROM file. 0, or -1 after logging what is wrong with which file. */
int firmware_linux_fw_cfg(struct fw_cfg *fc, const struct guest_mem *mem,
                          const struct boot_files *files, const char *cmdline, const char *rom);

#endif
