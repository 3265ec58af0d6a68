/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Control of the VM's virtio-balloon (for the control socket). */
#ifndef HV_VMM_VIRTIO_BALLOON_H
#define HV_VMM_VIRTIO_BALLOON_H

#include <stdint.h>

struct vm;

/* Ask the guest to give back memory until it holds `bytes` less. -ENODEV: no balloon. */
int virtio_balloon_set_target(struct vm *vm, uint64_t bytes);
/* The bytes the guest says it has given back so far. */
int virtio_balloon_get_actual(struct vm *vm, uint64_t *bytes);

#endif
