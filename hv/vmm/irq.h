/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Interrupts into the guest through KVM's in-kernel irqchip: legacy lines
 * (IOAPIC pins) for the platform devices, and MSI routes fed by irqfds for
 * PCI devices. KVM_SET_GSI_ROUTING replaces the whole table, so the table is
 * kept here in full, the irqchip pins included.
 */
#ifndef HV_VMM_IRQ_H
#define HV_VMM_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IRQ_NR_LEGACY 24 /* IOAPIC pins; GSIs 0..23 */

struct kvm_irq_routing;

struct irq_router {
    int vm_fd;
    pthread_mutex_t lock;
    struct kvm_irq_routing *table;
    unsigned cap;
    uint32_t next_gsi; /* next free GSI for an MSI route */
};

/* Install the default pin routes (PIC + IOAPIC). vm_fd has an irqchip. */
int irq_router_init(struct irq_router *r, int vm_fd);
void irq_router_destroy(struct irq_router *r);

/* Raise or lower a legacy IOAPIC pin (edge: raise then lower). */
int irq_line(struct irq_router *r, uint32_t pin, bool level);
int irq_pulse(struct irq_router *r, uint32_t pin);

/* Allocate a GSI for an MSI route, initially disabled (address 0). */
int irq_msi_alloc(struct irq_router *r, uint32_t *gsi);
/* Point the GSI at an MSI address/data pair (the guest's MSI-X entry). */
int irq_msi_update(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data);

/* Connect an eventfd to a GSI: a write to efd injects the interrupt. */
int irq_irqfd_assign(struct irq_router *r, int efd, uint32_t gsi);
int irq_irqfd_deassign(struct irq_router *r, int efd, uint32_t gsi);

#endif
