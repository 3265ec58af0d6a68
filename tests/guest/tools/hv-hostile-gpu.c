/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-hostile-gpu: a hostile virtio-gpu driver, run as root in the desktop
 * test guest after the kernel's driver is unbound (tests/guest/tests/
 * hostile-gpu.sh). It drives the virtio-gpu PCI function through its BAR 0
 * (tests/guest/include/virtio_bar.h) and sends controlq requests, bad ones
 * between good ones:
 *
 *   create-ok         RESOURCE_CREATE_2D 1: 64x64 XRGB       -> OK_NODATA
 *   create-huge       RESOURCE_CREATE_2D 2: 65536x65536      -> ERR_INVALID_PARAMETER
 *   backing-outside   ATTACH_BACKING 1 at 0x7ff000000000     -> ERR_INVALID_PARAMETER
 *   backing-ok        ATTACH_BACKING 1: four pages of ours   -> OK_NODATA
 *   scanout-absurd    SET_SCANOUT 9000x9000 on resource 1    -> ERR_INVALID_PARAMETER
 *   transfer-outside  TRANSFER_TO_HOST_2D 64x64 at offset 8192 (rows past the
 *                     backing: a bad stride/offset)          -> ERR_INVALID_PARAMETER
 *   scanout-ok, transfer-ok, flush-ok   resource 1 painted in --colour on
 *                     scanout 0                              -> OK_NODATA each
 *
 * One line per request: "hostile-gpu: CASE resp 0xNNNN". Then it keeps its
 * memory (the picture's backing) for --hold seconds and exits.
 *
 *   hv-hostile-gpu BDF [RRGGBB] [HOLD]
 */
#define _GNU_SOURCE
#include "virtio_bar.h"

#define QSIZE  16
#define NPAGES 8 /* desc, avail, used, command, 4 of backing */

struct hdr {
    uint32_t type, flags;
    uint64_t fence_id;
    uint32_t ctx_id;
    uint8_t ring_idx, pad[3];
};

struct rect {
    uint32_t x, y, w, h;
};

static uint8_t *pages[NPAGES];
static uint64_t phys[NPAGES];
static uint16_t avail_idx;

static int start(void)
{
    if (vbar_negotiate() < 0)
        return -1;
    for (int i = 0; i < 3; i++)
        memset(pages[i], 0, 4096);
    vbar_setup_queue(0, QSIZE, phys[0], phys[1], phys[2]); /* controlq */
    vbar_driver_ok();
    return 0;
}

/* Sends the command of len bytes at the start of the command page; returns
 * the response's type (0 when none came). */
static uint32_t request(const void *cmd, uint32_t len)
{
    struct desc *d = (struct desc *)pages[0];
    volatile uint16_t *avail = (volatile uint16_t *)pages[1];
    volatile uint16_t *used = (volatile uint16_t *)pages[2];
    uint8_t *page = pages[3];
    uint16_t slot = (uint16_t)(avail_idx % (QSIZE / 2) * 2);

    memset(page, 0, 4096);
    memcpy(page, cmd, len);
    d[slot] = (struct desc){phys[3], len, D_NEXT, (uint16_t)(slot + 1)};
    d[slot + 1] = (struct desc){phys[3] + 2048, 1024, D_WRITE, 0};
    avail[2 + avail_idx % QSIZE] = slot;
    __sync_synchronize();
    avail[1] = ++avail_idx;
    vbar_kick(0);
    for (int i = 0; i < 3000 && used[1] != avail_idx; i++)
        msleep(1);
    if (used[1] != avail_idx)
        return 0;
    return ((struct hdr *)(page + 2048))->type;
}

static void say(const char *name, uint32_t resp)
{
    printf("hostile-gpu: %s resp 0x%04x\n", name, resp);
    fflush(stdout);
}

static void create(const char *name, uint32_t id, uint32_t w, uint32_t h)
{
    struct {
        struct hdr hd;
        uint32_t id, format, width, height;
    } c = {{.type = 0x0101}, id, 2 /* B8G8R8X8 */, w, h};
    say(name, request(&c, sizeof(c)));
}

static void attach(const char *name, uint32_t id, const uint64_t *addr, int n, uint32_t len)
{
    struct {
        struct hdr hd;
        uint32_t id, n;
        struct {
            uint64_t addr;
            uint32_t len, pad;
        } e[4];
    } c = {{.type = 0x0106}, id, (uint32_t)n, {{0}}};
    for (int i = 0; i < n; i++) {
        c.e[i].addr = addr[i];
        c.e[i].len = len;
    }
    say(name, request(&c, (uint32_t)(32 + 16 * n)));
}

static void scanout(const char *name, uint32_t id, uint32_t w, uint32_t h)
{
    struct {
        struct hdr hd;
        struct rect r;
        uint32_t scanout, id;
    } c = {{.type = 0x0103}, {0, 0, w, h}, 0, id};
    say(name, request(&c, sizeof(c)));
}

static void transfer(const char *name, uint32_t id, uint64_t offset)
{
    struct {
        struct hdr hd;
        struct rect r;
        uint64_t offset;
        uint32_t id, pad;
    } c = {{.type = 0x0105}, {0, 0, 64, 64}, offset, id, 0};
    say(name, request(&c, sizeof(c)));
}

static void flush(const char *name, uint32_t id)
{
    struct {
        struct hdr hd;
        struct rect r;
        uint32_t id, pad;
    } c = {{.type = 0x0104}, {0, 0, 64, 64}, id, 0};
    say(name, request(&c, sizeof(c)));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hv-hostile-gpu BDF [RRGGBB] [HOLD]\n");
        return 2;
    }
    uint32_t colour = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 16) : 0x20c040;
    unsigned hold = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
    vbar_open("hostile-gpu", argv[1], NPAGES, pages, phys);
    if (start() < 0) {
        fprintf(stderr, "hostile-gpu: the device refused our features\n");
        return 1;
    }
    for (int i = 0; i < 64 * 64; i++)
        ((uint32_t *)pages[4 + i / 1024])[i % 1024] = colour;

    uint64_t outside = 0x7ff000000000ull;
    create("create-ok", 1, 64, 64);
    create("create-huge", 2, 65536, 65536);
    attach("backing-outside", 1, &outside, 1, 16384);
    attach("backing-ok", 1, &phys[4], 4, 4096);
    scanout("scanout-absurd", 1, 9000, 9000);
    transfer("transfer-outside", 1, 8192);
    scanout("scanout-ok", 1, 64, 64);
    transfer("transfer-ok", 1, 0);
    flush("flush-ok", 1);
    sleep(hold);
    return 0;
}
