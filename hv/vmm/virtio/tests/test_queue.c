// SPDX-License-Identifier: GPL-2.0-or-later
/* The split virtqueue walker against good and hostile rings. */
#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>

#include "check.h"
#include "queue.h"
#include "ring.h"
#include "util.h"

#define QS   16
#define RING 0x10000
#define BUF  0x100000

static struct guest_mem mem;
static struct vq_chain chain;

static void setup(struct vq *vq, struct test_ring *r, uint16_t size, bool event_idx, bool indirect)
{
    const char *why;
    tr_init(r, &mem, size, RING);
    CHECK(vq_setup(vq, &mem, size, r->desc, r->avail, r->used, event_idx, indirect, &why) == 0);
}

static void test_good_chain(void)
{
    struct vq vq;
    struct test_ring r;
    setup(&vq, &r, QS, false, false);
    CHECK(vq_pop(&vq, &chain) == 0); /* empty */

    tr_desc(&r, 3, BUF, 16, VRING_DESC_F_NEXT, 7);
    tr_desc(&r, 7, BUF + 4096, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 9);
    tr_desc(&r, 9, BUF + 8192, 1, VRING_DESC_F_WRITE, 0);
    tr_publish(&r, 3);
    CHECK(vq_pop(&vq, &chain) == 1);
    CHECK(chain.head == 3 && chain.nr_out == 1 && chain.nr_in == 2);
    CHECK(chain.out_len == 16 && chain.in_len == 513);
    CHECK(chain.iov[0].iov_base == mem.base + BUF);
    CHECK(vq_chain_in(&chain)[1].iov_base == mem.base + BUF + 8192);
    CHECK(vq_pop(&vq, &chain) == 0);

    vq_push(&vq, 3, 513);
    uint32_t id, len;
    CHECK(tr_used_idx(&r) == 1);
    tr_used_elem(&r, 0, &id, &len);
    CHECK(id == 3 && len == 513);
    CHECK(vq_should_notify(&vq));
    tr_w16(&mem, r.avail, VRING_AVAIL_F_NO_INTERRUPT);
    CHECK(!vq_should_notify(&vq));

    /* Wrap-around of the 16-bit indices. */
    for (unsigned i = 0; i < 70000; i++) {
        tr_desc(&r, 0, BUF, 8, 0, 0);
        tr_publish(&r, 0);
        CHECK(vq_pop(&vq, &chain) == 1);
        vq_push(&vq, chain.head, 0);
    }
    CHECK(!vq.broken);
}

/* Each hostile layout must break the queue (and only that). */
static void expect_broken(const char *name, void (*build)(struct test_ring *r), bool indirect)
{
    struct vq vq;
    struct test_ring r;
    setup(&vq, &r, QS, false, indirect);
    build(&r);
    int ret = vq_pop(&vq, &chain);
    if (ret != -1 || !vq.broken)
        fprintf(stderr, "hostile case not caught: %s\n", name);
    CHECK(ret == -1 && vq.broken && vq.broken_why);
    CHECK(vq_pop(&vq, &chain) == -1); /* stays broken until reset */
}

static void b_loop(struct test_ring *r)
{
    tr_desc(r, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
    tr_desc(r, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
    tr_publish(r, 0);
}
static void b_self_loop(struct test_ring *r)
{
    tr_desc(r, 5, BUF, 8, VRING_DESC_F_NEXT, 5);
    tr_publish(r, 5);
}
static void b_oob_addr(struct test_ring *r)
{
    tr_desc(r, 0, 64 * MiB - 4, 8, 0, 0);
    tr_publish(r, 0);
}
static void b_mmio_addr(struct test_ring *r)
{
    tr_desc(r, 0, MEM_PCI_ECAM_BASE, 4, 0, 0);
    tr_publish(r, 0);
}
static void b_wrap_addr(struct test_ring *r)
{
    tr_desc(r, 0, UINT64_MAX - 2, 16, 0, 0);
    tr_publish(r, 0);
}
static void b_huge_len(struct test_ring *r)
{
    tr_desc(r, 0, BUF, UINT32_MAX, VRING_DESC_F_WRITE, 0);
    tr_publish(r, 0);
}
static void b_next_oob(struct test_ring *r)
{
    tr_desc(r, 0, BUF, 8, VRING_DESC_F_NEXT, QS);
    tr_publish(r, 0);
}
static void b_head_oob(struct test_ring *r)
{
    tr_publish(r, QS + 3);
}
static void b_avail_jump(struct test_ring *r)
{
    tr_desc(r, 0, BUF, 8, 0, 0);
    tr_publish(r, 0);
    tr_w16(r->mem, r->avail + 2, QS + 5);
}
static void b_read_after_write(struct test_ring *r)
{
    tr_desc(r, 0, BUF, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    tr_desc(r, 1, BUF, 8, 0, 0);
    tr_publish(r, 0);
}
static void b_indirect_unnegotiated(struct test_ring *r)
{
    tr_desc_at(r->mem, BUF, 0, BUF + 4096, 8, 0, 0);
    tr_desc(r, 0, BUF, 16, VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}
static void b_indirect_nested(struct test_ring *r)
{
    tr_desc_at(r->mem, BUF, 0, BUF + 4096, 16, VRING_DESC_F_INDIRECT, 0);
    tr_desc(r, 0, BUF, 16, VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}
static void b_indirect_loop(struct test_ring *r)
{
    tr_desc_at(r->mem, BUF, 0, BUF + 4096, 8, VRING_DESC_F_NEXT, 1);
    tr_desc_at(r->mem, BUF, 1, BUF + 4096, 8, VRING_DESC_F_NEXT, 0);
    tr_desc(r, 0, BUF, 32, VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}
static void b_indirect_bad_len(struct test_ring *r)
{
    tr_desc(r, 0, BUF, 24, VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}
static void b_indirect_zero_len(struct test_ring *r)
{
    tr_desc(r, 0, BUF, 0, VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}
static void b_indirect_oob(struct test_ring *r)
{
    tr_desc(r, 0, 64 * MiB - 16, 32, VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}
static void b_indirect_next(struct test_ring *r)
{
    tr_desc_at(r->mem, BUF, 0, BUF + 4096, 8, 0, 0);
    tr_desc(r, 0, BUF, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    tr_desc(r, 1, BUF, 8, 0, 0);
    tr_publish(r, 0);
}
static void b_indirect_next_oob(struct test_ring *r)
{
    tr_desc_at(r->mem, BUF, 0, BUF + 4096, 8, VRING_DESC_F_NEXT, 2);
    tr_desc_at(r->mem, BUF, 1, BUF + 4096, 8, 0, 0);
    tr_desc(r, 0, BUF, 32, VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}
static void b_indirect_huge(struct test_ring *r)
{
    tr_desc(r, 0, BUF, 16 * (VQ_MAX_INDIRECT + 1), VRING_DESC_F_INDIRECT, 0);
    tr_publish(r, 0);
}

static void test_hostile(void)
{
    expect_broken("loop", b_loop, false);
    expect_broken("self loop", b_self_loop, false);
    expect_broken("address beyond RAM", b_oob_addr, false);
    expect_broken("address in MMIO", b_mmio_addr, false);
    expect_broken("address wraps", b_wrap_addr, false);
    expect_broken("4 GiB length", b_huge_len, false);
    expect_broken("next beyond queue", b_next_oob, false);
    expect_broken("head beyond queue", b_head_oob, false);
    expect_broken("avail idx jump", b_avail_jump, false);
    expect_broken("readable after writable", b_read_after_write, false);
    expect_broken("indirect not negotiated", b_indirect_unnegotiated, false);
    expect_broken("nested indirect", b_indirect_nested, true);
    expect_broken("indirect loop", b_indirect_loop, true);
    expect_broken("indirect len not /16", b_indirect_bad_len, true);
    expect_broken("indirect len 0", b_indirect_zero_len, true);
    expect_broken("indirect table beyond RAM", b_indirect_oob, true);
    expect_broken("indirect + next", b_indirect_next, true);
    expect_broken("indirect next beyond table", b_indirect_next_oob, true);
    expect_broken("indirect table too long", b_indirect_huge, true);
}

static void test_indirect(void)
{
    struct vq vq;
    struct test_ring r;
    setup(&vq, &r, QS, false, true);
    tr_desc_at(&mem, BUF, 0, BUF + 0x1000, 16, VRING_DESC_F_NEXT, 2);
    tr_desc_at(&mem, BUF, 2, BUF + 0x2000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
    tr_desc_at(&mem, BUF, 1, BUF + 0x3000, 1, VRING_DESC_F_WRITE, 0);
    /* A direct descriptor first, then the indirect table. */
    tr_desc(&r, 4, BUF + 0x5000, 8, VRING_DESC_F_NEXT, 6);
    tr_desc(&r, 6, BUF, 48, VRING_DESC_F_INDIRECT, 0);
    tr_publish(&r, 4);
    CHECK(vq_pop(&vq, &chain) == 1);
    CHECK(chain.head == 4 && chain.nr_out == 2 && chain.nr_in == 2);
    CHECK(chain.out_len == 24 && chain.in_len == 4097);
    CHECK(chain.iov[1].iov_base == mem.base + BUF + 0x1000);
}

static void test_too_many_segments(void)
{
    struct vq vq;
    struct test_ring r;
    setup(&vq, &r, 2048, false, false);
    for (unsigned i = 0; i <= VQ_MAX_SEGS; i++)
        tr_desc(&r, (uint16_t)i, BUF, 1, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
    tr_desc(&r, VQ_MAX_SEGS + 1, BUF, 1, 0, 0);
    tr_publish(&r, 0);
    CHECK(vq_pop(&vq, &chain) == -1);
}

static void test_event_idx(void)
{
    struct vq vq;
    struct test_ring r;
    setup(&vq, &r, QS, true, false);
    for (unsigned i = 0; i < 4; i++) {
        tr_desc(&r, (uint16_t)i, BUF, 8, 0, 0);
        tr_publish(&r, (uint16_t)i);
    }
    /* Driver wants an interrupt only once used idx passes 2 (used_event = 2). */
    tr_w16(&mem, r.avail + 4 + 2 * QS, 2);
    CHECK(vq_pop(&vq, &chain) == 1);
    vq_push(&vq, chain.head, 0);
    CHECK(vq_should_notify(&vq)); /* the first one always notifies */
    CHECK(vq_pop(&vq, &chain) == 1);
    vq_push(&vq, chain.head, 0); /* used idx 2: event 2 not crossed yet */
    CHECK(!vq_should_notify(&vq));
    CHECK(vq_pop(&vq, &chain) == 1);
    vq_push(&vq, chain.head, 0); /* used idx 3 crosses 2 */
    CHECK(vq_should_notify(&vq));
    CHECK(vq_pop(&vq, &chain) == 1);
    vq_push(&vq, chain.head, 0);
    CHECK(!vq_should_notify(&vq));

    /* Re-arming publishes avail_event = last_avail; nothing more is pending. */
    CHECK(!vq_notify_enable(&vq));
    CHECK(tr_r16(&mem, r.used + 4 + 8 * QS) == 4);
    tr_desc(&r, 0, BUF, 8, 0, 0);
    tr_publish(&r, 0);
    CHECK(vq_notify_enable(&vq)); /* a chain arrived: caller must go on */
}

static void test_setup_checks(void)
{
    struct vq vq;
    const char *why;
    CHECK(vq_setup(&vq, &mem, 12, RING, RING + 0x1000, RING + 0x2000, 0, 0, &why) == -EINVAL);
    CHECK(vq_setup(&vq, &mem, 0, RING, RING + 0x1000, RING + 0x2000, 0, 0, &why) == -EINVAL);
    CHECK(vq_setup(&vq, &mem, 16, RING + 8, RING + 0x1000, RING + 0x2000, 0, 0, &why) == -EINVAL);
    CHECK(vq_setup(&vq, &mem, 16, RING, RING + 0x1001, RING + 0x2000, 0, 0, &why) == -EINVAL);
    CHECK(vq_setup(&vq, &mem, 16, RING, RING + 0x1000, RING + 0x2002, 0, 0, &why) == -EINVAL);
    CHECK(vq_setup(&vq, &mem, 16, MEM_PCI_MMIO_BASE, RING, RING + 0x2000, 0, 0, &why) == -EINVAL);
    CHECK(vq_setup(&vq, &mem, 16, RING, RING, 64 * MiB - 16, 0, 0, &why) == -EINVAL);
    CHECK(vq_setup(&vq, &mem, 16, RING, RING + 0x1000, RING + 0x2000, 0, 0, &why) == 0);
}

static void test_iov_helpers(void)
{
    uint8_t a[3] = {1, 2, 3}, b[5] = {4, 5, 6, 7, 8}, out[8];
    struct iovec iov[2] = {{a, 3}, {b, 5}}, sl[4];
    CHECK(iov_total(iov, 2) == 8);
    CHECK(iov_to_buf(iov, 2, 2, out, 4) == 4 && out[0] == 3 && out[3] == 6);
    CHECK(iov_to_buf(iov, 2, 6, out, 10) == 2);
    unsigned k = iov_slice(iov, 2, 1, 5, sl, 4);
    CHECK(k == 2 && sl[0].iov_len == 2 && sl[1].iov_len == 3 && sl[1].iov_base == b);
    uint8_t nine = 9;
    CHECK(iov_from_buf(iov, 2, 7, &nine, 1) == 1 && b[4] == 9);
}

int main(void)
{
    CHECK(guest_mem_init(&mem, 64 * MiB) == 0);
    test_good_chain();
    test_hostile();
    test_indirect();
    test_too_many_segments();
    test_event_idx();
    test_setup_checks();
    test_iov_helpers();
    guest_mem_destroy(&mem);
    CHECK_DONE();
}
