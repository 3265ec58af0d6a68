/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "thumb.h"

#include "layout.h"

#include <string.h>

void thumb_size(uint32_t sw, uint32_t sh, uint32_t max_w, uint32_t max_h, uint32_t *w, uint32_t *h)
{
    struct lrect r;

    if (sw <= max_w && sh <= max_h) {
        *w = sw;
        *h = sh;
        return;
    }
    r = layout_fit((struct lrect){0, 0, (int)max_w, (int)max_h}, sw, sh);
    *w = (uint32_t)r.w;
    *h = (uint32_t)r.h;
}

/* Samples per axis in a box: enough to average a solid area well, bounded in total. */
static uint32_t samples_per_axis(uint32_t dw, uint32_t dh)
{
    uint64_t out = (uint64_t)dw * dh;

    return out <= 512 * 512 ? 4 : out <= 1024 * 1024 ? 2 : 1;
}

/* The i-th of k sample positions spread over [start, start + len), centred in its share. */
static uint32_t sample_at(uint32_t start, uint32_t len, uint32_t k, uint32_t i)
{
    return start + (uint32_t)(((uint64_t)(2 * i + 1) * len) / (2 * k));
}

void thumb_scale(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t sstride, uint8_t *dst,
                 uint32_t dw, uint32_t dh, uint32_t dstride)
{
    uint32_t kmax = samples_per_axis(dw, dh);

    for (uint32_t dy = 0; dy < dh; dy++) {
        uint32_t y0 = (uint32_t)((uint64_t)dy * sh / dh);
        uint32_t y1 = (uint32_t)((uint64_t)(dy + 1) * sh / dh);
        uint32_t ylen = y1 > y0 ? y1 - y0 : 1;
        uint32_t ky = ylen < kmax ? ylen : kmax;

        for (uint32_t dx = 0; dx < dw; dx++) {
            uint32_t x0 = (uint32_t)((uint64_t)dx * sw / dw);
            uint32_t x1 = (uint32_t)((uint64_t)(dx + 1) * sw / dw);
            uint32_t xlen = x1 > x0 ? x1 - x0 : 1;
            uint32_t kx = xlen < kmax ? xlen : kmax;
            uint32_t r = 0, g = 0, b = 0, n = kx * ky, px;

            for (uint32_t iy = 0; iy < ky; iy++) {
                const uint8_t *row = src + (size_t)sample_at(y0, ylen, ky, iy) * sstride;
                for (uint32_t ix = 0; ix < kx; ix++) {
                    memcpy(&px, row + (size_t)sample_at(x0, xlen, kx, ix) * 4, 4);
                    r += (px >> 16) & 0xff;
                    g += (px >> 8) & 0xff;
                    b += px & 0xff;
                }
            }
            px = ((r + n / 2) / n) << 16 | ((g + n / 2) / n) << 8 | (b + n / 2) / n;
            memcpy(dst + (size_t)dy * dstride + (size_t)dx * 4, &px, 4);
        }
    }
}
