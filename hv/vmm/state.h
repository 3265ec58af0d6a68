/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A device's saved state (docs/device-model.md, docs/save-format.md): one
 * section of bytes per device, written with the state_put_* calls and read
 * back with state_get_* in the same order. Fixed-width little-endian values,
 * no padding, no pointers: the bytes mean the same in another hv-vmm process.
 *
 * Reading is sticky: after the first error (the section ends early, or the
 * loader calls state_in_fail) every get returns 0 and state_in_ok() is false,
 * so a loader reads everything, checks what it read, and tests once at the end.
 * A loader must bounds-check every value before using it: a save file is input.
 */
#ifndef HV_VMM_STATE_H
#define HV_VMM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_WHY_MAX 256

struct state_out {
    uint8_t *buf;
    size_t len, cap;
    bool failed; /* out of memory, or the device refused (state_fail) */
    char why[STATE_WHY_MAX];
};

void state_out_init(struct state_out *o);
void state_out_free(struct state_out *o);
/* Forget the bytes (keep the buffer) for the next section. */
void state_out_clear(struct state_out *o);

void state_put_u8(struct state_out *o, uint8_t v);
void state_put_u16(struct state_out *o, uint16_t v);
void state_put_u32(struct state_out *o, uint32_t v);
void state_put_u64(struct state_out *o, uint64_t v);
void state_put_bool(struct state_out *o, bool v);
void state_put_bytes(struct state_out *o, const void *p, size_t n);

/* The device cannot be saved (a passed-through function...): says why. Returns -1. */
int state_fail(struct state_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct state_in {
    const uint8_t *p;
    size_t len, pos;
    bool failed;
    char why[STATE_WHY_MAX];
};

void state_in_init(struct state_in *in, const void *p, size_t len);

uint8_t state_get_u8(struct state_in *in);
uint16_t state_get_u16(struct state_in *in);
uint32_t state_get_u32(struct state_in *in);
uint64_t state_get_u64(struct state_in *in);
/* Any value other than 0 or 1 is an error. */
bool state_get_bool(struct state_in *in);
void state_get_bytes(struct state_in *in, void *p, size_t n);

/* A value read makes no sense for this device: says which. Returns -1. */
int state_in_fail(struct state_in *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* No error so far. */
bool state_in_ok(const struct state_in *in);
/* Every byte of the section was read and no error: 0; else -1 (why set). */
int state_in_end(struct state_in *in);

#endif
