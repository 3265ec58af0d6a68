/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Control of the VM's virtio-balloon (for the control socket; docs/memory.md). */
#ifndef HV_VMM_VIRTIO_BALLOON_H
#define HV_VMM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

struct balloon_info {
    bool present;    /* the VM has a balloon (not with --pci) */
    bool driver;     /* the guest's driver runs it (DRIVER_OK) */
    uint64_t memory; /* guest RAM, bytes */
    uint64_t target; /* what the guest is asked to keep: memory - num_pages */
    uint64_t actual; /* what it keeps by its driver's count: memory - actual */
};

/*
 * Ask the guest to keep `target` bytes of its RAM (rounded down to 4 KiB):
 * num_pages = (memory - target) / 4 KiB, with a config interrupt. Refused,
 * with a sentence in err, below hv_memory_floor() or above the VM's memory,
 * or without a balloon. 0 or -1.
 */
int virtio_balloon_request(struct vm *vm, uint64_t target, char *err, size_t errlen);
/* Where the balloon is; present false without one. */
void virtio_balloon_info(struct vm *vm, struct balloon_info *info);

/* Lower level, for the fuzzers: put `bytes` in the balloon / read the guest's actual. */
int virtio_balloon_set_target(struct vm *vm, uint64_t bytes);
int virtio_balloon_get_actual(struct vm *vm, uint64_t *bytes);

#endif
