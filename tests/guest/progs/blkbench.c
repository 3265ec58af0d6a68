// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Block benchmark for bench/vmm/bench_vmm.py, run in the test guest:
 *
 *   blkbench DEV MODE SECONDS
 *
 * MODE: seqr/seqw (1 MiB requests from offset 0, wrapping) or randr/randw
 * (4 KiB requests at random 4 KiB-aligned offsets), O_DIRECT, queue depth 1.
 * Prints "blkbench: MODE MiB/s N iops N ops N".
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: blkbench DEV seqr|seqw|randr|randw SECONDS\n");
        return 2;
    }
    const char *mode = argv[2];
    int write = mode[strlen(mode) - 1] == 'w';
    int seq = !strncmp(mode, "seq", 3);
    size_t bs = seq ? 1u << 20 : 4096;
    int fd = open(argv[1], (write ? O_RDWR : O_RDONLY) | O_DIRECT);
    uint64_t size = 0;
    if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0 || size < bs) {
        perror(argv[1]);
        return 1;
    }
    void *buf;
    if (posix_memalign(&buf, 4096, bs))
        return 1;
    memset(buf, 0x5a, bs);
    uint64_t blocks = size / bs, ops = 0, x = 88172645463325252ull;
    double t0 = now(), end = t0 + atof(argv[3]), t;
    do {
        uint64_t blk;
        if (seq) {
            blk = ops % blocks;
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            blk = x % blocks;
        }
        ssize_t r =
            write ? pwrite(fd, buf, bs, (off_t)(blk * bs)) : pread(fd, buf, bs, (off_t)(blk * bs));
        if (r != (ssize_t)bs) {
            perror("blkbench: I/O");
            return 1;
        }
        ops++;
        t = now();
    } while (t < end);
    if (write)
        fdatasync(fd);
    t = now() - t0;
    printf("blkbench: %s MiB/s %.1f iops %.0f ops %llu\n", mode,
           (double)ops * (double)bs / t / 1048576.0, (double)ops / t, (unsigned long long)ops);
    return 0;
}
