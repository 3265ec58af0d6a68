// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * PCI host bridge, bus 0: config space through CF8/CFC and ECAM, BAR sizing,
 * placement and moves. Config bytes the guest writes are filtered by each
 * device's wmask, which is also what makes BAR sizing work: writing all ones
 * to a BAR leaves exactly the size mask and the read-only type bits.
 */
#include "pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"
#include "log.h"
#include "mem.h"
#include "state.h"
#include "util.h"

#define PCI_IO_BASE  0xC000
#define PCI_IO_LIMIT 0x10000

/* Standard header offsets and bits. */
#define CFG_VENDOR     0x00
#define CFG_COMMAND    0x04
#define CFG_STATUS     0x06
#define CFG_REVISION   0x08
#define CFG_CLASS      0x09
#define CFG_CACHE_LINE 0x0C
#define CFG_HDR_TYPE   0x0E
#define CFG_BAR0       0x10
#define CFG_SUBSYS     0x2C
#define CFG_CAP_PTR    0x34
#define CFG_INT_LINE   0x3C
#define CMD_IO         0x0001
#define CMD_MEM        0x0002
#define CMD_MASTER     0x0004
#define CMD_INTX_OFF   0x0400
#define STATUS_CAPS    0x0010

struct pci_bus {
    struct io_bus *pio, *mmio;
    pthread_mutex_t lock; /* cf8, slots, allocators */
    uint32_t cf8;
    struct pci_device *slots[PCI_MAX_SLOTS];
    struct pci_device host;
    uint64_t mmio_next;
    uint32_t io_next;
    io_handler_fn cf9_handler;
    /* --pci-slot: a slot kept for the function of that name; others skip it */
    struct pci_reservation {
        char name[PCI_NAME_MAX];
        unsigned slot;
        bool taken;
    } reserved[PCI_MAX_SLOTS];
    unsigned nr_reserved;
    void *cf9_opaque;
    uint64_t ecam_base; /* where the ECAM decodes now, 0: off (PCIEXBAR) */
};

/*
 * Q35 host bridge registers that firmware programs: PCIEXBAR moves the ECAM
 * window (SeaBIOS and OVMF put it at 0xB0000000); the PAM bytes are kept for
 * the firmware to read back, but 0xC0000-0xFFFFF stays RAM whatever they say.
 */
#define HOST_PCIEXBAR     0x60 /* 8 bytes: base 31:28 (+ 35:32 high), length 2:1, enable 0 */
#define HOST_PCIEXBAR_EN  0x1
#define HOST_PCIEXBAR_LEN 0x6 /* 0: 256 buses; we decode bus 0 only whatever it says */
#define HOST_PAM0         0x90
#define HOST_NR_PAM       7

void pci_set_wmask(struct pci_device *dev, uint32_t off, const uint8_t *mask, uint32_t len)
{
    if (!range_within(off, len, PCI_CFG_SIZE))
        return;
    memcpy(dev->wmask + off, mask, len);
}

int pci_add_capability(struct pci_device *dev, uint8_t cap_id, const void *body, uint8_t body_len,
                       uint8_t *offset)
{
    uint32_t off = dev->cap_end ? align_up(dev->cap_end, 4) : 0x40;
    if (off + 2 + body_len > 0x100) {
        log_err("%s: no room left in PCI config space for capability 0x%x", dev->name, cap_id);
        return -ENOSPC;
    }
    dev->cfg[off] = cap_id;
    dev->cfg[off + 1] = 0;
    memcpy(dev->cfg + off + 2, body, body_len);
    if (dev->last_cap)
        dev->cfg[dev->last_cap + 1] = (uint8_t)off;
    else
        dev->cfg[CFG_CAP_PTR] = (uint8_t)off;
    dev->last_cap = (uint8_t)off;
    dev->cap_end = (uint16_t)(off + 2 + body_len);
    if (offset)
        *offset = (uint8_t)off;
    return 0;
}

/* The address a BAR decodes now, from the config bytes (64-bit BARs span two). */
static uint64_t bar_decode(const struct pci_device *dev, unsigned i)
{
    const struct pci_bar_def *d = &dev->bar_def[i];
    uint32_t lo = le32_get(dev->cfg + CFG_BAR0 + 4 * i);
    if (d->is_io)
        return lo & ~UINT32_C(3);
    uint64_t a = lo & ~UINT32_C(0xf);
    if (d->is_64 && i + 1 < PCI_NR_BARS)
        a |= (uint64_t)le32_get(dev->cfg + CFG_BAR0 + 4 * (i + 1)) << 32;
    return a;
}

/* Whether the BAR may decode at addr: enabled, non-zero and not wrapping. */
static bool bar_usable(const struct pci_device *dev, unsigned i, uint64_t addr)
{
    const struct pci_bar_def *d = &dev->bar_def[i];
    uint16_t cmd = dev->cfg[CFG_COMMAND] | dev->cfg[CFG_COMMAND + 1] << 8;
    if (!(cmd & (d->is_io ? CMD_IO : CMD_MEM)) || addr == 0)
        return false;
    if (d->is_io)
        return addr + d->size <= PCI_IO_LIMIT;
    return addr + d->size > addr;
}

/* Bring each BAR's bus mapping in line with the command register and address. */
static void update_bars(struct pci_device *dev)
{
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        const struct pci_bar_def *d = &dev->bar_def[i];
        if (!d->size)
            continue;
        struct io_bus *bus = d->is_io ? dev->bus->pio : dev->bus->mmio;
        uint64_t addr = bar_decode(dev, i);
        bool want = bar_usable(dev, i, addr);

        if (dev->bar_mapped[i] && (!want || addr != dev->bar_addr[i])) {
            if (want && io_bus_move(bus, dev->bar_addr[i], addr) == 0) {
                dev->bar_addr[i] = addr;
                continue;
            }
            io_bus_unregister(bus, dev->bar_addr[i]);
            dev->bar_mapped[i] = false;
        }
        if (!dev->bar_mapped[i] && want) {
            /* An overlap is the guest's mistake: leave the BAR unmapped. */
            if (io_bus_register(bus, addr, d->size, d->handler, d->opaque) == 0) {
                dev->bar_addr[i] = addr;
                dev->bar_mapped[i] = true;
            }
        }
    }
}

uint64_t pci_bar_addr(struct pci_device *dev, unsigned bar)
{
    if (bar >= PCI_NR_BARS || !dev->bar_mapped[bar])
        return 0;
    return dev->bar_addr[bar];
}

static bool overlaps(uint32_t off, uint32_t len, uint32_t start, uint32_t end)
{
    return off < end && start < off + len;
}

/* One config access of len bytes at off, already checked to be within 4 KiB. */
static void cfg_access(struct pci_device *dev, uint32_t off, uint8_t *data, uint32_t len,
                       bool is_write)
{
    pthread_mutex_lock(&dev->cfg_lock);
    if (!is_write) {
        if (dev->config_read)
            dev->config_read(dev, off, len);
        memcpy(data, dev->cfg + off, len);
    } else {
        for (uint32_t i = 0; i < len; i++) {
            uint8_t m = dev->wmask[off + i];
            dev->cfg[off + i] = (dev->cfg[off + i] & ~m) | (data[i] & m);
        }
        if (overlaps(off, len, CFG_COMMAND, CFG_COMMAND + 2) ||
            overlaps(off, len, CFG_BAR0, CFG_BAR0 + 4 * PCI_NR_BARS))
            update_bars(dev);
        if (dev->config_written)
            dev->config_written(dev, off, len);
    }
    pthread_mutex_unlock(&dev->cfg_lock);
}

/* Route a bus-0 config access; absent devices and functions read all ones. */
static void cfg_dispatch(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t reg,
                         uint8_t *data, uint32_t len, bool is_write)
{
    struct pci_device *dev = NULL;
    pthread_mutex_lock(&bus->lock);
    if (slot < PCI_MAX_SLOTS && fn == 0)
        dev = bus->slots[slot];
    pthread_mutex_unlock(&bus->lock);
    if (!dev || !range_within(reg, len, PCI_CFG_SIZE)) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    cfg_access(dev, reg, data, len, is_write);
}

static void ecam_handler(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct pci_bus *bus = opaque;
    unsigned slot = (off >> 15) & 31, fn = (off >> 12) & 7;
    uint32_t reg = off & 0xfff;
    if (len == 8) { /* PCIe allows no 8-byte config access: split it */
        cfg_dispatch(bus, slot, fn, reg, data, 4, is_write);
        cfg_dispatch(bus, slot, fn, reg + 4, data + 4, 4, is_write);
        return;
    }
    cfg_dispatch(bus, slot, fn, reg, data, len, is_write);
}

/* Ports 0xCF8-0xCFF: address register, reset control (0xCF9), data window. */
static void cf8_handler(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct pci_bus *bus = opaque;

    if (off == 0 && len == 4) {
        pthread_mutex_lock(&bus->lock);
        if (is_write)
            bus->cf8 = le32_get(data);
        else
            le32_put(data, bus->cf8);
        pthread_mutex_unlock(&bus->lock);
        return;
    }
    if (off == 1 && len == 1 && bus->cf9_handler) {
        bus->cf9_handler(bus->cf9_opaque, 0, data, len, is_write);
        return;
    }
    if (off < 4 || len > 4 || off + len > 8) {
        if (!is_write)
            memset(data, 0, len);
        return;
    }

    pthread_mutex_lock(&bus->lock);
    uint32_t a = bus->cf8;
    pthread_mutex_unlock(&bus->lock);
    unsigned busno = (a >> 16) & 0xff, slot = (a >> 11) & 31, fn = (a >> 8) & 7;
    /* Bits 27:24 extend the register number (the AMD way) to reach 4 KiB. */
    uint32_t reg = (a & 0xfc) | ((a >> 16) & 0xf00) | (uint32_t)(off - 4);
    if (!(a & 0x80000000u) || busno != 0) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    cfg_dispatch(bus, slot, fn, reg, data, len, is_write);
}

void pci_bus_set_cf9_handler(struct pci_bus *bus, io_handler_fn handler, void *opaque)
{
    bus->cf9_handler = handler;
    bus->cf9_opaque = opaque;
}

/* Header fields and write masks common to every function we emulate. */
static void init_header(struct pci_device *dev)
{
    uint8_t *c = dev->cfg;
    le16_put(c + CFG_VENDOR, dev->vendor_id);
    le16_put(c + CFG_VENDOR + 2, dev->device_id);
    le16_put(c + CFG_STATUS, dev->last_cap ? STATUS_CAPS : 0);
    c[CFG_REVISION] = dev->revision;
    c[CFG_CLASS] = dev->class_code & 0xff;
    c[CFG_CLASS + 1] = (dev->class_code >> 8) & 0xff;
    c[CFG_CLASS + 2] = (dev->class_code >> 16) & 0xff;
    c[CFG_HDR_TYPE] = 0;
    le16_put(c + CFG_SUBSYS, dev->subsys_vendor_id);
    le16_put(c + CFG_SUBSYS + 2, dev->subsys_id);

    uint16_t cmd_mask = CMD_IO | CMD_MEM | CMD_MASTER | CMD_INTX_OFF;
    le16_put(dev->wmask + CFG_COMMAND, cmd_mask);
    dev->wmask[CFG_CACHE_LINE] = 0xff;
    dev->wmask[CFG_CACHE_LINE + 1] = 0xff; /* latency timer */
    dev->wmask[CFG_INT_LINE] = 0xff;
}

static int alloc_bars(struct pci_bus *bus, struct pci_device *dev)
{
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        struct pci_bar_def *d = &dev->bar_def[i];
        if (!d->size)
            continue;
        uint64_t min = d->is_io ? 16 : 4096;
        if (d->size < min || (d->size & (d->size - 1)) || (d->is_64 && i + 1 >= PCI_NR_BARS)) {
            log_err("%s: BAR %u has an invalid size or type", dev->name, i);
            return -EINVAL;
        }
        uint8_t *bar = dev->cfg + CFG_BAR0 + 4 * i;
        uint8_t *mask = dev->wmask + CFG_BAR0 + 4 * i;
        uint64_t addr;
        if (d->is_io) {
            addr = align_up(bus->io_next, d->size);
            if (addr + d->size > PCI_IO_LIMIT)
                goto full;
            bus->io_next = (uint32_t)(addr + d->size);
            le32_put(bar, (uint32_t)addr | 1);
            le32_put(mask, (uint32_t) ~(d->size - 1) & ~UINT32_C(3));
        } else {
            addr = align_up(bus->mmio_next, d->size);
            if (addr + d->size > MEM_PCI_MMIO_BASE + MEM_PCI_MMIO_SIZE)
                goto full;
            bus->mmio_next = addr + d->size;
            le32_put(bar, (uint32_t)addr | (d->is_64 ? 4 : 0) | (d->prefetch ? 8 : 0));
            le32_put(mask, (uint32_t) ~(d->size - 1) & ~UINT32_C(0xf));
            if (d->is_64) {
                le32_put(bar + 4, 0);
                le32_put(mask + 4, (uint32_t)(~(d->size - 1) >> 32));
                i++;
            }
        }
    }
    return 0;
full:
    log_err("%s: the PCI %s window is full", dev->name, "BAR");
    return -ENOSPC;
}

static struct pci_reservation *find_reservation(struct pci_bus *bus, const char *name)
{
    for (unsigned i = 0; i < bus->nr_reserved; i++)
        if (strcmp(bus->reserved[i].name, name) == 0)
            return &bus->reserved[i];
    return NULL;
}

static bool slot_reserved(const struct pci_bus *bus, unsigned slot)
{
    for (unsigned i = 0; i < bus->nr_reserved; i++)
        if (bus->reserved[i].slot == slot)
            return true;
    return false;
}

int pci_bus_reserve(struct pci_bus *bus, const char *name, unsigned slot)
{
    int ret = 0;

    pthread_mutex_lock(&bus->lock);
    if (slot == 0 || slot >= PCI_MAX_SLOTS || strlen(name) >= PCI_NAME_MAX ||
        bus->nr_reserved == PCI_MAX_SLOTS)
        ret = -EINVAL;
    else if (find_reservation(bus, name) || slot_reserved(bus, slot) || bus->slots[slot])
        ret = -EEXIST;
    if (ret == 0) {
        struct pci_reservation *r = &bus->reserved[bus->nr_reserved++];
        snprintf(r->name, sizeof(r->name), "%s", name);
        r->slot = slot;
        r->taken = false;
    }
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

const char *pci_bus_unused_reservation(struct pci_bus *bus, unsigned *pos, unsigned *slot)
{
    const char *name = NULL;

    pthread_mutex_lock(&bus->lock);
    for (unsigned i = *pos; i < bus->nr_reserved && !name; i++) {
        if (!bus->reserved[i].taken) {
            name = bus->reserved[i].name;
            *slot = bus->reserved[i].slot;
            *pos = i + 1;
        }
    }
    pthread_mutex_unlock(&bus->lock);
    return name;
}

int pci_register(struct pci_bus *bus, struct pci_device *dev)
{
    int ret;

    pthread_mutex_lock(&bus->lock);
    struct pci_reservation *r = find_reservation(bus, dev->name);
    unsigned slot = 0;
    if (r) {
        slot = r->slot;
        if (r->taken || bus->slots[slot]) {
            pthread_mutex_unlock(&bus->lock);
            log_err("%s: PCI slot %02x (--pci-slot) is taken by %s", dev->name, slot,
                    bus->slots[slot] ? bus->slots[slot]->name : "another function of that name");
            return -EBUSY;
        }
        r->taken = true;
    } else {
        while (slot < PCI_MAX_SLOTS && (bus->slots[slot] || slot_reserved(bus, slot)))
            slot++;
    }
    if (slot == PCI_MAX_SLOTS) {
        pthread_mutex_unlock(&bus->lock);
        log_err("%s: no free PCI slot (at most %d devices)", dev->name, PCI_MAX_SLOTS - 1);
        return -ENOSPC;
    }
    dev->bus = bus;
    dev->slot = (uint8_t)slot;
    pthread_mutex_init(&dev->cfg_lock, NULL);
    init_header(dev);
    ret = alloc_bars(bus, dev);
    if (ret == 0 && !(dev->cfg_poweron = malloc(PCI_CFG_SIZE)))
        ret = -ENOMEM;
    if (ret == 0) {
        memcpy(dev->cfg_poweron, dev->cfg, PCI_CFG_SIZE);
        bus->slots[slot] = dev;
    }
    pthread_mutex_unlock(&bus->lock);
    if (ret == 0)
        log_debug("pci: %s at 00:%02x.0", dev->name, slot);
    return ret;
}

/* Where PCIEXBAR asks for the ECAM, 0 when disabled or out of our reach. */
static uint64_t pciexbar_decode(const struct pci_device *h)
{
    uint32_t lo = le32_get(h->cfg + HOST_PCIEXBAR), hi = le32_get(h->cfg + HOST_PCIEXBAR + 4);
    if (!(lo & HOST_PCIEXBAR_EN) || hi != 0)
        return 0;
    return lo & UINT32_C(0xf0000000);
}

/* The guest wrote the host bridge's config space (or it was reset or loaded): follow PCIEXBAR. */
static void host_config_written(struct pci_device *h, uint32_t off, uint32_t len)
{
    (void)off;
    (void)len;
    struct pci_bus *bus = h->opaque;
    uint64_t want = pciexbar_decode(h);
    if (want == bus->ecam_base)
        return;
    if (bus->ecam_base)
        io_bus_unregister(bus->mmio, bus->ecam_base);
    bus->ecam_base = 0;
    if (want && io_bus_register(bus->mmio, want, MEM_PCI_ECAM_SIZE, ecam_handler, bus) == 0)
        bus->ecam_base = want;
    else if (want)
        log_warn_limited("pci: the guest put the ECAM at 0x%llx, over something else: it is off",
                         (unsigned long long)want);
}

struct pci_device *pci_host_bridge(struct pci_bus *bus)
{
    return &bus->host;
}

uint64_t pci_bus_ecam_base(struct pci_bus *bus)
{
    /* host_config_written moves it under the host bridge's config lock. */
    pthread_mutex_lock(&bus->host.cfg_lock);
    uint64_t base = bus->ecam_base;
    pthread_mutex_unlock(&bus->host.cfg_lock);
    return base;
}

int pci_bus_init(struct pci_bus **out, struct io_bus *pio, struct io_bus *mmio)
{
    struct pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return -ENOMEM;
    bus->pio = pio;
    bus->mmio = mmio;
    bus->mmio_next = MEM_PCI_MMIO_BASE;
    bus->io_next = PCI_IO_BASE;
    pthread_mutex_init(&bus->lock, NULL);

    /* Slot 0: a host bridge with Q35's IDs (8086:29c0), class 06.00.00. */
    struct pci_device *h = &bus->host;
    h->name = "host-bridge";
    h->vendor_id = 0x8086;
    h->device_id = 0x29c0;
    h->subsys_vendor_id = 0x1af4;
    h->subsys_id = 0x1100;
    h->class_code = 0x060000;
    h->config_written = host_config_written;
    h->opaque = bus;
    /* PCIEXBAR at power-on: hv's own ECAM (the MCFG of x86/acpi.c), enabled. */
    le32_put(h->cfg + HOST_PCIEXBAR, (uint32_t)MEM_PCI_ECAM_BASE | HOST_PCIEXBAR_EN);
    static const uint8_t pciexbar_mask[8] = {0x07, 0x00, 0x00, 0xf0, 0x0f, 0, 0, 0};
    static const uint8_t pam_mask[HOST_NR_PAM] = {0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33};
    pci_set_wmask(h, HOST_PCIEXBAR, pciexbar_mask, sizeof(pciexbar_mask));
    pci_set_wmask(h, HOST_PAM0, pam_mask, sizeof(pam_mask));
    int ret = pci_register(bus, h);
    if (ret == 0)
        ret = io_bus_register(pio, 0xcf8, 8, cf8_handler, bus);
    if (ret == 0) {
        ret = io_bus_register(mmio, MEM_PCI_ECAM_BASE, MEM_PCI_ECAM_SIZE, ecam_handler, bus);
        if (ret)
            io_bus_unregister(pio, 0xcf8);
        else
            bus->ecam_base = MEM_PCI_ECAM_BASE;
    }
    if (ret) {
        log_err("cannot set up the PCI host bridge: %s", strerror(-ret));
        pthread_mutex_destroy(&bus->lock);
        free(bus);
        return ret;
    }
    *out = bus;
    return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    if (!bus)
        return;
    io_bus_unregister(bus->pio, 0xcf8);
    if (bus->ecam_base)
        io_bus_unregister(bus->mmio, bus->ecam_base);
    for (unsigned i = 0; i < PCI_MAX_SLOTS; i++) {
        struct pci_device *dev = bus->slots[i];
        if (!dev)
            continue;
        for (unsigned b = 0; b < PCI_NR_BARS; b++) {
            if (dev->bar_mapped[b])
                io_bus_unregister(dev->bar_def[b].is_io ? bus->pio : bus->mmio, dev->bar_addr[b]);
        }
        free(dev->cfg_poweron);
        dev->cfg_poweron = NULL;
    }
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

void pci_device_reset(struct pci_device *dev)
{
    if (!dev->cfg_poweron)
        return;
    pthread_mutex_lock(&dev->cfg_lock);
    memcpy(dev->cfg, dev->cfg_poweron, PCI_CFG_SIZE);
    update_bars(dev);
    if (dev->config_written)
        dev->config_written(dev, 0, 0x40);
    pthread_mutex_unlock(&dev->cfg_lock);
}

/* ---- save / restore ---- */

/* One past the last config byte the guest may change: what a save must keep. */
static uint32_t writable_len(const struct pci_device *dev)
{
    uint32_t n = PCI_CFG_SIZE;
    while (n > 0 && !dev->wmask[n - 1])
        n--;
    return n;
}

int pci_device_save(struct pci_device *dev, struct state_out *out)
{
    pthread_mutex_lock(&dev->cfg_lock);
    uint32_t n = writable_len(dev);
    state_put_u16(out, (uint16_t)n);
    state_put_bytes(out, dev->cfg, n);
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        state_put_bool(out, dev->bar_mapped[i]);
        state_put_u64(out, dev->bar_mapped[i] ? dev->bar_addr[i] : 0);
    }
    pthread_mutex_unlock(&dev->cfg_lock);
    return out->failed ? -1 : 0;
}

int pci_device_load(struct pci_device *dev, struct state_in *in)
{
    uint8_t cfg[PCI_CFG_SIZE];
    bool mapped[PCI_NR_BARS];
    uint64_t addr[PCI_NR_BARS];

    if (!dev->cfg_poweron)
        return state_in_fail(in, "%s is not on the PCI bus", dev->name);
    uint32_t n = state_get_u16(in);
    if (n > PCI_CFG_SIZE)
        return state_in_fail(in, "%u bytes of PCI config space saved, at most %u", n, PCI_CFG_SIZE);
    memcpy(cfg, dev->cfg_poweron, PCI_CFG_SIZE);
    state_get_bytes(in, cfg, n);
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        mapped[i] = state_get_bool(in);
        addr[i] = state_get_u64(in);
    }
    if (!state_in_ok(in))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        if ((cfg[i] ^ dev->cfg_poweron[i]) & ~dev->wmask[i])
            return state_in_fail(in,
                                 "PCI config byte 0x%x is 0x%02x, but only bits 0x%02x of it "
                                 "may differ from 0x%02x",
                                 i, cfg[i], dev->wmask[i], dev->cfg_poweron[i]);
    }
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        const struct pci_bar_def *d = &dev->bar_def[i];
        if (mapped[i] &&
            (!d->size || addr[i] == 0 || addr[i] & (d->size - 1) || addr[i] + d->size < addr[i]))
            return state_in_fail(in, "PCI BAR %u is saved mapped at 0x%llx, which it cannot be", i,
                                 (unsigned long long)addr[i]);
    }

    /*
     * No other function is in the way: a function not loaded yet decodes
     * nothing (command register 0 at power-on), and the loaded ones are where
     * they were when the save, which had no overlap, was made.
     */
    pthread_mutex_lock(&dev->cfg_lock);
    memcpy(dev->cfg, cfg, PCI_CFG_SIZE);
    /* From scratch: one pass must also place BARs the guest swapped among themselves. */
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        if (dev->bar_mapped[i])
            io_bus_unregister(dev->bar_def[i].is_io ? dev->bus->pio : dev->bus->mmio,
                              dev->bar_addr[i]);
        dev->bar_mapped[i] = false;
    }
    update_bars(dev);
    if (dev->config_written) {
        dev->loading = true;
        dev->config_written(dev, 0, PCI_CFG_SIZE);
        dev->loading = false;
    }
    int ret = 0;
    for (unsigned i = 0; i < PCI_NR_BARS && ret == 0; i++) {
        if (dev->bar_mapped[i] == mapped[i] && (!mapped[i] || dev->bar_addr[i] == addr[i]))
            continue;
        char was[32] = "unmapped", now[32] = "unmapped";
        if (mapped[i])
            snprintf(was, sizeof(was), "at 0x%llx", (unsigned long long)addr[i]);
        if (dev->bar_mapped[i])
            snprintf(now, sizeof(now), "at 0x%llx", (unsigned long long)dev->bar_addr[i]);
        ret = state_in_fail(
            in, "PCI BAR %u was %s when saved, its restored config space puts it %s", i, was, now);
    }
    pthread_mutex_unlock(&dev->cfg_lock);
    return ret;
}
