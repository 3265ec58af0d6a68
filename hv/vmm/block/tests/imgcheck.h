/* SPDX-License-Identifier: GPL-2.0-or-later */
/* For the image tests: patterns written and read back through a struct bdev. */
#ifndef HV_VMM_BLOCK_TESTS_IMGCHECK_H
#define HV_VMM_BLOCK_TESTS_IMGCHECK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "check.h"

static inline struct bdev *img_open(const char *path, bool ro, enum bdev_format fmt)
{
    struct bdev *b = NULL;
    char err[BDEV_ERR_LEN];
    if (bdev_open(&b, path, ro, fmt, err)) {
        fprintf(stderr, "  open %s: %s\n", path, err);
        return NULL;
    }
    return b;
}

/* Opening fails with a message containing want. */
static inline bool img_open_fails(const char *path, bool ro, enum bdev_format fmt, const char *want)
{
    struct bdev *b = NULL;
    char err[BDEV_ERR_LEN] = "";
    if (!bdev_open(&b, path, ro, fmt, err)) {
        fprintf(stderr, "  %s opened, expected '%s'\n", path, want);
        bdev_close(b);
        return false;
    }
    if (!strstr(err, want)) {
        fprintf(stderr, "  %s: '%s', expected '%s'\n", path, err, want);
        return false;
    }
    return true;
}

static inline bool all(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

static inline bool read_is(struct bdev *b, uint64_t off, size_t len, uint8_t v)
{
    uint8_t *buf = malloc(len);
    bool ok = buf && bdev_pread(b, buf, len, off) == 0 && all(buf, len, v);
    free(buf);
    if (!ok)
        fprintf(stderr, "  %s: [%llu, +%zu) is not 0x%02x\n", b->path, (unsigned long long)off, len,
                v);
    return ok;
}

static inline int write_pat(struct bdev *b, uint64_t off, size_t len, uint8_t v)
{
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    memset(buf, v, len);
    /* Two segments, split off-center, to exercise the iovec paths. */
    struct iovec iov[2] = {{buf, len / 3}, {buf + len / 3, len - len / 3}};
    int ret = bdev_pwritev(b, iov, 2, off);
    free(buf);
    return ret;
}

/* Also write the same into a raw reference file, for qemu-img compare. */
static inline void write_both(struct bdev *b, int ref, uint64_t off, size_t len, uint8_t v)
{
    CHECK(write_pat(b, off, len, v) == 0);
    uint8_t *buf = malloc(len);
    memset(buf, v, len);
    CHECK(pwrite(ref, buf, len, (off_t)off) == (ssize_t)len);
    free(buf);
}

#endif
