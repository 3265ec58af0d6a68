// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The virtio-gpu device (virtio 1.2 §5.7), 2D only: queue 0 controlq,
 * queue 1 cursorq, both served by gpu_cmd.c on the device thread. One
 * scanout; only VIRTIO_GPU_F_EDID is offered.
 */
#include <errno.h>
#include <linux/virtio_gpu.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>

#include "../state.h"
#include "../vm.h"
#include "gpu.h"
#include "log.h"
#include "virtio.h"

#define GPU_CONFIG_LEN ((uint32_t)sizeof(struct virtio_gpu_config))

struct virtio_gpu {
    struct virtio_dev vd;
    struct gpu_state g;
};

static int64_t gpu_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd;
    return gpu_process(arg, c->iov, c->nr_out, c->nr_in);
}

static void gpu_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_gpu *d = vd->priv;
    virtio_serve_queue(vd, q, gpu_chain, &d->g);
}

static void gpu_reset(struct virtio_dev *vd)
{
    struct virtio_gpu *d = vd->priv;
    gpu_state_reset(&d->g);
    memset(vd->config, 0, 8); /* events_read, events_clear */
}

/* events_clear (offset 4) is write-1-to-clear on events_read (offset 0). */
static void gpu_config_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len)
{
    if (off != offsetof(struct virtio_gpu_config, events_clear) || len != 4)
        return;
    uint32_t events = le32_get(vd->config) & ~le32_get(data);
    le32_put(vd->config, events);
}

/* After the transport's part: the pending config events, then the 2D state (gpu_cmd.c). */
static int gpu_save(struct virtio_dev *vd, struct state_out *out)
{
    struct virtio_gpu *d = vd->priv;
    state_put_u32(out, le32_get(vd->config));
    return gpu_state_save(&d->g, out);
}

static int gpu_load(struct virtio_dev *vd, struct state_in *in)
{
    struct virtio_gpu *d = vd->priv;
    uint32_t events = state_get_u32(in);
    if (state_in_ok(in) && (events & ~(uint32_t)VIRTIO_GPU_EVENT_DISPLAY))
        return state_in_fail(in, "the pending display events are %#x", events);
    if (!state_in_ok(in) || gpu_state_load(&d->g, in) < 0)
        return -1;
    le32_put(vd->config, events);
    return 0;
}

static const struct virtio_ops gpu_ops = {
    .queue_notify = gpu_notify,
    .reset = gpu_reset,
    .config_write = gpu_config_write,
    .save = gpu_save,
    .load = gpu_load,
};

int virtio_gpu_create(struct vm *vm, uint32_t width, uint32_t height, const struct gpu_sink *sink)
{
    struct virtio_gpu *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    gpu_state_init(&d->g, "virtio-gpu", &vm->mem, width, height);
    if (sink)
        d->g.sink = *sink;
    int ret = virtio_dev_init(&d->vd, vm, "virtio-gpu", VIRTIO_ID_GPU, 2, 256,
                              1ull << VIRTIO_GPU_F_EDID, GPU_CONFIG_LEN, &gpu_ops, d);
    if (ret) {
        free(d);
        return ret;
    }
    d->vd.pci.class_code = 0x038000; /* display controller, other */
    le32_put(d->vd.config + offsetof(struct virtio_gpu_config, num_scanouts), 1);
    ret = virtio_dev_start(&d->vd);
    if (ret) {
        virtio_dev_destroy(&d->vd);
        free(d);
    }
    return ret;
}
