// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * VHD images (block/vhd*.c) against Debian's qemu-img and qemu-io, whose
 * "vpc" driver reads and writes fixed and dynamic VHDs: images qemu made
 * and filled are read and written by hv and verified by qemu; images hv
 * made are read by qemu. Differencing disks (qemu cannot open them) are
 * checked against their parent and a raw reference. Then damaged and
 * hostile images, each refused with a sentence. Skipped without qemu-utils.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "be.h"
#include "block/block.h"
#include "block/vhd.h"
#include "check.h"
#include "imgcheck.h"
#include "shell.h"
#include "util.h"

static char dir[] = "/tmp/hv-vhd-XXXXXX";

#define sh(...) sh_in(dir, __VA_ARGS__)

/* qemu reads a VHD's size from its geometry unless told to trust the footer (as Hyper-V does). */
#define QEMU_VHD(name) "driver=vpc,force_size_calc=current_size,file.filename=" name

static const char *at(const char *name)
{
    return path_in(dir, name);
}

static struct bdev *open_ok(const char *name, bool ro, enum bdev_format fmt)
{
    return img_open(at(name), ro, fmt);
}

static bool open_fails(const char *name, const char *want)
{
    return img_open_fails(at(name), false, BDEV_FMT_VHD, want);
}

static uint64_t file_size(const char *name)
{
    struct stat st;
    return stat(at(name), &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* A dynamic VHD made and filled by qemu, then written by hv: qemu sees what a raw copy holds. */
static void test_qemu_dynamic(void)
{
    fprintf(stderr, "qemu dynamic\n");
    CHECK(sh("qemu-img create -f vpc -o subformat=dynamic,force_size=on d.vhd 64M") == 0);
    CHECK(sh("qemu-io -f vpc -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 5M 8k' d.vhd") == 0);
    CHECK(sh("qemu-img create -f raw ref.raw 64M && qemu-io -f raw -c 'write -P 0xab 0 64k' "
             "-c 'write -P 0xcd 5M 8k' ref.raw") == 0);
    struct bdev *b = open_ok("d.vhd", false, BDEV_FMT_PROBE);
    CHECK(b);
    if (!b)
        return;
    int ref = open(at("ref.raw"), O_RDWR);
    CHECK(!strcmp(b->format, "vhd") && b->size == 64 * MiB);
    CHECK(read_is(b, 0, 64 * KiB, 0xab) && read_is(b, 64 * KiB, 64 * KiB, 0));
    CHECK(read_is(b, 5 * MiB, 8 * KiB, 0xcd) && read_is(b, 7 * MiB, 4 * KiB, 0));
    write_both(b, ref, 32 * KiB, 4 * KiB, 0x11);        /* in a block qemu allocated */
    write_both(b, ref, 20 * MiB + 4096, 8 * KiB, 0x22); /* a new block */
    write_both(b, ref, 30 * MiB - 4096, 3 * MiB, 0x33); /* across three blocks */
    write_both(b, ref, 64 * MiB - 1024, 1024, 0x44);    /* the last sectors */
    write_both(b, ref, 40 * MiB + 100, 1000, 0x55);     /* not whole sectors */
    CHECK(read_is(b, 40 * MiB, 100, 0) && read_is(b, 40 * MiB + 100, 1000, 0x55) &&
          read_is(b, 40 * MiB + 1100, 436, 0));
    CHECK(bdev_write_zeroes(b, 30 * MiB, 512 * KiB, false) == 0);
    CHECK(pwrite(ref, (uint8_t[512 * KiB]){0}, 512 * KiB, 30 * MiB) == 512 * KiB);
    CHECK(bdev_discard(b, 50 * MiB, MiB) == 0);
    CHECK(bdev_flush(b) == 0);
    bdev_close(b);
    close(ref);
    CHECK(sh("qemu-img compare -f raw -F vpc ref.raw d.vhd") == 0);
    CHECK(sh("qemu-io -f vpc -c 'read -P 0x44 67107840 1024' d.vhd") == 0);
    /* Opened again, hv finds what it wrote. */
    b = open_ok("d.vhd", true, BDEV_FMT_VHD);
    CHECK(b && read_is(b, 20 * MiB + 4096, 8 * KiB, 0x22) &&
          read_is(b, 33 * MiB - 8192, 4096, 0x33));
    bdev_close(b);
}

static void test_qemu_fixed(void)
{
    fprintf(stderr, "qemu fixed\n");
    CHECK(sh("qemu-img create -f vpc -o subformat=fixed,force_size=on f.vhd 8M && "
             "qemu-io -f vpc -c 'write -P 0x5a 1M 64k' f.vhd") == 0);
    CHECK(file_size("f.vhd") == 8 * MiB + 512);
    /* A fixed VHD has no header at its start: only its format says what it is. */
    struct bdev *b = open_ok("f.vhd", false, BDEV_FMT_PROBE);
    CHECK(b && !strcmp(b->format, "raw"));
    bdev_close(b);
    b = open_ok("f.vhd", false, BDEV_FMT_VHD);
    CHECK(b && !strcmp(b->format, "vhd") && b->size == 8 * MiB);
    if (!b)
        return;
    CHECK(read_is(b, MiB, 64 * KiB, 0x5a) && read_is(b, 0, 4096, 0));
    CHECK(write_pat(b, 8 * MiB - 4096, 4096, 0x6b) == 0);
    CHECK(bdev_pwrite(b, "x", 1, 8 * MiB) == -ERANGE); /* the footer is not the guest's */
    bdev_close(b);
    CHECK(sh("qemu-io -f vpc -c 'read -P 0x6b 8384512 4096' -c 'read -P 0x5a 1M 64k' f.vhd") == 0);
}

/* Images hv makes: qemu reads them, sizes exact. */
static void test_created(void)
{
    fprintf(stderr, "created by hv\n");
    char err[BDEV_ERR_LEN];
    CHECK(vhd_create(at("h.vhd"), VHD_DYNAMIC, 48 * MiB + 512, NULL, err) == 0);
    CHECK(vhd_create(at("h.vhd"), VHD_DYNAMIC, 48 * MiB, NULL, err) == -EEXIST);
    CHECK(vhd_create(at("odd.vhd"), VHD_DYNAMIC, 1000, NULL, err) == -EINVAL &&
          strstr(err, "whole 512-byte sectors"));
    CHECK(vhd_create(at("hf.vhd"), VHD_FIXED, 4 * MiB, NULL, err) == 0);
    CHECK(file_size("hf.vhd") == 4 * MiB + 512);
    struct bdev *b = open_ok("h.vhd", false, BDEV_FMT_PROBE);
    CHECK(b && !strcmp(b->format, "vhd") && b->size == 48 * MiB + 512);
    if (!b)
        return;
    CHECK(read_is(b, 0, MiB, 0));
    CHECK(write_pat(b, 3 * MiB, 128 * KiB, 0x7c) == 0 && write_pat(b, 48 * MiB, 512, 0x7d) == 0);
    bdev_close(b);
    CHECK(sh("qemu-img info --image-opts " QEMU_VHD("h.vhd") " | grep -q '50332160 bytes'") == 0);
    CHECK(sh("qemu-io --image-opts -c 'read -P 0x7c 3M 128k' -c 'read -P 0x7d 48M 512' "
             "-c 'read -P 0 0 3M' " QEMU_VHD("h.vhd")) == 0);
    CHECK(sh("qemu-io --image-opts -c 'write -P 0x8e 1M 4k' " QEMU_VHD("hf.vhd")) == 0);
    b = open_ok("hf.vhd", true, BDEV_FMT_VHD);
    CHECK(b && b->size == 4 * MiB && read_is(b, MiB, 4096, 0x8e) && read_is(b, 0, MiB, 0));
    bdev_close(b);
}

/* A differencing disk over a dynamic parent: reads fall through, writes stay in the child. */
static void test_differencing(void)
{
    fprintf(stderr, "differencing\n");
    char err[BDEV_ERR_LEN];
    CHECK(sh("qemu-img create -f vpc -o subformat=dynamic,force_size=on base.vhd 16M && "
             "qemu-io -f vpc -c 'write -P 0xa1 0 3M' -c 'write -P 0xa2 9M 1M' base.vhd") == 0);
    CHECK(sh("qemu-img convert -f vpc -O raw base.vhd dref.raw && (md5sum base.vhd > base.sum)") ==
          0);
    CHECK(vhd_create(at("child.vhd"), VHD_DIFF, 0, at("base.vhd"), err) == 0);
    struct bdev *b = open_ok("child.vhd", false, BDEV_FMT_PROBE);
    CHECK(b && !strcmp(b->format, "vhd") && b->size == 16 * MiB && b->backing &&
          b->backing->readonly);
    if (!b)
        return;
    int ref = open(at("dref.raw"), O_RDWR);
    CHECK(read_is(b, 0, 3 * MiB, 0xa1) && read_is(b, 3 * MiB, MiB, 0));
    write_both(b, ref, 1 * MiB + 512, 1024, 0xc1); /* a block the parent has: 2 sectors */
    write_both(b, ref, 1 * MiB + 4096, 512, 0xc2); /* then another in the same block */
    write_both(b, ref, 6 * MiB, 64 * KiB, 0xc3);   /* a block neither has */
    write_both(b, ref, 9 * MiB + 100, 300, 0xc4);  /* not whole sectors, over the parent */
    CHECK(bdev_write_zeroes(b, 9 * MiB + 512 * KiB, 64 * KiB, true) == 0);
    CHECK(pwrite(ref, (uint8_t[64 * KiB]){0}, 64 * KiB, 9 * MiB + 512 * KiB) == 64 * KiB);
    CHECK(read_is(b, 1 * MiB, 512, 0xa1) && read_is(b, 1 * MiB + 512, 1024, 0xc1) &&
          read_is(b, 1 * MiB + 1536, 2560, 0xa1) && read_is(b, 1 * MiB + 4096, 512, 0xc2));
    CHECK(read_is(b, 9 * MiB, 100, 0xa2) && read_is(b, 9 * MiB + 100, 300, 0xc4) &&
          read_is(b, 9 * MiB + 400, 112, 0xa2));
    bdev_close(b);
    /* Again from the file: the bitmaps and block table on disk say the same. */
    b = open_ok("child.vhd", true, BDEV_FMT_VHD);
    CHECK(b);
    if (b) {
        uint8_t *got = malloc(16 * MiB), *want = malloc(16 * MiB);
        CHECK(got && want && bdev_pread(b, got, 16 * MiB, 0) == 0 &&
              pread(ref, want, 16 * MiB, 0) == (ssize_t)(16 * MiB) && !memcmp(got, want, 16 * MiB));
        free(got);
        free(want);
        bdev_close(b);
    }
    close(ref);
    CHECK(sh("md5sum -c base.sum") == 0); /* the parent is never written */

    /* Opened as the parent: the child holds it shared, so no writer gets it. */
    b = open_ok("child.vhd", false, BDEV_FMT_VHD);
    CHECK(open_fails("base.vhd", "in use"));
    bdev_close(b);
    /* A parent in another directory is refused when the child is made. */
    CHECK(sh("mkdir -p other && cp base.vhd other/") == 0);
    CHECK(vhd_create(at("c2.vhd"), VHD_DIFF, 0, at("other/base.vhd"), err) == -EINVAL &&
          strstr(err, "same directory"));
}

/* Patch a copy: len bytes of v (big-endian) at off (from the end when off < 0), checksums redone.
 */
static void patched(const char *src, const char *name, int64_t off, unsigned len, uint64_t v)
{
    CHECK(sh("cp %s %s", src, name) == 0);
    int fd = open(at(name), O_RDWR);
    uint64_t fsz = file_size(name);
    uint64_t where = off < 0 ? fsz + (uint64_t)off : (uint64_t)off;
    uint8_t b[8];
    be_put(b, len, v);
    CHECK(pwrite(fd, b, len, (off_t)where) == (ssize_t)len);
    /* The footer's and the dynamic header's checksums, so that the field itself is judged. */
    uint8_t foot[VHD_FOOTER_LEN], dyn[VHD_DYN_LEN];
    if (pread(fd, foot, sizeof(foot), (off_t)(fsz - 512)) == 512 && where < fsz - 512 + 64) {
        be_put(foot + 64, 4, vhd_checksum(foot, 512, 64));
        CHECK(pwrite(fd, foot, 512, (off_t)(fsz - 512)) == 512);
    }
    if (pread(fd, dyn, sizeof(dyn), 512) == 1024 && !memcmp(dyn, VHD_DYN_COOKIE, 8)) {
        be_put(dyn + 36, 4, vhd_checksum(dyn, 1024, 36));
        CHECK(pwrite(fd, dyn, 1024, 512) == 1024);
    }
    close(fd);
}

static void test_refused(void)
{
    fprintf(stderr, "refused\n");
    char err[BDEV_ERR_LEN];
    CHECK(vhd_create(at("r.vhd"), VHD_DYNAMIC, 8 * MiB, NULL, err) == 0);
    struct bdev *b = open_ok("r.vhd", false, BDEV_FMT_VHD);
    CHECK(b && write_pat(b, 0, 4096, 0x42) == 0); /* one block allocated */
    bdev_close(b);
    uint64_t fsz = file_size("r.vhd");

    CHECK(sh("cp r.vhd t.vhd && truncate -s -512 t.vhd") == 0);
    CHECK(open_fails("t.vhd", "no VHD footer"));
    CHECK(sh("cp r.vhd t.vhd && printf x | dd of=t.vhd bs=1 seek=%llu conv=notrunc",
             (unsigned long long)(fsz - 400)) == 0);
    CHECK(open_fails("t.vhd", "checksum"));
    patched("r.vhd", "v.vhd", -512 + 12, 4, 0x00020000);
    CHECK(open_fails("v.vhd", "format version 2.0"));
    patched("r.vhd", "ty.vhd", -512 + 60, 4, 5);
    CHECK(open_fails("ty.vhd", "disk type 5"));
    patched("r.vhd", "sz.vhd", -512 + 48, 8, 8 * MiB + 100);
    CHECK(open_fails("sz.vhd", "disk size"));
    patched("r.vhd", "big.vhd", -512 + 48, 8, 64 * MiB); /* more than its 4 blocks hold */
    CHECK(open_fails("big.vhd", "hold less"));
    patched("r.vhd", "do.vhd", -512 + 16, 8, fsz);
    CHECK(open_fails("do.vhd", "dynamic header's place"));
    patched("r.vhd", "bs.vhd", 512 + 32, 4, 3 * MiB);
    CHECK(open_fails("bs.vhd", "block size"));
    patched("r.vhd", "me.vhd", 512 + 28, 4, VHD_MAX_ENTRIES + 1);
    CHECK(open_fails("me.vhd", "block table entries"));
    patched("r.vhd", "to.vhd", 512 + 16, 8, fsz - 512);
    CHECK(open_fails("to.vhd", "block table"));
    patched("r.vhd", "e0.vhd", 1536, 4, (fsz - 1024) / 512); /* block 0 runs past the footer */
    CHECK(open_fails("e0.vhd", "block 0"));
    patched("r.vhd", "e1.vhd", 1536, 4, 1); /* block 0 on the dynamic header */
    CHECK(open_fails("e1.vhd", "block 0"));

    /* A differencing disk whose parent is elsewhere, a block device, or another image. */
    CHECK(sh("qemu-img create -f vpc -o subformat=dynamic,force_size=on p.vhd 8M") == 0);
    CHECK(vhd_create(at("c.vhd"), VHD_DIFF, 0, at("p.vhd"), err) == 0);
    CHECK(sh("mkdir -p sub && mv c.vhd sub/") == 0);
    CHECK(open_fails("sub/c.vhd", "cannot open disk image"));
    CHECK(sh("ln -sf ../p.vhd sub/p.vhd") == 0);
    CHECK(open_fails("sub/c.vhd", "outside the directories"));
    CHECK(sh("rm sub/p.vhd && ln -s /dev/null sub/p.vhd") == 0);
    CHECK(open_fails("sub/c.vhd", "outside the directories"));
    CHECK(sh("rm sub/p.vhd && qemu-img create -f vpc -o subformat=dynamic,force_size=on "
             "sub/p.vhd 8M") == 0);
    CHECK(open_fails("sub/c.vhd", "not the image it was made from"));
}

/* A probed raw disk may not make itself a dynamic or differencing VHD. */
static void test_raw_guard(void)
{
    fprintf(stderr, "raw guard\n");
    CHECK(sh("qemu-img create -f raw g.raw 1M") == 0);
    struct bdev *b = open_ok("g.raw", false, BDEV_FMT_PROBE);
    CHECK(b && !strcmp(b->format, "raw"));
    if (!b)
        return;
    CHECK(bdev_pwrite(b, VHD_COOKIE, 8, 0) == -EPERM);
    CHECK(bdev_pwrite(b, "cone", 4, 0) == 0 && bdev_pwrite(b, "ctix", 4, 4) == -EPERM);
    CHECK(bdev_pwrite(b, "ctiy", 4, 4) == 0);
    bdev_close(b);
    b = open_ok("g.raw", false, BDEV_FMT_RAW); /* given as raw: its guest may write anything */
    CHECK(b && bdev_pwrite(b, VHD_COOKIE, 8, 0) == 0);
    bdev_close(b);
}

static void test_codec(void)
{
    fprintf(stderr, "codec\n");
    /* The spec's geometry for a few sizes (127 MiB worked by hand), and the path conversion. */
    CHECK(vhd_geometry(127 * MiB) == (1019u << 16 | 15 << 8 | 17));
    uint32_t g = vhd_geometry(2 * GiB);
    uint64_t chs = (uint64_t)(g >> 16) * ((g >> 8) & 0xff) * (g & 0xff) * 512;
    CHECK(chs <= 2 * GiB && chs > 2 * GiB - 16 * MiB);
    g = vhd_geometry(VHD_MAX_SIZE);
    CHECK(g >> 16 == 65535 && ((g >> 8) & 0xff) == 16 && (g & 0xff) == 255);
    char out[64];
    const uint8_t le[] = {'.', 0, '\\', 0, 'a', 0, 0xe9, 0, '.', 0, 'v', 0};
    CHECK(vhd_utf16_to_path(le, 6, false, out, sizeof(out)) == 0 && !strcmp(out, "./a\xc3\xa9.v"));
    const uint8_t lone[] = {0x00, 0xd8, 'a', 0};
    CHECK(vhd_utf16_to_path(lone, 2, false, out, sizeof(out)) < 0);
    CHECK(vhd_utf16_to_path(le, 6, false, out, 4) < 0);
}

/* fuzz_vhd's seeds (made by make_vhd_corpus.py, an encoder of its own) open and read as made. */
static void test_seeds(const char *corpus)
{
    fprintf(stderr, "fuzz seeds\n");
    static const struct {
        const char *name;
        uint64_t size, off;
        uint8_t fill;
    } seeds[] = {{"dyn-00", 64 * KiB, 20 * KiB, 0x22},
                 {"empty-00", 32 * KiB, 0, 0},
                 {"fixed-00", 8 * KiB, 0, 0x44}};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char src[512];
        snprintf(src, sizeof(src), "%s/%s", corpus, seeds[i].name);
        CHECK(sh("(tail -c +5 %s > seed.vhd)", src) == 0);
        struct bdev *b = open_ok("seed.vhd", true, BDEV_FMT_VHD);
        CHECK(b && b->size == seeds[i].size && read_is(b, seeds[i].off, 4096, seeds[i].fill));
        bdev_close(b);
    }
    /* The differencing seed names p.vhd: another image is refused, its parent seed is read
     * through the sectors whose bit is clear (bitmap 0xa5: sectors 0, 2, 5 and 7 are its own). */
    CHECK(sh("(tail -c +5 %s/diff-00 > sd.vhd) && cp h.vhd p.vhd", corpus) == 0);
    CHECK(open_fails("sd.vhd", "not the image it was made from"));
    CHECK(sh("(tail -c +5 %s/parent-00 > p.vhd)", corpus) == 0);
    struct bdev *b = open_ok("sd.vhd", true, BDEV_FMT_VHD);
    CHECK(b && b->backing);
    for (unsigned s = 0; b && s < 8; s++)
        CHECK(read_is(b, 4096 + 512 * s, 512, (0xa5 & (0x80 >> s)) ? 0x33 : 0x55));
    CHECK(b && read_is(b, 0, 4096, 0));
    bdev_close(b);
}

int main(int argc, char **argv)
{
    if (!mkdtemp(dir))
        return EXIT_FAILURE;
    test_codec();
    if (system("command -v qemu-img >/dev/null && command -v qemu-io >/dev/null") != 0) {
        fprintf(stderr, "qemu-utils not installed: skipping the image tests\n");
        return 77;
    }
    test_qemu_dynamic();
    test_qemu_fixed();
    test_created();
    test_differencing();
    test_refused();
    test_raw_guard();
    if (argc > 1)
        test_seeds(argv[1]);
    sh_in("/", "rm -rf %s", dir);
    CHECK_DONE();
}
