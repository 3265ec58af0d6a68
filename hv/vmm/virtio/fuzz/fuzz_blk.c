// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the virtio-blk request parser on a 64 KiB memfd disk.
 * Input: byte 0 = number of segments (1-8), byte 1 = how many of them are
 * device-readable (low bits), read-only (0x80), and 0x40: the disk is a
 * probed raw image while another thread, standing for a second vCPU, keeps
 * flipping byte 3 of every data segment between 0 and the qcow2 magic's:
 * the image must never start with the magic. Then a 2-byte length per
 * segment, then the bytes that fill the segments in order (header, data...).
 */
#include <pthread.h>
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
static struct blk_disk probed = {.name = "fuzz-probed"};
static int probed_fd = -1;

/*
 * The second vCPU: one thread for the whole run, woken for each request on
 * the probed disk. The request starts only once it is flipping, so the race
 * really runs (a thread started per request would begin too late).
 */
static pthread_mutex_t flip_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flip_wake = PTHREAD_COND_INITIALIZER;
static int flip_wanted, flip_running;

static void *flipper(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&flip_lock);
        while (!__atomic_load_n(&flip_wanted, __ATOMIC_ACQUIRE))
            pthread_cond_wait(&flip_wake, &flip_lock);
        pthread_mutex_unlock(&flip_lock);
        __atomic_store_n(&flip_running, 1, __ATOMIC_RELEASE);
        for (uint8_t v = 0; __atomic_load_n(&flip_wanted, __ATOMIC_RELAXED); v ^= 0xfb)
            for (unsigned i = 1; i < 8; i++)
                __atomic_store_n(&buf[i][3], v, __ATOMIC_RELAXED);
        __atomic_store_n(&flip_running, 0, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void flipping(bool on)
{
    pthread_mutex_lock(&flip_lock);
    __atomic_store_n(&flip_wanted, on, __ATOMIC_RELEASE);
    pthread_cond_signal(&flip_wake);
    pthread_mutex_unlock(&flip_lock);
    while (__atomic_load_n(&flip_running, __ATOMIC_ACQUIRE) != on)
        ;
}

static int open_disk(struct blk_disk *d, enum bdev_format fmt, int *fdp)
{
    char err[BDEV_ERR_LEN];
    int fd = memfd_create(d->name, MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 64 * KiB) < 0)
        return -1;
    *fdp = dup(fd);
    if (bdev_open_fd(&d->bdev, fd, d->name, false, fmt, err))
        return -1;
    d->sectors = 64 * KiB / BLK_SECTOR;
    memcpy(d->serial, "fuzz-serial", 11);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!disk.bdev) {
        int unused = -1;
        pthread_t t;
        if (open_disk(&disk, BDEV_FMT_RAW, &unused) ||
            open_disk(&probed, BDEV_FMT_PROBE, &probed_fd) ||
            pthread_create(&t, NULL, flipper, NULL))
            __builtin_trap();
    }
    if (size < 2)
        return 0;
    unsigned nseg = (data[0] & 7) + 1, nout = MIN((unsigned)(data[1] & 0x3f), nseg);
    struct blk_disk *d = data[1] & 0x40 ? &probed : &disk;
    d->readonly = data[1] & 0x80;
    d->bdev->readonly = d->readonly;
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
    bool racing = d == &probed;
    if (racing)
        flipping(true);
    uint32_t w = blk_disk_request(d, iov, nout, nseg - nout);
    if (racing)
        flipping(false);
    size_t in_total = iov_total(iov + nout, nseg - nout);
    if (w > in_total)
        __builtin_trap(); /* never claim more than the buffers hold */
    uint8_t head[4];
    if (d == &probed && pread(probed_fd, head, 4, 0) == 4 && memcmp(head, "QFI\xfb", 4) == 0)
        __builtin_trap(); /* the probed raw image turned into a qcow2 one */
    return 0;
}
