// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer targets: open an image from bytes (a memfd) in the format the
 * target is built for (FUZZ_FORMAT: fuzz_qcow2, fuzz_vhd), then a few reads
 * and writes. Input: 4 bytes choosing the operations, then the image.
 * Relative backing file names resolve in a temp dir holding "b" (raw,
 * 64 KiB) and "p.vhd" (a dynamic VHD of 64 KiB that hv made, with the
 * unique id the differencing seeds name, so that they open); the image
 * itself is "img" there, which does not exist.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "be.h"
#include "block/block.h"
#include "block/vhd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/hv-fuzz-image-XXXXXX";
static char img[64];

static void setup(void)
{
    char path[96];
    if (!mkdtemp(dir))
        abort();
    snprintf(img, sizeof(img), "%s/img", dir);
    snprintf(path, sizeof(path), "%s/b", dir);
    FILE *f = fopen(path, "w");
    if (!f || ftruncate(fileno(f), 64 * 1024))
        abort();
    fclose(f);
    char err[BDEV_ERR_LEN];
    snprintf(path, sizeof(path), "%s/p.vhd", dir);
    if (vhd_create(path, VHD_DYNAMIC, 64 * 1024, NULL, err))
        abort();
    /* Its footer (at both ends) with the seeds' parent id: make_vhd_corpus.py's PARENT_UUID. */
    int fd = open(path, O_RDWR);
    uint8_t foot[VHD_FOOTER_LEN];
    off_t end = fd < 0 ? -1 : lseek(fd, -(off_t)VHD_FOOTER_LEN, SEEK_END);
    if (end < 0 || pread(fd, foot, sizeof(foot), end) != (ssize_t)sizeof(foot))
        abort();
    memcpy(foot + 68, "hv-fuzz-parent!!", 16);
    be_put(foot + 64, 4, vhd_checksum(foot, sizeof(foot), 64));
    if (pwrite(fd, foot, sizeof(foot), 0) != (ssize_t)sizeof(foot) ||
        pwrite(fd, foot, sizeof(foot), end) != (ssize_t)sizeof(foot))
        abort();
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[3 * 65536];
    if (!img[0])
        setup();
    if (size < 4)
        return 0;
    uint8_t seed[4];
    memcpy(seed, data, 4);
    data += 4, size -= 4;
    int fd = memfd_create("fuzz-img", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct bdev *b;
    char err[BDEV_ERR_LEN];
    bool ro = seed[0] & 1;
    if (bdev_open_fd(&b, fd, img, ro, FUZZ_FORMAT, err))
        return 0;
    if (!memchr(err, 0, sizeof(err)))
        __builtin_trap();
    uint64_t span = b->size < sizeof(buf) ? b->size : sizeof(buf);
    for (int i = 0; i < 4 && span; i++) {
        size_t len = (size_t)((seed[(i + 1) % 4] * 997u + 1) % span);
        uint64_t off = (b->size - span) / 255 * seed[i] + (seed[i] * 4099u) % 512;
        if (off > b->size - len)
            off = b->size - len;
        (void)bdev_pread(b, buf, len, off);
        if (!ro && (seed[i] & 2)) {
            memset(buf, seed[i], len);
            (void)bdev_pwrite(b, buf, len, off);
        }
        if (!ro && (seed[i] & 4))
            (void)bdev_write_zeroes(b, off, len, seed[i] & 8);
        if (!ro && (seed[i] & 16))
            (void)bdev_discard(b, off, len);
    }
    (void)bdev_flush(b);
    bdev_close(b);
    return 0;
}
