/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guest memory layout and the bounds check every guest address goes through. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mem.h"
#include "util.h"

static void test_small_guest(void)
{
    struct guest_mem m;

    CHECK(guest_mem_init(&m, 64 * MiB) == 0);
    CHECK(m.nr_regions == 1);
    CHECK(guest_mem_ptr(&m, 0, 64 * MiB) == m.base);
    CHECK(guest_mem_ptr(&m, 64 * MiB - 1, 1) == m.base + 64 * MiB - 1);
    CHECK(guest_mem_ptr(&m, 64 * MiB - 1, 2) == NULL);
    CHECK(guest_mem_ptr(&m, 64 * MiB, 0) == NULL);
    CHECK(guest_mem_ptr(&m, UINT64_MAX, 2) == NULL);
    CHECK(guest_mem_ptr(&m, 4096, UINT64_MAX) == NULL);
    CHECK(guest_mem_ptr(&m, MEM_HIGH_RAM_BASE, 1) == NULL);

    uint8_t buf[16] = "hello, guest ram";
    uint8_t out[16];
    CHECK(guest_mem_write(&m, 0x1000, buf, sizeof(buf)) == 0);
    CHECK(guest_mem_read(&m, 0x1000, out, sizeof(out)) == 0);
    CHECK(memcmp(buf, out, sizeof(buf)) == 0);
    CHECK(guest_mem_write(&m, 64 * MiB - 8, buf, sizeof(buf)) == -1);
    guest_mem_destroy(&m);
}

static void test_guest_above_the_pci_hole(void)
{
    struct guest_mem m;

    /* 3 GiB below the hole, 1 GiB above 4 GiB: nothing is touched, the memfd is sparse. */
    CHECK(guest_mem_init(&m, 4 * GiB) == 0);
    CHECK(m.nr_regions == 2);
    CHECK(m.regions[0].size == MEM_LOW_RAM_MAX);
    CHECK(m.regions[1].gpa == MEM_HIGH_RAM_BASE && m.regions[1].size == 1 * GiB);
    CHECK(guest_mem_ptr(&m, MEM_LOW_RAM_MAX, 1) == NULL);     /* the PCI hole */
    CHECK(guest_mem_ptr(&m, MEM_LOW_RAM_MAX - 1, 2) == NULL); /* straddles the hole */
    CHECK(guest_mem_ptr(&m, MEM_HIGH_RAM_BASE, 1) == m.base + MEM_LOW_RAM_MAX);
    CHECK(guest_mem_ptr(&m, MEM_HIGH_RAM_BASE + GiB - 4, 4) != NULL);
    CHECK(guest_mem_ptr(&m, MEM_HIGH_RAM_BASE + GiB - 4, 5) == NULL);
    guest_mem_destroy(&m);
}

static void test_bad_sizes(void)
{
    struct guest_mem m;

    CHECK(guest_mem_init(&m, 0) < 0);
    CHECK(guest_mem_init(&m, 4097) < 0);
}

/* Both kinds of RAM give pages back and read zero there; a range outside RAM is refused. */
static void test_discard(unsigned flags)
{
    struct guest_mem m;

    CHECK(guest_mem_init_flags(&m, 64 * MiB, MEM_LOW_RAM_MAX, flags) == 0);
    CHECK(m.shared == !!(flags & GUEST_MEM_SHARED) && (m.memfd >= 0) == m.shared);
    CHECK(m.merge == !(flags & GUEST_MEM_NOMERGE));
    memset(m.base, 0xee, 3 * 4096);
    CHECK(guest_mem_discard(&m, 4096, 4096) == 0);
    CHECK(m.base[0] == 0xee && m.base[4096] == 0 && m.base[8191] == 0 && m.base[8192] == 0xee);
    CHECK(guest_mem_discard(&m, 64 * MiB - 4096, 4096) == 0);
    CHECK(guest_mem_discard(&m, 64 * MiB, 4096) == -EINVAL);
    CHECK(guest_mem_discard(&m, 64 * MiB - 4096, 8192) == -EINVAL);
    CHECK(guest_mem_discard(&m, 100, 4096) == -EINVAL);
    CHECK(guest_mem_discard(&m, UINT64_MAX - 4095, 4096) == -EINVAL);
    CHECK(guest_mem_discard(&m, 0, 0) == 0);
    CHECK(guest_mem_drop_file_maps(&m) == 0); /* nothing mapped from a file: nothing to do */
    memset(m.base, 0xee, 64 * MiB);
    CHECK(guest_mem_discard(&m, 0, 64 * MiB) == 0);
    CHECK(m.base[0] == 0 && m.base[64 * MiB - 1] == 0);
    guest_mem_destroy(&m);
}

int main(void)
{
    test_discard(0);
    test_discard(GUEST_MEM_SHARED);
    test_discard(GUEST_MEM_NOMERGE);
    test_small_guest();
    test_guest_above_the_pci_hole();
    test_bad_sizes();
    CHECK_DONE();
}
