/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "aml.h"

#include <stdlib.h>
#include <string.h>

#define AML_ZERO         0x00
#define AML_ONE          0x01
#define AML_NAME         0x08
#define AML_BYTE_PREFIX  0x0a
#define AML_WORD_PREFIX  0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING       0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE        0x10
#define AML_BUFFER       0x11
#define AML_PACKAGE      0x12
#define AML_EXT_PREFIX   0x5b
#define AML_DEVICE       0x82
#define AML_ONES         0xff

void aml_init(struct aml *a)
{
    memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

static bool reserve(struct aml *a, size_t n)
{
    if (a->failed)
        return false;
    if (a->len + n <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + n)
        cap *= 2;
    uint8_t *b = realloc(a->buf, cap);
    if (!b) {
        a->failed = true;
        return false;
    }
    a->buf = b;
    a->cap = cap;
    return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
    if (!reserve(a, n))
        return;
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

void aml_namestring(struct aml *a, const char *name)
{
    if (*name == '\\') {
        aml_byte(a, '\\');
        name++;
    }
    char seg[4] = {'_', '_', '_', '_'};
    for (int i = 0; i < 4 && name[i]; i++)
        seg[i] = name[i];
    aml_bytes(a, seg, 4);
}

void aml_integer(struct aml *a, uint64_t v)
{
    uint8_t b[9];
    size_t n;

    if (v == 0) {
        aml_byte(a, AML_ZERO);
        return;
    }
    if (v == 1) {
        aml_byte(a, AML_ONE);
        return;
    }
    if (v <= 0xff) {
        b[0] = AML_BYTE_PREFIX;
        n = 1;
    } else if (v <= 0xffff) {
        b[0] = AML_WORD_PREFIX;
        n = 2;
    } else if (v <= 0xffffffff) {
        b[0] = AML_DWORD_PREFIX;
        n = 4;
    } else {
        b[0] = AML_QWORD_PREFIX;
        n = 8;
    }
    for (size_t i = 0; i < n; i++)
        b[1 + i] = (uint8_t)(v >> (8 * i));
    aml_bytes(a, b, 1 + n);
}

void aml_string(struct aml *a, const char *s)
{
    aml_byte(a, AML_STRING);
    aml_bytes(a, s, strlen(s) + 1);
}

static uint8_t hexval(char c)
{
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0');
    if (c >= 'A' && c <= 'F')
        return (uint8_t)(c - 'A' + 10);
    if (c >= 'a' && c <= 'f')
        return (uint8_t)(c - 'a' + 10);
    return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
    /* Three letters in 5 bits each, then four hex digits, stored big-endian. */
    uint16_t v = (uint16_t)(((id[0] & 0x1f) << 10) | ((id[1] & 0x1f) << 5) | (id[2] & 0x1f));
    uint8_t b[5] = {
        AML_DWORD_PREFIX,
        (uint8_t)(v >> 8),
        (uint8_t)v,
        (uint8_t)(hexval(id[3]) << 4 | hexval(id[4])),
        (uint8_t)(hexval(id[5]) << 4 | hexval(id[6])),
    };
    aml_bytes(a, b, sizeof(b));
}

void aml_name(struct aml *a, const char *name)
{
    aml_byte(a, AML_NAME);
    aml_namestring(a, name);
}

size_t aml_open(struct aml *a, const uint8_t *op, size_t oplen)
{
    aml_bytes(a, op, oplen);
    return a->len;
}

void aml_close(struct aml *a, size_t mark)
{
    if (a->failed)
        return;
    size_t body = a->len - mark;
    /* PkgLength counts its own bytes: 1 byte up to 63, else 2-4 with 4+8k bits. */
    size_t n = body + 1 < 64 ? 1 : body + 2 < (1u << 12) ? 2 : body + 3 < (1u << 20) ? 3 : 4;
    size_t total = body + n;
    uint8_t enc[4];

    if (n == 1) {
        enc[0] = (uint8_t)total;
    } else {
        enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
        for (size_t i = 1; i < n; i++)
            enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    }
    if (!reserve(a, n))
        return;
    memmove(a->buf + mark + n, a->buf + mark, body);
    memcpy(a->buf + mark, enc, n);
    a->len += n;
}

size_t aml_scope_open(struct aml *a, const char *name)
{
    static const uint8_t op[] = {AML_SCOPE};
    size_t mark = aml_open(a, op, sizeof(op));
    aml_namestring(a, name);
    return mark;
}

size_t aml_device_open(struct aml *a, const char *name)
{
    static const uint8_t op[] = {AML_EXT_PREFIX, AML_DEVICE};
    size_t mark = aml_open(a, op, sizeof(op));
    aml_namestring(a, name);
    return mark;
}

size_t aml_package_open(struct aml *a, uint8_t nr_elements)
{
    static const uint8_t op[] = {AML_PACKAGE};
    size_t mark = aml_open(a, op, sizeof(op));
    aml_byte(a, nr_elements);
    return mark;
}

void aml_buffer(struct aml *a, const uint8_t *data, size_t n)
{
    static const uint8_t op[] = {AML_BUFFER};
    size_t mark = aml_open(a, op, sizeof(op));
    aml_integer(a, n);
    aml_bytes(a, data, n);
    aml_close(a, mark);
}

void aml_isa_device(struct aml *a, const char *name, const char *hid, int uid,
                    const struct aml_io *io, unsigned nr_io, const uint8_t *irqs, unsigned nr_irqs)
{
    uint8_t r[8 * 8 + 3 + 2];
    size_t n = 0;

    for (unsigned i = 0; i < nr_io && n + 8 <= sizeof(r) - 5; i++) {
        /* IO(Decode16, port, port, 1, len) */
        const uint8_t d[] = {0x47,
                             0x01,
                             (uint8_t)io[i].port,
                             (uint8_t)(io[i].port >> 8),
                             (uint8_t)io[i].port,
                             (uint8_t)(io[i].port >> 8),
                             0x01,
                             io[i].len};
        memcpy(r + n, d, sizeof(d));
        n += sizeof(d);
    }
    if (nr_irqs) {
        uint16_t mask = 0;
        for (unsigned i = 0; i < nr_irqs; i++)
            mask |= (uint16_t)(1u << (irqs[i] & 15));
        r[n++] = 0x22; /* IRQNoFlags */
        r[n++] = (uint8_t)mask;
        r[n++] = (uint8_t)(mask >> 8);
    }
    r[n++] = 0x79; /* end tag, checksum 0 */
    r[n++] = 0x00;

    size_t sb = aml_scope_open(a, "\\_SB_");
    size_t dev = aml_device_open(a, name);
    aml_name(a, "_HID");
    aml_eisaid(a, hid);
    if (uid >= 0) {
        aml_name(a, "_UID");
        aml_integer(a, (uint64_t)uid);
    }
    aml_name(a, "_CRS");
    aml_buffer(a, r, n);
    aml_close(a, dev);
    aml_close(a, sb);
}
