/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Bochs VBE "DISPI" register file (docs/bochs-vbe.md): sixteen-bit
 * registers selected by an index, reached through ports 0x1CE/0x1CF or the
 * MMIO copy in BAR 2. Pure logic, no KVM: the device (bochs_vbe.c), the unit
 * tests and the fuzzer share it. Every value is the guest's; vbe_mode()
 * alone decides whether the registers describe a picture that fits in VRAM.
 */
#ifndef HV_VMM_HW_BOCHS_VBE_REGS_H
#define HV_VMM_HW_BOCHS_VBE_REGS_H

#include <stdbool.h>
#include <stdint.h>

#define VBE_PORT_INDEX 0x1ce
#define VBE_PORT_DATA  0x1cf

enum vbe_index {
    VBE_ID,
    VBE_XRES,
    VBE_YRES,
    VBE_BPP,
    VBE_ENABLE,
    VBE_BANK,
    VBE_VIRT_WIDTH,
    VBE_VIRT_HEIGHT,
    VBE_X_OFFSET,
    VBE_Y_OFFSET,
    VBE_VIDEO_MEMORY_64K,
    VBE_NR_REGS,
};

/* The interface versions; a guest writes the one it speaks into VBE_ID. */
#define VBE_ID0 0xb0c0
#define VBE_ID5 0xb0c5

/* VBE_ENABLE bits. */
#define VBE_ENABLED     0x01
#define VBE_GETCAPS     0x02 /* XRES/YRES/BPP read as the maxima */
#define VBE_8BIT_DAC    0x20
#define VBE_LFB_ENABLED 0x40
#define VBE_NOCLEARMEM  0x80

/* What GETCAPS reports; hv-switch takes up to 8192 a side, --display size= up to 4096. */
#define VBE_MAX_XRES 4096
#define VBE_MAX_YRES 4096
#define VBE_MAX_BPP  32

struct vbe_regs {
    uint16_t index;
    uint16_t reg[VBE_NR_REGS];
    uint64_t vram_size; /* bytes; a multiple of 64 KiB, at most 0xffff * 64 KiB */
};

/* A picture in VRAM: rows of 15, 16, 24 or 32-bit pixels. */
struct vbe_mode {
    uint32_t width, height;
    uint32_t stride; /* bytes */
    uint32_t bpp;    /* 15 (XRGB1555), 16 (RGB565), 24 (BGR bytes), 32 (XRGB8888) */
    uint64_t offset; /* of the first pixel in VRAM */
};

void vbe_regs_reset(struct vbe_regs *r, uint64_t vram_size);

uint16_t vbe_read(const struct vbe_regs *r, uint16_t index);

/* vbe_write() asks the device to clear VRAM (a mode enabled without NOCLEARMEM). */
#define VBE_WRITE_CLEAR_VRAM 1u
unsigned vbe_write(struct vbe_regs *r, uint16_t index, uint16_t val);

/*
 * Whether the registers describe a picture that can be shown: NULL and *m
 * filled, or a sentence saying why not (the display is then blank). Every
 * product is computed in 64 bits and the whole picture checked against
 * vram_size.
 */
const char *vbe_mode(const struct vbe_regs *r, struct vbe_mode *m);

/* Whether hv-switch can map the picture as it is (XRGB8888 from a page boundary). */
bool vbe_mode_direct(const struct vbe_mode *m);

/* Bytes per pixel of a mode's depth. */
unsigned vbe_bytes_per_pixel(uint32_t bpp);

/* For a save file: a register set that this device could not have. NULL or why. */
const char *vbe_regs_check(const struct vbe_regs *r);

#endif
