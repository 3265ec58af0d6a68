// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the 8042 controller with its PS/2 keyboard and mouse
 * (hw/i8042.c, hw/ps2_keymap.c) as a hostile guest drives ports 0x60/0x64,
 * mixed with the input hv-switch feeds (keys, pointer, wheel) and with
 * save/load into a fresh device, on a VM without KVM.
 *
 * Input: a list of operations, byte 0 of each the operation (low 3 bits):
 * 0 write 0x60 (next byte), 1 write 0x64 (next byte), 2 read 0x60, 3 read
 * 0x64, 4 a key (u16 code, byte pressed), 5 the pointer (u16 x, u16 y, byte
 * buttons, bit 0 of the next byte: report), 6 the wheel (signed byte),
 * 7 save, load into a fresh VM, and load back.
 *
 * Checked besides ASan/UBSan: AUXB is never set without OBF; the bytes
 * waiting never exceed what the queues hold; a device loads its own save
 * and saves it back byte for byte; the only request to the main loop is a
 * reset; at most one log line per operation.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "hw/i8042.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "virtio/fuzz/vmfuzz.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* vm.c is not linked: requests are only recorded. */
void vm_request(struct vm *vm, enum vm_request req)
{
    atomic_fetch_or(&vm->requests, (unsigned)req);
}

static const struct vm_config cfg = {.name = "fuzz", .console = "none"};

static void create(struct vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = &cfg;
    vm->vm_fd = vm->kvm_fd = vm->event_fd = -1;
    vm->irq.vm_fd = -1; /* irq_line() fails with EBADF: no KVM, no interrupts */
    pthread_mutex_init(&vm->irq.lock, NULL);
    io_bus_init(&vm->pio, "pio");
    if (i8042_init(vm))
        __builtin_trap();
}

static void destroy(struct vm *vm)
{
    i8042_destroy(vm);
    io_bus_destroy(&vm->pio);
}

static uint8_t in8(struct vm *vm, uint16_t port)
{
    uint8_t v = 0;
    io_bus_access(&vm->pio, port, &v, 1, false);
    return v;
}

static void save_or_trap(struct vm *vm, struct state_out *out)
{
    state_out_clear(out);
    if (i8042_save(vm, out) < 0)
        __builtin_trap();
}

/* Save, load into a new VM, which must save the same; then load it back into this one. */
static void round_trip(struct vm *vm)
{
    struct state_out a, b;
    struct state_in in;
    struct vm *n = malloc(sizeof(*n));
    if (!n)
        return;
    state_out_init(&a);
    state_out_init(&b);
    save_or_trap(vm, &a);
    create(n);
    state_in_init(&in, a.buf, a.len);
    if (i8042_load(n, &in) < 0 || state_in_end(&in) < 0)
        __builtin_trap(); /* the device refuses its own state */
    save_or_trap(n, &b);
    if (a.len != b.len || memcmp(a.buf, b.buf, a.len))
        __builtin_trap();
    destroy(n);
    free(n);
    state_in_init(&in, a.buf, a.len);
    if (i8042_load(vm, &in) < 0 || state_in_end(&in) < 0)
        __builtin_trap();
    state_out_free(&a);
    state_out_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        hv_log_init("fuzz");
        inited = true;
    }
    struct vm vm;
    create(&vm);
    struct fz f = {data, size};
    unsigned ops = 0;
    while (f.n && ops++ < 4096) {
        uint8_t op = fz_u8(&f), v;
        fz_log_begin();
        switch (op & 7) {
        case 0:
        case 1:
            v = fz_u8(&f);
            io_bus_access(&vm.pio, op & 1 ? 0x64 : 0x60, &v, 1, true);
            break;
        case 2:
            in8(&vm, 0x60);
            break;
        case 3:
            v = in8(&vm, 0x64);
            if ((v & 0x20) && !(v & 0x01))
                __builtin_trap(); /* AUXB without a byte */
            break;
        case 4: {
            uint16_t code = fz_u16(&f);
            i8042_key(vm.i8042, code, fz_u8(&f) & 1);
            break;
        }
        case 5: {
            uint16_t x = fz_u16(&f), y = fz_u16(&f);
            uint8_t b = fz_u8(&f);
            i8042_pointer(vm.i8042, x, y, b, 1280, 800, fz_u8(&f) & 1);
            break;
        }
        case 6:
            i8042_wheel(vm.i8042, 0, (int8_t)fz_u8(&f));
            break;
        default:
            round_trip(&vm);
            break;
        }
        if (fz_log_end() > 1)
            __builtin_trap();
    }
    /* What waits is bounded: the buffer, the controller's answers, both queues. */
    unsigned waiting = 0;
    while ((in8(&vm, 0x64) & 1) && waiting < 1000) {
        in8(&vm, 0x60);
        waiting++;
    }
    if (waiting > 1 + 4 + 16 + 48)
        __builtin_trap();
    if (atomic_load(&vm.requests) & ~(unsigned)VM_REQ_RESET)
        __builtin_trap();
    destroy(&vm);
    return 0;
}
