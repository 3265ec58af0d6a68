/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Scatter-gather lists (struct iovec): the one set of helpers every part of hv uses. */
#ifndef HV_COMMON_IOV_H
#define HV_COMMON_IOV_H

#include <stddef.h>
#include <sys/uio.h>

size_t iov_total(const struct iovec *iov, unsigned n);
/* Copy between a flat buffer and bytes [off, off + len) of iov; returns the bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);
/* Set bytes [off, off + len) of iov to c. */
void iov_memset(const struct iovec *iov, unsigned n, size_t off, int c, size_t len);
/* Describe bytes [off, off + len) of iov in dst; returns the count of dst entries used. */
unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *dst,
                   unsigned max);

#endif
