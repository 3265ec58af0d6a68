/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A 5x7 bitmap font for labels drawn by hv-switch and the test producer. Pure. */
#ifndef HV_SWITCH_FONT_H
#define HV_SWITCH_FONT_H

#include <stdbool.h>

#define FONT_W       5
#define FONT_H       7
#define FONT_ADVANCE 6 /* columns per character, including the gap */

/* Whether pixel (x, y) of character c is set. Lower case is drawn as upper case;
 * characters without a glyph are drawn as a box. */
bool font_pixel(char c, int x, int y);

/* Width in font pixels of a string (no trailing gap). */
int font_text_width(const char *s);

#endif
