/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where pictures go on the screen and how the pointer maps back. Pure. */
#ifndef HV_SWITCH_LAYOUT_H
#define HV_SWITCH_LAYOUT_H

#include <stdint.h>

struct lrect {
    int x, y, w, h;
};

/* The largest w:h rectangle centred in area (letterbox / pillarbox); at least 1x1. */
struct lrect layout_fit(struct lrect area, uint32_t w, uint32_t h);

/* Pointer (px, py) on the screen to 0..32767 across pic, clamped to its edges. */
void layout_to_abs(struct lrect pic, int px, int py, uint32_t *ax, uint32_t *ay);

/* The overlay's n tiles in area: tile i of a grid of focus_overlay_cols(n) columns. */
struct lrect layout_tile(struct lrect area, int n, int i, int gap);

/* Switch latency samples (µs), a ring of the last DISP_STATS_SAMPLES. */
struct lat_stats {
    uint32_t switches;
    uint32_t ring[64];
};

void lat_add(struct lat_stats *s, uint32_t us);
/* Copies the samples oldest first; returns how many. */
uint32_t lat_samples(const struct lat_stats *s, uint32_t *out, uint32_t max);

#endif
