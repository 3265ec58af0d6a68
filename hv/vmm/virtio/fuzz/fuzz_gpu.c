// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the virtio-gpu command parser on 16 MiB of fake guest RAM.
 * Input: a sequence of requests, each a 2-byte length then that many bytes
 * (header and body as the driver writes them), served in order on one
 * device state, which is reset at the end. Checks the answer never claims
 * more bytes than its buffer and the resource memory stays under the cap.
 */
#include <stdint.h>
#include <string.h>

#include "gpu.h"
#include "log.h"
#include "mem.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static bool ready;

static void sink_scanout(void *ctx, int fd, uint32_t w, uint32_t h, uint32_t stride)
{
    (void)ctx, (void)fd;
    if (!w || !h || w > GPU_MAX_SCANOUT || h > GPU_MAX_SCANOUT || stride != w * 4)
        __builtin_trap();
}

static void sink_damage(void *ctx, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct gpu_state *g = ctx;
    if (!w || !h || !range_within(x, w, g->map_w) || !range_within(y, h, g->map_h))
        __builtin_trap(); /* hv-switch would refuse it and drop the VM */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        hv_log_init("fuzz");
        hv_log_set_level(HV_LOG_ERROR);
        if (guest_mem_init(&mem, 16 * MiB) < 0)
            return 0;
        ready = true;
    }
    struct gpu_state g;
    gpu_state_init(&g, "fuzz-gpu", &mem, 1280, 800);
    g.sink = (struct gpu_sink){&g, sink_scanout, sink_damage, NULL};
    static uint8_t req[65536], resp[2048];
    while (size >= 2) {
        size_t len = MIN((size_t)(data[0] | data[1] << 8), size - 2);
        memcpy(req, data + 2, len);
        data += 2 + len, size -= 2 + len;
        /* Split the request in two segments, as drivers do for attach-backing. */
        size_t cut = MIN(len, (size_t)32);
        struct iovec iov[3] = {{req, cut}, {req + cut, len - cut}, {resp, sizeof(resp)}};
        if (gpu_process(&g, iov, 2, 1) > sizeof(resp))
            __builtin_trap();
        if (g.host_bytes > GPU_MAX_HOST_BYTES || g.nr_resources > GPU_MAX_RESOURCES)
            __builtin_trap();
    }
    gpu_state_reset(&g);
    return 0;
}
