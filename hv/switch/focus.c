/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "focus.h"

#include <linux/input-event-codes.h>
#include <string.h>

void focus_init(struct focus *f)
{
    memset(f, 0, sizeof(*f));
}

int focus_overlay_cols(int n)
{
    int c = 1;

    while (c * c < n)
        c++;
    return c;
}

static void out_reset(const struct focus *f, struct focus_out *out)
{
    out->n = 0;
    out->old_focus = out->new_focus = f->focused;
    out->redraw = false;
}

static void emit(struct focus_out *out, int vm, uint32_t code, bool pressed)
{
    if (out->n < FOCUS_OUT_MAX)
        out->ev[out->n++] = (struct focus_event){vm, code, pressed};
}

static void set_focus(struct focus *f, struct registry *r, int id)
{
    struct vm *old = reg_by_id(r, f->focused);

    if (id == f->focused)
        return;
    if (old) {
        for (uint32_t code = 0; code < REG_KEYS; code++) {
            if (vm_held(old, code))
                vm_set_held(old, code, false);
        }
    }
    f->focused = id;
}

/* Same as set_focus, reporting the releases. */
static void change_focus(struct focus *f, struct registry *r, int id, struct focus_out *out)
{
    struct vm *old = reg_by_id(r, f->focused);

    if (id == f->focused)
        return;
    if (old) {
        for (uint32_t code = 0; code < REG_KEYS; code++) {
            if (vm_held(old, code))
                emit(out, old->id, code, false);
        }
    }
    set_focus(f, r, id);
    out->new_focus = id;
}

void focus_set(struct focus *f, struct registry *r, int id, struct focus_out *out)
{
    out_reset(f, out);
    change_focus(f, r, id, out);
}

void focus_vm_added(struct focus *f, struct registry *r, int id, struct focus_out *out)
{
    out_reset(f, out);
    if (!f->focused)
        change_focus(f, r, id, out);
    if (f->overlay)
        out->redraw = true;
}

void focus_vm_removing(struct focus *f, struct registry *r, int id, struct focus_out *out)
{
    int idx = reg_index(r, id);
    struct vm *next;

    out_reset(f, out);
    if (idx < 0)
        return;
    if (f->overlay) {
        if (f->sel > idx || f->sel == r->count - 1)
            f->sel = f->sel > 0 ? f->sel - 1 : 0;
        out->redraw = true;
    }
    if (f->focused != id)
        return;
    /* Nothing is sent to a VM that is going away. */
    f->focused = 0;
    next = reg_by_slot(r, 0);
    if (!next || next->id == id) {
        next = NULL;
        for (int i = 0; i < r->count && !next; i++) {
            if (r->vms[i].id != id)
                next = &r->vms[i];
        }
    }
    f->focused = next ? next->id : 0;
    out->new_focus = f->focused;
}

static bool is_swallowed(const struct focus *f, uint32_t code)
{
    return (f->swallowed[code / 8] >> (code % 8)) & 1;
}

static void set_swallowed(struct focus *f, uint32_t code, bool on)
{
    if (on)
        f->swallowed[code / 8] |= (uint8_t)(1u << (code % 8));
    else
        f->swallowed[code / 8] &= (uint8_t) ~(1u << (code % 8));
}

static int digit_slot(uint32_t code)
{
    if (code >= KEY_1 && code <= KEY_9)
        return (int)(code - KEY_1) + 1;
    if (code == KEY_0)
        return 0;
    return -1;
}

/* A press taken by hv-switch (hotkey or overlay key). */
static void hotkey(struct focus *f, struct registry *r, uint32_t code, struct focus_out *out)
{
    int slot = digit_slot(code);
    bool combo = (f->ctrl[0] || f->ctrl[1]) && (f->alt[0] || f->alt[1]);
    struct vm *v;

    if (combo && code == KEY_TAB) {
        f->overlay = !f->overlay;
        if (f->overlay)
            f->sel = reg_index(r, f->focused) < 0 ? 0 : reg_index(r, f->focused);
        out->redraw = true;
        return;
    }
    if (combo && slot >= 0) {
        v = reg_by_slot(r, slot);
        if (v)
            change_focus(f, r, v->id, out);
        if (f->overlay)
            out->redraw = true;
        f->overlay = false;
        return;
    }
    /* Overlay navigation; every other key is dropped while it is open. */
    int cols = focus_overlay_cols(r->count);
    switch (code) {
    case KEY_ESC:
        f->overlay = false;
        break;
    case KEY_ENTER:
    case KEY_KPENTER:
        if (f->sel < r->count)
            change_focus(f, r, r->vms[f->sel].id, out);
        f->overlay = false;
        break;
    case KEY_LEFT:
        f->sel = f->sel > 0 ? f->sel - 1 : f->sel;
        break;
    case KEY_RIGHT:
        f->sel = f->sel + 1 < r->count ? f->sel + 1 : f->sel;
        break;
    case KEY_UP:
        f->sel = f->sel - cols >= 0 ? f->sel - cols : f->sel;
        break;
    case KEY_DOWN:
        f->sel = f->sel + cols < r->count ? f->sel + cols : f->sel;
        break;
    default:
        return;
    }
    out->redraw = true;
}

static void track_modifier(struct focus *f, uint32_t code, bool pressed)
{
    switch (code) {
    case KEY_LEFTCTRL:
        f->ctrl[0] = pressed;
        break;
    case KEY_RIGHTCTRL:
        f->ctrl[1] = pressed;
        break;
    case KEY_LEFTALT:
        f->alt[0] = pressed;
        break;
    case KEY_RIGHTALT:
        f->alt[1] = pressed;
        break;
    default:
        break;
    }
}

static bool is_modifier(uint32_t code)
{
    return code == KEY_LEFTCTRL || code == KEY_RIGHTCTRL || code == KEY_LEFTALT ||
           code == KEY_RIGHTALT;
}

void focus_key(struct focus *f, struct registry *r, uint32_t code, bool pressed,
               struct focus_out *out)
{
    bool combo;
    struct vm *v;

    out_reset(f, out);
    if (code >= REG_KEYS)
        return;
    track_modifier(f, code, pressed);

    if (!pressed) {
        if (is_swallowed(f, code)) {
            set_swallowed(f, code, false);
            return;
        }
        /* A release goes to whichever VM holds the key (only the focused one can). */
        v = reg_by_id(r, f->focused);
        if (v && vm_held(v, code)) {
            vm_set_held(v, code, false);
            emit(out, v->id, code, false);
        }
        return;
    }

    combo = (f->ctrl[0] || f->ctrl[1]) && (f->alt[0] || f->alt[1]);
    if ((combo && (code == KEY_TAB || digit_slot(code) >= 0)) ||
        (f->overlay && !is_modifier(code))) {
        set_swallowed(f, code, true);
        hotkey(f, r, code, out);
        return;
    }
    v = reg_by_id(r, f->focused);
    if (!v || f->overlay)
        return;
    vm_set_held(v, code, true);
    emit(out, v->id, code, true);
}
