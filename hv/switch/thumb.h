/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Thumbnails of a VM's picture on the CPU, for the control socket's
 * thumbnail request (the overlay's tiles are scaled by the renderer, which
 * cannot be read back cheaply). Pure.
 */
#ifndef HV_SWITCH_THUMB_H
#define HV_SWITCH_THUMB_H

#include <stdint.h>

/* The size of sw×sh fitted into max_w×max_h with its aspect kept (layout_fit), never enlarged. */
void thumb_size(uint32_t sw, uint32_t sh, uint32_t max_w, uint32_t max_h, uint32_t *w, uint32_t *h);

/*
 * Scales an XRGB8888 picture down to dw×dh (each ≥ 1, ≤ the source's) by
 * averaging each output pixel's box of source pixels. At most 4×4 samples per
 * box, fewer for large outputs, so that no thumbnail reads more than about
 * 4 million source pixels whatever the sizes: it runs in the render loop.
 */
void thumb_scale(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t sstride, uint8_t *dst,
                 uint32_t dw, uint32_t dh, uint32_t dstride);

#endif
