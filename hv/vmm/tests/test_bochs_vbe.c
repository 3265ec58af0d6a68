// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Bochs VBE display without KVM: the DISPI register file and mode
 * validation (bochs_vbe_regs.c), then the device on a PCI bus (BAR 0 is then
 * reached by trapped accesses): PCI identity, ports and BAR 2, what the sink
 * (hv-switch's side) is told for good and hostile modes, damage, the EDID,
 * reset, and save/load with its refusals.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "hw/bochs_vbe.h"
#include "hw/bochs_vbe_regs.h"
#include "le.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "vm.h"

#define MB16 (UINT64_C(16) << 20)

/* ---- the register file ---- */

static void set_mode(struct vbe_regs *r, uint16_t w, uint16_t h, uint16_t bpp)
{
    vbe_write(r, VBE_ENABLE, 0);
    vbe_write(r, VBE_XRES, w);
    vbe_write(r, VBE_YRES, h);
    vbe_write(r, VBE_BPP, bpp);
    vbe_write(r, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED | VBE_NOCLEARMEM);
}

static void test_regs(void)
{
    struct vbe_regs r;
    vbe_regs_reset(&r, MB16);
    CHECK(vbe_read(&r, VBE_ID) == VBE_ID5);
    CHECK(vbe_read(&r, VBE_VIDEO_MEMORY_64K) == 256);
    CHECK(vbe_read(&r, VBE_NR_REGS) == 0 && vbe_read(&r, 0xffff) == 0);
    vbe_write(&r, VBE_ID, VBE_ID0);
    CHECK(vbe_read(&r, VBE_ID) == VBE_ID0);
    vbe_write(&r, VBE_ID, 0x1234); /* not an interface version */
    CHECK(vbe_read(&r, VBE_ID) == VBE_ID0);
    vbe_write(&r, VBE_VIDEO_MEMORY_64K, 1);
    CHECK(vbe_read(&r, VBE_VIDEO_MEMORY_64K) == 256);
    vbe_write(&r, VBE_BANK, 255);
    CHECK(vbe_read(&r, VBE_BANK) == 255);
    vbe_write(&r, VBE_BANK, 256);
    CHECK(vbe_read(&r, VBE_BANK) == 255);
    vbe_write(&r, 0xffff, 1); /* nothing */

    /* GETCAPS: the maxima instead of the values. */
    vbe_write(&r, VBE_XRES, 640);
    vbe_write(&r, VBE_ENABLE, VBE_GETCAPS);
    CHECK(vbe_read(&r, VBE_XRES) == VBE_MAX_XRES && vbe_read(&r, VBE_YRES) == VBE_MAX_YRES &&
          vbe_read(&r, VBE_BPP) == VBE_MAX_BPP);
    vbe_write(&r, VBE_ENABLE, 0);
    CHECK(vbe_read(&r, VBE_XRES) == 640);
    CHECK(vbe_read(&r, VBE_ENABLE) == 0);
    vbe_write(&r, VBE_ENABLE, 0xffff); /* unknown bits dropped */
    CHECK(vbe_read(&r, VBE_ENABLE) == 0xe3);

    /* Switching a mode on: unpanned, virtual width = xres, VRAM cleared unless NOCLEARMEM. */
    vbe_regs_reset(&r, MB16);
    vbe_write(&r, VBE_XRES, 1024);
    vbe_write(&r, VBE_YRES, 768);
    vbe_write(&r, VBE_BPP, 32);
    vbe_write(&r, VBE_VIRT_WIDTH, 2000);
    vbe_write(&r, VBE_X_OFFSET, 5);
    vbe_write(&r, VBE_Y_OFFSET, 7);
    CHECK(vbe_write(&r, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED) == VBE_WRITE_CLEAR_VRAM);
    CHECK(vbe_read(&r, VBE_VIRT_WIDTH) == 1024 && vbe_read(&r, VBE_X_OFFSET) == 0 &&
          vbe_read(&r, VBE_Y_OFFSET) == 0);
    CHECK(vbe_read(&r, VBE_VIRT_HEIGHT) == 4096); /* 16 MiB / 4096 bytes a line */
    CHECK(vbe_write(&r, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED) == 0); /* already on */
    vbe_write(&r, VBE_ENABLE, 0);
    CHECK(vbe_write(&r, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED | VBE_NOCLEARMEM) == 0);
    /* Panning once on is kept. */
    vbe_write(&r, VBE_Y_OFFSET, 768);
    CHECK(vbe_read(&r, VBE_Y_OFFSET) == 768);
    CHECK(vbe_regs_check(&r) == NULL);
}

static void test_modes(void)
{
    struct vbe_regs r;
    struct vbe_mode m;
    vbe_regs_reset(&r, MB16);
    CHECK(vbe_mode(&r, &m) != NULL); /* disabled at power-on */

    set_mode(&r, 1280, 800, 32);
    CHECK(vbe_mode(&r, &m) == NULL);
    CHECK(m.width == 1280 && m.height == 800 && m.stride == 5120 && m.offset == 0);

    /* A wider virtual screen, panned by whole pages. */
    vbe_write(&r, VBE_VIRT_WIDTH, 2048);
    vbe_write(&r, VBE_Y_OFFSET, 2);
    CHECK(vbe_mode(&r, &m) == NULL && m.stride == 8192 && m.offset == 16384);
    vbe_write(&r, VBE_X_OFFSET, 2047); /* past the line's end: the next line's start, */
    CHECK(vbe_mode(&r, &m) == NULL && !vbe_mode_direct(&m)); /* not on a page: converted */
    vbe_write(&r, VBE_X_OFFSET, 1024 + 2048);                /* one line and one page on */
    vbe_write(&r, VBE_Y_OFFSET, 1);
    CHECK(vbe_mode(&r, &m) == NULL && m.offset == 8192 + 8192 + 4096 && vbe_mode_direct(&m));
    vbe_write(&r, VBE_Y_OFFSET, 2);
    vbe_write(&r, VBE_VIRT_WIDTH, 4096);
    vbe_write(&r, VBE_X_OFFSET, 1024);
    CHECK(vbe_mode(&r, &m) == NULL && m.stride == 16384 && m.offset == 32768 + 4096);
    vbe_write(&r, VBE_VIRT_WIDTH, 2048);
    vbe_write(&r, VBE_X_OFFSET, 1); /* 4 bytes into a page */
    CHECK(vbe_mode(&r, &m) == NULL && m.offset == 16388 && !vbe_mode_direct(&m));
    vbe_write(&r, VBE_X_OFFSET, 0);
    vbe_write(&r, VBE_Y_OFFSET, 3); /* 3 * 8192: page-aligned */
    CHECK(vbe_mode(&r, &m) == NULL);
    vbe_write(&r, VBE_VIRT_WIDTH, 100); /* narrower than the mode: as wide as it */
    vbe_write(&r, VBE_Y_OFFSET, 0);
    CHECK(vbe_mode(&r, &m) == NULL && m.stride == 5120);

    /* Exactly the whole of VRAM, and one line more. */
    set_mode(&r, 2048, 2048, 32);
    CHECK(vbe_mode(&r, &m) == NULL && m.offset == 0);
    set_mode(&r, 2048, 2049, 32);
    CHECK(vbe_mode(&r, &m) != NULL);
    set_mode(&r, 1024, 768, 32);
    vbe_write(&r, VBE_Y_OFFSET, 4096 - 768);
    CHECK(vbe_mode(&r, &m) == NULL);
    vbe_write(&r, VBE_Y_OFFSET, 4096 - 767); /* one line past the end */
    CHECK(vbe_mode(&r, &m) != NULL);

    /* Depths that are converted, with their strides; what is not shown. */
    static const uint16_t conv[][2] = {{15, 1280}, {16, 1280}, {24, 1920}};
    for (unsigned i = 0; i < ARRAY_SIZE(conv); i++) {
        set_mode(&r, 640, 480, conv[i][0]);
        CHECK(vbe_mode(&r, &m) == NULL && m.stride == conv[i][1] && m.bpp == conv[i][0] &&
              !vbe_mode_direct(&m));
    }
    set_mode(&r, 4096, 4096, 16); /* 32 MiB of 16-bit pixels: past VRAM */
    CHECK(vbe_mode(&r, &m) != NULL);
    set_mode(&r, 4096, 2048, 16); /* exactly all of it */
    CHECK(vbe_mode(&r, &m) == NULL);
    static const uint16_t bpps[] = {0, 4, 8, 31, 33, 0xffff};
    for (unsigned i = 0; i < ARRAY_SIZE(bpps); i++) {
        set_mode(&r, 640, 480, bpps[i]);
        CHECK(vbe_mode(&r, &m) != NULL);
    }
    set_mode(&r, 640, 480, 32);
    vbe_write(&r, VBE_ENABLE, VBE_ENABLED); /* banked: no linear framebuffer */
    CHECK(vbe_mode(&r, &m) != NULL);
    set_mode(&r, 0, 480, 32);
    CHECK(vbe_mode(&r, &m) != NULL);
    set_mode(&r, 640, 0, 32);
    CHECK(vbe_mode(&r, &m) != NULL);
    set_mode(&r, 4097, 16, 32);
    CHECK(vbe_mode(&r, &m) != NULL);

    /* Every register at its largest: refused, no overflow (UBSan watches). */
    set_mode(&r, 0xffff, 0xffff, 32);
    for (unsigned i = VBE_VIRT_WIDTH; i <= VBE_Y_OFFSET; i++)
        vbe_write(&r, (uint16_t)i, 0xffff);
    CHECK(vbe_mode(&r, &m) != NULL);
    set_mode(&r, 16, 16, 32);
    vbe_write(&r, VBE_VIRT_WIDTH, 0xffff);
    vbe_write(&r, VBE_X_OFFSET, 0xffff - 16);
    vbe_write(&r, VBE_Y_OFFSET, 0xffff);
    CHECK(vbe_mode(&r, &m) != NULL);

    /* A save file's registers. */
    vbe_regs_reset(&r, MB16);
    CHECK(vbe_regs_check(&r) == NULL);
    r.reg[VBE_ID] = 0;
    CHECK(vbe_regs_check(&r) != NULL);
    vbe_regs_reset(&r, MB16);
    r.reg[VBE_VIDEO_MEMORY_64K] = 512;
    CHECK(vbe_regs_check(&r) != NULL);
    vbe_regs_reset(&r, MB16);
    r.reg[VBE_BANK] = 256;
    CHECK(vbe_regs_check(&r) != NULL);
    vbe_regs_reset(&r, MB16);
    r.reg[VBE_ENABLE] = 0x100;
    CHECK(vbe_regs_check(&r) != NULL);
}

/* ---- the device ---- */

struct sink_log {
    unsigned scanouts, blanks, damages;
    int fd; /* dup of the last scanout's */
    uint64_t offset;
    uint32_t w, h, stride;
    uint32_t dx, dy, dw, dh;
};

static void on_scanout(void *ctx, int fd, uint64_t offset, uint32_t w, uint32_t h, uint32_t stride)
{
    struct sink_log *s = ctx;
    s->scanouts++;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = dup(fd);
    s->offset = offset, s->w = w, s->h = h, s->stride = stride;
}

static void on_damage(void *ctx, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct sink_log *s = ctx;
    s->damages++;
    s->dx = x, s->dy = y, s->dw = w, s->dh = h;
}

static void on_blank(void *ctx)
{
    ((struct sink_log *)ctx)->blanks++;
}

struct rig {
    struct vm vm;
    struct bochs_vbe *v;
    struct sink_log log;
    struct pci_device *pci;
    uint64_t bar0, bar2;
};

static void make_rig(struct rig *t)
{
    memset(t, 0, sizeof(*t));
    t->log.fd = -1;
    t->vm.vm_fd = t->vm.kvm_fd = -1;
    io_bus_init(&t->vm.pio, "pio");
    io_bus_init(&t->vm.mmio, "mmio");
    CHECK(pci_bus_init(&t->vm.pci, &t->vm.pio, &t->vm.mmio) == 0);
    struct vbe_sink sink = {&t->log, on_scanout, on_damage, on_blank};
    CHECK(bochs_vbe_create(&t->vm, 1024, 768, &sink, &t->v) == 0);
    struct device *d = device_find(&t->vm, "bochs-vbe");
    CHECK(d && d->pci_slot == 1);
}

static void drop_rig(struct rig *t)
{
    devices_destroy(&t->vm);
    pci_bus_destroy(t->vm.pci);
    io_bus_destroy(&t->vm.pio);
    io_bus_destroy(&t->vm.mmio);
    free(t->v);
    if (t->log.fd >= 0)
        close(t->log.fd);
}

static uint32_t cfg_read(struct rig *t, unsigned off)
{
    uint32_t a = 0x80000000u | 1u << 11 | off, v = 0;
    io_bus_access(&t->vm.pio, 0xcf8, (uint8_t *)&a, 4, true);
    io_bus_access(&t->vm.pio, 0xcfc, (uint8_t *)&v, 4, false);
    return v;
}

static void cfg_write(struct rig *t, unsigned off, uint32_t v)
{
    uint32_t a = 0x80000000u | 1u << 11 | off;
    io_bus_access(&t->vm.pio, 0xcf8, (uint8_t *)&a, 4, true);
    io_bus_access(&t->vm.pio, 0xcfc, (uint8_t *)&v, 4, true);
}

static void out16(struct rig *t, uint16_t port, uint16_t v)
{
    io_bus_access(&t->vm.pio, port, (uint8_t *)&v, 2, true);
}

static uint16_t in16(struct rig *t, uint16_t port)
{
    uint16_t v = 0;
    io_bus_access(&t->vm.pio, port, (uint8_t *)&v, 2, false);
    return v;
}

static void dispi(struct rig *t, uint16_t index, uint16_t val)
{
    out16(t, VBE_PORT_INDEX, index);
    out16(t, VBE_PORT_DATA, val);
}

static uint16_t dispi_get(struct rig *t, uint16_t index)
{
    out16(t, VBE_PORT_INDEX, index);
    return in16(t, VBE_PORT_DATA);
}

static void mmio_write(struct rig *t, uint64_t addr, uint64_t v, unsigned len)
{
    io_bus_access(&t->vm.mmio, addr, (uint8_t *)&v, len, true);
}

static uint64_t mmio_read(struct rig *t, uint64_t addr, unsigned len)
{
    uint64_t v = 0;
    io_bus_access(&t->vm.mmio, addr, (uint8_t *)&v, len, false);
    return v;
}

static void mode(struct rig *t, uint16_t w, uint16_t h)
{
    dispi(t, VBE_ENABLE, 0);
    dispi(t, VBE_XRES, w);
    dispi(t, VBE_YRES, h);
    dispi(t, VBE_BPP, 32);
    dispi(t, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
}

/* Memory decode on: the BARs where pci.c placed them. */
static void enable(struct rig *t)
{
    cfg_write(t, 0x04, 0x3);
    t->bar0 = cfg_read(t, 0x10) & ~0xfu;
    t->bar2 = cfg_read(t, 0x18) & ~0xfu;
}

static void test_device(void)
{
    struct rig t;
    make_rig(&t);
    CHECK(cfg_read(&t, 0x00) == 0x11111234);
    CHECK(cfg_read(&t, 0x08) >> 8 == 0x030000);
    CHECK((cfg_read(&t, 0x10) & 0xf) == 0x8); /* 32-bit prefetchable memory */
    cfg_write(&t, 0x10, 0xffffffff);
    CHECK((cfg_read(&t, 0x10) & ~0xfu) == (uint32_t) ~(MB16 - 1));
    cfg_write(&t, 0x18, 0xffffffff);
    CHECK((cfg_read(&t, 0x18) & ~0xfu) == (uint32_t) ~(VBE_MMIO_SIZE - 1));
    devices_reset(&t.vm); /* the BARs back where they were */
    enable(&t);
    CHECK(t.bar0 && t.bar2 && t.bar0 % MB16 == 0);

    /* The ports and BAR 2 reach the same registers. */
    CHECK(dispi_get(&t, VBE_ID) == VBE_ID5);
    CHECK(mmio_read(&t, t.bar2 + VBE_MMIO_DISPI + 2 * VBE_ID, 2) == VBE_ID5);
    CHECK(mmio_read(&t, t.bar2 + VBE_MMIO_DISPI + 2 * VBE_VIDEO_MEMORY_64K, 2) == 256);
    mmio_write(&t, t.bar2 + VBE_MMIO_DISPI + 2 * VBE_XRES, 800, 2);
    CHECK(dispi_get(&t, VBE_XRES) == 800);
    out16(&t, VBE_PORT_INDEX, VBE_YRES);
    CHECK(in16(&t, VBE_PORT_INDEX) == VBE_YRES);
    CHECK(mmio_read(&t, t.bar2 + VBE_MMIO_QEXT, 4) == 8);
    CHECK(mmio_read(&t, t.bar2 + VBE_MMIO_QEXT + 4, 4) == 0x1e1e1e1e);
    /* The EDID: its header, the preferred mode (1024x768) in the first detailed timing. */
    static const uint8_t hdr[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
    uint8_t edid[128], sum = 0;
    for (unsigned i = 0; i < 128; i++) {
        edid[i] = (uint8_t)mmio_read(&t, t.bar2 + i, 1);
        sum = (uint8_t)(sum + edid[i]);
    }
    CHECK(!memcmp(edid, hdr, 8) && sum == 0);
    CHECK((edid[56] | (edid[58] & 0xf0) << 4) == 1024 &&
          (edid[59] | (edid[61] & 0xf0) << 4) == 768);
    CHECK(mmio_read(&t, t.bar2 + 0x200, 4) == 0);
    mmio_write(&t, t.bar2, 0, 8); /* read-only */
    CHECK(mmio_read(&t, t.bar2, 8) == 0x00ffffffffffff00);

    /* A mode: the sink gets the VRAM memfd itself. */
    CHECK(t.log.scanouts == 0);
    mode(&t, 1024, 768);
    CHECK(t.log.scanouts == 1 && t.log.w == 1024 && t.log.h == 768 && t.log.stride == 4096 &&
          t.log.offset == 0);
    struct stat st;
    CHECK(fstat(t.log.fd, &st) == 0 && (uint64_t)st.st_size == MB16);
    int seals = fcntl(t.log.fd, F_GET_SEALS);
    CHECK(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW));
    dispi(&t, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED); /* the same mode: nothing new */
    CHECK(t.log.scanouts == 1);

    /* Pixels written through BAR 0 (trapped: no KVM) are in the memfd and damaged. */
    bochs_vbe_poll(t.v); /* the new mode's damage is in the scanout */
    t.log.damages = 0;
    bochs_vbe_poll(t.v);
    CHECK(t.log.damages == 0);
    mmio_write(&t, t.bar0 + 4096 * 10 + 8, 0x00ff8040, 4);
    CHECK(le32_get(bochs_vbe_vram(t.v) + 4096 * 10 + 8) == 0x00ff8040);
    CHECK(mmio_read(&t, t.bar0 + 4096 * 10 + 8, 4) == 0x00ff8040);
    bochs_vbe_poll(t.v);
    CHECK(t.log.damages == 1 && t.log.dx == 0 && t.log.dy == 0 && t.log.dw == 1024 &&
          t.log.dh == 768);
    uint32_t px;
    CHECK(pread(t.log.fd, &px, 4, 4096 * 10 + 8) == 4 && px == 0x00ff8040);

    /* Panning by a page moves the surface's offset; by 4 bytes it is a converted copy. */
    dispi(&t, VBE_Y_OFFSET, 1);
    CHECK(t.log.scanouts == 2 && t.log.offset == 4096);
    dispi(&t, VBE_X_OFFSET, 1);
    CHECK(t.log.scanouts == 3 && t.log.offset == 0 && t.log.stride == 4096);
    CHECK(fstat(t.log.fd, &st) == 0 && (uint64_t)st.st_size == 1024 * 768 * 4);
    /* Pixel (x, y) of the picture is VRAM 4096 + 4 + 4096 y + 4 x: (1, 9) was written above. */
    CHECK(pread(t.log.fd, &px, 4, 4096 * 9 + 4 * 1) == 4 && px == 0x00ff8040);
    mmio_write(&t, t.bar0 + 4096 + 4 + 4096 * 700 + 4 * 5, 0xff112233, 4);
    bochs_vbe_poll(t.v);
    CHECK(t.log.dy == 0 && t.log.dh == 768); /* trapped: all of it */
    CHECK(pread(t.log.fd, &px, 4, 4096 * 700 + 4 * 5) == 4 && px == 0x00112233);
    dispi(&t, VBE_X_OFFSET, 0);
    CHECK(t.log.scanouts == 4 && t.log.offset == 4096 && t.log.stride == 4096);

    /* 16, 15 and 24 bits per pixel, converted. */
    static const struct {
        uint16_t bpp;
        uint32_t raw, bytes, want;
    } depth[] = {{16, 0xf800, 2, 0xff0000}, {16, 0x07e0, 2, 0x00ff00}, {16, 0x0010, 2, 0x000084},
                 {15, 0x7c00, 2, 0xff0000}, {15, 0x0210, 2, 0x008484}, {24, 0x302010, 3, 0x302010}};
    for (unsigned i = 0; i < ARRAY_SIZE(depth); i++) {
        dispi(&t, VBE_ENABLE, 0);
        dispi(&t, VBE_BPP, depth[i].bpp);
        dispi(&t, VBE_XRES, 640);
        dispi(&t, VBE_YRES, 480);
        dispi(&t, VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
        CHECK(t.log.w == 640 && t.log.h == 480 && t.log.stride == 2560 && t.log.offset == 0);
        uint64_t at = (uint64_t)depth[i].bytes * (640 * 100 + 7); /* pixel (7, 100) */
        for (unsigned b = 0; b < depth[i].bytes; b++)
            mmio_write(&t, t.bar0 + at + b, (depth[i].raw >> (8 * b)) & 0xff, 1);
        bochs_vbe_poll(t.v);
        CHECK(pread(t.log.fd, &px, 4, 2560 * 100 + 4 * 7) == 4 && px == depth[i].want);
    }
    unsigned blanks;

    /* Hostile values: the sink is blanked, never handed a surface past the memfd. */
    static const uint16_t absurd[] = {0, 1, 0x7fff, 0xffff};
    for (unsigned r = 0; r < VBE_NR_REGS + 2; r++) {
        for (unsigned i = 0; i < ARRAY_SIZE(absurd); i++) {
            mode(&t, 1024, 768);
            dispi(&t, (uint16_t)r, absurd[i]);
            mmio_write(&t, t.bar2 + VBE_MMIO_DISPI + 2 * r, absurd[i], 2);
            CHECK((uint64_t)t.log.offset + (uint64_t)t.log.stride * (t.log.h - 1) +
                      (uint64_t)t.log.w * 4 <=
                  MB16);
            CHECK(t.log.stride >= t.log.w * 4 && t.log.offset % 4096 == 0);
        }
    }
    mode(&t, 0xffff, 0xffff);
    blanks = t.log.blanks;
    mode(&t, 2048, 2049);
    CHECK(t.log.blanks == blanks); /* already blank: said once */
    for (uint64_t off = 0; off < VBE_MMIO_SIZE; off += 4)
        mmio_write(&t, t.bar2 + off, 0xffffffff, 4);
    mmio_write(&t, t.bar2 + 0x501, 0xffff, 2); /* half registers: ignored */
    mmio_write(&t, t.bar2 + 0x500, 0xffffffffffffffff, 8);
    (void)mmio_read(&t, t.bar2 + VBE_MMIO_SIZE - 1, 1);
    mmio_write(&t, t.bar0 + MB16 - 2, 0xffffffff, 4); /* runs past BAR 0: not on the bus */
    io_bus_access(&t.vm.pio, VBE_PORT_DATA, (uint8_t[4]){0}, 4, true);

    /* The VGA attribute index's screen-on bit (0x3C0 at BAR 2 + 0x400). */
    mode(&t, 640, 480);
    unsigned scanouts = t.log.scanouts;
    blanks = t.log.blanks;
    (void)mmio_read(&t, t.bar2 + VBE_MMIO_VGA + 0x1a, 1); /* 0x3DA: the flip-flop to index */
    mmio_write(&t, t.bar2 + VBE_MMIO_VGA, 0x00, 1);
    CHECK(t.log.blanks == blanks + 1);
    (void)mmio_read(&t, t.bar2 + VBE_MMIO_VGA + 0x1a, 1);
    mmio_write(&t, t.bar2 + VBE_MMIO_VGA, 0x20, 1);
    CHECK(t.log.scanouts == scanouts + 1);

    /* Reset: power-on registers, blank, zeroed VRAM, BARs unmapped. */
    blanks = t.log.blanks;
    devices_reset(&t.vm);
    CHECK(t.log.blanks == blanks + 1);
    CHECK(dispi_get(&t, VBE_ENABLE) == 0 && dispi_get(&t, VBE_XRES) == 0);
    CHECK(le32_get(bochs_vbe_vram(t.v) + 4096 * 10 + 8) == 0);
    CHECK(mmio_read(&t, t.bar2 + VBE_MMIO_DISPI, 2) == 0xffff); /* decode off */
    drop_rig(&t);
}

static struct state_out save_of(struct rig *t)
{
    struct state_out o;
    state_out_init(&o);
    struct device *d = device_find(&t->vm, "bochs-vbe");
    devices_quiesce(&t->vm);
    CHECK(d->ops->save(d, &o) == 0 && !o.failed);
    devices_resume(&t->vm);
    return o;
}

static int load_into(struct rig *t, const void *p, size_t n, char *why, size_t whylen)
{
    struct state_in in;
    state_in_init(&in, p, n);
    struct device *d = device_find(&t->vm, "bochs-vbe");
    int r = d->ops->load(d, &in);
    if (r == 0)
        r = state_in_end(&in);
    if (why)
        snprintf(why, whylen, "%s", in.why);
    return r;
}

static void test_save(void)
{
    struct rig a, b;
    make_rig(&a);
    enable(&a);
    mode(&a, 800, 600);
    dispi(&a, VBE_VIRT_WIDTH, 1024);
    dispi(&a, VBE_Y_OFFSET, 4);
    mmio_write(&a, a.bar0 + 16384 + 12, 0x00123456, 4);
    mmio_write(&a, a.bar0 + MB16 - 4, 0x00abcdef, 4);
    struct state_out o = save_of(&a);
    CHECK(o.len < 64 * 1024); /* two pages of pixels, not 16 MiB */

    make_rig(&b);
    char why[STATE_WHY_MAX];
    CHECK(load_into(&b, o.buf, o.len, why, sizeof(why)) == 0);
    CHECK(b.log.scanouts == 1 && b.log.w == 800 && b.log.h == 600 && b.log.stride == 4096 &&
          b.log.offset == 16384);
    CHECK(le32_get(bochs_vbe_vram(b.v) + 16384 + 12) == 0x00123456);
    CHECK(le32_get(bochs_vbe_vram(b.v) + MB16 - 4) == 0x00abcdef);
    CHECK(dispi_get(&b, VBE_VIRT_WIDTH) == 1024 && dispi_get(&b, VBE_Y_OFFSET) == 4);
    b.bar0 = cfg_read(&b, 0x10) & ~0xfu;
    CHECK(b.bar0 == a.bar0 && mmio_read(&b, b.bar0 + 16384 + 12, 4) == 0x00123456);

    /* Damage: each one is refused with a sentence, nothing half-applied. */
    size_t regs_at = o.len; /* find the registers: the ID value 0xb0c5 */
    for (size_t i = 0; i + 1 < o.len; i++)
        if (o.buf[i] == 0xc5 && o.buf[i + 1] == 0xb0) {
            regs_at = i;
            break;
        }
    CHECK(regs_at < o.len);
    uint8_t *bad = malloc(o.len);
    memcpy(bad, o.buf, o.len);
    bad[regs_at] = 0;
    CHECK(load_into(&b, bad, o.len, why, sizeof(why)) < 0 && strstr(why, "interface ID"));
    memcpy(bad, o.buf, o.len);
    bad[regs_at + 2 * VBE_VIDEO_MEMORY_64K] = 1;
    CHECK(load_into(&b, bad, o.len, why, sizeof(why)) < 0 && strstr(why, "video memory"));
    /* The first run's page number past the end of VRAM. */
    size_t run_at = regs_at + 2 * VBE_NR_REGS + 2;
    memcpy(bad, o.buf, o.len);
    le32_put(bad + run_at, 4096);
    CHECK(load_into(&b, bad, o.len, why, sizeof(why)) < 0 && strstr(why, "pages"));
    memcpy(bad, o.buf, o.len);
    le32_put(bad + run_at + 4, 0xffffffff);
    CHECK(load_into(&b, bad, o.len, why, sizeof(why)) < 0);
    CHECK(load_into(&b, o.buf, o.len - 3, why, sizeof(why)) < 0); /* truncated */
    free(bad);
    state_out_free(&o);
    drop_rig(&a);
    drop_rig(&b);
}

int main(void)
{
    test_regs();
    test_modes();
    test_device();
    test_save();
    CHECK_DONE();
}
