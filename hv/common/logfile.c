// SPDX-License-Identifier: GPL-2.0-or-later
/* Console files under a size cap; see logfile.h. */
#include "logfile.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

void logfile_init(struct logfile *f, int fd, uint64_t max)
{
    struct stat st;
    f->fd = fd;
    f->max = max ? max : LOGFILE_DEFAULT_MAX;
    f->capped = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    f->size = f->capped ? (uint64_t)st.st_size : 0;
    f->restarts = 0;
}

static int restart(struct logfile *f)
{
    char line[128];
    f->restarts++;
    int n = snprintf(line, sizeof(line),
                     "[hv-vmm: the log reached its limit of %llu bytes and started again (%u)]\n",
                     (unsigned long long)f->max, f->restarts);
    if (ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
        return -errno;
    f->size = 0;
    if (write_full(f->fd, line, (size_t)n) < 0)
        return -errno;
    f->size = (uint64_t)n;
    return 0;
}

int logfile_write(struct logfile *f, const void *buf, size_t len)
{
    if (f->fd < 0)
        return -EBADF;
    if (f->capped && f->size + len > f->max) {
        if (len > f->max / 2) { /* keep only the tail of a huge write */
            buf = (const char *)buf + (len - f->max / 2);
            len = f->max / 2;
        }
        int ret = restart(f);
        if (ret)
            return ret;
    }
    if (write_full(f->fd, buf, len) < 0)
        return -errno;
    f->size += len;
    return 0;
}
