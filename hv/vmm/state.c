// SPDX-License-Identifier: GPL-2.0-or-later
/* Writing and reading a device's state section (state.h). */
#include "state.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void state_out_init(struct state_out *o)
{
    memset(o, 0, sizeof(*o));
}

void state_out_free(struct state_out *o)
{
    free(o->buf);
    state_out_init(o);
}

void state_out_clear(struct state_out *o)
{
    o->len = 0;
    o->failed = false;
    o->why[0] = '\0';
}

void state_put_bytes(struct state_out *o, const void *p, size_t n)
{
    if (o->failed || n == 0)
        return;
    if (n > o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap - o->len < n) {
            if (cap > SIZE_MAX / 2) {
                state_fail(o, "the device's state is too large");
                return;
            }
            cap *= 2;
        }
        uint8_t *b = realloc(o->buf, cap);
        if (!b) {
            state_fail(o, "out of memory");
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void put_le(struct state_out *o, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    state_put_bytes(o, b, n);
}

void state_put_u8(struct state_out *o, uint8_t v)
{
    put_le(o, v, 1);
}

void state_put_u16(struct state_out *o, uint16_t v)
{
    put_le(o, v, 2);
}

void state_put_u32(struct state_out *o, uint32_t v)
{
    put_le(o, v, 4);
}

void state_put_u64(struct state_out *o, uint64_t v)
{
    put_le(o, v, 8);
}

void state_put_bool(struct state_out *o, bool v)
{
    put_le(o, v ? 1 : 0, 1);
}

int state_fail(struct state_out *o, const char *fmt, ...)
{
    if (!o->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(o->why, sizeof(o->why), fmt, ap);
        va_end(ap);
        o->failed = true;
    }
    return -1;
}

void state_in_init(struct state_in *in, const void *p, size_t len)
{
    memset(in, 0, sizeof(*in));
    in->p = p;
    in->len = len;
}

void state_get_bytes(struct state_in *in, void *p, size_t n)
{
    if (in->failed || n > in->len - in->pos) {
        if (!in->failed)
            state_in_fail(in, "the section ends early (%zu bytes left, %zu wanted)",
                          in->len - in->pos, n);
        memset(p, 0, n);
        return;
    }
    memcpy(p, in->p + in->pos, n);
    in->pos += n;
}

static uint64_t get_le(struct state_in *in, unsigned n)
{
    uint8_t b[8];
    uint64_t v = 0;

    state_get_bytes(in, b, n);
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

uint8_t state_get_u8(struct state_in *in)
{
    return (uint8_t)get_le(in, 1);
}

uint16_t state_get_u16(struct state_in *in)
{
    return (uint16_t)get_le(in, 2);
}

uint32_t state_get_u32(struct state_in *in)
{
    return (uint32_t)get_le(in, 4);
}

uint64_t state_get_u64(struct state_in *in)
{
    return get_le(in, 8);
}

bool state_get_bool(struct state_in *in)
{
    uint8_t v = state_get_u8(in);
    if (v > 1)
        state_in_fail(in, "a flag holds %u, not 0 or 1", v);
    return v == 1;
}

int state_in_fail(struct state_in *in, const char *fmt, ...)
{
    if (!in->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(in->why, sizeof(in->why), fmt, ap);
        va_end(ap);
        in->failed = true;
    }
    return -1;
}

bool state_in_ok(const struct state_in *in)
{
    return !in->failed;
}

int state_in_end(struct state_in *in)
{
    if (!in->failed && in->pos != in->len)
        state_in_fail(in, "%zu bytes of the section were not read", in->len - in->pos);
    return in->failed ? -1 : 0;
}
