/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PIO/MMIO dispatcher: lookup, overlap refusal, moves, unclaimed reads. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bus.h"
#include "check.h"

struct recorder {
    uint64_t off;
    uint32_t len;
    bool is_write;
    int calls;
};

static void record(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct recorder *r = opaque;

    r->off = off;
    r->len = len;
    r->is_write = is_write;
    r->calls++;
    if (!is_write)
        memset(data, 0x5a, len);
}

int main(void)
{
    struct io_bus bus;
    struct recorder a = {0}, b = {0};
    uint8_t data[8];

    io_bus_init(&bus, "test");
    CHECK(io_bus_register(&bus, 0x1000, 0x100, record, &a) == 0);
    CHECK(io_bus_register(&bus, 0x3000, 0x10, record, &b) == 0);
    CHECK(io_bus_register(&bus, 0x10ff, 0x2, record, &b) == -EEXIST);
    CHECK(io_bus_register(&bus, 0x0f00, 0x101, record, &b) == -EEXIST);
    CHECK(io_bus_register(&bus, 0x10, 0, record, &b) == -EINVAL);
    CHECK(io_bus_register(&bus, UINT64_MAX, 2, record, &b) == -EINVAL);

    CHECK(io_bus_access(&bus, 0x1004, data, 4, false));
    CHECK(a.calls == 1 && a.off == 4 && a.len == 4 && !a.is_write && data[0] == 0x5a);
    CHECK(io_bus_access(&bus, 0x300f, data, 1, true));
    CHECK(b.calls == 1 && b.off == 0xf && b.is_write);

    /* An access that runs past the end of a range is not the device's. */
    memset(data, 0, sizeof(data));
    CHECK(!io_bus_access(&bus, 0x300e, data, 4, false));
    CHECK(data[0] == 0xff && data[3] == 0xff);
    CHECK(!io_bus_access(&bus, 0x2000, data, 4, true));
    CHECK(!io_bus_access(&bus, UINT64_MAX, data, 1, false));

    /* Moving a BAR: the old address is free, the new one dispatches. */
    CHECK(io_bus_move(&bus, 0x3000, 0x1000) == -EEXIST);
    CHECK(io_bus_move(&bus, 0x3000, 0x8000) == 0);
    CHECK(!io_bus_access(&bus, 0x3000, data, 1, false));
    CHECK(io_bus_access(&bus, 0x8001, data, 1, false) && b.off == 1);
    CHECK(io_bus_move(&bus, 0x3000, 0x9000) == -ENOENT);

    CHECK(io_bus_unregister(&bus, 0x1000) == 0);
    CHECK(!io_bus_access(&bus, 0x1000, data, 1, false));
    CHECK(io_bus_unregister(&bus, 0x1000) == -ENOENT);
    io_bus_destroy(&bus);
    CHECK_DONE();
}
