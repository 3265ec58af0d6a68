/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-gpu 2D (virtio 1.2 §5.7): the command processor, apart from the
 * transport so that unit tests and the fuzzer drive it with plain iovecs.
 * One scanout. Resources live in host memory (capped per VM); the scanout is
 * a sealed memfd in XRGB8888 that a sink (the display connection) shows.
 */
#ifndef HV_VMM_VIRTIO_GPU_H
#define HV_VMM_VIRTIO_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../mem.h"

#define GPU_MAX_DIM        16384        /* per resource dimension */
#define GPU_MAX_HOST_BYTES (256u << 20) /* all resources of one VM */
#define GPU_MAX_RESOURCES  4096
#define GPU_MAX_ENTRIES    65536 /* backing pages of one resource */
#define GPU_MAX_SCANOUT    8192  /* DISP_MAX_DIM: what hv-switch takes */
#define GPU_DEFAULT_WIDTH  1280
#define GPU_DEFAULT_HEIGHT 800
#define GPU_EDID_BYTES     128

/* Where the scanout goes (display.c); every callback is optional. */
struct gpu_sink {
    void *ctx;
    /* A new surface: fd is the memfd (the sink dup()s it if it keeps it). */
    void (*scanout)(void *ctx, int fd, uint32_t width, uint32_t height, uint32_t stride);
    void (*damage)(void *ctx, uint32_t x, uint32_t y, uint32_t w, uint32_t h);
    void (*blank)(void *ctx);
};

struct gpu_resource;

struct gpu_state {
    const char *name; /* for messages */
    const struct guest_mem *mem;
    uint32_t panel_width, panel_height; /* what GET_DISPLAY_INFO and EDID offer */
    struct gpu_sink sink;

    struct gpu_resource *resources; /* singly linked */
    unsigned nr_resources;
    uint64_t host_bytes;

    /* The scanout: which resource and rectangle, and the memfd it is copied to. */
    uint32_t scanout_res;
    uint32_t sx, sy, sw, sh;
    int scanout_fd;
    uint8_t *scanout_map;
    uint32_t map_w, map_h; /* size of the memfd surface (stride = map_w * 4) */

    uint32_t cursor_x, cursor_y;
    bool logged_bad;
};

void gpu_state_init(struct gpu_state *g, const char *name, const struct guest_mem *mem,
                    uint32_t panel_width, uint32_t panel_height);
/* Free every resource and the scanout (device reset or teardown). */
void gpu_state_reset(struct gpu_state *g);

/*
 * Serve one control or cursor queue request: iov[0, nr_out) is what the
 * driver wrote, iov[nr_out, nr_out + nr_in) where the response goes. Returns
 * the bytes written (0 when there is no room for a response).
 */
uint32_t gpu_process(struct gpu_state *g, const struct iovec *iov, unsigned nr_out, unsigned nr_in);

struct state_in;
struct state_out;
/*
 * The resources (pixels, backing as guest-physical entries), the scanout and
 * the cursor (state.h). load replaces everything, checks every value against
 * the limits above and guest RAM, and hands the scanout to the sink again.
 * 0, or -1 after state_fail() / state_in_fail() (then the state is reset).
 */
int gpu_state_save(struct gpu_state *g, struct state_out *out);
int gpu_state_load(struct gpu_state *g, struct state_in *in);

struct vm;
/* The device (gpu.c); sink may be NULL. 0 or -errno. */
int virtio_gpu_create(struct vm *vm, uint32_t width, uint32_t height, const struct gpu_sink *sink);

/* A valid EDID 1.4 base block (128 bytes) for a panel of this size at 60 Hz. */
void gpu_edid_build(uint8_t edid[GPU_EDID_BYTES], uint32_t width, uint32_t height);

#endif
