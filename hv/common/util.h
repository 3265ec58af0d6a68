/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by hv's programs. */
#ifndef HV_COMMON_UTIL_H
#define HV_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* True when [start, start + len) lies inside [0, limit) without overflow. */
static inline bool range_within(uint64_t start, uint64_t len, uint64_t limit)
{
    return start <= limit && len <= limit - start;
}

static inline uint64_t align_up(uint64_t v, uint64_t align)
{
    return (v + align - 1) & ~(align - 1);
}

/*
 * Parse a size such as "512M", "2G", "4096" (bytes) or "64K".
 * Returns 0, or -1 with *err set to a sentence saying what is wrong.
 */
int parse_size(const char *s, uint64_t *out, const char **err);

/*
 * Writes the reason into err (errlen bytes) and returns -1: how a parser of
 * untrusted input says why it refused it in one line.
 */
int hv_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parse a whole decimal unsigned number in [min, max]. Returns 0 or -1. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* read()/write() the whole buffer, retrying on EINTR and short transfers. */
ssize_t read_full(int fd, void *buf, size_t len);
ssize_t write_full(int fd, const void *buf, size_t len);

#endif
