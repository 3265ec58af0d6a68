/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "acpi.h"

#include <stdbool.h>
#include <string.h>

#include "aml.h"
#include "devices.h"
#include "hw/i8042.h"
#include "log.h"
#include "pci.h"
#include "util.h"

#define ACPI_HDR_LEN 36
#define IOAPIC_ID    0

/* A little-endian writer over the caller's buffer, never past its end. */
struct tbuf {
    uint8_t *p;
    size_t cap, len;
    bool full;
};

static uint8_t *tb_reserve(struct tbuf *t, size_t n)
{
    if (t->full || n > t->cap - t->len) {
        t->full = true;
        return NULL;
    }
    uint8_t *r = t->p + t->len;
    memset(r, 0, n);
    t->len += n;
    return r;
}

static void put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

/* Start a table (16-byte aligned); returns its offset in the buffer. */
static size_t table_begin(struct tbuf *t, const char *sig, uint8_t rev)
{
    tb_reserve(t, align_up(t->len, 16) - t->len);
    size_t off = t->len;
    uint8_t *h = tb_reserve(t, ACPI_HDR_LEN);
    if (!h)
        return off;
    memcpy(h, sig, 4);
    h[8] = rev;
    memcpy(h + 10, "HVHV  ", 6);
    memcpy(h + 16, "HVVMM   ", 8);
    put(h + 24, 1, 4);
    memcpy(h + 28, "HVMM", 4);
    put(h + 32, 1, 4);
    return off;
}

/* Set the length and checksum of the table of len bytes at off. */
static void table_seal(struct tbuf *t, size_t off, size_t len)
{
    if (t->full)
        return;
    uint8_t *h = t->p + off;
    put(h + 4, len, 4);
    h[9] = 0;
    h[9] = (uint8_t)(0x100 - acpi_checksum(h, len));
}

/* The table that started at off ends here. */
static void table_end(struct tbuf *t, size_t off)
{
    table_seal(t, off, t->len - off);
}

/* Generic Address Structure in system I/O space. */
static void put_gas_io(uint8_t *p, uint8_t bits, uint8_t access, uint16_t port)
{
    p[0] = 1; /* system I/O */
    p[1] = bits;
    p[2] = 0;
    p[3] = access; /* 1 byte, 2 word, 3 dword */
    put(p + 4, port, 8);
}

static void build_fadt(struct tbuf *t, uint64_t gpa, uint64_t facs, uint64_t dsdt)
{
    size_t off = table_begin(t, "FACP", 6);
    uint8_t *f = tb_reserve(t, 276 - ACPI_HDR_LEN);
    if (!f)
        return;
    f -= ACPI_HDR_LEN;
    put(f + 36, facs, 4);
    put(f + 40, dsdt, 4);
    put(f + 46, PM_SCI_IRQ, 2);
    /* SMI_CMD 0: no SMM, the platform is always in ACPI mode (SCI_EN reads 1). */
    put(f + 56, PM_IO_BASE, 4);
    put(f + 64, PM1_CNT_PORT, 4);
    put(f + 76, PM_TMR_PORT, 4);
    f[88] = PM1_EVT_LEN;
    f[89] = PM1_CNT_LEN;
    f[91] = PM_TMR_LEN;
    put(f + 96, 101, 2);  /* P_LVL2_LAT > 100: no C2 */
    put(f + 98, 1001, 2); /* P_LVL3_LAT > 1000: no C3 */
    f[108] = 0x32;        /* RTC century register */
    /* IAPC_BOOT_ARCH: legacy devices, an 8042 (hw/i8042.c), no VGA. */
    put(f + 109, (1 << 0) | (1 << 1) | (1 << 2), 2);
    /* Flags: WBINVD, C1, no sleep button, 32-bit PM timer, reset register. */
    put(f + 112, (1 << 0) | (1 << 2) | (1 << 5) | (1 << 8) | (1 << 10), 4);
    put_gas_io(f + 116, 8, 1, PM_RESET_PORT);
    f[128] = PM_RESET_VALUE;
    put(f + 132, facs, 8);
    put(f + 140, dsdt, 8);
    put_gas_io(f + 148, PM1_EVT_LEN * 8, 2, PM_IO_BASE);
    put_gas_io(f + 172, PM1_CNT_LEN * 8, 2, PM1_CNT_PORT);
    put_gas_io(f + 208, PM_TMR_LEN * 8, 3, PM_TMR_PORT);
    (void)gpa;
    table_end(t, off);
}

static void build_facs(struct tbuf *t)
{
    tb_reserve(t, align_up(t->len, 64) - t->len);
    uint8_t *f = tb_reserve(t, 64);
    if (!f)
        return;
    memcpy(f, "FACS", 4);
    put(f + 4, 64, 4);
    f[32] = 2; /* version */
}

static void build_madt(struct tbuf *t, unsigned nr_cpus)
{
    size_t off = table_begin(t, "APIC", 5);
    uint8_t *p = tb_reserve(t, 8);
    if (!p)
        return;
    put(p, MEM_LAPIC_BASE, 4);
    put(p + 4, 1, 4); /* PCAT_COMPAT: there are 8259s to mask */
    for (unsigned i = 0; i < nr_cpus; i++) {
        p = tb_reserve(t, 8);
        if (!p)
            return;
        p[0] = 0; /* processor local APIC */
        p[1] = 8;
        p[2] = (uint8_t)i; /* ACPI processor UID */
        p[3] = (uint8_t)i; /* APIC ID */
        put(p + 4, 1, 4);  /* enabled */
    }
    p = tb_reserve(t, 12);
    if (!p)
        return;
    p[0] = 1; /* IOAPIC */
    p[1] = 12;
    p[2] = IOAPIC_ID;
    put(p + 4, MEM_IOAPIC_BASE, 4);
    put(p + 8, 0, 4); /* GSI base */
    /* ISA IRQ 0 (the PIT) is wired to IOAPIC pin 2; the SCI is level, active high. */
    static const struct {
        uint8_t irq;
        uint32_t gsi;
        uint16_t flags;
    } isos[] = {{0, 2, 0}, {PM_SCI_IRQ, PM_SCI_IRQ, 0x000d}};
    for (size_t i = 0; i < ARRAY_SIZE(isos); i++) {
        p = tb_reserve(t, 10);
        if (!p)
            return;
        p[0] = 2;
        p[1] = 10;
        p[2] = 0; /* ISA */
        p[3] = isos[i].irq;
        put(p + 4, isos[i].gsi, 4);
        put(p + 8, isos[i].flags, 2);
    }
    p = tb_reserve(t, 6);
    if (!p)
        return;
    p[0] = 4; /* local APIC NMI: LINT1 of every processor */
    p[1] = 6;
    p[2] = 0xff;
    put(p + 3, 0, 2);
    p[5] = 1;
    table_end(t, off);
}

static void build_mcfg(struct tbuf *t)
{
    size_t off = table_begin(t, "MCFG", 1);
    uint8_t *p = tb_reserve(t, 8 + 16);
    if (!p)
        return;
    put(p + 8, MEM_PCI_ECAM_BASE, 8);
    put(p + 16, 0, 2); /* segment 0 */
    p[18] = 0;         /* buses 0..0 */
    p[19] = (uint8_t)(MEM_PCI_ECAM_SIZE / MiB - 1);
    table_end(t, off);
}

/* The host bridge's resources: bus 0, CF8-CFF, the I/O and 32-bit MMIO windows. */
static void host_bridge_crs(struct aml *a)
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
        put(d + 8, io[i][0], 2);
        put(d + 10, io[i][1], 2);
        put(d + 14, io[i][1] - io[i][0] + 1u, 2);
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
    put(d + 10, MEM_PCI_MMIO_BASE, 4);
    put(d + 14, MEM_PCI_MMIO_BASE + MEM_PCI_MMIO_SIZE - 1, 4);
    put(d + 22, MEM_PCI_MMIO_SIZE, 4);
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

static void build_dsdt(struct tbuf *t)
{
    struct aml a;

    aml_init(&a);
    size_t sb = aml_scope_open(&a, "\\_SB_");
    size_t dev = aml_device_open(&a, "PCI0");
    aml_name(&a, "_HID");
    aml_eisaid(&a, "PNP0A08"); /* PCI Express root bridge */
    aml_name(&a, "_CID");
    aml_eisaid(&a, "PNP0A03");
    aml_name(&a, "_ADR");
    aml_integer(&a, 0);
    aml_name(&a, "_SEG");
    aml_integer(&a, 0);
    aml_name(&a, "_BBN");
    aml_integer(&a, 0);
    aml_name(&a, "_UID");
    aml_integer(&a, 0);
    aml_name(&a, "_CRS");
    host_bridge_crs(&a);
    host_bridge_prt(&a);
    aml_close(&a, dev);
    if (i8042_aml)
        i8042_aml(&a); /* weak: the unit tests of this file link no devices */
    aml_close(&a, sb);

    /* \_S5: the SLP_TYP values for soft-off that hw/pm.c acts upon. */
    aml_name(&a, "\\_S5_");
    size_t s5 = aml_package_open(&a, 4);
    aml_integer(&a, PM_S5_TYP);
    aml_integer(&a, PM_S5_TYP);
    aml_integer(&a, 0);
    aml_integer(&a, 0);
    aml_close(&a, s5);

    size_t off = table_begin(t, "DSDT", 2);
    if (!a.failed) {
        uint8_t *p = tb_reserve(t, a.len);
        if (p)
            memcpy(p, a.buf, a.len);
    } else {
        t->full = true;
    }
    aml_free(&a);
    table_end(t, off);
}

size_t acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, unsigned nr_cpus)
{
    struct tbuf t = {.p = buf, .cap = cap};

    /* RSDP first, at gpa; the XSDT right after it with room for its entries. */
    uint8_t *rsdp = tb_reserve(&t, 36);
    size_t xsdt = table_begin(&t, "XSDT", 1);
    enum { NR_TABLES = 3 };
    size_t xsdt_entries = t.len;
    tb_reserve(&t, 8 * NR_TABLES);
    size_t xsdt_len = t.len - xsdt;

    build_facs(&t);
    size_t facs = t.len - 64;
    size_t dsdt = align_up(t.len, 16);
    build_dsdt(&t);
    size_t fadt = align_up(t.len, 16);
    build_fadt(&t, gpa, gpa + facs, gpa + dsdt);
    size_t madt = align_up(t.len, 16);
    build_madt(&t, nr_cpus);
    size_t mcfg = align_up(t.len, 16);
    build_mcfg(&t);
    if (t.full || !rsdp)
        return 0;

    const size_t tables[NR_TABLES] = {fadt, madt, mcfg};
    for (size_t i = 0; i < NR_TABLES; i++)
        put(buf + xsdt_entries + 8 * i, gpa + tables[i], 8);
    table_seal(&t, xsdt, xsdt_len);

    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "HVHV  ", 6);
    rsdp[15] = 2; /* ACPI 2.0+: use the XSDT */
    put(rsdp + 20, 36, 4);
    put(rsdp + 24, gpa + xsdt, 8);
    rsdp[8] = (uint8_t)(0x100 - acpi_checksum(rsdp, 20));
    rsdp[32] = (uint8_t)(0x100 - acpi_checksum(rsdp, 36));
    return t.len;
}

int acpi_install(const struct guest_mem *mem, uint64_t gpa, size_t max, unsigned nr_cpus)
{
    uint8_t *dst = guest_mem_ptr(mem, gpa, max);
    if (!dst) {
        log_err("no guest memory for the ACPI tables at 0x%llx", (unsigned long long)gpa);
        return -1;
    }
    memset(dst, 0, max);
    if (acpi_build(dst, max, gpa, nr_cpus) == 0) {
        log_err("the ACPI tables do not fit in %zu bytes", max);
        return -1;
    }
    return 0;
}
