/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Firmware boot: the image at the top of 4 GiB as a KVM_MEM_READONLY slot
 * (reads come from the image, writes exit as MMIO and nothing takes them),
 * a copy of its top 128 KiB in RAM at 0xE0000 where a BIOS expects its
 * F-segment, and the fw_cfg files the firmware reads.
 */
#include "boot_firmware.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hw/fw_cfg.h"
#include "log.h"
#include "util.h"

#define E820_RECORD   20 /* u64 address, u64 length, u32 type, packed, little-endian */
#define E820_TYPE_RAM 1

static const char *size_problem(uint64_t size)
{
    if (size < FIRMWARE_MIN_SIZE || size > FIRMWARE_MAX_SIZE)
        return "a firmware image here is 64 KiB to 256 KiB (SeaBIOS's bios.bin or "
               "bios-256k.bin)";
    if (size % FIRMWARE_ALIGN)
        return "a firmware image is a whole number of 64 KiB";
    return NULL;
}

int firmware_check(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "the firmware %s %s", path,
                 errno == ENOENT ? "does not exist" : strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the firmware %s is not a regular file", path);
        return -1;
    }
    if (access(path, R_OK) < 0) {
        snprintf(err, errlen, "the firmware %s cannot be read: %s", path, strerror(errno));
        return -1;
    }
    const char *why = size_problem((uint64_t)st.st_size);
    if (why) {
        snprintf(err, errlen, "the firmware %s is %llu bytes: %s", path,
                 (unsigned long long)st.st_size, why);
        return -1;
    }
    return 0;
}

int firmware_open(struct firmware *fw, const char *path)
{
    memset(fw, 0, sizeof(*fw));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        log_err("cannot open the firmware %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *why = size_problem((uint64_t)st.st_size);
    if (why) {
        log_err("the firmware %s is %llu bytes: %s", path, (unsigned long long)st.st_size, why);
        close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size;
    void *rom = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rom == MAP_FAILED) {
        log_err("cannot map %llu bytes for the firmware: %s", (unsigned long long)size,
                strerror(errno));
        close(fd);
        return -1;
    }
    uint64_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (uint8_t *)rom + done, size - done, (off_t)done);
        if (n <= 0) {
            log_err("cannot read the firmware %s: %s", path, n ? strerror(errno) : "it shrank");
            munmap(rom, size);
            close(fd);
            return -1;
        }
        done += (uint64_t)n;
    }
    close(fd);
    /* The guest only ever sees it through a read-only slot: keep it read-only here too. */
    mprotect(rom, size, PROT_READ);
    fw->rom = rom;
    fw->size = size;
    fw->gpa = (UINT64_C(1) << 32) - size;
    return 0;
}

void firmware_close(struct firmware *fw)
{
    if (fw->rom)
        munmap(fw->rom, fw->size);
    memset(fw, 0, sizeof(*fw));
}

int firmware_map(const struct firmware *fw, int vm_fd, unsigned slot)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .flags = KVM_MEM_READONLY,
        .guest_phys_addr = fw->gpa,
        .memory_size = fw->size,
        .userspace_addr = (uint64_t)(uintptr_t)fw->rom,
    };
    if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
        int err = errno;
        log_err("cannot map the firmware at 0x%llx: %s", (unsigned long long)fw->gpa,
                strerror(err));
        return -err;
    }
    return 0;
}

int firmware_load(const struct firmware *fw, const struct guest_mem *mem)
{
    uint64_t n = MIN(fw->size, FIRMWARE_LOW_ALIAS);
    if (guest_mem_write(mem, FIRMWARE_LOW_END - n, fw->rom + fw->size - n, n) < 0) {
        log_err("cannot copy the firmware below 1 MiB: RAM is too small");
        return -1;
    }
    return 0;
}

static void le_put(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Only RAM, as the firmware wants it: it reserves its own areas (the EBDA,
 * the BIOS, the ECAM it programs) in the map it gives the OS.
 */
unsigned firmware_e820(const struct guest_mem *mem, uint8_t *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < mem->nr_regions && n < max; i++, n++) {
        uint8_t *e = out + (size_t)n * E820_RECORD;
        le_put(e, mem->regions[i].gpa, 8);
        le_put(e + 8, mem->regions[i].size, 8);
        le_put(e + 16, E820_TYPE_RAM, 4);
    }
    return n;
}

int firmware_fw_cfg(struct fw_cfg *fc, const struct guest_mem *mem, unsigned nr_cpus,
                    const char *bootorder)
{
    uint8_t e820[MEM_MAX_REGIONS * E820_RECORD];
    unsigned n = firmware_e820(mem, e820, MEM_MAX_REGIONS);
    uint8_t sercon[2], cpus[2], fail_wait[4];
    le_put(sercon, FIRMWARE_SERCON_PORT, 2);
    le_put(cpus, nr_cpus, 2);
    le_put(fail_wait, FIRMWARE_BOOT_FAIL_WAIT_MS, 4);

    if (fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, mem->size) < 0 ||
        fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, (uint16_t)nr_cpus) < 0 ||
        fw_cfg_add_u16(fc, FW_CFG_MAX_CPUS, (uint16_t)nr_cpus) < 0 ||
        fw_cfg_add_u16(fc, FW_CFG_NOGRAPHIC, 1) < 0 ||
        fw_cfg_add_u16(fc, FW_CFG_BOOT_MENU, 0) < 0 ||
        fw_cfg_add_file(fc, "etc/boot-cpus", cpus, sizeof(cpus)) < 0 ||
        fw_cfg_add_file(fc, "etc/e820", e820, (size_t)n * E820_RECORD) < 0 ||
        fw_cfg_add_file(fc, "etc/sercon-port", sercon, sizeof(sercon)) < 0 ||
        fw_cfg_add_file(fc, "etc/boot-fail-wait", fail_wait, sizeof(fail_wait)) < 0)
        return -1;
    if (bootorder && *bootorder &&
        fw_cfg_add_file(fc, "bootorder", bootorder, strlen(bootorder)) < 0)
        return -1;
    return 0;
}
