// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qcow2 refcounts and cluster allocation. New clusters are appended at the
 * end of the file; a refcount is written before anything points at its
 * cluster, so a crash may leak clusters but never shares one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"
#include "util.h"

/* Where the refcount of a cluster lives: its refcount block's offset, the byte, the shift. */
static int rc_locate(struct qcow2 *q, uint64_t cluster, uint64_t *block, uint64_t *byte,
                     unsigned *shift)
{
    uint64_t idx = cluster / q->rb_entries, bit = (cluster % q->rb_entries) << q->refcount_order;
    *block = idx < q->rt_entries ? q->rt[idx] : 0;
    *byte = bit / 8;
    *shift = (unsigned)(bit % 8);
    return 0;
}

static unsigned rc_bytes(const struct qcow2 *q)
{
    return q->refcount_order >= 3 ? 1u << (q->refcount_order - 3) : 1;
}

/* The refcount in p (the bytes holding it), and the same with a new value. */
static uint64_t rc_decode(const struct qcow2 *q, const uint8_t *p, unsigned shift)
{
    if (q->refcount_order >= 3)
        return be_get(p, rc_bytes(q));
    return (uint64_t)(p[0] >> shift) & ((1u << (1u << q->refcount_order)) - 1);
}

static void rc_encode(const struct qcow2 *q, uint8_t *p, unsigned shift, uint64_t v)
{
    if (q->refcount_order >= 3) {
        be_put(p, rc_bytes(q), v);
        return;
    }
    unsigned mask = ((1u << (1u << q->refcount_order)) - 1) << shift;
    p[0] = (uint8_t)((p[0] & ~mask) | ((v << shift) & mask));
}

static uint64_t rc_max(const struct qcow2 *q)
{
    return q->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << q->refcount_order)) - 1;
}

int qcow2_rc_get(struct qcow2 *q, uint64_t cluster, uint64_t *val)
{
    uint64_t block, byte;
    unsigned shift;
    uint8_t p[8];
    rc_locate(q, cluster, &block, &byte, &shift);
    if (!block) {
        *val = 0;
        return 0;
    }
    int ret = qcow2_pread(q, p, rc_bytes(q), block + byte);
    if (!ret)
        *val = rc_decode(q, p, shift);
    return ret;
}

int qcow2_rc_add(struct qcow2 *q, uint64_t cluster, int delta)
{
    uint64_t block, byte, v;
    unsigned shift;
    uint8_t p[8];
    rc_locate(q, cluster, &block, &byte, &shift);
    if (!block) {
        qcow2_corrupt(q, "cluster 0x%llx has no refcount block",
                      (unsigned long long)(cluster << q->cluster_bits));
        return -EIO;
    }
    int ret = qcow2_pread(q, p, rc_bytes(q), block + byte);
    if (ret)
        return ret;
    v = rc_decode(q, p, shift);
    if ((delta < 0 && v == 0) || (delta > 0 && v == rc_max(q))) {
        qcow2_corrupt(q, "refcount of cluster 0x%llx would over- or underflow",
                      (unsigned long long)(cluster << q->cluster_bits));
        return -EIO;
    }
    rc_encode(q, p, shift, delta < 0 ? v - 1 : v + 1);
    ret = qcow2_pwrite(q, p, rc_bytes(q), block + byte);
    if (!ret && delta < 0 && v == 1) { /* free: give the space back to the host */
        (void)fallocate(q->b.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
                        (off_t)(cluster << q->cluster_bits), (off_t)q->cs);
        qcow2_l2_written(q, cluster << q->cluster_bits, NULL, q->cs);
    }
    return ret;
}

/* A zeroed cluster at c, as a refcount block for the clusters around c with c's own set to 1. */
static int new_refblock_at(struct qcow2 *q, uint64_t c)
{
    uint8_t *blk = calloc(1, q->cs);
    if (!blk)
        return -ENOMEM;
    uint64_t bit = (c % q->rb_entries) << q->refcount_order;
    rc_encode(q, blk + bit / 8, (unsigned)(bit % 8), 1);
    int ret = qcow2_pwrite(q, blk, q->cs, c << q->cluster_bits);
    free(blk);
    if (ret)
        return ret;
    uint64_t idx = c / q->rb_entries;
    uint8_t e[8];
    be_put(e, 8, c << q->cluster_bits);
    /* The block is on disk before the table points at it. */
    if ((ret = qcow2_pwrite(q, e, 8, q->rt_offset + idx * 8)))
        return ret;
    q->rt[idx] = c << q->cluster_bits;
    return qcow2_add_meta(q, c);
}

/* Refcount blocks missing for the clusters [start, start + n), when the table has rt_n entries. */
static uint64_t missing_blocks(const struct qcow2 *q, uint64_t start, uint64_t n)
{
    uint64_t count = 0;
    for (uint64_t i = start / q->rb_entries; n && i <= (start + n - 1) / q->rb_entries; i++)
        count += i >= q->rt_entries || !q->rt[i];
    return count;
}

/*
 * Grow the refcount table to at least need entries: a new table at the end of
 * the file, followed by the refcount blocks that the new clusters themselves
 * need; the header switches to it, then the old table is freed.
 */
static int rt_grow(struct qcow2 *q, uint64_t need)
{
    uint64_t per_cl = q->cs / 8, start = q->next_free, n_rt = 0, n_rb = 0;
    for (int iter = 0;; iter++) {
        uint64_t end = start + n_rt + n_rb;
        uint64_t want = MAX(MAX(need, q->rt_entries * 2), end / q->rb_entries + 1);
        uint64_t nrt = (want + per_cl - 1) / per_cl;
        uint64_t nrb = missing_blocks(q, start, nrt + n_rb);
        if (nrt == n_rt && nrb == n_rb)
            break;
        n_rt = nrt, n_rb = nrb;
        if (iter > 64)
            return -EIO;
    }
    if (n_rt * q->cs > QCOW2_MAX_RT_BYTES || (start + n_rt + n_rb) * q->cs >= QCOW2_MAX_HOST)
        return -ENOSPC;

    uint64_t entries = n_rt * per_cl, area = n_rt + n_rb;
    uint64_t *nt = calloc(entries, 8);
    uint8_t *buf = calloc(n_rt, q->cs);
    uint8_t *blk = malloc(q->cs);
    int ret = -ENOMEM;
    if (!nt || !buf || !blk)
        goto out;
    memcpy(nt, q->rt, q->rt_entries * 8);
    /* The new blocks: each counts the area's clusters it covers. */
    uint64_t pos = start + n_rt;
    for (uint64_t i = start / q->rb_entries; i <= (start + area - 1) / q->rb_entries; i++) {
        if (i < q->rt_entries && q->rt[i])
            continue;
        nt[i] = pos << q->cluster_bits;
        memset(blk, 0, q->cs);
        for (uint64_t c = MAX(start, i * q->rb_entries);
             c < MIN(start + area, (i + 1) * q->rb_entries); c++) {
            uint64_t bit = (c % q->rb_entries) << q->refcount_order;
            rc_encode(q, blk + bit / 8, (unsigned)(bit % 8), 1);
        }
        if ((ret = qcow2_pwrite(q, blk, q->cs, pos << q->cluster_bits)))
            goto out;
        pos++;
    }
    for (uint64_t i = 0; i < entries; i++)
        be_put(buf + 8 * i, 8, nt[i]);
    if ((ret = qcow2_pwrite(q, buf, n_rt * q->cs, start << q->cluster_bits)))
        goto out;
    /* Area clusters covered by blocks that already exist. */
    for (uint64_t c = start; c < start + area; c++) {
        uint64_t i = c / q->rb_entries;
        if (i < q->rt_entries && q->rt[i] && (ret = qcow2_rc_add(q, c, 1)))
            goto out;
    }
    if (fdatasync(q->b.fd) < 0) {
        ret = -errno;
        goto out;
    }
    uint8_t h[12];
    be_put(h, 8, start << q->cluster_bits);
    be_put(h + 8, 4, n_rt);
    if ((ret = qcow2_pwrite(q, h, sizeof(h), QH_RT_OFFSET)))
        goto out;
    if (fdatasync(q->b.fd) < 0) {
        ret = -errno;
        goto out;
    }
    uint64_t old = q->rt_offset >> q->cluster_bits, old_n = q->rt_clusters;
    for (uint64_t i = start / q->rb_entries; i < entries; i++)
        if (nt[i] && (i >= q->rt_entries || !q->rt[i]) &&
            (ret = qcow2_add_meta(q, nt[i] >> q->cluster_bits)))
            goto out;
    free(q->rt);
    q->rt = nt;
    nt = NULL;
    q->rt_entries = entries;
    q->rt_offset = start << q->cluster_bits;
    q->rt_clusters = (uint32_t)n_rt;
    q->next_free = start + area;
    for (uint64_t c = old; c < old + old_n && !ret; c++)
        ret = qcow2_rc_add(q, c, -1);
out:
    free(nt);
    free(buf);
    free(blk);
    return ret;
}

int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *off)
{
    for (;;) {
        uint64_t c = q->next_free, idx = c / q->rb_entries, rc;
        if ((c + 1) << q->cluster_bits >= QCOW2_MAX_HOST)
            return -ENOSPC;
        int ret;
        if (idx >= q->rt_entries) {
            if ((ret = rt_grow(q, idx + 1)))
                return ret;
            continue;
        }
        q->next_free++;
        if (!q->rt[idx]) {
            if ((ret = new_refblock_at(q, c)))
                return ret;
            continue;
        }
        if ((ret = qcow2_rc_get(q, c, &rc)))
            return ret;
        if (rc || qcow2_is_meta(q, c))
            continue; /* in use although past the end of the file: skip it */
        if ((ret = qcow2_rc_add(q, c, 1)))
            return ret;
        *off = c << q->cluster_bits;
        return 0;
    }
}

int qcow2_free_entry(struct qcow2 *q, uint64_t entry)
{
    if (entry & QCOW2_COMPRESSED) {
        unsigned x = 62 - (q->cluster_bits - 8);
        uint64_t off = entry & ((1ull << x) - 1);
        uint64_t sectors = ((entry >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
        uint64_t first = (off & ~511ull) >> q->cluster_bits;
        uint64_t last = ((off & ~511ull) + sectors * 512 - 1) >> q->cluster_bits;
        for (uint64_t c = first; c <= last; c++) {
            int ret = qcow2_rc_add(q, c, -1);
            if (ret)
                return ret;
        }
        return 0;
    }
    uint64_t host = entry & QCOW2_OFF_MASK;
    return host ? qcow2_rc_add(q, host >> q->cluster_bits, -1) : 0;
}
