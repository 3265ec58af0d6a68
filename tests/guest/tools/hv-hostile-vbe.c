/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-hostile-vbe: a hostile driver of the Bochs VBE display (static, runs in
 * the desktop test guest as root after the kernel's bochs driver is unbound).
 *
 *   hv-hostile-vbe BDF RRGGBB RRGGBB HOLD [LAST_HOLD]
 *
 * Drives the DISPI registers through ports 0x1CE/0x1CF and through BAR 2,
 * and draws through BAR 0 (sysfs resource files), printing one line per step
 * on the console, each state held HOLD seconds so the test can look:
 *
 *   hostile-vbe: good-a          640x480, painted in the first colour
 *   hostile-vbe: huge            65535x65535 enabled: nothing fits
 *   hostile-vbe: nasties done    every register at absurd values, both ways
 *   hostile-vbe: good-b          800x600 in the second colour, kept LAST_HOLD
 *                                seconds (default HOLD) without drawing again
 *   hostile-vbe: id 0xb0c5 mem 256 edid 00ffffffffffff00
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <unistd.h>

enum { ID, XRES, YRES, BPP, ENABLE, BANK, VWIDTH, VHEIGHT, XOFF, YOFF, VMEM };
#define ENABLED    0x01
#define LFB        0x40
#define NOCLEARMEM 0x80

static volatile uint8_t *mmio;
static uint32_t *vram;
static size_t vram_len;

static void port_write(uint16_t index, uint16_t val)
{
    outw(index, 0x1ce);
    outw(val, 0x1cf);
}

static uint16_t port_read(uint16_t index)
{
    outw(index, 0x1ce);
    return inw(0x1cf);
}

static void mmio_write(uint16_t index, uint16_t val)
{
    *(volatile uint16_t *)(mmio + 0x500 + 2 * index) = val;
}

/* sysfs resource files cannot be sized with lseek: the device's BAR sizes are known. */
static void *map_resource(const char *bdf, int n, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%d", bdf, n);
    int fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    close(fd);
    return p;
}

/*
 * The VGA attribute index's screen-on bit, as a driver sets it (the kernel's
 * driver cleared it when it let go): 0x3DA resets the flip-flop, then 0x3C0.
 */
static void vga_on(void)
{
    (void)mmio[0x41a];
    mmio[0x400] = 0x20;
}

static void set_mode(unsigned w, unsigned h)
{
    vga_on();
    port_write(ENABLE, 0);
    port_write(XRES, (uint16_t)w);
    port_write(YRES, (uint16_t)h);
    port_write(BPP, 32);
    port_write(ENABLE, ENABLED | LFB);
}

static void paint(unsigned w, unsigned h, uint32_t colour)
{
    for (size_t i = 0; i < (size_t)w * h && i < vram_len / 4; i++)
        vram[i] = colour;
}

static void step(const char *what, unsigned hold)
{
    printf("hostile-vbe: %s\n", what);
    fflush(stdout);
    sleep(hold);
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: hv-hostile-vbe BDF RRGGBB RRGGBB HOLD [LAST_HOLD]\n");
        return 2;
    }
    uint32_t a = (uint32_t)strtoul(argv[2], NULL, 16), b = (uint32_t)strtoul(argv[3], NULL, 16);
    unsigned hold = (unsigned)atoi(argv[4]), last = argc > 5 ? (unsigned)atoi(argv[5]) : hold;
    size_t mlen = 4096;
    if (ioperm(0x1ce, 3, 1) < 0) { /* a 16-bit access at 0x1CF also touches 0x1D0 */
        perror("ioperm");
        return 1;
    }
    vram_len = 16u << 20;
    vram = map_resource(argv[1], 0, vram_len);
    mmio = map_resource(argv[1], 2, mlen);

    set_mode(640, 480);
    paint(640, 480, a);
    step("good-a", hold);

    port_write(ENABLE, 0);
    port_write(XRES, 0xffff);
    port_write(YRES, 0xffff);
    port_write(ENABLE, ENABLED | LFB | NOCLEARMEM);
    step("huge", hold);

    /* Every register at absurd values, through the ports and through BAR 2. */
    static const uint16_t absurd[] = {0, 1, 7, 0x7fff, 0x8000, 0xfffe, 0xffff};
    for (unsigned r = 0; r <= VMEM + 2; r++) {
        for (unsigned i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++) {
            set_mode(640, 480);
            port_write((uint16_t)r, absurd[i]);
            set_mode(640, 480);
            mmio_write((uint16_t)r, absurd[i]);
        }
    }
    port_write(0xffff, 0xffff); /* an index past the registers */
    (void)port_read(0xffff);
    /* Panned to the very end of video memory, and a mode larger than it. */
    set_mode(1024, 768);
    port_write(VWIDTH, 4096);
    port_write(YOFF, 0xffff);
    set_mode(4096, 4096);
    port_write(BPP, 8);
    port_write(ENABLE, ENABLED | LFB);
    /* Garbage over the whole of BAR 2. */
    for (size_t off = 0; off + 4 <= mlen; off += 4)
        *(volatile uint32_t *)(mmio + off) = 0xffffffffu;
    step("nasties done", 1);

    set_mode(800, 600);
    paint(800, 600, b);
    char edid[17];
    for (int i = 0; i < 8; i++)
        snprintf(edid + 2 * i, 3, "%02x", mmio[i]);
    printf("hostile-vbe: id 0x%x mem %u edid %s\n", port_read(ID), port_read(VMEM), edid);
    step("good-b", last);
    return 0;
}
