/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An ICH9-style AHCI controller (AHCI 1.3.1, docs/ahci.md): PCI function
 * 01:06:01, its registers (ABAR) in BAR 5, one MSI-X vector in BAR 4, six
 * ports. `--disk PATH,bus=ahci` puts a SATA disk on the next free port,
 * `--cdrom PATH` an ATAPI CD/DVD-ROM drive with an ISO image, read-only.
 */
#ifndef HV_VMM_HW_AHCI_H
#define HV_VMM_HW_AHCI_H

#include <stdbool.h>

struct vm;
struct vm_disk;
struct ahci;
struct pci_device;

#define AHCI_PORTS 6

/*
 * Open the images (disks[0..nr) as SATA disks on ports 0.., then the CD-ROM
 * if cdrom is not NULL), put the controller on the PCI bus and the VM's
 * device list. out (may be NULL) gets the controller. 0 or -errno (logged).
 */
int ahci_create_dev(struct vm *vm, const struct vm_disk *const *disks, unsigned nr,
                    const struct vm_disk *cdrom, struct ahci **out);

/* Tests: the PCI function. */
struct pci_device *ahci_pci(struct ahci *h);

#endif
