/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"

/* KVM_SET_GSI_ROUTING replaces the whole table: push ours. Caller holds the lock. */
static int push_table(struct irq_router *r)
{
    if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) < 0) {
        int err = errno;
        log_err("KVM_SET_GSI_ROUTING (%u entries): %s", r->table->nr, strerror(err));
        return -err;
    }
    return 0;
}

static int grow(struct irq_router *r)
{
    unsigned cap = r->cap ? r->cap * 2 : 64;
    struct kvm_irq_routing *t =
        realloc(r->table, sizeof(*t) + cap * sizeof(struct kvm_irq_routing_entry));
    if (!t)
        return -ENOMEM;
    if (!r->table)
        t->nr = t->flags = 0;
    r->table = t;
    r->cap = cap;
    return 0;
}

static struct kvm_irq_routing_entry *add_entry(struct irq_router *r)
{
    if (r->table->nr == r->cap && grow(r) < 0)
        return NULL;
    struct kvm_irq_routing_entry *e = &r->table->entries[r->table->nr++];
    memset(e, 0, sizeof(*e));
    return e;
}

static void add_pin(struct irq_router *r, uint32_t gsi, uint32_t chip, uint32_t pin)
{
    struct kvm_irq_routing_entry *e = add_entry(r);
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_IRQCHIP;
    e->u.irqchip.irqchip = chip;
    e->u.irqchip.pin = pin;
}

int irq_router_init(struct irq_router *r, int vm_fd)
{
    memset(r, 0, sizeof(*r));
    r->vm_fd = vm_fd;
    pthread_mutex_init(&r->lock, NULL);
    if (grow(r) < 0)
        return -ENOMEM;
    /*
     * The pin routes, kept here or our first MSI route would wipe them:
     * ISA IRQs 0-15 on the PICs (but 2, the cascade) and the IOAPIC, GSIs
     * 16-23 on the IOAPIC only. The PIT raises GSI 0, which goes to IOAPIC
     * pin 2 as the MADT's interrupt source override IRQ0->GSI2 tells Linux.
     */
    for (uint32_t gsi = 0; gsi < 16; gsi++) {
        if (gsi != 2)
            add_pin(r, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
        add_pin(r, gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi);
    }
    for (uint32_t gsi = 16; gsi < IRQ_NR_LEGACY; gsi++)
        add_pin(r, gsi, KVM_IRQCHIP_IOAPIC, gsi);
    r->next_gsi = IRQ_NR_LEGACY;
    pthread_mutex_lock(&r->lock);
    int ret = push_table(r);
    pthread_mutex_unlock(&r->lock);
    return ret;
}

void irq_router_destroy(struct irq_router *r)
{
    free(r->table);
    r->table = NULL;
    r->cap = 0;
    pthread_mutex_destroy(&r->lock);
}

int irq_line(struct irq_router *r, uint32_t pin, bool level)
{
    struct kvm_irq_level l = {.irq = pin, .level = level};

    if (pin >= IRQ_NR_LEGACY)
        return -EINVAL;
    if (ioctl(r->vm_fd, KVM_IRQ_LINE, &l) < 0)
        return -errno;
    return 0;
}

int irq_pulse(struct irq_router *r, uint32_t pin)
{
    int ret = irq_line(r, pin, true);
    if (ret == 0)
        ret = irq_line(r, pin, false);
    return ret;
}

static struct kvm_irq_routing_entry *find_msi(struct irq_router *r, uint32_t gsi)
{
    for (unsigned i = 0; i < r->table->nr; i++) {
        struct kvm_irq_routing_entry *e = &r->table->entries[i];
        if (e->gsi == gsi && e->type == KVM_IRQ_ROUTING_MSI)
            return e;
    }
    return NULL;
}

int irq_msi_alloc(struct irq_router *r, uint32_t *gsi)
{
    int ret = 0;

    pthread_mutex_lock(&r->lock);
    struct kvm_irq_routing_entry *e = add_entry(r);
    if (!e) {
        ret = -ENOMEM;
    } else {
        /* Address 0 data 0: delivered nowhere useful until the guest programs it. */
        e->gsi = r->next_gsi++;
        e->type = KVM_IRQ_ROUTING_MSI;
        *gsi = e->gsi;
        ret = push_table(r);
        if (ret < 0) {
            r->table->nr--;
            r->next_gsi--;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

int irq_msi_update(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
    int ret = -ENOENT;

    pthread_mutex_lock(&r->lock);
    struct kvm_irq_routing_entry *e = find_msi(r, gsi);
    if (e) {
        if (e->u.msi.address_lo == (uint32_t)addr &&
            e->u.msi.address_hi == (uint32_t)(addr >> 32) && e->u.msi.data == data) {
            ret = 0; /* unchanged: spare the ioctl, the guest rewrites entries often */
        } else {
            e->u.msi.address_lo = (uint32_t)addr;
            e->u.msi.address_hi = (uint32_t)(addr >> 32);
            e->u.msi.data = data;
            ret = push_table(r);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

static int irqfd(struct irq_router *r, int efd, uint32_t gsi, uint32_t flags)
{
    struct kvm_irqfd req = {.fd = (uint32_t)efd, .gsi = gsi, .flags = flags};

    if (ioctl(r->vm_fd, KVM_IRQFD, &req) < 0) {
        int err = errno;
        log_err("KVM_IRQFD %s for GSI %u: %s", flags ? "deassign" : "assign", gsi, strerror(err));
        return -err;
    }
    return 0;
}

int irq_irqfd_assign(struct irq_router *r, int efd, uint32_t gsi)
{
    return irqfd(r, efd, gsi, 0);
}

int irq_irqfd_deassign(struct irq_router *r, int efd, uint32_t gsi)
{
    return irqfd(r, efd, gsi, KVM_IRQFD_FLAG_DEASSIGN);
}
