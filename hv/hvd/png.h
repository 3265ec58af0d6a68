/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Encodes an XRGB8888 picture as a PNG file in memory (vm.screenshot). */
#ifndef HV_HVD_PNG_H
#define HV_HVD_PNG_H

#include <stddef.h>
#include <stdint.h>

#define PNG_MAX_SIDE 8192

/* The PNG bytes (malloc'd) and their length, or NULL when out of memory or the size is bad. */
uint8_t *png_from_xrgb(const uint8_t *px, uint32_t w, uint32_t h, uint32_t stride, size_t *out_len);

#endif
