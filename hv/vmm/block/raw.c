// SPDX-License-Identifier: GPL-2.0-or-later
/* Raw images: a regular file or a block device, byte for byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "util.h"

static int raw_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    return bdev_rw_full(b->fd, iov, n, off, false);
}

/*
 * A probed raw image must stay raw: a guest writing a qcow2 header (or a VHD
 * footer copy) into its sector 0 would make the next probe open it as qcow2
 * (or a differencing VHD), with a backing file of the guest's choosing. The guest's buffer is guest
 * RAM that another vCPU can change at any moment, so the head of the write is copied once, checked
 * in the copy, and the copy is what gets written.
 */
static int raw_pwritev_guarded(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    uint8_t head[512];
    size_t total = iov_total(iov, n);
    size_t len = MIN(total, sizeof(head));
    iov_to_buf(iov, n, 0, head, len);

    uint8_t start[BDEV_MAGIC_LEN] = {0}; /* the file's first bytes once this write is done */
    if (pread(b->fd, start, sizeof(start), 0) < 0)
        return -errno;
    for (uint64_t i = off; i < BDEV_MAGIC_LEN && i < off + len; i++)
        start[i] = head[i - off];
    if (bdev_magic_format(start) != BDEV_FMT_RAW)
        return -EPERM;

    struct iovec first = {head, len};
    int ret = bdev_rw_full(b->fd, &first, 1, off, true);
    if (ret || len == total)
        return ret;
    struct iovec rest[BDEV_IOV_MAX];
    unsigned k = iov_slice(iov, n, len, total - len, rest, BDEV_IOV_MAX);
    return bdev_rw_full(b->fd, rest, k, off + len, true);
}

static int raw_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    if (b->probed && off < BDEV_MAGIC_LEN)
        return raw_pwritev_guarded(b, iov, n, off);
    return bdev_rw_full(b->fd, iov, n, off, true);
}

static int raw_flush(struct bdev *b)
{
    return fdatasync(b->fd) < 0 ? -errno : 0;
}

static int raw_discard(struct bdev *b, uint64_t off, uint64_t len)
{
    return bdev_fd_discard(b->fd, off, len);
}

static int raw_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap)
{
    return bdev_fd_write_zeroes(b->fd, off, len, unmap);
}

static void raw_close(struct bdev *b)
{
    close(b->fd);
    free(b->path);
    free(b);
}

static const struct bdev_ops raw_ops = {
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .close = raw_close,
};

int raw_open(struct bdev **out, int fd, const char *path, bool readonly, char *err)
{
    uint64_t size;
    int ret = bdev_fd_size(fd, &size);
    struct bdev *b = ret ? NULL : calloc(1, sizeof(*b));
    if (ret || !b || !(b->path = strdup(path))) {
        ret = ret ? ret : -ENOMEM;
        bdev_errf(err, "%s: cannot use as a raw image: %s", path, strerror(-ret));
        free(b);
        close(fd);
        return ret;
    }
    b->ops = &raw_ops;
    b->format = "raw";
    b->fd = fd;
    b->readonly = readonly;
    b->size = size;
    *out = b;
    return 0;
}
