// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The DISPI registers. Writes store what the guest wrote (16 bits), with the
 * few side effects the interface defines; the registers may describe any
 * nonsense, and vbe_mode() is the one place that turns them into a picture,
 * checked against the size of VRAM.
 */
#include "bochs_vbe_regs.h"

#include <stddef.h>
#include <string.h>

#define ENABLE_BITS (VBE_ENABLED | VBE_GETCAPS | VBE_8BIT_DAC | VBE_LFB_ENABLED | VBE_NOCLEARMEM)

void vbe_regs_reset(struct vbe_regs *r, uint64_t vram_size)
{
    memset(r, 0, sizeof(*r));
    r->vram_size = vram_size;
    r->reg[VBE_ID] = VBE_ID5;
    r->reg[VBE_VIDEO_MEMORY_64K] = (uint16_t)(vram_size >> 16);
}

uint16_t vbe_read(const struct vbe_regs *r, uint16_t index)
{
    if (index >= VBE_NR_REGS)
        return 0;
    if (r->reg[VBE_ENABLE] & VBE_GETCAPS) {
        if (index == VBE_XRES)
            return VBE_MAX_XRES;
        if (index == VBE_YRES)
            return VBE_MAX_YRES;
        if (index == VBE_BPP)
            return VBE_MAX_BPP;
    }
    return r->reg[index];
}

unsigned vbe_bytes_per_pixel(uint32_t bpp)
{
    return bpp == 15 ? 2 : (bpp + 7u) / 8u;
}

/* A mode being switched on starts unpanned, its virtual screen as wide as the mode. */
static void enable_mode(struct vbe_regs *r)
{
    uint64_t line = (uint64_t)r->reg[VBE_XRES] * vbe_bytes_per_pixel(r->reg[VBE_BPP]);
    uint64_t lines = line ? r->vram_size / line : 0;
    r->reg[VBE_VIRT_WIDTH] = r->reg[VBE_XRES];
    r->reg[VBE_VIRT_HEIGHT] = (uint16_t)(lines > 0xffff ? 0xffff : lines);
    r->reg[VBE_X_OFFSET] = 0;
    r->reg[VBE_Y_OFFSET] = 0;
    r->reg[VBE_BANK] = 0;
}

unsigned vbe_write(struct vbe_regs *r, uint16_t index, uint16_t val)
{
    unsigned effects = 0;
    switch (index) {
    case VBE_ID:
        if (val >= VBE_ID0 && val <= VBE_ID5)
            r->reg[VBE_ID] = val;
        break;
    case VBE_ENABLE: {
        uint16_t old = r->reg[VBE_ENABLE];
        val &= ENABLE_BITS;
        if ((val & VBE_ENABLED) && !(old & VBE_ENABLED)) {
            enable_mode(r);
            if (!(val & VBE_NOCLEARMEM))
                effects |= VBE_WRITE_CLEAR_VRAM;
        }
        r->reg[VBE_ENABLE] = val;
        break;
    }
    case VBE_BANK:
        /* A bank is a 64 KiB window of VRAM: one past the end is ignored. */
        if (val < r->reg[VBE_VIDEO_MEMORY_64K])
            r->reg[VBE_BANK] = val;
        break;
    case VBE_VIDEO_MEMORY_64K:
        break; /* read-only */
    case VBE_XRES:
    case VBE_YRES:
    case VBE_BPP:
    case VBE_VIRT_WIDTH:
    case VBE_VIRT_HEIGHT:
    case VBE_X_OFFSET:
    case VBE_Y_OFFSET:
        r->reg[index] = val;
        break;
    default:
        break; /* no such register */
    }
    return effects;
}

const char *vbe_mode(const struct vbe_regs *r, struct vbe_mode *m)
{
    const uint16_t *g = r->reg;
    if (!(g[VBE_ENABLE] & VBE_ENABLED))
        return "the display is disabled";
    if (!(g[VBE_ENABLE] & VBE_LFB_ENABLED))
        return "a banked mode (no linear framebuffer) is not shown";
    uint32_t bpp = g[VBE_BPP];
    if (bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32)
        return "only 15, 16, 24 and 32 bits per pixel are shown";
    uint64_t bytes = vbe_bytes_per_pixel(bpp);
    uint64_t w = g[VBE_XRES], h = g[VBE_YRES];
    if (w == 0 || h == 0 || w > VBE_MAX_XRES || h > VBE_MAX_YRES)
        return "the resolution is outside 1x1..4096x4096";
    /* A virtual screen narrower than the mode is as wide as the mode. */
    uint64_t vw = g[VBE_VIRT_WIDTH] < w ? w : g[VBE_VIRT_WIDTH];
    /*
     * The picture starts at (x, y) of the virtual screen and its lines follow
     * at the stride: an x offset past the virtual width's end just starts it
     * further on (Linux's bochs driver puts a buffer's VRAM offset there).
     */
    uint64_t x = g[VBE_X_OFFSET], y = g[VBE_Y_OFFSET];
    uint64_t stride = vw * bytes;
    uint64_t offset = y * stride + x * bytes;
    uint64_t end = offset + stride * (h - 1) + w * bytes; /* all below 2^40 */
    if (end > r->vram_size)
        return "the picture reaches past the end of video memory";
    *m = (struct vbe_mode){(uint32_t)w, (uint32_t)h, (uint32_t)stride, bpp, offset};
    return NULL;
}

bool vbe_mode_direct(const struct vbe_mode *m)
{
    return m->bpp == 32 && m->offset % 4096 == 0;
}

const char *vbe_regs_check(const struct vbe_regs *r)
{
    if (r->reg[VBE_ID] < VBE_ID0 || r->reg[VBE_ID] > VBE_ID5)
        return "the interface ID is not 0xb0c0..0xb0c5";
    if (r->reg[VBE_VIDEO_MEMORY_64K] != (uint16_t)(r->vram_size >> 16))
        return "the video memory size differs from this device's";
    if (r->reg[VBE_BANK] >= r->reg[VBE_VIDEO_MEMORY_64K])
        return "the bank is past the end of video memory";
    if (r->reg[VBE_ENABLE] & ~ENABLE_BITS)
        return "the enable register has bits the interface does not define";
    return NULL;
}
