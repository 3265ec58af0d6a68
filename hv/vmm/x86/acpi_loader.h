/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ACPI tables for firmware (docs/hvm.md): fw_cfg files etc/acpi/tables
 * and etc/acpi/rsdp, relocatable (x86/acpi.c's blobs), and etc/table-loader,
 * the script of 128-byte commands (QEMU's "BIOS linker/loader" format, which
 * SeaBIOS and OVMF execute) that puts them into guest RAM: ALLOCATE each
 * blob, ADD_POINTER for every pointer between tables, ADD_CHECKSUM for each
 * table once its pointers are patched.
 */
#ifndef HV_VMM_X86_ACPI_LOADER_H
#define HV_VMM_X86_ACPI_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "x86/acpi.h"

struct fw_cfg;
struct vm;

#define ACPI_FILE_TABLES "etc/acpi/tables"
#define ACPI_FILE_RSDP   "etc/acpi/rsdp"
#define ACPI_FILE_LOADER "etc/table-loader"

/* Commands: u32 command, then a union of 124 bytes; integers little-endian. */
#define ACPI_LOADER_ENTRY_LEN    128
#define ACPI_LOADER_FILE_LEN     56 /* a fw_cfg file name with its NUL */
#define ACPI_LOADER_ALLOCATE     1  /* file[56], u32 align, u8 zone */
#define ACPI_LOADER_ADD_POINTER  2  /* dest[56], src[56], u32 offset, u8 size */
#define ACPI_LOADER_ADD_CHECKSUM 3  /* file[56], u32 result, u32 start, u32 length */
#define ACPI_LOADER_ZONE_HIGH    1  /* anywhere in RAM below 4 GiB */
#define ACPI_LOADER_ZONE_FSEG    2  /* 0xE0000-0xFFFFF, where an OS looks for the RSDP */

/* Two ALLOCATEs, then one command per link. */
#define ACPI_LOADER_MAX_LEN ((2 + 2 * ACPI_MAX_LINKS) * ACPI_LOADER_ENTRY_LEN)

/* The file name of a blob of x86/acpi.h. */
const char *acpi_blob_file(enum acpi_blob blob);

/* The script for these links into out (cap bytes); its length, 0 when it does not fit. */
size_t acpi_loader_script(const struct acpi_links *links, uint8_t *out, size_t cap);

/*
 * The three files for this VM's devices and CPUs. The tables are built
 * again when the firmware first selects them after a reset, so the MCFG
 * says where the firmware has put the ECAM by then. 0 or -1 (logged).
 */
int acpi_fw_cfg(struct fw_cfg *fc, struct vm *vm);

#endif
