/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The generic vhost ioctls shared by vhost-net and vhost-vsock: the kernel
 * serves the rings itself, reading guest RAM through our memory table, kicked
 * by the queue's ioeventfd and interrupting through the MSI-X vector's
 * eventfd (an irqfd), so no byte goes through hv-vmm.
 */
#ifndef HV_VMM_VIRTIO_VHOST_H
#define HV_VMM_VIRTIO_VHOST_H

#include <stdint.h>

#include "virtio.h"

/* Open a vhost device and take ownership. Returns the fd or -errno (not logged). */
int vhost_open(const char *path);
/* VHOST_GET_FEATURES; 0 on failure. */
uint64_t vhost_features(int fd);
/*
 * Program features, memory table and the given rings from the transport's
 * negotiated state, each ring starting at the transport's vq.last_avail (0
 * after the driver set the queue up, the saved position after a restore).
 * Returns 0 or -errno, logged.
 */
int vhost_start_rings(struct virtio_dev *vd, int fd, const unsigned *queues, unsigned n);
/* Stop the rings (GET_VRING_BASE) so they can be programmed again. */
void vhost_stop_rings(int fd, const unsigned *queues, unsigned n);
/*
 * With the rings stopped (no backend, or not running): copy each enabled
 * ring's position into the transport's vq (last_avail from the kernel,
 * used_idx from the used ring in guest RAM), for a save to keep.
 */
void vhost_sync_rings(struct virtio_dev *vd, int fd, const unsigned *queues, unsigned n);

#endif
