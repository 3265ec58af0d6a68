/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Firmware boot (--firmware): a BIOS image (Debian's SeaBIOS) mapped
 * read-only at the top of 4 GiB, its last 128 KiB also at 0xE0000-0xFFFFF,
 * and the fw_cfg contents it reads (docs/hvm.md). The boot vCPU starts at
 * the reset vector, as KVM creates it.
 */
#ifndef HV_VMM_X86_BOOT_FIRMWARE_H
#define HV_VMM_X86_BOOT_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

struct fw_cfg;

#define FIRMWARE_MIN_SIZE (UINT64_C(64) << 10)
#define FIRMWARE_ALIGN    (UINT64_C(64) << 10)
/*
 * KVM's TSS and identity-map pages (vm.c) sit just below 0xFFFC0000: bigger
 * images (OVMF's 4 MiB flash) need them moved first.
 */
#define FIRMWARE_MAX_SIZE  (UINT64_C(256) << 10)
#define FIRMWARE_LOW_ALIAS (UINT64_C(128) << 10) /* the top of the image, below 1 MiB */
#define FIRMWARE_LOW_END   UINT64_C(0x100000)
/* Low RAM ends here with firmware: the PCIe ECAM window SeaBIOS and OVMF put at 0xB0000000. */
#define FIRMWARE_LOW_RAM_MAX UINT64_C(0xB0000000)
#define FIRMWARE_SERCON_PORT 0x3f8 /* SeaBIOS's screen text goes to COM1 */
/* How long SeaBIOS waits after "No bootable device" before it resets the VM
 * (its own default is 60 s): soon enough to pick up a disk or ISO given meanwhile. */
#define FIRMWARE_BOOT_FAIL_WAIT_MS 5000

struct firmware {
    uint8_t *rom; /* the image, size bytes (page-aligned mapping) */
    uint64_t size;
    uint64_t gpa; /* 4 GiB - size */
};

/* Is this file a usable firmware image? Before KVM is touched; 0, or -1 with err. */
int firmware_check(const char *path, char *err, size_t errlen);

/* Read the image (checked again). 0, or -1 after logging why. */
int firmware_open(struct firmware *fw, const char *path);
void firmware_close(struct firmware *fw);

/* The image as a read-only KVM memory slot below 4 GiB. 0 or -errno. */
int firmware_map(const struct firmware *fw, int vm_fd, unsigned slot);

/* Copy the image's top into RAM below 1 MiB (at start and at each reboot). 0 or -1. */
int firmware_load(const struct firmware *fw, const struct guest_mem *mem);

/*
 * The fw_cfg contents for this VM: memory map, CPUs, serial console, boot
 * order (newline-separated device paths, may be NULL). 0 or -1.
 */
int firmware_fw_cfg(struct fw_cfg *fc, const struct guest_mem *mem, unsigned nr_cpus,
                    const char *bootorder);

/* The RAM entries of etc/e820 (20-byte records); returns the number written. */
unsigned firmware_e820(const struct guest_mem *mem, uint8_t *out, unsigned max);

#endif
