// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: port I/O exits into the platform devices (hw/): the
 * 8250 UART at 0x3F8, the i8042 at 0x60/0x64, the RTC/CMOS at 0x70/0x71,
 * the ACPI PM block at 0x600 (PM1 event and control, PM timer), 0xCF9
 * reset control through the PCI host bridge's CF8-CFF, and the POST ports,
 * on a VM without KVM. Each input gets freshly created devices.
 *
 * Input: a list of exits. Byte 0 of each: bit 0 out/in, bits 1-2 width
 * (1, 2, 4; 3 = a rep string exit of 1-16 accesses), bits 3-5 the port
 * group, then the port within the group, then the value of an out.
 *
 * Checked besides ASan/UBSan: at most one log line per exit, and no request
 * to the main loop but power-off and reset.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "log.h"
#include "pci.h"
#include "util.h"
#include "virtio/fuzz/vmfuzz.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* vm.c is not linked: requests from the devices are only recorded. */
void vm_request(struct vm *vm, enum vm_request req)
{
    atomic_fetch_or(&vm->requests, (unsigned)req);
}

static struct vm vm;
static const struct vm_config cfg = {.name = "fuzz", .console = "none"};

static void create(void)
{
    memset(&vm, 0, sizeof(vm));
    vm.cfg = &cfg;
    vm.vm_fd = vm.kvm_fd = vm.event_fd = -1;
    vm.irq.vm_fd = -1; /* irq_line() fails with EBADF: no KVM, no interrupts */
    pthread_mutex_init(&vm.irq.lock, NULL);
    io_bus_init(&vm.pio, "pio");
    io_bus_init(&vm.mmio, "mmio");
    if (pci_bus_init(&vm.pci, &vm.pio, &vm.mmio) || serial8250_init(&vm) || rtc_init(&vm) ||
        i8042_init(&vm) || pm_init(&vm) || legacy_ports_init(&vm))
        __builtin_trap();
}

/* The devices without a destroy function: their state is the opaque of their ports. */
static void *opaque_at(uint16_t port)
{
    for (unsigned i = 0; i < vm.pio.nr; i++)
        if (vm.pio.ranges[i].base == port)
            return vm.pio.ranges[i].opaque;
    return NULL;
}

static void destroy(void)
{
    serial8250_destroy(&vm);
    free(opaque_at(0x70)); /* rtc */
    i8042_destroy(&vm);
    free(vm.pm);
    pci_bus_destroy(vm.pci);
    io_bus_destroy(&vm.pio);
    io_bus_destroy(&vm.mmio);
}

/* Port groups: the devices' own ranges, a little beyond each, and anything. */
static uint16_t pick_port(unsigned group, struct fz *f)
{
    uint8_t b = fz_u8(f);
    switch (group) {
    case 0:
        return 0x3f8 + b % 9;
    case 1:
        return b & 1 ? 0x64 : 0x60;
    case 2:
        return 0x70 + b % 3;
    case 3:
        return PM_IO_BASE + b % (PM_IO_LEN + 4);
    case 4:
        return 0xcf8 + b % 8;
    case 5:
        return b & 1 ? 0x80 : 0xed;
    case 6:
        return (uint16_t)(b | fz_u8(f) << 8);
    default:
        return 0x3f8 + (b & 7); /* the UART again: it has the most state */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        hv_log_init("fuzz");
        inited = true;
    }
    create();
    struct fz f = {data, size};
    unsigned exits = 0;
    while (f.n && exits < 4096) {
        uint8_t b = fz_u8(&f);
        bool out = b & 1;
        unsigned w = b >> 1 & 3, len = w == 3 ? 1 : 1u << w;
        unsigned count = w == 3 ? fz_u8(&f) % 16 + 1 : 1;
        uint16_t port = pick_port(b >> 3 & 7, &f);
        fz_log_begin();
        for (unsigned i = 0; i < count; i++) {
            uint8_t buf[4] = {0};
            if (out) {
                uint32_t v = count > 1 ? fz_u8(&f) : fz_u32(&f);
                memcpy(buf, &v, 4);
            }
            io_bus_access(&vm.pio, port, buf, len, out);
        }
        exits++;
        if (fz_log_end() > count)
            __builtin_trap(); /* more than one log line for one access */
    }
    unsigned req = atomic_load(&vm.requests);
    if (req & ~(unsigned)(VM_REQ_POWEROFF | VM_REQ_RESET))
        __builtin_trap(); /* the guest cannot claim a crash or a triple fault through a port */
    destroy();
    return 0;
}
