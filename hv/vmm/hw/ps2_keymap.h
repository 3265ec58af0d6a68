/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Linux evdev key codes (what hv-switch sends, docs/display-protocol.md) as
 * PS/2 scan codes: set 2, the keyboard's native set, and set 1; and the
 * 8042's translation of set 2 into set 1 (command byte bit 6). The codes are
 * those of Microsoft's "Keyboard Scan Code Specification" and its "USB HID
 * to PS/2 Scan Code Translation Table".
 */
#ifndef HV_VMM_HW_PS2_KEYMAP_H
#define HV_VMM_HW_PS2_KEYMAP_H

#include <stdbool.h>
#include <stdint.h>

#define PS2_SEQ_MAX 8 /* the longest sequence: Pause in set 2 */

/*
 * The bytes a key press (make) or release (break) sends in scan code set 1
 * or 2, into out[PS2_SEQ_MAX]. Returns their number, 0 for a key the
 * keyboard does not have (and for Pause's release, which sends nothing).
 */
unsigned ps2_key_sequence(uint32_t code, bool pressed, unsigned set, uint8_t *out);

/* Whether the keyboard has the key (ps2_key_sequence gives a make code). */
bool ps2_key_known(uint32_t code);

/* Whether holding the key repeats it (typematic): all but Pause. */
bool ps2_key_repeats(uint32_t code);

/* The 8042's set 2 -> set 1 translation of one byte (0xF0 is handled by the caller). */
uint8_t ps2_translate(uint8_t set2);

#endif
