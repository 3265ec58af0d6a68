/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Split virtqueues (virtio 1.2 §2.7) as seen by the device. The rings live in
 * guest RAM that a hostile guest rewrites under our feet, so every field is
 * read once into a local copy, and every index, address and length is
 * checked before use. A chain that breaks a rule marks the queue broken:
 * the transport then sets DEVICE_NEEDS_RESET and stops serving it.
 */
#ifndef HV_VMM_VIRTIO_QUEUE_H
#define HV_VMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../mem.h"
#include "iov.h"

#define VQ_MAX_SIZE     32768 /* split ring limit */
#define VQ_MAX_SEGS     1024  /* iovecs in one chain (direct + indirect) */
#define VQ_MAX_INDIRECT 1024  /* entries in one indirect table */

struct vq {
    const struct guest_mem *mem;
    uint16_t size; /* power of two, 0 = not set up */
    bool event_idx;
    bool indirect;
    bool broken;
    const char *broken_why; /* first rule broken, for the log */

    /* Host pointers to the rings, validated once by vq_setup(). */
    volatile uint8_t *desc;  /* 16 * size */
    volatile uint8_t *avail; /* 6 + 2 * size */
    volatile uint8_t *used;  /* 6 + 8 * size */

    uint16_t last_avail; /* next avail entry to pop */
    uint16_t used_idx;   /* our copy of used->idx */
    uint16_t signalled_used;
    bool signalled_valid;
};

/* One descriptor chain: device-readable segments first, then writable ones. */
struct vq_chain {
    uint16_t head;
    unsigned nr_out; /* device-readable (driver -> device) */
    unsigned nr_in;  /* device-writable (device -> driver) */
    uint64_t out_len, in_len;
    struct iovec iov[VQ_MAX_SEGS]; /* [0, nr_out) readable, [nr_out, nr_out + nr_in) writable */
};

static inline struct iovec *vq_chain_in(struct vq_chain *c)
{
    return c->iov + c->nr_out;
}

/*
 * Check the ring geometry against guest RAM and bind the queue. Returns 0, or
 * -EINVAL with *why set (size not a power of two, misaligned or non-RAM area).
 */
int vq_setup(struct vq *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc_gpa,
             uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect,
             const char **why);
void vq_reset(struct vq *vq);

/*
 * Take the next available chain. Returns 1 with *c filled, 0 when the ring is
 * empty, -1 when the guest broke a rule (vq->broken is then set and the
 * queue must not be used again until reset).
 */
int vq_pop(struct vq *vq, struct vq_chain *c);

/* Put the chain just popped back (the device has no room for it yet). */
void vq_unpop(struct vq *vq);

/* Give a chain back with the number of bytes written into its buffers. */
void vq_push(struct vq *vq, uint16_t head, uint32_t written);

/* Ask the driver not to kick while we are busy (no-op with EVENT_IDX). */
void vq_notify_disable(struct vq *vq);
/* Re-arm kicks; true when more chains arrived meanwhile (process them). */
bool vq_notify_enable(struct vq *vq);

/* After pushes: should the driver be interrupted (honours EVENT_IDX)? */
bool vq_should_notify(struct vq *vq);

/* True when the ring has chains we have not popped. */
bool vq_has_avail(struct vq *vq);

#endif
