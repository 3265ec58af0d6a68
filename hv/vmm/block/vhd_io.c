// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * VHD dynamic and differencing disks: reads and writes through the block
 * table. A sector whose bit is clear in its block's bitmap reads as zeros
 * (dynamic) or from the parent (differencing); an unallocated block the
 * same for all its sectors.
 *
 * A new block goes where the footer was, and the order of the writes keeps
 * the file a valid VHD at every step: the footer is first written again
 * past the new block (the file's end moves), then the data and the bitmap,
 * then, once they are on disk (fdatasync), the block table entry. A crash
 * leaves at worst an unreferenced block; a flushed write is never lost.
 * A new block of a differencing disk is filled from the parent where the
 * write does not cover it, and has every bit set: so hv never sets a bit in
 * a block it made, and a bit can never reach the disk before its sector's
 * data (which would show zeros in place of the parent's bytes after a crash).
 * Blocks other tools made with clear bits get the data written and synced
 * before the bitmap.
 */
#include "vhd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "be.h"
#include "util.h"

static bool bit(const uint8_t *bm, uint32_t s)
{
    return bm[s / 8] & (0x80 >> (s % 8));
}

static void set_bits(uint8_t *bm, uint32_t first, uint32_t count)
{
    for (uint32_t s = first; s < first + count; s++)
        bm[s / 8] |= (uint8_t)(0x80 >> (s % 8));
}

static uint64_t block_at(const struct vhd *v, uint32_t blk)
{
    return (uint64_t)v->bat[blk] * VHD_SECTOR;
}

static bool block_full(const struct vhd *v, uint32_t blk)
{
    return v->full[blk / 8] & (1u << (blk % 8));
}

static void set_full(struct vhd *v, uint32_t blk)
{
    v->full[blk / 8] |= (uint8_t)(1u << (blk % 8));
}

static int load_bitmap(struct vhd *v, uint32_t blk)
{
    if (v->bitmap_block == blk)
        return 0;
    v->bitmap_block = UINT32_MAX;
    struct iovec iov = {v->bitmap, v->bitmap_len};
    int ret = bdev_rw_full(v->b.fd, &iov, 1, block_at(v, blk), false);
    if (ret)
        return ret;
    v->bitmap_block = blk;
    uint32_t s = 0;
    while (s < v->sectors_per_block && bit(v->bitmap, s))
        s++;
    if (s == v->sectors_per_block)
        set_full(v, blk);
    return 0;
}

/* Guest bytes [off, off + len) where no sector is in this image: the parent's, or zeros. */
static int read_under(struct vhd *v, const struct iovec *iov, unsigned n, size_t ioff, uint64_t off,
                      size_t len)
{
    if (!v->b.backing) {
        iov_memset(iov, n, ioff, 0, len);
        return 0;
    }
    struct iovec seg[BDEV_IOV_MAX];
    unsigned k = iov_slice(iov, n, ioff, len, seg, BDEV_IOV_MAX);
    return bdev_preadv(v->b.backing, seg, k, off);
}

/* Guest bytes iov[ioff, ioff + len) from or to this file at host. */
static int file_io(struct vhd *v, const struct iovec *iov, unsigned n, size_t ioff, uint64_t host,
                   size_t len, bool write)
{
    struct iovec seg[BDEV_IOV_MAX];
    unsigned k = iov_slice(iov, n, ioff, len, seg, BDEV_IOV_MAX);
    return bdev_rw_full(v->b.fd, seg, k, host, write);
}

/* One block's part of a request: guest bytes [pos, pos + len), in block blk from offset in. */
typedef int block_fn(struct vhd *v, const struct iovec *iov, unsigned n, size_t ioff, uint64_t pos,
                     uint32_t blk, uint32_t in, size_t len);

/* A request split at block boundaries, fn for each part in order; the first error ends it. */
static int each_block(struct vhd *v, const struct iovec *iov, unsigned n, uint64_t off,
                      block_fn *fn)
{
    size_t total = iov_total(iov, n), done = 0;
    while (done < total) {
        uint64_t pos = off + done;
        uint32_t blk = (uint32_t)(pos / v->block_size);
        uint32_t in = (uint32_t)(pos % v->block_size);
        size_t len = MIN(total - done, (size_t)(v->block_size - in));
        int ret = fn(v, iov, n, done, pos, blk, in, len);
        if (ret)
            return ret;
        done += len;
    }
    return 0;
}

static int read_block(struct vhd *v, const struct iovec *iov, unsigned n, size_t ioff, uint64_t pos,
                      uint32_t blk, uint32_t in, size_t len)
{
    if (v->bat[blk] == VHD_BAT_UNUSED)
        return read_under(v, iov, n, ioff, pos, len);
    if (block_full(v, blk))
        return file_io(v, iov, n, ioff, block_at(v, blk) + v->bitmap_len + in, len, false);
    int ret = load_bitmap(v, blk);
    /* Runs of sectors with the same bit: from this file, or from under it. */
    uint32_t s = in / VHD_SECTOR, last = (uint32_t)((in + len - 1) / VHD_SECTOR);
    while (s <= last && !ret) {
        bool here = bit(v->bitmap, s);
        uint32_t e = s + 1;
        while (e <= last && bit(v->bitmap, e) == here)
            e++;
        uint64_t lo = MAX((uint64_t)s * VHD_SECTOR, in);
        uint64_t hi = MIN((uint64_t)e * VHD_SECTOR, in + len);
        size_t at = ioff + (size_t)(lo - in);
        ret = here ? file_io(v, iov, n, at, block_at(v, blk) + v->bitmap_len + lo,
                             (size_t)(hi - lo), false)
                   : read_under(v, iov, n, at, pos + (lo - in), (size_t)(hi - lo));
        s = e;
    }
    return ret;
}

int vhd_dyn_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    return each_block((struct vhd *)b, iov, n, off, read_block);
}

static int write_bat_entry(struct vhd *v, uint32_t blk, uint32_t sector)
{
    uint8_t e[4];
    be_put(e, 4, sector);
    struct iovec iov = {e, 4};
    return bdev_rw_full(v->b.fd, &iov, 1, v->bat_off + (uint64_t)blk * 4, true);
}

#define VHD_COPY_CHUNK (256u << 10)

/* Guest bytes [from, to) of blk from under this image into the new block at `at`. */
static int fill_from_parent(struct vhd *v, uint32_t blk, uint64_t at, uint32_t from, uint32_t to)
{
    uint64_t base = (uint64_t)blk * v->block_size;
    int ret = 0;
    uint8_t *buf = from < to ? malloc(VHD_COPY_CHUNK) : NULL;
    if (from < to && !buf)
        return -ENOMEM;
    for (uint32_t o = from; o < to && !ret; o += VHD_COPY_CHUNK) {
        size_t len = MIN(VHD_COPY_CHUNK, to - o);
        if (base + o >= v->b.size)
            break; /* past the disk's end, in its last block: never read, left zero */
        len = (size_t)MIN(len, v->b.size - (base + o));
        struct iovec iov = {buf, len};
        ret = read_under(v, &iov, 1, 0, base + o, len);
        if (!ret)
            ret = bdev_rw_full(v->b.fd, &iov, 1, at + v->bitmap_len + o, true);
    }
    free(buf);
    return ret;
}

/* A new block for [in, in + len) of blk, holding the guest's bytes iov[ioff...]. */
static int allocate(struct vhd *v, uint32_t blk, const struct iovec *iov, unsigned n, size_t ioff,
                    uint32_t in, size_t len)
{
    uint64_t at = v->footer_off, end = at + v->bitmap_len + v->block_size;
    if (at / VHD_SECTOR >= VHD_BAT_UNUSED) {
        vhd_corrupt(v, "the file is too large for another block");
        return -ENOSPC;
    }
    struct iovec f = {v->footer, VHD_FOOTER_LEN};
    int ret = bdev_rw_full(v->b.fd, &f, 1, end, true);
    if (!ret)
        ret = file_io(v, iov, n, ioff, at + v->bitmap_len + in, len, true);
    /* Every sector is valid: those not written read as the zeros of the new space (dynamic) or
     * hold the parent's bytes (differencing). */
    if (!ret && v->type == VHD_DIFF)
        ret = fill_from_parent(v, blk, at, 0, in);
    if (!ret && v->type == VHD_DIFF)
        ret = fill_from_parent(v, blk, at, in + (uint32_t)len, v->block_size);
    memset(v->bitmap, 0, v->bitmap_len);
    set_bits(v->bitmap, 0, v->sectors_per_block);
    v->bitmap_block = UINT32_MAX;
    struct iovec bm = {v->bitmap, v->bitmap_len};
    if (!ret)
        ret = bdev_rw_full(v->b.fd, &bm, 1, at, true);
    if (!ret && fdatasync(v->b.fd) < 0)
        ret = -errno;
    if (!ret)
        ret = write_bat_entry(v, blk, (uint32_t)(at / VHD_SECTOR));
    if (ret) {
        /* Best effort: the footer back where it was, and nothing half-written past it. */
        if (pwrite(v->b.fd, v->footer, VHD_FOOTER_LEN, (off_t)at) == VHD_FOOTER_LEN)
            (void)!ftruncate(v->b.fd, (off_t)(at + VHD_FOOTER_LEN));
        return ret;
    }
    v->bat[blk] = (uint32_t)(at / VHD_SECTOR);
    v->bitmap_block = blk;
    set_full(v, blk);
    v->footer_off = end;
    return 0;
}

static int write_block(struct vhd *v, const struct iovec *iov, unsigned n, size_t ioff,
                       uint64_t pos, uint32_t blk, uint32_t in, size_t len)
{
    (void)pos;
    if (v->bat[blk] == VHD_BAT_UNUSED)
        return allocate(v, blk, iov, n, ioff, in, len);
    int ret = file_io(v, iov, n, ioff, block_at(v, blk) + v->bitmap_len + in, len, true);
    if (ret || block_full(v, blk))
        return ret;
    uint32_t s0 = in / VHD_SECTOR, ns = (uint32_t)(len / VHD_SECTOR), missing = 0;
    if (!ret)
        ret = load_bitmap(v, blk);
    for (uint32_t s = s0; !ret && s < s0 + ns; s++)
        missing += !bit(v->bitmap, s);
    if (!ret && missing && v->b.backing && fdatasync(v->b.fd) < 0)
        ret = -errno; /* the data first: a bit on disk before it would hide the parent */
    if (!ret && missing) {
        set_bits(v->bitmap, s0, ns);
        uint32_t b0 = s0 / 8 / VHD_SECTOR * VHD_SECTOR;
        uint32_t b1 = (uint32_t)align_up((s0 + ns + 7) / 8, VHD_SECTOR);
        struct iovec bm = {v->bitmap + b0, b1 - b0};
        ret = bdev_rw_full(v->b.fd, &bm, 1, block_at(v, blk) + b0, true);
        if (ret)
            v->bitmap_block = UINT32_MAX; /* reread what is on disk */
    }
    return ret;
}

#define VHD_MAX_BOUNCE (16u << 20)

int vhd_dyn_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    struct vhd *v = (struct vhd *)b;
    size_t total = iov_total(iov, n);
    if (off % VHD_SECTOR == 0 && total % VHD_SECTOR == 0)
        return each_block(v, iov, n, off, write_block);
    /* Not whole sectors (guests write sectors; this is for hv's own callers): read, merge, write.
     */
    uint64_t a0 = off / VHD_SECTOR * VHD_SECTOR, a1 = align_up(off + total, VHD_SECTOR);
    if (a1 - a0 > VHD_MAX_BOUNCE)
        return -EINVAL;
    uint8_t *buf = malloc(a1 - a0);
    if (!buf)
        return -ENOMEM;
    struct iovec whole = {buf, a1 - a0};
    int ret = vhd_dyn_preadv(b, &whole, 1, a0);
    if (!ret) {
        iov_to_buf(iov, n, 0, buf + (off - a0), total);
        ret = each_block(v, &whole, 1, a0, write_block);
    }
    free(buf);
    return ret;
}

int vhd_dyn_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap)
{
    struct vhd *v = (struct vhd *)b;
    static const uint8_t zeros[64 * 1024];
    (void)unmap;
    for (uint64_t o = 0; o < len;) {
        uint64_t pos = off + o;
        uint32_t blk = (uint32_t)(pos / v->block_size);
        uint64_t step = MIN(len - o, MIN(sizeof(zeros), v->block_size - pos % v->block_size));
        /* Without a parent an unallocated block already reads as zeros. */
        if (v->bat[blk] != VHD_BAT_UNUSED || v->b.backing) {
            struct iovec iov = {(void *)zeros, (size_t)step};
            int ret = vhd_dyn_pwritev(b, &iov, 1, pos);
            if (ret)
                return ret;
        }
        o += step;
    }
    return 0;
}
