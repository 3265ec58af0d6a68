/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "boot_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "le.h"
#include "log.h"
#include "util.h"

/* Setup header offsets (boot.rst, "The Real-Mode Kernel Header"). */
#define HDR_SETUP_SECTS     0x1f1
#define HDR_VID_MODE        0x1fa
#define HDR_BOOT_FLAG       0x1fe
#define HDR_JUMP            0x200
#define HDR_HEADER          0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_INIT_SIZE       0x260
#define HDR_MIN_END         0x264 /* we read fields up to init_size */

/* Zero-page offsets (zero-page.rst). */
#define ZP_ACPI_RSDP_ADDR  0x070
#define ZP_EXT_RAMDISK_IMG 0x0c0
#define ZP_EXT_RAMDISK_SZ  0x0c4
#define ZP_EXT_CMD_LINE    0x0c8
#define ZP_E820_ENTRIES    0x1e8
#define ZP_E820_TABLE      0x2d0
#define ZP_E820_MAX        128

#define HDRS_MAGIC       0x53726448 /* "HdrS" */
#define LOADED_HIGH      0x01
#define CAN_USE_HEAP     0x80
#define XLF_KERNEL_64    0x01
#define LOADER_UNDEFINED 0xff

/* PVH: hvm_start_info (xen/interface/hvm/start_info.h). */
#define PVH_MAGIC                0x336ec578
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* ---- memory map ---- */

static unsigned e820_add(struct e820_entry *out, unsigned n, unsigned max, uint64_t addr,
                         uint64_t size, uint32_t type)
{
    if (size == 0 || n >= max)
        return n;
    out[n] = (struct e820_entry){addr, size, type};
    return n + 1;
}

unsigned e820_build(const struct guest_mem *mem, struct e820_entry *out, unsigned max)
{
    unsigned n = 0;

    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const struct mem_region *r = &mem->regions[i];
        uint64_t end = r->gpa + r->size;
        if (r->gpa == 0) {
            /* Low RAM minus the PC holes: EBDA, VGA, option ROMs, BIOS (our ACPI tables). */
            n = e820_add(out, n, max, 0, MIN(end, BOOT_EBDA_GPA), E820_RAM);
            if (end > BOOT_EBDA_GPA)
                n = e820_add(out, n, max, BOOT_EBDA_GPA, 0xa0000 - BOOT_EBDA_GPA, E820_RESERVED);
            if (end > BOOT_BIOS_GPA)
                n = e820_add(out, n, max, BOOT_BIOS_GPA, 0x100000 - BOOT_BIOS_GPA, E820_RESERVED);
            if (end > 0x100000)
                n = e820_add(out, n, max, 0x100000, end - 0x100000, E820_RAM);
            /* The ECAM must be reserved, or Linux refuses MMCONFIG (and our PCIe space). */
            n = e820_add(out, n, max, MEM_PCI_ECAM_BASE, MEM_PCI_ECAM_SIZE, E820_RESERVED);
        } else {
            n = e820_add(out, n, max, r->gpa, r->size, E820_RAM);
        }
    }
    return n;
}

/* ---- bzImage ---- */

int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *bi, const char **err)
{
    memset(bi, 0, sizeof(*bi));
    if (len < HDR_MIN_END + 4 || le32_get(img + HDR_HEADER) != HDRS_MAGIC ||
        le16_get(img + HDR_BOOT_FLAG) != 0xaa55) {
        *err = "it is not a Linux bzImage (no \"HdrS\" boot header)";
        return -1;
    }
    bi->version = le16_get(img + HDR_VERSION);
    bi->setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
    bi->loadflags = img[HDR_LOADFLAGS];
    bi->header_end = 0x202 + (size_t)img[HDR_JUMP + 1];
    bi->payload_offset = ((size_t)bi->setup_sects + 1) * 512;
    if (bi->version < 0x020c) {
        *err = "its boot protocol is older than 2.12 (a kernel before Linux 3.8)";
        return -1;
    }
    if (!(bi->loadflags & LOADED_HIGH)) {
        *err = "it is a zImage, not a bzImage";
        return -1;
    }
    bi->xloadflags = le16_get(img + HDR_XLOADFLAGS);
    if (!(bi->xloadflags & XLF_KERNEL_64)) {
        *err = "it is not a 64-bit kernel (no 64-bit entry point)";
        return -1;
    }
    if (bi->header_end > bi->payload_offset || bi->header_end < HDR_MIN_END ||
        bi->payload_offset >= len) {
        *err = "its setup header is inconsistent (sizes beyond the file)";
        return -1;
    }
    bi->initrd_addr_max = le32_get(img + HDR_INITRD_ADDR_MAX);
    bi->cmdline_size = le32_get(img + HDR_CMDLINE_SIZE);
    bi->init_size = le32_get(img + HDR_INIT_SIZE);
    return 0;
}

/* ---- ELF (PVH) ---- */

/* Walk the notes in [p, p + len) looking for Xen's PHYS32_ENTRY. */
static uint32_t scan_notes(const uint8_t *p, uint64_t len)
{
    uint64_t off = 0;

    while (len - off >= 12) {
        uint32_t namesz = le32_get(p + off), descsz = le32_get(p + off + 4),
                 type = le32_get(p + off + 8);
        uint64_t name_off = off + 12;
        uint64_t desc_off = name_off + align_up(namesz, 4);
        uint64_t next = desc_off + align_up(descsz, 4);
        if (desc_off > len || next > len || next <= off)
            break;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
            memcmp(p + name_off, "Xen", 4) == 0 && descsz >= 4)
            return le32_get(p + desc_off); /* the low 32 bits, whatever descsz says */
        off = next;
    }
    return 0;
}

#define ELF_PHDR_LOAD 1
#define ELF_PHDR_NOTE 4

/* Validate an ELF64 x86-64 header; fill the program header table bounds. */
static bool elf_phdrs(const uint8_t *img, size_t len, uint64_t *phoff, unsigned *phnum)
{
    if (len < 64 || memcmp(img, "\177ELF", 4) != 0 || img[4] != 2 /* 64-bit */ ||
        img[5] != 1 /* little endian */ || le16_get(img + 18) != 62 /* x86-64 */)
        return false;
    *phoff = le64_get(img + 32);
    *phnum = le16_get(img + 56);
    uint16_t phentsize = le16_get(img + 54);
    return phentsize == 56 && range_within(*phoff, (uint64_t)*phnum * 56, len);
}

uint32_t pvh_find_entry(const uint8_t *img, size_t len)
{
    uint64_t phoff;
    unsigned phnum;

    if (!elf_phdrs(img, len, &phoff, &phnum))
        return 0;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * 56;
        uint64_t off = le64_get(ph + 8), filesz = le64_get(ph + 32);
        if (le32_get(ph) != ELF_PHDR_NOTE || !range_within(off, filesz, len))
            continue;
        uint32_t entry = scan_notes(img + off, filesz);
        if (entry)
            return entry;
    }
    return 0;
}

/* ---- loading ---- */

int boot_files_open(struct boot_files *f, const char *kernel, const char *initrd)
{
    f->kernel = kernel;
    f->initrd = initrd;
    f->kernel_fd = open(kernel, O_RDONLY | O_CLOEXEC);
    f->initrd_fd = initrd ? open(initrd, O_RDONLY | O_CLOEXEC) : -1;
    if (f->kernel_fd < 0 || (initrd && f->initrd_fd < 0)) {
        const char *what = f->kernel_fd < 0 ? "kernel" : "initrd";
        log_err("cannot open the %s %s: %s", what, f->kernel_fd < 0 ? kernel : initrd,
                strerror(errno));
        boot_files_close(f);
        return -1;
    }
    return 0;
}

void boot_files_close(struct boot_files *f)
{
    if (f->kernel_fd >= 0)
        close(f->kernel_fd);
    if (f->initrd_fd >= 0)
        close(f->initrd_fd);
    f->kernel_fd = f->initrd_fd = -1;
}

/* Read a whole file (kernel or initrd) into memory from its start, at most max bytes. */
uint8_t *boot_read_file(const char *what, const char *path, int fd, uint64_t max, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        log_err("the %s %s is not a regular file", what, path);
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        log_err("the %s %s is too large (%llu MiB) for this guest's memory", what, path,
                (unsigned long long)(st.st_size >> 20));
        return NULL;
    }
    uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf || lseek(fd, 0, SEEK_SET) != 0 ||
        read_full(fd, buf, (size_t)st.st_size) != st.st_size) {
        log_err("cannot read the %s %s: %s", what, path, buf ? strerror(errno) : "out of memory");
        free(buf);
        return NULL;
    }
    *len = (size_t)st.st_size;
    return buf;
}

static uint64_t low_ram_end(const struct guest_mem *mem)
{
    return mem->regions[0].size;
}

/* Put the initrd as high as allowed in low RAM, above the kernel. */
static int place_initrd(const struct guest_mem *mem, const struct boot_files *f,
                        uint64_t kernel_end, uint64_t limit, uint64_t *gpa, uint64_t *size)
{
    size_t len;
    const char *path = f->initrd;
    uint64_t top = MIN(low_ram_end(mem), limit) & ~UINT64_C(0xfff);
    uint8_t *data = boot_read_file("initrd", path, f->initrd_fd, top, &len);
    if (!data)
        return -1;
    uint64_t start = (top - len) & ~UINT64_C(0xfff);
    if (len > top || start < kernel_end) {
        log_err("the initrd %s (%llu MiB) does not fit in guest memory beside the kernel: give "
                "the VM more --memory",
                path, (unsigned long long)(len >> 20));
        free(data);
        return -1;
    }
    guest_mem_write(mem, start, data, len);
    free(data);
    *gpa = start;
    *size = len;
    return 0;
}

static int write_cmdline(const struct guest_mem *mem, const char *cmdline, uint64_t max)
{
    size_t n = strlen(cmdline);
    if (n >= max || n >= BOOT_CMDLINE_MAX) {
        log_err("the kernel command line is %zu bytes, this kernel takes at most %llu", n,
                (unsigned long long)MIN(max, BOOT_CMDLINE_MAX) - 1);
        return -1;
    }
    return guest_mem_write(mem, BOOT_CMDLINE_GPA, cmdline, n + 1);
}

/* Identity map of the first 4 GiB with 2 MiB pages: the kernel, zero page, cmdline, initrd. */
static void write_page_tables(const struct guest_mem *mem)
{
    uint8_t *pml4 = guest_mem_ptr(mem, BOOT_PML4_GPA, 6 * 4096);
    uint8_t *pdpt = pml4 + 4096, *pd = pml4 + 2 * 4096;

    memset(pml4, 0, 6 * 4096);
    le64_put(pml4, (BOOT_PML4_GPA + 4096) | 0x3); /* present, writable */
    for (uint64_t i = 0; i < 4; i++)
        le64_put(pdpt + 8 * i, (BOOT_PML4_GPA + (2 + i) * 4096) | 0x3);
    for (uint64_t i = 0; i < 4 * 512; i++)
        le64_put(pd + 8 * i, (i << 21) | 0x83); /* present, writable, 2 MiB page */
}

static void write_gdt(const struct guest_mem *mem)
{
    /* 0x10: code (64-bit for the Linux entry, 32-bit for PVH), 0x18: data, 0x20: TSS. */
    static const uint64_t gdt[] = {
        0,
        0,
        UINT64_C(0x00af9b000000ffff),
        UINT64_C(0x00cf93000000ffff),
        UINT64_C(0x0000890000000067),
        UINT64_C(0x00cf9b000000ffff),
    };
    uint8_t *p = guest_mem_ptr(mem, BOOT_GDT_GPA, sizeof(gdt));
    for (size_t i = 0; i < ARRAY_SIZE(gdt); i++)
        le64_put(p + 8 * i, gdt[i]);
}

static int load_bzimage(const struct guest_mem *mem, const uint8_t *img, size_t len,
                        const struct bzimage_info *bi, const struct boot_files *f,
                        const char *cmdline, uint64_t rsdp_gpa, struct boot_info *out)
{
    size_t payload = len - bi->payload_offset;
    uint64_t kernel_end = BOOT_KERNEL_GPA + MAX((uint64_t)bi->init_size, (uint64_t)payload);
    if (kernel_end > low_ram_end(mem)) {
        log_err("the kernel needs %llu MiB to boot, more than the guest's memory: give the VM "
                "more --memory",
                (unsigned long long)(kernel_end >> 20));
        return -1;
    }
    guest_mem_write(mem, BOOT_KERNEL_GPA, img + bi->payload_offset, payload);

    uint8_t *zp = guest_mem_ptr(mem, BOOT_ZERO_PAGE_GPA, 4096);
    memset(zp, 0, 4096);
    memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, bi->header_end - HDR_SETUP_SECTS);
    le16_put(zp + HDR_VID_MODE, 0xffff);
    zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
    zp[HDR_LOADFLAGS] = (uint8_t)(bi->loadflags | CAN_USE_HEAP);
    le16_put(zp + HDR_HEAP_END_PTR, 0xfe00);
    le32_put(zp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_GPA);
    if (write_cmdline(mem, cmdline, bi->cmdline_size + (uint64_t)1) < 0)
        return -1;
    if (f->initrd) {
        uint64_t gpa, size;
        uint64_t limit = (uint64_t)bi->initrd_addr_max + 1;
        if (place_initrd(mem, f, kernel_end, limit, &gpa, &size) < 0)
            return -1;
        le32_put(zp + HDR_RAMDISK_IMAGE, (uint32_t)gpa);
        le32_put(zp + HDR_RAMDISK_SIZE, (uint32_t)size);
        le32_put(zp + ZP_EXT_RAMDISK_IMG, (uint32_t)(gpa >> 32));
        le32_put(zp + ZP_EXT_RAMDISK_SZ, (uint32_t)(size >> 32));
    }
    le64_put(zp + ZP_ACPI_RSDP_ADDR, rsdp_gpa);

    struct e820_entry map[E820_MAX];
    unsigned n = e820_build(mem, map, E820_MAX);
    zp[ZP_E820_ENTRIES] = (uint8_t)n;
    for (unsigned i = 0; i < n && i < ZP_E820_MAX; i++) {
        uint8_t *e = zp + ZP_E820_TABLE + 20 * i;
        le64_put(e, map[i].addr);
        le64_put(e + 8, map[i].size);
        le32_put(e + 16, map[i].type);
    }
    write_page_tables(mem);
    out->kind = BOOT_LINUX64;
    out->entry = BOOT_KERNEL_GPA + 0x200;
    out->params_gpa = BOOT_ZERO_PAGE_GPA;
    return 0;
}

static int load_pvh(const struct guest_mem *mem, const uint8_t *img, size_t len, uint32_t entry,
                    const struct boot_files *f, const char *cmdline, uint64_t rsdp_gpa,
                    struct boot_info *out)
{
    const char *kernel = f->kernel;
    uint64_t phoff, kernel_end = 0;
    unsigned phnum;

    elf_phdrs(img, len, &phoff, &phnum);
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * 56;
        if (le32_get(ph) != ELF_PHDR_LOAD)
            continue;
        uint64_t off = le64_get(ph + 8), paddr = le64_get(ph + 24);
        uint64_t filesz = le64_get(ph + 32), memsz = le64_get(ph + 40);
        uint8_t *dst = guest_mem_ptr(mem, paddr, memsz);
        if (filesz > memsz || !range_within(off, filesz, len) || !dst) {
            log_err("the kernel %s has a segment outside the file or the guest's memory (at "
                    "0x%llx, %llu bytes): give the VM more --memory",
                    kernel, (unsigned long long)paddr, (unsigned long long)memsz);
            return -1;
        }
        memcpy(dst, img + off, filesz);
        memset(dst + filesz, 0, memsz - filesz);
        kernel_end = MAX(kernel_end, paddr + memsz);
    }

    uint8_t *si = guest_mem_ptr(mem, BOOT_START_INFO_GPA, 4096);
    memset(si, 0, 4096);
    le32_put(si, PVH_MAGIC);
    le32_put(si + 4, 1); /* version 1: Linux needs the memory map */
    if (write_cmdline(mem, cmdline, BOOT_CMDLINE_MAX) < 0)
        return -1;
    le64_put(si + 24, BOOT_CMDLINE_GPA);
    le64_put(si + 32, rsdp_gpa);

    /* Memory map at +0x100 (24-byte entries), module list at +0x800. */
    struct e820_entry map[E820_MAX];
    unsigned n = e820_build(mem, map, E820_MAX);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = si + 0x100 + 24 * i;
        le64_put(e, map[i].addr);
        le64_put(e + 8, map[i].size);
        le32_put(e + 16, map[i].type);
    }
    le64_put(si + 40, BOOT_START_INFO_GPA + 0x100);
    le32_put(si + 48, n);
    if (f->initrd) {
        uint64_t gpa, size;
        if (place_initrd(mem, f, kernel_end, UINT64_C(1) << 32, &gpa, &size) < 0)
            return -1;
        le32_put(si + 12, 1);
        le64_put(si + 16, BOOT_START_INFO_GPA + 0x800);
        le64_put(si + 0x800, gpa);
        le64_put(si + 0x808, size);
    }
    out->kind = BOOT_PVH;
    out->entry = entry;
    out->params_gpa = BOOT_START_INFO_GPA;
    return 0;
}

int boot_linux_load(const struct guest_mem *mem, const struct boot_files *f, const char *cmdline,
                    uint64_t rsdp_gpa, struct boot_info *out)
{
    const char *kernel = f->kernel;
    size_t len;
    const char *why;
    struct bzimage_info bi;
    int ret = -1;

    uint8_t *img = boot_read_file("kernel", kernel, f->kernel_fd, low_ram_end(mem), &len);
    if (!img)
        return -1;
    write_gdt(mem);
    uint32_t pvh_entry = pvh_find_entry(img, len);
    if (pvh_entry)
        ret = load_pvh(mem, img, len, pvh_entry, f, cmdline, rsdp_gpa, out);
    else if (memcmp(img, "\177ELF", len < 4 ? len : 4) == 0 && len >= 4)
        log_err("the kernel %s is an ELF file without a PVH entry note (build it with "
                "CONFIG_PVH=y, or give the bzImage)",
                kernel);
    else if (bzimage_parse(img, len, &bi, &why) < 0)
        log_err("the kernel %s cannot be booted: %s", kernel, why);
    else
        ret = load_bzimage(mem, img, len, &bi, f, cmdline, rsdp_gpa, out);
    free(img);
    return ret;
}

int boot_kernel_check(const char *path, char *err, size_t errlen)
{
    uint8_t buf[65536];
    struct bzimage_info bi;
    const char *why;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the kernel %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = read_full(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read the kernel %s: %s", path, strerror(errno));
        return -1;
    }
    if (n >= 4 && memcmp(buf, "\177ELF", 4) == 0)
        return 0; /* the PVH note is looked for when loading */
    if (bzimage_parse(buf, (size_t)n, &bi, &why) < 0) {
        snprintf(err, errlen, "the kernel %s cannot be booted: %s", path, why);
        return -1;
    }
    return 0;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->g = 1;
    s->l = code64;
    s->db = !code64;
}

int boot_linux_setup_vcpu(int vcpu_fd, const struct boot_info *info)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;

    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    bool lm = info->kind == BOOT_LINUX64;
    flat_segment(&sregs.cs, lm ? 0x10 : 0x28, 0xb, lm);
    flat_segment(&sregs.ds, 0x18, 0x3, false);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.gdt.base = BOOT_GDT_GPA;
    sregs.gdt.limit = 6 * 8 - 1;
    memset(&sregs.tr, 0, sizeof(sregs.tr));
    sregs.tr.selector = 0x20;
    sregs.tr.limit = 0x67;
    sregs.tr.type = 0xb; /* busy 32-bit TSS */
    sregs.tr.present = 1;
    if (lm) {
        sregs.cr0 = 0x80000031; /* PG, NE, ET, PE */
        sregs.cr3 = BOOT_PML4_GPA;
        sregs.cr4 = 0x20;   /* PAE */
        sregs.efer = 0x500; /* LMA, LME */
    } else {
        sregs.cr0 = 0x11; /* PE (and ET, hard-wired) */
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = 0;
    }
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        return -errno;

    memset(&regs, 0, sizeof(regs));
    regs.rflags = 0x2;
    regs.rip = info->entry;
    regs.rsp = BOOT_STACK_GPA;
    if (lm)
        regs.rsi = info->params_gpa;
    else
        regs.rbx = info->params_gpa;
    if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}
