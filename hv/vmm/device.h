/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device model (docs/device-model.md): every device a VM runs is a
 * struct device on the VM's list, in creation order, with one lifecycle.
 */
#ifndef HV_VMM_DEVICE_H
#define HV_VMM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

struct vm;
struct device;
struct aml;
struct state_in;
struct state_out;

/* Each operation is optional; the rules they keep are in docs/device-model.md. */
struct device_ops {
    void (*reset)(struct device *dev);   /* power-on state; vCPUs paused, device quiesced */
    void (*quiesce)(struct device *dev); /* no thread or worker touches guest memory after this */
    void (*resume)(struct device *dev);  /* undo quiesce */
    void (*destroy)(struct device *dev); /* vCPUs stopped, device quiesced */
    /*
     * The device's guest-visible state (state.h), never host resources.
     * save runs paused and quiesced; 0, or -1 after state_fail() says why
     * the device cannot be saved. load runs in a new process on a device
     * realized from the same command line, quiesced, with guest RAM already
     * loaded; it checks every value and returns 0 or -1 after
     * state_in_fail(). NULL save: the device has no state to keep (its
     * section is empty).
     */
    int (*save)(struct device *dev, struct state_out *out);
    int (*load)(struct device *dev, struct state_in *in);
    /*
     * The device's own part of the DSDT (x86/aml.h): a Scope or Device under
     * \_SB, or a Name at the root. x86/acpi.c calls it for every device on
     * the list, in creation order, each time it builds the tables. It reads
     * the device's configuration (and may read its registers, as the host
     * bridge does for the ECAM), never changes it. NULL: nothing to describe.
     */
    void (*aml)(struct device *dev, struct aml *dsdt);
};

struct device {
    const struct device_ops *ops;
    char id[32];  /* stable instance name: "virtio-blk0", "serial8250" */
    int pci_slot; /* 00:SS.0, or -1 when not on PCI */
    void *priv;   /* the model's own state */
    struct vm *vm;
    bool quiesced;
    struct device *next;
};

/* Put dev at the end of the VM's list (dev is owned by its model). */
void device_add(struct vm *vm, struct device *dev, const struct device_ops *ops, const char *id,
                int pci_slot, void *priv);

/* Every device, in creation order (destroy: in reverse). */
void devices_quiesce(struct vm *vm);
void devices_resume(struct vm *vm);
void devices_reset(struct vm *vm);
void devices_destroy(struct vm *vm);

struct device *device_find(struct vm *vm, const char *id);
unsigned devices_count(const struct vm *vm);

#endif
