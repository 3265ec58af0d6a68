/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One virtual machine: the KVM VM, its memory, buses, interrupts and vCPUs. */
#ifndef HV_VMM_VM_H
#define HV_VMM_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "mem.h"

struct pci_bus;

struct vm {
    int kvm_fd;
    int vm_fd;
    struct guest_mem mem;
    struct io_bus pio;
    struct io_bus mmio;
    struct pci_bus *pci;
    struct irq_router irq;
    /* The vCPU threads, the boot and the lifecycle fields live in vm.c. */
};

#endif
