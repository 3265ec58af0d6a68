// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: a hostile driver of the AHCI controller (hw/ahci.c,
 * hw/ahci_ata.c, hw/atapi.c) on a VM without KVM. Each input starts from a
 * fresh controller with a SATA disk on port 0 (a 1 MiB raw image in
 * /dev/shm) and a CD-ROM on port 1 (a 256 KiB image); unless its first byte
 * says otherwise the harness starts both ports as a driver's probe does.
 *
 * Input: byte 0 (bit 0: skip the start), then operations, byte 0 of each
 * picking one (low 3 bits) and a variant, then its operands:
 *   0  a command in a slot of port 0 or 1: the register FIS (an opcode from
 *      a list or raw, LBA, count, features, the C bit), the header (CFL, W,
 *      A, PRDTL), the table where it belongs or anywhere, up to 8 PRDs
 *      (in the data area, on a page maybe past RAM, or raw addresses and
 *      lengths), the ATAPI packet (an opcode from a list or raw, then raw
 *      bytes); PxSACT set for a queued one, PxCI rung
 *   1  a register write anywhere in ABAR (HBA or port), any value
 *   2  guest RAM: 8 bytes (command headers, tables, PRDs changing)
 *   3  a port stopped and started again, or a COMRESET
 *   4  PCI config: command register, MSI-X control, BAR 5
 *   5  a save/load round trip into a fresh controller, or a device reset
 *   6  several slots issued at once (PxCI with many bits)
 *   7  a register read anywhere in ABAR
 *
 * Checked besides ASan/UBSan: after a device reset the ports are stopped
 * and the controller writes nothing into (zeroed) guest RAM whatever the
 * guest rings; a saved controller loads into a fresh one and saves the
 * same bytes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "hw/ahci.h"
#include "hw/ahci_int.h"
#include "le.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "virtio/fuzz/vmfuzz.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CLB(p)   (0x10000 + 0x1000ull * (p))
#define FB(p)    (0x12000 + 0x1000ull * (p))
#define CT(slot) (0x20000 + 0x1000ull * (slot))
#define DATA     0x100000

/* Images on a tmpfs: two sets, the second for the round trip's controller. */
static char disk[2][64], cd[2][64];

struct h {
    struct vm vm;
    struct ahci *a;
    uint64_t abar;
};

static void cfg_write(struct vm *vm, unsigned off, uint32_t v, unsigned len)
{
    fz_bus_write(&vm->pio, 0xcf8, 0x80000000u | 1u << 11 | (off & 0xfc), 4);
    fz_bus_write(&vm->pio, 0xcfc + (off & 3), v, len);
}

static void reg_w(struct h *h, unsigned off, uint32_t v)
{
    fz_bus_write(&h->vm.mmio, h->abar + off, v, 4);
}

static void port_w(struct h *h, unsigned port, unsigned off, uint32_t v)
{
    reg_w(h, AHCI_PORT_BASE + AHCI_PORT_SIZE * port + off, v);
}

static void make(struct h *h, unsigned set)
{
    memset(h, 0, sizeof(*h));
    fz_vm_init(&h->vm);
    const struct vm_disk d = {.path = disk[set], .format = "raw"},
                         c = {.path = cd[set], .format = "raw"};
    const struct vm_disk *disks[] = {&d};
    if (ahci_create_dev(&h->vm, disks, 1, &c, &h->a) < 0)
        __builtin_trap();
    struct pci_device *p = ahci_pci(h->a);
    h->abar = le32_get(p->cfg + 0x10 + 4 * AHCI_ABAR) & ~0xfu;
    cfg_write(&h->vm, 0x04, 6, 2); /* memory decoding, bus master */
    cfg_write(&h->vm, h->a->msix.cap + 2, 0x8000, 2);
}

static void drop(struct h *h)
{
    devices_destroy(&h->vm);
    pci_bus_destroy(h->vm.pci);
    io_bus_destroy(&h->vm.pio);
    io_bus_destroy(&h->vm.mmio);
    guest_mem_destroy(&h->vm.mem);
    free(h->a);
}

static void start(struct h *h, unsigned port)
{
    port_w(h, port, PX_CMD, 0);
    port_w(h, port, PX_CLB, (uint32_t)CLB(port));
    port_w(h, port, PX_FB, (uint32_t)FB(port));
    port_w(h, port, PX_IE, 0xffffffff);
    port_w(h, port, PX_CMD, CMD_FRE | CMD_ST);
}

static uint64_t addr(struct fz *f)
{
    uint8_t b = fz_u8(f);
    switch (b & 3) {
    case 0:
        return DATA + (uint64_t)(fz_u16(f) & 0xfffe);
    case 1:
        return (uint64_t)(fz_u16(f) % (FZ_RAM / 4096 + 4)) * 4096; /* a page, maybe past RAM */
    case 2:
        return CT(fz_u8(f) & 31) + (fz_u8(f) & 0xfe);
    default:
        return fz_u64(f);
    }
}

static void put(struct h *h, uint64_t gpa, const void *p, size_t len)
{
    uint8_t *dst = guest_mem_ptr(&h->vm.mem, gpa, len);
    if (dst)
        memcpy(dst, p, len);
}

static void command(struct h *h, struct fz *f, uint8_t op)
{
    static const uint8_t ata[] = {0xec, 0x25, 0x35, 0x60, 0x61, 0xea, 0xe7, 0x06, 0xef,
                                  0xf8, 0x27, 0x2f, 0xc8, 0xca, 0x24, 0x34, 0xc6, 0x42,
                                  0xe5, 0xa0, 0xa1, 0x08, 0x20, 0x30, 0xe0};
    static const uint8_t scsi[] = {0x00, 0x03, 0x12, 0x1b, 0x1e, 0x25, 0x28,
                                   0xa8, 0x5a, 0x46, 0x43, 0x4a, 0xbd, 0x51};
    unsigned port = (op >> 3) & 1, slot = fz_u8(f) & 31;
    uint8_t fis[20] = {0x27, 0x80}, b = fz_u8(f);
    fis[2] = b & 0x80 ? fz_u8(f) : ata[b % sizeof(ata)];
    if (b & 0x40)
        fis[1] = fz_u8(f); /* the C bit and PM port, maybe a control FIS */
    for (unsigned i = 3; i < 16; i++)
        fis[i] = (b & 0x20) ? fz_u8(f) : 0;
    if (!(b & 0x20)) {
        uint32_t lba = fz_u32(f);
        fis[4] = (uint8_t)lba, fis[5] = (uint8_t)(lba >> 8), fis[6] = (uint8_t)(lba >> 16);
        fis[8] = (uint8_t)(lba >> 24);
        fis[12] = fz_u8(f);
        fis[3] = fz_u8(f);
        fis[7] = 0x40;
    }
    uint8_t cdb[16] = {0}, k = fz_u8(f);
    cdb[0] = k & 0x80 ? fz_u8(f) : scsi[k % sizeof(scsi)];
    for (unsigned i = 1; i < 12; i++)
        cdb[i] = fz_u8(f);

    uint8_t hflags = fz_u8(f);
    unsigned nprd = hflags & 7;
    uint32_t dw0 = (hflags & 8 ? fz_u8(f) & 0x1f : 5) | (hflags & 0x10 ? 1u << 5 : 0) |
                   (hflags & 0x20 ? 1u << 6 : 0) |
                   (uint32_t)(hflags & 0x40 ? fz_u16(f) : nprd) << 16;
    uint64_t ctba = hflags & 0x80 ? addr(f) : CT(slot);
    uint8_t hdr[32] = {0};
    le32_put(hdr, dw0);
    le64_put(hdr + 8, ctba);
    put(h, CLB(port) + 32 * slot, hdr, 32);
    put(h, ctba & ~0x7full, fis, 20);
    put(h, (ctba & ~0x7full) + 0x40, cdb, 16);
    for (unsigned i = 0; i < nprd; i++) {
        uint8_t e[16] = {0};
        uint8_t lb = fz_u8(f);
        le64_put(e, addr(f));
        le32_put(e + 12, lb & 0x80 ? fz_u32(f) : (uint32_t)(lb & 0x7f) * 512 + 511);
        put(h, (ctba & ~0x7full) + 0x80 + 16 * i, e, 16);
    }
    if (fis[2] == 0x60 || fis[2] == 0x61)
        port_w(h, port, PX_SACT, 1u << ((fis[12] >> 3) & 31));
    port_w(h, port, PX_CI, 1u << slot);
}

/* The controller's section, or trap. */
static void round_trip(struct h *h)
{
    struct state_out o;
    fz_save_device(&h->vm, h->a->name, &o);
    struct h *h2 = calloc(1, sizeof(*h2));
    make(h2, 1); /* the first disk image is locked by h */
    fz_load_compare(&h2->vm, h2->a->name, &o);
    drop(h2);
    free(h2);
    state_out_free(&o);
    devices_resume(&h->vm);
}

static void device_reset(struct h *h)
{
    devices_quiesce(&h->vm);
    devices_reset(&h->vm);
    devices_resume(&h->vm);
    memset(h->vm.mem.base, 0, h->vm.mem.size);
    cfg_write(&h->vm, 0x04, 6, 2);
    h->abar = ahci_pci(h->a)->bar_addr[AHCI_ABAR];
    for (unsigned p = 0; p < 2; p++) {
        if (fz_bus_read(&h->vm.mmio, h->abar + AHCI_PORT_BASE + AHCI_PORT_SIZE * p + PX_CMD, 4) &
            (CMD_ST | CMD_CR | CMD_FRE))
            __builtin_trap();
        port_w(h, p, PX_CI, 0xffffffff); /* the old lists: nothing happens */
    }
    if (!fz_ram_is_zero(&h->vm))
        __builtin_trap();
}

static void make_image(char *path, const char *name, unsigned size)
{
    snprintf(path, 64, "%s/hv-fuzz-%s-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm",
             name);
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, size) < 0)
        __builtin_trap();
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        if (!getenv("FUZZ_LOGS"))
            hv_log_set_level(HV_LOG_ERROR);
        for (unsigned i = 0; i < 2; i++) {
            make_image(disk[i], "ahci", 1 << 20);
            make_image(cd[i], "ahci-cd", 256 << 10);
        }
    }
    struct h *h = calloc(1, sizeof(*h));
    make(h, 0);
    struct fz f = {data, size};
    if (!(fz_u8(&f) & 1)) {
        reg_w(h, HBA_GHC, GHC_IE);
        start(h, 0);
        start(h, 1);
    }
    for (unsigned ops = 0; f.n && ops < 128; ops++) {
        uint8_t op = fz_u8(&f);
        switch (op & 7) {
        case 0:
            command(h, &f, op);
            break;
        case 1:
            reg_w(h, (fz_u16(&f) % AHCI_ABAR_SIZE) & ~3u, fz_u32(&f));
            break;
        case 2: {
            uint64_t a = fz_u32(&f) % FZ_RAM & ~7ull, v = fz_u64(&f);
            put(h, a, &v, 8);
            break;
        }
        case 3:
            if (op & 0x80) {
                port_w(h, (op >> 3) & 1, PX_SCTL, 1);
                port_w(h, (op >> 3) & 1, PX_SCTL, 0);
            } else {
                start(h, (op >> 3) & 1);
            }
            break;
        case 4: {
            static const unsigned offs[] = {0x04, 0x24, 0x20};
            uint8_t which = fz_u8(&f);
            if (which & 0x80)
                cfg_write(&h->vm, h->a->msix.cap + 2, fz_u16(&f), 2);
            else
                cfg_write(&h->vm, offs[which % 3], fz_u32(&f), 4);
            struct pci_device *p = ahci_pci(h->a);
            if (p->bar_addr[AHCI_ABAR] && p->bar_mapped[AHCI_ABAR])
                h->abar = p->bar_addr[AHCI_ABAR];
            break;
        }
        case 5:
            if (op & 0x80)
                device_reset(h);
            else
                round_trip(h);
            break;
        case 6:
            port_w(h, (op >> 3) & 1, PX_CI, fz_u32(&f));
            break;
        case 7:
            (void)fz_bus_read(&h->vm.mmio, h->abar + (fz_u16(&f) % AHCI_ABAR_SIZE),
                              fz_width(op >> 3));
            break;
        }
    }
    drop(h);
    free(h);
    return 0;
}
