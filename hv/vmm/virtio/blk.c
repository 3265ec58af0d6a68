// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-blk (virtio 1.2 §5.2) on a disk image (block/block.h: raw file or
 * block device, qcow2). Requests are served synchronously on the device's
 * thread, so a slow disk never stalls a vCPU. Every sector range is checked
 * against the capacity before it reaches the image.
 */
#include "blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../block/block.h"
#include "../devices.h"
#include "../vm.h"
#include "log.h"
#include "state.h"
#include "util.h"
#include "virtio.h"

#define BLK_QUEUE_SIZE 256
#define BLK_CONFIG_LEN 60

struct blk {
    struct virtio_dev vd;
    struct blk_disk disk;
    char name[32];
};

static unsigned nr_disks;

int blk_disk_open(struct blk_disk *d, const char *path, bool readonly, const char *format,
                  const char *const *image_dirs)
{
    char err[BDEV_ERR_LEN];
    enum bdev_format fmt = BDEV_FMT_PROBE;
    if (format && bdev_format_parse(format, &fmt) < 0) {
        log_err("disk image %s: unknown format '%s'", path, format);
        return -EINVAL;
    }

    d->readonly = readonly;
    int ret = bdev_open_confined(&d->bdev, path, readonly, fmt, image_dirs, err);
    if (ret) {
        log_err("%s", err);
        d->bdev = NULL;
        return ret;
    }
    if (!format)
        log_warn("disk image %s: no format given, probed as %s; pass format=%s (what a guest "
                 "writes can change what a probe finds)",
                 path, d->bdev->format, d->bdev->format);
    uint64_t bytes = d->bdev->size;
    if (bytes % BLK_SECTOR)
        log_warn("disk image %s: the last %llu bytes (not a whole sector) are not visible", path,
                 (unsigned long long)(bytes % BLK_SECTOR));
    d->sectors = bytes / BLK_SECTOR;

    /* The serial (GET_ID) is the image's file name, as much as fits in 20 bytes. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    memset(d->serial, 0, sizeof(d->serial));
    memcpy(d->serial, base, MIN(strlen(base), sizeof(d->serial)));
    return 0;
}

void blk_disk_close(struct blk_disk *d)
{
    bdev_close(d->bdev);
    d->bdev = NULL;
}

static bool in_capacity(const struct blk_disk *d, uint64_t sector, uint64_t nsect)
{
    return range_within(sector, nsect, d->sectors);
}

static uint8_t io_status(struct blk_disk *d, int ret)
{
    if (!ret)
        return VIRTIO_BLK_S_OK;
    if (ret == -EPERM && !d->logged_guard) { /* raw.c's guard on a probed image */
        d->logged_guard = true;
        log_warn("%s: refused the guest's write of a qcow2 header into its probed raw image "
                 "(give format=raw to allow it)",
                 d->name);
    } else if (ret != -EPERM && !d->logged_ioerr) {
        d->logged_ioerr = true;
        log_err("%s: I/O error on the image: %s", d->name, strerror(-ret));
    }
    return VIRTIO_BLK_S_IOERR;
}

static uint8_t do_rw(struct blk_disk *d, const struct iovec *iov, unsigned n, size_t off,
                     size_t len, uint64_t sector, bool write)
{
    struct iovec seg[BLK_SEG_MAX + 2];

    if (len % BLK_SECTOR || !in_capacity(d, sector, len / BLK_SECTOR))
        return VIRTIO_BLK_S_IOERR;
    unsigned k = iov_slice(iov, n, off, len, seg, ARRAY_SIZE(seg));
    if (iov_total(seg, k) != len)
        return VIRTIO_BLK_S_IOERR; /* more segments than we advertised */
    int ret = write ? bdev_pwritev(d->bdev, seg, k, sector * BLK_SECTOR)
                    : bdev_preadv(d->bdev, seg, k, sector * BLK_SECTOR);
    return io_status(d, ret);
}

/* DISCARD and WRITE_ZEROES: an array of {le64 sector, le32 num, le32 flags}. */
static uint8_t do_ranges(struct blk_disk *d, const struct iovec *iov, unsigned n, size_t off,
                         size_t len, uint32_t type)
{
    if (d->readonly)
        return VIRTIO_BLK_S_IOERR;
    if (len == 0 || len % 16 || len / 16 > BLK_DISCARD_SEGS)
        return VIRTIO_BLK_S_UNSUPP;
    for (size_t i = 0; i < len / 16; i++) {
        uint8_t seg[16];
        iov_to_buf(iov, n, off + 16 * i, seg, 16);
        uint64_t sector = le64_get(seg);
        uint32_t num = le32_get(seg + 8), flags = le32_get(seg + 12);
        bool unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
        if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
            (type == VIRTIO_BLK_T_DISCARD && unmap) || num > BLK_DISCARD_MAX)
            return VIRTIO_BLK_S_UNSUPP;
        if (!in_capacity(d, sector, num))
            return VIRTIO_BLK_S_IOERR;
        uint64_t start = sector * BLK_SECTOR, bytes = (uint64_t)num * BLK_SECTOR;
        int ret = type == VIRTIO_BLK_T_DISCARD ? bdev_discard(d->bdev, start, bytes)
                                               : bdev_write_zeroes(d->bdev, start, bytes, unmap);
        if (ret)
            return io_status(d, ret);
    }
    return VIRTIO_BLK_S_OK;
}

uint32_t blk_disk_request(struct blk_disk *d, const struct iovec *iov, unsigned nr_out,
                          unsigned nr_in)
{
    const struct iovec *in = iov + nr_out;
    size_t out_len = iov_total(iov, nr_out), in_len = iov_total(in, nr_in);
    uint8_t hdr[16];

    if (out_len < sizeof(hdr) || in_len < 1) {
        if (!d->logged_malformed) {
            d->logged_malformed = true;
            log_warn("%s: request without a header or a status byte; dropped", d->name);
        }
        return 0;
    }
    iov_to_buf(iov, nr_out, 0, hdr, sizeof(hdr));
    uint32_t type = le32_get(hdr);
    uint64_t sector = le64_get(hdr + 8);
    size_t data_in = in_len - 1, data_out = out_len - sizeof(hdr);
    uint32_t written = 0;
    uint8_t status;

    switch (type) {
    case VIRTIO_BLK_T_IN:
        status = do_rw(d, in, nr_in, 0, data_in, sector, false);
        if (status == VIRTIO_BLK_S_OK)
            written = (uint32_t)data_in;
        break;
    case VIRTIO_BLK_T_OUT:
        /* A read-only disk refuses writes and touches nothing (§5.2.6.2). */
        status = d->readonly ? VIRTIO_BLK_S_IOERR
                             : do_rw(d, iov, nr_out, sizeof(hdr), data_out, sector, true);
        break;
    case VIRTIO_BLK_T_FLUSH:
        status = d->readonly ? VIRTIO_BLK_S_OK : io_status(d, bdev_flush(d->bdev));
        break;
    case VIRTIO_BLK_T_GET_ID:
        written = (uint32_t)MIN(data_in, sizeof(d->serial));
        iov_from_buf(in, nr_in, 0, d->serial, written);
        status = VIRTIO_BLK_S_OK;
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        status = do_ranges(d, iov, nr_out, sizeof(hdr), data_out, type);
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    iov_from_buf(in, nr_in, in_len - 1, &status, 1);
    return written + 1;
}

/* ---- the virtio device ---- */

static int64_t blk_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd;
    struct blk *b = arg;
    return blk_disk_request(&b->disk, c->iov, c->nr_out, c->nr_in);
}

static void blk_notify(struct virtio_dev *vd, unsigned q)
{
    virtio_serve_queue(vd, q, blk_chain, vd->priv);
}

static void blk_fill_config(struct blk *b);

/*
 * Requests are served whole on the device thread under qlock, and save runs
 * with qlock held after the thread was joined: none is in flight, every one
 * the guest saw completed has reached the image. Flush makes them durable,
 * so that the saved VM and its disk agree even if the host crashes next.
 */
static int blk_save(struct virtio_dev *vd, struct state_out *out)
{
    struct blk *b = vd->priv;
    int ret = b->disk.readonly ? 0 : bdev_flush(b->disk.bdev);
    if (ret < 0)
        return state_fail(out, "cannot flush the disk image: %s", strerror(-ret));
    return 0;
}

/* The config is the disk's: a resized image or another read-only setting is refused. */
static int blk_load(struct virtio_dev *vd, struct state_in *in)
{
    struct blk *b = vd->priv;
    uint64_t sectors = le64_get(vd->config);
    if (sectors != b->disk.sectors)
        return state_in_fail(in, "the disk had %llu sectors, the image now has %llu",
                             (unsigned long long)sectors, (unsigned long long)b->disk.sectors);
    if ((vd->status & VIRTIO_CONFIG_S_FEATURES_OK) && b->disk.readonly &&
        !virtio_has_feature(vd, VIRTIO_BLK_F_RO))
        return state_in_fail(in, "the guest writes to a disk that is read-only now");
    blk_fill_config(b);
    return 0;
}

static const struct virtio_ops blk_ops = {
    .queue_notify = blk_notify,
    .save = blk_save,
    .load = blk_load,
};

static void blk_fill_config(struct blk *b)
{
    uint8_t *c = b->vd.config;
    le64_put(c + 0, b->disk.sectors);
    le32_put(c + 8, BLK_SIZE_MAX);
    le32_put(c + 12, BLK_SEG_MAX);
    le32_put(c + 20, BLK_SECTOR);
    le32_put(c + 36, BLK_DISCARD_MAX);
    le32_put(c + 40, BLK_DISCARD_SEGS);
    le32_put(c + 44, 8); /* discard in 4 KiB units: the host file system's block */
    le32_put(c + 48, BLK_DISCARD_MAX);
    le32_put(c + 52, BLK_DISCARD_SEGS);
    c[56] = 1; /* write_zeroes_may_unmap */
}

int virtio_blk_create(struct vm *vm, const struct vm_disk *disk)
{
    const char *path = disk->path;
    bool readonly = disk->readonly;
    struct blk *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    snprintf(b->name, sizeof(b->name), "virtio-blk%u", nr_disks);
    b->disk.name = b->name;
    int ret =
        blk_disk_open(&b->disk, path, readonly, disk->format, vm->cfg ? vm->cfg->image_dirs : NULL);
    if (ret)
        goto err_free;

    uint64_t f = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
                 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH;
    if (readonly)
        f |= 1ull << VIRTIO_BLK_F_RO;
    else
        f |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
    ret = virtio_dev_init(&b->vd, vm, b->name, VIRTIO_ID_BLOCK, 1, BLK_QUEUE_SIZE, f,
                          BLK_CONFIG_LEN, &blk_ops, b);
    if (ret)
        goto err_close;
    b->vd.pci.class_code = 0x018000; /* mass storage, other */
    blk_fill_config(b);
    /* On failure the bus may already point at b: keep it; hv-vmm exits anyway. */
    if ((ret = virtio_dev_start(&b->vd)))
        return ret;
    nr_disks++;
    log_info("%s: %s (%s), %llu MiB%s", b->name, path, b->disk.bdev->format,
             (unsigned long long)(b->disk.sectors * BLK_SECTOR / MiB),
             readonly ? ", read-only" : "");
    return 0;

err_close:
    blk_disk_close(&b->disk);
err_free:
    free(b);
    return ret;
}
