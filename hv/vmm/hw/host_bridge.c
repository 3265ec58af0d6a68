/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host bridge at 00:00.0 as a device on the VM's list: firmware programs
 * its PCIEXBAR and PAM registers (pci.c), so a reboot must put them back and
 * a save must keep them; and it is \_SB.PCI0 in the DSDT, with the windows
 * the guest's PCI devices live in and the INTx routing.
 */
#include "host_bridge.h"

#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "pci.h"
#include "util.h"
#include "vm.h"
#include "x86/aml.h"

/*
 * With firmware, its own BAR window: SeaBIOS and OVMF put the ECAM at
 * 0xB0000000 (256 MiB) and their BARs between its end and the IOAPIC.
 */
#define FIRMWARE_PCI_MMIO_BASE UINT64_C(0xC0000000)
#define FIRMWARE_PCI_MMIO_END  MEM_IOAPIC_BASE

struct host_bridge {
    struct device dev;
    struct pci_device *pci;
};

static struct pci_device *of(struct device *d)
{
    return ((struct host_bridge *)d->priv)->pci;
}

static void hb_reset(struct device *d)
{
    pci_device_reset(of(d));
}

static int hb_save(struct device *d, struct state_out *out)
{
    return pci_device_save(of(d), out);
}

static int hb_load(struct device *d, struct state_in *in)
{
    return pci_device_load(of(d), in);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * The resources: bus 0, CF8-CFF, the I/O and 32-bit MMIO windows. A buffer
 * of fixed size whatever the window, so the DSDT's size does not change.
 */
static void host_bridge_crs(struct aml *a, uint64_t mmio_base, uint64_t mmio_size)
{
    uint8_t r[128];
    size_t n = 0;

    /* Word bus number: producer, min/max fixed, bus 0..0. */
    static const uint8_t bus[] = {0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00};
    memcpy(r + n, bus, sizeof(bus));
    n += sizeof(bus);
    /* IO(Decode16, 0xCF8, 0xCF8, 1, 8): the config ports themselves. */
    static const uint8_t cf8[] = {0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08};
    memcpy(r + n, cf8, sizeof(cf8));
    n += sizeof(cf8);
    /* Word I/O windows around them. */
    static const uint16_t io[][2] = {{0x0000, 0x0cf7}, {0x0d00, 0xffff}};
    for (size_t i = 0; i < ARRAY_SIZE(io); i++) {
        uint8_t *d = r + n;
        memset(d, 0, 16);
        d[0] = 0x88;
        d[1] = 0x0d;
        d[3] = 0x01; /* I/O range */
        d[4] = 0x0c; /* min and max fixed */
        d[5] = 0x03; /* entire range */
        put_le(d + 8, io[i][0], 2);
        put_le(d + 10, io[i][1], 2);
        put_le(d + 14, io[i][1] - io[i][0] + 1u, 2);
        n += 16;
    }
    /* DWord memory: the 32-bit BAR window. */
    uint8_t *d = r + n;
    memset(d, 0, 26);
    d[0] = 0x87;
    d[1] = 0x17;
    d[3] = 0x00; /* memory range */
    d[4] = 0x0c;
    d[5] = 0x01; /* read-write, non-cacheable */
    put_le(d + 10, mmio_base, 4);
    put_le(d + 14, mmio_base + mmio_size - 1, 4);
    put_le(d + 22, mmio_size, 4);
    n += 26;
    r[n++] = 0x79; /* end tag, checksum 0 */
    r[n++] = 0x00;
    aml_buffer(a, r, n);
}

/* _PRT: INTx of every slot straight to IOAPIC pins 16-23, as PCI_INTX_GSI says. */
static void host_bridge_prt(struct aml *a)
{
    aml_name(a, "_PRT");
    size_t prt = aml_package_open(a, (PCI_MAX_SLOTS - 1) * 4);
    for (unsigned slot = 1; slot < PCI_MAX_SLOTS; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            size_t e = aml_package_open(a, 4);
            aml_integer(a, (uint64_t)slot << 16 | 0xffff);
            aml_integer(a, pin);
            aml_integer(a, 0); /* no link device: the last field is the GSI */
            aml_integer(a, PCI_INTX_GSI(slot, pin));
            aml_close(a, e);
        }
    }
    aml_close(a, prt);
}

static void hb_aml(struct device *d, struct aml *a)
{
    bool firmware = d->vm && d->vm->fw;
    uint64_t base = firmware ? FIRMWARE_PCI_MMIO_BASE : MEM_PCI_MMIO_BASE;
    uint64_t size = firmware ? FIRMWARE_PCI_MMIO_END - base : MEM_PCI_MMIO_SIZE;

    size_t sb = aml_scope_open(a, "\\_SB_");
    size_t dev = aml_device_open(a, "PCI0");
    aml_name(a, "_HID");
    aml_eisaid(a, "PNP0A08"); /* PCI Express root bridge */
    aml_name(a, "_CID");
    aml_eisaid(a, "PNP0A03");
    aml_name(a, "_ADR");
    aml_integer(a, 0);
    aml_name(a, "_SEG");
    aml_integer(a, 0);
    aml_name(a, "_BBN");
    aml_integer(a, 0);
    aml_name(a, "_UID");
    aml_integer(a, 0);
    aml_name(a, "_CRS");
    host_bridge_crs(a, base, size);
    host_bridge_prt(a);
    aml_close(a, dev);
    aml_close(a, sb);
}

static void hb_destroy(struct device *d)
{
    free(d->priv);
}

static const struct device_ops host_bridge_ops = {
    .reset = hb_reset,
    .destroy = hb_destroy,
    .save = hb_save,
    .load = hb_load,
    .aml = hb_aml,
};

int host_bridge_attach(struct vm *vm)
{
    struct host_bridge *hb = calloc(1, sizeof(*hb));
    if (!hb)
        return -1;
    hb->pci = pci_host_bridge(vm->pci);
    device_add(vm, &hb->dev, &host_bridge_ops, "host-bridge", 0, hb);
    return 0;
}
