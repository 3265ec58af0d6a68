/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Big-endian fields of any width (1 to 8 bytes) in byte buffers, whatever
 * the alignment: the on-disk headers of qcow2 and VHD.
 */
#ifndef HV_COMMON_BE_H
#define HV_COMMON_BE_H

#include <stdint.h>

static inline uint64_t be_get(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void be_put(uint8_t *p, unsigned bytes, uint64_t v)
{
    for (unsigned i = bytes; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

#endif
