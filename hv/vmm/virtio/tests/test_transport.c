// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The whole path a guest driver takes, without KVM: PCI config cycles
 * through CF8/CFC and ECAM, BAR sizing and moves, MSI-X, the virtio common
 * configuration, queue set-up, kicks through the notify area served by the
 * device thread; then a driver that breaks the rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "devices.h"
#include "log.h"
#include "pci.h"
#include "pci_driver.h"
#include "ring.h"
#include "util.h"
#include "virtio.h"
#include "vm.h"

static struct vm vm;
static uint32_t vm_first_bar; /* virtio-blk's BAR 0 as registered */

/* The driver's probe: find the function, then turn on memory and bus mastering. */
static bool probe_on(struct drv *d, uint16_t device_id)
{
    if (!probe(d, device_id))
        return false;
    enable(d);
    return true;
}

static char img[] = "/tmp/hv-test-transport-XXXXXX";

static void test_pci(struct drv *d)
{
    /* Host bridge at slot 0, nothing at slot 31, ECAM agrees with CF8. */
    CHECK(cfg_rd(0, 0, 4) == 0x29c08086);
    CHECK(cfg_rd(31, 0, 4) == 0xffffffff);
    CHECK(mr(MEM_PCI_ECAM_BASE + ((uint64_t)d->slot << 15), 4) == cfg_rd(d->slot, 0, 4));
    CHECK(mr(MEM_PCI_ECAM_BASE + ((uint64_t)d->slot << 15) + (1 << 12), 4) == 0xffffffff);
    /* The vendor and device IDs are read-only. */
    cfg_wr(d->slot, 0, 0x12345678, 4);
    CHECK(cfg_rd(d->slot, 0, 2) == 0x1af4);

    /* BAR sizing: all ones reads back the size mask; restore. */
    cfg_wr(d->slot, 0x10, 0xffffffff, 4);
    CHECK(cfg_rd(d->slot, 0x10, 4) == (uint32_t) ~(VIRTIO_BAR_SIZE - 1));
    cfg_wr(d->slot, 0x10, (uint32_t)d->bar, 4);
    CHECK(cfg_rd(d->slot, 0x10, 4) == d->bar);
    CHECK(mr(d->common + VIRTIO_PCI_COMMON_NUMQ, 2) == 1);

    /* Memory decode off: the BAR disappears. */
    cfg_wr(d->slot, 4, 0, 2);
    CHECK(mr(d->common + VIRTIO_PCI_COMMON_NUMQ, 2) == 0xffff);
    cfg_wr(d->slot, 4, 6, 2);

    /* Move BAR 0: the registers follow, the old place is empty. */
    uint64_t old = d->bar, new = 0xd0000000;
    cfg_wr(d->slot, 0x10, (uint32_t) new, 4);
    CHECK(mr(old + VIRTIO_PCI_COMMON_NUMQ, 2) == 0xffff);
    d->common += new - old, d->notify += new - old, d->isr += new - old, d->device += new - old,
        d->bar = new;
    CHECK(mr(d->common + VIRTIO_PCI_COMMON_NUMQ, 2) == 1);

    /* The PCI_CFG window reaches the same registers. */
    cfg_wr(d->slot, d->pcicfg_cap + 4, 0, 1);
    cfg_wr(d->slot, d->pcicfg_cap + 8, VIRTIO_PCI_COMMON_NUMQ, 4);
    cfg_wr(d->slot, d->pcicfg_cap + 12, 2, 4);
    CHECK(cfg_rd(d->slot, d->pcicfg_cap + 16, 2) == 1);
}

static void test_blk_io(struct drv *d, struct test_ring *r)
{
    CHECK(negotiate(d, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX));
    CHECK(mr(d->device, 8) == 2048); /* 1 MiB in sectors */
    tr_init(r, &vm.mem, 16, 0x10000);
    queue_setup(d, 0, r, 1);
    /* MSI-X on, vector 1 masked: the interrupt must show up in the PBA. */
    cfg_wr(d->slot, d->msix_cap + 3, 0x80, 1);
    mw(d->msix_bar + 16, 0xfee00000, 4);
    mw(d->msix_bar + 16 + 8, 0x31, 4);
    mw(d->msix_bar + 16 + 12, 1, 4);
    driver_ok(d);
    CHECK(status(d) == 0x0f);

    /* Write 512 bytes at sector 1 then read them back. */
    uint8_t hdr[16] = {0};
    le32_put(hdr, VIRTIO_BLK_T_OUT);
    le64_put(hdr + 8, 1);
    guest_mem_write(&vm.mem, 0x20000, hdr, 16);
    uint8_t *data = guest_mem_ptr(&vm.mem, 0x21000, 512);
    for (int i = 0; i < 512; i++)
        data[i] = (uint8_t)(i ^ 0x5a);
    tr_desc(r, 0, 0x20000, 16, VRING_DESC_F_NEXT, 1);
    tr_desc(r, 1, 0x21000, 512, VRING_DESC_F_NEXT, 2);
    tr_desc(r, 2, 0x22000, 1, VRING_DESC_F_WRITE, 0);
    tr_publish(r, 0);
    kick(d, 0);
    CHECK(wait_used(r, 1));
    CHECK(*(uint8_t *)guest_mem_ptr(&vm.mem, 0x22000, 1) == VIRTIO_BLK_S_OK);

    uint8_t file[512];
    int fd = open(img, O_RDONLY);
    CHECK(pread(fd, file, 512, 512) == 512 && memcmp(file, data, 512) == 0);
    close(fd);
    CHECK(mr(d->msix_bar + MSIX_PBA_OFF, 8) == 2); /* vector 1 pending */
    mw(d->msix_bar + 16 + 12, 0, 4);               /* unmask: delivered */
    CHECK(mr(d->msix_bar + MSIX_PBA_OFF, 8) == 0);

    /* A kick on a queue that does not exist is ignored. */
    mw(d->notify + 7 * d->notify_mult, 7, 2);
}

static void test_hostile(struct drv *blk, struct test_ring *r, struct drv *rng)
{
    /* FEATURES_OK refused without VERSION_1, or with bits not offered. */
    CHECK(!negotiate(blk, 0));
    CHECK(!negotiate(blk, 1ull << VIRTIO_F_VERSION_1 | 1ull << 50));

    /* Queue size not a power of two. */
    CHECK(negotiate(blk, 1ull << VIRTIO_F_VERSION_1));
    tr_init(r, &vm.mem, 16, 0x10000);
    r->size = 12;
    queue_setup(blk, 0, r, 0);
    CHECK(status(blk) & VIRTIO_CONFIG_S_NEEDS_RESET);

    /* A power of two, but above the device's maximum (256). */
    CHECK(negotiate(blk, 1ull << VIRTIO_F_VERSION_1));
    tr_init(r, &vm.mem, 16, 0x10000);
    r->size = 1024;
    queue_setup(blk, 0, r, 0);
    CHECK(status(blk) & VIRTIO_CONFIG_S_NEEDS_RESET);

    /* Rings in MMIO space. */
    CHECK(negotiate(blk, 1ull << VIRTIO_F_VERSION_1));
    CHECK(!(status(blk) & VIRTIO_CONFIG_S_NEEDS_RESET)); /* reset cleared it */
    struct test_ring bad = *r;
    bad.size = 16;
    bad.desc = MEM_PCI_MMIO_BASE;
    queue_setup(blk, 0, &bad, 0);
    CHECK(status(blk) & VIRTIO_CONFIG_S_NEEDS_RESET);

    /* Kick before DRIVER_OK is ignored; DRIVER_OK then serves the queue. */
    CHECK(negotiate(blk, 1ull << VIRTIO_F_VERSION_1));
    tr_init(r, &vm.mem, 16, 0x10000);
    queue_setup(blk, 0, r, 0);
    uint8_t hdr[16] = {0};
    le32_put(hdr, VIRTIO_BLK_T_GET_ID);
    guest_mem_write(&vm.mem, 0x20000, hdr, 16);
    tr_desc(r, 0, 0x20000, 16, VRING_DESC_F_NEXT, 1);
    tr_desc(r, 1, 0x21000, 21, VRING_DESC_F_WRITE, 0);
    tr_publish(r, 0);
    kick(blk, 0);
    settle();
    CHECK(tr_used_idx(r) == 0);
    driver_ok(blk);
    CHECK(wait_used(r, 1));

    /* A descriptor loop: the device needs a reset, and says so. */
    tr_desc(r, 2, 0x20000, 16, VRING_DESC_F_NEXT, 3);
    tr_desc(r, 3, 0x21000, 16, VRING_DESC_F_NEXT, 2);
    tr_publish(r, 2);
    kick(blk, 0);
    for (int i = 0; i < 500 && !(status(blk) & VIRTIO_CONFIG_S_NEEDS_RESET); i++)
        settle();
    CHECK(status(blk) & VIRTIO_CONFIG_S_NEEDS_RESET);
    CHECK(tr_used_idx(r) == 1);

    /* The other device is not affected: virtio-rng still answers. */
    struct test_ring rr;
    CHECK(negotiate(rng, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC));
    tr_init(&rr, &vm.mem, 8, 0x40000);
    queue_setup(rng, 0, &rr, 0);
    driver_ok(rng);
    uint8_t *buf = guest_mem_ptr(&vm.mem, 0x50000, 64);
    memset(buf, 0, 64);
    tr_desc_at(&vm.mem, 0x48000, 0, 0x50000, 64, VRING_DESC_F_WRITE, 0);
    tr_desc(&rr, 0, 0x48000, 16, VRING_DESC_F_INDIRECT, 0);
    tr_publish(&rr, 0);
    kick(rng, 0);
    CHECK(wait_used(&rr, 1));
    uint32_t id, len;
    tr_used_elem(&rr, 0, &id, &len);
    uint8_t zero[64] = {0};
    CHECK(id == 0 && len == 64 && memcmp(buf, zero, 64) != 0);

    /* Reset brings the broken device back. */
    CHECK(negotiate(blk, 1ull << VIRTIO_F_VERSION_1));
    CHECK(!(status(blk) & VIRTIO_CONFIG_S_NEEDS_RESET));
}

/* A 512-byte read of sector 0 as descriptors 0-2 at base, published once more. */
static void queue_read(struct test_ring *r, uint64_t base)
{
    uint8_t hdr[16] = {0};
    le32_put(hdr, VIRTIO_BLK_T_IN);
    guest_mem_write(&vm.mem, base, hdr, 16);
    tr_desc(r, 0, base, 16, VRING_DESC_F_NEXT, 1);
    tr_desc(r, 1, base + 0x1000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    tr_desc(r, 2, base + 0x2000, 1, VRING_DESC_F_WRITE, 0);
    tr_publish(r, 0);
}

static bool all_zero(uint64_t gpa, size_t len)
{
    const uint8_t *p = guest_mem_ptr(&vm.mem, gpa, len);
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

/*
 * The device model's lifecycle (docs/device-model.md), as pause and reboot
 * drive it: quiesced, a kick waits and is not lost; reset with a kick
 * pending puts the device back to power-on and nothing lands in the memory
 * that a next kernel would own.
 */
static void test_lifecycle(struct drv *d)
{
    struct test_ring r;
    CHECK(negotiate(d, 1ull << VIRTIO_F_VERSION_1));
    tr_init(&r, &vm.mem, 16, 0x40000);
    queue_setup(d, 0, &r, 0);
    cfg_wr(d->slot, d->msix_cap + 3, 0x80, 1);
    driver_ok(d);
    CHECK(status(d) == 0x0f);

    devices_quiesce(&vm);
    queue_read(&r, 0x50000);
    kick(d, 0);
    settle();
    CHECK(tr_used_idx(&r) == 0); /* quiesced: guest memory untouched */
    devices_resume(&vm);
    CHECK(wait_used(&r, 1)); /* the kick waited */

    devices_quiesce(&vm);
    queue_read(&r, 0x50000);
    kick(d, 0); /* in flight when the guest reboots */
    devices_reset(&vm);
    memset(guest_mem_ptr(&vm.mem, 0x40000, 0x20000), 0, 0x20000); /* the new kernel's RAM */
    devices_resume(&vm);
    settle();
    CHECK(all_zero(0x40000, 0x20000)); /* no stale completion */
    CHECK(probe_on(d, 0x1042));        /* BAR 0 is back where it was registered */
    CHECK(status(d) == 0);
    mw(d->common + VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    CHECK(mr(d->common + VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 0);
    CHECK(mr(d->common + VIRTIO_PCI_COMMON_Q_DESCLO, 8) == 0);

    /* PCI and MSI-X as at power-on: test_pci moved BAR 0, the reset put it back. */
    uint64_t bar = cfg_rd(d->slot, 0x10, 4) & ~0xfu;
    CHECK(bar != 0xd0000000 && bar == (vm_first_bar & ~0xfu));
    CHECK((cfg_rd(d->slot, d->msix_cap + 3, 1) & 0x80) == 0);

    /* The layout: every device on the list once, with its slot. */
    struct device *dev = device_find(&vm, "virtio-blk0");
    CHECK(dev && dev->pci_slot == (int)d->slot && !dev->quiesced);
    CHECK(devices_count(&vm) == 2);
}

int main(void)
{
    hv_log_init("test");
    int fd = mkstemp(img);
    CHECK(fd >= 0 && ftruncate(fd, 1 * MiB) == 0);
    close(fd);

    vm.vm_fd = vm.kvm_fd = -1;
    drv_vm = &vm;
    CHECK(guest_mem_init(&vm.mem, 64 * MiB) == 0);
    io_bus_init(&vm.pio, "pio");
    io_bus_init(&vm.mmio, "mmio");
    CHECK(pci_bus_init(&vm.pci, &vm.pio, &vm.mmio) == 0);
    CHECK(virtio_blk_create(&vm, &(struct vm_disk){.path = img, .format = "raw"}) == 0);
    CHECK(virtio_rng_create(&vm) == 0);
    CHECK(virtio_blk_create(&vm, &(struct vm_disk){.path = "/nonexistent/disk.img"}) == -ENOENT);
    CHECK(virtio_console_create(&vm, "bogus") == -EINVAL);

    struct drv blk, rng;
    struct test_ring r;
    CHECK(probe_on(&blk, 0x1042));
    CHECK(probe_on(&rng, 0x1044));
    vm_first_bar = cfg_rd(blk.slot, 0x10, 4);
    test_pci(&blk);
    test_blk_io(&blk, &r);
    test_hostile(&blk, &r, &rng);
    CHECK(probe_on(&blk, 0x1042)); /* BAR 0 where test_pci left it */
    test_lifecycle(&blk);
    unlink(img);
    CHECK_DONE();
}
