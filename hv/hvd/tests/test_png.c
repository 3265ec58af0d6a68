/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PNG writer: structure, CRCs, and the pixels back through zlib and the Up filter. */
#include "check.h"
#include "png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks one chunk at p of the type given; returns its data length. */
static uint32_t check_chunk(const uint8_t *p, const char *type)
{
    uint32_t len = get32(p);

    CHECK(memcmp(p + 4, type, 4) == 0);
    CHECK(get32(p + 8 + len) == (uint32_t)crc32(0, p + 4, len + 4));
    return len;
}

static void test_round_trip(void)
{
    enum { W = 5, H = 3, STRIDE = W * 4 + 8 };
    uint8_t px[STRIDE * H], raw[(1 + W * 3) * H];
    uLongf raw_len = sizeof(raw);
    size_t len = 0;

    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            uint32_t v = (uint32_t)(x * 50) << 16 | (uint32_t)(y * 90) << 8 | (uint32_t)(x * y);
            memcpy(px + y * STRIDE + x * 4, &v, 4);
        }
    }
    uint8_t *png = png_from_xrgb(px, W, H, STRIDE, &len);
    CHECK(png && len > 8 + 25 + 12 + 12);
    if (!png)
        return;
    CHECK(memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    CHECK(check_chunk(png + 8, "IHDR") == 13);
    CHECK(get32(png + 16) == W && get32(png + 20) == H && png[24] == 8 && png[25] == 2);
    uint32_t zlen = check_chunk(png + 33, "IDAT");
    CHECK(check_chunk(png + 33 + 12 + zlen, "IEND") == 0);
    CHECK(33 + 12 + zlen + 12 == len);
    CHECK(uncompress(raw, &raw_len, png + 41, zlen) == Z_OK && raw_len == sizeof(raw));
    /* Undo the Up filter and compare with the picture. */
    for (int y = 0; y < H; y++) {
        uint8_t *row = raw + y * (1 + W * 3);
        CHECK(row[0] == 2);
        for (int i = 1; i <= W * 3 && y > 0; i++)
            row[i] = (uint8_t)(row[i] + row[i - (1 + W * 3)]);
        for (int x = 0; x < W; x++) {
            uint32_t v;
            memcpy(&v, px + y * STRIDE + x * 4, 4);
            CHECK(row[1 + x * 3] == (uint8_t)(v >> 16) && row[2 + x * 3] == (uint8_t)(v >> 8) &&
                  row[3 + x * 3] == (uint8_t)v);
        }
    }
    free(png);
}

static void test_refused(void)
{
    uint8_t px[16] = {0};
    size_t len;

    CHECK(png_from_xrgb(px, 0, 1, 4, &len) == NULL);
    CHECK(png_from_xrgb(px, 1, 0, 4, &len) == NULL);
    CHECK(png_from_xrgb(px, 2, 1, 4, &len) == NULL); /* stride too small */
    CHECK(png_from_xrgb(px, PNG_MAX_SIDE + 1, 1, (PNG_MAX_SIDE + 1) * 4, &len) == NULL);
}

int main(void)
{
    test_round_trip();
    test_refused();
    CHECK_DONE();
}
