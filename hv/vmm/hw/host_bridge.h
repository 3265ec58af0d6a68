/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PCI host bridge's registers as a device with reset and save/load (firmware VMs). */
#ifndef HV_VMM_HW_HOST_BRIDGE_H
#define HV_VMM_HW_HOST_BRIDGE_H

struct vm;

/* Put the bus's host bridge on the VM's device list as "host-bridge". 0 or -1. */
int host_bridge_attach(struct vm *vm);

#endif
