/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The least memory a running guest may be ballooned down to: one rule for
 * hv-vmm's control socket and hvd's vm.memory (docs/memory.md).
 */
#ifndef HV_COMMON_MEMFLOOR_H
#define HV_COMMON_MEMFLOOR_H

#include <stdint.h>

#define HV_MEMORY_FLOOR_MIN (UINT64_C(128) << 20)

/* max(128 MiB, memory / 8), and never more than memory itself. */
static inline uint64_t hv_memory_floor(uint64_t memory)
{
    uint64_t f = memory / 8 > HV_MEMORY_FLOOR_MIN ? memory / 8 : HV_MEMORY_FLOOR_MIN;
    f &= ~(UINT64_C(4096) - 1);
    return f < memory ? f : memory;
}

#endif
