// SPDX-License-Identifier: GPL-2.0-or-later
/* The VM's list of devices and the lifecycle calls that walk it. */
#include "device.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "vm.h"

void device_add(struct vm *vm, struct device *dev, const struct device_ops *ops, const char *id,
                int pci_slot, void *priv)
{
    dev->ops = ops;
    snprintf(dev->id, sizeof(dev->id), "%s", id);
    dev->pci_slot = pci_slot;
    dev->priv = priv;
    dev->vm = vm;
    dev->quiesced = false;
    dev->next = NULL;
    struct device **p = &vm->devices;
    while (*p)
        p = &(*p)->next;
    *p = dev;
}

void devices_quiesce(struct vm *vm)
{
    for (struct device *d = vm->devices; d; d = d->next) {
        if (d->quiesced)
            continue;
        if (d->ops->quiesce)
            d->ops->quiesce(d);
        d->quiesced = true;
    }
}

void devices_resume(struct vm *vm)
{
    for (struct device *d = vm->devices; d; d = d->next) {
        if (!d->quiesced)
            continue;
        if (d->ops->resume)
            d->ops->resume(d);
        d->quiesced = false;
    }
}

void devices_reset(struct vm *vm)
{
    for (struct device *d = vm->devices; d; d = d->next) {
        if (!d->ops->reset)
            continue;
        log_debug("%s: reset", d->id);
        d->ops->reset(d);
    }
}

/* Reverse order: a device may use one created before it (the display uses the input devices). */
static void destroy_from(struct device *d)
{
    if (!d)
        return;
    destroy_from(d->next);
    if (d->ops->destroy)
        d->ops->destroy(d);
}

void devices_destroy(struct vm *vm)
{
    devices_quiesce(vm);
    struct device *list = vm->devices;
    vm->devices = NULL;
    destroy_from(list);
}

struct device *device_find(struct vm *vm, const char *id)
{
    for (struct device *d = vm->devices; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return d;
    return NULL;
}

unsigned devices_count(const struct vm *vm)
{
    unsigned n = 0;
    for (const struct device *d = vm->devices; d; d = d->next)
        n++;
    return n;
}
