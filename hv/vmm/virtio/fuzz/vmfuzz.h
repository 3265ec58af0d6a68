/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the VM-level fuzz targets share: a struct vm without KVM (guest RAM,
 * buses, PCI bus, as tests/test_transport.c builds it), a reader of the
 * fuzzer's bytes, a guest driver that runs a list of operations decoded from
 * them against the virtio devices on the bus, a "device thread" that the
 * target runs by hand so that each input plays out the same way every time,
 * and a count of the log lines the guest caused.
 */
#ifndef HV_VMM_VIRTIO_FUZZ_VMFUZZ_H
#define HV_VMM_VIRTIO_FUZZ_VMFUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../vm.h"
#include "../virtio.h"

/* The fuzzer's bytes, read front to back; past the end everything reads 0. */
struct fz {
    const uint8_t *p;
    size_t n;
};

uint8_t fz_u8(struct fz *f);
uint16_t fz_u16(struct fz *f);
uint32_t fz_u32(struct fz *f);
uint64_t fz_u64(struct fz *f);
/* 1, 2, 4 or 8 from the low bits of a byte. */
unsigned fz_width(uint8_t b);

#define FZ_RAM      (4 * MiB)
#define FZ_MAX_DEVS 12

/* Guest RAM, pio and mmio buses, the PCI bus; no KVM (vm_fd -1). Traps on failure. */
void fz_vm_init(struct vm *vm);

/*
 * Stop every device thread: from now on queue kicks and the devices' fds are
 * served only by fz_pump(), on the fuzzer's thread.
 */
void fz_vm_freeze(struct vm *vm);
/* Back to power-on between inputs: a reboot's device reset, RAM zeroed. */
void fz_vm_restart(struct vm *vm);

/* The virtio devices on the VM's list, in creation order. */
unsigned fz_virtio_devs(struct vm *vm, struct virtio_dev **out, unsigned max);
/* Whether all of guest RAM is zero (after a VM reset, no device may have written it). */
bool fz_ram_is_zero(const struct vm *vm);

/* Serve what is pending on vd as its thread would: kicks, then readable fds. */
void fz_pump(struct virtio_dev *vd);

/*
 * A target's own operation (op 14): host-side events of one device (a packet
 * arrives, a key is pressed...). dev is the device the operation picked.
 */
typedef void (*fz_host_fn)(struct vm *vm, struct virtio_dev *vd, struct fz *f);

/*
 * Decode and run operations until the input ends (at most max_ops), each a
 * guest access or a driver step; then serve everything left. Returns the
 * number of operations run.
 */
unsigned fz_run_driver(struct vm *vm, struct fz *f, unsigned max_ops, fz_host_fn host);

/*
 * Log lines: while capturing, hv's log (stderr) is counted, not printed
 * (FUZZ_LOGS=1 prints it too). fz_log_end() returns the lines since fz_log_begin().
 */
void fz_log_begin(void);
unsigned fz_log_end(void);

/*
 * Saved state (state.h): the device name's, quiesced first (a refusal traps); and loading it into
 * the same device of another VM, which must then save the same bytes. A load may refuse only
 * BARs the guest put over one another (pci.c cannot place those); any other refusal traps.
 */
struct state_out;
void fz_save_device(struct vm *vm, const char *name, struct state_out *o);
void fz_load_compare(struct vm *vm2, const char *name, const struct state_out *o);

/* An access on a bus at an absolute address. */
uint64_t fz_bus_read(struct io_bus *bus, uint64_t addr, unsigned len);
void fz_bus_write(struct io_bus *bus, uint64_t addr, uint64_t v, unsigned len);

#endif
