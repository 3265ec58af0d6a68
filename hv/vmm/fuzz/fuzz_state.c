// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the load side of save/restore for the platform devices
 * (hw/) and virtio-gpu's 2D state (virtio/gpu_cmd.c). A section comes from
 * a file and is input: whatever it holds, a load either refuses it with a
 * sentence or leaves a device that works.
 *
 * Input: byte 0 picks the device (serial, rtc, i8042, pm, gpu), the rest is
 * its section. Checked besides ASan/UBSan: a refusal says why; an accepted
 * section, saved and loaded into a fresh device and saved again, gives the
 * same bytes (the PM timer's count and clock aside); after a load the
 * device's ports answer.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "log.h"
#include "mem.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "virtio/fuzz/vmfuzz.h"
#include "virtio/gpu.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void vm_request(struct vm *vm, enum vm_request req)
{
    atomic_fetch_or(&vm->requests, (unsigned)req);
}

static const struct vm_config cfg = {.name = "fuzz", .console = "none"};
static struct guest_mem mem;

static void create(struct vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = &cfg;
    vm->vm_fd = vm->kvm_fd = vm->event_fd = -1;
    vm->irq.vm_fd = -1;
    pthread_mutex_init(&vm->irq.lock, NULL);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    if (pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) || serial8250_init(vm) || rtc_init(vm) ||
        i8042_init(vm) || pm_init(vm) || legacy_ports_init(vm))
        __builtin_trap();
}

static void destroy(struct vm *vm)
{
    serial8250_destroy(vm);
    free(vm->rtc);
    i8042_destroy(vm);
    free(vm->pm);
    pci_bus_destroy(vm->pci);
    io_bus_destroy(&vm->pio);
    io_bus_destroy(&vm->mmio);
}

struct target {
    int (*save)(struct vm *vm, struct state_out *out);
    int (*load)(struct vm *vm, struct state_in *in);
    size_t stable; /* bytes from the end that may change between saves */
    uint16_t port, nr_ports;
};

static const struct target targets[] = {
    {serial8250_save, serial8250_load, 0, 0x3f8, 8},
    {rtc_save, rtc_load, 0, 0x70, 2},
    {i8042_save, i8042_load, 0, 0x60, 5},
    {pm_save, pm_load, 12, PM_IO_BASE, PM_IO_LEN},
};

/* Load as vm_save.c does: the model's load, then every byte read; a refusal says why. */
static bool load_ok(int r, struct state_in *in)
{
    if (r < 0 && state_in_ok(in))
        __builtin_trap(); /* refused without a reason */
    if (r == 0 && state_in_end(in) < 0)
        return false;
    if (r < 0 && !in->why[0])
        __builtin_trap();
    return r == 0;
}

static void same_or_trap(const struct state_out *a, const struct state_out *b, size_t unstable)
{
    if (a->len != b->len || a->len < unstable || memcmp(a->buf, b->buf, a->len - unstable))
        __builtin_trap(); /* what was loaded is not what is saved */
}

static void fuzz_platform(const struct target *t, const uint8_t *p, size_t n)
{
    struct vm vm, vm2;
    struct state_in in;
    struct state_out a, b;
    state_out_init(&a);
    state_out_init(&b);
    create(&vm);
    state_in_init(&in, p, n);
    if (load_ok(t->load(&vm, &in), &in)) {
        if (t->save(&vm, &a) < 0)
            __builtin_trap();
        create(&vm2);
        state_in_init(&in, a.buf, a.len);
        if (!load_ok(t->load(&vm2, &in), &in) || t->save(&vm2, &b) < 0)
            __builtin_trap(); /* a device refuses its own state */
        same_or_trap(&a, &b, t->stable);
        destroy(&vm2);
        /* The guest goes on: every port of the device answers. */
        for (uint16_t i = 0; i < t->nr_ports; i++) {
            uint8_t v = 0;
            io_bus_access(&vm.pio, t->port + i, &v, 1, false);
        }
    }
    state_out_free(&a);
    state_out_free(&b);
    destroy(&vm);
}

static void fuzz_gpu(const uint8_t *p, size_t n)
{
    struct gpu_state g, g2;
    struct state_in in;
    struct state_out a, b;
    state_out_init(&a);
    state_out_init(&b);
    gpu_state_init(&g, "fuzz-gpu", &mem, 1280, 800);
    state_in_init(&in, p, n);
    int r = gpu_state_load(&g, &in);
    if (r < 0 && (g.nr_resources || g.host_bytes || g.scanout_fd >= 0))
        __builtin_trap(); /* a refused load leaves nothing behind */
    if (load_ok(r, &in)) {
        if (gpu_state_save(&g, &a) < 0)
            __builtin_trap();
        gpu_state_init(&g2, "fuzz-gpu", &mem, 1280, 800);
        state_in_init(&in, a.buf, a.len);
        if (!load_ok(gpu_state_load(&g2, &in), &in) || gpu_state_save(&g2, &b) < 0)
            __builtin_trap();
        same_or_trap(&a, &b, 0);
        if (g2.host_bytes != g.host_bytes || g.host_bytes > GPU_MAX_HOST_BYTES)
            __builtin_trap();
        gpu_state_reset(&g2);
    }
    gpu_state_reset(&g);
    if (g.host_bytes || g.nr_resources)
        __builtin_trap(); /* the memory cap's count went wrong */
    state_out_free(&a);
    state_out_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        hv_log_init("fuzz");
        hv_log_set_level(HV_LOG_ERROR);
        if (guest_mem_init(&mem, FZ_RAM) < 0)
            __builtin_trap();
        inited = true;
    }
    if (!size)
        return 0;
    unsigned which = data[0] % (ARRAY_SIZE(targets) + 1);
    if (which < ARRAY_SIZE(targets))
        fuzz_platform(&targets[which], data + 1, size - 1);
    else
        fuzz_gpu(data + 1, size - 1);
    return 0;
}
