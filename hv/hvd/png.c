/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A PNG writer for vm.screenshot: 8-bit RGB, every row with the "Up" filter,
 * one zlib stream in one IDAT chunk (PNG 1.2 spec; zlib is already used by
 * hv-vmm's qcow2 code).
 */
#include "png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Appends a chunk (length, type, data, CRC of type and data) at out; returns its size. */
static size_t chunk(uint8_t *out, const char type[4], const uint8_t *data, uint32_t len)
{
    put32(out, len);
    memcpy(out + 4, type, 4);
    if (len)
        memmove(out + 8, data, len);
    put32(out + 8 + len, (uint32_t)crc32(0, out + 4, len + 4));
    return 12 + (size_t)len;
}

/* The image as PNG scanlines: a filter byte (2, Up) then the row minus the row above. */
static uint8_t *scanlines(const uint8_t *px, uint32_t w, uint32_t h, uint32_t stride, size_t *len)
{
    size_t row = 1 + (size_t)w * 3;
    uint8_t *raw = malloc(row * h), *prev = calloc(1, row), *cur = malloc(row);

    if (!raw || !prev || !cur)
        goto fail;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *o = raw + row * y;
        for (uint32_t x = 0; x < w; x++) {
            uint32_t v;
            memcpy(&v, px + (size_t)y * stride + (size_t)x * 4, 4);
            cur[1 + x * 3] = (uint8_t)(v >> 16);
            cur[2 + x * 3] = (uint8_t)(v >> 8);
            cur[3 + x * 3] = (uint8_t)v;
        }
        o[0] = 2;
        for (size_t i = 1; i < row; i++)
            o[i] = (uint8_t)(cur[i] - prev[i]);
        uint8_t *t = prev;
        prev = cur;
        cur = t;
    }
    free(prev);
    free(cur);
    *len = row * h;
    return raw;
fail:
    free(raw);
    free(prev);
    free(cur);
    return NULL;
}

uint8_t *png_from_xrgb(const uint8_t *px, uint32_t w, uint32_t h, uint32_t stride, size_t *out_len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t raw_len;
    uint8_t ihdr[13] = {0}, *raw, *out;
    uLongf zlen;

    if (w == 0 || h == 0 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE || stride < (uint64_t)w * 4)
        return NULL;
    raw = scanlines(px, w, h, stride, &raw_len);
    if (!raw)
        return NULL;
    zlen = compressBound((uLong)raw_len);
    /* signature, IHDR chunk, IDAT header (8) + data + CRC (4), IEND chunk */
    out = malloc(8 + 25 + 12 + zlen + 12);
    if (out && compress2(out + 8 + 25 + 8, &zlen, raw, (uLong)raw_len, 3) != Z_OK) {
        free(out);
        out = NULL;
    }
    free(raw);
    if (!out)
        return NULL;
    memcpy(out, sig, 8);
    put32(ihdr, w);
    put32(ihdr + 4, h);
    ihdr[8] = 8; /* bits per channel */
    ihdr[9] = 2; /* RGB; compression, filter and interlace methods 0 */
    size_t n = 8 + chunk(out + 8, "IHDR", ihdr, 13);
    n += chunk(out + n, "IDAT", out + n + 8, (uint32_t)zlen); /* the data is in place already */
    n += chunk(out + n, "IEND", NULL, 0);
    *out_len = n;
    return out;
}
