/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ACPI tables for a PC-like VM: RSDP, XSDT, FADT (+FACS), DSDT, MADT, MCFG.
 * They describe the CPUs, the interrupt controllers, the ECAM and the PM1
 * block of hw/pm.c; the DSDT is what the VM's devices say of themselves
 * (device_ops.aml, in the order of the device list).
 *
 * Two forms: written into guest RAM at a fixed address (Linux direct boot),
 * or as relocatable blobs for firmware (x86/acpi_loader.c): the tables at
 * offset 0 of one blob and the RSDP in another, every pointer between them
 * an offset that the firmware's ADD_POINTER turns into an address, every
 * checksum left for its ADD_CHECKSUM.
 */
#ifndef HV_VMM_X86_ACPI_H
#define HV_VMM_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

struct device;

/* What the tables describe. */
struct acpi_config {
    unsigned nr_cpus;
    struct device *devices; /* the DSDT: each one's aml hook, in list order */
    uint64_t ecam_base;     /* the MCFG: where bus 0's ECAM is */
};

/*
 * Build the tables as they will sit at guest address gpa into buf (cap
 * bytes). Returns their size, or 0 when they do not fit. The RSDP is first,
 * at gpa.
 */
size_t acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_config *cfg);

/* Build and copy into guest memory at gpa; 0 or -1. */
int acpi_install(const struct guest_mem *mem, uint64_t gpa, size_t max,
                 const struct acpi_config *cfg);

/* The sum of len bytes mod 256 (0 for a table with a valid checksum). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

/* ---- relocatable blobs (firmware: etc/acpi/tables, etc/acpi/rsdp) ---- */

#define ACPI_RSDP_LEN  36
#define ACPI_MAX_LINKS 16

enum acpi_blob { ACPI_BLOB_TABLES, ACPI_BLOB_RSDP };

/* At offset in blob there is a size-byte offset into target: add target's address. */
struct acpi_pointer {
    uint8_t blob, target, size;
    uint32_t offset;
};

/* The byte at result makes [start, start + len) of blob sum to 0 (after the pointers). */
struct acpi_sum {
    uint8_t blob;
    uint32_t result, start, len;
};

struct acpi_links {
    struct acpi_pointer ptr[ACPI_MAX_LINKS];
    unsigned nr_ptr;
    struct acpi_sum sum[ACPI_MAX_LINKS];
    unsigned nr_sum;
};

/*
 * The tables at offset 0 of tables (cap bytes) and the RSDP, with every
 * pointer relative and every checksum byte 0; links says what to patch.
 * Returns the tables' size, 0 when they do not fit.
 */
size_t acpi_build_blobs(uint8_t *tables, size_t cap, uint8_t rsdp[ACPI_RSDP_LEN],
                        const struct acpi_config *cfg, struct acpi_links *links);

#endif
