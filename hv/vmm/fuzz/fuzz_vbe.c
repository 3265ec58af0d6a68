// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: a hostile driver of the Bochs VBE display (hw/bochs_vbe.c,
 * hw/bochs_vbe_regs.c) on a VM without KVM: DISPI index/data through ports
 * 0x1CE/0x1CF and through BAR 2 (with the EDID, the VGA ports and the
 * size/byte order registers), writes to the framebuffer (BAR 0, trapped),
 * PCI config writes (moving and disabling the BARs), damage polls, resets
 * and save/load round trips. Each input starts from a fresh device.
 *
 * Input: a list of operations, byte 0 of each picking one (low 3 bits) and a
 * width, then its operands.
 *
 * Checked besides ASan/UBSan: every surface handed to the sink lies inside
 * its memfd (video memory, or the converted copy of a 15/16/24-bit or
 * unaligned picture), is page-aligned, has a stride of at least width*4 and a
 * size hv-switch accepts; every damage lies inside the surface then shown
 * and comes only while one is; a saved state loads back into a fresh device
 * and shows the same surface.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"
#include "hw/bochs_vbe.h"
#include "hw/bochs_vbe_regs.h"
#include "le.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "virtio/fuzz/vmfuzz.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct shown {
    bool on;
    uint64_t offset;
    uint32_t w, h, stride;
};

static void on_scanout(void *ctx, int fd, uint64_t offset, uint32_t w, uint32_t h, uint32_t stride)
{
    struct shown *s = ctx;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0)
        __builtin_trap();
    if (w == 0 || h == 0 || w > 8192 || h > 8192 || stride % 4 || stride < (uint64_t)w * 4 ||
        offset % 4096)
        __builtin_trap();
    if (offset + (uint64_t)stride * (h - 1) + (uint64_t)w * 4 > (uint64_t)st.st_size)
        __builtin_trap();
    *s = (struct shown){true, offset, w, h, stride};
}

static void on_damage(void *ctx, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct shown *s = ctx;
    if (!s->on || w == 0 || h == 0 || (uint64_t)x + w > s->w || (uint64_t)y + h > s->h)
        __builtin_trap();
}

static void on_blank(void *ctx)
{
    ((struct shown *)ctx)->on = false;
}

static void make(struct vm *vm, struct shown *s, struct bochs_vbe **v)
{
    fz_vm_init(vm);
    struct vbe_sink sink = {s, on_scanout, on_damage, on_blank};
    if (bochs_vbe_create(vm, 1280, 800, &sink, v) < 0)
        __builtin_trap();
}

static void drop(struct vm *vm, struct bochs_vbe *v)
{
    devices_destroy(vm);
    pci_bus_destroy(vm->pci);
    io_bus_destroy(&vm->pio);
    io_bus_destroy(&vm->mmio);
    guest_mem_destroy(&vm->mem);
    free(v);
}

static void cfg_write(struct vm *vm, unsigned off, uint32_t v)
{
    fz_bus_write(&vm->pio, 0xcf8, 0x80000000u | 1u << 11 | (off & 0xfc), 4);
    fz_bus_write(&vm->pio, 0xcfc, v, 4);
}

static uint64_t bar(struct vm *vm, unsigned n)
{
    uint32_t a = 0x80000000u | 1u << 11 | (0x10 + 4 * n), v = 0;
    io_bus_access(&vm->pio, 0xcf8, (uint8_t *)&a, 4, true);
    io_bus_access(&vm->pio, 0xcfc, (uint8_t *)&v, 4, false);
    return v & ~0xfu;
}

/*
 * A BAR the guest enabled but put over the other one is not mapped; pci.c's
 * load maps BARs in their order, so it may then refuse the state (a limit of
 * pci_device_load, not of this device).
 */
static bool bars_overlap(struct bochs_vbe *v)
{
    struct pci_device *p = bochs_vbe_pci(v);
    for (unsigned i = 0; i < PCI_NR_BARS; i++)
        if (p->bar_def[i].size && !p->bar_mapped[i] && (p->cfg[4] & 2) &&
            (le32_get(p->cfg + 0x10 + 4 * i) & ~0xfu))
            return true;
    return false;
}

/* Save, load into a fresh device: the same surface (or blank) comes back. */
static void round_trip(struct vm *vm, struct bochs_vbe *v, const struct shown *s)
{
    struct device *d = device_find(vm, "bochs-vbe");
    struct state_out o;
    state_out_init(&o);
    devices_quiesce(vm);
    if (d->ops->save(d, &o) < 0)
        __builtin_trap();
    devices_resume(vm);
    struct vm vm2;
    struct shown s2 = {0};
    struct bochs_vbe *v2;
    make(&vm2, &s2, &v2);
    struct state_in in;
    state_in_init(&in, o.buf, o.len);
    struct device *d2 = device_find(&vm2, "bochs-vbe");
    if (d2->ops->load(d2, &in) < 0 || state_in_end(&in) < 0) {
        if (!bars_overlap(v) || !strstr(in.why, "PCI BAR"))
            __builtin_trap();
    } else if (s2.on != s->on || (s->on && (s2.offset != s->offset || s2.w != s->w ||
                                            s2.h != s->h || s2.stride != s->stride)))
        __builtin_trap();
    drop(&vm2, v2);
    state_out_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        if (!getenv("FUZZ_LOGS"))
            hv_log_set_level(HV_LOG_ERROR);
    }
    struct vm vm;
    struct shown s = {0};
    struct bochs_vbe *v;
    make(&vm, &s, &v);
    cfg_write(&vm, 0x04, 3); /* memory and I/O decode on */
    struct fz f = {data, size};
    for (unsigned ops = 0; f.n && ops < 512; ops++) {
        uint8_t op = fz_u8(&f);
        unsigned len = fz_width(op >> 3);
        switch (op & 7) {
        case 0: /* DISPI through the ports */
            fz_bus_write(&vm.pio, VBE_PORT_INDEX, fz_u8(&f) % (VBE_NR_REGS + 2), 2);
            fz_bus_write(&vm.pio, VBE_PORT_DATA, fz_u16(&f), 2);
            break;
        case 1: { /* any port access near them */
            uint16_t port = (uint16_t)(VBE_PORT_INDEX - 1 + fz_u8(&f) % 5);
            if (op & 0x80)
                (void)fz_bus_read(&vm.pio, port, len);
            else
                fz_bus_write(&vm.pio, port, fz_u64(&f), len);
            break;
        }
        case 2: { /* BAR 2 */
            uint64_t off = fz_u16(&f) % (VBE_MMIO_SIZE + 8);
            if (op & 0x80)
                (void)fz_bus_read(&vm.mmio, bar(&vm, 2) + off, len);
            else
                fz_bus_write(&vm.mmio, bar(&vm, 2) + off, fz_u64(&f), len);
            break;
        }
        case 3: /* a DISPI register through BAR 2 */
            fz_bus_write(&vm.mmio, bar(&vm, 2) + VBE_MMIO_DISPI + 2 * (fz_u8(&f) % VBE_NR_REGS),
                         fz_u16(&f), 2);
            break;
        case 4: /* the framebuffer */
            fz_bus_write(&vm.mmio, bar(&vm, 0) + fz_u32(&f) % VBE_VRAM_SIZE, fz_u64(&f), len);
            break;
        case 5: /* PCI config: command, BAR 0, BAR 2 */
            cfg_write(&vm, (unsigned[]){0x04, 0x10, 0x18, 0x14}[fz_u8(&f) & 3], fz_u32(&f));
            break;
        case 6:
            bochs_vbe_poll(v);
            break;
        case 7:
            if (op & 0x80) {
                devices_reset(&vm);
                if (s.on)
                    __builtin_trap(); /* reset blanks */
                cfg_write(&vm, 0x04, 3);
            } else {
                round_trip(&vm, v, &s);
            }
            break;
        }
    }
    bochs_vbe_poll(v);
    drop(&vm, v);
    return 0;
}
