/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ACPI tables for a PC-like VM: RSDP, XSDT, FADT (+FACS), DSDT, MADT, MCFG.
 * They describe the CPUs, the interrupt controllers, the PCIe host bridge and
 * the PM1 block of hw/pm.c (poweroff through \_S5, the power button).
 */
#ifndef HV_VMM_X86_ACPI_H
#define HV_VMM_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

/*
 * Build the tables as they will sit at guest address gpa into buf (cap
 * bytes). Returns their size, or 0 when they do not fit. The RSDP is first,
 * at gpa.
 */
size_t acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, unsigned nr_cpus);

/* Build and copy into guest memory at gpa; 0 or -1. */
int acpi_install(const struct guest_mem *mem, uint64_t gpa, size_t max, unsigned nr_cpus);

/* The sum of len bytes mod 256 (0 for a table with a valid checksum). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
