/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VHD (Microsoft's Virtual Hard Disk Image Format Specification, 2006, as
 * Virtual PC, Hyper-V and blktap2 write it; qemu-img calls it "vpc"):
 * fixed, dynamic and differencing disks. The format and what hv checks:
 * docs/disks.md. Shared by vhd*.c; the codec functions are pure (no I/O)
 * for the tests and the fuzzer.
 *
 * Layout of a dynamic or differencing disk, every field big-endian:
 *   0       a copy of the footer (512 bytes)
 *   512     the dynamic disk header (1024 bytes): the BAT's place, the block
 *           size, and for a differencing disk the parent's identity and
 *           where to find it (parent locators)
 *   ...     the block allocation table (BAT): one 32-bit sector number per
 *           block, 0xffffffff = not allocated; parent locator data
 *   ...     blocks: a sector bitmap (1 bit per 512-byte sector, the first
 *           sector in bit 7 of byte 0; padded to whole sectors) then the data
 *   end     the footer
 * A fixed disk is its data followed by the footer.
 */
#ifndef HV_VMM_BLOCK_VHD_H
#define HV_VMM_BLOCK_VHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block.h"

#define VHD_COOKIE        "conectix"
#define VHD_DYN_COOKIE    "cxsparse"
#define VHD_SECTOR        512u
#define VHD_FOOTER_LEN    512u
#define VHD_DYN_LEN       1024u
#define VHD_VERSION       0x00010000u
#define VHD_FEATURE_RSVD  0x00000002u /* "always set" */
#define VHD_NO_OFFSET     UINT64_MAX  /* a fixed disk's data offset */
#define VHD_BAT_UNUSED    0xffffffffu
#define VHD_MIN_BLOCK     (4u << 10)
#define VHD_MAX_BLOCK     (256u << 20)
#define VHD_DEFAULT_BLOCK (2u << 20)
#define VHD_MAX_ENTRIES   (1u << 22)             /* a 16 MiB BAT */
#define VHD_MAX_SIZE      (UINT64_C(2040) << 30) /* the format's own limit */
#define VHD_LOCATORS      8
#define VHD_MAX_LOCATOR   2048u               /* bytes of one locator's path */
#define VHD_EPOCH         UINT64_C(946684800) /* 2000-01-01 00:00:00 UTC, in Unix time */

enum vhd_type {
    VHD_FIXED = 2,
    VHD_DYNAMIC = 3,
    VHD_DIFF = 4,
};

/* Parent locator platform codes. */
#define VHD_PLAT_W2RU 0x57327275u /* "W2ru": a relative Windows path, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326b75u /* "W2ku": an absolute Windows path, UTF-16LE */

struct vhd_footer {
    uint32_t features, version;
    uint64_t data_offset;
    uint32_t timestamp;
    uint8_t creator_app[4];
    uint32_t creator_version, creator_os;
    uint64_t original_size, current_size;
    uint32_t geometry, type;
    uint8_t uuid[16];
    uint8_t saved_state;
};

struct vhd_locator {
    uint32_t code, space, len;
    uint64_t offset;
};

struct vhd_dyn {
    uint64_t table_offset;
    uint32_t version, max_entries, block_size;
    uint8_t parent_uuid[16];
    uint32_t parent_timestamp;
    uint16_t parent_name[256]; /* UTF-16 code units, host order; NUL-padded */
    struct vhd_locator loc[VHD_LOCATORS];
};

struct vhd {
    struct bdev b; /* first: a struct bdev * is a struct vhd * */
    enum vhd_type type;
    uint8_t uuid[16];
    uint64_t footer_off; /* where the footer is: the end of the file less 512 */
    uint8_t footer[VHD_FOOTER_LEN];

    /* dynamic and differencing */
    uint64_t bat_off;
    uint32_t entries, block_size, sectors_per_block, bitmap_len;
    uint32_t *bat;   /* host order */
    uint8_t *bitmap; /* the bitmap of bitmap_block, or nothing (UINT32_MAX) */
    /* 1 bit per block: its bitmap is known to have every sector's bit set (always so for the
     * blocks hv makes), so reads and writes there need not read it. */
    uint8_t *full;
    uint32_t bitmap_block;
    bool logged_corrupt;
};

/* One's complement of the byte sum of len bytes, the 4 at csum_off counted as zeros. */
uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t csum_off);

/* A footer or dynamic header from its bytes: 0, or -1 with why it is refused. */
int vhd_footer_decode(const uint8_t raw[VHD_FOOTER_LEN], struct vhd_footer *f, char *why,
                      size_t whylen);
int vhd_dyn_decode(const uint8_t raw[VHD_DYN_LEN], struct vhd_dyn *h, char *why, size_t whylen);
/* Their bytes, checksum included. */
void vhd_footer_encode(const struct vhd_footer *f, uint8_t raw[VHD_FOOTER_LEN]);
void vhd_dyn_encode(const struct vhd_dyn *h, uint8_t raw[VHD_DYN_LEN]);

/* The spec's cylinders/heads/sectors for a disk of size bytes, as the footer holds them. */
uint32_t vhd_geometry(uint64_t size);

/* A parent locator's (or the parent name's) UTF-16 as a path for this host: UTF-8, '/'. */
int vhd_utf16_to_path(const uint8_t *p, size_t units, bool big_endian, char *out, size_t outlen);

/* vhd.c */
int vhd_open(struct bdev **out, int fd, const char *path, bool readonly, struct bdev_chain *chain,
             char *err);
void vhd_corrupt(struct vhd *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const uint8_t *vhd_uuid_of(const struct bdev *b); /* NULL unless b is a VHD */

/* vhd_io.c: the dynamic and differencing data path */
int vhd_dyn_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
int vhd_dyn_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
int vhd_dyn_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap);

/*
 * vhd_create.c: a new image at path (created, never overwritten): fixed or
 * dynamic of size bytes (a multiple of 512), or differencing over parent (a
 * VHD in the same directory, named by its file name; size is then the
 * parent's and the size given is ignored).
 */
int vhd_create(const char *path, enum vhd_type type, uint64_t size, const char *parent,
               char err[BDEV_ERR_LEN]);

#endif
