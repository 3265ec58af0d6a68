/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The PCI(e) host bridge: bus 0 only, config space through ports CF8/CFC and
 * through ECAM (MCFG), BARs placed by hv-vmm and movable by the guest.
 */
#ifndef HV_VMM_PCI_H
#define HV_VMM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

#define PCI_CFG_SIZE  4096
#define PCI_MAX_SLOTS 32
#define PCI_NR_BARS   6
#define PCI_NAME_MAX  32 /* a function's name, with its NUL */

/*
 * The IOAPIC pin (GSI) that INTx of a slot raises (pin 0 = INTA): pins 16-23,
 * swizzled by slot. The DSDT's _PRT (x86/acpi.c) tells the guest the same.
 */
#define PCI_INTX_GSI(slot, pin) (16u + (((unsigned)(slot) + (unsigned)(pin)) & 7u))

struct pci_bus;

struct pci_bar_def {
    uint64_t size; /* 0: no BAR; else a power of two (>= 16 for I/O, >= 4096 for memory) */
    bool is_io;
    bool is_64;    /* 64-bit memory BAR: also uses the next BAR slot */
    bool prefetch; /* memory BAR: prefetchable (bit 3) */
    io_handler_fn handler;
    void *opaque;
};

struct pci_device {
    /* Filled in by the device model before pci_register(). */
    const char *name;
    uint16_t vendor_id, device_id;
    uint16_t subsys_vendor_id, subsys_id;
    uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
    uint8_t revision;
    struct pci_bar_def bar_def[PCI_NR_BARS];
    /* Called after the guest wrote config space (under the device's cfg lock). */
    void (*config_written)(struct pci_device *dev, uint32_t off, uint32_t len);
    /*
     * Optional: called before the guest reads config space (under the cfg
     * lock), for registers whose value is computed at read time (virtio's
     * PCI_CFG access window).
     */
    void (*config_read)(struct pci_device *dev, uint32_t off, uint32_t len);
    void *opaque;

    /* Owned by pci.c. */
    uint8_t cfg[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE]; /* bits of cfg the guest may change */
    uint64_t bar_addr[PCI_NR_BARS];
    bool bar_mapped[PCI_NR_BARS];
    uint8_t slot;
    uint8_t last_cap; /* offset of the last capability, 0 if none */
    uint16_t cap_end; /* first config byte after the last capability */
    struct pci_bus *bus;
    pthread_mutex_t cfg_lock;
    uint8_t *cfg_poweron; /* cfg as registered: what a reset puts back */
    /*
     * True while pci_device_load() calls config_written: the bytes come from
     * a save file, not from a guest access, so a hook must not act on them
     * as it would on a guest write (virtio's PCI_CFG window).
     */
    bool loading;
};

struct state_in;
struct state_out;

/*
 * Append a capability to the device's list (before pci_register). body is
 * what follows the 2-byte header (ID, next); the new capability's offset is
 * returned in *offset. Capability bytes are read-only unless pci_set_wmask()
 * says otherwise.
 */
int pci_add_capability(struct pci_device *dev, uint8_t cap_id, const void *body, uint8_t body_len,
                       uint8_t *offset);
void pci_set_wmask(struct pci_device *dev, uint32_t off, const uint8_t *mask, uint32_t len);

/* Create the host bridge and hook CF8/CFC and ECAM on the given buses. */
int pci_bus_init(struct pci_bus **bus, struct io_bus *pio, struct io_bus *mmio);
void pci_bus_destroy(struct pci_bus *bus);

/*
 * Port 0xCF9 (reset control) sits inside the CF8 dword that pci.c owns: the
 * reset device hands its handler here instead of registering the port. It is
 * called for 1-byte accesses at 0xCF9 with off 0.
 */
void pci_bus_set_cf9_handler(struct pci_bus *bus, io_handler_fn handler, void *opaque);

/*
 * The host bridge at 00:00.0 (Q35 IDs; PCIEXBAR moves the ECAM, PAM bytes
 * are kept): firmware VMs reset, save and load it as a device of their own.
 */
struct pci_device *pci_host_bridge(struct pci_bus *bus);

/* Where bus 0's ECAM is decoded now (PCIEXBAR), 0 when it is off. */
uint64_t pci_bus_ecam_base(struct pci_bus *bus);

/* Where a device's BAR is now, 0 when it is not mapped (command bit off). */
uint64_t pci_bar_addr(struct pci_device *dev, unsigned bar);

/*
 * Keep slot (1-31) for the function registered under name (--pci-slot), so
 * that a layout does not move when devices are added before it: functions
 * without a reservation skip reserved slots. 0, -EINVAL (bad slot or name),
 * or -EEXIST (name or slot given twice, or the slot already used).
 */
int pci_bus_reserve(struct pci_bus *bus, const char *name, unsigned slot);
/*
 * The next reservation from *pos (start at 0) that no function took: its
 * name, its slot in *slot, *pos moved past it; NULL when there is none.
 */
const char *pci_bus_unused_reservation(struct pci_bus *bus, unsigned *pos, unsigned *slot);

/*
 * Place the device in its reserved slot, else in the lowest free one, then
 * allocate and map its BARs.
 */
int pci_register(struct pci_bus *bus, struct pci_device *dev);

/*
 * Config space back to what it was when the device was registered (command
 * register, BAR addresses, capabilities), BARs remapped to match, and the
 * device's config_written hook told. Not with the device's own locks held.
 */
void pci_device_reset(struct pci_device *dev);

/*
 * The function's guest-visible config space (state.h): the bytes up to the
 * last one the guest may write, and where each BAR is mapped. Load (vCPUs
 * stopped, before they ever run) refuses a byte whose read-only bits differ
 * from power-on, remaps the BARs as a guest write would, tells the
 * config_written hook about all of config space (with dev->loading set) and
 * checks the BARs ended up where they were. Not with the device's own locks
 * held. Returns 0, or -1 after state_fail() / state_in_fail().
 */
int pci_device_save(struct pci_device *dev, struct state_out *out);
int pci_device_load(struct pci_device *dev, struct state_in *in);

#endif
