// SPDX-License-Identifier: GPL-2.0-or-later
#include "iov.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

size_t iov_total(const struct iovec *iov, unsigned n)
{
    size_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

static size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len,
                       bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t k = MIN(iov[i].iov_len - off, len - done);
        uint8_t *g = (uint8_t *)iov[i].iov_base + off;
        if (to_iov)
            memcpy(g, (uint8_t *)buf + done, k);
        else
            memcpy((uint8_t *)buf + done, g, k);
        done += k;
        off = 0;
    }
    return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
    return iov_copy(iov, n, off, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
    return iov_copy(iov, n, off, (void *)(uintptr_t)buf, len, true);
}

unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *dst,
                   unsigned max)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n && len && k < max; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t take = MIN(iov[i].iov_len - off, len);
        dst[k].iov_base = (uint8_t *)iov[i].iov_base + off;
        dst[k].iov_len = take;
        k++;
        len -= take;
        off = 0;
    }
    return k;
}

void iov_memset(const struct iovec *iov, unsigned n, size_t off, int c, size_t len)
{
    for (unsigned i = 0; i < n && len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t k = MIN(iov[i].iov_len - off, len);
        memset((uint8_t *)iov[i].iov_base + off, c, k);
        len -= k;
        off = 0;
    }
}
