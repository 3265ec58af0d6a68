/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The driver's side of a virtio PCI function, for unit tests on fake guest
 * RAM: config space through CF8/CFC on the VM's port bus, the BAR's
 * registers through its MMIO bus, as a guest driver reaches them. The
 * helpers talk to the VM in `drv_vm`, which the test sets (test_save has
 * two VMs and switches between them).
 */
#ifndef HV_VIRTIO_TESTS_PCI_DRIVER_H
#define HV_VIRTIO_TESTS_PCI_DRIVER_H

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "check.h"
#include "ring.h"
#include "vm.h"

static struct vm *drv_vm;

static inline void pio_w32(uint16_t port, uint32_t v)
{
    io_bus_access(&drv_vm->pio, port, (uint8_t *)&v, 4, true);
}

static inline uint32_t cfg_rd(unsigned slot, unsigned off, unsigned len)
{
    uint32_t v = 0;
    pio_w32(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
    io_bus_access(&drv_vm->pio, 0xcfc + (off & 3), (uint8_t *)&v, len, false);
    return v;
}

static inline void cfg_wr(unsigned slot, unsigned off, uint32_t v, unsigned len)
{
    pio_w32(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
    io_bus_access(&drv_vm->pio, 0xcfc + (off & 3), (uint8_t *)&v, len, true);
}

static inline uint64_t mr(uint64_t addr, unsigned len)
{
    uint64_t v = 0;
    io_bus_access(&drv_vm->mmio, addr, (uint8_t *)&v, len, false);
    return v;
}

static inline void mw(uint64_t addr, uint64_t v, unsigned len)
{
    io_bus_access(&drv_vm->mmio, addr, (uint8_t *)&v, len, true);
}

/* Where one function's registers are, as its capabilities say. */
struct drv {
    unsigned slot;
    uint64_t bar, msix_bar;
    uint64_t common, notify, isr, device;
    uint8_t msix_cap, pcicfg_cap;
    uint32_t notify_mult;
};

/* Finds the function with this virtio PCI device ID and reads where its
 * registers are, without writing anything. */
static inline bool probe(struct drv *d, uint16_t device_id)
{
    memset(d, 0, sizeof(*d));
    for (d->slot = 0; d->slot < 32; d->slot++) {
        if (cfg_rd(d->slot, 0, 4) == (0x1af4u | (uint32_t)device_id << 16))
            break;
    }
    if (d->slot == 32)
        return false;
    d->bar = cfg_rd(d->slot, 0x10, 4) & ~0xfu;
    d->msix_bar = cfg_rd(d->slot, 0x18, 4) & ~0xfu;
    for (unsigned c = cfg_rd(d->slot, 0x34, 1); c; c = cfg_rd(d->slot, c + 1, 1)) {
        unsigned id = cfg_rd(d->slot, c, 1);
        if (id == 0x11)
            d->msix_cap = (uint8_t)c;
        if (id != 0x09)
            continue;
        unsigned type = cfg_rd(d->slot, c + 3, 1);
        uint64_t off = cfg_rd(d->slot, c + 8, 4);
        CHECK(cfg_rd(d->slot, c + 4, 1) == 0); /* every structure is in BAR 0 */
        if (type == VIRTIO_PCI_CAP_COMMON_CFG)
            d->common = d->bar + off;
        if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            d->notify = d->bar + off;
            d->notify_mult = cfg_rd(d->slot, c + 16, 4);
        }
        if (type == VIRTIO_PCI_CAP_ISR_CFG)
            d->isr = d->bar + off;
        if (type == VIRTIO_PCI_CAP_DEVICE_CFG)
            d->device = d->bar + off;
        if (type == VIRTIO_PCI_CAP_PCI_CFG)
            d->pcicfg_cap = (uint8_t)c;
    }
    return d->common && d->notify && d->isr && d->msix_cap && d->pcicfg_cap;
}

/* Memory decoding and bus mastering on, as a driver's pci_enable_device. */
static inline void enable(struct drv *d)
{
    cfg_wr(d->slot, 4, 0x0006, 2);
}

static inline uint8_t status(struct drv *d)
{
    return (uint8_t)mr(d->common + VIRTIO_PCI_COMMON_STATUS, 1);
}

/* Reset, then negotiate `want`; returns whether FEATURES_OK stuck. */
static inline bool negotiate(struct drv *d, uint64_t want)
{
    mw(d->common + VIRTIO_PCI_COMMON_STATUS, 0, 1);
    CHECK(status(d) == 0);
    mw(d->common + VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE, 1);
    mw(d->common + VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
       1);
    uint64_t host = 0;
    for (unsigned sel = 0; sel < 2; sel++) {
        mw(d->common + VIRTIO_PCI_COMMON_DFSELECT, sel, 4);
        host |= mr(d->common + VIRTIO_PCI_COMMON_DF, 4) << (32 * sel);
    }
    CHECK(host & (1ull << VIRTIO_F_VERSION_1));
    for (unsigned sel = 0; sel < 2; sel++) {
        mw(d->common + VIRTIO_PCI_COMMON_GFSELECT, sel, 4);
        mw(d->common + VIRTIO_PCI_COMMON_GF, (uint32_t)(want >> (32 * sel)), 4);
    }
    mw(d->common + VIRTIO_PCI_COMMON_STATUS, status(d) | VIRTIO_CONFIG_S_FEATURES_OK, 1);
    return status(d) & VIRTIO_CONFIG_S_FEATURES_OK;
}

/* The avail ring's address goes in as two halves, the others as 64-bit
 * writes: the transport takes both. */
static inline void queue_setup(struct drv *d, unsigned q, struct test_ring *r, uint16_t vector)
{
    mw(d->common + VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
    mw(d->common + VIRTIO_PCI_COMMON_Q_SIZE, r->size, 2);
    mw(d->common + VIRTIO_PCI_COMMON_Q_DESCLO, r->desc, 8);
    mw(d->common + VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)r->avail, 4);
    mw(d->common + VIRTIO_PCI_COMMON_Q_AVAILHI, r->avail >> 32, 4);
    mw(d->common + VIRTIO_PCI_COMMON_Q_USEDLO, r->used, 8);
    mw(d->common + VIRTIO_PCI_COMMON_Q_MSIX, vector, 2);
    mw(d->common + VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

static inline void driver_ok(struct drv *d)
{
    mw(d->common + VIRTIO_PCI_COMMON_STATUS, status(d) | VIRTIO_CONFIG_S_DRIVER_OK, 1);
}

static inline void kick(struct drv *d, unsigned q)
{
    mw(d->notify + q * d->notify_mult, q, 2);
}

/* Waits (at most 5 s) for the device thread to bring the used index to `want`. */
static inline bool wait_used(struct test_ring *r, uint16_t want)
{
    for (int i = 0; i < 5000; i++) {
        if (tr_used_idx(r) == want)
            return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

/* Time for the device thread to act on a kick that must change nothing. */
static inline void settle(void)
{
    nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
}

#endif
