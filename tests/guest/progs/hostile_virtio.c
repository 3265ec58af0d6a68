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
 * The BAR and ring plumbing is tests/guest/include/virtio_bar.h.
 */
#include "virtio_bar.h"

#define QSIZE 16

static uint8_t *pages[4]; /* desc table, avail, used, data */
static uint64_t phys[4];

static void setup_queue(uint16_t size)
{
    for (int i = 0; i < 4; i++)
        memset(pages[i], 0, 4096);
    vbar_setup_queue(0, size, phys[0], phys[1], phys[2]);
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
    if (vbar_negotiate() < 0)
        return -1;
    setup_queue(QSIZE);
    vbar_driver_ok();
    good_request((struct desc *)pages[0]);
    publish();
    vbar_kick(0);
    return wait_used(2000) == 1 && pages[3][1023] == 0 ? 1 : 0;
}

static void run_case(const char *name)
{
    struct desc *d = (struct desc *)pages[0];
    int used = 0;

    if (!strcmp(name, "good")) {
        used = run_good();
    } else if (!strcmp(name, "badsize")) {
        vbar_negotiate();
        setup_queue(12);
        vbar_driver_ok();
        msleep(200);
    } else if (!strcmp(name, "earlykick")) {
        vbar_negotiate();
        setup_queue(QSIZE);
        good_request(d);
        publish();
        vbar_kick(0); /* before DRIVER_OK: ignored */
        msleep(200);
        int early = used_idx();
        vbar_driver_ok(); /* the device now looks at the queue */
        used = wait_used(2000);
        printf("hostile: earlykick used before DRIVER_OK %d\n", early);
    } else {
        vbar_negotiate();
        setup_queue(QSIZE);
        vbar_driver_ok();
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
        vbar_kick(0);
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
    vbar_open("hostile", argv[1], 4, pages, phys);
    for (int i = 2; i < argc; i++)
        run_case(argv[i]);
    vbar_reset();
    return 0;
}
