// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qcow2's L2 tables, kept in memory in slices of up to 512 entries (4 KiB),
 * 256 slices: 1 MiB, which maps 8 GiB of a disk with 64 KiB clusters (the
 * size QEMU's own cache has by default). A lookup costs a pread only the
 * first time its slice is needed; the least recently used slice makes room.
 *
 * The cache stays true to the file: every metadata write goes through
 * qcow2_pwrite(), which gives its bytes to qcow2_l2_written(), and a cluster
 * given back to the host (punched) is forgotten.
 */
#include "qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static unsigned slice_entries(const struct qcow2 *q)
{
    return (unsigned)MIN(QCOW2_L2_SLICE_ENTRIES, 1ull << q->l2_bits);
}

int qcow2_l2_get(struct qcow2 *q, uint64_t table, uint64_t idx, uint64_t *entry)
{
    struct qcow2_l2cache *c = &q->l2c;
    unsigned se = slice_entries(q);
    uint64_t key = table + idx / se * se * 8;
    unsigned slot = 0;
    for (unsigned i = 0; i < QCOW2_L2_SLICES; i++) {
        if (c->key[i] == key) {
            c->used[i] = ++c->tick;
            *entry = c->entries[(size_t)i * se + idx % se];
            return 0;
        }
        if (c->used[i] < c->used[slot])
            slot = i;
    }
    if (!c->entries && !(c->entries = calloc((size_t)QCOW2_L2_SLICES * se, 8)))
        return -ENOMEM;
    uint8_t raw[QCOW2_L2_SLICE_ENTRIES * 8];
    c->key[slot] = 0;
    int ret = qcow2_pread(q, raw, se * 8, key);
    if (ret)
        return ret;
    uint64_t *e = c->entries + (size_t)slot * se;
    for (unsigned i = 0; i < se; i++)
        e[i] = be_get(raw + 8 * i, 8);
    c->key[slot] = key;
    c->used[slot] = ++c->tick;
    *entry = e[idx % se];
    return 0;
}

void qcow2_l2_written(struct qcow2 *q, uint64_t off, const void *buf, size_t len)
{
    struct qcow2_l2cache *c = &q->l2c;
    unsigned se = slice_entries(q);
    uint64_t bytes = (uint64_t)se * 8;
    for (unsigned i = 0; i < QCOW2_L2_SLICES; i++) {
        uint64_t k = c->key[i];
        if (!k || off >= k + bytes || k >= off + len)
            continue;
        if (buf && off % 8 == 0 && len % 8 == 0) {
            uint64_t lo = MAX(off, k), hi = MIN(off + len, k + bytes);
            for (uint64_t o = lo; o < hi; o += 8)
                c->entries[(size_t)i * se + (o - k) / 8] =
                    be_get((const uint8_t *)buf + (o - off), 8);
        } else {
            c->key[i] = 0; /* read again when needed */
        }
    }
}

void qcow2_l2_free(struct qcow2 *q)
{
    free(q->l2c.entries);
    q->l2c.entries = NULL;
}
