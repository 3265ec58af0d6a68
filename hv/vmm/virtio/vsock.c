// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-vsock (virtio 1.2 §5.10) served by the host kernel's vhost-vsock:
 * host programs then reach the guest with ordinary AF_VSOCK sockets. Only the
 * event queue (used for transport resets after migration) stays here, and we
 * never post events on it.
 */
#include <errno.h>
#include <linux/vhost.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../devices.h"
#include "../vm.h"
#include "log.h"
#include "sandbox.h"
#include "state.h"
#include "vhost.h"
#include "virtio.h"

#define VSOCK_RX    0
#define VSOCK_TX    1
#define VSOCK_EVENT 2

struct vsock {
    struct virtio_dev vd;
    int vhost_fd;
    uint64_t cid;
    bool running;
};

static const unsigned vsock_rings[] = {VSOCK_RX, VSOCK_TX};

static void vsock_notify(struct virtio_dev *vd, unsigned q)
{
    (void)vd;
    (void)q; /* event queue: keep the driver's buffers for later events */
}

static int vsock_start(struct virtio_dev *vd)
{
    struct vsock *v = vd->priv;
    int ret = vhost_start_rings(vd, v->vhost_fd, vsock_rings, 2);
    if (ret)
        return ret;
    int on = 1;
    if (ioctl(v->vhost_fd, VHOST_VSOCK_SET_RUNNING, &on) < 0) {
        ret = -errno;
        log_err("%s: VHOST_VSOCK_SET_RUNNING failed: %s", vd->name, strerror(errno));
        return ret;
    }
    v->running = true;
    return 0;
}

static void vsock_reset(struct virtio_dev *vd)
{
    struct vsock *v = vd->priv;
    if (!v->running)
        return;
    int off = 0;
    ioctl(v->vhost_fd, VHOST_VSOCK_SET_RUNNING, &off);
    vhost_stop_rings(v->vhost_fd, vsock_rings, 2);
    v->running = false;
}

/* Stopped, vhost-vsock keeps its rings where they are; running again, it goes on. */
static void vsock_set_running(struct virtio_dev *vd, int on)
{
    struct vsock *v = vd->priv;
    if (v->running && ioctl(v->vhost_fd, VHOST_VSOCK_SET_RUNNING, &on) < 0)
        log_warn("%s: VHOST_VSOCK_SET_RUNNING: %s", vd->name, strerror(errno));
}

static void vsock_quiesce(struct virtio_dev *vd)
{
    struct vsock *v = vd->priv;
    vsock_set_running(vd, 0);
    if (v->running)
        vhost_sync_rings(vd, v->vhost_fd, vsock_rings, 2); /* what a save keeps */
}

/*
 * Restored: the guest's CID is part of its state (its sockets are bound to
 * it), so this VM must have the same; vhost-vsock is programmed at the
 * saved ring positions and resume sets it running. The event queue is the
 * transport's (we never post on it).
 */
static int vsock_load(struct virtio_dev *vd, struct state_in *in)
{
    struct vsock *v = vd->priv;
    uint64_t saved = le64_get(vd->config);
    if (saved != v->cid)
        return state_in_fail(in, "the guest had vsock CID %llu, this VM has %llu",
                             (unsigned long long)saved, (unsigned long long)v->cid);
    if (!virtio_ready(vd))
        return 0;
    int ret = vhost_start_rings(vd, v->vhost_fd, vsock_rings, 2);
    if (ret < 0)
        return state_in_fail(in, "cannot start vhost-vsock at the saved ring positions: %s",
                             strerror(-ret));
    v->running = true;
    return 0;
}

static void vsock_resume(struct virtio_dev *vd)
{
    vsock_set_running(vd, 1);
}

static const struct virtio_ops vsock_ops = {
    .queue_notify = vsock_notify,
    .start = vsock_start,
    .reset = vsock_reset,
    .quiesce = vsock_quiesce,
    .resume = vsock_resume,
    .load = vsock_load,
};

int virtio_vsock_create(struct vm *vm, uint64_t guest_cid)
{
    /* 0, 1 and 2 are the hypervisor, local and host; the top values are reserved. */
    if (guest_cid < 3 || guest_cid >= UINT32_MAX) {
        log_err("vsock CID %llu is reserved: use 3 to 4294967294", (unsigned long long)guest_cid);
        return -EINVAL;
    }
    /*
     * Opened in the host's network namespace: where the kernel has vsock
     * namespaces, vhost-vsock takes its opener's, and hvd's AF_VSOCK sockets
     * are in the host's (sandbox_ns.c).
     */
    const struct sandbox_config *sb = vm->cfg ? &vm->cfg->sandbox : NULL;
    if (sandbox_net_host(sb, true) < 0)
        return -EPERM;
    int fd = vhost_open("/dev/vhost-vsock");
    if (sandbox_net_host(sb, false) < 0) {
        if (fd >= 0)
            close(fd);
        return -EPERM;
    }
    if (fd < 0) {
        log_err("cannot use /dev/vhost-vsock: %s (load the vhost_vsock module and give hv-vmm "
                "access to it)",
                strerror(-fd));
        return fd;
    }
    if (ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, &guest_cid) < 0) {
        int err = errno;
        log_err("cannot give the guest vsock CID %llu: %s", (unsigned long long)guest_cid,
                err == EADDRINUSE ? "another VM uses it" : strerror(err));
        close(fd);
        return -err;
    }
    struct vsock *v = calloc(1, sizeof(*v));
    if (!v) {
        close(fd);
        return -ENOMEM;
    }
    v->vhost_fd = fd;
    v->cid = guest_cid;
    int ret = virtio_dev_init(&v->vd, vm, "virtio-vsock", VIRTIO_ID_VSOCK, 3, 128,
                              1ull << VIRTIO_VSOCK_F_SEQPACKET, 8, &vsock_ops, v);
    if (ret) {
        close(fd);
        free(v);
        return ret;
    }
    /* Offer only what vhost-vsock can serve (ring features, SEQPACKET). */
    v->vd.host_features &= vhost_features(fd);
    v->vd.queues[VSOCK_RX].kernel_kick = true;
    v->vd.queues[VSOCK_TX].kernel_kick = true;
    le64_put(v->vd.config, guest_cid);
    ret = virtio_dev_start(&v->vd);
    if (ret == 0)
        log_info("virtio-vsock: guest CID %llu", (unsigned long long)guest_cid);
    return ret;
}
