// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * New VHD images: fixed, dynamic (2 MiB blocks, as Virtual PC, Hyper-V and
 * qemu-img make them) and differencing over a parent in the same directory.
 * The disk's size is the size asked for, exactly (the footer's geometry is
 * the spec's nearest below it, as Hyper-V writes it); a differencing disk
 * names its parent twice, by its file name (UTF-16BE in the header) and by a
 * relative "W2ru" locator (".\NAME", UTF-16LE), and records its unique id.
 */
#include "vhd.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "be.h"
#include "util.h"

static uint32_t vhd_time(time_t t)
{
    return t > (time_t)VHD_EPOCH ? (uint32_t)((uint64_t)t - VHD_EPOCH) : 0;
}

static int new_footer(struct vhd_footer *f, enum vhd_type type, uint64_t size)
{
    *f = (struct vhd_footer){
        .features = VHD_FEATURE_RSVD,
        .version = VHD_VERSION,
        .data_offset = type == VHD_FIXED ? VHD_NO_OFFSET : VHD_FOOTER_LEN,
        .timestamp = vhd_time(time(NULL)),
        .creator_app = {'h', 'v', ' ', ' '},
        .creator_version = 0x00010000,
        .creator_os = 0x5769326b, /* "Wi2k": the spec names only Windows and Mac hosts */
        .original_size = size,
        .current_size = size,
        .geometry = vhd_geometry(size),
        .type = type,
    };
    if (getrandom(f->uuid, sizeof(f->uuid), 0) != sizeof(f->uuid))
        return -errno;
    f->uuid[6] = (uint8_t)((f->uuid[6] & 0x0f) | 0x40); /* a random (version 4) UUID */
    f->uuid[8] = (uint8_t)((f->uuid[8] & 0x3f) | 0x80);
    return 0;
}

static int put(int fd, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {(void *)buf, len};
    return bdev_rw_full(fd, &iov, 1, off, true);
}

/* UTF-8 name → UTF-16 (BMP only: image names are ASCII in practice); units written, or -1. */
static int to_utf16(const char *s, uint8_t *out, size_t max_units, bool big_endian)
{
    size_t u = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; u++) {
        uint32_t c;
        if (*p < 0x80) {
            c = *p++;
        } else if ((*p & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80) {
            c = (uint32_t)(*p & 0x1f) << 6 | (p[1] & 0x3f);
            p += 2;
        } else if ((*p & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
            c = (uint32_t)(*p & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
            p += 3;
        } else {
            return -1;
        }
        if (u >= max_units)
            return -1;
        if (big_endian)
            be_put(out + 2 * u, 2, c);
        else
            out[2 * u] = (uint8_t)c, out[2 * u + 1] = (uint8_t)(c >> 8);
    }
    return (int)u;
}

/* The parent: a VHD beside path; its identity into h. */
static int describe_parent(const char *path, const char *parent, struct vhd_dyn *h, uint64_t *size,
                           char *err)
{
    char *pcopy = strdup(parent), *ccopy = strdup(path);
    int ret = 0;
    if (!pcopy || !ccopy) {
        ret = -ENOMEM;
        bdev_errf(err, "%s: out of memory", path);
        goto out;
    }
    const char *name = basename(pcopy);
    char beside[4096];
    struct stat a, b;
    snprintf(beside, sizeof(beside), "%s/%s", dirname(ccopy), name);
    if (stat(parent, &a) < 0 || stat(beside, &b) < 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino) {
        ret = -EINVAL;
        bdev_errf(err, "%s: the parent %s must be an image in the same directory", path, parent);
        goto out;
    }
    struct bdev *p;
    if ((ret = bdev_open(&p, parent, true, BDEV_FMT_VHD, err)))
        goto out;
    memcpy(h->parent_uuid, vhd_uuid_of(p), 16);
    *size = p->size;
    bdev_close(p);
    h->parent_timestamp = vhd_time(a.st_mtime);
    uint8_t be[512] = {0};
    if (to_utf16(name, be, 255, true) < 0) {
        ret = -EINVAL;
        bdev_errf(err, "%s: the parent's name %s is too long or not UTF-8", path, name);
        goto out;
    }
    for (unsigned i = 0; i < 256; i++)
        h->parent_name[i] = (uint16_t)be_get(be + 2 * i, 2);
out:
    free(pcopy);
    free(ccopy);
    return ret;
}

static int write_sparse(int fd, const char *path, enum vhd_type type, uint64_t size,
                        const char *parent, char *err)
{
    struct vhd_dyn h = {.version = VHD_VERSION,
                        .block_size = VHD_DEFAULT_BLOCK,
                        .table_offset = VHD_FOOTER_LEN + VHD_DYN_LEN};
    struct vhd_footer f;
    int ret = 0;
    if (parent && (ret = describe_parent(path, parent, &h, &size, err)))
        return ret;
    uint64_t entries = (size + VHD_DEFAULT_BLOCK - 1) / VHD_DEFAULT_BLOCK;
    uint64_t bat_len = align_up(entries * 4, VHD_SECTOR), end = h.table_offset + bat_len;
    h.max_entries = (uint32_t)(entries ? entries : 1);
    uint8_t locator[VHD_SECTOR] = {0};
    if (parent) {
        char rel[600];
        char *pcopy = strdup(parent);
        snprintf(rel, sizeof(rel), ".\\%s", pcopy ? basename(pcopy) : "");
        free(pcopy);
        int units = to_utf16(rel, locator, VHD_SECTOR / 2, false);
        if (units < 0) {
            bdev_errf(err, "%s: the parent's name is too long", path);
            return -EINVAL;
        }
        h.loc[0] = (struct vhd_locator){VHD_PLAT_W2RU, VHD_SECTOR, (uint32_t)units * 2, end};
        end += VHD_SECTOR;
    }
    if ((ret = new_footer(&f, type, size)))
        return ret;
    uint8_t foot[VHD_FOOTER_LEN], dyn[VHD_DYN_LEN];
    vhd_footer_encode(&f, foot);
    vhd_dyn_encode(&h, dyn);
    uint8_t *bat = malloc(bat_len);
    if (!bat)
        return -ENOMEM;
    memset(bat, 0xff, bat_len);
    if (!(ret = put(fd, foot, sizeof(foot), 0)) && !(ret = put(fd, dyn, sizeof(dyn), VHD_SECTOR)) &&
        !(ret = put(fd, bat, bat_len, h.table_offset)) &&
        !(ret = parent ? put(fd, locator, sizeof(locator), h.loc[0].offset) : 0))
        ret = put(fd, foot, sizeof(foot), end);
    free(bat);
    return ret;
}

int vhd_create(const char *path, enum vhd_type type, uint64_t size, const char *parent,
               char err[BDEV_ERR_LEN])
{
    if ((type == VHD_DIFF) != (parent != NULL)) {
        bdev_errf(err, "%s: a differencing VHD needs a parent, and only it", path);
        return -EINVAL;
    }
    if (type != VHD_DIFF && (!size || size % VHD_SECTOR || size > VHD_MAX_SIZE)) {
        bdev_errf(err, "%s: a VHD's size is whole 512-byte sectors, up to 2040 GiB", path);
        return -EINVAL;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        bdev_errf(err, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    int ret;
    err[0] = '\0';
    if (type == VHD_FIXED) {
        struct vhd_footer f;
        uint8_t foot[VHD_FOOTER_LEN];
        ret = new_footer(&f, type, size);
        if (!ret) {
            vhd_footer_encode(&f, foot);
            ret = ftruncate(fd, (off_t)size) < 0 ? -errno : put(fd, foot, sizeof(foot), size);
        }
    } else {
        ret = write_sparse(fd, path, type, size, parent, err);
    }
    if (!ret && fsync(fd) < 0)
        ret = -errno;
    close(fd);
    if (ret) {
        if (!err[0])
            bdev_errf(err, "cannot write %s: %s", path, strerror(-ret));
        unlink(path);
    }
    return ret;
}
