/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The firmware's Linux boot items (x86/firmware_linux.c), read through
 * fw_cfg's ports as the linuxboot option ROM reads them: the setup part with
 * the header a boot loader fills, the kernel, the initrd placed below its
 * limits and above the kernel, the command line, the ROM as a file; and the
 * refusals (an initrd too big, a command line too long).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hw/fw_cfg.h"
#include "mem.h"
#include "x86/boot_linux.h"
#include "x86/firmware_linux.h"

#define LOW_RAM (UINT64_C(64) << 20) /* the items are not copied into RAM here */
#define SETUP   (5 * 512)            /* setup_sects 4 */
#define KLEN    (SETUP + 3000)

static struct guest_mem mem = {
    .memfd = -1, .size = LOW_RAM, .nr_regions = 1, .regions = {{.gpa = 0, .size = LOW_RAM}}};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void select_key(struct fw_cfg *fc, uint16_t key)
{
    uint8_t b[2] = {(uint8_t)key, (uint8_t)(key >> 8)};
    fw_cfg_io(fc, 0, b, 2, true);
}

static void read_item(struct fw_cfg *fc, uint16_t key, uint8_t *out, size_t n)
{
    select_key(fc, key);
    for (size_t i = 0; i < n; i++)
        fw_cfg_io(fc, FW_CFG_DATA_OFF, out + i, 1, false);
}

static uint32_t item32(struct fw_cfg *fc, uint16_t key)
{
    uint8_t b[4];
    read_item(fc, key, b, 4);
    return rd32(b);
}

static void write_tmp(char *path, const void *data, size_t len)
{
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len);
    close(fd);
}

/* A bzImage header as a 64-bit kernel of boot protocol 2.15 has it, then payload bytes. */
static void fake_kernel(uint8_t *img, uint32_t init_size)
{
    memset(img, 0, KLEN);
    img[0x1f1] = 4;
    img[0x1fe] = 0x55;
    img[0x1ff] = 0xaa;
    img[0x201] = 0x6a;
    memcpy(img + 0x202, "HdrS", 4);
    img[0x206] = 0x0f;
    img[0x207] = 0x02;
    img[0x211] = 1;                             /* LOADED_HIGH */
    memcpy(img + 0x22c, "\xff\xff\xff\x7f", 4); /* initrd_addr_max */
    memcpy(img + 0x238, "\xff\x07\x00\x00", 4); /* cmdline_size 2047 */
    memcpy(img + 0x260, &init_size, 4);
    img[0x236] = 1; /* XLF_KERNEL_64 */
    for (size_t i = SETUP; i < KLEN; i++)
        img[i] = (uint8_t)i;
}

static struct fw_cfg *make(const char *kernel, const char *initrd, const char *cmdline,
                           const char *rom, int *ret)
{
    struct boot_files f;
    struct fw_cfg *fc = fw_cfg_new(&mem);
    CHECK(fc && boot_files_open(&f, kernel, initrd) == 0);
    *ret = firmware_linux_fw_cfg(fc, &mem, &f, cmdline, rom);
    boot_files_close(&f);
    return fc;
}

int main(void)
{
    static uint8_t img[KLEN], rd[100000], got[KLEN];
    char kpath[] = "/tmp/hv-fwlinux-kernel-XXXXXX", ipath[] = "/tmp/hv-fwlinux-initrd-XXXXXX";
    char rpath[] = "/tmp/hv-fwlinux-rom-XXXXXX";
    fake_kernel(img, 16u << 20);
    write_tmp(kpath, img, KLEN);
    memset(rd, 0x5a, sizeof(rd));
    write_tmp(ipath, rd, sizeof(rd));
    uint8_t rom[512] = {0x55, 0xaa, 1};
    write_tmp(rpath, rom, sizeof(rom));
    int ret;

    struct fw_cfg *fc = make(kpath, ipath, "console=ttyS0 hv.x", rpath, &ret);
    CHECK(ret == 0);
    CHECK(item32(fc, FW_CFG_SETUP_ADDR) == FIRMWARE_LINUX_SETUP_GPA);
    CHECK(item32(fc, FW_CFG_SETUP_SIZE) == SETUP);
    read_item(fc, FW_CFG_SETUP_DATA, got, SETUP);
    CHECK(memcmp(got + 0x202, "HdrS", 4) == 0);
    CHECK(got[0x210] == 0xff && (got[0x211] & 0x81) == 0x81); /* loader, CAN_USE_HEAP */
    CHECK(got[0x224] == 0x00 && got[0x225] == 0xfe);          /* heap_end_ptr 0xFE00 */
    CHECK(rd32(got + 0x228) == FIRMWARE_LINUX_CMDLINE_GPA);   /* cmd_line_ptr */
    uint32_t initrd_gpa = rd32(got + 0x218);
    CHECK(rd32(got + 0x21c) == sizeof(rd));
    CHECK(item32(fc, FW_CFG_INITRD_ADDR) == initrd_gpa && initrd_gpa % 4096 == 0);
    /* Above the kernel's init_size, below the end of low RAM less SeaBIOS's room. */
    CHECK(initrd_gpa >= FIRMWARE_LINUX_KERNEL_GPA + (16u << 20));
    CHECK(initrd_gpa + sizeof(rd) <= LOW_RAM - (1u << 20));
    CHECK(item32(fc, FW_CFG_INITRD_SIZE) == sizeof(rd));
    read_item(fc, FW_CFG_INITRD_DATA, got, 16);
    CHECK(memcmp(got, rd, 16) == 0);
    CHECK(item32(fc, FW_CFG_KERNEL_ADDR) == FIRMWARE_LINUX_KERNEL_GPA);
    CHECK(item32(fc, FW_CFG_KERNEL_SIZE) == KLEN - SETUP);
    read_item(fc, FW_CFG_KERNEL_DATA, got, KLEN - SETUP);
    CHECK(memcmp(got, img + SETUP, KLEN - SETUP) == 0);
    CHECK(item32(fc, FW_CFG_CMDLINE_ADDR) == FIRMWARE_LINUX_CMDLINE_GPA);
    CHECK(item32(fc, FW_CFG_CMDLINE_SIZE) == sizeof("console=ttyS0 hv.x"));
    read_item(fc, FW_CFG_CMDLINE_DATA, got, sizeof("console=ttyS0 hv.x"));
    CHECK(strcmp((char *)got, "console=ttyS0 hv.x") == 0);
    /* The ROM in the directory. */
    uint8_t dir[4 + 64 * 32];
    read_item(fc, FW_CFG_FILE_DIR, dir, sizeof(dir));
    bool found = false;
    for (unsigned i = 0; i < dir[3]; i++)
        found |= strcmp((char *)dir + 4 + 64 * i + 8, FIRMWARE_LINUXBOOT_FILE) == 0 &&
                 rd32(dir + 4 + 64 * i) == 0x00020000; /* 512, big-endian */
    CHECK(found);
    fw_cfg_free(fc);

    /* No initrd: its items say 0 bytes. */
    fc = make(kpath, NULL, "x", rpath, &ret);
    CHECK(ret == 0 && item32(fc, FW_CFG_INITRD_SIZE) == 0);
    fw_cfg_free(fc);

    /* An initrd that would reach into the kernel's room is refused. */
    fake_kernel(img, (62u << 20) + (1u << 19));
    int fd = open(kpath, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, img, KLEN) == KLEN);
    close(fd);
    fc = make(kpath, ipath, "x", rpath, &ret);
    CHECK(ret < 0);
    fw_cfg_free(fc);

    /* A command line longer than the kernel takes is refused. */
    static char longline[3000];
    memset(longline, 'a', sizeof(longline) - 1);
    fc = make(kpath, NULL, longline, rpath, &ret);
    CHECK(ret < 0);
    fw_cfg_free(fc);

    /* Not a bzImage. */
    fc = make(rpath, NULL, "x", rpath, &ret);
    CHECK(ret < 0);
    fw_cfg_free(fc);

    unlink(kpath);
    unlink(ipath);
    unlink(rpath);
    CHECK_DONE();
}
