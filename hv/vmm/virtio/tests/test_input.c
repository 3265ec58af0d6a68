// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-input without a transport: config queries, reports, bounded buffering. */
#include <linux/input-event-codes.h>
#include <linux/input.h>
#include <string.h>

#include "check.h"
#include "input.h"
#include "log.h"
#include "state.h"
#include "util.h"

static bool bit(const struct virtio_input_config *c, unsigned b)
{
    return b / 8 < c->size && (c->u.bitmap[b / 8] >> (b % 8)) & 1;
}

static void test_config(void)
{
    struct virtio_input_config c;
    input_config_query(INPUT_KEYBOARD, VIRTIO_INPUT_CFG_ID_NAME, 0, &c);
    CHECK(c.size == strlen("hv keyboard") && memcmp(c.u.string, "hv keyboard", c.size) == 0);
    input_config_query(INPUT_TABLET, VIRTIO_INPUT_CFG_ID_SERIAL, 0, &c);
    CHECK(c.size > 0);
    input_config_query(INPUT_TABLET, VIRTIO_INPUT_CFG_ID_DEVIDS, 0, &c);
    CHECK(c.size == 8 && c.u.ids.bustype == BUS_VIRTUAL && c.u.ids.product == 2);
    input_config_query(INPUT_KEYBOARD, VIRTIO_INPUT_CFG_PROP_BITS, 0, &c);
    CHECK(c.size == 0);

    /* Keyboard: keys (no buttons, so it is not taken for a mouse), repeat, LEDs. */
    input_config_query(INPUT_KEYBOARD, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, &c);
    CHECK(bit(&c, KEY_A) && bit(&c, KEY_ESC) && bit(&c, KEY_LEFTCTRL) && !bit(&c, BTN_LEFT));
    CHECK(!bit(&c, 0));
    input_config_query(INPUT_KEYBOARD, VIRTIO_INPUT_CFG_EV_BITS, EV_REP, &c);
    CHECK(c.size == 1);
    input_config_query(INPUT_KEYBOARD, VIRTIO_INPUT_CFG_EV_BITS, EV_LED, &c);
    CHECK(bit(&c, LED_CAPSL) && bit(&c, LED_NUML) && bit(&c, LED_SCROLLL));
    input_config_query(INPUT_KEYBOARD, VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, &c);
    CHECK(c.size == 0);

    /* Tablet: absolute X/Y 0..32767, three buttons, wheels. */
    input_config_query(INPUT_TABLET, VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, &c);
    CHECK(bit(&c, ABS_X) && bit(&c, ABS_Y) && !bit(&c, ABS_Z));
    input_config_query(INPUT_TABLET, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, &c);
    CHECK(bit(&c, BTN_LEFT) && bit(&c, BTN_RIGHT) && bit(&c, BTN_MIDDLE) && !bit(&c, KEY_A));
    input_config_query(INPUT_TABLET, VIRTIO_INPUT_CFG_EV_BITS, EV_REL, &c);
    CHECK(bit(&c, REL_WHEEL) && bit(&c, REL_HWHEEL) && !bit(&c, REL_X));
    input_config_query(INPUT_TABLET, VIRTIO_INPUT_CFG_ABS_INFO, ABS_Y, &c);
    CHECK(c.size == sizeof(c.u.abs) && c.u.abs.min == 0 && c.u.abs.max == 32767);
    input_config_query(INPUT_TABLET, VIRTIO_INPUT_CFG_ABS_INFO, ABS_Z, &c);
    CHECK(c.size == 0);
    input_config_query(INPUT_KEYBOARD, VIRTIO_INPUT_CFG_ABS_INFO, ABS_X, &c);
    CHECK(c.size == 0);

    /* Unknown selects and the unset state answer size 0. */
    for (unsigned s = 0; s < 256; s++) {
        input_config_query(INPUT_TABLET, (uint8_t)s, 0xff, &c);
        CHECK(c.size == 0 || s == VIRTIO_INPUT_CFG_EV_BITS);
    }
}

/* Take the next event as the guest would, through a one-buffer chain. */
static struct vq_chain chain;
static bool next(struct input_state *s, uint16_t type, uint16_t code, uint32_t value)
{
    struct virtio_input_event e = {0};
    chain.nr_out = 0;
    chain.nr_in = 1;
    chain.iov[0] = (struct iovec){&e, sizeof(e)};
    if (input_fill_chain(s, &chain) != sizeof(e))
        return false;
    return e.type == type && e.code == code && e.value == value;
}

static bool empty(struct input_state *s)
{
    uint8_t b[8];
    chain.nr_in = 1;
    chain.iov[0] = (struct iovec){b, sizeof(b)};
    return input_fill_chain(s, &chain) == -1;
}

static void test_events(void)
{
    struct input_state k, t;
    input_state_init(&k, INPUT_KEYBOARD, "kbd");
    input_state_init(&t, INPUT_TABLET, "tablet");

    CHECK(input_key(&k, KEY_A, true) && input_key(&k, KEY_A, false));
    CHECK(next(&k, EV_KEY, KEY_A, 1) && next(&k, EV_SYN, SYN_REPORT, 0));
    CHECK(next(&k, EV_KEY, KEY_A, 0) && next(&k, EV_SYN, SYN_REPORT, 0) && empty(&k));
    CHECK(!input_key(&k, 0, true) && !input_key(&k, BTN_LEFT, true) && !input_key(&k, 70000, 1));
    CHECK(!input_key(&t, KEY_A, true) && !input_pointer(&k, 1, 2, 0) && empty(&k));

    /* Pointer: position always, buttons when they change. */
    CHECK(input_pointer(&t, 100, 32767, 1));
    CHECK(next(&t, EV_ABS, ABS_X, 100) && next(&t, EV_ABS, ABS_Y, 32767));
    CHECK(next(&t, EV_KEY, BTN_LEFT, 1) && next(&t, EV_SYN, SYN_REPORT, 0) && empty(&t));
    CHECK(input_pointer(&t, 200, 99999, 1 | 4)); /* out of range is clamped */
    CHECK(next(&t, EV_ABS, ABS_X, 200) && next(&t, EV_ABS, ABS_Y, 32767));
    CHECK(next(&t, EV_KEY, BTN_MIDDLE, 1) && next(&t, EV_SYN, SYN_REPORT, 0));
    CHECK(input_pointer(&t, 200, 5, 0));
    CHECK(next(&t, EV_ABS, ABS_X, 200) && next(&t, EV_ABS, ABS_Y, 5));
    CHECK(next(&t, EV_KEY, BTN_LEFT, 0) && next(&t, EV_KEY, BTN_MIDDLE, 0));
    CHECK(next(&t, EV_SYN, SYN_REPORT, 0) && empty(&t));

    /* Wheel: up is positive, horizontal too. */
    CHECK(input_wheel(&t, -1, 2));
    CHECK(next(&t, EV_REL, REL_WHEEL, 2) && next(&t, EV_REL, REL_HWHEEL, (uint32_t)-1));
    CHECK(next(&t, EV_SYN, SYN_REPORT, 0) && empty(&t));
    CHECK(!input_wheel(&t, 0, 0));

    /* A buffer too small for an event gets nothing; the event is consumed. */
    CHECK(input_key(&k, KEY_B, true));
    uint8_t small[4];
    chain.nr_in = 1;
    chain.iov[0] = (struct iovec){small, sizeof(small)};
    CHECK(input_fill_chain(&k, &chain) == 0);
    CHECK(next(&k, EV_SYN, SYN_REPORT, 0) && empty(&k));

    /* A guest that never reads: bounded, whole reports only, never split. */
    unsigned accepted = 0;
    for (unsigned i = 0; i < 1000; i++)
        accepted += input_pointer(&t, i, i, 0);
    CHECK(accepted == INPUT_QUEUE_EVENTS / 3);
    CHECK(t.count == accepted * 3);
    for (unsigned i = 0; i < accepted; i++)
        CHECK(next(&t, EV_ABS, ABS_X, i) && next(&t, EV_ABS, ABS_Y, i) &&
              next(&t, EV_SYN, SYN_REPORT, 0));
    CHECK(empty(&t));
    CHECK(input_pointer(&t, 1, 1, 0)); /* room again */
    input_flush(&t);
    CHECK(empty(&t));
}

/* Pending events and held buttons survive a save; bad counts are refused. */
static void test_save(void)
{
    struct input_state a, b;
    input_state_init(&a, INPUT_TABLET, "tablet-a");
    input_state_init(&b, INPUT_TABLET, "tablet-b");
    CHECK(input_pointer(&a, 10, 20, 1)); /* X, Y, BTN_LEFT down, SYN */
    CHECK(input_wheel(&a, 0, -1));       /* REL_WHEEL, SYN */
    struct state_out out;
    state_out_init(&out);
    input_state_save(&a, &out);
    CHECK(!out.failed && out.len == 3 + 6 * 8);

    struct state_in in;
    state_in_init(&in, out.buf, out.len);
    CHECK(input_state_load(&b, &in) == 0 && state_in_end(&in) == 0);
    CHECK(b.count == a.count && b.buttons == 1);
    /* Button still held: releasing it is reported, moving alone is not a click. */
    CHECK(input_pointer(&b, 10, 20, 1) && b.count == 6 + 3);

    uint8_t bad[3];
    memcpy(bad, out.buf, 3);
    bad[1] = 0xff, bad[2] = 0xff; /* 65535 events */
    state_in_init(&in, bad, 3);
    CHECK(input_state_load(&b, &in) < 0 && strstr(in.why, "events queued"));
    bad[0] = 8;
    state_in_init(&in, bad, 3);
    CHECK(input_state_load(&b, &in) < 0 && strstr(in.why, "buttons"));
    state_in_init(&in, out.buf, out.len - 1);
    CHECK(input_state_load(&b, &in) < 0 && b.count == 0);
    state_out_free(&out);
}

int main(void)
{
    hv_log_init("test");
    hv_log_set_level(HV_LOG_ERROR);
    test_config();
    test_events();
    test_save();
    CHECK_DONE();
}
