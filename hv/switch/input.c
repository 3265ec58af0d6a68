/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Routes SDL keyboard and mouse events to the focused VM, through the hotkey state machine. */
#include "app.h"
#include "log.h"

static void send_key(struct app *a, int vm, uint32_t code, bool pressed)
{
    struct disp_key k = {DISP_KEY, code, pressed};

    client_send(a, vm, &k, sizeof(k));
}

static void send_focus(struct app *a, int vm, bool focused)
{
    struct disp_focus f = {DISP_FOCUS, focused};

    client_send(a, vm, &f, sizeof(f));
}

void input_apply(struct app *a, const struct focus_out *out, bool from_user, uint64_t t0)
{
    for (int i = 0; i < out->n; i++)
        send_key(a, out->ev[i].vm, out->ev[i].code, out->ev[i].pressed);
    if (out->old_focus != out->new_focus) {
        const struct vm *v = reg_by_id(&a->reg, out->new_focus);
        if (out->old_focus)
            send_focus(a, out->old_focus, false);
        if (out->new_focus)
            send_focus(a, out->new_focus, true);
        log_info("focus: %s", v ? v->name : "none");
        if (from_user) {
            a->switch_pending = true;
            a->switch_t0 = t0;
        }
        a->redraw = true;
    }
    if (out->redraw)
        a->redraw = true;
}

static void key(struct app *a, const SDL_KeyboardEvent *k, uint64_t t0)
{
    uint32_t code = keymap_evdev(k->keysym.scancode);
    struct focus_out out;

    if (k->repeat || !code)
        return; /* guests repeat keys themselves */
    focus_key(&a->focus, &a->reg, code, k->state == SDL_PRESSED, &out);
    input_apply(a, &out, true, t0);
}

static uint32_t button_bit(Uint8 b)
{
    return b == SDL_BUTTON_LEFT     ? DISP_BTN_LEFT
           : b == SDL_BUTTON_RIGHT  ? DISP_BTN_RIGHT
           : b == SDL_BUTTON_MIDDLE ? DISP_BTN_MIDDLE
                                    : 0;
}

static void pointer(struct app *a, int x, int y)
{
    struct lrect pic;
    struct disp_pointer p = {.type = DISP_POINTER, .buttons = a->buttons};

    a->ptr_x = x;
    a->ptr_y = y;
    if (a->focus.overlay || !comp_focused_rect(a, &pic))
        return;
    layout_to_abs(pic, x, y, &p.x, &p.y);
    client_send(a, a->focus.focused, &p, sizeof(p));
}

void input_pointer_at(struct app *a, int x, int y)
{
    pointer(a, x, y);
}

void input_event(struct app *a, const SDL_Event *ev)
{
    switch (ev->type) {
    case SDL_KEYDOWN:
    case SDL_KEYUP:
        key(a, &ev->key, now_ns());
        break;
    case SDL_MOUSEMOTION:
        /* A tablet's own events are read by absptr.c; SDL's copies are wrong. */
        if (!absptr_ignores_sdl_mouse(a, ev->motion.which))
            pointer(a, ev->motion.x, ev->motion.y);
        break;
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP:
        if (absptr_ignores_sdl_mouse(a, ev->button.which))
            break;
        if (ev->type == SDL_MOUSEBUTTONDOWN)
            a->buttons |= button_bit(ev->button.button);
        else
            a->buttons &= ~button_bit(ev->button.button);
        /* With tablets read here, SDL's own idea of the position may be a tablet's wrong one. */
        pointer(a, a->nabs ? a->ptr_x : ev->button.x, a->nabs ? a->ptr_y : ev->button.y);
        break;
    case SDL_MOUSEWHEEL:
        if (!a->focus.overlay && a->focus.focused) {
            struct disp_wheel w = {DISP_WHEEL, ev->wheel.x, ev->wheel.y};
            if (ev->wheel.direction == SDL_MOUSEWHEEL_FLIPPED) {
                w.dx = -w.dx;
                w.dy = -w.dy;
            }
            client_send(a, a->focus.focused, &w, sizeof(w));
        }
        break;
    default:
        break;
    }
}
