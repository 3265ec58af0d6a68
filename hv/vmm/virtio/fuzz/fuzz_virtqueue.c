// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the split virtqueue walker on rings full of fuzz bytes.
 * Input: byte 0 picks the queue size (1 << (b & 7)) and features (bits 6-7),
 * the rest is laid over the descriptor table, the avail ring and an
 * indirect-table area in a small fake guest RAM.
 */
#include <stdint.h>
#include <string.h>

#include "queue.h"
#include "util.h"

#define RAM   (1 * MiB)
#define RING  0x1000
#define AVAIL 0x3000
#define USED  0x4000
#define AREA  0x8000 /* buffers and indirect tables point here */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static struct vq_chain chain;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mem.base && guest_mem_init(&mem, RAM) != 0)
        return 0;
    if (size < 1)
        return 0;
    uint16_t qs = (uint16_t)(1u << (data[0] & 7));
    bool event_idx = data[0] & 0x40, indirect = data[0] & 0x80;
    data++, size--;

    memset(mem.base, 0, 0x10000);
    /* Descriptors, then avail, then the indirect area, as far as the input goes. */
    size_t n = MIN(size, (size_t)16 * qs);
    memcpy(mem.base + RING, data, n);
    data += n, size -= n;
    n = MIN(size, (size_t)6 + 2 * qs);
    memcpy(mem.base + AVAIL, data, n);
    data += n, size -= n;
    memcpy(mem.base + AREA, data, MIN(size, (size_t)0x8000));

    struct vq vq;
    const char *why;
    if (vq_setup(&vq, &mem, qs, RING, AVAIL, USED, event_idx, indirect, &why) != 0)
        __builtin_trap();
    for (unsigned i = 0; i < 2u * qs + 2; i++) {
        int r = vq_pop(&vq, &chain);
        if (r <= 0)
            break;
        /* Every segment must lie inside guest RAM. */
        for (unsigned k = 0; k < chain.nr_out + chain.nr_in; k++) {
            uint8_t *p = chain.iov[k].iov_base;
            if (p < mem.base || p + chain.iov[k].iov_len > mem.base + RAM)
                __builtin_trap();
        }
        vq_push(&vq, chain.head, (uint32_t)chain.in_len);
        vq_should_notify(&vq);
    }
    vq_notify_enable(&vq);
    return 0;
}
