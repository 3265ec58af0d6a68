/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Focus and hotkeys: which VM gets the keyboard, what is swallowed, the
 * switcher overlay's selection. Pure: takes evdev key codes, returns the key
 * events to send and whether the focus changed.
 */
#ifndef HV_SWITCH_FOCUS_H
#define HV_SWITCH_FOCUS_H

#include "registry.h"

#include <stdbool.h>
#include <stdint.h>

#define FOCUS_OUT_MAX (REG_KEYS + 1)

struct focus {
    int focused; /* VM id, 0 when none */
    bool overlay;
    int sel; /* overlay selection: index into the registry */
    bool ctrl[2], alt[2];
    uint8_t swallowed[REG_KEYS / 8]; /* presses kept from every VM: keep their releases too */
};

struct focus_event {
    int vm;
    uint32_t code;
    bool pressed;
};

struct focus_out {
    int n;
    struct focus_event ev[FOCUS_OUT_MAX]; /* in order */
    int old_focus, new_focus;             /* ids; equal when unchanged */
    bool redraw;                          /* overlay opened, closed or moved */
};

void focus_init(struct focus *f);

/* A key from the user. */
void focus_key(struct focus *f, struct registry *r, uint32_t code, bool pressed,
               struct focus_out *out);

/* Focus a VM (0: none); releases what the old one holds. */
void focus_set(struct focus *f, struct registry *r, int id, struct focus_out *out);

/* After reg_add: focuses the VM if none is. */
void focus_vm_added(struct focus *f, struct registry *r, int id, struct focus_out *out);

/* Before reg_remove: moves the focus away from it (to the UIVM, else the first VM). */
void focus_vm_removing(struct focus *f, struct registry *r, int id, struct focus_out *out);

/* Columns of the overlay's grid for n VMs (shared with the compositor). */
int focus_overlay_cols(int n);

#endif
