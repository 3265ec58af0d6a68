// SPDX-License-Identifier: GPL-2.0-or-later
/* Generic vhost ring set-up: see vhost.h. */
#include "vhost.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vhost.h>

#include "../vm.h"
#include "log.h"

int vhost_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ioctl(fd, VHOST_SET_OWNER) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

uint64_t vhost_features(int fd)
{
    uint64_t f = 0;
    if (ioctl(fd, VHOST_GET_FEATURES, &f) < 0)
        return 0;
    return f;
}

static int set_mem_table(struct virtio_dev *vd, int fd)
{
    const struct guest_mem *mem = &vd->vm->mem;
    struct vhost_memory *m =
        calloc(1, sizeof(*m) + mem->nr_regions * sizeof(struct vhost_memory_region));
    if (!m)
        return -ENOMEM;
    m->nregions = mem->nr_regions;
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        m->regions[i].guest_phys_addr = mem->regions[i].gpa;
        m->regions[i].memory_size = mem->regions[i].size;
        m->regions[i].userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].hva;
    }
    int ret = ioctl(fd, VHOST_SET_MEM_TABLE, m) < 0 ? -errno : 0;
    free(m);
    return ret;
}

int vhost_start_rings(struct virtio_dev *vd, int fd, const unsigned *queues, unsigned n)
{
    /* vhost takes the ring and transport bits it offers (and MRG_RXBUF for net),
     * never the device's own bits the driver acked (CSUM, MAC...): passing
     * those fails with EOPNOTSUPP. */
    uint64_t features = vd->features & vhost_features(fd);
    const char *what = "VHOST_SET_FEATURES";
    int ret = 0;

    if (ioctl(fd, VHOST_SET_FEATURES, &features) < 0)
        goto fail;
    what = "VHOST_SET_MEM_TABLE";
    if ((ret = set_mem_table(vd, fd)) < 0)
        goto fail_ret;
    for (unsigned i = 0; i < n; i++) {
        struct virtio_queue *q = &vd->queues[queues[i]];
        if (!q->enabled)
            continue;
        struct vhost_vring_state num = {.index = queues[i], .num = q->size};
        struct vhost_vring_state base = {.index = queues[i], .num = q->vq.last_avail};
        struct vhost_vring_addr addr = {
            .index = queues[i],
            .desc_user_addr = (uint64_t)(uintptr_t)q->vq.desc,
            .avail_user_addr = (uint64_t)(uintptr_t)q->vq.avail,
            .used_user_addr = (uint64_t)(uintptr_t)q->vq.used,
        };
        struct vhost_vring_file kick = {.index = queues[i], .fd = q->kick_efd};
        struct vhost_vring_file call = {.index = queues[i],
                                        .fd = msix_vector_fd(&vd->msix, q->msix_vector)};
        what = "vring set-up";
        if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0 ||
            ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0 ||
            ioctl(fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
            ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
            ioctl(fd, VHOST_SET_VRING_CALL, &call) < 0)
            goto fail;
    }
    return 0;
fail:
    ret = -errno;
fail_ret:
    log_err("%s: vhost %s failed: %s", vd->name, what, strerror(-ret));
    return ret;
}

void vhost_stop_rings(int fd, const unsigned *queues, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct vhost_vring_state s = {.index = queues[i]};
        ioctl(fd, VHOST_GET_VRING_BASE, &s);
    }
}

void vhost_sync_rings(struct virtio_dev *vd, int fd, const unsigned *queues, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct virtio_queue *q = &vd->queues[queues[i]];
        struct vhost_vring_state s = {.index = queues[i]};
        if (!q->enabled || !q->vq.size)
            continue;
        if (ioctl(fd, VHOST_GET_VRING_BASE, &s) < 0) {
            log_warn("%s: VHOST_GET_VRING_BASE: %s", vd->name, strerror(errno));
            continue;
        }
        uint16_t used;
        memcpy(&used, (const void *)(uintptr_t)(q->vq.used + 2), 2);
        q->vq.last_avail = (uint16_t)s.num;
        q->vq.used_idx = le16toh(used);
        /* vhost decides on interrupts itself, from scratch after a restart. */
        q->vq.signalled_valid = false;
        q->vq.signalled_used = 0;
    }
}
