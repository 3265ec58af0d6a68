// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A probed raw image never gets the qcow2 magic at its start, even while
 * another thread changes the buffer being written: the buffer stands for
 * guest RAM, which a second vCPU can rewrite while the device thread writes
 * it out. Two tests: the worst moment made certain (this file's pwritev
 * changes the buffer just before the kernel copies it, as a vCPU could),
 * and a real racing thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "block/block.h"
#include "check.h"
#include "util.h"

#define WRITES 200000

static uint8_t guest_buf[4096];
static int stop_flipping;

/* The hostile vCPU: byte 3 flips between a harmless value and the magic's. */
static void *flipper(void *arg)
{
    (void)arg;
    for (uint8_t v = 0; !__atomic_load_n(&stop_flipping, __ATOMIC_RELAXED); v ^= 0xfb)
        __atomic_store_n(&guest_buf[3], v, __ATOMIC_RELAXED);
    return NULL;
}

/*
 * The block code's pwritev calls land here (the program's own definition
 * comes before the C library's). When armed, the guest buffer's byte 3
 * turns into the magic's just before the data is written out.
 */
static bool flip_in_write;

static ssize_t write_flipped(int fd, const struct iovec *iov, int n, off_t off)
{
    if (flip_in_write)
        guest_buf[3] = 0xfb;
    return syscall(SYS_pwritev, fd, iov, n, (unsigned long)off, 0UL);
}

/* Both names, whatever _FILE_OFFSET_BITS made of the header's declaration. */
ssize_t test_pwritev(int fd, const struct iovec *iov, int n, off_t off) __asm__("pwritev");
ssize_t test_pwritev64(int fd, const struct iovec *iov, int n, off_t off) __asm__("pwritev64");
ssize_t test_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    return write_flipped(fd, iov, n, off);
}
ssize_t test_pwritev64(int fd, const struct iovec *iov, int n, off_t off)
{
    return write_flipped(fd, iov, n, off);
}

static bool file_has_magic(int fd)
{
    uint8_t head[4] = {0};
    return pread(fd, head, 4, 0) == 4 && memcmp(head, "QFI\xfb", 4) == 0;
}

/* The image opened as hv-vmm opens it without format=: probed (raw here, guarded). */
static struct bdev *open_probed(const char *path)
{
    struct bdev *b = NULL;
    char err[BDEV_ERR_LEN];
    if (bdev_open(&b, path, false, BDEV_FMT_PROBE, err)) {
        fprintf(stderr, "  open %s: %s\n", path, err);
        return NULL;
    }
    return b;
}

static void test_flip_at_write(const char *path)
{
    struct bdev *b = open_probed(path);
    CHECK(b != NULL);
    if (!b)
        return;
    int fd = open(path, O_RDONLY);
    memcpy(guest_buf, "QFI\0", 4);
    flip_in_write = true;
    struct iovec iov[2] = {{guest_buf, 512}, {guest_buf + 512, 512}};
    CHECK(bdev_pwritev(b, iov, 2, 0) == 0); /* what was checked was harmless */
    flip_in_write = false;
    CHECK(guest_buf[3] == 0xfb); /* the flip happened */
    CHECK(!file_has_magic(fd));  /* and did not reach the file */
    uint8_t back[4];
    CHECK(pread(fd, back, 4, 0) == 4 && memcmp(back, "QFI\0", 4) == 0);
    close(fd);
    bdev_close(b);
}

static void test_race(const char *path)
{
    struct bdev *b = open_probed(path);
    CHECK(b != NULL);
    if (!b)
        return;
    int fd = open(path, O_RDONLY);
    memcpy(guest_buf, "QFI", 3);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, flipper, NULL) == 0);
    unsigned written = 0, refused = 0, won_at = 0;
    for (unsigned i = 1; i <= WRITES && !won_at; i++) {
        /* Two segments, as a virtio request may bring them. */
        struct iovec iov[2] = {{guest_buf, 512}, {guest_buf + 512, 3584}};
        int ret = bdev_pwritev(b, iov, 2, 0);
        CHECK(ret == 0 || ret == -EPERM);
        ret == 0 ? written++ : refused++;
        if (file_has_magic(fd))
            won_at = i;
    }
    __atomic_store_n(&stop_flipping, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    if (won_at)
        fprintf(stderr, "  the qcow2 magic reached the file at write %u\n", won_at);
    printf("race: %u writes done, %u refused, magic in the file: %s\n", written, refused,
           won_at ? "yes" : "never");
    CHECK(!won_at);
    CHECK(written > 0 && refused > 0); /* both values were seen: the race really ran */
    close(fd);
    bdev_close(b);
}

/* The guard does not change what an ordinary write puts in the file. */
static void test_plain_writes(const char *path)
{
    struct bdev *b = open_probed(path);
    CHECK(b != NULL);
    if (!b)
        return;
    static uint8_t a[700], c[3000], back[4096];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(c); i++)
        c[i] = (uint8_t)(i * 13 + 5);
    struct iovec iov[2] = {{a, sizeof(a)}, {c, sizeof(c)}};
    CHECK(bdev_pwritev(b, iov, 2, 2) == 0);
    CHECK(bdev_pread(b, back, sizeof(a) + sizeof(c), 2) == 0);
    CHECK(memcmp(back, a, sizeof(a)) == 0 && memcmp(back + sizeof(a), c, sizeof(c)) == 0);
    /* Completing the magic from the second byte on is refused too. */
    CHECK(bdev_pwrite(b, "QF", 2, 0) == 0);
    CHECK(bdev_pwrite(b, "FI\xfb", 3, 1) == -EPERM);
    CHECK(bdev_pwrite(b, "I\xfb", 2, 2) == -EPERM);
    bdev_close(b);

    /* A format given by the caller is the caller's choice: nothing is refused. */
    char err[BDEV_ERR_LEN];
    CHECK(bdev_open(&b, path, false, BDEV_FMT_RAW, err) == 0);
    if (b) {
        CHECK(bdev_pwrite(b, "QFI\xfb", 4, 0) == 0);
        bdev_close(b);
    }
}

int main(void)
{
    char path[] = "/tmp/hv-raw-guard-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && ftruncate(fd, 1 * MiB) == 0);
    close(fd);
    test_flip_at_write(path);
    test_race(path);
    test_plain_writes(path);
    unlink(path);
    CHECK_DONE();
}
