// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-balloon on fake guest RAM, without KVM, driven through the buses as
 * a guest driver does: the target the host sets (num_pages, config
 * interrupt) and its floor and ceiling, the driver's actual, inflated pages
 * given back to the host (gone from the mapping, zero when read again) with
 * every PFN checked against RAM, free page reporting, the queue numbering
 * without STATS_VQ, a reset that empties the balloon; on both kinds of RAM
 * (private anonymous memory and a shared memfd).
 */
#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "balloon.h"
#include "check.h"
#include "device.h"
#include "devices.h"
#include "log.h"
#include "memfloor.h"
#include "pci.h"
#include "pci_driver.h"
#include "ring.h"
#include "util.h"
#include "virtio.h"
#include "vm.h"

#define RAM (UINT64_C(512) * MiB)

static struct vm vm_anon, vm_shared;

static void make_vm(struct vm *vm, unsigned flags)
{
    vm->vm_fd = vm->kvm_fd = -1;
    CHECK(guest_mem_init_flags(&vm->mem, RAM, MEM_LOW_RAM_MAX, flags) == 0);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    CHECK(pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) == 0);
    CHECK(virtio_balloon_create(vm) == 0);
    CHECK(virtio_balloon_create(vm) == -EEXIST); /* one a VM */
}

static struct virtio_dev *balloon_dev(struct vm *vm)
{
    for (struct device *d = vm->devices; d; d = d->next)
        if (strcmp(d->id, "virtio-balloon") == 0)
            return d->priv;
    return NULL;
}

static bool vector_fired(struct virtio_dev *vd, unsigned vec)
{
    int fd = msix_vector_fd(&vd->msix, vec);
    uint64_t n;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    bool fired = poll(&p, 1, 0) == 1;
    if (read(fd, &n, sizeof(n)) < 0)
        n = 0;
    return fired;
}

static bool resident(struct vm *vm, uint64_t gpa)
{
    unsigned char v = 0;
    void *p = guest_mem_ptr(&vm->mem, gpa, 4096);
    CHECK(p && mincore(p, 4096, &v) == 0);
    return v & 1;
}

static void fill(struct vm *vm, uint64_t gpa, uint64_t len, uint8_t byte)
{
    memset(guest_mem_ptr(&vm->mem, gpa, len), byte, len);
}

static bool all(struct vm *vm, uint64_t gpa, uint64_t len, uint8_t byte)
{
    const uint8_t *p = guest_mem_ptr(&vm->mem, gpa, len);
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != byte)
            return false;
    return true;
}

/* The rings and buffers live in the first MiB; the pages given back above 64 MiB. */
#define RING(q)  (0x10000 + 0x4000 * (uint64_t)(q))
#define PFNS     0x40000
#define TEST_GPA (UINT64_C(64) << 20)

static void send_pfns(struct test_ring *r, struct drv *d, unsigned q, const uint32_t *pfns,
                      unsigned n)
{
    CHECK(guest_mem_write(r->mem, PFNS, pfns, 4 * (uint64_t)n) == 0);
    uint16_t want = (uint16_t)(tr_used_idx(r) + 1);
    tr_desc(r, 0, PFNS, 4 * n, 0, 0);
    tr_publish(r, 0);
    kick(d, q);
    CHECK(wait_used(r, want));
}

static void test_balloon(struct vm *vm, const char *what)
{
    drv_vm = vm;
    struct drv d;
    struct virtio_dev *vd = balloon_dev(vm);
    struct balloon_info bi;
    char err[256];
    CHECK(vd && probe(&d, 0x1040 + VIRTIO_ID_BALLOON));
    enable(&d);

    /* Before any driver: the whole of RAM, no driver. */
    virtio_balloon_info(vm, &bi);
    CHECK(bi.present && !bi.driver && bi.memory == RAM && bi.target == RAM && bi.actual == RAM);

    /* The driver takes every feature offered. */
    uint64_t f = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_BALLOON_F_STATS_VQ |
                 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM | 1ull << VIRTIO_BALLOON_F_REPORTING;
    CHECK(negotiate(&d, f));
    struct test_ring rq[4];
    for (unsigned q = 0; q < 4; q++) {
        tr_init(&rq[q], &vm->mem, 8, RING(q));
        queue_setup(&d, q, &rq[q], (uint16_t)(q + 1));
    }
    mw(d.common + VIRTIO_PCI_COMMON_MSIX, 0, 2); /* config changes on vector 0 */
    cfg_wr(d.slot, d.msix_cap + 3, 0x80, 1);
    for (unsigned v = 0; v < 5; v++) {
        mw(d.msix_bar + 16 * v, 0xfee00000, 4);
        mw(d.msix_bar + 16 * v + 8, 0x30 + v, 4);
        mw(d.msix_bar + 16 * v + 12, 0, 4);
    }
    driver_ok(&d);
    virtio_balloon_info(vm, &bi);
    CHECK(bi.driver);

    /* Target and its limits: a sentence for each refusal, nothing changed. */
    uint64_t floor = hv_memory_floor(RAM);
    CHECK(floor == 128 * MiB);
    CHECK(virtio_balloon_request(vm, RAM + 4096, err, sizeof(err)) < 0);
    CHECK(strstr(err, "more than the VM's memory (512 MiB)"));
    CHECK(virtio_balloon_request(vm, floor - 4096, err, sizeof(err)) < 0);
    CHECK(strstr(err, "below the least this VM may keep, 128 MiB"));
    CHECK(!vector_fired(vd, 0));
    CHECK(mr(d.device, 4) == 0);

    /* 384 MiB: 128 MiB in the balloon, the driver hears of it. */
    CHECK(virtio_balloon_request(vm, 384 * MiB, err, sizeof(err)) == 0);
    CHECK(mr(d.device, 4) == 128 * MiB / 4096);
    CHECK(vector_fired(vd, 0));
    virtio_balloon_info(vm, &bi);
    CHECK(bi.target == 384 * MiB && bi.actual == RAM);
    /* Not page aligned: rounded down, so the guest keeps no more than asked. */
    CHECK(virtio_balloon_request(vm, 384 * MiB + 100, err, sizeof(err)) == 0);
    CHECK(mr(d.device, 4) == 128 * MiB / 4096);
    CHECK(virtio_balloon_request(vm, floor, err, sizeof(err)) == 0);
    CHECK(mr(d.device, 4) == (RAM - floor) / 4096);

    /* Inflate: 4 neighbours and one apart, each was written; gone from the host, zero again. */
    fill(vm, TEST_GPA, 8 * 4096, 0xaa);
    for (unsigned i = 0; i < 8; i++)
        CHECK(resident(vm, TEST_GPA + 4096 * i));
    uint32_t base = (uint32_t)(TEST_GPA / 4096);
    uint32_t good[] = {base, base + 1, base + 2, base + 3, base + 6};
    send_pfns(&rq[0], &d, 0, good, 5);
    for (unsigned i = 0; i < 8; i++) {
        bool given = i < 4 || i == 6;
        CHECK(resident(vm, TEST_GPA + 4096 * i) == !given);
        CHECK(all(vm, TEST_GPA + 4096 * i, 4096, given ? 0 : 0xaa));
    }
    CHECK(vector_fired(vd, 1)); /* the buffer came back */

    /* PFNs that are not RAM: past its end, in the PCI hole, the largest; ignored. */
    fill(vm, TEST_GPA, 4096, 0x55);
    uint32_t bad[] = {(uint32_t)(RAM / 4096), (uint32_t)(MEM_PCI_MMIO_BASE / 4096),
                      (uint32_t)(MEM_HIGH_RAM_BASE / 4096), 0xffffffffu, base};
    send_pfns(&rq[0], &d, 0, bad, 5);
    CHECK(all(vm, TEST_GPA, 4096, 0)); /* the one good PFN among them was given back */
    CHECK(all(vm, TEST_GPA + 4 * 4096, 4096, 0xaa));
    /* A buffer of 6 bytes: one PFN and a half; the half is not read. */
    fill(vm, TEST_GPA + 4 * 4096, 4096, 0x66);
    uint32_t one[2] = {base + 4, base + 5};
    CHECK(guest_mem_write(&vm->mem, PFNS, one, 8) == 0);
    uint16_t want = (uint16_t)(tr_used_idx(&rq[0]) + 1);
    tr_desc(&rq[0], 0, PFNS, 6, 0, 0);
    tr_publish(&rq[0], 0);
    kick(&d, 0);
    CHECK(wait_used(&rq[0], want));
    CHECK(all(vm, TEST_GPA + 4 * 4096, 4096, 0) && all(vm, TEST_GPA + 5 * 4096, 4096, 0xaa));

    /* The driver counts what it gave: actual, clamped to RAM when it lies. */
    mw(d.device + 4, 128 * MiB / 4096, 4);
    virtio_balloon_info(vm, &bi);
    CHECK(bi.actual == 384 * MiB);
    uint64_t got = 0;
    CHECK(virtio_balloon_get_actual(vm, &got) == 0 && got == 128 * MiB);
    mw(d.device + 4, 0xffffffffu, 4);
    virtio_balloon_info(vm, &bi);
    CHECK(bi.actual == 0);
    mw(d.device, 1, 4); /* num_pages is the device's: the driver cannot write it */
    CHECK(mr(d.device, 4) == (RAM - floor) / 4096);

    /* Deflate: nothing to do, the pages just come back in use. */
    send_pfns(&rq[1], &d, 1, good, 5);
    fill(vm, TEST_GPA, 4096, 0x11);
    CHECK(all(vm, TEST_GPA, 4096, 0x11));

    /* Free page reporting: a 2 MiB range, written, comes back as zero. */
    uint64_t rep = TEST_GPA + 2 * MiB;
    fill(vm, rep, 2 * MiB, 0x77);
    want = (uint16_t)(tr_used_idx(&rq[3]) + 1);
    tr_desc(&rq[3], 0, rep, (uint32_t)(2 * MiB), VRING_DESC_F_WRITE, 0);
    tr_publish(&rq[3], 0);
    kick(&d, 3);
    CHECK(wait_used(&rq[3], want));
    CHECK(!resident(vm, rep) && !resident(vm, rep + 2 * MiB - 4096));
    CHECK(all(vm, rep, 2 * MiB, 0));
    /* A report outside RAM: the ring refuses the descriptor, nothing is discarded. */
    fill(vm, rep, 4096, 0x77);
    tr_desc(&rq[3], 0, RAM - 4096, 8192, VRING_DESC_F_WRITE, 0);
    tr_publish(&rq[3], 0);
    kick(&d, 3);
    settle();
    CHECK(all(vm, rep, 4096, 0x77));

    /* A reset (driver unload, reboot): the balloon is empty, the target stays. */
    mw(d.device + 4, 128 * MiB / 4096, 4);
    mw(d.common + VIRTIO_PCI_COMMON_STATUS, 0, 1);
    CHECK(virtio_balloon_get_actual(vm, &got) == 0 && got == 0);
    CHECK(mr(d.device, 4) == (RAM - floor) / 4096);
    virtio_balloon_info(vm, &bi);
    CHECK(!bi.driver && bi.target == floor && bi.actual == RAM);

    /* A driver without STATS_VQ numbers the reporting queue 2. */
    CHECK(negotiate(&d, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_BALLOON_F_REPORTING));
    struct test_ring r2[3];
    for (unsigned q = 0; q < 3; q++) {
        tr_init(&r2[q], &vm->mem, 8, RING(q));
        queue_setup(&d, q, &r2[q], VIRTIO_NO_VECTOR);
    }
    driver_ok(&d);
    fill(vm, rep, 2 * MiB, 0x77);
    tr_desc(&r2[2], 0, rep, (uint32_t)(2 * MiB), VRING_DESC_F_WRITE, 0);
    tr_publish(&r2[2], 0);
    kick(&d, 2);
    CHECK(wait_used(&r2[2], 1));
    CHECK(all(vm, rep, 2 * MiB, 0));

    /* Back to the whole of RAM. */
    CHECK(virtio_balloon_request(vm, RAM, err, sizeof(err)) == 0);
    CHECK(mr(d.device, 4) == 0);
    printf("balloon on %s RAM: ok\n", what);
}

/* A VM too small to shrink: the floor is all of it. */
static void test_small_vm(void)
{
    struct vm vm;
    char err[256];
    memset(&vm, 0, sizeof(vm));
    vm.vm_fd = vm.kvm_fd = -1;
    CHECK(guest_mem_init(&vm.mem, 64 * MiB) == 0);
    io_bus_init(&vm.pio, "pio");
    io_bus_init(&vm.mmio, "mmio");
    CHECK(pci_bus_init(&vm.pci, &vm.pio, &vm.mmio) == 0);
    CHECK(virtio_balloon_request(&vm, 64 * MiB, err, sizeof(err)) < 0);
    CHECK(strstr(err, "no balloon device"));
    struct balloon_info bi;
    virtio_balloon_info(&vm, &bi);
    CHECK(!bi.present && bi.target == 64 * MiB && bi.actual == 64 * MiB);
    CHECK(virtio_balloon_create(&vm) == 0);
    CHECK(hv_memory_floor(64 * MiB) == 64 * MiB);
    CHECK(virtio_balloon_request(&vm, 60 * MiB, err, sizeof(err)) < 0);
    CHECK(virtio_balloon_request(&vm, 64 * MiB, err, sizeof(err)) == 0);
    CHECK(hv_memory_floor(4 * GiB) == 512 * MiB);
    CHECK(hv_memory_floor(1 * GiB) == 128 * MiB);
    /* Given back: the sanitizer build checks for leaks (the model's own struct too). */
    struct device *dev = device_find(&vm, "virtio-balloon");
    void *model = dev ? ((struct virtio_dev *)dev->priv)->priv : NULL;
    devices_destroy(&vm);
    pci_bus_destroy(vm.pci); /* it walks the functions, the balloon's among them */
    free(model);
    io_bus_destroy(&vm.pio);
    io_bus_destroy(&vm.mmio);
    guest_mem_destroy(&vm.mem);
}

int main(void)
{
    hv_log_init("test_balloon");
    make_vm(&vm_anon, 0);
    CHECK(!vm_anon.mem.shared && vm_anon.mem.memfd < 0 && vm_anon.mem.merge);
    test_balloon(&vm_anon, "private");
    make_vm(&vm_shared, GUEST_MEM_SHARED);
    CHECK(vm_shared.mem.shared && vm_shared.mem.memfd >= 0);
    test_balloon(&vm_shared, "memfd");
    test_small_vm();
    CHECK_DONE();
}
