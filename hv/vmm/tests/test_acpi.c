/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ACPI tables: checksums, links between them, the MADT, and a DSDT made
 * of what the devices of a VM (without KVM) say of themselves.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aml_decode.h"
#include "check.h"
#include "device.h"
#include "devices.h"
#include "fake_vm.h"
#include "hw/host_bridge.h"
#include "le.h"
#include "pci.h"
#include "vm.h"
#include "x86/acpi.h"
#include "x86/aml.h"

#define GPA 0xe0000u

static uint8_t buf[0x20000];
static struct vm vm;
static struct acpi_config acfg;

/* vm.c is not linked. */
void vm_request(struct vm *v, enum vm_request req)
{
    atomic_fetch_or(&v->requests, (unsigned)req);
}

static const struct vm_config cfg = {.name = "test", .console = "none"};

/* The devices every VM has, in vm.c's order: the host bridge, then the platform devices. */
static void make_vm(void)
{
    fake_vm_init(&vm, &cfg, true);
    acfg = (struct acpi_config){.devices = vm.devices, .ecam_base = MEM_PCI_ECAM_BASE};
}

static void drop_vm(void)
{
    fake_vm_drop(&vm);
}

static const uint8_t *table(uint64_t gpa)
{
    CHECK(gpa >= GPA && gpa < GPA + sizeof(buf));
    return buf + (gpa - GPA);
}

/* Find the table with this signature through the XSDT. */
static const uint8_t *find(const char *sig)
{
    const uint8_t *xsdt = table(le64_get(buf + 24));
    unsigned n = (le32_get(xsdt + 4) - 36) / 8;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *t = table(le64_get(xsdt + 36 + 8 * i));
        if (memcmp(t, sig, 4) == 0)
            return t;
    }
    return NULL;
}

static void test_tables(unsigned cpus)
{
    memset(buf, 0, sizeof(buf));
    acfg.nr_cpus = cpus;
    size_t len = acpi_build(buf, sizeof(buf), GPA, &acfg);
    CHECK(len > 0);
    CHECK(memcmp(buf, "RSD PTR ", 8) == 0);
    CHECK(acpi_checksum(buf, 20) == 0);
    CHECK(acpi_checksum(buf, 36) == 0);
    CHECK(buf[15] == 2);

    const uint8_t *xsdt = table(le64_get(buf + 24));
    CHECK(memcmp(xsdt, "XSDT", 4) == 0);
    CHECK(le32_get(xsdt + 4) == 36 + 3 * 8); /* exactly FADT, MADT, MCFG */
    CHECK(acpi_checksum(xsdt, le32_get(xsdt + 4)) == 0);

    const char *sigs[] = {"FACP", "APIC", "MCFG"};
    for (unsigned i = 0; i < 3; i++) {
        const uint8_t *t = find(sigs[i]);
        CHECK(t != NULL);
        if (t)
            CHECK(acpi_checksum(t, le32_get(t + 4)) == 0);
    }

    const uint8_t *fadt = find("FACP");
    CHECK(le32_get(fadt + 4) == 276);
    const uint8_t *dsdt = table(le64_get(fadt + 140));
    CHECK(le32_get(fadt + 40) == le64_get(fadt + 140));
    CHECK(memcmp(dsdt, "DSDT", 4) == 0);
    CHECK(acpi_checksum(dsdt, le32_get(dsdt + 4)) == 0);
    CHECK(memcmp(table(le64_get(fadt + 132)), "FACS", 4) == 0);
    CHECK(le32_get(fadt + 56) == PM_IO_BASE && le32_get(fadt + 64) == PM1_CNT_PORT);
    CHECK((fadt[46] | fadt[47] << 8) == PM_SCI_IRQ);

    /* \_S5 is Package(4) {5, 5, 0, 0}: NameOp '\' "_S5_" PackageOp len 4 ... */
    const uint8_t s5[] = {0x08, '\\', '_', 'S', '5', '_', 0x12};
    const uint8_t *p = memmem(dsdt, le32_get(dsdt + 4), s5, sizeof(s5));
    CHECK(p != NULL);
    if (p) {
        p += sizeof(s5);
        CHECK(p[0] == 8); /* PkgLength: 1 + 1 + 2 + 2 + 1 + 1 */
        CHECK(p[1] == 4); /* NumElements */
        CHECK(p[2] == 0x0a && p[3] == PM_S5_TYP);
        CHECK(p[4] == 0x0a && p[5] == PM_S5_TYP);
        CHECK(p[6] == 0x00 && p[7] == 0x00);
    }
    /* The host bridge is a PCIe root bridge (PNP0A08 = 0x080AD041 little-endian). */
    const uint8_t hid[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08};
    CHECK(memmem(dsdt, le32_get(dsdt + 4), hid, sizeof(hid)) != NULL);

    /* MADT: one enabled local APIC per vCPU, with APIC IDs 0..n-1. */
    const uint8_t *madt = find("APIC");
    unsigned lapics = 0, ioapics = 0, isos = 0;
    for (uint32_t off = 44; off < le32_get(madt + 4); off += madt[off + 1]) {
        if (madt[off + 1] == 0)
            break;
        if (madt[off] == 0) {
            CHECK(madt[off + 3] == lapics && (le32_get(madt + off + 4) & 1));
            lapics++;
        }
        ioapics += madt[off] == 1;
        if (madt[off] == 2 && madt[off + 3] == 0)
            CHECK(le32_get(madt + off + 4) == 2); /* IRQ0 -> GSI2 */
        isos += madt[off] == 2;
    }
    CHECK(lapics == cpus);
    CHECK(ioapics == 1);
    CHECK(isos == 2);

    const uint8_t *mcfg = find("MCFG");
    CHECK(le64_get(mcfg + 44) == MEM_PCI_ECAM_BASE);
    CHECK(mcfg[54] == 0 && mcfg[55] == 0);
}

/* The DSDT decodes whole, with each device's entry where it should be. */
static void test_dsdt_devices(void)
{
    acfg.nr_cpus = 2;
    memset(buf, 0, sizeof(buf));
    CHECK(acpi_build(buf, sizeof(buf), GPA, &acfg) > 0);
    const uint8_t *fadt = find("FACP");
    CHECK(fadt != NULL);
    if (!fadt)
        return;
    const uint8_t *dsdt = table(le64_get(fadt + 140));
    struct amld d;
    amld_decode(&d, dsdt + 36, le32_get(dsdt + 4) - 36);
    CHECK(!d.bad);
    const struct amld_device *pci = amld_find_hid(&d, "PNP0A08");
    CHECK(pci && strcmp(pci->path, "\\_SB_.PCI0") == 0 && pci->has_crs);
    CHECK(amld_has_name(&d, "\\_SB_.PCI0._PRT"));
    CHECK(amld_has_name(&d, "\\_S5_"));
    const struct amld_device *com1 = amld_find_hid(&d, "PNP0501");
    CHECK(com1 && strcmp(com1->path, "\\_SB_.COM1") == 0 && com1->uid == 1 && com1->has_crs);
    const struct amld_device *kbd = amld_find_hid(&d, "PNP0303");
    CHECK(kbd && strcmp(kbd->path, "\\_SB_.KBD_") == 0 && kbd->has_crs);
    CHECK(amld_find_hid(&d, "PNP0F13") != NULL);
    const struct amld_device *rtc = amld_find_hid(&d, "PNP0B00");
    CHECK(rtc && strcmp(rtc->path, "\\_SB_.RTC_") == 0 && rtc->has_crs);
    /* COM1's resources: IO(Decode16, 0x3F8, 0x3F8, 1, 8), IRQNoFlags {4}. */
    const uint8_t com1_crs[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00};
    CHECK(memmem(dsdt, le32_get(dsdt + 4), com1_crs, sizeof(com1_crs)) != NULL);
    /* The host bridge is the first device on the list: PCI0 opens the DSDT. */
    CHECK(strcmp(vm.devices->id, "host-bridge") == 0);
    CHECK(dsdt[36] == 0x10); /* ScopeOp */
}

static void test_aml_pkglength(void)
{
    struct aml a;
    uint8_t body[100];

    /* 100 bytes of body: two-byte PkgLength (102 = 0x66 -> 0x46 0x06). */
    memset(body, 0x01, sizeof(body));
    aml_init(&a);
    const uint8_t op = 0x10;
    size_t m = aml_open(&a, &op, 1);
    aml_bytes(&a, body, sizeof(body));
    aml_close(&a, m);
    CHECK(!a.failed && a.len == 103);
    CHECK(a.buf[1] == 0x46 && a.buf[2] == 0x06);
    aml_free(&a);

    /* Integers take the shortest form. */
    aml_init(&a);
    aml_integer(&a, 0);
    aml_integer(&a, 1);
    aml_integer(&a, 0x12);
    aml_integer(&a, 0x1234);
    aml_integer(&a, 0x12345678);
    const uint8_t want[] = {0x00, 0x01, 0x0a, 0x12, 0x0b, 0x34, 0x12, 0x0c, 0x78, 0x56, 0x34, 0x12};
    CHECK(a.len == sizeof(want) && memcmp(a.buf, want, sizeof(want)) == 0);
    aml_free(&a);
}

int main(void)
{
    make_vm();
    test_tables(1);
    test_tables(4);
    test_tables(64);
    acfg.nr_cpus = 1;
    CHECK(acpi_build(buf, 100, GPA, &acfg) == 0); /* too small a buffer is refused */
    test_aml_pkglength();
    test_dsdt_devices();
    drop_vm();
    CHECK_DONE();
}
