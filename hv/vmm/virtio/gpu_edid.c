// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * An EDID 1.4 base block (VESA E-EDID A2) for the virtual panel: one
 * preferred detailed timing at the panel's size with reduced blanking at
 * 60 Hz, range limits that contain it, a monitor name, a 96 dpi physical
 * size so that guests pick scale 1.
 */
#include <string.h>

#include "gpu.h"
#include "util.h"

#define HBLANK 160 /* CVT reduced blanking */
#define HFRONT 48
#define HSYNC  32
#define VBLANK 30
#define VFRONT 3
#define VSYNC  6

static void detailed_timing(uint8_t *d, uint32_t w, uint32_t h, uint32_t wmm, uint32_t hmm)
{
    /* Pixel clock in 10 kHz units fits 16 bits: a huge mode gets a lower refresh. */
    uint64_t clock = (uint64_t)(w + HBLANK) * (h + VBLANK) * 60 / 10000;
    clock = MIN(MAX(clock, 1), 65535);
    d[0] = clock & 0xff;
    d[1] = (uint8_t)(clock >> 8);
    d[2] = w & 0xff;
    d[3] = HBLANK & 0xff;
    d[4] = (uint8_t)((w >> 8) << 4 | HBLANK >> 8);
    d[5] = h & 0xff;
    d[6] = VBLANK;
    d[7] = (uint8_t)((h >> 8) << 4);
    d[8] = HFRONT;
    d[9] = HSYNC;
    d[10] = VFRONT << 4 | VSYNC;
    d[11] = 0;
    d[12] = wmm & 0xff;
    d[13] = hmm & 0xff;
    d[14] = (uint8_t)((wmm >> 8) << 4 | hmm >> 8);
    d[15] = d[16] = 0;
    d[17] = 0x1a; /* digital separate sync, hsync +, vsync - */
}

static void text_descriptor(uint8_t *d, uint8_t tag, const char *s)
{
    memset(d, 0, 18);
    d[3] = tag;
    memset(d + 5, ' ', 13);
    size_t n = MIN(strlen(s), 12);
    memcpy(d + 5, s, n);
    d[5 + n] = '\n';
}

void gpu_edid_build(uint8_t edid[GPU_EDID_BYTES], uint32_t width, uint32_t height)
{
    static const uint8_t header[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t srgb[10] = {0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54};
    /* The detailed timing has 12 bits per dimension. */
    uint32_t w = MIN(MAX(width, 1), 4095), h = MIN(MAX(height, 1), 4095);
    uint32_t wmm = MIN(w * 254 / 960, 4095), hmm = MIN(h * 254 / 960, 4095);

    memset(edid, 0, GPU_EDID_BYTES);
    memcpy(edid, header, 8);
    uint16_t mfg = ('H' - '@') << 10 | ('V' - '@') << 5 | ('M' - '@'); /* "HVM" */
    edid[8] = (uint8_t)(mfg >> 8);
    edid[9] = mfg & 0xff;
    edid[10] = 1; /* product code */
    edid[16] = 1; /* week */
    edid[17] = 2025 - 1990;
    edid[18] = 1; /* EDID 1.4 */
    edid[19] = 4;
    edid[20] = 0xa5; /* digital, 8 bits per colour, DisplayPort */
    edid[21] = (uint8_t)MIN(MAX((wmm + 5) / 10, 1), 255);
    edid[22] = (uint8_t)MIN(MAX((hmm + 5) / 10, 1), 255);
    edid[23] = 120;  /* gamma 2.2 */
    edid[24] = 0x06; /* RGB 4:4:4, sRGB default, preferred timing is native */
    memcpy(edid + 25, srgb, sizeof(srgb));
    for (int i = 38; i < 54; i++)
        edid[i] = 0x01; /* no standard timings */

    detailed_timing(edid + 54, w, h, wmm, hmm);
    uint8_t *r = edid + 72; /* range limits: 24-75 Hz, 1-255 kHz, 660 MHz */
    r[3] = 0xfd;
    r[5] = 24, r[6] = 75, r[7] = 1, r[8] = 255, r[9] = 66, r[10] = 0x01;
    r[11] = '\n';
    memset(r + 12, ' ', 6);
    text_descriptor(edid + 90, 0xfc, "hv display");
    text_descriptor(edid + 108, 0xff, "0001");

    uint8_t sum = 0;
    for (int i = 0; i < GPU_EDID_BYTES - 1; i++)
        sum += edid[i];
    edid[GPU_EDID_BYTES - 1] = (uint8_t)(0x100 - sum);
}
