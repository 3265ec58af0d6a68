// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qcow2 backing files are opened only inside the allowed image directories
 * and only as regular files: a hostile image (one a guest wrote, or one a
 * user was given) cannot make hv-vmm read another host file. Overlays are
 * made with qemu-img (qemu-utils); skipped without it.
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
#include "shell.h"
#include "util.h"

static char top[] = "/tmp/hv-backing-XXXXXX";

#define sh(...) sh_in(top, __VA_ARGS__)

static const char *at(const char *name)
{
    return path_in(top, name);
}

/* An overlay images/NAME whose header names backing (not checked by qemu-img: -u). */
static void overlay(const char *name, const char *backing)
{
    CHECK(sh("qemu-img create -q -f qcow2 -u -b '%s' -F raw images/%s 1M", backing, name) == 0);
}

/* Open images/NAME with these allowed directories; NULL want: must open. */
static void expect(const char *name, const char *const *dirs, const char *want)
{
    struct bdev *b = NULL;
    char err[BDEV_ERR_LEN] = "";
    char path[256];
    snprintf(path, sizeof(path), "%s/images/%s", top, name);
    int ret = bdev_open_confined(&b, path, true, BDEV_FMT_QCOW2, dirs, err);
    if (!want) {
        if (ret)
            fprintf(stderr, "  %s: expected to open: %s\n", name, err);
        CHECK(ret == 0 && b && b->backing);
    } else {
        if (!ret)
            fprintf(stderr, "  %s opened, expected '%s'\n", name, want);
        else if (!strstr(err, want))
            fprintf(stderr, "  %s: '%s', expected '%s'\n", name, err, want);
        CHECK(ret != 0 && strstr(err, want));
    }
    bdev_close(b);
}

int main(void)
{
    if (system("qemu-img --version >/dev/null 2>&1")) {
        printf("SKIP: qemu-img (Debian package qemu-utils) is not installed\n");
        return 77;
    }
    CHECK(mkdtemp(top) != NULL);
    CHECK(sh("mkdir images other && truncate -s 1M images/base.raw other/secret.raw") == 0);
    CHECK(sh("ln -s ../other/secret.raw images/link.raw && mkfifo images/fifo") == 0);

    char images[256], other[256], nope[256];
    snprintf(images, sizeof(images), "%s/images", top);
    snprintf(other, sizeof(other), "%s/other", top);
    snprintf(nope, sizeof(nope), "%s/nope", top);
    const char *const images_only[] = {images, NULL};
    const char *const both[] = {images, other, NULL};
    const char *const dev[] = {"/dev", NULL};

    overlay("ok.qcow2", "base.raw");
    expect("ok.qcow2", NULL, NULL); /* the image's own directory */
    expect("ok.qcow2", images_only, NULL);

    overlay("abs.qcow2", at("other/secret.raw"));
    expect("abs.qcow2", NULL, "outside the directories");
    expect("abs.qcow2", images_only, "outside the directories");
    expect("abs.qcow2", both, NULL); /* an allowed directory */

    overlay("dotdot.qcow2", "../other/secret.raw");
    expect("dotdot.qcow2", NULL, "outside the directories");

    overlay("link.qcow2", "link.raw"); /* a link inside that leads outside */
    expect("link.qcow2", NULL, "outside the directories");

    overlay("shadow.qcow2", "/etc/shadow");
    expect("shadow.qcow2", images_only, "outside the directories");

    overlay("null.qcow2", "/dev/null");
    expect("null.qcow2", images_only, "outside the directories");
    expect("null.qcow2", dev, "not a regular file"); /* devices never, even when allowed */

    overlay("fifo.qcow2", "fifo"); /* would hang a plain open() */
    expect("fifo.qcow2", NULL, "not a regular file");

    if (sh("mknod images/blk b 7 200") == 0) { /* a block device node (needs root) */
        overlay("blk.qcow2", "blk");
        struct bdev *b = NULL;
        char err[BDEV_ERR_LEN] = "";
        CHECK(bdev_open(&b, at("images/blk.qcow2"), true, BDEV_FMT_QCOW2, err) != 0);
        CHECK(strstr(err, "not a regular file") || strstr(err, "No such device"));
        bdev_close(b);
    }

    /* A chain: every level is confined, not only the first. */
    CHECK(sh("qemu-img create -q -f qcow2 -u -b ok.qcow2 -F qcow2 images/mid.qcow2 1M") == 0);
    expect("mid.qcow2", images_only, NULL);
    CHECK(sh("qemu-img create -q -f qcow2 -u -b abs.qcow2 -F qcow2 images/deep.qcow2 1M") == 0);
    expect("deep.qcow2", images_only, "outside the directories");

    /* A missing image directory is a clear error, not "anything goes". */
    const char *const missing[] = {nope, NULL};
    expect("ok.qcow2", missing, "image directory");

    if (!check_failures)
        CHECK(sh("rm -rf %s", top) == 0);
    else
        fprintf(stderr, "images kept in %s\n", top);
    CHECK_DONE();
}
