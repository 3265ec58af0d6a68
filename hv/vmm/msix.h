/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * MSI-X for our emulated PCI functions: the capability, and the vector table
 * and PBA in a BAR of their own. Each vector is an eventfd. While the vector
 * is live (MSI-X enabled, function and vector unmasked) the eventfd is bound
 * to a KVM MSI route with an irqfd, so a write to it (by a device thread or by
 * a vhost worker in the kernel) interrupts the guest without a trip through
 * hv-vmm. While masked, the irqfd is detached and a write just leaves the
 * eventfd readable: that is the pending bit, delivered by KVM as soon as the
 * irqfd is attached again.
 */
#ifndef HV_VMM_MSIX_H
#define HV_VMM_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define MSIX_MAX_VECTORS 128
#define MSIX_BAR_SIZE    4096
#define MSIX_TABLE_OFF   0x000 /* 16 bytes per vector */
#define MSIX_PBA_OFF     0x800

struct irq_router;
struct state_in;
struct state_out;

struct msix_vector {
    uint8_t entry[16]; /* addr lo, addr hi, data, vector control */
    uint32_t gsi;      /* UINT32_MAX until first used */
    int efd;
    bool live; /* irqfd attached */
    uint64_t route_addr;
    uint32_t route_data;
};

struct msix {
    struct pci_device *dev;
    struct irq_router *irq; /* NULL in unit tests: no KVM calls */
    pthread_mutex_t lock;
    unsigned nr;
    uint8_t cap; /* config offset of the capability */
    bool enabled, fmask;
    bool logged_error;
    struct msix_vector *v;
};

/*
 * Add the capability to dev and claim BAR `bar` for the table (before
 * pci_register). Returns 0 or -errno.
 */
int msix_init(struct msix *m, struct pci_device *dev, struct irq_router *irq, unsigned nr,
              unsigned bar);
/*
 * Only the vectors (eventfds, routes) of a table that lives elsewhere: a
 * passed-through device's own capability at m->cap (set by the caller) and
 * table in its BAR (vfio/). Returns 0 or -errno.
 */
int msix_init_vectors(struct msix *m, struct pci_device *dev, struct irq_router *irq, unsigned nr);
void msix_destroy(struct msix *m);
/* Power-on state: disabled, every vector masked and cleared, nothing pending. */
void msix_reset(struct msix *m);

/* The device's config_written hook forwards here (enable, function mask). */
void msix_config_written(struct msix *m, uint32_t off, uint32_t len);

bool msix_enabled(struct msix *m);
/* Signal vector vec. Returns false when MSI-X is off or vec is out of range. */
bool msix_notify(struct msix *m, unsigned vec);
/* The eventfd of vector vec (for vhost's call fd), -1 if out of range. */
int msix_vector_fd(struct msix *m, unsigned vec);

/*
 * The table, the pending bits and the enable / function-mask bits (state.h).
 * Load runs after pci_device_load() (enable and function mask come from
 * config space; the saved ones must agree), rewrites the table, re-routes
 * each live vector's irqfd and signals the eventfd of each pending vector so
 * that it is delivered once the guest unmasks it. Returns 0, or -1 after
 * state_fail() / state_in_fail().
 */
int msix_save(struct msix *m, struct state_out *out);
int msix_load(struct msix *m, struct state_in *in);

/* The BAR handler (table and PBA). */
void msix_bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

#endif
