/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The firmware's direct Linux boot: fw_cfg items for QEMU's linuxboot_dma option ROM. */
#include "firmware_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hw/fw_cfg.h"
#include "log.h"
#include "util.h"
#include "x86/boot_linux.h"

#define ROM_MAX (UINT64_C(128) << 10) /* an option ROM fits in 0xC0000-0xDFFFF */

/* The setup header's fields the loader fills (Documentation/arch/x86/boot.rst). */
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS      0x211
#define HDR_RAMDISK_IMAGE  0x218
#define HDR_RAMDISK_SIZE   0x21c
#define HDR_HEAP_END_PTR   0x224
#define HDR_CMD_LINE_PTR   0x228
#define LOADER_UNDEFINED   0xff
#define CAN_USE_HEAP       0x80
/* The initrd stays this far below the end of low RAM: SeaBIOS keeps its tables there. */
#define INITRD_TOP_GAP (UINT64_C(1) << 20)

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int firmware_linux_check(const char *kernel, const char *rom, char *err, size_t errlen)
{
    struct stat st;
    uint8_t sig[2] = {0, 0};

    if (stat(rom, &st) < 0) {
        snprintf(err, errlen,
                 "the firmware's Linux loader %s %s: install Debian's qemu-system-data package "
                 "(its option ROM lets --firmware boot --kernel)",
                 rom, errno == ENOENT ? "does not exist" : strerror(errno));
        return -1;
    }
    int fd = open(rom, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, sig, sizeof(sig)) : -1;
    if (fd >= 0)
        close(fd);
    if (!S_ISREG(st.st_mode) || n != 2 || sig[0] != 0x55 || sig[1] != 0xaa ||
        (uint64_t)st.st_size > ROM_MAX) {
        snprintf(err, errlen,
                 "the firmware's Linux loader %s is not an option ROM of at most 128 KiB (it "
                 "should be qemu-system-data's linuxboot_dma.bin)",
                 rom);
        return -1;
    }
    fd = open(kernel, O_RDONLY | O_CLOEXEC);
    uint8_t magic[4] = {0};
    n = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;
    if (fd >= 0)
        close(fd);
    if (n == 4 && memcmp(magic, "\177ELF", 4) == 0) {
        snprintf(err, errlen,
                 "the kernel %s is an ELF vmlinux: with --firmware the kernel must be a bzImage "
                 "(the firmware enters it through its real-mode setup code)",
                 kernel);
        return -1;
    }
    return 0;
}

static int add_u32(struct fw_cfg *fc, uint16_t key, uint64_t v)
{
    return fw_cfg_add_u32(fc, key, (uint32_t)v);
}

/* The option ROM, read at start (the sandbox takes the right to open files away later). */
static int add_rom(struct fw_cfg *fc, const char *rom)
{
    int fd = open(rom, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_err("cannot open the firmware's Linux loader %s: %s", rom, strerror(errno));
        return -1;
    }
    size_t len;
    uint8_t *data = boot_read_file("Linux loader", rom, fd, ROM_MAX, &len);
    close(fd);
    int ret = data ? fw_cfg_add_file(fc, FIRMWARE_LINUXBOOT_FILE, data, len) : -1;
    free(data);
    return ret;
}

int firmware_linux_fw_cfg(struct fw_cfg *fc, const struct guest_mem *mem,
                          const struct boot_files *files, const char *cmdline, const char *rom)
{
    const char *why;
    struct bzimage_info bi;
    size_t klen, ilen = 0;
    uint8_t *initrd = NULL;
    int ret = -1;
    uint64_t low_end = mem->regions[0].size;

    uint8_t *img = boot_read_file("kernel", files->kernel, files->kernel_fd, low_end, &klen);
    if (!img)
        return -1;
    if (bzimage_parse(img, klen, &bi, &why) < 0) {
        log_err("the kernel %s cannot be booted: %s", files->kernel, why);
        goto out;
    }
    size_t cmdlen = strlen(cmdline) + 1;
    if (cmdlen > FIRMWARE_LINUX_CMDLINE_MAX || (bi.cmdline_size && cmdlen > bi.cmdline_size + 1)) {
        log_err("the command line is %zu bytes, longer than the kernel %s takes", cmdlen - 1,
                files->kernel);
        goto out;
    }
    /* The kernel decompresses itself in place: init_size bytes from 1 MiB are its own. */
    uint64_t kernel_end = FIRMWARE_LINUX_KERNEL_GPA + MAX((uint64_t)bi.init_size, klen);
    uint64_t initrd_gpa = 0;
    if (files->initrd) {
        uint64_t top = MIN((uint64_t)bi.initrd_addr_max + 1, low_end - INITRD_TOP_GAP);
        initrd = boot_read_file("initrd", files->initrd, files->initrd_fd, top, &ilen);
        if (!initrd)
            goto out;
        initrd_gpa = (top - ilen) & ~UINT64_C(0xfff);
        if (ilen > top || initrd_gpa < kernel_end) {
            log_err("the initrd %s (%llu MiB) does not fit in guest memory beside the kernel: "
                    "give the VM more --memory",
                    files->initrd, (unsigned long long)(ilen >> 20));
            goto out;
        }
    }
    /* The real-mode part with the header a boot loader fills in. */
    uint8_t *setup = img;
    size_t setup_len = bi.payload_offset;
    setup[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
    setup[HDR_LOADFLAGS] |= CAN_USE_HEAP;
    put_le(setup + HDR_HEAP_END_PTR, FIRMWARE_LINUX_CMDLINE_GPA - FIRMWARE_LINUX_SETUP_GPA - 0x200,
           2);
    put_le(setup + HDR_CMD_LINE_PTR, FIRMWARE_LINUX_CMDLINE_GPA, 4);
    put_le(setup + HDR_RAMDISK_IMAGE, initrd_gpa, 4);
    put_le(setup + HDR_RAMDISK_SIZE, ilen, 4);

    if (add_u32(fc, FW_CFG_SETUP_ADDR, FIRMWARE_LINUX_SETUP_GPA) < 0 ||
        add_u32(fc, FW_CFG_SETUP_SIZE, setup_len) < 0 ||
        fw_cfg_add_item(fc, FW_CFG_SETUP_DATA, setup, setup_len) < 0 ||
        add_u32(fc, FW_CFG_KERNEL_ADDR, FIRMWARE_LINUX_KERNEL_GPA) < 0 ||
        add_u32(fc, FW_CFG_KERNEL_SIZE, klen - setup_len) < 0 ||
        fw_cfg_add_item(fc, FW_CFG_KERNEL_DATA, img + setup_len, klen - setup_len) < 0 ||
        add_u32(fc, FW_CFG_INITRD_ADDR, initrd_gpa) < 0 ||
        add_u32(fc, FW_CFG_INITRD_SIZE, ilen) < 0 ||
        fw_cfg_add_item(fc, FW_CFG_INITRD_DATA, initrd, ilen) < 0 ||
        add_u32(fc, FW_CFG_KERNEL_CMDLINE, FIRMWARE_LINUX_CMDLINE_GPA) < 0 ||
        add_u32(fc, FW_CFG_CMDLINE_ADDR, FIRMWARE_LINUX_CMDLINE_GPA) < 0 ||
        add_u32(fc, FW_CFG_CMDLINE_SIZE, cmdlen) < 0 ||
        fw_cfg_add_item(fc, FW_CFG_CMDLINE_DATA, cmdline, cmdlen) < 0) {
        log_err("cannot give the kernel %s to the firmware", files->kernel);
        goto out;
    }
    ret = add_rom(fc, rom);
out:
    free(img);
    free(initrd);
    return ret;
}
