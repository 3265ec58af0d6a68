/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Port-I/O and MMIO dispatch: devices register address ranges with a
 * handler; vCPU threads look the range up on each exit. Ranges may be moved
 * at run time (a guest reprogramming a PCI BAR), so lookups take a read lock.
 */
#ifndef HV_VMM_BUS_H
#define HV_VMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Called for an access of len bytes (1, 2, 4 or 8) at offset `off` inside the
 * registered range. For a read, fill data[0..len); for a write, data holds
 * the value (little-endian). Handlers run on vCPU threads, concurrently: a
 * device protects its own state.
 */
typedef void (*io_handler_fn)(void *opaque, uint64_t off, uint8_t *data, uint32_t len,
                              bool is_write);

struct io_range {
    uint64_t base;
    uint64_t len;
    io_handler_fn handler;
    void *opaque;
};

struct io_bus {
    const char *name; /* "pio" or "mmio", for messages */
    pthread_rwlock_t lock;
    struct io_range *ranges; /* sorted by base, never overlapping */
    unsigned nr, cap;
};

void io_bus_init(struct io_bus *bus, const char *name);
void io_bus_destroy(struct io_bus *bus);

/* Returns 0, or -EEXIST when the range overlaps one already registered. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn handler,
                    void *opaque);
int io_bus_unregister(struct io_bus *bus, uint64_t base);
/* Move the range registered at old_base; -EEXIST on overlap, -ENOENT if none. */
int io_bus_move(struct io_bus *bus, uint64_t old_base, uint64_t new_base);

/*
 * Dispatch one access. Returns false when nothing is registered there: reads
 * then see all ones (data filled with 0xff), writes are dropped.
 */
bool io_bus_access(struct io_bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
