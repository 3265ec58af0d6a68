/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A file that a guest fills (its console output): kept under a size cap, so
 * that a guest printing in a loop cannot fill the host's /run (a tmpfs).
 * When the next write would pass the cap, the file starts again from its
 * beginning with a line that says so: the newest output is always there.
 * Other kinds of fd (a terminal, a pipe) are written as they are.
 */
#ifndef HV_COMMON_LOGFILE_H
#define HV_COMMON_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGFILE_DEFAULT_MAX (16ull << 20)

struct logfile {
    int fd;
    bool capped; /* a regular file: the cap applies */
    uint64_t size, max;
    unsigned restarts;
};

/* Take fd (not closed here); max 0 means LOGFILE_DEFAULT_MAX. */
void logfile_init(struct logfile *f, int fd, uint64_t max);
/* Write all of buf; 0 or -errno. */
int logfile_write(struct logfile *f, const void *buf, size_t len);

#endif
