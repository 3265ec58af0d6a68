// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The image backends against Debian's qemu-img and qemu-io (qemu-utils):
 * images made and filled by qemu are read by hv, written by hv, and then
 * verified by qemu (read -P, compare, check). Skipped without qemu-utils.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "check.h"
#include "imgcheck.h"
#include "shell.h"
#include "util.h"

static char dir[] = "/tmp/hv-qcow2-XXXXXX";

/* Run a shell command in the temp dir; returns its exit status. */
#define sh(...) sh_in(dir, __VA_ARGS__)

static const char *at(const char *name)
{
    return path_in(dir, name);
}

static struct bdev *open_ok(const char *name, bool ro)
{
    return img_open(at(name), ro, BDEV_FMT_PROBE);
}

static bool open_fails(const char *name, bool ro, const char *want)
{
    return img_open_fails(at(name), ro, BDEV_FMT_PROBE, want);
}

static void test_rw(const char *opts, uint64_t big)
{
    fprintf(stderr, "rw: %s\n", opts);
    CHECK(sh("qemu-img create -f qcow2 -o %s img.qcow2 64M", opts) == 0);
    CHECK(sh("qemu-io -f qcow2 -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 1M 8k' img.qcow2") == 0);
    CHECK(sh("qemu-img create -f raw ref.raw 64M && qemu-io -f raw -c 'write -P 0xab 0 64k' "
             "-c 'write -P 0xcd 1M 8k' ref.raw") == 0);
    struct bdev *b = open_ok("img.qcow2", false);
    CHECK(b);
    if (!b)
        return;
    int ref = open(at("ref.raw"), O_RDWR);
    CHECK(!strcmp(b->format, "qcow2") && b->size == 64 * MiB);
    CHECK(read_is(b, 0, 64 * KiB, 0xab) && read_is(b, 64 * KiB, 64 * KiB, 0));
    CHECK(read_is(b, MiB, 8 * KiB, 0xcd) && read_is(b, MiB + 8 * KiB, 4 * KiB, 0));
    write_both(b, ref, 100 * KiB + 512, 1536, 0x11);    /* partial, unallocated */
    write_both(b, ref, 32 * KiB, 4 * KiB, 0x22);        /* inside a cluster qemu wrote */
    write_both(b, ref, 10 * MiB + 4096, big, 0x33);     /* many clusters, new L2 tables */
    write_both(b, ref, 64 * MiB - 1024, 1024, 0x44);    /* the last sectors */
    write_both(b, ref, 30 * MiB, 2 * MiB + 4096, 0x55); /* to be zeroed in part */
    CHECK(bdev_write_zeroes(b, 30 * MiB + 512, 2 * MiB, false) == 0);
    CHECK(bdev_discard(b, 40 * MiB, 4 * MiB) == 0);
    CHECK(pwrite(ref, (uint8_t[2 * MiB]){0}, 2 * MiB, 30 * MiB + 512) == 2 * MiB);
    CHECK(read_is(b, 30 * MiB, 512, 0x55) && read_is(b, 30 * MiB + 512, 2 * MiB, 0));
    CHECK(read_is(b, 32 * MiB + 512, 3584, 0x55));
    CHECK(read_is(b, 10 * MiB + 4096, big, 0x33) && read_is(b, 32 * KiB, 4 * KiB, 0x22));
    CHECK(bdev_flush(b) == 0);
    bdev_close(b);
    close(ref);
    CHECK(sh("qemu-img check img.qcow2") == 0);
    CHECK(sh("qemu-io -f qcow2 -c 'read -P 0x11 %llu 1536' -c 'read -P 0xab 0 32k' "
             "-c 'read -P 0x44 %llu 1024' img.qcow2",
             (unsigned long long)(100 * KiB + 512), (unsigned long long)(64 * MiB - 1024)) == 0);
    CHECK(sh("qemu-img compare -f raw -F qcow2 ref.raw img.qcow2") == 0);
    /* Reopen: what hv wrote reads back, read-only this time. */
    b = open_ok("img.qcow2", true);
    CHECK(b && read_is(b, 100 * KiB + 512, 1536, 0x11));
    CHECK(b && bdev_pwrite(b, "x", 1, 0) == -EROFS);
    bdev_close(b);
}

static uint64_t file_sum(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    FILE *f = fopen(at(name), "rb");
    int c;
    while (f && (c = getc(f)) != EOF)
        h = (h ^ (uint64_t)c) * 1099511628211ull;
    if (f)
        fclose(f);
    return h;
}

static void test_golden(const char *golden_fmt)
{
    fprintf(stderr, "golden: %s\n", golden_fmt);
    CHECK(sh("rm -f golden a.qcow2 b.qcow2 ref_a.raw ref_b.raw") == 0);
    CHECK(sh("qemu-img create -f %s golden 16M && qemu-io -f %s -c 'write -P 0xab 0 1M' "
             "-c 'write -P 0xcd 5M 64k' golden",
             golden_fmt, golden_fmt) == 0);
    CHECK(sh("qemu-img create -f qcow2 -b golden -F %s a.qcow2 && "
             "qemu-img create -f qcow2 -b golden -F %s -o compat=0.10 b.qcow2",
             golden_fmt, golden_fmt) == 0);
    CHECK(sh("qemu-img convert -O raw golden ref_a.raw && cp ref_a.raw ref_b.raw") == 0);
    uint64_t sum = file_sum("golden");
    struct bdev *a = open_ok("a.qcow2", false), *b = open_ok("b.qcow2", false);
    CHECK(a && b);
    if (!a || !b)
        return;
    CHECK(a->backing && !strcmp(a->backing->format, golden_fmt) && a->backing->readonly);
    CHECK(open_fails("golden", false, "in use"));
    int ra = open(at("ref_a.raw"), O_RDWR), rb = open(at("ref_b.raw"), O_RDWR);
    CHECK(read_is(a, 0, MiB, 0xab) && read_is(b, 5 * MiB, 64 * KiB, 0xcd));
    write_both(a, ra, 8192, 4096, 0x1a);
    write_both(b, rb, 8192 + 512, 4096, 0x1b);
    write_both(a, ra, 5 * MiB + 1000 * 512, 64 * KiB, 0x2a);
    write_both(b, rb, 12 * MiB, 100 * 1024, 0x2b);
    CHECK(bdev_write_zeroes(a, 0, 128 * KiB, true) == 0);
    CHECK(pwrite(ra, (uint8_t[128 * KiB]){0}, 128 * KiB, 0) == 128 * KiB);
    CHECK(bdev_write_zeroes(b, 2 * MiB - 512, 128 * KiB + 1024, false) == 0);
    CHECK(pwrite(rb, (uint8_t[128 * KiB + 1024]){0}, 128 * KiB + 1024, 2 * MiB - 512) ==
          128 * KiB + 1024);
    CHECK(read_is(a, 0, 128 * KiB, 0) && read_is(a, 128 * KiB, MiB - 128 * KiB, 0xab));
    CHECK(read_is(b, 8192, 512, 0xab) && read_is(b, 8192 + 512, 4096, 0x1b));
    bdev_close(a);
    bdev_close(b);
    close(ra);
    close(rb);
    CHECK(file_sum("golden") == sum);
    CHECK(sh("qemu-img check a.qcow2 && qemu-img check b.qcow2") == 0);
    if (!strcmp(golden_fmt, "qcow2"))
        CHECK(sh("qemu-img check golden") == 0);
    CHECK(sh("qemu-img compare -f raw -F qcow2 ref_a.raw a.qcow2") == 0);
    CHECK(sh("qemu-img compare -f raw -F qcow2 ref_b.raw b.qcow2") == 0);
    CHECK(sh("qemu-io -f %s -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 5M 64k' golden", golden_fmt) ==
          0);
    /* Each overlay's writes are in its own file only. */
    CHECK(sh("qemu-io -f qcow2 -c 'read -P 0xab 8192 512' -c 'read -P 0x2b 12M 100k' b.qcow2") ==
          0);
}

static void test_compressed(void)
{
    fprintf(stderr, "compressed\n");
    CHECK(sh("qemu-img create -f raw src.raw 4M && qemu-io -f raw -c 'write -P 0x5c 0 3M' "
             "src.raw && qemu-img convert -c -O qcow2 src.raw comp.qcow2") == 0);
    struct bdev *b = open_ok("comp.qcow2", false);
    CHECK(b);
    if (!b)
        return;
    int ref = open(at("src.raw"), O_RDWR);
    CHECK(read_is(b, 0, 3 * MiB, 0x5c) && read_is(b, 3 * MiB, MiB, 0));
    write_both(b, ref, 70 * KiB, 1024, 0x77); /* copy-on-write out of a compressed cluster */
    CHECK(bdev_discard(b, 1 * MiB, 256 * KiB) == 0);
    CHECK(pwrite(ref, (uint8_t[256 * KiB]){0}, 256 * KiB, MiB) == 256 * KiB);
    bdev_close(b);
    close(ref);
    CHECK(sh("qemu-img check comp.qcow2") == 0);
    CHECK(sh("qemu-img compare -f raw -F qcow2 src.raw comp.qcow2") == 0);
}

static void test_raw_probe(void)
{
    fprintf(stderr, "raw\n");
    CHECK(sh("qemu-img create -f raw disk.raw 1M") == 0);
    struct bdev *b = open_ok("disk.raw", false);
    CHECK(b && !strcmp(b->format, "raw") && b->size == MiB);
    if (!b)
        return;
    /* A probed raw disk cannot turn itself into a qcow2 image. */
    CHECK(bdev_pwrite(b, "QFI\xfb", 4, 0) == -EPERM);
    CHECK(bdev_pwrite(b, "QF", 2, 0) == 0 && bdev_pwrite(b, "I\xfb", 2, 2) == -EPERM);
    CHECK(write_pat(b, 4096, 8192, 0x3c) == 0 && read_is(b, 4096, 8192, 0x3c));
    CHECK(bdev_pread(b, (char[8]){0}, 8, MiB - 4) == -ERANGE);
    bdev_close(b);
}

/* Patch a copy of good.qcow2: len bytes of v (big-endian) at off; a negative len truncates. */
static void patched(const char *name, uint64_t off, int len, uint64_t v)
{
    CHECK(sh("cp good.qcow2 %s", name) == 0);
    int fd = open(at(name), O_RDWR);
    if (len < 0) {
        CHECK(ftruncate(fd, (off_t)off) == 0);
    } else {
        uint8_t b[8];
        for (int i = len; i-- > 0; v >>= 8)
            b[i] = (uint8_t)v;
        CHECK(pwrite(fd, b, (size_t)len, (off_t)off) == len);
    }
    close(fd);
}

static void test_corrupt(void)
{
    fprintf(stderr, "corrupt\n");
    CHECK(sh("qemu-img create -f qcow2 good.qcow2 1G && "
             "qemu-io -f qcow2 -c 'write -P 1 0 64k' good.qcow2") == 0);
    /* Layout of qemu-img's image: header, refcount table, refcount block, L1, L2. */
    static const struct {
        const char *name;
        uint64_t off;
        int len;
        uint64_t v;
        const char *want;
    } cases[] = {
        {"t0", 0, -1, 0, "truncated"},
        {"t70", 70, -1, 0, "truncated"},
        {"t4k", 4096, -1, 0, "truncated"},
        {"t200k", 200 * 1024, -1, 0, "L1 entry 0"},
        {"magic", 0, 4, 0x51464900, "no qcow2 magic"}, /* probed as qcow2? no: raw */
        {"version", 4, 4, 4, "version 4"},
        {"cbits", 20, 4, 30, "cluster size"},
        {"cbits8", 20, 4, 8, "cluster size"},
        {"crypt", 32, 4, 1, "encrypted"},
        {"l1past", 40, 8, 1ull << 40, "L1 table"},
        {"l1hdr", 40, 8, 0, "L1 table"},
        {"l1mis", 40, 8, 0x30200, "L1 table"},
        {"l1huge", 36, 4, 0x10000000, "absurdly large"},
        {"l1small", 24, 8, 1ull << 50, "too small"},
        {"rtpast", 48, 8, 1ull << 40, "refcount table"},
        {"rtl1", 48, 8, 0x30000, "overlap"},
        {"rtzero", 56, 4, 0, "refcount table of 0"},
        {"rthuge", 56, 4, 0x100000, "refcount table of"},
        {"incompat", 72, 8, 1ull << 20, "unknown incompatible"},
        {"corrupt", 72, 8, 2, "corrupt"},
        {"datafile", 72, 8, 4, "external data"},
        {"extl2", 72, 8, 16, "extended L2"},
        {"rcorder", 96, 4, 7, "refcount order"},
        {"hdrlen", 100, 4, 100, "header length"},
        {"bfname", 8, 8, 0x200, "backing file name"},
        {"bflen", 12, 8, 0x200ull << 32 | 5000, "backing file name"},
        {"l1entry", 0x30000, 8, (1ull << 40) | (1ull << 63), "L1 entry 0"},
        {"l1rsvd", 0x30000, 8, 0x40000 | 2, "reserved bits"},
        {"l1onrt", 0x30000, 8, 0x10000 | (1ull << 63), "L1 entry 0"},
        {"rtentry", 0x10000, 8, 0x200, "refcount table entry 0"},
        {"shared", 0x10008, 8, 0x40000, "share"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        patched(cases[i].name, cases[i].off, cases[i].len, cases[i].v);
        if (!strcmp(cases[i].name, "magic") || !strcmp(cases[i].name, "t0")) {
            /* Not qcow2 any more: probed as raw. A forced format is refused. */
            struct bdev *b = NULL;
            char err[BDEV_ERR_LEN] = "";
            int ret = bdev_open(&b, at(cases[i].name), true, BDEV_FMT_QCOW2, err);
            CHECK(ret < 0 && strstr(err, cases[i].want));
            if (ret < 0 && !strstr(err, cases[i].want))
                fprintf(stderr, "  %s: '%s'\n", cases[i].name, err);
            continue;
        }
        CHECK(open_fails(cases[i].name, false, cases[i].want));
    }
    /* Dirty (lazy refcounts): readable, not writable. */
    patched("dirty", 72, 8, 1);
    CHECK(open_fails("dirty", false, "dirty"));
    struct bdev *b = open_ok("dirty", true);
    CHECK(b && read_is(b, 0, 64 * KiB, 1));
    bdev_close(b);

    /* Backing files: missing, a loop, a chain too long. */
    CHECK(sh("qemu-img create -f qcow2 -b missing -F qcow2 -u orphan.qcow2 1M") == 0);
    CHECK(open_fails("orphan.qcow2", true, "backing file: cannot open"));
    CHECK(sh("qemu-img create -f qcow2 l1.qcow2 1M && "
             "qemu-img create -f qcow2 -b l1.qcow2 -F qcow2 l2.qcow2 && "
             "qemu-img rebase -u -b l2.qcow2 -F qcow2 l1.qcow2") == 0);
    CHECK(open_fails("l2.qcow2", true, "loop"));
    CHECK(open_fails("l2.qcow2", false, "loop"));
    CHECK(sh("qemu-img create -f qcow2 self.qcow2 1M && "
             "qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2") == 0);
    CHECK(open_fails("self.qcow2", true, "loop"));
    CHECK(sh("qemu-img create -f qcow2 c0.qcow2 1M && for i in $(seq 1 17); do "
             "qemu-img create -f qcow2 -b c$((i-1)).qcow2 -F qcow2 c$i.qcow2 || exit 1; done") ==
          0);
    CHECK(open_fails("c17.qcow2", true, "longer than 16"));
    b = open_ok("c15.qcow2", true);
    CHECK(b);
    bdev_close(b);
    /* A backing format hv does not know. */
    CHECK(sh("qemu-img create -f qcow2 -b good.qcow2 -F vmdk -u vm.qcow2 1G") == 0);
    CHECK(open_fails("vm.qcow2", true, "format 'vmdk'"));
    /* Internal snapshots: read-only only. */
    CHECK(sh("cp good.qcow2 snap.qcow2 && qemu-img snapshot -c s1 snap.qcow2") == 0);
    CHECK(open_fails("snap.qcow2", false, "snapshots"));
    b = open_ok("snap.qcow2", true);
    CHECK(b && read_is(b, 0, 64 * KiB, 1));
    bdev_close(b);
}

int main(void)
{
    if (system("qemu-img --version >/dev/null 2>&1 && qemu-io --version >/dev/null 2>&1")) {
        printf("SKIP: qemu-img and qemu-io (Debian package qemu-utils) are not installed\n");
        return 77;
    }
    CHECK(mkdtemp(dir) != NULL);
    test_raw_probe();
    test_rw("compat=1.1", 3 * MiB);
    test_rw("compat=0.10", 3 * MiB);
    test_rw("compat=1.1,cluster_size=512", 12 * MiB); /* grows the refcount table */
    test_rw("compat=1.1,cluster_size=2M", 5 * MiB);
    test_rw("compat=1.1,cluster_size=4096,refcount_bits=1", 3 * MiB);
    test_rw("compat=1.1,cluster_size=16384,refcount_bits=64", 3 * MiB);
    test_rw("compat=1.1,lazy_refcounts=on,preallocation=metadata", 3 * MiB);
    test_golden("qcow2");
    test_golden("raw");
    test_compressed();
    test_corrupt();
    if (!check_failures)
        CHECK(sh("rm -rf %s", dir) == 0);
    else
        fprintf(stderr, "images kept in %s\n", dir);
    CHECK_DONE();
}
