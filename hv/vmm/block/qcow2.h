/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qcow2 (v2 and v3) internals, shared by qcow2*.c. The format: docs/disks.md. */
#ifndef HV_VMM_BLOCK_QCOW2_H
#define HV_VMM_BLOCK_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "be.h"
#include "block.h"

#define QCOW2_MAGIC "QFI\xfb"

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES     (32u << 20)
#define QCOW2_MAX_RT_BYTES     (8u << 20)
#define QCOW2_MAX_BACKING_NAME 1023

/* Incompatible feature bits (v3). */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)

/* Table entries. */
#define QCOW2_COPIED     (1ull << 63)
#define QCOW2_COMPRESSED (1ull << 62)
#define QCOW2_ZERO       (1ull << 0)
#define QCOW2_OFF_MASK   0x00fffffffffffe00ull /* L1 and L2 entries: bits 9-55 */
#define QCOW2_L1_RSVD    0x7f000000000001feull
#define QCOW2_L2_RSVD    0x3f000000000001feull
#define QCOW2_RT_MASK    0xfffffffffffffe00ull
#define QCOW2_MAX_HOST   (1ull << 56) /* host offsets stay below */

/* Header field offsets. */
#define QH_RT_OFFSET 48
#define QH_AUTOCLEAR 88

/* qcow2_cache.c: L2 table slices in memory. */
#define QCOW2_L2_SLICE_ENTRIES 512
#define QCOW2_L2_SLICES        256

struct qcow2_l2cache {
    uint64_t key[QCOW2_L2_SLICES]; /* the slice's offset in the file; 0: empty */
    uint64_t used[QCOW2_L2_SLICES];
    uint64_t tick;
    uint64_t *entries; /* QCOW2_L2_SLICES slices, host order; allocated when first needed */
};

struct qcow2 {
    struct bdev b; /* first: a struct bdev * is a struct qcow2 * */
    uint32_t version;
    unsigned cluster_bits, l2_bits; /* l2_bits: log2 of the entries in an L2 table */
    uint64_t cs;                    /* cluster size in bytes */
    uint64_t incompat;
    bool has_snapshots;

    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t *l1; /* entries as on disk, host byte order */

    uint64_t rt_offset;
    uint32_t rt_clusters;
    uint64_t rt_entries;
    uint64_t *rt;
    unsigned refcount_order;
    uint64_t rb_entries; /* refcounts per refcount block */

    /* Clusters holding L2 tables and refcount blocks, sorted: no data write may touch them. */
    uint64_t *meta;
    size_t n_meta, cap_meta;

    uint64_t next_free; /* allocation cursor (cluster index): clusters are appended */
    uint8_t *bounce;    /* one cluster, for copy-on-write */
    uint8_t *zin;       /* compressed input: up to two clusters */
    struct qcow2_l2cache l2c;
    bool logged_corrupt;
};

/* qcow2_cache.c */
int qcow2_l2_get(struct qcow2 *q, uint64_t table, uint64_t idx, uint64_t *entry);
/* len bytes written (buf) or given back (NULL) at off: cached slices there follow. */
void qcow2_l2_written(struct qcow2 *q, uint64_t off, const void *buf, size_t len);
void qcow2_l2_free(struct qcow2 *q);

/* qcow2.c */
void qcow2_corrupt(struct qcow2 *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off);
int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off);
bool qcow2_is_meta(const struct qcow2 *q, uint64_t cluster);
int qcow2_add_meta(struct qcow2 *q, uint64_t cluster);

/* qcow2_alloc.c: refcounts and cluster allocation */
int qcow2_rc_get(struct qcow2 *q, uint64_t cluster, uint64_t *val);
int qcow2_rc_add(struct qcow2 *q, uint64_t cluster, int delta);
/* A new cluster with refcount 1 (contents undefined); returns its host offset in *off. */
int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *off);
/* Drop the reference of an L2 entry (data or compressed), releasing the space at 0. */
int qcow2_free_entry(struct qcow2 *q, uint64_t entry);

/* qcow2_io.c: the bdev_ops */
int qcow2_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
int qcow2_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
int qcow2_flush(struct bdev *b);
int qcow2_discard(struct bdev *b, uint64_t off, uint64_t len);
int qcow2_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap);

#endif
