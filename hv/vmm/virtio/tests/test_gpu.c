// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-gpu 2D commands on fake guest RAM (a memfd): the whole path from
 * resource creation to the pixels in the scanout memfd, EDID, and every
 * hostile request answered with its error code.
 */
#include <fcntl.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gpu.h"
#include "log.h"
#include "mem.h"
#include "util.h"

static struct guest_mem mem;
static struct gpu_state g;

/* What the sink saw. */
static struct {
    int fd;
    uint32_t w, h, stride;
    unsigned scanouts, damages, blanks;
    uint32_t dx, dy, dw, dh;
} sink = {.fd = -1};

static void on_scanout(void *ctx, int fd, uint32_t w, uint32_t h, uint32_t stride)
{
    (void)ctx;
    if (sink.fd >= 0)
        close(sink.fd);
    sink.fd = dup(fd);
    sink.w = w, sink.h = h, sink.stride = stride;
    sink.scanouts++;
}

static void on_damage(void *ctx, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    (void)ctx;
    sink.dx = x, sink.dy = y, sink.dw = w, sink.dh = h;
    sink.damages++;
}

static void on_blank(void *ctx)
{
    (void)ctx;
    sink.blanks++;
}

/* Send a request, return the response type (or 0 when nothing was written). */
static uint32_t cmd_ex(const void *req, size_t len, const void *extra, size_t extra_len, void *resp,
                       size_t resp_len)
{
    uint8_t rbuf[2048] = {0};
    struct iovec iov[3];
    unsigned n = 0;
    iov[n++] = (struct iovec){(void *)req, len};
    if (extra_len)
        iov[n++] = (struct iovec){(void *)extra, extra_len};
    iov[n] =
        (struct iovec){resp ? resp : rbuf, resp ? resp_len : sizeof(struct virtio_gpu_ctrl_hdr)};
    uint32_t w = gpu_process(&g, iov, n, 1);
    if (w < sizeof(struct virtio_gpu_ctrl_hdr))
        return 0;
    struct virtio_gpu_ctrl_hdr h;
    memcpy(&h, iov[n].iov_base, sizeof(h));
    return h.type;
}

static uint32_t cmd(const void *req, size_t len)
{
    return cmd_ex(req, len, NULL, 0, NULL, 0);
}

#define HDR(t)                                                                                     \
    {                                                                                              \
        .type = (t)                                                                                \
    }

static uint32_t create(uint32_t id, uint32_t format, uint32_t w, uint32_t h)
{
    struct virtio_gpu_resource_create_2d c = {HDR(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), id, format, w,
                                              h};
    return cmd(&c, sizeof(c));
}

static uint32_t attach(uint32_t id, const struct virtio_gpu_mem_entry *e, uint32_t n)
{
    struct virtio_gpu_resource_attach_backing a = {HDR(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), id,
                                                   n};
    return cmd_ex(&a, sizeof(a), e, n * sizeof(*e), NULL, 0);
}

static uint32_t set_scanout(uint32_t sid, uint32_t id, uint32_t x, uint32_t y, uint32_t w,
                            uint32_t h)
{
    struct virtio_gpu_set_scanout s = {HDR(VIRTIO_GPU_CMD_SET_SCANOUT), {x, y, w, h}, sid, id};
    return cmd(&s, sizeof(s));
}

static uint32_t transfer(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint64_t off)
{
    struct virtio_gpu_transfer_to_host_2d t = {
        HDR(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D), {x, y, w, h}, off, id, 0};
    return cmd(&t, sizeof(t));
}

static uint32_t flush(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct virtio_gpu_resource_flush f = {HDR(VIRTIO_GPU_CMD_RESOURCE_FLUSH), {x, y, w, h}, id, 0};
    return cmd(&f, sizeof(f));
}

static uint32_t simple(uint32_t type, uint32_t id)
{
    struct virtio_gpu_resource_unref u = {HDR(type), id, 0};
    return cmd(&u, sizeof(u));
}

/* The scanout memfd's pixel (x, y). */
static uint32_t scanout_px(uint32_t x, uint32_t y)
{
    uint32_t v = 0;
    CHECK(pread(sink.fd, &v, 4, (off_t)y * sink.stride + x * 4) == 4);
    return v;
}

/* Guest backing for resource 1 (64x32): two pages far apart, 4 KiB each. */
#define RES_W  64
#define RES_H  32
#define PAGE_A 0x100000
#define PAGE_B 0x300000

static uint32_t *guest_px(uint32_t x, uint32_t y)
{
    uint64_t off = ((uint64_t)y * RES_W + x) * 4;
    uint64_t gpa = off < 4096 ? PAGE_A + off : PAGE_B + off - 4096;
    return guest_mem_ptr(&mem, gpa, 4);
}

static void test_display_info_edid(void)
{
    struct virtio_gpu_ctrl_hdr h = HDR(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    struct virtio_gpu_resp_display_info di;
    CHECK(cmd_ex(&h, sizeof(h), NULL, 0, &di, sizeof(di)) == VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    CHECK(di.pmodes[0].r.width == 1280 && di.pmodes[0].r.height == 800 && di.pmodes[0].enabled);
    CHECK(!di.pmodes[1].enabled);

    struct virtio_gpu_cmd_get_edid ge = {HDR(VIRTIO_GPU_CMD_GET_EDID), 0, 0};
    struct virtio_gpu_resp_edid e;
    CHECK(cmd_ex(&ge, sizeof(ge), NULL, 0, &e, sizeof(e)) == VIRTIO_GPU_RESP_OK_EDID);
    CHECK(e.size == 128);
    static const uint8_t magic[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
    CHECK(memcmp(e.edid, magic, 8) == 0 && e.edid[18] == 1 && e.edid[19] == 4);
    /* The preferred timing is the panel. */
    CHECK((e.edid[56] | (e.edid[58] >> 4) << 8) == 1280);
    CHECK((e.edid[59] | (e.edid[61] >> 4) << 8) == 800);
    ge.scanout = 1;
    CHECK(cmd(&ge, sizeof(ge)) == VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);

    /* Checksums for several sizes, including ones a timing cannot hold. */
    static const uint32_t sizes[][2] = {
        {1280, 800}, {1920, 1080}, {3840, 2160}, {8192, 8192}, {1, 1}};
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        uint8_t b[GPU_EDID_BYTES], sum = 0;
        gpu_edid_build(b, sizes[i][0], sizes[i][1]);
        for (int k = 0; k < GPU_EDID_BYTES; k++)
            sum += b[k];
        CHECK(sum == 0);
        CHECK(b[54] | b[55]); /* a non-zero pixel clock: a timing, not a descriptor */
    }
}

static void test_pipeline(void)
{
    CHECK(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, RES_W, RES_H) == VIRTIO_GPU_RESP_OK_NODATA);
    for (uint32_t y = 0; y < RES_H; y++)
        for (uint32_t x = 0; x < RES_W; x++)
            *guest_px(x, y) = 0x00010203u * (x + 1) + (y << 16);
    struct virtio_gpu_mem_entry e[2] = {{PAGE_A, 4096, 0}, {PAGE_B, 4096, 0}};
    CHECK(attach(1, e, 2) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(set_scanout(0, 1, 0, 0, RES_W, RES_H) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(sink.scanouts == 1 && sink.w == RES_W && sink.h == RES_H && sink.stride == RES_W * 4);

    /* The memfd: the scanout's size, sealed against shrinking and growing. */
    struct stat st;
    CHECK(fstat(sink.fd, &st) == 0 && st.st_size == RES_W * RES_H * 4);
    int seals = fcntl(sink.fd, F_GET_SEALS);
    CHECK(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW));

    CHECK(transfer(1, 0, 0, RES_W, RES_H, 0) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(flush(1, 0, 0, RES_W, RES_H) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(sink.damages == 1 && sink.dx == 0 && sink.dw == RES_W && sink.dh == RES_H);
    bool same = true;
    for (uint32_t y = 0; y < RES_H; y++)
        for (uint32_t x = 0; x < RES_W; x++)
            same &= scanout_px(x, y) == *guest_px(x, y);
    CHECK(same);

    /* A partial update: only the rectangle moves, damage says where. */
    for (uint32_t y = 4; y < 12; y++)
        for (uint32_t x = 8; x < 24; x++)
            *guest_px(x, y) = 0xffcc00;
    *guest_px(0, 0) = 0x123456; /* outside the rectangle: must not show */
    CHECK(transfer(1, 8, 4, 16, 8, (4 * RES_W + 8) * 4) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(flush(1, 8, 4, 16, 8) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(sink.dx == 8 && sink.dy == 4 && sink.dw == 16 && sink.dh == 8);
    CHECK(scanout_px(8, 4) == 0xffcc00 && scanout_px(23, 11) == 0xffcc00);
    CHECK(scanout_px(0, 0) != 0x123456 && scanout_px(24, 11) != 0xffcc00);

    /* A scanout showing part of the resource, and a flush half outside it. */
    CHECK(set_scanout(0, 1, 16, 8, 32, 16) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(sink.scanouts == 2 && sink.w == 32 && sink.h == 16); /* a mode change: new memfd */
    CHECK(scanout_px(0, 0) == 0xffcc00);                       /* resource (16, 8) */
    unsigned d = sink.damages;
    CHECK(flush(1, 0, 0, 20, 10) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(sink.damages == d + 1 && sink.dx == 0 && sink.dy == 0 && sink.dw == 4 && sink.dh == 2);
    CHECK(flush(1, 0, 0, 8, 8) == VIRTIO_GPU_RESP_OK_NODATA); /* outside the scanout */
    CHECK(sink.damages == d + 1);

    /* Another format is converted to XRGB8888. */
    CHECK(create(2, VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 32, 16) == VIRTIO_GPU_RESP_OK_NODATA);
    uint8_t *p = guest_mem_ptr(&mem, 0x400000, 32 * 16 * 4);
    for (int i = 0; i < 32 * 16; i++)
        p[4 * i] = 0x11, p[4 * i + 1] = 0x22, p[4 * i + 2] = 0x33, p[4 * i + 3] = 0x80;
    struct virtio_gpu_mem_entry e2 = {0x400000, 32 * 16 * 4, 0};
    CHECK(attach(2, &e2, 1) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(transfer(2, 0, 0, 32, 16, 0) == VIRTIO_GPU_RESP_OK_NODATA);
    unsigned s = sink.scanouts;
    CHECK(set_scanout(0, 2, 0, 0, 32, 16) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(sink.scanouts == s); /* same size: a page flip, no new memfd */
    CHECK((scanout_px(5, 5) & 0xffffff) == 0x112233);

    /* Page flip back, disable, fences echoed. */
    CHECK(set_scanout(0, 1, 16, 8, 32, 16) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(set_scanout(0, 0, 0, 0, 0, 0) == VIRTIO_GPU_RESP_OK_NODATA && sink.blanks == 1);
    struct virtio_gpu_resource_flush f = {
        {.type = VIRTIO_GPU_CMD_RESOURCE_FLUSH, .flags = VIRTIO_GPU_FLAG_FENCE, .fence_id = 77},
        {0, 0, 1, 1},
        1,
        0};
    struct virtio_gpu_ctrl_hdr r;
    CHECK(cmd_ex(&f, sizeof(f), NULL, 0, &r, sizeof(r)) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK((r.flags & VIRTIO_GPU_FLAG_FENCE) && r.fence_id == 77);

    /* Cursor commands are accepted. */
    struct virtio_gpu_update_cursor c = {
        HDR(VIRTIO_GPU_CMD_MOVE_CURSOR), {0, 10, 20, 0}, 0, 0, 0, 0};
    CHECK(cmd(&c, sizeof(c)) == VIRTIO_GPU_RESP_OK_NODATA && g.cursor_x == 10);
    c.hdr.type = VIRTIO_GPU_CMD_UPDATE_CURSOR;
    c.resource_id = 1; /* not 64x64 */
    CHECK(cmd(&c, sizeof(c)) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);

    CHECK(simple(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 2) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(simple(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 2) == VIRTIO_GPU_RESP_ERR_UNSPEC);
    CHECK(transfer(2, 0, 0, 1, 1, 0) == VIRTIO_GPU_RESP_ERR_UNSPEC); /* no backing */
    CHECK(simple(VIRTIO_GPU_CMD_RESOURCE_UNREF, 2) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(simple(VIRTIO_GPU_CMD_RESOURCE_UNREF, 2) == VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
}

static void test_hostile(void)
{
    /* Resources: ids, formats, sizes, the memory cap. */
    CHECK(create(0, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8) ==
          VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    CHECK(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8) ==
          VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    CHECK(create(9, 999, 8, 8) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(create(9, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0, 8) ==
          VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(create(9, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16385, 1) ==
          VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(create(9, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, UINT32_MAX, UINT32_MAX) ==
          VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(create(9, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16384, 16384) ==
          VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    uint64_t before = g.host_bytes;
    for (uint32_t id = 100; id < 103; id++)
        CHECK(create(id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4096, 4096) ==
              VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(create(103, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4096, 4096) ==
          VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    for (uint32_t id = 100; id < 103; id++)
        CHECK(simple(VIRTIO_GPU_CMD_RESOURCE_UNREF, id) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(g.host_bytes == before);

    /* Backing: outside RAM, wrapping, too short, too many, truncated, twice. */
    CHECK(create(3, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 32, 32) == VIRTIO_GPU_RESP_OK_NODATA);
    struct virtio_gpu_mem_entry out[] = {{64 * MiB - 2048, 4096, 0}};
    CHECK(attach(3, out, 1) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    struct virtio_gpu_mem_entry mmio[] = {{MEM_PCI_MMIO_BASE, 4096, 0}};
    CHECK(attach(3, mmio, 1) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    struct virtio_gpu_mem_entry wrap[] = {{UINT64_MAX - 100, 4096, 0}};
    CHECK(attach(3, wrap, 1) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    struct virtio_gpu_mem_entry shrt[] = {{0x500000, 4095, 0}};
    CHECK(attach(3, shrt, 1) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(attach(3, shrt, 0) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(attach(77, shrt, 1) == VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    struct virtio_gpu_resource_attach_backing a = {HDR(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), 3,
                                                   GPU_MAX_ENTRIES + 1};
    CHECK(cmd(&a, sizeof(a)) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    a.nr_entries = 100; /* claims 100 entries, carries none */
    CHECK(cmd(&a, sizeof(a)) == VIRTIO_GPU_RESP_ERR_UNSPEC);
    struct virtio_gpu_mem_entry ok[] = {{0x500000, 2048, 0}, {0x600000, 2048, 0}};
    CHECK(attach(3, ok, 2) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(attach(3, ok, 2) == VIRTIO_GPU_RESP_ERR_UNSPEC);

    /* Transfers: rectangles and offsets beyond the resource or the backing. */
    CHECK(transfer(3, 0, 0, 33, 1, 0) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, 31, 31, 2, 1, 0) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, UINT32_MAX, 0, 2, 1, 0) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, 0, UINT32_MAX - 1, 1, 4, 0) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, 0, 0, 32, 32, 4) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, 0, 0, 1, 1, UINT64_MAX) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, 0, 0, 1, 1, UINT64_MAX - 2) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, 0, 0, 1, 2, 4096 - 128) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(transfer(3, 0, 0, 1, 1, 4096 - 4) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(transfer(99, 0, 0, 1, 1, 0) == VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    CHECK(transfer(3, 0, 0, 32, 32, 0) == VIRTIO_GPU_RESP_OK_NODATA); /* across both pages */

    /* Scanouts: id, rectangle, absurd sizes. */
    CHECK(set_scanout(1, 3, 0, 0, 32, 32) == VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
    CHECK(set_scanout(0, 99, 0, 0, 32, 32) == VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    CHECK(set_scanout(0, 3, 0, 0, 33, 32) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(set_scanout(0, 3, 1, 0, 32, 32) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(set_scanout(0, 3, UINT32_MAX, 0, 2, 2) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(set_scanout(0, 3, 0, 0, 0, 32) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(create(4, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16384, 2) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(set_scanout(0, 4, 0, 0, 9000, 2) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(simple(VIRTIO_GPU_CMD_RESOURCE_UNREF, 4) == VIRTIO_GPU_RESP_OK_NODATA);

    /* Flushes, malformed requests, no room for the answer. */
    CHECK(flush(3, 0, 0, 64, 1) == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    CHECK(flush(99, 0, 0, 1, 1) == VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    struct virtio_gpu_ctrl_hdr h = HDR(VIRTIO_GPU_CMD_RESOURCE_FLUSH);
    CHECK(cmd(&h, sizeof(h)) == VIRTIO_GPU_RESP_ERR_UNSPEC); /* no body */
    CHECK(cmd(&h, 10) == VIRTIO_GPU_RESP_ERR_UNSPEC);        /* half a header */
    h.type = 0x9999;
    CHECK(cmd(&h, sizeof(h)) == VIRTIO_GPU_RESP_ERR_UNSPEC);
    uint8_t tiny[4];
    CHECK(cmd_ex(&h, sizeof(h), NULL, 0, tiny, sizeof(tiny)) == 0);
    struct iovec only = {&h, sizeof(h)};
    CHECK(gpu_process(&g, &only, 1, 0) == 0);

    /* A reset frees everything. */
    gpu_state_reset(&g);
    CHECK(g.host_bytes == 0 && g.nr_resources == 0 && g.scanout_fd < 0);
}

/*
 * Issue 12, defect 3: backing arrays count against the memory cap. Tiny
 * resources with the most backing entries each: 4096 of them cost 4 GiB of
 * host memory before; now attaching stops at the cap (256 MiB), and
 * everything is given back when the resources go.
 */
static void test_backing_arrays_are_capped(void)
{
    uint64_t before = g.host_bytes;
    static struct virtio_gpu_mem_entry many[GPU_MAX_ENTRIES];
    for (uint32_t i = 0; i < GPU_MAX_ENTRIES; i++)
        many[i] = (struct virtio_gpu_mem_entry){0x500000, 16, 0};
    uint32_t attached = 0, refused = 0, id;
    for (id = 1000; id < 1000 + 400 && !refused; id++) { /* 400 x 1 MiB: far past the cap */
        CHECK(create(id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2, 2) == VIRTIO_GPU_RESP_OK_NODATA);
        uint32_t r = attach(id, many, GPU_MAX_ENTRIES);
        r == VIRTIO_GPU_RESP_OK_NODATA ? attached++ : refused++;
        CHECK(r == VIRTIO_GPU_RESP_OK_NODATA || r == VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
        CHECK(g.host_bytes <= GPU_MAX_HOST_BYTES);
    }
    CHECK(refused == 1 && attached < (GPU_MAX_HOST_BYTES >> 20));
    for (uint32_t k = 1000; k < id; k++)
        CHECK(simple(VIRTIO_GPU_CMD_RESOURCE_UNREF, k) == VIRTIO_GPU_RESP_OK_NODATA);
    CHECK(g.host_bytes == before);
}

int main(void)
{
    hv_log_init("test");
    hv_log_set_level(HV_LOG_ERROR); /* refused commands are expected here */
    CHECK(guest_mem_init(&mem, 64 * MiB) == 0);
    gpu_state_init(&g, "test-gpu", &mem, 1280, 800);
    g.sink = (struct gpu_sink){NULL, on_scanout, on_damage, on_blank};
    test_display_info_edid();
    test_pipeline();
    test_hostile();
    test_backing_arrays_are_capped();
    CHECK_DONE();
}
