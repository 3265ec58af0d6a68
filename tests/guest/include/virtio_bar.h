/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A virtio PCI device driven from user space in a test guest, for the
 * hostile drivers (tests/guest/progs/hostile_virtio.c, tests/guest/tools/
 * hv-hostile-gpu.c): BAR 0 mapped from sysfs after the kernel's driver is
 * unbound, rings in mlock()ed pages whose physical addresses come from
 * /proc/self/pagemap. hv-vmm's virtio-pci layout: common configuration at
 * 0, notifications at 0x3000 (hv/vmm/virtio/pci.c). Header-only: each
 * program is one file.
 */
#ifndef HV_TEST_VIRTIO_BAR_H
#define HV_TEST_VIRTIO_BAR_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define S_ACK         1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40
#define D_NEXT        1
#define D_WRITE       2

/* common configuration registers (virtio 1.x, 4.1.4.3) */
#define CC_GFSELECT  0x08
#define CC_GF        0x0c
#define CC_STATUS    0x14
#define CC_QSELECT   0x16
#define CC_QSIZE     0x18
#define CC_QMSIX     0x1a
#define CC_QENABLE   0x1c
#define CC_QNOTIFY   0x1e
#define CC_QDESC     0x20
#define CC_QDRIVER   0x28
#define CC_QDEVICE   0x30
#define NOTIFY_BASE  0x3000
#define BAR_MAP_SIZE 0x4000

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static volatile uint8_t *bar;

#define R8(o)     (*(volatile uint8_t *)(bar + (o)))
#define R16(o)    (*(volatile uint16_t *)(bar + (o)))
#define R32(o)    (*(volatile uint32_t *)(bar + (o)))
#define W8(o, v)  (*(volatile uint8_t *)(bar + (o)) = (v))
#define W16(o, v) (*(volatile uint16_t *)(bar + (o)) = (v))
#define W32(o, v) (*(volatile uint32_t *)(bar + (o)) = (v))
#define W64(o, v) (W32((o), (uint32_t)(v)), W32((o) + 4, (uint32_t)((uint64_t)(v) >> 32)))

static inline void msleep(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Maps BDF's BAR 0 into `bar` and n locked, faulted-in pages of memory
 * into pages[]/phys[]; prog names the program in errors. Exits on failure. */
static inline void vbar_open(const char *prog, const char *bdf, int n, uint8_t **pages,
                             uint64_t *phys)
{
    char path[256];
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
    int fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        exit(1);
    }
    void *map = mmap(NULL, BAR_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "%s: mmap %s: %s\n", prog, path, strerror(errno));
        exit(1);
    }
    bar = map;
    size_t len = (size_t)n * 4096;
    uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || mlock(mem, len) < 0) {
        fprintf(stderr, "%s: cannot lock ring memory: %s\n", prog, strerror(errno));
        exit(1);
    }
    int pm = open("/proc/self/pagemap", O_RDONLY);
    for (int i = 0; i < n; i++) {
        pages[i] = mem + (size_t)i * 4096;
        pages[i][0] = 1; /* fault it in */
        uint64_t e = 0;
        if (pm < 0 || pread(pm, &e, 8, (off_t)((uintptr_t)pages[i] / 4096 * 8)) != 8 ||
            !(e & (1ull << 63))) {
            fprintf(stderr, "%s: no physical address for %p\n", prog, (void *)pages[i]);
            exit(1);
        }
        phys[i] = (e & ((1ull << 55) - 1)) * 4096;
    }
    close(pm);
}

static inline void vbar_reset(void)
{
    W8(CC_STATUS, 0);
    for (int i = 0; i < 1000 && R8(CC_STATUS) != 0; i++)
        msleep(1);
}

/* Reset, ACK, DRIVER, features VERSION_1 only, FEATURES_OK; -1 if refused. */
static inline int vbar_negotiate(void)
{
    vbar_reset();
    W8(CC_STATUS, S_ACK);
    W8(CC_STATUS, S_ACK | S_DRIVER);
    W32(CC_GFSELECT, 0);
    W32(CC_GF, 0);
    W32(CC_GFSELECT, 1);
    W32(CC_GF, 1); /* bit 32: VERSION_1 */
    W8(CC_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    return (R8(CC_STATUS) & S_FEATURES_OK) ? 0 : -1;
}

/* Queue q of size entries on the given rings, no MSI-X vector (the used
 * ring is polled), enabled. */
static inline void vbar_setup_queue(uint16_t q, uint16_t size, uint64_t desc, uint64_t avail,
                                    uint64_t used)
{
    W16(CC_QSELECT, q);
    W16(CC_QSIZE, size);
    W16(CC_QMSIX, 0xffff);
    W64(CC_QDESC, desc);
    W64(CC_QDRIVER, avail);
    W64(CC_QDEVICE, used);
    W16(CC_QENABLE, 1);
}

static inline void vbar_driver_ok(void)
{
    W8(CC_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

static inline void vbar_kick(uint16_t q)
{
    W16(CC_QSELECT, q);
    uint16_t off = R16(CC_QNOTIFY);
    __sync_synchronize();
    W16(NOTIFY_BASE + 4u * off, q);
}

#endif
