/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Saving a paused VM to a file and restoring it in a new hv-vmm
 * (docs/save-format.md): the VM-wide chips and clock, each vCPU, each
 * device on the VM's list, and guest RAM.
 */
#ifndef HV_VMM_VM_SAVE_H
#define HV_VMM_VM_SAVE_H

#include <stddef.h>
#include <stdint.h>

struct vm;

struct vm_save_stats {
    uint64_t bytes; /* the file's size */
    uint64_t pages; /* RAM pages stored (the others were zero) */
};

/*
 * Write the VM to fd (an empty regular file) and fsync it. The VM must be
 * paused (vCPUs and devices). 0, or -1 with why set; the VM is unchanged
 * either way.
 */
int vm_save(struct vm *vm, int fd, struct vm_save_stats *stats, char *why, size_t whylen);

/*
 * Load a save file into a VM that vm_create() built with cfg->restore and
 * that has not run: everything is checked before the first byte reaches
 * the VM. On success the devices are resumed and vm_run() continues the
 * guest. 0, or -1 with why set (the VM must then not be run).
 */
int vm_restore(struct vm *vm, int fd, char *why, size_t whylen);

/* The VM's device layout as the save file's header holds it (malloc'd). */
char *vm_layout(struct vm *vm);

#endif
