/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The 8042 keyboard controller with a PS/2 keyboard and a PS/2 mouse behind
 * it (hw/i8042.c): what the display connection feeds it (hv-switch's keys
 * and pointer) and its DSDT entries. The platform device's own hooks are in
 * devices.h.
 */
#ifndef HV_VMM_HW_I8042_H
#define HV_VMM_HW_I8042_H

#include <stdbool.h>
#include <stdint.h>

struct i8042_dev;
struct aml;

/*
 * Thread-safe, from the display connection's thread. code is a Linux evdev
 * KEY_* code; keys the keyboard does not have are dropped, and so is a
 * release whose press the keyboard did not send.
 *
 * The input functions and i8042_aml are weak: the unit tests and fuzzers of
 * display.c and x86/acpi.c link without the device (NULL then).
 */
void i8042_key(struct i8042_dev *k, uint32_t code, bool pressed) __attribute__((weak));

/*
 * hv-switch's absolute pointer (x, y in 0..32767 across a picture of
 * width x height pixels) and buttons (DISP_BTN_*), turned into relative
 * PS/2 packets: the motion since the last position, in pixels. With report
 * false (the guest reads the virtio tablet instead) the position is only
 * followed, and a change of buttons the mouse had reported pressed is
 * still sent, so that no button stays held in the guest.
 */
void i8042_pointer(struct i8042_dev *k, uint32_t x, uint32_t y, uint32_t buttons, uint32_t width,
                   uint32_t height, bool report) __attribute__((weak));
/* A wheel notch (dy > 0 up), for a mouse the guest switched to IntelliMouse mode. */
void i8042_wheel(struct i8042_dev *k, int32_t dx, int32_t dy) __attribute__((weak));

/*
 * The DSDT's devices for the controller: PNP0303 (keyboard: I/O 0x60 and
 * 0x64, IRQ 1) and PNP0F13 (mouse: IRQ 12), written into the \_SB scope.
 */
void i8042_aml(struct aml *dsdt) __attribute__((weak));

/* The interrupt lines as the device drives them: IRQ 1, IRQ 12 (tests). */
void i8042_irq_lines(struct i8042_dev *k, bool *kbd, bool *aux);

#endif
