/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk image backends of hv-vmm (docs/disks.md): raw files or block devices,
 * qcow2 v2/v3 images with backing files, and VHD (fixed, dynamic and
 * differencing). The format is given by the
 * caller (hvd decides it once and passes it) or, for interactive use, probed
 * from the image's first bytes; never guessed from a name. Backing files are
 * opened only inside the allowed image directories, and only regular files.
 *
 * A struct bdev is used by one thread at a time. Every function returns 0 or
 * -errno. Opening checks every field of the image it relies on: an image that
 * does not pass is refused with a sentence in err, never half-used.
 */
#ifndef HV_VMM_BLOCK_BLOCK_H
#define HV_VMM_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "iov.h"

#define BDEV_ERR_LEN   320
#define BDEV_MAX_CHAIN 16  /* images in a backing chain, the top one included */
#define BDEV_IOV_MAX   512 /* segments per request */
#define BDEV_MAX_DIRS  8   /* directories backing files may be in */

enum bdev_format {
    BDEV_FMT_PROBE, /* qcow2 or VHD if the file starts with its magic, raw otherwise */
    BDEV_FMT_RAW,
    BDEV_FMT_QCOW2,
    BDEV_FMT_VHD, /* fixed, dynamic or differencing */
};

/* "raw", "qcow2" or "vhd" as a format: 0, or -EINVAL for anything else. */
int bdev_format_parse(const char *name, enum bdev_format *fmt);

struct bdev;

struct bdev_ops {
    /* [off, off + total length of iov) lies within the capacity (checked by the wrappers). */
    int (*preadv)(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
    int (*pwritev)(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
    int (*flush)(struct bdev *b);
    /* A hint: the range may read back as anything afterwards (zeros here). */
    int (*discard)(struct bdev *b, uint64_t off, uint64_t len);
    /* The range reads back as zeros; unmap: host space may be released. */
    int (*write_zeroes)(struct bdev *b, uint64_t off, uint64_t len, bool unmap);
    void (*close)(struct bdev *b);
};

struct bdev {
    const struct bdev_ops *ops;
    const char *format; /* "raw", "qcow2" or "vhd" */
    char *path;
    int fd;
    bool readonly;
    bool probed;          /* the format came from probing (raw: sector 0 may not turn into qcow2) */
    uint64_t size;        /* bytes the guest sees */
    struct bdev *backing; /* qcow2: the backing image, opened read-only, or NULL */
};

/*
 * Open an image. A read-write image is flock()ed exclusively, a read-only one
 * (and every backing file) shared: a second writer is refused. On failure
 * err holds a sentence naming the image and the reason.
 */
int bdev_open(struct bdev **out, const char *path, bool readonly, enum bdev_format fmt,
              char err[BDEV_ERR_LEN]);

/*
 * The same, with the directories backing files must be in (NULL-terminated,
 * at most BDEV_MAX_DIRS; NULL or empty: the image's own directory). A backing
 * file name is resolved (symbolic links followed) and must land inside one
 * of them, on a regular file: never a block device or any other host file.
 */
int bdev_open_confined(struct bdev **out, const char *path, bool readonly, enum bdev_format fmt,
                       const char *const *image_dirs, char err[BDEV_ERR_LEN]);

/*
 * The same on an open fd (taken over: closed by bdev_close, or on failure).
 * path names the image in messages and locates relative backing file names;
 * backing files only in path's directory (none if path does not exist).
 * No locking. For tests and fuzzers.
 */
int bdev_open_fd(struct bdev **out, int fd, const char *path, bool readonly, enum bdev_format fmt,
                 char err[BDEV_ERR_LEN]);

void bdev_close(struct bdev *b);

int bdev_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
int bdev_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off);
int bdev_pread(struct bdev *b, void *buf, size_t len, uint64_t off);
int bdev_pwrite(struct bdev *b, const void *buf, size_t len, uint64_t off);
int bdev_flush(struct bdev *b);
int bdev_discard(struct bdev *b, uint64_t off, uint64_t len);
int bdev_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap);

/* ---- for the backends ---- */

struct bdev_chain; /* the images opened so far in one chain (loop detection) */

int bdev_open_chain(struct bdev **out, int fd, const char *path, bool readonly,
                    enum bdev_format fmt, struct bdev_chain *chain, char *err);
int raw_open(struct bdev **out, int fd, const char *path, bool readonly, char *err);
int qcow2_open(struct bdev **out, int fd, const char *path, bool readonly, struct bdev_chain *chain,
               char *err);
int vhd_open(struct bdev **out, int fd, const char *path, bool readonly, struct bdev_chain *chain,
             char *err);
/*
 * Open a backing file, read-only and locked shared, relative to the overlay's
 * directory; refused unless it resolves to a regular file in an allowed directory.
 */
int bdev_open_backing(struct bdev **out, const char *overlay, const char *name,
                      enum bdev_format fmt, struct bdev_chain *chain, char *err);

/* What probing makes of an image's first bytes (zeros past a short file's end). */
#define BDEV_MAGIC_LEN 8
enum bdev_format bdev_magic_format(const uint8_t magic[BDEV_MAGIC_LEN]);

/* Set an error sentence (BDEV_ERR_LEN bytes, truncated if need be). */
void bdev_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* preadv/pwritev the whole range, retrying short transfers; reads past EOF give zeros. */
int bdev_rw_full(int fd, const struct iovec *iov, unsigned n, uint64_t off, bool write);
int bdev_fd_size(int fd, uint64_t *size);
/* Discard (a hint: punch a hole where the file system can) and write-zeroes on a raw range. */
int bdev_fd_discard(int fd, uint64_t off, uint64_t len);
int bdev_fd_write_zeroes(int fd, uint64_t off, uint64_t len, bool unmap);

#endif
