/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A VM without KVM for the device unit tests: buses, the PCI host, the
 * platform devices (and, when asked, the host bridge first, as vm.c has it);
 * interrupts go nowhere, the devices' own line state still tells.
 */
#ifndef HV_VMM_TESTS_FAKE_VM_H
#define HV_VMM_TESTS_FAKE_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "device.h"
#include "devices.h"
#include "hw/host_bridge.h"
#include "pci.h"
#include "vm.h"

static inline void fake_vm_init(struct vm *vm, const struct vm_config *cfg, bool host_bridge)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = cfg;
    vm->vm_fd = vm->kvm_fd = vm->event_fd = -1;
    vm->irq.vm_fd = -1;
    pthread_mutex_init(&vm->irq.lock, NULL);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    CHECK(pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) == 0);
    if (host_bridge)
        CHECK(host_bridge_attach(vm) == 0);
    CHECK(platform_devices_init(vm) == 0);
}

/* What fake_vm_init() built, given back (the sanitizer build checks for leaks). */
static inline void fake_vm_drop(struct vm *vm)
{
    devices_destroy(vm);
    free(vm->platform);
    vm->platform = NULL;
    pci_bus_destroy(vm->pci);
    io_bus_destroy(&vm->pio);
    io_bus_destroy(&vm->mmio);
}

#endif
