// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qcow2 reads and writes, one cluster at a time. A cluster is unallocated
 * (backing file or zeros), zero (v3), data or compressed. Writes allocate
 * in this image, copying the rest of a partly written cluster from where
 * its data was; the L2 entry is written last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "qcow2.h"
#include "util.h"

enum kind { K_UNALLOC, K_ZERO, K_DATA, K_COMP };

struct l2ref {
    uint64_t entry;
    uint64_t table; /* the L2 table's offset, 0 if none */
    uint64_t l1i, idx;
};

static const uint8_t zeros[64 * 1024];

static int lookup(struct qcow2 *q, uint64_t vcl, struct l2ref *r)
{
    r->l1i = vcl >> q->l2_bits;
    r->idx = vcl & ((1ull << q->l2_bits) - 1);
    r->table = r->l1i < q->l1_size ? q->l1[r->l1i] & QCOW2_OFF_MASK : 0;
    r->entry = 0;
    return r->table ? qcow2_l2_get(q, r->table, r->idx, &r->entry) : 0;
}

/* The kind of an L2 entry (< 0: corrupt), and its host offset. */
static int classify(struct qcow2 *q, uint64_t e, uint64_t *host)
{
    *host = 0;
    if (e & QCOW2_COMPRESSED)
        return K_COMP;
    if ((e & QCOW2_L2_RSVD) || (q->version == 2 && (e & QCOW2_ZERO))) {
        qcow2_corrupt(q, "L2 entry 0x%llx has reserved bits set", (unsigned long long)e);
        return -EIO;
    }
    *host = e & QCOW2_OFF_MASK;
    if (*host && (*host % q->cs || *host < q->cs)) {
        qcow2_corrupt(q, "L2 entry 0x%llx is misaligned or points at the header",
                      (unsigned long long)e);
        return -EIO;
    }
    if (e & QCOW2_ZERO)
        return K_ZERO;
    return *host ? K_DATA : K_UNALLOC;
}

static int need_bounce(struct qcow2 *q)
{
    if (!q->bounce && !(q->bounce = malloc(q->cs)))
        return -ENOMEM;
    return 0;
}

/* Inflate a compressed cluster into q->bounce. */
static int read_compressed(struct qcow2 *q, uint64_t e)
{
    unsigned x = 62 - (q->cluster_bits - 8);
    uint64_t off = e & ((1ull << x) - 1);
    uint64_t sectors = ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
    size_t len = (size_t)(sectors * 512 - (off & 511));
    if (off < q->cs) {
        qcow2_corrupt(q, "compressed cluster at 0x%llx is on the header", (unsigned long long)off);
        return -EIO;
    }
    if (!q->zin && !(q->zin = malloc(2 * q->cs)))
        return -ENOMEM;
    int ret = qcow2_pread(q, q->zin, len, off);
    if (ret)
        return ret;
    z_stream s = {0};
    if (inflateInit2(&s, -15) != Z_OK)
        return -ENOMEM;
    s.next_in = q->zin;
    s.avail_in = (uInt)len;
    s.next_out = q->bounce;
    s.avail_out = (uInt)q->cs;
    int z = inflate(&s, Z_FINISH);
    bool ok = (z == Z_STREAM_END || z == Z_BUF_ERROR) && s.avail_out == 0;
    inflateEnd(&s);
    if (!ok) {
        qcow2_corrupt(q, "compressed cluster at 0x%llx does not inflate", (unsigned long long)off);
        return -EIO;
    }
    return 0;
}

/* Guest bytes [off, off + len) from the backing file, zeros past its end or without one. */
static int read_backing(struct qcow2 *q, const struct iovec *iov, unsigned n, size_t ioff,
                        uint64_t off, size_t len)
{
    struct bdev *bk = q->b.backing;
    size_t blen = bk && off < bk->size ? (size_t)MIN(len, bk->size - off) : 0;
    if (blen) {
        struct iovec seg[BDEV_IOV_MAX];
        unsigned k = iov_slice(iov, n, ioff, blen, seg, BDEV_IOV_MAX);
        int ret = bdev_preadv(bk, seg, k, off);
        if (ret)
            return ret;
    }
    iov_memset(iov, n, ioff + blen, 0, len - blen);
    return 0;
}

/* The whole of a cluster as it reads now, into q->bounce. */
static int fill_old(struct qcow2 *q, int kind, uint64_t e, uint64_t host, uint64_t vcl)
{
    struct iovec iov = {q->bounce, q->cs};
    switch (kind) {
    case K_UNALLOC:
        return read_backing(q, &iov, 1, 0, vcl << q->cluster_bits, q->cs);
    case K_DATA:
        return qcow2_pread(q, q->bounce, q->cs, host);
    case K_COMP:
        return read_compressed(q, e);
    default:
        memset(q->bounce, 0, q->cs);
        return 0;
    }
}

static int read_chunk(struct qcow2 *q, const struct iovec *iov, unsigned n, size_t ioff,
                      uint64_t off, size_t len)
{
    struct l2ref r;
    uint64_t host;
    int ret = lookup(q, off >> q->cluster_bits, &r);
    int kind = ret ? ret : classify(q, r.entry, &host);
    size_t in = (size_t)(off & (q->cs - 1));
    struct iovec seg[BDEV_IOV_MAX];
    unsigned k;

    switch (kind) {
    case K_UNALLOC:
        return read_backing(q, iov, n, ioff, off, len);
    case K_ZERO:
        iov_memset(iov, n, ioff, 0, len);
        return 0;
    case K_DATA:
        k = iov_slice(iov, n, ioff, len, seg, BDEV_IOV_MAX);
        return bdev_rw_full(q->b.fd, seg, k, host + in, false);
    case K_COMP:
        if ((ret = need_bounce(q)) || (ret = read_compressed(q, r.entry)))
            return ret;
        iov_from_buf(iov, n, ioff, q->bounce + in, len);
        return 0;
    default:
        return kind;
    }
}

/* Data may be written at host: not the header, a table or a refcount block. */
static int check_write(struct qcow2 *q, uint64_t host)
{
    uint64_t c = host >> q->cluster_bits;
    uint64_t l1_end = q->l1_offset + (uint64_t)q->l1_size * 8;
    bool bad = c == 0 || qcow2_is_meta(q, c) ||
               (host < q->rt_offset + q->rt_clusters * q->cs && q->rt_offset < host + q->cs) ||
               (q->l1_size && host < l1_end && q->l1_offset < host + q->cs);
    if (bad) {
        qcow2_corrupt(q, "data cluster 0x%llx overlaps metadata", (unsigned long long)host);
        return -EIO;
    }
    return 0;
}

static int put_entry(struct qcow2 *q, uint64_t where, uint64_t v)
{
    uint8_t e[8];
    be_put(e, 8, v);
    return qcow2_pwrite(q, e, 8, where);
}

/* The L2 table for r, allocated (zeroed) if there is none yet. */
static int need_table(struct qcow2 *q, struct l2ref *r)
{
    if (r->table) {
        if (q->l1[r->l1i] & QCOW2_COPIED)
            return 0;
        qcow2_corrupt(q, "L2 table 0x%llx is shared", (unsigned long long)r->table);
        return -EIO;
    }
    uint64_t t;
    int ret = qcow2_alloc_cluster(q, &t);
    if (ret)
        return ret;
    for (uint64_t o = 0; o < q->cs && !ret; o += sizeof(zeros))
        ret = qcow2_pwrite(q, zeros, (size_t)MIN(sizeof(zeros), q->cs - o), t + o);
    if (ret || (ret = qcow2_add_meta(q, t >> q->cluster_bits)))
        return ret;
    if ((ret = put_entry(q, q->l1_offset + r->l1i * 8, t | QCOW2_COPIED)))
        return ret;
    q->l1[r->l1i] = t | QCOW2_COPIED;
    r->table = t;
    return 0;
}

static int write_chunk(struct qcow2 *q, const struct iovec *iov, unsigned n, size_t ioff,
                       uint64_t off, size_t len)
{
    uint64_t vcl = off >> q->cluster_bits, host, target;
    size_t in = (size_t)(off & (q->cs - 1));
    struct iovec seg[BDEV_IOV_MAX];
    unsigned k = iov_slice(iov, n, ioff, len, seg, BDEV_IOV_MAX);
    struct l2ref r;
    int ret = lookup(q, vcl, &r);
    int kind = ret ? ret : classify(q, r.entry, &host);
    if (kind < 0)
        return kind;
    if (kind == K_DATA) {
        if (!(r.entry & QCOW2_COPIED)) {
            qcow2_corrupt(q, "data cluster 0x%llx is shared", (unsigned long long)host);
            return -EIO;
        }
        if ((ret = check_write(q, host)))
            return ret;
        return bdev_rw_full(q->b.fd, seg, k, host + in, true);
    }
    /* A preallocated zero cluster of ours is reused; anything else gets a new cluster. */
    bool reuse = kind == K_ZERO && host && (r.entry & QCOW2_COPIED);
    if ((ret = need_bounce(q)) || (ret = need_table(q, &r)))
        return ret;
    if (reuse)
        ret = check_write(q, target = host);
    else
        ret = qcow2_alloc_cluster(q, &target);
    if (ret)
        return ret;
    if (len == q->cs) {
        ret = bdev_rw_full(q->b.fd, seg, k, target, true);
    } else {
        if ((ret = fill_old(q, kind, r.entry, host, vcl)))
            return ret;
        iov_to_buf(iov, n, ioff, q->bounce + in, len);
        ret = qcow2_pwrite(q, q->bounce, q->cs, target);
    }
    if (ret || (ret = put_entry(q, r.table + r.idx * 8, target | QCOW2_COPIED)))
        return ret;
    if (!reuse && (kind == K_COMP || (kind == K_ZERO && host)))
        ret = qcow2_free_entry(q, r.entry);
    return ret;
}

typedef int chunk_fn(struct qcow2 *q, const struct iovec *iov, unsigned n, size_t ioff,
                     uint64_t off, size_t len);

static int per_cluster(struct qcow2 *q, const struct iovec *iov, unsigned n, uint64_t off,
                       chunk_fn *fn)
{
    size_t total = iov_total(iov, n);
    for (size_t done = 0; done < total;) {
        size_t len = (size_t)MIN(total - done, q->cs - (off & (q->cs - 1)));
        int ret = fn(q, iov, n, done, off, len);
        if (ret)
            return ret;
        done += len;
        off += len;
    }
    return 0;
}

/* Whether guest byte off is in a data cluster (K_DATA), and that cluster's host offset. */
static bool data_cluster(struct qcow2 *q, uint64_t off, uint64_t *host)
{
    struct l2ref r;
    return lookup(q, off >> q->cluster_bits, &r) == 0 && r.table &&
           classify(q, r.entry, host) == K_DATA;
}

/* Cluster by cluster, but data clusters that follow each other in the file too are one read. */
int qcow2_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    struct qcow2 *q = (struct qcow2 *)b;
    size_t total = iov_total(iov, n);
    for (size_t done = 0; done < total;) {
        uint64_t in = off & (q->cs - 1), host, next;
        size_t len = (size_t)MIN(total - done, q->cs - in);
        int ret;
        if (data_cluster(q, off, &host)) {
            while (done + len < total && data_cluster(q, off + len, &next) &&
                   next == host + in + len)
                len += (size_t)MIN(total - done - len, q->cs);
            struct iovec seg[BDEV_IOV_MAX];
            unsigned k = iov_slice(iov, n, done, len, seg, BDEV_IOV_MAX);
            ret = bdev_rw_full(q->b.fd, seg, k, host + in, false);
        } else {
            ret = read_chunk(q, iov, n, done, off, len);
        }
        if (ret)
            return ret;
        done += len;
        off += len;
    }
    return 0;
}

int qcow2_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    return per_cluster((struct qcow2 *)b, iov, n, off, write_chunk);
}

int qcow2_flush(struct bdev *b)
{
    return fdatasync(b->fd) < 0 ? -errno : 0;
}

/* Replace a whole cluster by an unallocated (0) or zero (QCOW2_ZERO) entry. */
static int clear_cluster(struct qcow2 *q, uint64_t vcl, uint64_t entry)
{
    struct l2ref r;
    uint64_t host;
    int ret = lookup(q, vcl, &r);
    int kind = ret ? ret : classify(q, r.entry, &host);
    if (kind < 0)
        return kind;
    if ((kind == K_UNALLOC && !entry) || (kind == K_ZERO && !host && entry))
        return 0;
    if ((ret = need_table(q, &r)) || (ret = put_entry(q, r.table + r.idx * 8, entry)))
        return ret;
    return kind == K_UNALLOC ? 0 : qcow2_free_entry(q, r.entry);
}

static int write_zero_bytes(struct qcow2 *q, uint64_t off, uint64_t len)
{
    for (uint64_t o = 0; o < len; o += sizeof(zeros)) {
        struct iovec iov = {(void *)zeros, (size_t)MIN(sizeof(zeros), len - o)};
        int ret = per_cluster(q, &iov, 1, off + o, write_chunk);
        if (ret)
            return ret;
    }
    return 0;
}

/* The whole clusters of [off, off + len); the last one may end at the end of the disk. */
static void whole_clusters(struct qcow2 *q, uint64_t off, uint64_t len, uint64_t *first,
                           uint64_t *end)
{
    uint64_t stop = off + len == q->b.size ? align_up(off + len, q->cs) : off + len;
    *first = align_up(off, q->cs) >> q->cluster_bits;
    *end = MAX(*first, stop >> q->cluster_bits);
}

int qcow2_discard(struct bdev *b, uint64_t off, uint64_t len)
{
    struct qcow2 *q = (struct qcow2 *)b;
    uint64_t first, end;
    whole_clusters(q, off, len, &first, &end);
    uint64_t entry = q->version == 3 ? QCOW2_ZERO : 0;
    for (uint64_t c = first; c < end; c++) {
        int ret = clear_cluster(q, c, entry);
        if (ret)
            return ret;
    }
    return 0;
}

int qcow2_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap)
{
    (void)unmap; /* whole clusters are always released */
    struct qcow2 *q = (struct qcow2 *)b;
    uint64_t first, end;
    whole_clusters(q, off, len, &first, &end);
    bool clear = q->version == 3 || !q->b.backing;
    if (!clear || first >= end)
        return write_zero_bytes(q, off, len);
    uint64_t head = (first << q->cluster_bits) - off;
    int ret = write_zero_bytes(q, off, head);
    for (uint64_t c = first; c < end && !ret; c++)
        ret = clear_cluster(q, c, q->version == 3 ? QCOW2_ZERO : 0);
    uint64_t tail = end << q->cluster_bits;
    if (!ret && tail < off + len)
        ret = write_zero_bytes(q, tail, off + len - tail);
    return ret;
}
