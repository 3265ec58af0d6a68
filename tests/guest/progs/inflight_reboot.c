// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Requests in flight across a reboot, for hv's end-to-end tests
 * (tests/vmm/test_virtio.py). Run as root in the test guest, booted with
 * `memmap=16M$0x10000000`: that RAM is reserved from the kernel, so this
 * program can use it through /dev/mem, and the kernel that boots after a
 * reboot in place never touches it either.
 *
 *   inflight_reboot post BDF N   drives the virtio-blk function BDF (its
 *       kernel driver unbound) from user space: rings and one 1 MiB data
 *       buffer in the reserved RAM, N reads of 1 MiB each (different
 *       offsets of the disk) published and kicked at once, then the
 *       guest reboots at once through sysrq, while the device still works
 *       on them. Prints "inflight: posted N used U" just before.
 *   inflight_reboot check        after the reboot: the reserved RAM must
 *       stay zero (hv-vmm wiped guest RAM at the reboot) while the program
 *       watches it for two seconds. A completion or a data write of the
 *       old requests landing after the reset would show here as non-zero
 *       bytes. Prints "inflight: check clean" or "inflight: check dirty
 *       OFFSET".
 */
#include "virtio_bar.h"

#define RESERVED_BASE 0x10000000ull
#define RESERVED_SIZE (16ull << 20)
#define QSIZE         256
#define REQ_BYTES     (1u << 20)
#define DISK_SECTORS  (62u * 2048) /* the reads stay below the disk's last MiBs */

/* The layout in the reserved RAM: descriptor table, avail ring, used ring,
 * request headers and status bytes, then the shared data buffer. */
#define OFF_DESC  0x0000
#define OFF_AVAIL 0x1000
#define OFF_USED  0x2000
#define OFF_HDRS  0x4000 /* 16 bytes per request */
#define OFF_STAT  0x6000 /* 1 byte per request */
#define OFF_DATA  0x100000

static uint8_t *reserved;

static void map_reserved(void)
{
    int fd = open("/dev/mem", O_RDWR | O_SYNC);
    if (fd < 0) {
        fprintf(stderr, "inflight: /dev/mem: %s\n", strerror(errno));
        exit(1);
    }
    void *p =
        mmap(NULL, RESERVED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)RESERVED_BASE);
    if (p == MAP_FAILED) {
        fprintf(stderr, "inflight: cannot map the reserved RAM: %s\n", strerror(errno));
        exit(1);
    }
    reserved = p;
    close(fd);
}

static void sysrq_reboot(void)
{
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    if (fd < 0 || write(fd, "b", 1) != 1) {
        fprintf(stderr, "inflight: sysrq: %s\n", strerror(errno));
        exit(1);
    }
    pause();
}

static int post(const char *bdf, unsigned n)
{
    uint8_t *scratch[1];
    uint64_t scratch_phys[1];

    if (n == 0 || n * 3 > QSIZE) {
        fprintf(stderr, "inflight: 1..%d requests\n", QSIZE / 3);
        return 2;
    }
    vbar_open("inflight", bdf, 1, scratch, scratch_phys);
    memset(reserved, 0, RESERVED_SIZE);
    if (vbar_negotiate() < 0) {
        fprintf(stderr, "inflight: the device refused FEATURES_OK\n");
        return 1;
    }
    vbar_setup_queue(0, QSIZE, RESERVED_BASE + OFF_DESC, RESERVED_BASE + OFF_AVAIL,
                     RESERVED_BASE + OFF_USED);
    vbar_driver_ok();

    struct desc *d = (struct desc *)(reserved + OFF_DESC);
    volatile uint16_t *avail = (volatile uint16_t *)(reserved + OFF_AVAIL);
    volatile uint16_t *used = (volatile uint16_t *)(reserved + OFF_USED);
    for (unsigned i = 0; i < n; i++) {
        uint32_t *hdr = (uint32_t *)(reserved + OFF_HDRS + 16 * i);
        uint64_t sector = (uint64_t)i * (REQ_BYTES / 512) % DISK_SECTORS;
        hdr[0] = 0; /* VIRTIO_BLK_T_IN */
        hdr[1] = 0;
        memcpy(&hdr[2], &sector, 8);
        reserved[OFF_STAT + i] = 0xff;
        uint16_t h = (uint16_t)(3 * i);
        d[h] = (struct desc){RESERVED_BASE + OFF_HDRS + 16 * i, 16, D_NEXT, (uint16_t)(h + 1)};
        d[h + 1] =
            (struct desc){RESERVED_BASE + OFF_DATA, REQ_BYTES, D_NEXT | D_WRITE, (uint16_t)(h + 2)};
        d[h + 2] = (struct desc){RESERVED_BASE + OFF_STAT + i, 1, D_WRITE, 0};
        avail[2 + i] = h;
    }
    __sync_synchronize();
    avail[1] = (uint16_t)n;
    vbar_kick(0);
    printf("inflight: posted %u used %u\n", n, used[1]);
    fflush(stdout);
    sysrq_reboot();
    return 1;
}

static long first_nonzero(void)
{
    for (size_t i = 0; i < RESERVED_SIZE; i += 8)
        if (*(volatile uint64_t *)(reserved + i))
            return (long)i;
    return -1;
}

static int check(void)
{
    long dirty = first_nonzero();
    for (int i = 0; i < 20 && dirty < 0; i++) {
        msleep(100);
        dirty = first_nonzero();
    }
    if (dirty >= 0)
        printf("inflight: check dirty 0x%lx\n", dirty);
    else
        printf("inflight: check clean\n");
    return dirty < 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "post")) {
        map_reserved();
        return post(argv[2], (unsigned)strtoul(argv[3], NULL, 0));
    }
    if (argc == 2 && !strcmp(argv[1], "check")) {
        map_reserved();
        return check();
    }
    fprintf(stderr, "usage: inflight_reboot post BDF N | inflight_reboot check\n");
    return 2;
}
