/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small AML byte builder for the DSDT (ACPI 6.4, chapter 20): enough for
 * names, integers, strings, packages, buffers, scopes and devices.
 */
#ifndef HV_VMM_X86_AML_H
#define HV_VMM_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
    uint8_t *buf;
    size_t len, cap;
    bool failed; /* out of memory somewhere: the result is unusable */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);

void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);
/* A NameString: "\\_SB_", "PCI0", "_S5" (segments shorter than 4 are padded with '_'). */
void aml_namestring(struct aml *a, const char *name);
/* The shortest integer encoding (Zero, One, Ones, Byte/Word/DWord/QWord prefix). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EisaId ("PNP0A08") as the compressed 32-bit ID. */
void aml_eisaid(struct aml *a, const char *id);

/* Name(name, <object that the caller writes next>). */
void aml_name(struct aml *a, const char *name);

/*
 * Blocks with a PkgLength: open writes the opcode and returns a mark; the
 * caller writes the body; close inserts the length in front of the body.
 */
size_t aml_open(struct aml *a, const uint8_t *op, size_t oplen);
void aml_close(struct aml *a, size_t mark);

size_t aml_scope_open(struct aml *a, const char *name);
size_t aml_device_open(struct aml *a, const char *name);
size_t aml_package_open(struct aml *a, uint8_t nr_elements);
/* Buffer of the given bytes (e.g. a resource template). */
void aml_buffer(struct aml *a, const uint8_t *data, size_t n);

/* An I/O port range a legacy device decodes. */
struct aml_io {
    uint16_t port;
    uint8_t len;
};

/*
 * A legacy (ISA) device under \_SB: _HID as an EisaId ("PNP0501"), _UID
 * (uid < 0: none) and a _CRS of its port ranges (IO, Decode16, fixed) and
 * its ISA IRQs (IRQNoFlags: edge, active high).
 */
void aml_isa_device(struct aml *a, const char *name, const char *hid, int uid,
                    const struct aml_io *io, unsigned nr_io, const uint8_t *irqs, unsigned nr_irqs);

#endif
