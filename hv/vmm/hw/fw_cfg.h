/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The firmware configuration device (QEMU's fw_cfg interface, as OVMF and
 * SeaBIOS read it; docs/hvm.md): a selector port, a byte-wide data port and
 * a DMA address register, over numbered items and named files. The contents
 * are built by hv-vmm from its command line before the guest runs and never
 * change; the guest can only read them.
 */
#ifndef HV_VMM_HW_FW_CFG_H
#define HV_VMM_HW_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

struct vm;
struct state_in;
struct state_out;

/* The x86 ports: selector (16-bit, 0x510), data (0x511), DMA address (0x514-0x51B, big-endian). */
#define FW_CFG_PORT     0x510
#define FW_CFG_PORT_LEN 12
#define FW_CFG_DATA_OFF 1
#define FW_CFG_DMA_OFF  4 /* high half; the low half at 8 starts the transfer */

/* Item keys (docs/hvm.md). */
#define FW_CFG_SIGNATURE      0x0000
#define FW_CFG_ID             0x0001
#define FW_CFG_RAM_SIZE       0x0003
#define FW_CFG_NOGRAPHIC      0x0004
#define FW_CFG_NB_CPUS        0x0005
#define FW_CFG_KERNEL_ADDR    0x0007 /* the Linux loader's items (x86/firmware_linux.c) */
#define FW_CFG_KERNEL_SIZE    0x0008
#define FW_CFG_KERNEL_CMDLINE 0x0009
#define FW_CFG_INITRD_ADDR    0x000a
#define FW_CFG_INITRD_SIZE    0x000b
#define FW_CFG_BOOT_MENU      0x000e
#define FW_CFG_MAX_CPUS       0x000f
#define FW_CFG_KERNEL_DATA    0x0011
#define FW_CFG_INITRD_DATA    0x0012
#define FW_CFG_CMDLINE_ADDR   0x0013
#define FW_CFG_CMDLINE_SIZE   0x0014
#define FW_CFG_CMDLINE_DATA   0x0015
#define FW_CFG_SETUP_ADDR     0x0016
#define FW_CFG_SETUP_SIZE     0x0017
#define FW_CFG_SETUP_DATA     0x0018
#define FW_CFG_FILE_DIR       0x0019
#define FW_CFG_FILE_FIRST     0x0020
#define FW_CFG_MAX_FILES      32
#define FW_CFG_ARCH_LOCAL     0x8000 /* x86 items: 0x8000 | n */
#define FW_CFG_ARCH_MAX       8
#define FW_CFG_IRQ0_OVERRIDE  (FW_CFG_ARCH_LOCAL | 2)

#define FW_CFG_ID_TRADITIONAL 0x1
#define FW_CFG_ID_DMA         0x2
#define FW_CFG_NAME_MAX       56 /* with the NUL */

/* Control bits of a DMA access (FWCfgDmaAccess.control, big-endian in guest memory). */
#define FW_CFG_DMA_ERROR      0x01
#define FW_CFG_DMA_READ       0x02
#define FW_CFG_DMA_SKIP       0x04
#define FW_CFG_DMA_SELECT     0x08
#define FW_CFG_DMA_WRITE      0x10
#define FW_CFG_DMA_ACCESS_LEN 16 /* u32 control, u32 length, u64 address */
/* What reading the DMA address register returns: "QEMU CFG". */
#define FW_CFG_DMA_SIGNATURE UINT64_C(0x51454d5520434647)

struct fw_cfg;

/*
 * A device reading and writing guest memory through mem (DMA). Holds the
 * signature, ID (with DMA) and an empty file directory. NULL: no memory.
 */
struct fw_cfg *fw_cfg_new(const struct guest_mem *mem);
void fw_cfg_free(struct fw_cfg *fc);

/* A numbered item (a copy of data). 0, or -1 for a key that is not a plain item. */
int fw_cfg_add_item(struct fw_cfg *fc, uint16_t key, const void *data, size_t len);
int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t v); /* little-endian */
int fw_cfg_add_u32(struct fw_cfg *fc, uint16_t key, uint32_t v);
int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t v);

/*
 * A named file (a copy of data) in the directory, with the next free key.
 * 0, or -1 (logged) when the name is empty, too long or already there, or the
 * directory is full.
 */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len);

/*
 * The same for a file whose contents are built again when the guest first
 * selects it after a reset (or at all): update(opaque, data, len) rewrites
 * the len bytes in place, on the vCPU thread with the device's lock held.
 * The size stays what the directory says.
 */
typedef void (*fw_cfg_update_fn)(void *opaque, uint8_t *data, size_t len);
int fw_cfg_add_file_update(struct fw_cfg *fc, const char *name, const void *data, size_t len,
                           fw_cfg_update_fn update, void *opaque);

/* The port handler (bus.h's io_handler_fn) of the 12 ports at FW_CFG_PORT. */
void fw_cfg_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

/* Power-on state of the registers (selector 0, offset 0, no DMA address). */
void fw_cfg_reset(struct fw_cfg *fc);

/* Selector, offset and the DMA address's high half; the contents come from the command line. */
void fw_cfg_save(struct fw_cfg *fc, struct state_out *out);
int fw_cfg_load(struct fw_cfg *fc, struct state_in *in);

/* Register the ports and put the device on the VM's list as "fw-cfg" (owns fc). 0 or -1. */
int fw_cfg_attach(struct vm *vm, struct fw_cfg *fc);

#endif
