// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qcow2 v2/v3: opening. Every header field and table entry hv relies on is
 * checked here, before the image is used: a bad one refuses the image.
 */
#include "qcow2.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Header extension types. */
#define QEXT_END             0x00000000u
#define QEXT_BACKING_FMT     0xe2792acau
#define QEXT_FEATURES        0x6803f857u
#define QEXT_BITMAPS         0x23852875u
#define QEXT_CRYPTO          0x0537be77u
#define QEXT_DATA_FILE       0x44415441u
#define QCOW2_KNOWN_INCOMPAT 0x1full

struct qopen {
    struct qcow2 *q;
    const char *path;
    char *err;
    uint64_t fsz;
    uint8_t *hc; /* the header cluster */
    char backing[QCOW2_MAX_BACKING_NAME + 1];
    char backing_fmt[16];
};

static int bad(struct qopen *o, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct qopen *o, int e, const char *fmt, ...)
{
    char why[BDEV_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    bdev_errf(o->err, "%s: refused qcow2 image: %s", o->path, why);
    return -e;
}

void qcow2_corrupt(struct qcow2 *q, const char *fmt, ...)
{
    if (q->logged_corrupt)
        return;
    q->logged_corrupt = true;
    char why[BDEV_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_err("%s: corrupt qcow2 image (I/O errors from now on where it matters): %s", q->b.path,
            why);
}

int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {buf, len};
    return bdev_rw_full(q->b.fd, &iov, 1, off, false);
}

int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {(void *)buf, len};
    int ret = bdev_rw_full(q->b.fd, &iov, 1, off, true);
    /* Also on failure: what the file holds there is not known any more. */
    qcow2_l2_written(q, off, ret ? NULL : buf, len);
    return ret;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool qcow2_is_meta(const struct qcow2 *q, uint64_t cluster)
{
    return q->n_meta && bsearch(&cluster, q->meta, q->n_meta, sizeof(uint64_t), cmp_u64);
}

int qcow2_add_meta(struct qcow2 *q, uint64_t cluster)
{
    if (q->n_meta == q->cap_meta) {
        size_t cap = q->cap_meta ? 2 * q->cap_meta : 64;
        uint64_t *m = realloc(q->meta, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        q->meta = m;
        q->cap_meta = cap;
    }
    size_t i = q->n_meta;
    while (i && q->meta[i - 1] > cluster) {
        q->meta[i] = q->meta[i - 1];
        i--;
    }
    q->meta[i] = cluster;
    q->n_meta++;
    return 0;
}

/* [off, off + len) is cluster-aligned, past the header cluster and inside the file. */
static bool table_ok(struct qopen *o, uint64_t off, uint64_t len)
{
    return off % o->q->cs == 0 && off >= o->q->cs && range_within(off, len, o->fsz);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static int parse_extensions(struct qopen *o, uint64_t start, uint64_t end)
{
    const uint8_t *h = o->hc;
    for (uint64_t p = start; p + 8 <= end;) {
        uint32_t type = (uint32_t)be_get(h + p, 4), len = (uint32_t)be_get(h + p + 4, 4);
        if (type == QEXT_END)
            return 0;
        if (len > end - p - 8)
            return bad(o, EINVAL, "header extension 0x%08x runs past the header", type);
        const uint8_t *d = h + p + 8;
        switch (type) {
        case QEXT_BACKING_FMT:
            if (len >= sizeof(o->backing_fmt) || memchr(d, 0, len))
                return bad(o, EINVAL, "backing file format name is malformed");
            memcpy(o->backing_fmt, d, len);
            o->backing_fmt[len] = 0;
            break;
        case QEXT_CRYPTO:
            return bad(o, ENOTSUP, "encrypted images are not supported");
        case QEXT_DATA_FILE:
        case QEXT_FEATURES:
        case QEXT_BITMAPS:
        default: /* unknown extensions are ignored (the spec says so) */
            break;
        }
        p += 8 + align_up(len, 8);
    }
    return 0;
}

static int parse_header(struct qopen *o)
{
    struct qcow2 *q = o->q;
    uint8_t h[112] = {0};
    if (o->fsz < 72 || qcow2_pread(q, h, sizeof(h), 0))
        return bad(o, EINVAL, "truncated: %llu bytes, less than a header",
                   (unsigned long long)o->fsz);
    if (memcmp(h, QCOW2_MAGIC, 4))
        return bad(o, EINVAL, "no qcow2 magic");
    q->version = (uint32_t)be_get(h + 4, 4);
    if (q->version != 2 && q->version != 3)
        return bad(o, ENOTSUP, "version %u (only 2 and 3 are supported)", q->version);
    q->cluster_bits = (unsigned)be_get(h + 20, 4);
    if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return bad(o, EINVAL, "cluster size 2^%u is out of range (512 B - 2 MiB)", q->cluster_bits);
    q->cs = 1ull << q->cluster_bits;
    q->l2_bits = q->cluster_bits - 3;
    if (o->fsz <= q->cs)
        return bad(o, EINVAL, "truncated: %llu bytes, not even past the header cluster",
                   (unsigned long long)o->fsz);
    if (be_get(h + 32, 4))
        return bad(o, ENOTSUP, "encrypted images are not supported");

    uint64_t header_len = 72;
    q->refcount_order = 4;
    if (q->version == 3) {
        q->incompat = be_get(h + 72, 8);
        q->refcount_order = (unsigned)be_get(h + 96, 4);
        header_len = be_get(h + 100, 4);
        if (header_len < 104 || header_len % 8 || header_len > q->cs)
            return bad(o, EINVAL, "header length %llu is invalid", (unsigned long long)header_len);
    }
    if (q->incompat & ~QCOW2_KNOWN_INCOMPAT)
        return bad(o, ENOTSUP, "unknown incompatible features 0x%llx (a newer format)",
                   (unsigned long long)(q->incompat & ~QCOW2_KNOWN_INCOMPAT));
    if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
        return bad(o, EINVAL, "qemu marked it corrupt; repair it with 'qemu-img check -r all'");
    if (q->incompat & QCOW2_INCOMPAT_DATA_FILE)
        return bad(o, ENOTSUP, "external data files are not supported");
    if (q->incompat & QCOW2_INCOMPAT_EXTL2)
        return bad(o, ENOTSUP, "extended L2 entries (subclusters) are not supported");
    if ((q->incompat & QCOW2_INCOMPAT_COMPRESSION) && header_len > 104 && h[104] != 0)
        return bad(o, ENOTSUP, "compression type %u (only zlib is supported)", h[104]);
    if ((q->incompat & QCOW2_INCOMPAT_DIRTY) && !q->b.readonly)
        return bad(o, EINVAL,
                   "it was not closed cleanly (dirty, lazy refcounts); repair it with "
                   "'qemu-img check -r all' before writing to it");
    if (q->refcount_order > 6)
        return bad(o, EINVAL, "refcount order %u is out of range (0-6)", q->refcount_order);
    q->rb_entries = (q->cs * 8) >> q->refcount_order;

    /* Virtual size and L1 table. */
    q->b.size = be_get(h + 24, 8);
    q->l1_size = (uint32_t)be_get(h + 36, 4);
    q->l1_offset = be_get(h + 40, 8);
    uint64_t per_l1 = q->cs << q->l2_bits; /* bytes one L1 entry maps */
    if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return bad(o, EINVAL, "L1 table of %u entries is absurdly large", q->l1_size);
    if (q->b.size / per_l1 + (q->b.size % per_l1 != 0) > q->l1_size)
        return bad(o, EINVAL, "L1 table (%u entries) too small for the size %llu", q->l1_size,
                   (unsigned long long)q->b.size);
    if (q->l1_size && !table_ok(o, q->l1_offset, (uint64_t)q->l1_size * 8))
        return bad(o, EINVAL,
                   "L1 table at 0x%llx is misaligned, on the header or past the end "
                   "of the file",
                   (unsigned long long)q->l1_offset);

    /* Refcount table. */
    q->rt_offset = be_get(h + 48, 8);
    q->rt_clusters = (uint32_t)be_get(h + 56, 4);
    if (!q->rt_clusters || q->rt_clusters > QCOW2_MAX_RT_BYTES / q->cs)
        return bad(o, EINVAL, "refcount table of %u clusters is invalid", q->rt_clusters);
    q->rt_entries = q->rt_clusters * q->cs / 8;
    if (!table_ok(o, q->rt_offset, q->rt_clusters * q->cs))
        return bad(o, EINVAL,
                   "refcount table at 0x%llx is misaligned, on the header or past the "
                   "end of the file",
                   (unsigned long long)q->rt_offset);
    if (q->l1_size &&
        overlaps(q->l1_offset, (uint64_t)q->l1_size * 8, q->rt_offset, q->rt_clusters * q->cs))
        return bad(o, EINVAL, "the L1 and refcount tables overlap");

    q->has_snapshots = be_get(h + 60, 4) != 0;
    if (q->has_snapshots && !q->b.readonly)
        return bad(o, ENOTSUP, "it has internal snapshots: hv opens such images read-only only");

    /* Header extensions and the backing file name, all in the header cluster. */
    size_t hlen = (size_t)MIN(q->cs, o->fsz);
    if (!(o->hc = calloc(1, q->cs)) || qcow2_pread(q, o->hc, hlen, 0))
        return bad(o, EIO, "cannot read the header");
    uint64_t bf_off = be_get(h + 8, 8), bf_len = be_get(h + 16, 4);
    uint64_t ext_end = bf_off ? bf_off : q->cs;
    if (bf_off) {
        if (bf_off < header_len || bf_len == 0 || bf_len > QCOW2_MAX_BACKING_NAME ||
            !range_within(bf_off, bf_len, q->cs))
            return bad(o, EINVAL, "backing file name (%llu bytes at %llu) is invalid",
                       (unsigned long long)bf_len, (unsigned long long)bf_off);
        if (memchr(o->hc + bf_off, 0, bf_len))
            return bad(o, EINVAL, "backing file name contains a NUL byte");
        memcpy(o->backing, o->hc + bf_off, bf_len);
        o->backing[bf_len] = 0;
    }
    int ret = parse_extensions(o, header_len, ext_end);
    if (ret)
        return ret;
    if (!q->b.readonly && q->version == 3 && be_get(h + QH_AUTOCLEAR, 8)) {
        /* Bitmaps and the like: our writes would make them stale, so they go. */
        uint8_t zero[8] = {0};
        if (qcow2_pwrite(q, zero, 8, QH_AUTOCLEAR))
            return bad(o, EIO, "cannot clear the autoclear features");
    }
    return 0;
}

static int check_table_cluster(struct qopen *o, uint64_t off, const char *what, uint64_t i)
{
    struct qcow2 *q = o->q;
    if (!table_ok(o, off, 1) ||
        (q->l1_size && overlaps(off, q->cs, q->l1_offset, (uint64_t)q->l1_size * 8)) ||
        overlaps(off, q->cs, q->rt_offset, q->rt_clusters * q->cs))
        return bad(o, EINVAL,
                   "%s %llu points at 0x%llx: misaligned, on the header or another "
                   "table, or past the end of the file",
                   what, (unsigned long long)i, (unsigned long long)off);
    return qcow2_add_meta(q, off >> q->cluster_bits) ? bad(o, ENOMEM, "out of memory") : 0;
}

static int load_tables(struct qopen *o)
{
    struct qcow2 *q = o->q;
    uint8_t *buf = malloc(MAX((uint64_t)q->l1_size * 8, q->rt_entries * 8));
    if (!buf || !(q->l1 = calloc(q->l1_size + 1, 8)) || !(q->rt = calloc(q->rt_entries, 8))) {
        free(buf);
        return bad(o, ENOMEM, "out of memory for its tables");
    }
    int ret = 0;
    if (qcow2_pread(q, buf, (size_t)q->l1_size * 8, q->l1_offset))
        ret = bad(o, EIO, "cannot read the L1 table");
    for (uint32_t i = 0; !ret && i < q->l1_size; i++) {
        q->l1[i] = be_get(buf + 8 * i, 8);
        if (q->l1[i] & QCOW2_L1_RSVD)
            ret = bad(o, EINVAL, "L1 entry %u has reserved bits set", i);
        else if (q->l1[i] & QCOW2_OFF_MASK)
            ret = check_table_cluster(o, q->l1[i] & QCOW2_OFF_MASK, "L1 entry", i);
    }
    if (!ret && qcow2_pread(q, buf, q->rt_entries * 8, q->rt_offset))
        ret = bad(o, EIO, "cannot read the refcount table");
    for (uint64_t i = 0; !ret && i < q->rt_entries; i++) {
        q->rt[i] = be_get(buf + 8 * i, 8);
        if (q->rt[i] & ~QCOW2_RT_MASK)
            ret = bad(o, EINVAL, "refcount table entry %llu has reserved bits set",
                      (unsigned long long)i);
        else if (q->rt[i])
            ret = check_table_cluster(o, q->rt[i], "refcount table entry", i);
    }
    free(buf);
    for (size_t i = 1; !ret && i < q->n_meta; i++)
        if (q->meta[i] == q->meta[i - 1])
            ret = bad(o, EINVAL, "two tables share the cluster at 0x%llx",
                      (unsigned long long)(q->meta[i] << q->cluster_bits));
    return ret;
}

static void qcow2_close(struct bdev *b)
{
    struct qcow2 *q = (struct qcow2 *)b;
    if (!b->readonly && b->fd >= 0)
        (void)fdatasync(b->fd);
    bdev_close(b->backing);
    if (b->fd >= 0)
        close(b->fd);
    free(b->path);
    free(q->l1);
    free(q->rt);
    free(q->meta);
    free(q->bounce);
    free(q->zin);
    qcow2_l2_free(q);
    free(q);
}

static const struct bdev_ops qcow2_ops = {
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .close = qcow2_close,
};

int qcow2_open(struct bdev **out, int fd, const char *path, bool readonly, struct bdev_chain *chain,
               char *err)
{
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q || !(q->b.path = strdup(path))) {
        free(q);
        close(fd);
        bdev_errf(err, "%s: out of memory", path);
        return -ENOMEM;
    }
    q->b.ops = &qcow2_ops;
    q->b.format = "qcow2";
    q->b.fd = fd;
    q->b.readonly = readonly;
    struct qopen o = {.q = q, .path = path, .err = err};
    int ret = bdev_fd_size(fd, &o.fsz);
    if (ret)
        ret = bad(&o, -ret, "%s", strerror(-ret));
    if (!ret)
        ret = parse_header(&o);
    if (!ret)
        ret = load_tables(&o);
    if (!ret) {
        q->next_free = o.fsz / q->cs + (o.fsz % q->cs != 0);
        if (o.backing[0]) {
            enum bdev_format fmt = BDEV_FMT_PROBE;
            if (!strcmp(o.backing_fmt, "raw"))
                fmt = BDEV_FMT_RAW;
            else if (!strcmp(o.backing_fmt, "qcow2"))
                fmt = BDEV_FMT_QCOW2;
            else if (o.backing_fmt[0])
                ret = bad(&o, ENOTSUP, "backing file format '%s' is not supported", o.backing_fmt);
            if (!ret)
                ret = bdev_open_backing(&q->b.backing, path, o.backing, fmt, chain, err);
        }
    }
    free(o.hc);
    if (ret) {
        qcow2_close(&q->b);
        return ret;
    }
    *out = &q->b;
    return 0;
}
