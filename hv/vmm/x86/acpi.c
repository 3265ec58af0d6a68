/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "acpi.h"

#include <stdbool.h>
#include <string.h>

#include "aml.h"
#include "device.h"
#include "devices.h"
#include "log.h"
#include "util.h"

#define ACPI_HDR_LEN 36
#define IOAPIC_ID    0

/*
 * A little-endian writer over the caller's buffer, never past its end. The
 * buffer will sit at guest address gpa (0 for a relocatable blob); with
 * links, each pointer and checksum is also recorded for the firmware's
 * loader, and checksum bytes are left 0 for it to fill.
 */
struct tbuf {
    uint8_t *p;
    size_t cap, len;
    bool full;
    uint64_t gpa;
    struct acpi_links *links;
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

static void add_sum(struct acpi_links *l, bool *full, uint8_t blob, size_t result, size_t start,
                    size_t len)
{
    if (l->nr_sum == ACPI_MAX_LINKS) {
        *full = true;
        return;
    }
    l->sum[l->nr_sum++] = (struct acpi_sum){
        .blob = blob, .result = (uint32_t)result, .start = (uint32_t)start, .len = (uint32_t)len};
}

static void add_pointer(struct acpi_links *l, bool *full, uint8_t blob, size_t offset, int size)
{
    if (l->nr_ptr == ACPI_MAX_LINKS) {
        *full = true;
        return;
    }
    l->ptr[l->nr_ptr++] = (struct acpi_pointer){.blob = blob,
                                                .target = ACPI_BLOB_TABLES,
                                                .size = (uint8_t)size,
                                                .offset = (uint32_t)offset};
}

/* A pointer of size bytes at offset field to the table at offset target. */
static void put_ptr(struct tbuf *t, size_t field, int size, size_t target)
{
    if (t->full)
        return;
    put(t->p + field, t->gpa + target, size);
    if (t->links)
        add_pointer(t->links, &t->full, ACPI_BLOB_TABLES, field, size);
}

/* Set the length and checksum of the table of len bytes at off. */
static void table_seal(struct tbuf *t, size_t off, size_t len)
{
    if (t->full)
        return;
    uint8_t *h = t->p + off;
    put(h + 4, len, 4);
    h[9] = 0;
    if (t->links)
        add_sum(t->links, &t->full, ACPI_BLOB_TABLES, off + 9, off, len);
    else
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

/* facs and dsdt: the tables' offsets in the buffer. */
static void build_fadt(struct tbuf *t, size_t facs, size_t dsdt)
{
    size_t off = table_begin(t, "FACP", 6);
    uint8_t *f = tb_reserve(t, 276 - ACPI_HDR_LEN);
    if (!f)
        return;
    f -= ACPI_HDR_LEN;
    put_ptr(t, off + 36, 4, facs);
    put_ptr(t, off + 40, 4, dsdt);
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
    put_ptr(t, off + 132, 8, facs);
    put_ptr(t, off + 140, 8, dsdt);
    put_gas_io(f + 148, PM1_EVT_LEN * 8, 2, PM_IO_BASE);
    put_gas_io(f + 172, PM1_CNT_LEN * 8, 2, PM1_CNT_PORT);
    put_gas_io(f + 208, PM_TMR_LEN * 8, 3, PM_TMR_PORT);
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

static void build_mcfg(struct tbuf *t, uint64_t ecam_base)
{
    size_t off = table_begin(t, "MCFG", 1);
    uint8_t *p = tb_reserve(t, 8 + 16);
    if (!p)
        return;
    put(p + 8, ecam_base, 8);
    put(p + 16, 0, 2); /* segment 0 */
    p[18] = 0;         /* buses 0..0 */
    p[19] = (uint8_t)(MEM_PCI_ECAM_SIZE / MiB - 1);
    table_end(t, off);
}

/* Each device's own part, in the order of the list (device_ops.aml). */
static void build_dsdt(struct tbuf *t, struct device *devices)
{
    struct aml a;

    aml_init(&a);
    for (struct device *d = devices; d; d = d->next)
        if (d->ops && d->ops->aml)
            d->ops->aml(d, &a);

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

/* XSDT, FACS, DSDT, FADT, MADT, MCFG from t->len on; returns the XSDT's offset. */
static size_t build_tables(struct tbuf *t, const struct acpi_config *cfg)
{
    size_t xsdt = table_begin(t, "XSDT", 1);
    enum { NR_TABLES = 3 };
    size_t xsdt_entries = t->len;
    tb_reserve(t, 8 * NR_TABLES);
    size_t xsdt_len = t->len - xsdt;

    build_facs(t);
    size_t facs = t->len - 64;
    size_t dsdt = align_up(t->len, 16);
    build_dsdt(t, cfg->devices);
    size_t fadt = align_up(t->len, 16);
    build_fadt(t, facs, dsdt);
    size_t madt = align_up(t->len, 16);
    build_madt(t, cfg->nr_cpus);
    size_t mcfg = align_up(t->len, 16);
    build_mcfg(t, cfg->ecam_base);
    if (t->full)
        return 0;

    const size_t tables[NR_TABLES] = {fadt, madt, mcfg};
    for (size_t i = 0; i < NR_TABLES; i++)
        put_ptr(t, xsdt_entries + 8 * i, 8, tables[i]);
    table_seal(t, xsdt, xsdt_len);
    return xsdt;
}

/* ACPI 2.0+ RSDP: no RSDT, the XSDT at xsdt. With sums false, both checksums stay 0. */
static void build_rsdp(uint8_t *rsdp, uint64_t xsdt, bool sums)
{
    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "HVHV  ", 6);
    rsdp[15] = 2;
    put(rsdp + 20, ACPI_RSDP_LEN, 4);
    put(rsdp + 24, xsdt, 8);
    if (!sums)
        return;
    rsdp[8] = (uint8_t)(0x100 - acpi_checksum(rsdp, 20));
    rsdp[32] = (uint8_t)(0x100 - acpi_checksum(rsdp, ACPI_RSDP_LEN));
}

size_t acpi_build(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_config *cfg)
{
    struct tbuf t = {.p = buf, .cap = cap, .gpa = gpa};

    /* RSDP first, at gpa; the tables after it. */
    uint8_t *rsdp = tb_reserve(&t, ACPI_RSDP_LEN);
    size_t xsdt = build_tables(&t, cfg);
    if (t.full || !rsdp)
        return 0;
    build_rsdp(rsdp, gpa + xsdt, true);
    return t.len;
}

size_t acpi_build_blobs(uint8_t *tables, size_t cap, uint8_t rsdp[ACPI_RSDP_LEN],
                        const struct acpi_config *cfg, struct acpi_links *links)
{
    struct tbuf t = {.p = tables, .cap = cap, .links = links};

    memset(links, 0, sizeof(*links));
    memset(rsdp, 0, ACPI_RSDP_LEN);
    size_t xsdt = build_tables(&t, cfg);
    if (t.full)
        return 0;
    build_rsdp(rsdp, xsdt, false);
    add_pointer(links, &t.full, ACPI_BLOB_RSDP, 24, 8);
    add_sum(links, &t.full, ACPI_BLOB_RSDP, 8, 0, 20);
    add_sum(links, &t.full, ACPI_BLOB_RSDP, 32, 0, ACPI_RSDP_LEN);
    return t.full ? 0 : t.len;
}

int acpi_install(const struct guest_mem *mem, uint64_t gpa, size_t max,
                 const struct acpi_config *cfg)
{
    uint8_t *dst = guest_mem_ptr(mem, gpa, max);
    if (!dst) {
        log_err("no guest memory for the ACPI tables at 0x%llx", (unsigned long long)gpa);
        return -1;
    }
    memset(dst, 0, max);
    if (acpi_build(dst, max, gpa, cfg) == 0) {
        log_err("the ACPI tables do not fit in %zu bytes", max);
        return -1;
    }
    return 0;
}
