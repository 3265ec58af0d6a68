// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-input without the transport: config queries, reports, the event queue. */
#include <linux/input-event-codes.h>
#include <linux/input.h>
#include <string.h>

#include "input.h"
#include "log.h"
#include "state.h"
#include "util.h"

/* Buttons in DISP_BTN_* order (bit 0 left, 1 right, 2 middle). */
static const uint16_t buttons[3] = {BTN_LEFT, BTN_RIGHT, BTN_MIDDLE};

/* The keyboard offers KEY_ESC..0xff: no BTN_* codes, so the guest sees a keyboard. */
#define KBD_FIRST_KEY KEY_ESC
#define KBD_LAST_KEY  0xff

void input_state_init(struct input_state *s, enum input_kind kind, const char *name)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->name = name;
    pthread_mutex_init(&s->lock, NULL);
}

static void set_bit(struct virtio_input_config *cfg, unsigned bit)
{
    cfg->u.bitmap[bit / 8] |= (uint8_t)(1u << (bit % 8));
    cfg->size = (uint8_t)MAX(cfg->size, bit / 8 + 1);
}

static void ev_bits(enum input_kind kind, uint8_t type, struct virtio_input_config *cfg)
{
    switch (type) {
    case EV_KEY:
        if (kind == INPUT_KEYBOARD) {
            for (unsigned k = KBD_FIRST_KEY; k <= KBD_LAST_KEY; k++)
                set_bit(cfg, k);
        } else {
            for (unsigned i = 0; i < ARRAY_SIZE(buttons); i++)
                set_bit(cfg, buttons[i]);
        }
        break;
    case EV_REP:
        if (kind == INPUT_KEYBOARD)
            cfg->size = 1; /* supported, no codes: the guest repeats keys itself */
        break;
    case EV_LED:
        if (kind == INPUT_KEYBOARD) {
            set_bit(cfg, LED_NUML);
            set_bit(cfg, LED_CAPSL);
            set_bit(cfg, LED_SCROLLL);
        }
        break;
    case EV_ABS:
        if (kind == INPUT_TABLET) {
            set_bit(cfg, ABS_X);
            set_bit(cfg, ABS_Y);
        }
        break;
    case EV_REL:
        if (kind == INPUT_TABLET) {
            set_bit(cfg, REL_HWHEEL);
            set_bit(cfg, REL_WHEEL);
        }
        break;
    default:
        break;
    }
}

void input_config_query(enum input_kind kind, uint8_t select, uint8_t subsel,
                        struct virtio_input_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->select = select;
    cfg->subsel = subsel;
    const char *s = NULL;
    switch (select) {
    case VIRTIO_INPUT_CFG_ID_NAME:
        if (!subsel)
            s = kind == INPUT_KEYBOARD ? "hv keyboard" : "hv tablet";
        break;
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        if (!subsel)
            s = kind == INPUT_KEYBOARD ? "hv-kbd-0" : "hv-tablet-0";
        break;
    case VIRTIO_INPUT_CFG_ID_DEVIDS:
        if (!subsel) {
            cfg->u.ids.bustype = BUS_VIRTUAL;
            cfg->u.ids.vendor = 0x6876; /* "hv" */
            cfg->u.ids.product = kind == INPUT_KEYBOARD ? 1 : 2;
            cfg->u.ids.version = 1;
            cfg->size = sizeof(cfg->u.ids);
        }
        break;
    case VIRTIO_INPUT_CFG_PROP_BITS:
        break; /* no properties: size 0 */
    case VIRTIO_INPUT_CFG_EV_BITS:
        ev_bits(kind, subsel, cfg);
        break;
    case VIRTIO_INPUT_CFG_ABS_INFO:
        if (kind == INPUT_TABLET && (subsel == ABS_X || subsel == ABS_Y)) {
            cfg->u.abs.min = 0;
            cfg->u.abs.max = INPUT_ABS_MAX;
            cfg->size = sizeof(cfg->u.abs);
        }
        break;
    default:
        break;
    }
    if (s) {
        size_t n = strlen(s);
        memcpy(cfg->u.string, s, n);
        cfg->size = (uint8_t)n;
    }
}

bool input_queue_report(struct input_state *s, const struct virtio_input_event *ev, unsigned n)
{
    pthread_mutex_lock(&s->lock);
    bool fits = n + 1 <= INPUT_QUEUE_EVENTS - s->count;
    if (fits) {
        for (unsigned i = 0; i <= n; i++) {
            struct virtio_input_event e = {EV_SYN, SYN_REPORT, 0};
            s->ev[(s->head + s->count++) % INPUT_QUEUE_EVENTS] = i < n ? ev[i] : e;
        }
        s->logged_drop = false;
    }
    bool log = !fits && !s->logged_drop;
    s->logged_drop |= !fits;
    pthread_mutex_unlock(&s->lock);
    if (log)
        log_warn("%s: the guest is not reading input; events dropped", s->name);
    return fits;
}

bool input_key(struct input_state *s, uint32_t code, bool pressed)
{
    if (s->kind != INPUT_KEYBOARD || code < KBD_FIRST_KEY || code > KBD_LAST_KEY)
        return false;
    struct virtio_input_event e = {EV_KEY, (uint16_t)code, pressed ? 1 : 0};
    return input_queue_report(s, &e, 1);
}

bool input_pointer(struct input_state *s, uint32_t x, uint32_t y, uint32_t btn)
{
    if (s->kind != INPUT_TABLET)
        return false;
    struct virtio_input_event e[2 + ARRAY_SIZE(buttons)];
    unsigned n = 0;
    e[n++] = (struct virtio_input_event){EV_ABS, ABS_X, MIN(x, INPUT_ABS_MAX)};
    e[n++] = (struct virtio_input_event){EV_ABS, ABS_Y, MIN(y, INPUT_ABS_MAX)};
    for (unsigned i = 0; i < ARRAY_SIZE(buttons); i++) {
        uint32_t bit = 1u << i;
        if ((btn ^ s->buttons) & bit)
            e[n++] = (struct virtio_input_event){EV_KEY, buttons[i], (btn & bit) ? 1 : 0};
    }
    bool ok = input_queue_report(s, e, n);
    if (ok)
        s->buttons = btn & 7;
    return ok;
}

bool input_wheel(struct input_state *s, int32_t dx, int32_t dy)
{
    if (s->kind != INPUT_TABLET || (!dx && !dy))
        return false;
    struct virtio_input_event e[2];
    unsigned n = 0;
    if (dy)
        e[n++] = (struct virtio_input_event){EV_REL, REL_WHEEL, (uint32_t)dy};
    if (dx)
        e[n++] = (struct virtio_input_event){EV_REL, REL_HWHEEL, (uint32_t)dx};
    return input_queue_report(s, e, n);
}

void input_flush(struct input_state *s)
{
    pthread_mutex_lock(&s->lock);
    s->head = s->count = 0;
    s->buttons = 0;
    pthread_mutex_unlock(&s->lock);
}

int64_t input_fill_chain(struct input_state *s, struct vq_chain *c)
{
    pthread_mutex_lock(&s->lock);
    if (!s->count) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    struct virtio_input_event e = s->ev[s->head];
    s->head = (s->head + 1) % INPUT_QUEUE_EVENTS;
    s->count--;
    pthread_mutex_unlock(&s->lock);
    if (iov_total(vq_chain_in(c), c->nr_in) < sizeof(e))
        return 0;
    return (int64_t)iov_from_buf(vq_chain_in(c), c->nr_in, 0, &e, sizeof(e));
}

void input_state_save(struct input_state *s, struct state_out *out)
{
    pthread_mutex_lock(&s->lock);
    state_put_u8(out, (uint8_t)s->buttons);
    state_put_u16(out, (uint16_t)s->count);
    for (unsigned i = 0; i < s->count; i++) {
        const struct virtio_input_event *e = &s->ev[(s->head + i) % INPUT_QUEUE_EVENTS];
        state_put_u16(out, e->type);
        state_put_u16(out, e->code);
        state_put_u32(out, e->value);
    }
    pthread_mutex_unlock(&s->lock);
}

int input_state_load(struct input_state *s, struct state_in *in)
{
    uint8_t btn = state_get_u8(in);
    unsigned count = state_get_u16(in);
    if (!state_in_ok(in))
        return -1;
    if (btn & ~7u)
        return state_in_fail(in, "%s: buttons 0x%x held, the device has 3", s->name, btn);
    if (count > INPUT_QUEUE_EVENTS)
        return state_in_fail(in, "%s: %u events queued, at most %u", s->name, count,
                             INPUT_QUEUE_EVENTS);
    pthread_mutex_lock(&s->lock);
    s->head = 0;
    for (unsigned i = 0; i < count; i++) {
        s->ev[i].type = state_get_u16(in);
        s->ev[i].code = state_get_u16(in);
        s->ev[i].value = state_get_u32(in);
    }
    bool ok = state_in_ok(in);
    s->count = ok ? count : 0;
    s->buttons = ok ? btn : 0;
    pthread_mutex_unlock(&s->lock);
    return ok ? 0 : -1;
}
