/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Thumbnail sizes and the box-filter scaler. */
#include "check.h"
#include "thumb.h"

#include <stdlib.h>
#include <string.h>

static uint32_t px(const uint8_t *p, uint32_t stride, uint32_t x, uint32_t y)
{
    uint32_t v;

    memcpy(&v, p + (size_t)y * stride + x * 4, 4);
    return v;
}

static void test_size(void)
{
    uint32_t w, h;

    thumb_size(1280, 800, 320, 200, &w, &h);
    CHECK(w == 320 && h == 200);
    thumb_size(1024, 768, 320, 200, &w, &h); /* 4:3 into 16:10: height-bound */
    CHECK(h == 200 && w == 266);
    thumb_size(640, 480, 1280, 800, &w, &h); /* never enlarged */
    CHECK(w == 640 && h == 480);
    thumb_size(8192, 1, 64, 64, &w, &h);
    CHECK(w == 64 && h == 1);
    thumb_size(1, 8192, 64, 64, &w, &h);
    CHECK(w == 1 && h == 64);
}

static void test_solid_and_halves(void)
{
    uint32_t sw = 100, sh = 60, sstride = 100 * 4 + 16; /* padded rows */
    uint8_t *src = calloc(1, (size_t)sstride * sh), dst[10 * 6 * 4];

    /* Left half red, right half blue; the padding is white and must not leak in. */
    for (uint32_t y = 0; y < sh; y++) {
        for (uint32_t x = 0; x < sstride / 4; x++) {
            uint32_t v = x >= sw ? 0xffffff : x < sw / 2 ? 0xcc2020 : 0x2040cc;
            memcpy(src + (size_t)y * sstride + x * 4, &v, 4);
        }
    }
    thumb_scale(src, sw, sh, sstride, dst, 10, 6, 40);
    for (uint32_t y = 0; y < 6; y++) {
        CHECK(px(dst, 40, 0, y) == 0xcc2020 && px(dst, 40, 4, y) == 0xcc2020);
        CHECK(px(dst, 40, 5, y) == 0x2040cc && px(dst, 40, 9, y) == 0x2040cc);
    }
    free(src);
}

static void test_average(void)
{
    /* A 2x2 checkerboard of black and white averages to mid grey. */
    uint32_t src[4] = {0x000000, 0xffffff, 0xffffff, 0x000000}, out;

    thumb_scale((const uint8_t *)src, 2, 2, 8, (uint8_t *)&out, 1, 1, 4);
    CHECK(out == 0x808080);
}

static void test_bounds(void)
{
    /* Odd sizes and the exact source size: every read stays inside (ASan checks). */
    uint32_t sw = 7, sh = 5;
    uint8_t *src = malloc((size_t)sw * 4 * sh), *dst = malloc((size_t)sw * 4 * sh);

    memset(src, 0x11, (size_t)sw * 4 * sh);
    for (uint32_t dw = 1; dw <= sw; dw++) {
        for (uint32_t dh = 1; dh <= sh; dh++) {
            thumb_scale(src, sw, sh, sw * 4, dst, dw, dh, dw * 4);
            CHECK(px(dst, dw * 4, dw - 1, dh - 1) == 0x111111);
        }
    }
    free(src);
    free(dst);
}

int main(void)
{
    test_size();
    test_solid_and_halves();
    test_average();
    test_bounds();
    CHECK_DONE();
}
