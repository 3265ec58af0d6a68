// SPDX-License-Identifier: GPL-2.0-or-later
/* Split virtqueue walker: see queue.h for the rules it enforces. */
#include "queue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "util.h"

/* Ring field offsets (virtio 1.2 §2.7.5, §2.7.6, §2.7.8). */
#define DESC_SIZE     16
#define AVAIL_IDX     2
#define AVAIL_RING(i) (4 + 2 * (size_t)(i))
#define USED_IDX      2
#define USED_RING(i)  (4 + 8 * (size_t)(i))

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static inline uint16_t *u16p(volatile uint8_t *p)
{
    return (uint16_t *)(uintptr_t)p;
}

static inline uint16_t load16(volatile uint8_t *p)
{
    return le16toh(__atomic_load_n(u16p(p), __ATOMIC_RELAXED));
}

static inline void store16(volatile uint8_t *p, uint16_t v)
{
    __atomic_store_n(u16p(p), htole16(v), __ATOMIC_RELAXED);
}

int vq_setup(struct vq *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc_gpa,
             uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect, const char **why)
{
    vq_reset(vq);
    if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1))) {
        *why = "queue size is not a power of two up to 32768";
        return -EINVAL;
    }
    if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3)) {
        *why = "ring address is misaligned";
        return -EINVAL;
    }
    /* The event-idx words sit after the rings; reserve them unconditionally. */
    void *d = guest_mem_ptr(mem, desc_gpa, (uint64_t)DESC_SIZE * size);
    void *a = guest_mem_ptr(mem, avail_gpa, 6 + 2 * (uint64_t)size);
    void *u = guest_mem_ptr(mem, used_gpa, 6 + 8 * (uint64_t)size);
    if (!d || !a || !u) {
        *why = "ring lies outside guest RAM";
        return -EINVAL;
    }
    vq->mem = mem;
    vq->size = size;
    vq->desc = d;
    vq->avail = a;
    vq->used = u;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    /* Indices start at 0 after a reset (§2.7); the driver zeroed the rings. */
    return 0;
}

void vq_reset(struct vq *vq)
{
    memset(vq, 0, sizeof(*vq));
}

static int vq_fail(struct vq *vq, const char *why)
{
    if (!vq->broken) {
        vq->broken = true;
        vq->broken_why = why;
    }
    return -1;
}

static void read_desc(const volatile uint8_t *table, unsigned i, struct desc *d)
{
    uint8_t raw[DESC_SIZE];
    /* One copy: the guest may rewrite the descriptor while we look at it. */
    memcpy(raw, (const void *)(uintptr_t)(table + (size_t)i * DESC_SIZE), DESC_SIZE);
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
    memcpy(&addr, raw, 8);
    memcpy(&len, raw + 8, 4);
    memcpy(&flags, raw + 12, 2);
    memcpy(&next, raw + 14, 2);
    d->addr = le64toh(addr);
    d->len = le32toh(len);
    d->flags = le16toh(flags);
    d->next = le16toh(next);
}

/* Add one buffer descriptor to the chain. */
static int add_seg(struct vq *vq, struct vq_chain *c, const struct desc *d)
{
    if (c->nr_out + c->nr_in >= VQ_MAX_SEGS)
        return vq_fail(vq, "descriptor chain has too many segments");
    void *p = guest_mem_ptr(vq->mem, d->addr, d->len);
    if (!p)
        return vq_fail(vq, "descriptor points outside guest RAM");
    struct iovec *iov = &c->iov[c->nr_out + c->nr_in];
    iov->iov_base = p;
    iov->iov_len = d->len;
    if (d->flags & VRING_DESC_F_WRITE) {
        c->nr_in++;
        c->in_len += d->len;
    } else {
        if (c->nr_in)
            return vq_fail(vq, "readable descriptor after a writable one");
        c->nr_out++;
        c->out_len += d->len;
    }
    if (c->in_len > UINT32_MAX || c->out_len > UINT32_MAX)
        return vq_fail(vq, "descriptor chain longer than 4 GiB");
    return 0;
}

static int walk_indirect(struct vq *vq, struct vq_chain *c, const struct desc *ind)
{
    if (!vq->indirect)
        return vq_fail(vq, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
    if (ind->flags & VRING_DESC_F_NEXT)
        return vq_fail(vq, "indirect descriptor also has NEXT");
    if (ind->len == 0 || ind->len % DESC_SIZE || ind->len / DESC_SIZE > VQ_MAX_INDIRECT)
        return vq_fail(vq, "indirect table length is invalid");
    unsigned n = ind->len / DESC_SIZE;
    const volatile uint8_t *table = guest_mem_ptr(vq->mem, ind->addr, ind->len);
    if (!table)
        return vq_fail(vq, "indirect table lies outside guest RAM");

    unsigned i = 0;
    for (unsigned count = 0;; count++) {
        struct desc d;
        if (count >= n)
            return vq_fail(vq, "indirect descriptor chain loops");
        read_desc(table, i, &d);
        if (d.flags & VRING_DESC_F_INDIRECT)
            return vq_fail(vq, "nested indirect descriptor");
        if (add_seg(vq, c, &d) < 0)
            return -1;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        if (d.next >= n)
            return vq_fail(vq, "indirect descriptor next index out of range");
        i = d.next;
    }
}

bool vq_has_avail(struct vq *vq)
{
    if (!vq->size || vq->broken)
        return false;
    return load16(vq->avail + AVAIL_IDX) != vq->last_avail;
}

int vq_pop(struct vq *vq, struct vq_chain *c)
{
    if (!vq->size || vq->broken)
        return vq->broken ? -1 : 0;

    uint16_t avail_idx = load16(vq->avail + AVAIL_IDX);
    if (avail_idx == vq->last_avail)
        return 0;
    if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
        return vq_fail(vq, "available index moved by more than the queue size");
    /* Read the ring entry and descriptors only after seeing the index. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);

    uint16_t head = load16(vq->avail + AVAIL_RING(vq->last_avail & (vq->size - 1)));
    if (head >= vq->size)
        return vq_fail(vq, "available ring entry out of range");

    c->head = head;
    c->nr_out = c->nr_in = 0;
    c->out_len = c->in_len = 0;

    unsigned i = head;
    for (unsigned count = 0;; count++) {
        struct desc d;
        if (count >= vq->size)
            return vq_fail(vq, "descriptor chain loops");
        read_desc(vq->desc, i, &d);
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (walk_indirect(vq, c, &d) < 0)
                return -1;
            break;
        }
        if (add_seg(vq, c, &d) < 0)
            return -1;
        if (!(d.flags & VRING_DESC_F_NEXT))
            break;
        if (d.next >= vq->size)
            return vq_fail(vq, "descriptor next index out of range");
        i = d.next;
    }
    vq->last_avail++;
    return 1;
}

void vq_unpop(struct vq *vq)
{
    vq->last_avail--;
}

void vq_push(struct vq *vq, uint16_t head, uint32_t written)
{
    if (!vq->size)
        return;
    volatile uint8_t *e = vq->used + USED_RING(vq->used_idx & (vq->size - 1));
    uint32_t id = htole32(head), len = htole32(written);
    __atomic_store_n((uint32_t *)(uintptr_t)e, id, __ATOMIC_RELAXED);
    __atomic_store_n((uint32_t *)(uintptr_t)(e + 4), len, __ATOMIC_RELAXED);
    vq->used_idx++;
    /* The entry must be visible before the index that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    store16(vq->used + USED_IDX, vq->used_idx);
}

void vq_notify_disable(struct vq *vq)
{
    if (!vq->size || vq->event_idx)
        return;
    store16(vq->used, VRING_USED_F_NO_NOTIFY);
}

bool vq_notify_enable(struct vq *vq)
{
    if (!vq->size || vq->broken)
        return false;
    if (vq->event_idx)
        store16(vq->used + USED_RING(vq->size), vq->last_avail);
    else
        store16(vq->used, 0);
    /* Publish the re-arm before re-reading avail idx (§2.7.14 race). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return vq_has_avail(vq);
}

bool vq_should_notify(struct vq *vq)
{
    if (!vq->size)
        return false;
    /* Our used idx store must be visible before we read the driver's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(load16(vq->avail) & VRING_AVAIL_F_NO_INTERRUPT);

    uint16_t old = vq->signalled_used, new = vq->used_idx;
    bool valid = vq->signalled_valid;
    vq->signalled_used = new;
    vq->signalled_valid = true;
    if (!valid)
        return true;
    uint16_t event = load16(vq->avail + AVAIL_RING(vq->size));
    return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}
