/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --pci-slot (pci_bus_reserve): a function with a reservation is found by a
 * guest's config-space scan at its slot, functions without one skip reserved
 * slots, and bad or clashing reservations are refused.
 */
#include <errno.h>
#include <string.h>

#include "bus.h"
#include "check.h"
#include "le.h"
#include "pci.h"

static struct io_bus pio, mmio;
static struct pci_bus *bus;

/* What a guest reads at 00:slot.0 offset 0 through ports CF8/CFC. */
static uint32_t guest_id(unsigned slot)
{
    uint8_t addr[4], id[4] = {0};
    le32_put(addr, 0x80000000u | (slot << 11));
    io_bus_access(&pio, 0xcf8, addr, 4, true);
    io_bus_access(&pio, 0xcfc, id, 4, false);
    return le32_get(id);
}

static struct pci_device *make(struct pci_device *d, const char *name, uint16_t device_id)
{
    memset(d, 0, sizeof(*d));
    d->name = name;
    d->vendor_id = 0x1af4;
    d->device_id = device_id;
    d->class_code = 0xff0000;
    return d;
}

static void setup(void)
{
    io_bus_init(&pio, "pio");
    io_bus_init(&mmio, "mmio");
    CHECK(pci_bus_init(&bus, &pio, &mmio) == 0);
}

static void teardown(void)
{
    pci_bus_destroy(bus);
    io_bus_destroy(&pio);
    io_bus_destroy(&mmio);
}

static void test_reserved_slots_hold_their_place(void)
{
    struct pci_device a, b, c;
    unsigned slot = 0, pos = 0;

    setup();
    CHECK(pci_bus_reserve(bus, "disk-b", 5) == 0);
    CHECK(pci_bus_reserve(bus, "nic", 1) == 0);
    CHECK(pci_bus_unused_reservation(bus, &pos, &slot) && slot == 5);
    CHECK(pci_bus_unused_reservation(bus, &pos, &slot) && slot == 1);
    CHECK(!pci_bus_unused_reservation(bus, &pos, &slot));
    /* Registered first and without a reservation: it skips slot 1 (kept for "nic"). */
    CHECK(pci_register(bus, make(&a, "disk-a", 0x1001)) == 0 && a.slot == 2);
    CHECK(pci_register(bus, make(&b, "disk-b", 0x1002)) == 0 && b.slot == 5);
    pos = 0;
    CHECK(pci_bus_unused_reservation(bus, &pos, &slot) && slot == 1);
    CHECK(pci_register(bus, make(&c, "nic", 0x1003)) == 0 && c.slot == 1);
    pos = 0;
    CHECK(!pci_bus_unused_reservation(bus, &pos, &slot));
    CHECK(guest_id(1) == 0x10031af4 && guest_id(2) == 0x10011af4 && guest_id(5) == 0x10021af4);
    CHECK(guest_id(3) == 0xffffffff); /* nothing there */
    teardown();
}

static void test_bad_reservations(void)
{
    struct pci_device a, b;

    setup();
    CHECK(pci_bus_reserve(bus, "x", 0) == -EINVAL);  /* the host bridge's */
    CHECK(pci_bus_reserve(bus, "x", 32) == -EINVAL); /* off the bus */
    CHECK(pci_bus_reserve(bus, "a-name-far-too-long-for-a-pci-function", 3) == -EINVAL);
    CHECK(pci_bus_reserve(bus, "x", 3) == 0);
    CHECK(pci_bus_reserve(bus, "x", 4) == -EEXIST); /* the same device twice */
    CHECK(pci_bus_reserve(bus, "y", 3) == -EEXIST); /* the same slot twice */
    /* Two functions of one name: the second cannot have the slot as well. */
    CHECK(pci_register(bus, make(&a, "x", 0x1001)) == 0 && a.slot == 3);
    CHECK(pci_register(bus, make(&b, "x", 0x1002)) == -EBUSY);
    CHECK(guest_id(3) == 0x10011af4);
    /* A slot already in use cannot be reserved afterwards. */
    CHECK(pci_bus_reserve(bus, "z", 3) == -EEXIST);
    teardown();
}

int main(void)
{
    test_reserved_slots_hold_their_place();
    test_bad_reservations();
    CHECK_DONE();
}
