/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The firmware's ACPI (x86/acpi_loader.c): the three fw_cfg files of a VM
 * without KVM, read through the ports as firmware does, and a small loader
 * that executes etc/table-loader the way SeaBIOS does (and once the way
 * OVMF computes checksums). Every command must be well-formed, and after
 * them every table's checksum is right, every pointer lands on the table it
 * should, and the tables say what the VM is: its CPUs, its devices, the
 * ECAM where the firmware moved it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aml_decode.h"
#include "check.h"
#include "device.h"
#include "devices.h"
#include "fake_vm.h"
#include "hw/fw_cfg.h"
#include "hw/host_bridge.h"
#include "le.h"
#include "pci.h"
#include "vm.h"
#include "x86/acpi.h"
#include "x86/acpi_loader.h"
#include "x86/boot_firmware.h"

void vm_request(struct vm *v, enum vm_request req)
{
    atomic_fetch_or(&v->requests, (unsigned)req);
}

static const struct vm_config cfg = {.name = "test", .console = "none"};
static struct vm vm;
static struct firmware fake_fw; /* only "this VM boots firmware" */

static void make_vm(unsigned cpus)
{
    fake_vm_init(&vm, &cfg, true);
    vm.nr_vcpus = cpus;
    vm.fw = &fake_fw;
}

static void drop_vm(void)
{
    fake_vm_drop(&vm);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- fw_cfg as firmware reads it: the directory, then a file byte by byte ---- */

static void select_key(struct fw_cfg *fc, uint16_t key)
{
    uint8_t b[2] = {(uint8_t)key, (uint8_t)(key >> 8)};
    fw_cfg_io(fc, 0, b, 2, true);
}

static void read_data(struct fw_cfg *fc, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fw_cfg_io(fc, FW_CFG_DATA_OFF, out + i, 1, false);
}

/* A file's contents (malloc'd) and size, NULL when the directory has none. */
static uint8_t *read_file(struct fw_cfg *fc, const char *name, size_t *len)
{
    uint8_t count[4], e[64];
    select_key(fc, FW_CFG_FILE_DIR);
    read_data(fc, count, 4);
    for (uint32_t i = 0; i < be32(count); i++) {
        read_data(fc, e, sizeof(e));
        if (strcmp((const char *)e + 8, name) != 0)
            continue;
        *len = be32(e);
        uint8_t *data = malloc(*len ? *len : 1);
        select_key(fc, (uint16_t)(e[4] << 8 | e[5]));
        read_data(fc, data, *len);
        return data;
    }
    return NULL;
}

/* ---- a loader: guest RAM below 1 MiB (the F segment) and a high zone ---- */

#define RAM_SIZE  (2u << 20)
#define HIGH_BASE 0x100000u /* the "high" allocations in this test's RAM */
#define FSEG_BASE 0xe0000u

static uint8_t ram[RAM_SIZE];

struct lfile {
    const char *name;
    const uint8_t *data;
    size_t len;
    uint32_t addr; /* 0: not allocated yet */
};

static struct lfile *lookup(struct lfile *f, unsigned n, const uint8_t *name)
{
    if (!memchr(name, 0, ACPI_LOADER_FILE_LEN))
        return NULL; /* not NUL-terminated within its 56 bytes */
    for (unsigned i = 0; i < n; i++)
        if (strcmp(f[i].name, (const char *)name) == 0)
            return &f[i];
    return NULL;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

/* Run the script; false at the first malformed command. ovmf: checksums computed from a 0 byte. */
static bool run_loader(const uint8_t *script, size_t len, struct lfile *f, unsigned nf, bool ovmf)
{
    uint32_t high = HIGH_BASE, fseg = FSEG_BASE;

    if (len == 0 || len % ACPI_LOADER_ENTRY_LEN)
        return false;
    memset(ram, 0, sizeof(ram));
    for (size_t off = 0; off < len; off += ACPI_LOADER_ENTRY_LEN) {
        const uint8_t *e = script + off + 4;
        uint32_t cmd = le32_get(script + off);
        struct lfile *a = lookup(f, nf, e), *b;
        if (!a)
            return false;
        if (cmd == ACPI_LOADER_ALLOCATE) {
            uint32_t align = le32_get(e + ACPI_LOADER_FILE_LEN);
            uint8_t zone = e[ACPI_LOADER_FILE_LEN + 4];
            if (a->addr || !align || (align & (align - 1)))
                return false;
            uint32_t *next = zone == ACPI_LOADER_ZONE_HIGH   ? &high
                             : zone == ACPI_LOADER_ZONE_FSEG ? &fseg
                                                             : NULL;
            if (!next)
                return false;
            a->addr = (*next + align - 1) & ~(align - 1);
            *next = a->addr + (uint32_t)a->len;
            if (zone == ACPI_LOADER_ZONE_FSEG && *next > 0x100000)
                return false;
            memcpy(ram + a->addr, a->data, a->len);
        } else if (cmd == ACPI_LOADER_ADD_POINTER) {
            b = lookup(f, nf, e + ACPI_LOADER_FILE_LEN);
            uint32_t at = le32_get(e + 2 * ACPI_LOADER_FILE_LEN);
            uint8_t size = e[2 * ACPI_LOADER_FILE_LEN + 4];
            if (!b || !a->addr || !b->addr || (size != 1 && size != 2 && size != 4 && size != 8) ||
                at > a->len || size > a->len - at)
                return false;
            uint8_t *p = ram + a->addr + at;
            uint64_t v = 0;
            for (unsigned i = 0; i < size; i++)
                v |= (uint64_t)p[i] << (8 * i);
            v += b->addr;
            for (unsigned i = 0; i < size; i++)
                p[i] = (uint8_t)(v >> (8 * i));
        } else if (cmd == ACPI_LOADER_ADD_CHECKSUM) {
            uint32_t result = le32_get(e + ACPI_LOADER_FILE_LEN);
            uint32_t start = le32_get(e + ACPI_LOADER_FILE_LEN + 4);
            uint32_t n = le32_get(e + ACPI_LOADER_FILE_LEN + 8);
            if (!a->addr || result >= a->len || start > a->len || n > a->len - start)
                return false;
            uint8_t *p = ram + a->addr;
            if (ovmf) {
                p[result] = 0;
                p[result] = (uint8_t)(0x100 - sum8(p + start, n));
            } else {
                p[result] = (uint8_t)(p[result] - sum8(p + start, n));
            }
        } else {
            return false;
        }
    }
    return true;
}

/* A table in the loaded RAM at a guest address, NULL when outside what was allocated. */
static const uint8_t *at(const struct lfile *tables, uint64_t addr, const char *sig)
{
    if (addr < tables->addr || addr + 36 > tables->addr + tables->len)
        return NULL;
    const uint8_t *t = ram + addr;
    if (memcmp(t, sig, 4) != 0 || addr + le32_get(t + 4) > tables->addr + tables->len)
        return NULL;
    if (strcmp(sig, "FACS") != 0 && sum8(t, le32_get(t + 4)) != 0)
        return NULL; /* a table whose checksum is wrong does not count */
    return t;
}

static void check_loaded(const struct lfile *tables, const struct lfile *rsdpf, unsigned cpus,
                         uint64_t ecam)
{
    const uint8_t *rsdp = ram + rsdpf->addr;
    CHECK(rsdpf->addr % 16 == 0 && rsdpf->addr >= 0xe0000 && rsdpf->addr < 0x100000);
    CHECK(memcmp(rsdp, "RSD PTR ", 8) == 0);
    CHECK(sum8(rsdp, 20) == 0 && sum8(rsdp, ACPI_RSDP_LEN) == 0);
    CHECK(rsdp[15] == 2 && le32_get(rsdp + 16) == 0); /* ACPI 2.0, no RSDT */

    const uint8_t *xsdt = at(tables, le64_get(rsdp + 24), "XSDT");
    CHECK(xsdt != NULL);
    if (!xsdt)
        return;
    CHECK(le32_get(xsdt + 4) == 36 + 3 * 8);
    const uint8_t *fadt = at(tables, le64_get(xsdt + 36), "FACP");
    const uint8_t *madt = at(tables, le64_get(xsdt + 44), "APIC");
    const uint8_t *mcfg = at(tables, le64_get(xsdt + 52), "MCFG");
    CHECK(fadt && madt && mcfg);
    if (!fadt || !madt || !mcfg)
        return;
    CHECK(le32_get(fadt + 36) == le64_get(fadt + 132) && le32_get(fadt + 36) % 64 == 0);
    CHECK(at(tables, le64_get(fadt + 132), "FACS") != NULL);
    CHECK(le32_get(fadt + 40) == le64_get(fadt + 140));
    const uint8_t *dsdt = at(tables, le64_get(fadt + 140), "DSDT");
    CHECK(dsdt != NULL);
    if (dsdt) {
        struct amld d;
        amld_decode(&d, dsdt + 36, le32_get(dsdt + 4) - 36);
        CHECK(!d.bad);
        CHECK(amld_find_hid(&d, "PNP0A08") && amld_find_hid(&d, "PNP0501") &&
              amld_find_hid(&d, "PNP0B00"));
        CHECK(amld_has_name(&d, "\\_S5_"));
        /* The firmware's BAR window: 0xC0000000 up to the IOAPIC (DWord memory descriptor). */
        const uint8_t win[] = {0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xbf, 0xfe};
        CHECK(memmem(dsdt, le32_get(dsdt + 4), win, sizeof(win)) != NULL);
    }
    unsigned lapics = 0;
    for (uint32_t off = 44; off + 2 <= le32_get(madt + 4) && madt[off + 1]; off += madt[off + 1])
        lapics += madt[off] == 0 && (le32_get(madt + off + 4) & 1);
    CHECK(lapics == cpus);
    CHECK(le64_get(mcfg + 44) == ecam);
}

static void test_loader(unsigned cpus)
{
    make_vm(cpus);
    static uint8_t mem_buf[4096];
    struct guest_mem mem = {.nr_regions = 1, .size = sizeof(mem_buf)};
    mem.regions[0] = (struct mem_region){.gpa = 0, .size = sizeof(mem_buf), .hva = mem_buf};
    struct fw_cfg *fc = fw_cfg_new(&mem);
    CHECK(fc && acpi_fw_cfg(fc, &vm) == 0);

    /* SeaBIOS moves the ECAM before it runs the loader: the tables follow. */
    uint32_t addr = 0x80000000u | 0x60u, bar = 0xb0000001u; /* 00:00.0, PCIEXBAR */
    io_bus_access(&vm.pio, 0xcf8, (uint8_t *)&addr, 4, true);
    io_bus_access(&vm.pio, 0xcfc, (uint8_t *)&bar, 4, true);
    CHECK(pci_bus_ecam_base(vm.pci) == 0xb0000000u);

    size_t tl = 0, rl = 0, sl = 0;
    uint8_t *tables = read_file(fc, ACPI_FILE_TABLES, &tl);
    uint8_t *rsdp = read_file(fc, ACPI_FILE_RSDP, &rl);
    uint8_t *script = read_file(fc, ACPI_FILE_LOADER, &sl);
    CHECK(tables && rsdp && script && rl == ACPI_RSDP_LEN && sl % ACPI_LOADER_ENTRY_LEN == 0);
    if (!tables || !rsdp || !script)
        return;
    /* The checksum bytes are the loader's: 0 in the blobs. */
    CHECK(rsdp[8] == 0 && rsdp[32] == 0 && tables[9] == 0);

    struct lfile f[] = {{ACPI_FILE_TABLES, tables, tl, 0}, {ACPI_FILE_RSDP, rsdp, rl, 0}};
    CHECK(run_loader(script, sl, f, 2, false));
    check_loaded(&f[0], &f[1], cpus, 0xb0000000u);
    f[0].addr = f[1].addr = 0;
    CHECK(run_loader(script, sl, f, 2, true));
    check_loaded(&f[0], &f[1], cpus, 0xb0000000u);

    /* Each file is allocated once, before any reference; every checksum after its pointers. */
    unsigned allocs = 0, last_ptr = 0, first_sum = ~0u;
    for (unsigned i = 0; i < sl / ACPI_LOADER_ENTRY_LEN; i++) {
        uint32_t cmd = le32_get(script + i * ACPI_LOADER_ENTRY_LEN);
        allocs += cmd == ACPI_LOADER_ALLOCATE;
        if (cmd == ACPI_LOADER_ALLOCATE)
            CHECK(i < 2);
        if (cmd == ACPI_LOADER_ADD_POINTER)
            last_ptr = i;
        if (cmd == ACPI_LOADER_ADD_CHECKSUM && first_sum == ~0u)
            first_sum = i;
    }
    CHECK(allocs == 2 && last_ptr < first_sum);

    /* After a reset the tables are built again: the ECAM back at power-on. */
    devices_reset(&vm);
    fw_cfg_reset(fc); /* not on this VM's list: reset by hand */
    CHECK(pci_bus_ecam_base(vm.pci) == MEM_PCI_ECAM_BASE);
    free(tables);
    tables = read_file(fc, ACPI_FILE_TABLES, &tl);
    f[0] = (struct lfile){ACPI_FILE_TABLES, tables, tl, 0};
    f[1].addr = 0;
    CHECK(run_loader(script, sl, f, 2, false));
    check_loaded(&f[0], &f[1], cpus, MEM_PCI_ECAM_BASE);

    /* A malformed script is caught by this loader (so the checks above mean something). */
    uint8_t bad[ACPI_LOADER_ENTRY_LEN * 2];
    memcpy(bad, script, sizeof(bad));
    memset(bad + 4, 'x', ACPI_LOADER_FILE_LEN); /* a name without its NUL */
    f[0].addr = f[1].addr = 0;
    CHECK(!run_loader(bad, sizeof(bad), f, 2, false));

    free(tables);
    free(rsdp);
    free(script);
    fw_cfg_free(fc);
    drop_vm();
}

/* The blobs alone: the links are inside the blobs and the script holds them all. */
static void test_links(void)
{
    make_vm(4);
    static uint8_t t[65536];
    uint8_t rsdp[ACPI_RSDP_LEN];
    struct acpi_links l;
    struct acpi_config c = {.nr_cpus = 4, .devices = vm.devices, .ecam_base = 0xb0000000u};
    size_t n = acpi_build_blobs(t, sizeof(t), rsdp, &c, &l);
    CHECK(n > 0);
    CHECK(l.nr_ptr == 8 && l.nr_sum == 7); /* XSDT 3 + FADT 4 + RSDP 1; 5 tables + RSDP 2 */
    for (unsigned i = 0; i < l.nr_ptr; i++) {
        size_t blen = l.ptr[i].blob == ACPI_BLOB_RSDP ? ACPI_RSDP_LEN : n;
        CHECK(l.ptr[i].offset + l.ptr[i].size <= blen);
        /* Before the loader, a pointer is an offset inside the tables blob. */
        const uint8_t *p = (l.ptr[i].blob == ACPI_BLOB_RSDP ? rsdp : t) + l.ptr[i].offset;
        uint64_t off = l.ptr[i].size == 8 ? le64_get(p) : le32_get(p);
        CHECK(off < n);
    }
    uint8_t script[ACPI_LOADER_MAX_LEN];
    CHECK(acpi_loader_script(&l, script, sizeof(script)) ==
          (2 + l.nr_ptr + l.nr_sum) * ACPI_LOADER_ENTRY_LEN);
    CHECK(acpi_loader_script(&l, script, 3 * ACPI_LOADER_ENTRY_LEN) == 0); /* too small */
    CHECK(acpi_build_blobs(t, 100, rsdp, &c, &l) == 0);
    drop_vm();
}

int main(void)
{
    test_links();
    test_loader(1);
    test_loader(2);
    test_loader(64);
    CHECK_DONE();
}
