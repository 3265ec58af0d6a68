// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A hostile virtio driver for hv's end-to-end tests (tests/vmm/test_virtio.py),
 * run as root in the test guest. It drives a virtio-blk PCI function through
 * its BAR 0 (/sys/bus/pci/devices/BDF/resource0, after the kernel driver is
 * unbound) and breaks the protocol in one way per case:
 *
 *   good       a well-formed read of sector 0 (the control: must complete)
 *   outside    a descriptor pointing far outside guest RAM
 *   loop       two descriptors chained to each other
 *   hugelen    a descriptor of 0xffffffff bytes
 *   badsize    queue size 12 (not a power of two)
 *   earlykick  a kick before DRIVER_OK (must be ignored, then served)
 *
 * Usage: hostile_virtio BDF CASE...   One line per case on stdout:
 *   "hostile: CASE status 0xNN needs_reset N used N"
 * then the device is reset and the good request is replayed:
 *   "hostile: CASE recovered N".
 * Rings live in mlock()ed pages whose physical addresses come from
 * /proc/self/pagemap.
 */
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

#define QSIZE 16

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};
#define D_NEXT  1
#define D_WRITE 2

static volatile uint8_t *bar;
static uint8_t *pages[4]; /* desc table, avail, used, data */
static uint64_t phys[4];

#define R8(o)     (*(volatile uint8_t *)(bar + (o)))
#define R16(o)    (*(volatile uint16_t *)(bar + (o)))
#define R32(o)    (*(volatile uint32_t *)(bar + (o)))
#define W8(o, v)  (*(volatile uint8_t *)(bar + (o)) = (v))
#define W16(o, v) (*(volatile uint16_t *)(bar + (o)) = (v))
#define W32(o, v) (*(volatile uint32_t *)(bar + (o)) = (v))
#define W64(o, v) (W32((o), (uint32_t)(v)), W32((o) + 4, (uint32_t)((uint64_t)(v) >> 32)))

static void msleep(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static uint64_t virt_to_phys(void *p)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t e = 0;
    if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)p / 4096 * 8)) != 8 || !(e & (1ull << 63))) {
        fprintf(stderr, "hostile: no physical address for %p\n", p);
        exit(1);
    }
    close(fd);
    return (e & ((1ull << 55) - 1)) * 4096;
}

static void reset(void)
{
    W8(0x14, 0);
    for (int i = 0; i < 1000 && R8(0x14) != 0; i++)
        msleep(1);
}

/* ACK, DRIVER, features VERSION_1 only, FEATURES_OK; 0 if it stuck. */
static int negotiate(void)
{
    reset();
    W8(0x14, S_ACK);
    W8(0x14, S_ACK | S_DRIVER);
    W32(0x08, 0);
    W32(0x0c, 0);
    W32(0x08, 1);
    W32(0x0c, 1); /* bit 32: VERSION_1 */
    W8(0x14, S_ACK | S_DRIVER | S_FEATURES_OK);
    return (R8(0x14) & S_FEATURES_OK) ? 0 : -1;
}

static void setup_queue(uint16_t size)
{
    for (int i = 0; i < 4; i++)
        memset(pages[i], 0, 4096);
    W16(0x16, 0);
    W16(0x18, size);
    W16(0x1a, 0xffff); /* no MSI-X vector: we poll the used ring */
    W64(0x20, phys[0]);
    W64(0x28, phys[1]);
    W64(0x30, phys[2]);
    W16(0x1c, 1);
}

static void driver_ok(void)
{
    W8(0x14, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

static void kick(void)
{
    W16(0x16, 0);
    uint16_t off = R16(0x1e);
    __sync_synchronize();
    W16(0x3000 + 4u * off, 0);
}

/* Puts head 0 in the avail ring (index 1). */
static void publish(void)
{
    volatile uint16_t *avail = (volatile uint16_t *)pages[1];
    avail[2] = 0;
    __sync_synchronize();
    avail[1] = 1;
}

static uint16_t used_idx(void)
{
    return ((volatile uint16_t *)pages[2])[1];
}

/* A read of sector 0: header (16 bytes), 512 bytes of data, status byte. */
static void good_request(struct desc *d)
{
    uint8_t *data = pages[3];
    memset(data, 0, 1024);
    uint32_t *hdr = (uint32_t *)data;
    hdr[0] = 0;        /* VIRTIO_BLK_T_IN */
    data[1023] = 0xff; /* status: the device writes 0 */
    d[0] = (struct desc){phys[3], 16, D_NEXT, 1};
    d[1] = (struct desc){phys[3] + 512, 512, D_NEXT | D_WRITE, 2};
    d[2] = (struct desc){phys[3] + 1023, 1, D_WRITE, 0};
}

static int wait_used(unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        if (used_idx() || (R8(0x14) & S_NEEDS_RESET))
            break;
        msleep(1);
    }
    return used_idx();
}

static int run_good(void)
{
    if (negotiate() < 0)
        return -1;
    setup_queue(QSIZE);
    driver_ok();
    good_request((struct desc *)pages[0]);
    publish();
    kick();
    return wait_used(2000) == 1 && pages[3][1023] == 0 ? 1 : 0;
}

static void run_case(const char *name)
{
    struct desc *d = (struct desc *)pages[0];
    int used = 0;

    if (!strcmp(name, "good")) {
        used = run_good();
    } else if (!strcmp(name, "badsize")) {
        negotiate();
        setup_queue(12);
        driver_ok();
        msleep(200);
    } else if (!strcmp(name, "earlykick")) {
        negotiate();
        setup_queue(QSIZE);
        good_request(d);
        publish();
        kick(); /* before DRIVER_OK: ignored */
        msleep(200);
        int early = used_idx();
        driver_ok(); /* the device now looks at the queue */
        used = wait_used(2000);
        printf("hostile: earlykick used before DRIVER_OK %d\n", early);
    } else {
        negotiate();
        setup_queue(QSIZE);
        driver_ok();
        good_request(d);
        if (!strcmp(name, "outside"))
            d[1].addr = 0x7ff000000000ull;
        else if (!strcmp(name, "loop"))
            d[2] = (struct desc){phys[3] + 1023, 1, D_WRITE | D_NEXT, 1};
        else if (!strcmp(name, "hugelen"))
            d[1].len = 0xffffffffu;
        else {
            fprintf(stderr, "hostile: unknown case %s\n", name);
            exit(2);
        }
        publish();
        kick();
        used = wait_used(1000);
        msleep(100);
    }
    uint8_t st = R8(0x14);
    printf("hostile: %s status 0x%02x needs_reset %d used %d\n", name, st, !!(st & S_NEEDS_RESET),
           used);
    printf("hostile: %s recovered %d\n", name, run_good());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hostile_virtio BDF CASE...\n");
        return 2;
    }
    char path[256];
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", argv[1]);
    int fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        fprintf(stderr, "hostile: %s: %s\n", path, strerror(errno));
        return 1;
    }
    bar = mmap(NULL, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bar == MAP_FAILED) {
        fprintf(stderr, "hostile: mmap %s: %s\n", path, strerror(errno));
        return 1;
    }
    uint8_t *mem = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || mlock(mem, 4 * 4096) < 0) {
        fprintf(stderr, "hostile: cannot lock ring memory: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        pages[i] = mem + i * 4096;
        pages[i][0] = 1; /* fault it in */
        phys[i] = virt_to_phys(pages[i]);
    }
    for (int i = 2; i < argc; i++)
        run_case(argv[i]);
    reset();
    return 0;
}
