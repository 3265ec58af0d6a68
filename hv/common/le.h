/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Little-endian fields in byte buffers (PCI config space, virtio structures,
 * the Linux boot header, USB/IP's few LE fields), whatever the alignment:
 * the one set of helpers every part of hv uses.
 */
#ifndef HV_COMMON_LE_H
#define HV_COMMON_LE_H

#include <stdint.h>

static inline uint16_t le16_get(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32_get(const uint8_t *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64_get(const uint8_t *p)
{
    return le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

static inline void le16_put(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}

static inline void le32_put(uint8_t *p, uint32_t v)
{
    le16_put(p, v & 0xffff);
    le16_put(p + 2, v >> 16);
}

static inline void le64_put(uint8_t *p, uint64_t v)
{
    le32_put(p, (uint32_t)v);
    le32_put(p + 4, (uint32_t)(v >> 32));
}

#endif
