/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Test helpers playing the driver's side of a split virtqueue in fake guest RAM. */
#ifndef HV_VIRTIO_TESTS_RING_H
#define HV_VIRTIO_TESTS_RING_H

#include <stdint.h>
#include <string.h>

#include "mem.h"

struct test_ring {
    struct guest_mem *mem;
    uint16_t size;
    uint64_t desc, avail, used;
    uint16_t avail_idx;
};

static inline void tr_w16(struct guest_mem *m, uint64_t gpa, uint16_t v)
{
    guest_mem_write(m, gpa, &v, 2);
}

static inline uint16_t tr_r16(struct guest_mem *m, uint64_t gpa)
{
    uint16_t v = 0;
    guest_mem_read(m, gpa, &v, 2);
    return v;
}

static inline uint32_t tr_r32(struct guest_mem *m, uint64_t gpa)
{
    uint32_t v = 0;
    guest_mem_read(m, gpa, &v, 4);
    return v;
}

/* Rings at base: descriptors, then avail, then used (4 KiB aligned). */
static inline void tr_init(struct test_ring *r, struct guest_mem *m, uint16_t size, uint64_t base)
{
    r->mem = m;
    r->size = size;
    r->desc = base;
    r->avail = base + 16 * (uint64_t)size;
    r->used = (r->avail + 6 + 2 * (uint64_t)size + 4095) & ~UINT64_C(4095);
    r->avail_idx = 0;
    uint8_t *p = guest_mem_ptr(m, base, r->used + 6 + 8 * (uint64_t)size - base);
    memset(p, 0, r->used + 6 + 8 * (uint64_t)size - base);
}

static inline void tr_desc_at(struct guest_mem *m, uint64_t table, uint16_t i, uint64_t addr,
                              uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t d[16];
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    guest_mem_write(m, table + 16 * (uint64_t)i, d, 16);
}

static inline void tr_desc(struct test_ring *r, uint16_t i, uint64_t addr, uint32_t len,
                           uint16_t flags, uint16_t next)
{
    tr_desc_at(r->mem, r->desc, i, addr, len, flags, next);
}

static inline void tr_publish(struct test_ring *r, uint16_t head)
{
    tr_w16(r->mem, r->avail + 4 + 2 * (uint64_t)(r->avail_idx % r->size), head);
    r->avail_idx++;
    tr_w16(r->mem, r->avail + 2, r->avail_idx);
}

static inline uint16_t tr_used_idx(struct test_ring *r)
{
    return tr_r16(r->mem, r->used + 2);
}

static inline void tr_used_elem(struct test_ring *r, uint16_t i, uint32_t *id, uint32_t *len)
{
    *id = tr_r32(r->mem, r->used + 4 + 8 * (uint64_t)(i % r->size));
    *len = tr_r32(r->mem, r->used + 8 + 8 * (uint64_t)(i % r->size));
}

#endif
