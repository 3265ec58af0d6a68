/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small AML reader for the tests: walks the scopes, devices and names that
 * x86/aml.c writes, checks that every length stays inside its parent, and
 * lists each Device with its path and _HID, and each Name at the root.
 */
#ifndef HV_VMM_TESTS_AML_DECODE_H
#define HV_VMM_TESTS_AML_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define AMLD_MAX 32

struct amld_device {
    char path[64]; /* "\\_SB_.PCI0" */
    char hid[16];  /* "PNP0A08", "" without _HID */
    unsigned uid;
    bool has_crs;
};

struct amld {
    struct amld_device dev[AMLD_MAX];
    unsigned nr_dev;
    char names[AMLD_MAX][64]; /* every Name, with its scope: "\\_S5_", "\\_SB_.COM1._HID" */
    unsigned nr_names;
    bool bad; /* something did not decode */
};

/* PkgLength at p (end: one past the enclosing data); the end of the package, or NULL. */
static const uint8_t *amld_pkg(const uint8_t *p, const uint8_t *end, const uint8_t **body)
{
    if (p >= end)
        return NULL;
    unsigned n = (unsigned)(p[0] >> 6) + 1;
    if (p + n > end)
        return NULL;
    size_t len = n == 1 ? p[0] & 0x3f : p[0] & 0x0f;
    for (unsigned i = 1; i < n; i++)
        len |= (size_t)p[i] << (4 + 8 * (i - 1));
    if (len < n || (size_t)(end - p) < len)
        return NULL;
    *body = p + n;
    return p + len;
}

/* A NameString into out (segments joined by '.'); returns the byte after it, or NULL. */
static const uint8_t *amld_name(const uint8_t *p, const uint8_t *end, char *out, size_t cap)
{
    size_t o = 0;
    unsigned segs = 1;
    out[0] = 0;
    while (p < end && (*p == '\\' || *p == '^') && o + 2 < cap) {
        out[o++] = (char)*p++;
        out[o] = 0;
    }
    if (p >= end)
        return NULL;
    if (*p == 0x00)
        return p + 1;
    if (*p == 0x2e) {
        segs = 2;
        p++;
    } else if (*p == 0x2f) {
        if (p + 1 >= end)
            return NULL;
        segs = p[1];
        p += 2;
    }
    for (unsigned s = 0; s < segs; s++) {
        if (end - p < 4 || o + 6 > cap)
            return NULL;
        if (s)
            out[o++] = '.';
        memcpy(out + o, p, 4);
        o += 4;
        out[o] = 0;
        p += 4;
    }
    return p;
}

static void amld_join(char *out, size_t cap, const char *scope, const char *name)
{
    if (name[0] == '\\' || !scope[0])
        snprintf(out, cap, "%s", name);
    else if (strcmp(scope, "\\") == 0)
        snprintf(out, cap, "\\%s", name);
    else
        snprintf(out, cap, "%s.%s", scope, name);
}

/* A data object (integer, string, buffer, package, EisaId); its end, or NULL. */
static const uint8_t *amld_data(const uint8_t *p, const uint8_t *end, uint64_t *ival,
                                const char **sval)
{
    const uint8_t *body;
    if (p >= end)
        return NULL;
    *sval = NULL;
    switch (*p) {
    case 0x00:
    case 0x01:
    case 0xff:
        *ival = *p == 0xff ? UINT64_MAX : *p;
        return p + 1;
    case 0x0a:
    case 0x0b:
    case 0x0c:
    case 0x0e: {
        unsigned n = *p == 0x0a ? 1 : *p == 0x0b ? 2 : *p == 0x0c ? 4 : 8;
        if (end - p < (ptrdiff_t)(1 + n))
            return NULL;
        *ival = 0;
        for (unsigned i = 0; i < n; i++)
            *ival |= (uint64_t)p[1 + i] << (8 * i);
        return p + 1 + n;
    }
    case 0x0d: {
        const uint8_t *z = memchr(p + 1, 0, (size_t)(end - p - 1));
        *sval = (const char *)p + 1;
        return z ? z + 1 : NULL;
    }
    case 0x11:
    case 0x12:
        return amld_pkg(p + 1, end, &body);
    }
    return NULL;
}

/* "PNP0A08" from a compressed EISA ID (as aml_eisaid writes it, a DWord). */
static void amld_eisa(uint32_t v, char out[8])
{
    uint32_t be = (v & 0xff) << 24 | (v & 0xff00) << 8 | (v >> 8 & 0xff00) | v >> 24;
    out[0] = (char)('@' + (be >> 26 & 0x1f));
    out[1] = (char)('@' + (be >> 21 & 0x1f));
    out[2] = (char)('@' + (be >> 16 & 0x1f));
    snprintf(out + 3, 5, "%04X", be & 0xffff);
}

static void amld_terms(struct amld *d, const uint8_t *p, const uint8_t *end, const char *scope,
                       struct amld_device *in_dev)
{
    while (p < end && !d->bad) {
        char name[64], path[64];
        const uint8_t *body, *next;
        if (*p == 0x10 || (*p == 0x5b && p + 1 < end && p[1] == 0x82)) {
            bool dev = *p == 0x5b;
            next = amld_pkg(p + (dev ? 2 : 1), end, &body);
            if (!next || !(body = amld_name(body, next, name, sizeof(name)))) {
                d->bad = true;
                return;
            }
            amld_join(path, sizeof(path), scope, name);
            struct amld_device *nd = NULL;
            if (dev) {
                if (d->nr_dev == AMLD_MAX) {
                    d->bad = true;
                    return;
                }
                nd = &d->dev[d->nr_dev++];
                memset(nd, 0, sizeof(*nd));
                snprintf(nd->path, sizeof(nd->path), "%s", path);
            }
            amld_terms(d, body, next, path, dev ? nd : in_dev);
            p = next;
        } else if (*p == 0x08) {
            if (!(next = amld_name(p + 1, end, name, sizeof(name)))) {
                d->bad = true;
                return;
            }
            uint64_t v = 0;
            const char *s;
            const uint8_t *after = amld_data(next, end, &v, &s);
            if (!after) {
                d->bad = true;
                return;
            }
            amld_join(path, sizeof(path), scope, name);
            if (d->nr_names < AMLD_MAX)
                snprintf(d->names[d->nr_names++], sizeof(d->names[0]), "%s", path);
            if (in_dev && strcmp(name, "_HID") == 0) {
                if (s)
                    snprintf(in_dev->hid, sizeof(in_dev->hid), "%s", s);
                else
                    amld_eisa((uint32_t)v, in_dev->hid);
            }
            if (in_dev && strcmp(name, "_UID") == 0)
                in_dev->uid = (unsigned)v;
            if (in_dev && strcmp(name, "_CRS") == 0)
                in_dev->has_crs = true;
            p = after;
        } else {
            d->bad = true; /* an opcode x86/aml.c does not write */
            return;
        }
    }
}

/* Decode the body of a DSDT (after its 36-byte header). */
static void amld_decode(struct amld *d, const uint8_t *aml, size_t len)
{
    memset(d, 0, sizeof(*d));
    amld_terms(d, aml, aml + len, "", NULL);
}

static const struct amld_device *amld_find_hid(const struct amld *d, const char *hid)
{
    for (unsigned i = 0; i < d->nr_dev; i++)
        if (strcmp(d->dev[i].hid, hid) == 0)
            return &d->dev[i];
    return NULL;
}

static bool amld_has_name(const struct amld *d, const char *path)
{
    for (unsigned i = 0; i < d->nr_names; i++)
        if (strcmp(d->names[i], path) == 0)
            return true;
    return false;
}

#endif
