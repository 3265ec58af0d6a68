// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the virtio-blk request parser on a 64 KiB memfd disk.
 * Input: byte 0 = number of segments (1-8), byte 1 = how many of them are
 * device-readable, then a 2-byte length per segment, then the bytes that
 * fill the segments in order (header, data, ...).
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../block/block.h"
#include "blk.h"
#include "queue.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t buf[8][4096];
static struct blk_disk disk = {.name = "fuzz"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!disk.bdev) {
        char err[BDEV_ERR_LEN];
        int fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, 64 * KiB) < 0 ||
            bdev_open_fd(&disk.bdev, fd, "fuzz-disk", false, BDEV_FMT_RAW, err))
            return 0;
        disk.sectors = 64 * KiB / BLK_SECTOR;
        memcpy(disk.serial, "fuzz-serial", 11);
    }
    if (size < 2)
        return 0;
    unsigned nseg = (data[0] & 7) + 1, nout = MIN((unsigned)data[1], nseg);
    disk.readonly = data[1] & 0x80;
    disk.bdev->readonly = disk.readonly;
    data += 2, size -= 2;
    struct iovec iov[8];
    for (unsigned i = 0; i < nseg; i++) {
        size_t len = 0;
        if (size >= 2) {
            len = (data[0] | data[1] << 8) % (sizeof(buf[0]) + 1);
            data += 2, size -= 2;
        }
        iov[i] = (struct iovec){buf[i], len};
    }
    for (unsigned i = 0; i < nout && size; i++) {
        size_t k = MIN(size, iov[i].iov_len);
        memcpy(buf[i], data, k);
        data += k, size -= k;
    }
    uint32_t w = blk_disk_request(&disk, iov, nout, nseg - nout);
    size_t in_total = iov_total(iov + nout, nseg - nout);
    if (w > in_total)
        __builtin_trap(); /* never claim more than the buffers hold */
    return 0;
}
