/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fw_cfg driven through its ports as firmware drives it, against guest RAM
 * made of a plain buffer: the signature, the file directory, reads past an
 * item's end, DMA read / skip / select, and DMA a guest points outside RAM.
 * Also the firmware stage's checks (image sizes) and its etc/e820.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hw/fw_cfg.h"
#include "mem.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "x86/boot_firmware.h"

#define RAM_SIZE (1u << 20)

static uint8_t ram[RAM_SIZE];
static struct guest_mem mem = {
    .memfd = -1,
    .base = ram,
    .size = RAM_SIZE,
    .nr_regions = 1,
    .regions = {{.gpa = 0, .size = RAM_SIZE, .hva = ram}},
};

static void outw(struct fw_cfg *fc, uint64_t off, uint16_t v)
{
    uint8_t d[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    fw_cfg_io(fc, off, d, 2, true);
}

/* A 32-bit OUT of a value firmware byte-swapped first (cpu_to_be32): bytes in memory order. */
static void out_be32(struct fw_cfg *fc, uint64_t off, uint32_t v)
{
    uint8_t d[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    fw_cfg_io(fc, off, d, 4, true);
}

static uint8_t inb(struct fw_cfg *fc, uint64_t off)
{
    uint8_t d = 0xaa;
    fw_cfg_io(fc, off, &d, 1, false);
    return d;
}

static void read_data(struct fw_cfg *fc, void *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = inb(fc, FW_CFG_DATA_OFF);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Write a DMA access structure at gpa and start it; returns its control word afterwards. */
static uint32_t dma(struct fw_cfg *fc, uint64_t gpa, uint32_t control, uint32_t len, uint64_t addr)
{
    uint8_t *a = ram + gpa;
    put_be32(a, control);
    put_be32(a + 4, len);
    put_be32(a + 8, (uint32_t)(addr >> 32));
    put_be32(a + 12, (uint32_t)addr);
    out_be32(fc, FW_CFG_DMA_OFF + 4, (uint32_t)gpa);
    return be32(a);
}

/* Find a file in the directory as firmware does: its key and size. */
static int find_file(struct fw_cfg *fc, const char *name, uint16_t *key, uint32_t *size)
{
    uint8_t cnt[4];
    outw(fc, 0, FW_CFG_FILE_DIR);
    read_data(fc, cnt, 4);
    for (uint32_t i = 0; i < be32(cnt); i++) {
        uint8_t e[64];
        read_data(fc, e, sizeof(e));
        if (strncmp((char *)e + 8, name, 56) == 0) {
            *size = be32(e);
            *key = (uint16_t)(e[4] << 8 | e[5]);
            return 0;
        }
    }
    return -1;
}

static void test_signature_and_id(void)
{
    struct fw_cfg *fc = fw_cfg_new(&mem);
    CHECK(fc);
    char sig[5] = {0};
    outw(fc, 0, FW_CFG_SIGNATURE);
    read_data(fc, sig, 4);
    CHECK(strcmp(sig, "QEMU") == 0);
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 0); /* past the end: zeros */

    uint8_t id[4];
    outw(fc, 0, FW_CFG_ID);
    read_data(fc, id, 4);
    CHECK(id[0] == (FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA) && id[1] == 0 && id[2] == 0);

    /* The DMA register reads "QEMU CFG", most significant byte first. */
    char dsig[9] = {0};
    for (unsigned i = 0; i < 8; i++)
        dsig[i] = (char)inb(fc, FW_CFG_DMA_OFF + i);
    CHECK(strcmp(dsig, "QEMU CFG") == 0);

    /* An item nobody added, an out-of-range key, an arch key: all read as zeros. */
    outw(fc, 0, 0x0123);
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 0);
    outw(fc, 0, 0xffff);
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 0);
    fw_cfg_free(fc);
}

static void test_items_and_files(void)
{
    struct fw_cfg *fc = fw_cfg_new(&mem);
    CHECK(fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, 3) == 0);
    CHECK(fw_cfg_add_u16(fc, FW_CFG_IRQ0_OVERRIDE, 1) == 0);
    CHECK(fw_cfg_add_item(fc, FW_CFG_FILE_DIR, "x", 1) == -1); /* the directory is ours */
    CHECK(fw_cfg_add_item(fc, FW_CFG_FILE_FIRST, "x", 1) == -1);
    CHECK(fw_cfg_add_file(fc, "etc/one", "first", 5) == 0);
    CHECK(fw_cfg_add_file(fc, "etc/two", "second!", 7) == 0);
    CHECK(fw_cfg_add_file(fc, "etc/one", "again", 5) == -1);
    CHECK(fw_cfg_add_file(fc, "", "x", 1) == -1);
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK(fw_cfg_add_file(fc, longname, "x", 1) == -1);

    uint8_t b[2];
    outw(fc, 0, FW_CFG_NB_CPUS);
    read_data(fc, b, 2);
    CHECK(b[0] == 3 && b[1] == 0);
    outw(fc, 0, FW_CFG_IRQ0_OVERRIDE);
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 1);

    uint16_t key;
    uint32_t size;
    CHECK(find_file(fc, "etc/two", &key, &size) == 0);
    CHECK(size == 7 && key >= FW_CFG_FILE_FIRST);
    char buf[9] = {0};
    outw(fc, 0, key);
    read_data(fc, buf, 8); /* one past the end */
    CHECK(memcmp(buf, "second!", 7) == 0 && buf[7] == 0);
    CHECK(find_file(fc, "etc/none", &key, &size) == -1);

    /* Writes to the data port change nothing. */
    CHECK(find_file(fc, "etc/one", &key, &size) == 0);
    outw(fc, 0, key);
    uint8_t w = 'X';
    fw_cfg_io(fc, FW_CFG_DATA_OFF, &w, 1, true);
    outw(fc, 0, key);
    read_data(fc, buf, 5);
    CHECK(memcmp(buf, "first", 5) == 0);

    /* The directory has room for FW_CFG_MAX_FILES, then says no. */
    int added = 2;
    for (int i = 0; i < FW_CFG_MAX_FILES + 2; i++) {
        char name[16];
        snprintf(name, sizeof(name), "opt/f%d", i);
        if (fw_cfg_add_file(fc, name, name, strlen(name)) == 0)
            added++;
    }
    CHECK(added == FW_CFG_MAX_FILES);
    fw_cfg_free(fc);
}

static void test_dma(void)
{
    struct fw_cfg *fc = fw_cfg_new(&mem);
    CHECK(fw_cfg_add_file(fc, "etc/data", "0123456789", 10) == 0);
    uint16_t key;
    uint32_t size;
    CHECK(find_file(fc, "etc/data", &key, &size) == 0);

    /* Select and read 4 bytes in one access. */
    memset(ram + 0x2000, 0xee, 16);
    uint32_t c =
        dma(fc, 0x1000, (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, 0x2000);
    CHECK(c == 0);
    CHECK(memcmp(ram + 0x2000, "0123", 4) == 0 && ram[0x2004] == 0xee);

    /* Skip 2, then read 8: the last 4 bytes of the item, then zeros. */
    CHECK(dma(fc, 0x1000, FW_CFG_DMA_SKIP, 2, 0) == 0);
    CHECK(dma(fc, 0x1000, FW_CFG_DMA_READ, 8, 0x2000) == 0);
    CHECK(memcmp(ram + 0x2000, "6789\0\0\0\0", 8) == 0);
    /* The port continues where DMA left off: at the end. */
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 0);

    /* A buffer outside RAM, or one that wraps, or one running off its end: ERROR, no write. */
    CHECK(dma(fc, 0x1000, (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4,
              UINT64_C(0xfffff000)) == FW_CFG_DMA_ERROR);
    CHECK(dma(fc, 0x1000, FW_CFG_DMA_READ, 16, UINT64_MAX - 3) == FW_CFG_DMA_ERROR);
    CHECK(dma(fc, 0x1000, FW_CFG_DMA_READ, 0x100, RAM_SIZE - 0x80) == FW_CFG_DMA_ERROR);
    CHECK(dma(fc, 0x1000, FW_CFG_DMA_READ, UINT32_MAX, 0) == FW_CFG_DMA_ERROR);

    /* Writes: every item is read-only. */
    CHECK(dma(fc, 0x1000, (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 4, 0x2000) ==
          FW_CFG_DMA_ERROR);
    outw(fc, 0, key);
    char buf[4];
    read_data(fc, buf, 4);
    CHECK(memcmp(buf, "0123", 4) == 0);

    /* The access structure itself outside RAM: nothing to report into, nothing breaks. */
    out_be32(fc, FW_CFG_DMA_OFF + 4, RAM_SIZE - 8);
    out_be32(fc, FW_CFG_DMA_OFF, 0x1);
    out_be32(fc, FW_CFG_DMA_OFF + 4, 0x1000);      /* 0x1_0000_1000: above RAM */
    CHECK(be32(ram + 0x1000) == FW_CFG_DMA_ERROR); /* untouched: still the last result */

    /* The high half is used once: the next 32-bit access is below 4 GiB again. */
    CHECK(dma(fc, 0x1000, (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 2, 0x2000) ==
          0);
    CHECK(memcmp(ram + 0x2000, "01", 2) == 0);

    /* Zero length, a missing item: success, nothing written. */
    CHECK(dma(fc, 0x1000, 0x0777u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 0, 0x2000) == 0);
    fw_cfg_free(fc);
}

static void test_save_load(void)
{
    struct fw_cfg *fc = fw_cfg_new(&mem);
    CHECK(fw_cfg_add_file(fc, "etc/data", "abcdef", 6) == 0);
    uint16_t key;
    uint32_t size;
    CHECK(find_file(fc, "etc/data", &key, &size) == 0);
    outw(fc, 0, key);
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 'a');
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 'b');

    struct state_out out;
    state_out_init(&out);
    fw_cfg_save(fc, &out);
    fw_cfg_reset(fc);
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 'Q'); /* reset selects the signature */

    struct state_in in;
    state_in_init(&in, out.buf, out.len);
    CHECK(fw_cfg_load(fc, &in) == 0 && state_in_end(&in) == 0);
    CHECK(inb(fc, FW_CFG_DATA_OFF) == 'c');

    /* An offset past the item's end is refused. */
    uint8_t bad[10] = {(uint8_t)key, (uint8_t)(key >> 8), 7, 0, 0, 0, 0, 0, 0, 0};
    state_in_init(&in, bad, sizeof(bad));
    CHECK(fw_cfg_load(fc, &in) == -1);
    CHECK(strstr(in.why, "past the end") != NULL);
    state_in_init(&in, bad, 3); /* short */
    CHECK(fw_cfg_load(fc, &in) == -1);
    state_out_free(&out);
    fw_cfg_free(fc);
}

static void write_file(const char *path, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)len) == 0);
    close(fd);
}

static void test_firmware_check(void)
{
    char dir[] = "/tmp/hv-test-fw.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64], err[256];
    snprintf(path, sizeof(path), "%s/bios.bin", dir);

    CHECK(firmware_check(path, err, sizeof(err)) == -1);
    CHECK(strstr(err, "does not exist") != NULL);
    CHECK(firmware_check(dir, err, sizeof(err)) == -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    write_file(path, 128 << 10);
    CHECK(firmware_check(path, err, sizeof(err)) == 0);
    write_file(path, (128 << 10) + 512);
    CHECK(firmware_check(path, err, sizeof(err)) == -1);
    CHECK(strstr(err, "whole number of 64 KiB") != NULL);
    write_file(path, 4 << 20);
    CHECK(firmware_check(path, err, sizeof(err)) == -1);
    CHECK(strstr(err, "64 KiB to 256 KiB") != NULL);
    write_file(path, 0);
    CHECK(firmware_check(path, err, sizeof(err)) == -1);

    /* Loaded: at the top of 4 GiB, its last 128 KiB below 1 MiB. */
    int fd = open(path, O_WRONLY | O_TRUNC);
    uint8_t img[256 << 10];
    for (size_t i = 0; i < sizeof(img); i++)
        img[i] = (uint8_t)(i * 7 + (i >> 12));
    CHECK(write(fd, img, sizeof(img)) == (ssize_t)sizeof(img));
    close(fd);
    struct firmware fw;
    CHECK(firmware_open(&fw, path) == 0);
    CHECK(fw.gpa == UINT64_C(0xfffc0000) && fw.size == sizeof(img));
    memset(ram, 0, sizeof(ram));
    CHECK(firmware_load(&fw, &mem) == 0);
    CHECK(memcmp(ram + 0xe0000, img + sizeof(img) - (128 << 10), 128 << 10) == 0);
    CHECK(ram[0xdffff] == 0);
    firmware_close(&fw);
    unlink(path);
    rmdir(dir);
}

static void test_e820(void)
{
    struct guest_mem m;
    uint8_t e[2 * 20];
    CHECK(guest_mem_init_split(&m, UINT64_C(4) << 30, FIRMWARE_LOW_RAM_MAX) == 0);
    CHECK(firmware_e820(&m, e, 2) == 2);
    uint64_t a0, l0, a1, l1;
    memcpy(&a0, e, 8);
    memcpy(&l0, e + 8, 8);
    memcpy(&a1, e + 20, 8);
    memcpy(&l1, e + 28, 8);
    CHECK(a0 == 0 && l0 == FIRMWARE_LOW_RAM_MAX && e[16] == 1);
    CHECK(a1 == UINT64_C(1) << 32 && l1 == (UINT64_C(4) << 30) - FIRMWARE_LOW_RAM_MAX);
    CHECK(e[36] == 1);
    guest_mem_destroy(&m);
}

/* What a firmware VM's fw_cfg holds for SeaBIOS (boot_firmware.c). */
static void test_firmware_files(void)
{
    struct fw_cfg *fc = fw_cfg_new(&mem);
    CHECK(firmware_fw_cfg(fc, &mem, 2, "/pci@i0cf8/scsi@1/disk@0,0\n") == 0);
    static const struct {
        const char *name;
        uint32_t size, value;
    } want[] = {
        {"etc/boot-cpus", 2, 2},
        {"etc/sercon-port", 2, 0x3f8},
        {"etc/boot-fail-wait", 4, FIRMWARE_BOOT_FAIL_WAIT_MS},
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        uint16_t key;
        uint32_t size;
        uint8_t b[4] = {0};
        CHECK(find_file(fc, want[i].name, &key, &size) == 0);
        CHECK(size == want[i].size);
        outw(fc, 0, key);
        read_data(fc, b, size);
        CHECK(((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
               (uint32_t)b[3] << 24) == want[i].value);
    }
    uint16_t key;
    uint32_t size;
    CHECK(find_file(fc, "bootorder", &key, &size) == 0 && size == 27);
    CHECK(find_file(fc, "etc/e820", &key, &size) == 0 && size == 20);
    fw_cfg_free(fc);
}

/* A config dword of the host bridge through ports CF8/CFC. */
static void host_cfg(struct io_bus *pio, uint32_t reg, uint32_t *v, bool is_write)
{
    uint8_t a[4] = {(uint8_t)reg, 0, 0, 0x80}, d[4];
    io_bus_access(pio, 0xcf8, a, 4, true);
    if (is_write)
        memcpy(d, v, 4);
    io_bus_access(pio, 0xcfc, d, 4, is_write);
    if (!is_write)
        memcpy(v, d, 4);
}

/* Vendor and device ID of 00:00.0 through the ECAM at base. */
static uint32_t ecam_id(struct io_bus *mmio, uint64_t base)
{
    uint8_t d[4];
    io_bus_access(mmio, base, d, 4, false);
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static void test_pciexbar(void)
{
    struct io_bus pio, mmio;
    struct pci_bus *bus;
    io_bus_init(&pio, "pio");
    io_bus_init(&mmio, "mmio");
    CHECK(pci_bus_init(&bus, &pio, &mmio) == 0);
    CHECK(ecam_id(&mmio, MEM_PCI_ECAM_BASE) == 0x29c08086);

    /* As SeaBIOS does it: off, high half, then base | enable. */
    uint32_t v = 0;
    host_cfg(&pio, 0x60, &v, true);
    CHECK(ecam_id(&mmio, MEM_PCI_ECAM_BASE) == 0xffffffff);
    host_cfg(&pio, 0x64, &v, true);
    v = 0xb0000001;
    host_cfg(&pio, 0x60, &v, true);
    CHECK(ecam_id(&mmio, 0xb0000000) == 0x29c08086);
    CHECK(ecam_id(&mmio, MEM_PCI_ECAM_BASE) == 0xffffffff);
    host_cfg(&pio, 0x60, &v, false);
    CHECK(v == 0xb0000001);

    /* PAM bytes read back what was written (only their defined bits). */
    v = 0xffffffff;
    host_cfg(&pio, 0x90, &v, true);
    host_cfg(&pio, 0x90, &v, false);
    CHECK(v == 0x33333330);

    /* Saved and loaded (the ECAM follows), then reset to power-on. */
    struct pci_device *h = pci_host_bridge(bus);
    struct state_out out;
    state_out_init(&out);
    CHECK(pci_device_save(h, &out) == 0);
    pci_device_reset(h);
    CHECK(ecam_id(&mmio, MEM_PCI_ECAM_BASE) == 0x29c08086);
    CHECK(ecam_id(&mmio, 0xb0000000) == 0xffffffff);
    host_cfg(&pio, 0x90, &v, false);
    CHECK(v == 0);
    struct state_in in;
    state_in_init(&in, out.buf, out.len);
    CHECK(pci_device_load(h, &in) == 0);
    CHECK(ecam_id(&mmio, 0xb0000000) == 0x29c08086);
    state_out_free(&out);

    /* Above 4 GiB, or over another range: the ECAM is off, nothing breaks. */
    v = 1;
    host_cfg(&pio, 0x64, &v, true);
    CHECK(ecam_id(&mmio, 0xb0000000) == 0xffffffff);
    pci_bus_destroy(bus);
    io_bus_destroy(&pio);
    io_bus_destroy(&mmio);
}

int main(void)
{
    test_pciexbar();
    test_signature_and_id();
    test_items_and_files();
    test_dma();
    test_save_load();
    test_firmware_check();
    test_e820();
    test_firmware_files();
    CHECK_DONE();
}
