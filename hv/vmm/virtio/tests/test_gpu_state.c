// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Save and load of virtio-gpu's 2D state (gpu_state_save/load) on fake
 * guest RAM: resources, their pixels and backing, the scanout and cursor
 * come back in a fresh device, which shows the same picture at once; every
 * corrupted value is refused with a sentence and leaves nothing behind.
 */
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gpu.h"
#include "log.h"
#include "mem.h"
#include "state.h"
#include "util.h"

static struct guest_mem mem;

struct sink_seen {
    int fd;
    uint32_t w, h, stride;
    unsigned scanouts;
};

static void on_scanout(void *ctx, int fd, uint32_t w, uint32_t h, uint32_t stride)
{
    struct sink_seen *s = ctx;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = dup(fd);
    s->w = w, s->h = h, s->stride = stride;
    s->scanouts++;
}

static void new_gpu(struct gpu_state *g, struct sink_seen *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    gpu_state_init(g, "test-gpu", &mem, 1280, 800);
    g->sink = (struct gpu_sink){s, on_scanout, NULL, NULL};
}

static uint32_t cmd(struct gpu_state *g, const void *req, size_t len, const void *extra,
                    size_t extra_len)
{
    struct virtio_gpu_ctrl_hdr resp = {0};
    struct iovec iov[3];
    unsigned n = 0;
    iov[n++] = (struct iovec){(void *)req, len};
    if (extra_len)
        iov[n++] = (struct iovec){(void *)extra, extra_len};
    iov[n] = (struct iovec){&resp, sizeof(resp)};
    gpu_process(g, iov, n, 1);
    return resp.type;
}

#define HDR(t)                                                                                     \
    {                                                                                              \
        .type = (t)                                                                                \
    }
#define OK VIRTIO_GPU_RESP_OK_NODATA

static uint32_t create(struct gpu_state *g, uint32_t id, uint32_t format, uint32_t w, uint32_t h)
{
    struct virtio_gpu_resource_create_2d c = {HDR(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), id, format, w,
                                              h};
    return cmd(g, &c, sizeof(c), NULL, 0);
}

static uint32_t attach(struct gpu_state *g, uint32_t id, const struct virtio_gpu_mem_entry *e,
                       uint32_t n)
{
    struct virtio_gpu_resource_attach_backing a = {HDR(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), id,
                                                   n};
    return cmd(g, &a, sizeof(a), e, n * sizeof(*e));
}

static uint32_t transfer(struct gpu_state *g, uint32_t id, uint32_t w, uint32_t h)
{
    struct virtio_gpu_transfer_to_host_2d t = {
        HDR(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D), {0, 0, w, h}, 0, id, 0};
    return cmd(g, &t, sizeof(t), NULL, 0);
}

static uint32_t set_scanout(struct gpu_state *g, uint32_t id, uint32_t x, uint32_t y, uint32_t w,
                            uint32_t h)
{
    struct virtio_gpu_set_scanout s = {HDR(VIRTIO_GPU_CMD_SET_SCANOUT), {x, y, w, h}, 0, id};
    return cmd(g, &s, sizeof(s), NULL, 0);
}

static uint32_t simple(struct gpu_state *g, uint32_t type, uint32_t id)
{
    struct virtio_gpu_resource_unref u = {HDR(type), id, 0};
    return cmd(g, &u, sizeof(u), NULL, 0);
}

static uint32_t move_cursor(struct gpu_state *g, uint32_t x, uint32_t y)
{
    struct virtio_gpu_update_cursor c = {HDR(VIRTIO_GPU_CMD_MOVE_CURSOR), {0, x, y, 0}, 0, 0, 0, 0};
    return cmd(g, &c, sizeof(c), NULL, 0);
}

#define PAGE_A 0x100000
#define PAGE_B 0x300000
#define PAGE_C 0x500000

static void fill_guest(uint64_t gpa, size_t len, uint32_t seed)
{
    uint32_t *p = guest_mem_ptr(&mem, gpa, len);
    for (size_t i = 0; i < len / 4; i++)
        p[i] = seed + (uint32_t)i * 0x010203u;
}

/* Resource 1 (64x32, BGRX, two pages) on the scanout; resource 5 (16x16, RGBA) without backing. */
static void build(struct gpu_state *g)
{
    CHECK(create(g, 5, VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 16, 16) == OK);
    struct virtio_gpu_mem_entry c = {PAGE_C, 16 * 16 * 4, 0};
    fill_guest(PAGE_C, 1024, 0x11223344);
    CHECK(attach(g, 5, &c, 1) == OK);
    CHECK(transfer(g, 5, 16, 16) == OK);
    CHECK(simple(g, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 5) == OK);
    fill_guest(PAGE_C, 1024, 0); /* its pixels now live only in the device */

    CHECK(create(g, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 32) == OK);
    struct virtio_gpu_mem_entry e[2] = {{PAGE_A, 4096, 0}, {PAGE_B, 4096, 0}};
    fill_guest(PAGE_A, 4096, 0x00010000);
    fill_guest(PAGE_B, 4096, 0x00800000);
    CHECK(attach(g, 1, e, 2) == OK);
    CHECK(transfer(g, 1, 64, 32) == OK);
    CHECK(set_scanout(g, 1, 8, 4, 48, 20) == OK);
    CHECK(move_cursor(g, 300, 200) == OK);
}

static int load_bytes(struct gpu_state *g, const void *p, size_t len, char *why)
{
    struct state_in in;
    state_in_init(&in, p, len);
    int r = gpu_state_load(g, &in);
    if (r == 0)
        r = state_in_end(&in);
    strcpy(why, in.why);
    return r;
}

static bool same_fd_bytes(int a, int b, size_t len)
{
    uint8_t *x = malloc(len), *y = malloc(len);
    bool same = pread(a, x, len, 0) == (ssize_t)len && pread(b, y, len, 0) == (ssize_t)len &&
                memcmp(x, y, len) == 0;
    free(x);
    free(y);
    return same;
}

static void test_roundtrip(void)
{
    struct gpu_state g, h;
    struct sink_seen sg, sh;
    struct state_out out, again;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    state_out_init(&again);
    new_gpu(&g, &sg);
    build(&g);
    CHECK(gpu_state_save(&g, &out) == 0 && !out.failed);

    new_gpu(&h, &sh);
    CHECK(load_bytes(&h, out.buf, out.len, why) == 0);
    /* Shown again at once, same size, same pixels. */
    CHECK(sh.scanouts == 1 && sh.w == 48 && sh.h == 20 && sh.stride == 48 * 4);
    CHECK(same_fd_bytes(sg.fd, sh.fd, 48 * 20 * 4));
    CHECK(h.nr_resources == 2 && h.host_bytes == g.host_bytes);
    CHECK(h.scanout_res == 1 && h.sx == 8 && h.sy == 4 && h.cursor_x == 300 && h.cursor_y == 200);
    /* Saved again: the same bytes (the list order too). */
    CHECK(gpu_state_save(&h, &again) == 0 && again.len == out.len &&
          memcmp(again.buf, out.buf, out.len) == 0);

    /* The backing is attached again to the same guest pages: a new transfer reads them. */
    fill_guest(PAGE_A, 4096, 0x00abcdef);
    CHECK(transfer(&g, 1, 64, 32) == OK && transfer(&h, 1, 64, 32) == OK);
    CHECK(set_scanout(&g, 1, 0, 0, 64, 32) == OK && set_scanout(&h, 1, 0, 0, 64, 32) == OK);
    CHECK(same_fd_bytes(sg.fd, sh.fd, 64 * 32 * 4));
    /* Resource 5 kept its pixels without backing, and has none attached. */
    CHECK(set_scanout(&g, 5, 0, 0, 16, 16) == OK && set_scanout(&h, 5, 0, 0, 16, 16) == OK);
    CHECK(same_fd_bytes(sg.fd, sh.fd, 16 * 16 * 4));
    CHECK(transfer(&h, 5, 16, 16) == VIRTIO_GPU_RESP_ERR_UNSPEC);
    /* Ids are taken again as before. */
    CHECK(create(&h, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 8, 8) ==
          VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);

    /* Nothing on the scanout: loads without a surface. */
    struct gpu_state e;
    struct sink_seen se;
    CHECK(set_scanout(&g, 0, 0, 0, 0, 0) == OK);
    state_out_clear(&again);
    CHECK(gpu_state_save(&g, &again) == 0);
    new_gpu(&e, &se);
    CHECK(load_bytes(&e, again.buf, again.len, why) == 0);
    CHECK(se.scanouts == 0 && e.scanout_res == 0 && e.nr_resources == 2);
    gpu_state_reset(&e);

    gpu_state_reset(&g);
    gpu_state_reset(&h);
    CHECK(h.host_bytes == 0 && h.nr_resources == 0);
    state_out_free(&again);
    state_out_free(&out);
    close(sg.fd);
    close(sh.fd);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* Byte offsets in the saved section of build(): resource 1 comes first (the list's order). */
#define OFF_NR      0
#define OFF_ID      4
#define OFF_FORMAT  8
#define OFF_WIDTH   12
#define OFF_NR_BACK 20
#define OFF_GPA0    24
#define OFF_LEN0    32

static void test_corrupted(void)
{
    struct gpu_state g, h;
    struct sink_seen sg, sh;
    struct state_out out;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    new_gpu(&g, &sg);
    build(&g);
    CHECK(gpu_state_save(&g, &out) == 0);
    uint8_t *bad = malloc(out.len + 1);
    new_gpu(&h, &sh);

#define REFUSED(what)                                                                              \
    do {                                                                                           \
        CHECK(load_bytes(&h, bad, out.len, why) < 0 && strstr(why, what));                         \
        CHECK(h.nr_resources == 0 && h.host_bytes == 0 && h.scanout_fd < 0);                       \
        memcpy(bad, out.buf, out.len);                                                             \
    } while (0)

    memcpy(bad, out.buf, out.len);
    put32(bad + OFF_FORMAT, 77);
    REFUSED("format 77");
    put32(bad + OFF_ID, 0);
    REFUSED("id 0");
    put32(bad + OFF_WIDTH, GPU_MAX_DIM + 1);
    REFUSED("outside 1..");
    put32(bad + OFF_NR, GPU_MAX_RESOURCES + 1);
    REFUSED("more than 4096");
    put32(bad + OFF_NR_BACK, GPU_MAX_ENTRIES + 1);
    REFUSED("backing entries");
    uint64_t outside = mem.size + 0x100000000ull;
    memcpy(bad + OFF_GPA0, &outside, 8);
    REFUSED("outside guest RAM");
    put32(bad + OFF_GPA0, 64 * MiB - 100); /* runs past the end of RAM */
    REFUSED("outside guest RAM");
    put32(bad + OFF_LEN0, 16);
    REFUSED("shorter than its pixels");
    /* The scanout: the tail is res, x, y, w, h, cursor x, y. */
    size_t tail = out.len - 7 * 4;
    put32(bad + tail, 9);
    REFUSED("resource 9, which does not exist");
    put32(bad + tail + 12, 64);
    REFUSED("does not fit");
    put32(bad + tail + 12, 0);
    REFUSED("does not fit");
    /* Truncated anywhere: refused, never half-loaded. */
    for (size_t n = 0; n < out.len; n += n < 64 ? 1 : 997) {
        CHECK(load_bytes(&h, out.buf, n, why) < 0);
        CHECK(h.nr_resources == 0 && h.host_bytes == 0);
    }
    /* A huge resource claimed by a short section: refused before allocating it. */
    put32(bad + OFF_WIDTH, GPU_MAX_DIM);
    put32(bad + OFF_WIDTH + 4, GPU_MAX_DIM);
    REFUSED("ends inside resource");
    /* Two resources with one id. */
    put32(bad + OFF_ID, 5);
    REFUSED("taken");

    free(bad);
    gpu_state_reset(&g);
    state_out_free(&out);
    if (sg.fd >= 0)
        close(sg.fd);
}

int main(void)
{
    hv_log_init("test");
    hv_log_set_level(HV_LOG_ERROR);
    CHECK(guest_mem_init(&mem, 64 * MiB) == 0);
    test_roundtrip();
    test_corrupted();
    CHECK_DONE();
}
