/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-blk request handling on a disk image (raw or qcow2, through
 * block/block.h), apart from the transport so that unit tests and the
 * fuzzer drive it with plain iovecs.
 */
#ifndef HV_VMM_VIRTIO_BLK_H
#define HV_VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define BLK_SECTOR       512
#define BLK_ID_BYTES     20
#define BLK_SEG_MAX      254 /* queue size - 2 (header and status) */
#define BLK_SIZE_MAX     (1u << 20)
#define BLK_DISCARD_SEGS 32
#define BLK_DISCARD_MAX  0x3fffff /* sectors per segment (2 GiB - 512) */

struct bdev;

struct blk_disk {
    const char *name; /* for messages */
    struct bdev *bdev;
    bool readonly;
    uint64_t sectors;
    char serial[BLK_ID_BYTES];
    bool logged_malformed, logged_ioerr, logged_guard;
};

/*
 * Open the image (locked against other writers) in format "raw" or "qcow2",
 * or probed if format is NULL (logged as a warning: a guest can change what a
 * probe finds). qcow2 backing files only in image_dirs (NULL-terminated; NULL:
 * the image's own directory). Returns 0 or -errno, logged.
 */
int blk_disk_open(struct blk_disk *d, const char *path, bool readonly, const char *format,
                  const char *const *image_dirs);
void blk_disk_close(struct blk_disk *d);

/*
 * Serve one request: iov[0, nr_out) is what the driver wrote (header, data),
 * iov[nr_out, nr_out + nr_in) what the device may write (data, status byte).
 * Returns the bytes written into the writable part (for the used ring).
 */
uint32_t blk_disk_request(struct blk_disk *d, const struct iovec *iov, unsigned nr_out,
                          unsigned nr_in);

#endif
