// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-rng (virtio 1.2 §5.4): fills the driver's buffers from getrandom(). */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <sys/random.h>

#include "../devices.h"
#include "../vm.h"
#include "log.h"
#include "util.h"
#include "virtio.h"

/* Cap per request so one huge buffer cannot keep the thread busy for long. */
#define RNG_MAX_PER_REQUEST (64 * 1024)

static int64_t rng_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd;
    (void)arg;
    struct iovec *in = vq_chain_in(c);
    size_t done = 0;

    for (unsigned i = 0; i < c->nr_in && done < RNG_MAX_PER_REQUEST; i++) {
        size_t want = MIN(in[i].iov_len, RNG_MAX_PER_REQUEST - done);
        ssize_t r = getrandom(in[i].iov_base, want, 0);
        if (r <= 0)
            break;
        done += (size_t)r;
        if ((size_t)r < want)
            break;
    }
    return (int64_t)done;
}

static void rng_notify(struct virtio_dev *vd, unsigned q)
{
    virtio_serve_queue(vd, q, rng_chain, NULL);
}

static const struct virtio_ops rng_ops = {
    .queue_notify = rng_notify,
};

int virtio_rng_create(struct vm *vm)
{
    struct virtio_dev *vd = calloc(1, sizeof(*vd));
    if (!vd)
        return -ENOMEM;
    int ret = virtio_dev_init(vd, vm, "virtio-rng", VIRTIO_ID_RNG, 1, 64, 0, 0, &rng_ops, NULL);
    if (ret) {
        free(vd);
        return ret;
    }
    return virtio_dev_start(vd);
}
