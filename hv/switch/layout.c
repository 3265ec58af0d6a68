/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "layout.h"

#include "focus.h"

struct lrect layout_fit(struct lrect area, uint32_t w, uint32_t h)
{
    struct lrect r = area;

    if (w == 0 || h == 0 || area.w <= 0 || area.h <= 0)
        return (struct lrect){area.x, area.y, 1, 1};
    /* Compare aspect ratios as area.w * h vs area.h * w, in 64 bits. */
    if ((uint64_t)area.w * h > (uint64_t)area.h * w) {
        r.w = (int)((uint64_t)area.h * w / h);
        r.x = area.x + (area.w - r.w) / 2;
    } else {
        r.h = (int)((uint64_t)area.w * h / w);
        r.y = area.y + (area.h - r.h) / 2;
    }
    if (r.w < 1)
        r.w = 1;
    if (r.h < 1)
        r.h = 1;
    return r;
}

static uint32_t to_abs(int p, int start, int len)
{
    int64_t d = (int64_t)p - start;

    if (d <= 0 || len <= 1)
        return 0;
    if (d >= len - 1)
        return 32767;
    return (uint32_t)((d * 32767 + (len - 1) / 2) / (len - 1));
}

void layout_to_abs(struct lrect pic, int px, int py, uint32_t *ax, uint32_t *ay)
{
    *ax = to_abs(px, pic.x, pic.w);
    *ay = to_abs(py, pic.y, pic.h);
}

struct lrect layout_tile(struct lrect area, int n, int i, int gap)
{
    int cols = focus_overlay_cols(n < 1 ? 1 : n);
    int rows = (n + cols - 1) / cols;
    int tw, th;

    if (rows < 1)
        rows = 1;
    tw = (area.w - gap * (cols + 1)) / cols;
    th = (area.h - gap * (rows + 1)) / rows;
    return (struct lrect){area.x + gap + (i % cols) * (tw + gap),
                          area.y + gap + (i / cols) * (th + gap), tw > 1 ? tw : 1, th > 1 ? th : 1};
}

void lat_add(struct lat_stats *s, uint32_t us)
{
    s->ring[s->switches % 64] = us;
    s->switches++;
}

uint32_t lat_samples(const struct lat_stats *s, uint32_t *out, uint32_t max)
{
    uint32_t n = s->switches < 64 ? s->switches : 64;
    uint32_t first = s->switches - n;

    if (n > max) {
        first += n - max;
        n = max;
    }
    for (uint32_t i = 0; i < n; i++)
        out[i] = s->ring[(first + i) % 64];
    return n;
}
