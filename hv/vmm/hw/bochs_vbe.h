/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Bochs VBE display (docs/bochs-vbe.md): PCI 1234:1111, class 03.00.00,
 * a 16 MiB framebuffer (BAR 0) that is a memfd mapped into the guest as a KVM
 * memory slot and handed as it is to hv-switch, the DISPI registers at ports
 * 0x1CE/0x1CF and in BAR 2 (with the EDID and the VGA ports).
 */
#ifndef HV_VMM_HW_BOCHS_VBE_H
#define HV_VMM_HW_BOCHS_VBE_H

#include <stdint.h>

#define VBE_VRAM_SIZE (UINT64_C(16) << 20)
#define VBE_MMIO_SIZE 4096
/* BAR 2's parts. */
#define VBE_MMIO_EDID  0x000 /* 0x400 bytes */
#define VBE_MMIO_VGA   0x400 /* VGA ports 0x3C0..0x3DF */
#define VBE_MMIO_DISPI 0x500 /* DISPI register N at 0x500 + 2N */
#define VBE_MMIO_QEXT  0x600 /* size, byte order */

/* Where the picture goes: hv-switch's connection (display.c), or a test. */
struct vbe_sink {
    void *ctx;
    void (*scanout)(void *ctx, int fd, uint64_t offset, uint32_t width, uint32_t height,
                    uint32_t stride);
    void (*damage)(void *ctx, uint32_t x, uint32_t y, uint32_t w, uint32_t h);
    void (*blank)(void *ctx);
};

struct vm;
struct bochs_vbe;

/*
 * Put the device on the PCI bus and the VM's device list; width x height is
 * the panel its EDID offers. out (may be NULL) gets the device for tests.
 * 0 or -errno (logged).
 */
int bochs_vbe_create(struct vm *vm, uint32_t width, uint32_t height, const struct vbe_sink *sink,
                     struct bochs_vbe **out);

/*
 * Tell the sink what changed in the picture since the last call (KVM's dirty
 * log of the slot, or everything when the framebuffer was reached by trapped
 * accesses). A timer of the main loop calls it; tests call it by hand.
 */
void bochs_vbe_poll(struct bochs_vbe *v);

/* Tests: the framebuffer as hv-vmm maps it, and the PCI function. */
uint8_t *bochs_vbe_vram(struct bochs_vbe *v);
struct pci_device *bochs_vbe_pci(struct bochs_vbe *v);

#endif
