// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * VHD: the footer and dynamic header codec, and opening. Every field hv
 * relies on is checked here, before the image is used: a bad one refuses
 * the image with a sentence. Fixed disks are served here too (their data is
 * the file's start, byte for byte); vhd_io.c has the sparse data path.
 */
#include "vhd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "be.h"
#include "log.h"
#include "util.h"

/* ---- codec ---- */

uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t csum_off)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        if (i < csum_off || i >= csum_off + 4)
            sum += p[i];
    return ~sum;
}

int vhd_footer_decode(const uint8_t raw[VHD_FOOTER_LEN], struct vhd_footer *f, char *why,
                      size_t whylen)
{
    if (memcmp(raw, VHD_COOKIE, 8) != 0)
        return hv_fail(why, whylen, "no VHD footer (cookie \"conectix\") at the end of the file");
    if (be_get(raw + 64, 4) != vhd_checksum(raw, VHD_FOOTER_LEN, 64))
        return hv_fail(why, whylen, "the footer's checksum does not match: the footer is damaged");
    f->features = (uint32_t)be_get(raw + 8, 4);
    f->version = (uint32_t)be_get(raw + 12, 4);
    f->data_offset = be_get(raw + 16, 8);
    f->timestamp = (uint32_t)be_get(raw + 24, 4);
    memcpy(f->creator_app, raw + 28, 4);
    f->creator_version = (uint32_t)be_get(raw + 32, 4);
    f->creator_os = (uint32_t)be_get(raw + 36, 4);
    f->original_size = be_get(raw + 40, 8);
    f->current_size = be_get(raw + 48, 8);
    f->geometry = (uint32_t)be_get(raw + 56, 4);
    f->type = (uint32_t)be_get(raw + 60, 4);
    memcpy(f->uuid, raw + 68, 16);
    f->saved_state = raw[84];
    if (f->version >> 16 != 1)
        return hv_fail(why, whylen, "format version %u.%u (only 1.x is known)", f->version >> 16,
                       f->version & 0xffff);
    if (f->type != VHD_FIXED && f->type != VHD_DYNAMIC && f->type != VHD_DIFF)
        return hv_fail(why, whylen,
                       "disk type %u (fixed 2, dynamic 3 and differencing 4 are known)", f->type);
    if (f->current_size % VHD_SECTOR || f->current_size > VHD_MAX_SIZE)
        return hv_fail(why, whylen, "a disk size of %llu bytes (whole sectors up to 2040 GiB)",
                       (unsigned long long)f->current_size);
    return 0;
}

void vhd_footer_encode(const struct vhd_footer *f, uint8_t raw[VHD_FOOTER_LEN])
{
    memset(raw, 0, VHD_FOOTER_LEN);
    memcpy(raw, VHD_COOKIE, 8);
    be_put(raw + 8, 4, f->features);
    be_put(raw + 12, 4, f->version);
    be_put(raw + 16, 8, f->data_offset);
    be_put(raw + 24, 4, f->timestamp);
    memcpy(raw + 28, f->creator_app, 4);
    be_put(raw + 32, 4, f->creator_version);
    be_put(raw + 36, 4, f->creator_os);
    be_put(raw + 40, 8, f->original_size);
    be_put(raw + 48, 8, f->current_size);
    be_put(raw + 56, 4, f->geometry);
    be_put(raw + 60, 4, f->type);
    memcpy(raw + 68, f->uuid, 16);
    raw[84] = f->saved_state;
    be_put(raw + 64, 4, vhd_checksum(raw, VHD_FOOTER_LEN, 64));
}

int vhd_dyn_decode(const uint8_t raw[VHD_DYN_LEN], struct vhd_dyn *h, char *why, size_t whylen)
{
    if (memcmp(raw, VHD_DYN_COOKIE, 8) != 0)
        return hv_fail(why, whylen,
                       "no dynamic disk header (cookie \"cxsparse\") where the footer "
                       "says it is");
    if (be_get(raw + 36, 4) != vhd_checksum(raw, VHD_DYN_LEN, 36))
        return hv_fail(why, whylen, "the dynamic disk header's checksum does not match");
    h->table_offset = be_get(raw + 16, 8);
    h->version = (uint32_t)be_get(raw + 24, 4);
    h->max_entries = (uint32_t)be_get(raw + 28, 4);
    h->block_size = (uint32_t)be_get(raw + 32, 4);
    memcpy(h->parent_uuid, raw + 40, 16);
    h->parent_timestamp = (uint32_t)be_get(raw + 56, 4);
    for (unsigned i = 0; i < 256; i++)
        h->parent_name[i] = (uint16_t)be_get(raw + 64 + 2 * i, 2);
    for (unsigned i = 0; i < VHD_LOCATORS; i++) {
        const uint8_t *l = raw + 576 + 24 * i;
        h->loc[i] = (struct vhd_locator){(uint32_t)be_get(l, 4), (uint32_t)be_get(l + 4, 4),
                                         (uint32_t)be_get(l + 8, 4), be_get(l + 16, 8)};
    }
    if (h->version != VHD_VERSION)
        return hv_fail(why, whylen, "dynamic header version 0x%08x (0x00010000 is known)",
                       h->version);
    uint32_t bs = h->block_size;
    if (bs < VHD_MIN_BLOCK || bs > VHD_MAX_BLOCK || (bs & (bs - 1)))
        return hv_fail(why, whylen, "a block size of %u bytes (a power of two, 4 KiB to 256 MiB)",
                       bs);
    if (!h->max_entries || h->max_entries > VHD_MAX_ENTRIES)
        return hv_fail(why, whylen, "%u block table entries (1 to %u)", h->max_entries,
                       VHD_MAX_ENTRIES);
    if (h->table_offset % VHD_SECTOR)
        return hv_fail(why, whylen, "the block table at %llu, not on a sector",
                       (unsigned long long)h->table_offset);
    return 0;
}

void vhd_dyn_encode(const struct vhd_dyn *h, uint8_t raw[VHD_DYN_LEN])
{
    memset(raw, 0, VHD_DYN_LEN);
    memcpy(raw, VHD_DYN_COOKIE, 8);
    be_put(raw + 8, 8, VHD_NO_OFFSET);
    be_put(raw + 16, 8, h->table_offset);
    be_put(raw + 24, 4, h->version);
    be_put(raw + 28, 4, h->max_entries);
    be_put(raw + 32, 4, h->block_size);
    memcpy(raw + 40, h->parent_uuid, 16);
    be_put(raw + 56, 4, h->parent_timestamp);
    for (unsigned i = 0; i < 256; i++)
        be_put(raw + 64 + 2 * i, 2, h->parent_name[i]);
    for (unsigned i = 0; i < VHD_LOCATORS; i++) {
        uint8_t *l = raw + 576 + 24 * i;
        be_put(l, 4, h->loc[i].code);
        be_put(l + 4, 4, h->loc[i].space);
        be_put(l + 8, 4, h->loc[i].len);
        be_put(l + 16, 8, h->loc[i].offset);
    }
    be_put(raw + 36, 4, vhd_checksum(raw, VHD_DYN_LEN, 36));
}

/* The spec's appendix: cylinders, heads and sectors per track from the sector count. */
uint32_t vhd_geometry(uint64_t size)
{
    uint64_t total = size / VHD_SECTOR, spt, heads, cth;
    if (total > 65535ull * 16 * 255)
        total = 65535ull * 16 * 255;
    if (total >= 65535ull * 16 * 63) {
        spt = 255;
        heads = 16;
        cth = total / spt;
    } else {
        spt = 17;
        cth = total / spt;
        heads = (cth + 1023) / 1024;
        if (heads < 4)
            heads = 4;
        if (cth >= heads * 1024 || heads > 16) {
            spt = 31;
            heads = 16;
            cth = total / spt;
        }
        if (cth >= heads * 1024) {
            spt = 63;
            heads = 16;
            cth = total / spt;
        }
    }
    uint64_t cyl = cth / heads;
    return (uint32_t)(cyl << 16 | heads << 8 | spt);
}

int vhd_utf16_to_path(const uint8_t *p, size_t units, bool big_endian, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < units; i++) {
        uint32_t c = big_endian ? (uint32_t)(p[2 * i] << 8 | p[2 * i + 1])
                                : (uint32_t)(p[2 * i] | p[2 * i + 1] << 8);
        if (c == 0)
            break;
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) { /* a surrogate pair */
            uint32_t lo = big_endian ? (uint32_t)(p[2 * i + 2] << 8 | p[2 * i + 3])
                                     : (uint32_t)(p[2 * i + 2] | p[2 * i + 3] << 8);
            if (lo < 0xdc00 || lo >= 0xe000)
                return -1;
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            i++;
        } else if (c >= 0xd800 && c < 0xe000) {
            return -1;
        }
        if (c == '\\')
            c = '/';
        uint8_t u[4];
        size_t k;
        if (c < 0x80) {
            u[0] = (uint8_t)c;
            k = 1;
        } else if (c < 0x800) {
            u[0] = (uint8_t)(0xc0 | c >> 6);
            u[1] = (uint8_t)(0x80 | (c & 0x3f));
            k = 2;
        } else if (c < 0x10000) {
            u[0] = (uint8_t)(0xe0 | c >> 12);
            u[1] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
            u[2] = (uint8_t)(0x80 | (c & 0x3f));
            k = 3;
        } else {
            u[0] = (uint8_t)(0xf0 | c >> 18);
            u[1] = (uint8_t)(0x80 | (c >> 12 & 0x3f));
            u[2] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
            u[3] = (uint8_t)(0x80 | (c & 0x3f));
            k = 4;
        }
        if (o + k >= outlen)
            return -1;
        memcpy(out + o, u, k);
        o += k;
    }
    if (!o || o >= outlen)
        return -1;
    out[o] = '\0';
    return 0;
}

/* ---- the backend ---- */

void vhd_corrupt(struct vhd *v, const char *fmt, ...)
{
    if (v->logged_corrupt)
        return;
    v->logged_corrupt = true;
    char why[BDEV_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_err("%s: corrupt VHD image (I/O errors from now on where it matters): %s", v->b.path, why);
}

static int fixed_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    return bdev_rw_full(b->fd, iov, n, off, false);
}

static int fixed_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    return bdev_rw_full(b->fd, iov, n, off, true); /* inside [0, size): never the footer */
}

static int vhd_flush(struct bdev *b)
{
    return fdatasync(b->fd) < 0 ? -errno : 0;
}

static int fixed_discard(struct bdev *b, uint64_t off, uint64_t len)
{
    return bdev_fd_discard(b->fd, off, len); /* inside [0, size): never the footer */
}

static int fixed_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap)
{
    return bdev_fd_write_zeroes(b->fd, off, len, unmap);
}

/* Dynamic and differencing disks: unallocated space is a hint away from being zeros anyway. */
static int dyn_discard(struct bdev *b, uint64_t off, uint64_t len)
{
    (void)b, (void)off, (void)len;
    return 0;
}

static void vhd_close(struct bdev *b)
{
    struct vhd *v = (struct vhd *)b;
    bdev_close(b->backing);
    close(b->fd);
    free(v->bat);
    free(v->bitmap);
    free(v->full);
    free(b->path);
    free(v);
}

static const struct bdev_ops fixed_ops = {
    .preadv = fixed_preadv,
    .pwritev = fixed_pwritev,
    .flush = vhd_flush,
    .discard = fixed_discard,
    .write_zeroes = fixed_write_zeroes,
    .close = vhd_close,
};

static const struct bdev_ops dyn_ops = {
    .preadv = vhd_dyn_preadv,
    .pwritev = vhd_dyn_pwritev,
    .flush = vhd_flush,
    .discard = dyn_discard,
    .write_zeroes = vhd_dyn_write_zeroes,
    .close = vhd_close,
};

const uint8_t *vhd_uuid_of(const struct bdev *b)
{
    return b && (b->ops == &fixed_ops || b->ops == &dyn_ops) ? ((const struct vhd *)b)->uuid : NULL;
}

struct vopen {
    struct vhd *v;
    const char *path;
    char *err;
    uint64_t fsz;
};

static int bad(struct vopen *o, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct vopen *o, int e, const char *fmt, ...)
{
    char why[BDEV_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    bdev_errf(o->err, "%s: refused VHD image: %s", o->path, why);
    return -e;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* The BAT, read and checked: every allocated block lies between the metadata and the footer. */
static int load_bat(struct vopen *o, uint64_t dyn_off)
{
    struct vhd *v = o->v;
    uint64_t bat_len = (uint64_t)v->entries * 4;
    if (!range_within(v->bat_off, bat_len, v->footer_off) || v->bat_off < VHD_FOOTER_LEN ||
        overlaps(v->bat_off, bat_len, dyn_off, VHD_DYN_LEN))
        return bad(o, EINVAL,
                   "the block table (%u entries at %llu) is not inside the file, "
                   "or overlaps the headers",
                   v->entries, (unsigned long long)v->bat_off);
    uint8_t *raw = malloc(bat_len);
    v->bat = malloc(bat_len);
    if (!raw || !v->bat) {
        free(raw);
        return bad(o, ENOMEM, "out of memory for the block table");
    }
    ssize_t r = pread(v->b.fd, raw, bat_len, (off_t)v->bat_off);
    if (r != (ssize_t)bat_len) {
        free(raw);
        return bad(o, EIO, "cannot read the block table");
    }
    uint64_t block_len = (uint64_t)v->bitmap_len + v->block_size;
    int ret = 0;
    for (uint32_t i = 0; i < v->entries && !ret; i++) {
        v->bat[i] = (uint32_t)be_get(raw + 4 * i, 4);
        if (v->bat[i] == VHD_BAT_UNUSED)
            continue;
        uint64_t at = (uint64_t)v->bat[i] * VHD_SECTOR;
        if (at < VHD_FOOTER_LEN || !range_within(at, block_len, v->footer_off) ||
            overlaps(at, block_len, dyn_off, VHD_DYN_LEN) ||
            overlaps(at, block_len, v->bat_off, bat_len))
            ret = bad(o, EINVAL, "block %u at %llu is outside the file or on its metadata", i,
                      (unsigned long long)at);
    }
    free(raw);
    return ret;
}

/* A differencing disk's parent: the first locator that names a file we can open, else its name. */
static int open_parent(struct vopen *o, const struct vhd_dyn *h, struct bdev_chain *chain)
{
    struct vhd *v = o->v;
    char name[3 * VHD_MAX_LOCATOR], sub[BDEV_ERR_LEN] = "";
    int ret = -ENOENT;
    for (int pass = 0; pass < 3 && ret; pass++) {
        for (unsigned i = 0; i < VHD_LOCATORS && ret; i++) {
            const struct vhd_locator *l = &h->loc[i];
            uint32_t want = pass == 0 ? VHD_PLAT_W2RU : VHD_PLAT_W2KU;
            if (pass == 2 || l->code != want)
                continue;
            if (!l->len || l->len > VHD_MAX_LOCATOR || l->len % 2 ||
                !range_within(l->offset, l->len, v->footer_off))
                return bad(o, EINVAL, "parent locator %u (%u bytes at %llu) is not inside the file",
                           i, l->len, (unsigned long long)l->offset);
            uint8_t raw[VHD_MAX_LOCATOR];
            if (pread(v->b.fd, raw, l->len, (off_t)l->offset) != (ssize_t)l->len)
                return bad(o, EIO, "cannot read parent locator %u", i);
            if (vhd_utf16_to_path(raw, l->len / 2, false, name, sizeof(name)) < 0)
                return bad(o, EINVAL, "parent locator %u is not a UTF-16 path", i);
            /* An absolute Windows path means nothing here: the file name, beside this image. */
            const char *use = name;
            if (want == VHD_PLAT_W2KU && strrchr(name, '/'))
                use = strrchr(name, '/') + 1;
            else if (strncmp(name, "./", 2) == 0)
                use = name + 2;
            ret = bdev_open_backing(&v->b.backing, o->path, use, BDEV_FMT_VHD, chain, sub);
        }
        if (pass == 2) {
            uint8_t raw[512];
            for (unsigned k = 0; k < 256; k++)
                be_put(raw + 2 * k, 2, h->parent_name[k]);
            if (vhd_utf16_to_path(raw, 256, true, name, sizeof(name)) < 0)
                return bad(o, EINVAL, "the parent's name is not UTF-16 and no locator names it");
            const char *slash = strrchr(name, '/');
            ret = bdev_open_backing(&v->b.backing, o->path, slash ? slash + 1 : name, BDEV_FMT_VHD,
                                    chain, sub);
        }
    }
    if (ret) {
        memcpy(o->err, sub, BDEV_ERR_LEN);
        return ret;
    }
    const uint8_t *puuid = vhd_uuid_of(v->b.backing);
    if (!puuid || memcmp(puuid, h->parent_uuid, 16) != 0)
        return bad(o, EINVAL,
                   "its parent %s is not the image it was made from (another unique "
                   "id)",
                   v->b.backing->path);
    if (v->b.backing->size != v->b.size)
        return bad(o, EINVAL, "its parent %s has another size (%llu bytes, not %llu)",
                   v->b.backing->path, (unsigned long long)v->b.backing->size,
                   (unsigned long long)v->b.size);
    return 0;
}

static int open_dynamic(struct vopen *o, const struct vhd_footer *f, struct bdev_chain *chain)
{
    struct vhd *v = o->v;
    uint8_t raw[VHD_DYN_LEN];
    struct vhd_dyn h;
    char why[200];
    if (f->data_offset % VHD_SECTOR || f->data_offset < VHD_FOOTER_LEN ||
        !range_within(f->data_offset, VHD_DYN_LEN, v->footer_off))
        return bad(o, EINVAL, "the dynamic header's place (%llu) is not inside the file",
                   (unsigned long long)f->data_offset);
    if (pread(v->b.fd, raw, sizeof(raw), (off_t)f->data_offset) != (ssize_t)sizeof(raw))
        return bad(o, EIO, "cannot read the dynamic disk header");
    if (vhd_dyn_decode(raw, &h, why, sizeof(why)) < 0)
        return bad(o, EINVAL, "%s", why);
    v->block_size = h.block_size;
    v->sectors_per_block = h.block_size / VHD_SECTOR;
    v->bitmap_len = (uint32_t)align_up((v->sectors_per_block + 7) / 8, VHD_SECTOR);
    v->entries = h.max_entries;
    v->bat_off = h.table_offset;
    if ((uint64_t)h.max_entries * h.block_size < v->b.size)
        return bad(o, EINVAL, "%u blocks of %u bytes hold less than the disk's %llu bytes",
                   h.max_entries, h.block_size, (unsigned long long)v->b.size);
    int ret = load_bat(o, f->data_offset);
    if (ret)
        return ret;
    v->bitmap = malloc(v->bitmap_len);
    v->full = calloc((v->entries + 7) / 8, 1);
    v->bitmap_block = UINT32_MAX;
    if (!v->bitmap || !v->full)
        return bad(o, ENOMEM, "out of memory");
    return v->type == VHD_DIFF ? open_parent(o, &h, chain) : 0;
}

int vhd_open(struct bdev **out, int fd, const char *path, bool readonly, struct bdev_chain *chain,
             char *err)
{
    struct vhd *v = calloc(1, sizeof(*v));
    struct vopen o = {v, path, err, 0};
    struct vhd_footer f;
    char why[200];
    int ret;
    if (!v || !(v->b.path = strdup(path))) {
        free(v);
        close(fd);
        bdev_errf(err, "%s: out of memory", path);
        return -ENOMEM;
    }
    v->b.fd = fd;
    v->b.readonly = readonly;
    v->b.format = "vhd";
    v->b.ops = &fixed_ops; /* until it is known: vhd_close frees either */
    if ((ret = bdev_fd_size(fd, &o.fsz))) {
        ret = bad(&o, -ret, "cannot tell its size");
        goto fail;
    }
    if (o.fsz < VHD_FOOTER_LEN || o.fsz % VHD_SECTOR) {
        ret = bad(&o, EINVAL, "its size (%llu bytes) is not whole sectors with a footer",
                  (unsigned long long)o.fsz);
        goto fail;
    }
    v->footer_off = o.fsz - VHD_FOOTER_LEN;
    if (pread(fd, v->footer, VHD_FOOTER_LEN, (off_t)v->footer_off) != VHD_FOOTER_LEN) {
        ret = bad(&o, EIO, "cannot read its footer");
        goto fail;
    }
    if (vhd_footer_decode(v->footer, &f, why, sizeof(why)) < 0) {
        ret = bad(&o, EINVAL, "%s", why);
        goto fail;
    }
    v->type = (enum vhd_type)f.type;
    memcpy(v->uuid, f.uuid, 16);
    v->b.size = f.current_size;
    if (v->type == VHD_FIXED) {
        if (f.current_size > v->footer_off) {
            ret = bad(&o, EINVAL, "a fixed disk of %llu bytes in a file of %llu",
                      (unsigned long long)f.current_size, (unsigned long long)o.fsz);
            goto fail;
        }
    } else {
        v->b.ops = &dyn_ops;
        if ((ret = open_dynamic(&o, &f, chain)))
            goto fail;
    }
    *out = &v->b;
    return 0;
fail:
    vhd_close(&v->b);
    return ret;
}
