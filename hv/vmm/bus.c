/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void io_bus_init(struct io_bus *bus, const char *name)
{
    memset(bus, 0, sizeof(*bus));
    bus->name = name;
    pthread_rwlock_init(&bus->lock, NULL);
}

void io_bus_destroy(struct io_bus *bus)
{
    free(bus->ranges);
    pthread_rwlock_destroy(&bus->lock);
    bus->ranges = NULL;
    bus->nr = bus->cap = 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Index of the first range whose base is >= addr. Caller holds the lock. */
static unsigned lower_bound(const struct io_bus *bus, uint64_t addr)
{
    unsigned lo = 0, hi = bus->nr;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (bus->ranges[mid].base < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool overlaps_any(const struct io_bus *bus, uint64_t base, uint64_t len, int skip)
{
    for (unsigned i = 0; i < bus->nr; i++) {
        if ((int)i == skip)
            continue;
        if (ranges_overlap(base, len, bus->ranges[i].base, bus->ranges[i].len))
            return true;
    }
    return false;
}

static int insert_range(struct io_bus *bus, struct io_range range)
{
    if (bus->nr == bus->cap) {
        unsigned cap = bus->cap ? bus->cap * 2 : 16;
        struct io_range *r = realloc(bus->ranges, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        bus->ranges = r;
        bus->cap = cap;
    }
    unsigned pos = lower_bound(bus, range.base);
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->nr - pos) * sizeof(range));
    bus->ranges[pos] = range;
    bus->nr++;
    return 0;
}

static int find_exact(const struct io_bus *bus, uint64_t base)
{
    unsigned pos = lower_bound(bus, base);

    if (pos < bus->nr && bus->ranges[pos].base == base)
        return (int)pos;
    return -1;
}

static void remove_at(struct io_bus *bus, unsigned pos)
{
    memmove(&bus->ranges[pos], &bus->ranges[pos + 1], (bus->nr - pos - 1) * sizeof(bus->ranges[0]));
    bus->nr--;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn handler,
                    void *opaque)
{
    int ret;

    if (len == 0 || base + len < base)
        return -EINVAL;
    pthread_rwlock_wrlock(&bus->lock);
    if (overlaps_any(bus, base, len, -1))
        ret = -EEXIST;
    else
        ret = insert_range(bus, (struct io_range){base, len, handler, opaque});
    pthread_rwlock_unlock(&bus->lock);
    if (ret == -EEXIST)
        log_err("%s range 0x%llx+0x%llx overlaps another device", bus->name,
                (unsigned long long)base, (unsigned long long)len);
    return ret;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base)
{
    int ret = -ENOENT;

    pthread_rwlock_wrlock(&bus->lock);
    int pos = find_exact(bus, base);
    if (pos >= 0) {
        remove_at(bus, (unsigned)pos);
        ret = 0;
    }
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

int io_bus_move(struct io_bus *bus, uint64_t old_base, uint64_t new_base)
{
    int ret;

    pthread_rwlock_wrlock(&bus->lock);
    int pos = find_exact(bus, old_base);
    if (pos < 0) {
        ret = -ENOENT;
    } else {
        struct io_range r = bus->ranges[pos];
        if (new_base + r.len < new_base || overlaps_any(bus, new_base, r.len, pos)) {
            ret = -EEXIST;
        } else {
            remove_at(bus, (unsigned)pos);
            r.base = new_base;
            ret = insert_range(bus, r); /* cannot fail: capacity is unchanged */
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

bool io_bus_access(struct io_bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
    struct io_range r;
    bool found = false;

    pthread_rwlock_rdlock(&bus->lock);
    /* The candidate is the last range whose base is <= addr. */
    unsigned pos = lower_bound(bus, addr + 1);
    if (pos > 0) {
        r = bus->ranges[pos - 1];
        found = addr - r.base < r.len && len <= r.len - (addr - r.base);
    }
    pthread_rwlock_unlock(&bus->lock);

    if (!found) {
        if (!is_write)
            memset(data, 0xff, len);
        return false;
    }
    /*
     * The handler runs without the bus lock so a device may move its own BARs.
     * Devices are never freed while vCPUs run, so r.opaque stays valid.
     */
    r.handler(r.opaque, addr - r.base, data, len, is_write);
    return true;
}
