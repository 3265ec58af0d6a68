// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The generic part of the image backends: opening (probe, lock, backing
 * chains), range checks in front of every backend, and iovec helpers.
 */
#include "block.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qcow2.h"
#include "util.h"
#include "vhd.h"

struct bdev_chain {
    bool lock; /* flock() each image: exclusive for the writable top, shared otherwise */
    unsigned depth;
    dev_t dev[BDEV_MAX_CHAIN];
    ino_t ino[BDEV_MAX_CHAIN];
    /* Where backing files may be: resolved directory names, without a trailing slash. */
    char *dirs[BDEV_MAX_DIRS];
    unsigned nr_dirs;
};

static void chain_free_dirs(struct bdev_chain *chain)
{
    for (unsigned i = 0; i < chain->nr_dirs; i++)
        free(chain->dirs[i]);
    chain->nr_dirs = 0;
}

static int chain_add_dir(struct bdev_chain *chain, const char *dir, char *err)
{
    char *real = realpath(dir, NULL);
    if (!real) {
        int e = errno;
        bdev_errf(err, "image directory %s: %s", dir, strerror(e));
        return -e;
    }
    if (chain->nr_dirs == BDEV_MAX_DIRS) {
        free(real);
        bdev_errf(err, "image directory %s: at most %d image directories", dir, BDEV_MAX_DIRS);
        return -E2BIG;
    }
    if (strcmp(real, "/") == 0)
        real[0] = '\0'; /* every path is "" + "/..." below */
    chain->dirs[chain->nr_dirs++] = real;
    return 0;
}

/* The allowed directories: those given, or the directory the image really is in. */
static int chain_set_dirs(struct bdev_chain *chain, const char *path, const char *const *dirs,
                          bool must_exist, char *err)
{
    if (dirs && dirs[0]) {
        for (; *dirs; dirs++) {
            int ret = chain_add_dir(chain, *dirs, err);
            if (ret) {
                chain_free_dirs(chain);
                return ret;
            }
        }
        return 0;
    }
    char *real = realpath(path, NULL);
    if (!real) {
        int e = errno;
        if (!must_exist)
            return 0; /* no directory: no backing file at all */
        bdev_errf(err, "cannot open disk image %s: %s", path, strerror(e));
        return -e;
    }
    int ret = chain_add_dir(chain, dirname(real), err);
    free(real);
    return ret;
}

int bdev_format_parse(const char *name, enum bdev_format *fmt)
{
    static const struct {
        const char *name;
        enum bdev_format fmt;
    } names[] = {{"raw", BDEV_FMT_RAW}, {"qcow2", BDEV_FMT_QCOW2}, {"vhd", BDEV_FMT_VHD}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *fmt = names[i].fmt;
            return 0;
        }
    }
    return -EINVAL;
}

enum bdev_format bdev_magic_format(const uint8_t magic[BDEV_MAGIC_LEN])
{
    if (memcmp(magic, QCOW2_MAGIC, sizeof(QCOW2_MAGIC) - 1) == 0)
        return BDEV_FMT_QCOW2;
    /* Dynamic and differencing VHDs start with a copy of the footer; a fixed one has it only at
     * its end, and is found by its format, never probed. */
    if (memcmp(magic, VHD_COOKIE, sizeof(VHD_COOKIE) - 1) == 0)
        return BDEV_FMT_VHD;
    return BDEV_FMT_RAW;
}

int bdev_fd_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode))
        return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Remember the image in the chain; refuse a file already in it, or a chain too long. */
static int chain_add(struct bdev_chain *chain, int fd, const char *path, char *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        bdev_errf(err, "%s: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        bdev_errf(err, "%s: neither a file nor a block device", path);
        return -EINVAL;
    }
    for (unsigned i = 0; i < chain->depth; i++) {
        if (chain->dev[i] == st.st_dev && chain->ino[i] == st.st_ino) {
            bdev_errf(err, "%s: backing file loop (the image is its own backing)", path);
            return -ELOOP;
        }
    }
    if (chain->depth >= BDEV_MAX_CHAIN) {
        bdev_errf(err, "%s: backing chain longer than %d images", path, BDEV_MAX_CHAIN);
        return -ELOOP;
    }
    chain->dev[chain->depth] = st.st_dev;
    chain->ino[chain->depth] = st.st_ino;
    chain->depth++;
    return 0;
}

int bdev_open_chain(struct bdev **out, int fd, const char *path, bool readonly,
                    enum bdev_format fmt, struct bdev_chain *chain, char *err)
{
    int ret = chain_add(chain, fd, path, err);
    if (ret) {
        close(fd);
        return ret;
    }
    /* Two writers corrupt an image: a writer locks it exclusively, readers shared. */
    if (chain->lock && flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        ret = -errno;
        bdev_errf(err, "disk image %s is in use by another program (%s)", path,
                  ret == -EWOULDBLOCK ? "it is locked" : strerror(-ret));
        close(fd);
        return ret;
    }
    bool probed = fmt == BDEV_FMT_PROBE;
    if (probed) {
        uint8_t magic[BDEV_MAGIC_LEN] = {0};
        if (pread(fd, magic, sizeof(magic), 0) < 0) {
            ret = -errno;
            bdev_errf(err, "%s: cannot read: %s", path, strerror(errno));
            close(fd);
            return ret;
        }
        fmt = bdev_magic_format(magic);
    }
    if (fmt == BDEV_FMT_QCOW2)
        ret = qcow2_open(out, fd, path, readonly, chain, err);
    else if (fmt == BDEV_FMT_VHD)
        ret = vhd_open(out, fd, path, readonly, chain, err);
    else
        ret = raw_open(out, fd, path, readonly, err);
    if (!ret)
        (*out)->probed = probed;
    return ret;
}

static int open_file(const char *path, bool readonly, int *fdp, char *err)
{
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        bdev_errf(err, "cannot open disk image %s: %s", path, strerror(e));
        return -e;
    }
    *fdp = fd;
    return 0;
}

int bdev_open_confined(struct bdev **out, const char *path, bool readonly, enum bdev_format fmt,
                       const char *const *image_dirs, char err[BDEV_ERR_LEN])
{
    struct bdev_chain chain = {.lock = true};
    int fd = -1;
    int ret = open_file(path, readonly, &fd, err);
    if (ret)
        return ret;
    if ((ret = chain_set_dirs(&chain, path, image_dirs, true, err))) {
        close(fd);
        return ret;
    }
    ret = bdev_open_chain(out, fd, path, readonly, fmt, &chain, err);
    chain_free_dirs(&chain);
    return ret;
}

int bdev_open(struct bdev **out, const char *path, bool readonly, enum bdev_format fmt,
              char err[BDEV_ERR_LEN])
{
    return bdev_open_confined(out, path, readonly, fmt, NULL, err);
}

int bdev_open_fd(struct bdev **out, int fd, const char *path, bool readonly, enum bdev_format fmt,
                 char err[BDEV_ERR_LEN])
{
    struct bdev_chain chain = {0};
    int ret = chain_set_dirs(&chain, path, NULL, false, err);
    if (ret) {
        close(fd);
        return ret;
    }
    ret = bdev_open_chain(out, fd, path, readonly, fmt, &chain, err);
    chain_free_dirs(&chain);
    return ret;
}

/* The part of real below one of the allowed directories (and that directory), or NULL. */
static const char *below_allowed(const struct bdev_chain *chain, const char *real, const char **dir)
{
    for (unsigned i = 0; i < chain->nr_dirs; i++) {
        size_t n = strlen(chain->dirs[i]);
        if (strncmp(real, chain->dirs[i], n) == 0 && real[n] == '/' && real[n + 1]) {
            *dir = chain->dirs[i][0] ? chain->dirs[i] : "/";
            return real + n + 1;
        }
    }
    return NULL;
}

/*
 * Open path read-only if it resolves to a regular file inside an allowed
 * directory. The resolved name is opened again beneath that directory with
 * no symbolic links allowed, so a link swapped in after the check cannot
 * lead out. O_NONBLOCK: opening a FIFO must not hang (it is refused below).
 */
static int open_backing_file(const struct bdev_chain *chain, const char *path, int *fdp, char *err)
{
    char *real = realpath(path, NULL);
    if (!real) {
        int e = errno;
        bdev_errf(err, "cannot open disk image %s: %s", path, strerror(e));
        return -e;
    }
    const char *dir = NULL, *rel = below_allowed(chain, real, &dir);
    int ret = 0, fd = -1;
    if (!rel) {
        bdev_errf(err, "%s (%s) is outside the directories disk images may be in (%s%s)", path,
                  real, chain->nr_dirs ? chain->dirs[0] : "none",
                  chain->nr_dirs > 1 ? ", ..." : "");
        ret = -EACCES;
        goto out;
    }
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    fd = dfd < 0 ? -1 : (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
    if (fd < 0) {
        ret = -errno;
        bdev_errf(err, "cannot open disk image %s: %s", real, strerror(-ret));
    }
    if (dfd >= 0)
        close(dfd);
    struct stat st;
    if (!ret && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        ret = -EACCES;
        bdev_errf(err, "%s is not a regular file: a backing file must be an image file", real);
    }
    if (!ret && fcntl(fd, F_SETFL, 0) < 0) {
        ret = -errno;
        bdev_errf(err, "%s: %s", real, strerror(-ret));
    }
    if (ret && fd >= 0)
        close(fd);
    else
        *fdp = fd;
out:
    free(real);
    return ret;
}

int bdev_open_backing(struct bdev **out, const char *overlay, const char *name,
                      enum bdev_format fmt, struct bdev_chain *chain, char *err)
{
    char *path;
    const char *slash = strrchr(overlay, '/');
    int n = name[0] == '/' || !slash
                ? asprintf(&path, "%s", name)
                : asprintf(&path, "%.*s/%s", (int)(slash - overlay), overlay, name);
    if (n < 0) {
        bdev_errf(err, "%s: out of memory", overlay);
        return -ENOMEM;
    }
    int fd = -1;
    char sub[BDEV_ERR_LEN];
    int ret = open_backing_file(chain, path, &fd, sub);
    if (!ret)
        ret = bdev_open_chain(out, fd, path, true, fmt, chain, sub);
    /* The innermost failure names its image and the overlay pointing at it. */
    if (ret && strstr(sub, ": backing file: "))
        memcpy(err, sub, BDEV_ERR_LEN);
    else if (ret)
        bdev_errf(err, "%s: backing file: %s", overlay, sub);
    free(path);
    return ret;
}

void bdev_close(struct bdev *b)
{
    if (b)
        b->ops->close(b);
}

/* ---- checked entry points ---- */

static int check_range(struct bdev *b, uint64_t off, uint64_t len, bool write)
{
    if (write && b->readonly)
        return -EROFS;
    return range_within(off, len, b->size) ? 0 : -ERANGE;
}

int bdev_preadv(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    if (n > BDEV_IOV_MAX)
        return -EINVAL;
    int ret = check_range(b, off, iov_total(iov, n), false);
    return ret ? ret : b->ops->preadv(b, iov, n, off);
}

int bdev_pwritev(struct bdev *b, const struct iovec *iov, unsigned n, uint64_t off)
{
    if (n > BDEV_IOV_MAX)
        return -EINVAL;
    int ret = check_range(b, off, iov_total(iov, n), true);
    return ret ? ret : b->ops->pwritev(b, iov, n, off);
}

int bdev_pread(struct bdev *b, void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {buf, len};
    return bdev_preadv(b, &iov, 1, off);
}

int bdev_pwrite(struct bdev *b, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {(void *)buf, len};
    return bdev_pwritev(b, &iov, 1, off);
}

int bdev_flush(struct bdev *b)
{
    return b->readonly ? 0 : b->ops->flush(b);
}

int bdev_discard(struct bdev *b, uint64_t off, uint64_t len)
{
    int ret = check_range(b, off, len, true);
    return ret || !len ? ret : b->ops->discard(b, off, len);
}

int bdev_write_zeroes(struct bdev *b, uint64_t off, uint64_t len, bool unmap)
{
    int ret = check_range(b, off, len, true);
    return ret || !len ? ret : b->ops->write_zeroes(b, off, len, unmap);
}

void bdev_errf(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, BDEV_ERR_LEN, fmt, ap);
    va_end(ap);
}

int bdev_fd_discard(int fd, uint64_t off, uint64_t len)
{
    /* A hint: a file system or device that cannot punch holes just keeps the data. */
    (void)fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (off_t)off, (off_t)len);
    return 0;
}

int bdev_fd_write_zeroes(int fd, uint64_t off, uint64_t len, bool unmap)
{
    int mode = FALLOC_FL_KEEP_SIZE | (unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
    if (fallocate(fd, mode, (off_t)off, (off_t)len) == 0)
        return 0;
    static const uint8_t zeros[64 * 1024];
    for (uint64_t o = 0; o < len; o += sizeof(zeros)) {
        struct iovec iov = {(void *)zeros, (size_t)MIN(sizeof(zeros), len - o)};
        int ret = bdev_rw_full(fd, &iov, 1, off + o, true);
        if (ret)
            return ret;
    }
    return 0;
}

int bdev_rw_full(int fd, const struct iovec *iov, unsigned n, uint64_t off, bool write)
{
    struct iovec seg[BDEV_IOV_MAX];
    if (n > BDEV_IOV_MAX)
        return -EINVAL;
    memcpy(seg, iov, n * sizeof(*iov));
    struct iovec *v = seg;
    while (n) {
        if (!v->iov_len) {
            v++, n--;
            continue;
        }
        ssize_t r = write ? pwritev(fd, v, (int)n, (off_t)off) : preadv(fd, v, (int)n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0) {
            if (write)
                return -EIO;
            /* Past the end of the file: zeros, as for a sparse file. */
            for (unsigned i = 0; i < n; i++)
                memset(v[i].iov_base, 0, v[i].iov_len);
            return 0;
        }
        off += (uint64_t)r;
        while (n && (size_t)r >= v->iov_len) {
            r -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n) {
            v->iov_base = (uint8_t *)v->iov_base + r;
            v->iov_len -= (size_t)r;
        }
    }
    return 0;
}
