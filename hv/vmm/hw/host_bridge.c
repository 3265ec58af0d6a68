/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host bridge at 00:00.0 as a device on the VM's list, for VMs that boot
 * firmware: the firmware programs its PCIEXBAR and PAM registers (pci.c), so
 * a reboot must put them back and a save must keep them.
 */
#include "host_bridge.h"

#include <stdlib.h>

#include "device.h"
#include "pci.h"
#include "vm.h"

struct host_bridge {
    struct device dev;
    struct pci_device *pci;
};

static struct pci_device *of(struct device *d)
{
    return ((struct host_bridge *)d->priv)->pci;
}

static void hb_reset(struct device *d)
{
    pci_device_reset(of(d));
}

static int hb_save(struct device *d, struct state_out *out)
{
    return pci_device_save(of(d), out);
}

static int hb_load(struct device *d, struct state_in *in)
{
    return pci_device_load(of(d), in);
}

static void hb_destroy(struct device *d)
{
    free(d->priv);
}

static const struct device_ops host_bridge_ops = {
    .reset = hb_reset,
    .destroy = hb_destroy,
    .save = hb_save,
    .load = hb_load,
};

int host_bridge_attach(struct vm *vm)
{
    struct host_bridge *hb = calloc(1, sizeof(*hb));
    if (!hb)
        return -1;
    hb->pci = pci_host_bridge(vm->pci);
    device_add(vm, &hb->dev, &host_bridge_ops, "host-bridge", 0, hb);
    return 0;
}
