/* SPDX-License-Identifier: GPL-2.0-or-later */
/* bzImage header checks, PVH note lookup and the e820 map, on crafted images. */
#include <string.h>

#include "check.h"
#include "le.h"
#include "mem.h"
#include "x86/boot_linux.h"

static uint8_t img[64 * 1024];

/* A minimal valid 64-bit bzImage header, protocol 2.15. */
static void make_bzimage(void)
{
    memset(img, 0, sizeof(img));
    img[0x1f1] = 4; /* setup_sects */
    le16_put(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x6a;                 /* header ends at 0x26c */
    le32_put(img + 0x202, 0x53726448); /* HdrS */
    le16_put(img + 0x206, 0x020f);
    img[0x211] = 0x01; /* LOADED_HIGH */
    le32_put(img + 0x22c, 0x7fffffff);
    le16_put(img + 0x236, 0x0003); /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
    le32_put(img + 0x238, 2047);
    le32_put(img + 0x260, 0x01000000);
}

static void test_bzimage(void)
{
    struct bzimage_info bi;
    const char *err = NULL;

    make_bzimage();
    CHECK(bzimage_parse(img, sizeof(img), &bi, &err) == 0);
    CHECK(bi.version == 0x020f);
    CHECK(bi.payload_offset == 5 * 512);
    CHECK(bi.header_end == 0x26c);
    CHECK(bi.initrd_addr_max == 0x7fffffff);
    CHECK(bi.cmdline_size == 2047);
    CHECK(bi.init_size == 0x01000000);

    /* setup_sects 0 means 4. */
    img[0x1f1] = 0;
    CHECK(bzimage_parse(img, sizeof(img), &bi, &err) == 0 && bi.payload_offset == 5 * 512);

    make_bzimage();
    img[0x202] = 'X';
    CHECK(bzimage_parse(img, sizeof(img), &bi, &err) < 0 && strstr(err, "not a Linux bzImage"));

    make_bzimage();
    le16_put(img + 0x236, 0);
    CHECK(bzimage_parse(img, sizeof(img), &bi, &err) < 0 && strstr(err, "64-bit"));

    make_bzimage();
    le16_put(img + 0x206, 0x0204);
    CHECK(bzimage_parse(img, sizeof(img), &bi, &err) < 0 && strstr(err, "older"));

    make_bzimage();
    img[0x211] = 0;
    CHECK(bzimage_parse(img, sizeof(img), &bi, &err) < 0 && strstr(err, "zImage"));

    /* A truncated file and a setup area beyond the end of the file are refused. */
    make_bzimage();
    CHECK(bzimage_parse(img, 0x100, &bi, &err) < 0);
    img[0x1f1] = 200;
    CHECK(bzimage_parse(img, 0x2000, &bi, &err) < 0 && strstr(err, "inconsistent"));

    /* A text file is not a kernel. */
    memset(img, 'a', sizeof(img));
    CHECK(bzimage_parse(img, sizeof(img), &bi, &err) < 0);
}

static void test_pvh_note(void)
{
    memset(img, 0, sizeof(img));
    memcpy(img, "\177ELF", 4);
    img[4] = 2;
    img[5] = 1;
    le16_put(img + 18, 62);
    le32_put(img + 32, 64); /* phoff */
    le16_put(img + 54, 56);
    le16_put(img + 56, 1);
    uint8_t *ph = img + 64;
    le32_put(ph, 4);         /* PT_NOTE */
    le32_put(ph + 8, 0x100); /* offset */
    le32_put(ph + 32, 40);   /* filesz */
    /* A "GNU" note first, then Xen's PHYS32_ENTRY (18). */
    uint8_t *n = img + 0x100;
    le32_put(n, 4);
    le32_put(n + 4, 4);
    le32_put(n + 8, 3);
    memcpy(n + 12, "GNU", 4);
    n += 20;
    le32_put(n, 4);
    le32_put(n + 4, 4);
    le32_put(n + 8, 18);
    memcpy(n + 12, "Xen", 4);
    le32_put(n + 16, 0x01000123);
    CHECK(pvh_find_entry(img, sizeof(img)) == 0x01000123);
    /* A note running past its segment is ignored. */
    le32_put(ph + 32, 30);
    CHECK(pvh_find_entry(img, sizeof(img)) == 0);
    /* Program headers beyond the file. */
    le32_put(img + 32, 0xfffffff0);
    CHECK(pvh_find_entry(img, sizeof(img)) == 0);
    CHECK(pvh_find_entry(img, 10) == 0);
}

static void test_e820(void)
{
    struct guest_mem mem = {.nr_regions = 1};
    struct e820_entry e[E820_MAX];

    mem.regions[0] = (struct mem_region){.gpa = 0, .size = 512ull << 20};
    unsigned n = e820_build(&mem, e, E820_MAX);
    CHECK(n == 5);
    CHECK(e[0].addr == 0 && e[0].size == 0x9fc00 && e[0].type == E820_RAM);
    CHECK(e[1].addr == 0x9fc00 && e[1].type == E820_RESERVED);
    CHECK(e[2].addr == 0xe0000 && e[2].addr + e[2].size == 0x100000 && e[2].type == E820_RESERVED);
    CHECK(e[3].addr == 0x100000 && e[3].size == (512ull << 20) - 0x100000 && e[3].type == E820_RAM);
    CHECK(e[4].addr == MEM_PCI_ECAM_BASE && e[4].type == E820_RESERVED);

    /* 4 GiB: 3 GiB below the PCI hole, 1 GiB above 4 GiB, sorted. */
    mem.nr_regions = 2;
    mem.regions[0].size = 3ull << 30;
    mem.regions[1] = (struct mem_region){.gpa = 4ull << 30, .size = 1ull << 30};
    n = e820_build(&mem, e, E820_MAX);
    CHECK(n == 6);
    CHECK(e[3].addr + e[3].size == 3ull << 30);
    CHECK(e[5].addr == 4ull << 30 && e[5].size == 1ull << 30 && e[5].type == E820_RAM);
    for (unsigned i = 1; i < n; i++)
        CHECK(e[i].addr >= e[i - 1].addr + e[i - 1].size);
    /* The table never overflows the caller's array. */
    CHECK(e820_build(&mem, e, 2) == 2);
}

int main(void)
{
    test_bzimage();
    test_pvh_note();
    test_e820();
    CHECK_DONE();
}
