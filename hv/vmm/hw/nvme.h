/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An NVMe controller (NVM Express base specification 1.4) with one namespace
 * on a disk image (docs/nvme.md): PCI function 01:08:02, its registers and
 * doorbells in a 64-bit BAR 0, MSI-X in BAR 4. `--disk PATH,bus=nvme`.
 */
#ifndef HV_VMM_HW_NVME_H
#define HV_VMM_HW_NVME_H

#include <stdbool.h>

struct vm;
struct vm_disk;
struct nvme;
struct pci_device;

/*
 * Open the disk, put the controller on the PCI bus and the VM's device list.
 * With `thread`, a device thread serves the queues (hv-vmm, unit tests);
 * without, nvme_run() does it on the caller's thread (the fuzzer). out (may
 * be NULL) gets the controller. 0 or -errno (logged).
 */
int nvme_create_dev(struct vm *vm, const struct vm_disk *disk, bool thread, struct nvme **out);

/* Without a thread: act on what the guest wrote (CC, doorbells) until nothing is left. */
void nvme_run(struct nvme *n);

/* Tests: the PCI function. */
struct pci_device *nvme_pci(struct nvme *n);

#endif
