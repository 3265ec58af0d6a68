/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An 8042 keyboard controller at 0x60 (data) and 0x64 (status/command) with
 * a PS/2 keyboard on its first port (IRQ 1) and a PS/2 mouse on its second
 * (IRQ 12), fed by hv-switch's input through the display connection
 * (display.c, i8042.h). The controller keeps its command byte (interrupt
 * enables, port disables, set 2 -> set 1 translation), answers its self
 * tests, moves one byte at a time from the devices into its output buffer
 * and raises the port's interrupt line while the buffer is full, so each
 * byte is an edge for the guest. Its reset line (command 0xFE, output port
 * bit 0) reboots the VM. docs/device-model.md has what it saves.
 *
 * Each device keeps a bounded queue of whole records (a key's sequence, a
 * mouse packet, a command's answer): a guest that does not read loses the
 * oldest records, never a part of one, and memory never grows.
 */
#include "i8042.h"

#include <errno.h>
#include <linux/input-event-codes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"
#include "log.h"
#include "ps2_keymap.h"
#include "state.h"
#include "vm.h"
#include "x86/aml.h"

#define I8042_DATA 0x60
#define I8042_CMD  0x64
#define KBD_IRQ    1
#define AUX_IRQ    12

#define STS_OBF  0x01
#define STS_SYS  0x04
#define STS_CMD  0x08
#define STS_KEYL 0x10 /* keyboard not inhibited */
#define STS_AUXB 0x20 /* the output buffer holds a byte from the mouse */

#define CTR_KBDINT   0x01
#define CTR_AUXINT   0x02
#define CTR_SYS      0x04
#define CTR_KBDDIS   0x10
#define CTR_AUXDIS   0x20
#define CTR_XLAT     0x40
#define CTR_POWER_ON (CTR_KBDINT | CTR_SYS | CTR_XLAT)

#define CMD_READ_CTR   0x20
#define CMD_WRITE_CTR  0x60
#define CMD_PASSWORD   0xa4
#define CMD_AUX_DIS    0xa7
#define CMD_AUX_EN     0xa8
#define CMD_AUX_TEST   0xa9
#define CMD_SELF_TEST  0xaa
#define CMD_KBD_TEST   0xab
#define CMD_KBD_DIS    0xad
#define CMD_KBD_EN     0xae
#define CMD_READ_INP   0xc0
#define CMD_READ_OUTP  0xd0
#define CMD_WRITE_OUTP 0xd1
#define CMD_WRITE_KOBF 0xd2 /* the next data byte comes back as if from the keyboard */
#define CMD_WRITE_AOBF 0xd3 /* ... as if from the mouse */
#define CMD_WRITE_AUX  0xd4 /* the next data byte goes to the mouse */
#define CMD_READ_TEST  0xe0

#define OUTP_POWER_ON 0x03 /* reset line high, A20 on */

/* What the devices answer. */
#define PS2_ACK    0xfa
#define PS2_RESEND 0xfe
#define PS2_BAT_OK 0xaa
#define PS2_ECHO   0xee

#define KBD_QUEUE         16 /* a PS/2 keyboard's buffer; Linux's i8042 flush reads at most 16 */
#define AUX_QUEUE         48 /* 12 packets of 4 bytes */
#define QUEUE_MAX         48
#define CTL_QUEUE         4
#define TYPEMATIC_DEFAULT 0x2b /* 10.9 characters a second after 500 ms */

#define SAVE_V1_LEN 5 /* the section before the keyboard and mouse existed */

struct ps2_queue {
    uint8_t buf[QUEUE_MAX];
    bool start[QUEUE_MAX]; /* the byte begins a record */
    uint8_t len, cap;
};

struct ps2_kbd {
    struct ps2_queue q;
    uint8_t pending; /* command waiting for its parameter */
    bool scanning;
    uint8_t set; /* 1 or 2 */
    uint8_t leds, typematic;
    uint8_t last;     /* the last byte sent, for RESEND */
    uint8_t held[32]; /* keys whose make code went out (codes below 256) */
};

struct ps2_mouse {
    struct ps2_queue q;
    uint8_t pending;
    bool enabled, remote, wrap, scale21;
    uint8_t rate, res, id;
    uint8_t rates[3]; /* the last sample rates set, for the wheel upgrades */
    uint8_t buttons;  /* as last reported, or held in remote mode */
    uint8_t last;
    bool have_pos;
    int32_t px, py;     /* the pointer's last position, in pixels */
    int32_t dx, dy, dz; /* motion not reported yet (remote mode) */
};

struct i8042_dev {
    struct vm *vm;
    pthread_mutex_t lock;
    uint8_t ctr;     /* controller configuration byte */
    uint8_t pending; /* command waiting for its data byte */
    uint8_t outport;
    bool last_cmd; /* status bit 3: the last write was to 0x64 */
    bool has_out, out_aux;
    uint8_t out;
    uint8_t ctl[CTL_QUEUE];  /* the controller's own answers, before the devices' */
    bool ctl_aux[CTL_QUEUE]; /* 0xD3's byte comes from the "mouse" */
    uint8_t ctl_len;
    bool xlat_break; /* translation: an F0 was taken, the next byte is a break */
    bool kbd_line, aux_line, quiesced;
    struct ps2_kbd kbd;
    struct ps2_mouse mouse;

    /* Typematic repeat: a thread started at the first key press. */
    pthread_cond_t rep_cond;
    pthread_t rep_thread;
    bool rep_started, rep_stop;
    uint32_t rep_key; /* 0: nothing repeats */
    struct timespec rep_next;
};

/* ---- queues ---- */

static void q_init(struct ps2_queue *q, uint8_t cap)
{
    memset(q, 0, sizeof(*q));
    q->cap = cap;
}

/* Remove the record at [from, end). */
static void q_cut(struct ps2_queue *q, unsigned from)
{
    unsigned end = from + 1;
    while (end < q->len && !q->start[end])
        end++;
    memmove(q->buf + from, q->buf + end, q->len - end);
    memmove(q->start + from, q->start + end, q->len - end);
    q->len = (uint8_t)(q->len - (end - from));
}

/*
 * Queue a record. When it does not fit, the oldest whole records go (never
 * the one the guest is reading, a part of which is gone already); with
 * evict false (a typematic repeat) the new record is dropped instead.
 */
static bool q_push(struct ps2_queue *q, const uint8_t *p, unsigned n, bool evict)
{
    if (n == 0 || n > q->cap)
        return false;
    while (q->len + n > q->cap) {
        if (!evict)
            return false;
        unsigned victim = 0;
        if (!q->start[0]) { /* mid-record: the next record goes */
            victim = 1;
            while (victim < q->len && !q->start[victim])
                victim++;
            if (victim >= q->len)
                return false;
        }
        q_cut(q, victim);
    }
    for (unsigned i = 0; i < n; i++) {
        q->buf[q->len + i] = p[i];
        q->start[q->len + i] = i == 0;
    }
    q->len = (uint8_t)(q->len + n);
    return true;
}

static uint8_t q_pop(struct ps2_queue *q)
{
    uint8_t b = q->buf[0];
    memmove(q->buf, q->buf + 1, q->len - 1u);
    memmove(q->start, q->start + 1, q->len - 1u);
    q->len--;
    return b;
}

static void q_clear(struct ps2_queue *q)
{
    q->len = 0;
}

static void q_save(const struct ps2_queue *q, struct state_out *out)
{
    state_put_u8(out, q->len);
    state_put_bytes(out, q->buf, q->len);
    for (unsigned i = 0; i < q->len; i++)
        state_put_bool(out, q->start[i]);
}

static int q_load(struct ps2_queue *q, struct state_in *in, const char *what)
{
    uint8_t len = state_get_u8(in);
    if (state_in_ok(in) && len > q->cap)
        return state_in_fail(in, "the %s's queue holds %u bytes, more than its %u", what, len,
                             q->cap);
    state_get_bytes(in, q->buf, len);
    for (unsigned i = 0; i < len; i++)
        q->start[i] = state_get_bool(in);
    if (!state_in_ok(in))
        return -1;
    q->len = len;
    return 0;
}

/* ---- the controller's output buffer and interrupt lines (lock held) ---- */

static void update_irq(struct i8042_dev *k)
{
    if (k->quiesced)
        return;
    bool kl = k->has_out && !k->out_aux && (k->ctr & CTR_KBDINT);
    bool al = k->has_out && k->out_aux && (k->ctr & CTR_AUXINT);
    if (kl != k->kbd_line) {
        k->kbd_line = kl;
        irq_line(&k->vm->irq, KBD_IRQ, kl);
    }
    if (al != k->aux_line) {
        k->aux_line = al;
        irq_line(&k->vm->irq, AUX_IRQ, al);
    }
}

/* The keyboard's next byte, translated to set 1 when the command byte says so. */
static bool next_kbd_byte(struct i8042_dev *k, uint8_t *b)
{
    struct ps2_kbd *kb = &k->kbd;
    while (kb->q.len) {
        uint8_t v = q_pop(&kb->q);
        kb->last = v;
        if (!(k->ctr & CTR_XLAT)) {
            *b = v;
            return true;
        }
        if (v == 0xf0) {
            k->xlat_break = true;
            continue;
        }
        *b = (uint8_t)(ps2_translate(v) | (k->xlat_break ? 0x80 : 0));
        k->xlat_break = false;
        return true;
    }
    return false;
}

/* Fill an empty output buffer: the controller's answers, then the keyboard, then the mouse. */
static void refill(struct i8042_dev *k)
{
    if (!k->has_out && !k->quiesced) {
        if (k->ctl_len) {
            k->out = k->ctl[0];
            k->out_aux = k->ctl_aux[0];
            memmove(k->ctl, k->ctl + 1, k->ctl_len - 1u);
            memmove(k->ctl_aux, k->ctl_aux + 1, k->ctl_len - 1u);
            k->ctl_len--;
            k->has_out = true;
        } else if (!(k->ctr & CTR_KBDDIS) && next_kbd_byte(k, &k->out)) {
            k->out_aux = false;
            k->has_out = true;
        } else if (!(k->ctr & CTR_AUXDIS) && k->mouse.q.len) {
            k->out = q_pop(&k->mouse.q);
            k->mouse.last = k->out;
            k->out_aux = true;
            k->has_out = true;
        }
    }
    update_irq(k);
}

static void ctl_reply(struct i8042_dev *k, uint8_t v, bool aux)
{
    if (k->ctl_len < CTL_QUEUE) {
        k->ctl[k->ctl_len] = v;
        k->ctl_aux[k->ctl_len++] = aux;
    }
}

/* ---- the keyboard ---- */

static void kbd_defaults(struct ps2_kbd *kb)
{
    kb->typematic = TYPEMATIC_DEFAULT;
    kb->leds = 0;
}

static void kbd_power_on(struct ps2_kbd *kb)
{
    memset(kb, 0, sizeof(*kb));
    q_init(&kb->q, KBD_QUEUE);
    kb->scanning = true;
    kb->set = 2;
    kbd_defaults(kb);
}

static void kbd_reply(struct ps2_kbd *kb, const uint8_t *p, unsigned n)
{
    q_push(&kb->q, p, n, true);
}

static void kbd_ack(struct ps2_kbd *kb)
{
    static const uint8_t ack = PS2_ACK;
    kbd_reply(kb, &ack, 1);
}

static void held_clear(struct ps2_kbd *kb)
{
    memset(kb->held, 0, sizeof(kb->held));
}

/* A command byte from the guest; its answer is queued. */
static void kbd_write(struct i8042_dev *k, uint8_t v)
{
    struct ps2_kbd *kb = &k->kbd;
    uint8_t cmd = kb->pending;

    /* A parameter; a byte with bit 7 set is a new command instead. */
    if (cmd && !(v & 0x80)) {
        kb->pending = 0;
        if (cmd == 0xed) {
            kb->leds = v & 7;
        } else if (cmd == 0xf3) {
            kb->typematic = v;
        } else if (v == 0) { /* 0xF0 0: which set */
            uint8_t r[2] = {PS2_ACK, kb->set};
            kbd_reply(kb, r, 2);
            return;
        } else if (v == 1 || v == 2) {
            kb->set = v;
        } else if (v != 3) {
            uint8_t r = PS2_RESEND;
            kbd_reply(kb, &r, 1);
            return;
        } /* set 3 is not offered: the keyboard stays in its set, as F0 0 then tells */
        kbd_ack(kb);
        return;
    }
    kb->pending = 0;
    if (v != PS2_RESEND)
        q_clear(&kb->q); /* a command flushes what the keyboard had not sent */
    switch (v) {
    case 0xed: /* set LEDs */
    case 0xf0: /* scan code set */
    case 0xf3: /* typematic rate and delay */
        kb->pending = v;
        kbd_ack(kb);
        break;
    case PS2_ECHO:
        kbd_reply(kb, &v, 1);
        break;
    case 0xf2: { /* identify: an MF2 keyboard */
        static const uint8_t id[] = {PS2_ACK, 0xab, 0x83};
        kbd_reply(kb, id, sizeof(id));
        break;
    }
    case 0xf4: /* enable scanning */
        kb->scanning = true;
        kbd_ack(kb);
        break;
    case 0xf5: /* disable scanning, defaults */
        kbd_defaults(kb);
        kb->scanning = false;
        held_clear(kb);
        k->rep_key = 0;
        kbd_ack(kb);
        break;
    case 0xf6: /* defaults */
        kbd_defaults(kb);
        kbd_ack(kb);
        break;
    case 0xf7: /* set 3's key types: accepted, nothing to change in sets 1 and 2 */
    case 0xf8:
    case 0xf9:
    case 0xfa:
    case 0xfb:
    case 0xfc:
    case 0xfd:
        kbd_ack(kb);
        break;
    case PS2_RESEND:
        kbd_reply(kb, &kb->last, 1);
        break;
    case 0xff: { /* reset: self test passed */
        static const uint8_t r[] = {PS2_ACK, PS2_BAT_OK};
        kbd_power_on(kb);
        k->rep_key = 0;
        k->xlat_break = false;
        kbd_reply(kb, r, sizeof(r));
        break;
    }
    default: {
        uint8_t r = PS2_RESEND;
        kbd_reply(kb, &r, 1);
        break;
    }
    }
}

/* ---- typematic repeat ---- */

static void ts_add_ms(struct timespec *t, unsigned ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static unsigned rep_delay_ms(uint8_t t)
{
    return 250u * (1u + ((t >> 5) & 3u));
}

/* (8 + A) * 2^B * 4.17 ms: 33 ms (30 a second) to 500 ms (2 a second). */
static unsigned rep_period_ms(uint8_t t)
{
    return (8u + (t & 7u)) * (1u << ((t >> 3) & 3u)) * 417u / 100u;
}

static void *rep_thread(void *arg)
{
    struct i8042_dev *k = arg;
    pthread_mutex_lock(&k->lock);
    while (!k->rep_stop) {
        if (!k->rep_key) {
            pthread_cond_wait(&k->rep_cond, &k->lock);
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec < k->rep_next.tv_sec ||
            (now.tv_sec == k->rep_next.tv_sec && now.tv_nsec < k->rep_next.tv_nsec)) {
            pthread_cond_timedwait(&k->rep_cond, &k->lock, &k->rep_next);
            continue;
        }
        struct ps2_kbd *kb = &k->kbd;
        uint8_t seq[PS2_SEQ_MAX];
        unsigned n = ps2_key_sequence(k->rep_key, true, kb->set, seq);
        if (kb->scanning && !k->quiesced && q_push(&kb->q, seq, n, false))
            refill(k);
        k->rep_next = now;
        ts_add_ms(&k->rep_next, rep_period_ms(kb->typematic));
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

static void rep_arm(struct i8042_dev *k, uint32_t code)
{
    if (!k->rep_started) {
        int err = pthread_create(&k->rep_thread, NULL, rep_thread, k);
        if (err) {
            log_warn("i8042: no typematic repeat: %s", strerror(err));
            return;
        }
        k->rep_started = true;
    }
    k->rep_key = code;
    clock_gettime(CLOCK_MONOTONIC, &k->rep_next);
    ts_add_ms(&k->rep_next, rep_delay_ms(k->kbd.typematic));
    pthread_cond_signal(&k->rep_cond);
}

void i8042_key(struct i8042_dev *k, uint32_t code, bool pressed)
{
    if (!k || code >= 256 || !ps2_key_known(code))
        return;
    pthread_mutex_lock(&k->lock);
    struct ps2_kbd *kb = &k->kbd;
    uint8_t bit = (uint8_t)(1u << (code & 7));
    uint8_t seq[PS2_SEQ_MAX];
    if (pressed && kb->scanning) {
        unsigned n = ps2_key_sequence(code, true, kb->set, seq);
        q_push(&kb->q, seq, n, true);
        if (code != KEY_PAUSE)
            kb->held[code / 8] |= bit;
        if (ps2_key_repeats(code))
            rep_arm(k, code);
    } else if (!pressed && (kb->held[code / 8] & bit)) {
        kb->held[code / 8] &= (uint8_t)~bit;
        unsigned n = ps2_key_sequence(code, false, kb->set, seq);
        q_push(&kb->q, seq, n, true);
        if (k->rep_key == code)
            k->rep_key = 0;
    }
    refill(k);
    pthread_mutex_unlock(&k->lock);
}

/* ---- the mouse ---- */

static void mouse_defaults(struct ps2_mouse *m)
{
    m->rate = 100;
    m->res = 2; /* 4 counts/mm */
    m->scale21 = false;
    m->enabled = false;
    m->remote = false;
    m->dx = m->dy = m->dz = 0;
}

static void mouse_power_on(struct ps2_mouse *m)
{
    /* The pointer's position is the host's, kept across a reset. */
    bool have_pos = m->have_pos;
    int32_t px = m->px, py = m->py;
    memset(m, 0, sizeof(*m));
    q_init(&m->q, AUX_QUEUE);
    mouse_defaults(m);
    m->have_pos = have_pos, m->px = px, m->py = py;
}

static void mouse_reply(struct ps2_mouse *m, const uint8_t *p, unsigned n)
{
    q_push(&m->q, p, n, true);
}

static void mouse_ack(struct ps2_mouse *m)
{
    static const uint8_t ack = PS2_ACK;
    mouse_reply(m, &ack, 1);
}

static int32_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* One packet of at most 255 counts each way (9-bit two's complement). */
static unsigned mouse_packet(const struct ps2_mouse *m, int32_t dx, int32_t dy, int32_t dz,
                             uint8_t *p)
{
    p[0] = (uint8_t)(0x08 | (m->buttons & 7) | (dx < 0 ? 0x10 : 0) | (dy < 0 ? 0x20 : 0));
    p[1] = (uint8_t)(dx & 0xff);
    p[2] = (uint8_t)(dy & 0xff);
    if (m->id == 3) {
        p[3] = (uint8_t)(clamp(dz, -127, 127) & 0xff);
        return 4;
    }
    if (m->id == 4) {
        p[3] = (uint8_t)(clamp(dz, -8, 7) & 0x0f);
        return 4;
    }
    return 3;
}

/* Queue the motion (PS/2 axes: y up) as packets; the first one carries the wheel. */
static void mouse_stream(struct ps2_mouse *m, int32_t dx, int32_t dy, int32_t dz)
{
    uint8_t p[4];
    unsigned packets = 0;
    do {
        int32_t cx = clamp(dx, -255, 255), cy = clamp(dy, -255, 255);
        unsigned n = mouse_packet(m, cx, cy, dz, p);
        mouse_reply(m, p, n);
        dx -= cx, dy -= cy, dz = 0;
    } while ((dx || dy) && ++packets < 64);
}

static void mouse_rate(struct ps2_mouse *m, uint8_t rate)
{
    m->rate = rate;
    m->rates[0] = m->rates[1];
    m->rates[1] = m->rates[2];
    m->rates[2] = rate;
    /* IntelliMouse: 200, 100, 80 gives a wheel; then 200, 200, 80 five buttons (Explorer). */
    if (m->id == 0 && m->rates[0] == 200 && m->rates[1] == 100 && m->rates[2] == 80)
        m->id = 3;
    else if (m->id == 3 && m->rates[0] == 200 && m->rates[1] == 200 && m->rates[2] == 80)
        m->id = 4;
}

static void mouse_write(struct ps2_mouse *m, uint8_t v)
{
    if (m->wrap && v != 0xec && v != 0xff) {
        mouse_reply(m, &v, 1); /* wrap mode echoes */
        return;
    }
    if (m->pending) {
        uint8_t cmd = m->pending;
        m->pending = 0;
        if (cmd == 0xf3)
            mouse_rate(m, v);
        else
            m->res = v & 3;
        mouse_ack(m);
        return;
    }
    if (v != PS2_RESEND)
        q_clear(&m->q);
    switch (v) {
    case 0xff: { /* reset: self test passed, a plain mouse */
        static const uint8_t r[] = {PS2_ACK, PS2_BAT_OK, 0x00};
        mouse_power_on(m);
        mouse_reply(m, r, sizeof(r));
        break;
    }
    case PS2_RESEND:
        mouse_reply(m, &m->last, 1);
        break;
    case 0xf6:
        mouse_defaults(m);
        mouse_ack(m);
        break;
    case 0xf5:
        m->enabled = false;
        mouse_ack(m);
        break;
    case 0xf4:
        m->enabled = true;
        mouse_ack(m);
        break;
    case 0xf3: /* sample rate */
    case 0xe8: /* resolution */
        m->pending = v;
        mouse_ack(m);
        break;
    case 0xf2: {
        uint8_t r[2] = {PS2_ACK, m->id};
        mouse_reply(m, r, 2);
        break;
    }
    case 0xf0:
        m->remote = true;
        mouse_ack(m);
        break;
    case 0xee:
        m->wrap = true;
        mouse_ack(m);
        break;
    case 0xec:
        m->wrap = false;
        mouse_ack(m);
        break;
    case 0xeb: { /* read data: the motion since the last read */
        uint8_t r[5] = {PS2_ACK};
        unsigned n =
            mouse_packet(m, clamp(m->dx, -255, 255), clamp(m->dy, -255, 255), m->dz, r + 1);
        m->dx = m->dy = m->dz = 0;
        mouse_reply(m, r, n + 1);
        break;
    }
    case 0xea:
        m->remote = false;
        mouse_ack(m);
        break;
    case 0xe9: { /* status: mode, enable, scaling, buttons (left, middle, right), res, rate */
        uint8_t b = m->buttons;
        uint8_t s =
            (uint8_t)((m->remote ? 0x40 : 0) | (m->enabled ? 0x20 : 0) | (m->scale21 ? 0x10 : 0) |
                      (b & 1 ? 0x04 : 0) | (b & 4 ? 0x02 : 0) | (b & 2 ? 0x01 : 0));
        uint8_t r[4] = {PS2_ACK, s, m->res, m->rate};
        mouse_reply(m, r, 4);
        break;
    }
    case 0xe7:
        m->scale21 = true;
        mouse_ack(m);
        break;
    case 0xe6:
        m->scale21 = false;
        mouse_ack(m);
        break;
    default: {
        uint8_t r = PS2_RESEND;
        mouse_reply(m, &r, 1);
        break;
    }
    }
}

void i8042_pointer(struct i8042_dev *k, uint32_t x, uint32_t y, uint32_t buttons, uint32_t width,
                   uint32_t height, bool report)
{
    if (!k)
        return;
    if (x > 32767)
        x = 32767;
    if (y > 32767)
        y = 32767;
    if (width == 0 || width > 16384)
        width = 1280;
    if (height == 0 || height > 16384)
        height = 800;
    int32_t px = (int32_t)((uint64_t)x * width / 32768),
            py = (int32_t)((uint64_t)y * height / 32768);
    uint8_t b = buttons & 7;

    pthread_mutex_lock(&k->lock);
    struct ps2_mouse *m = &k->mouse;
    int32_t dx = m->have_pos ? px - m->px : 0, dy = m->have_pos ? m->py - py : 0;
    m->have_pos = true;
    m->px = px, m->py = py;
    bool streaming = m->enabled && !m->remote && !m->wrap;
    if (m->remote) {
        m->dx = clamp(m->dx + dx, -4096, 4096);
        m->dy = clamp(m->dy + dy, -4096, 4096);
        m->buttons = b;
    } else if (!streaming) {
        m->buttons = b;
    } else if (report && (dx || dy || b != m->buttons)) {
        m->buttons = b;
        mouse_stream(m, dx, dy, 0);
    } else if (!report && (m->buttons & ~b)) {
        m->buttons &= b; /* only releases reach a guest that reads the tablet */
        mouse_stream(m, 0, 0, 0);
    }
    refill(k);
    pthread_mutex_unlock(&k->lock);
}

void i8042_wheel(struct i8042_dev *k, int32_t dx, int32_t dy)
{
    (void)dx; /* no horizontal wheel on a PS/2 IntelliMouse */
    if (!k || dy == 0)
        return;
    pthread_mutex_lock(&k->lock);
    struct ps2_mouse *m = &k->mouse;
    if (m->id && m->enabled && !m->remote && !m->wrap) {
        mouse_stream(m, 0, 0, -clamp(dy, -127, 127)); /* the wheel counts down for up */
        refill(k);
    }
    pthread_mutex_unlock(&k->lock);
}

/* ---- the ports ---- */

static void command(struct i8042_dev *k, uint8_t cmd)
{
    k->pending = 0;
    if (cmd >= 0x20 && cmd < 0x40) {
        ctl_reply(k, cmd == CMD_READ_CTR ? k->ctr : 0, false);
        return;
    }
    if (cmd >= 0x60 && cmd < 0x80) {
        k->pending = cmd; /* 0x60: the command byte; the other RAM bytes are dropped */
        return;
    }
    if (cmd >= 0xf0) {
        if (!(cmd & 1))
            vm_request(k->vm, VM_REQ_RESET); /* pulse output port bit 0: the reset line */
        return;
    }
    switch (cmd) {
    case CMD_PASSWORD:
        ctl_reply(k, 0xf1, false); /* no password installed */
        break;
    case CMD_AUX_DIS:
        k->ctr |= CTR_AUXDIS;
        break;
    case CMD_AUX_EN:
        k->ctr &= (uint8_t)~CTR_AUXDIS;
        break;
    case CMD_AUX_TEST:
    case CMD_KBD_TEST:
        ctl_reply(k, 0x00, false); /* the clock and data lines are fine */
        break;
    case CMD_SELF_TEST:
        ctl_reply(k, 0x55, false);
        break;
    case CMD_KBD_DIS:
        k->ctr |= CTR_KBDDIS;
        break;
    case CMD_KBD_EN:
        k->ctr &= (uint8_t)~CTR_KBDDIS;
        break;
    case CMD_READ_INP:
    case CMD_READ_TEST:
        ctl_reply(k, 0x00, false);
        break;
    case CMD_READ_OUTP: {
        uint8_t v = (uint8_t)(k->outport & ~0x30);
        if (k->has_out)
            v |= k->out_aux ? 0x20 : 0x10;
        ctl_reply(k, v, false);
        break;
    }
    case CMD_WRITE_OUTP:
    case CMD_WRITE_KOBF:
    case CMD_WRITE_AOBF:
    case CMD_WRITE_AUX:
        k->pending = cmd;
        break;
    default:
        break; /* others (A20 gates, the password, vendor commands): nothing to do */
    }
}

static void data_write(struct i8042_dev *k, uint8_t v)
{
    uint8_t cmd = k->pending;
    k->pending = 0;
    if (cmd == CMD_WRITE_CTR) {
        k->ctr = v & 0x7f;
    } else if (cmd > CMD_WRITE_CTR && cmd < 0x80) {
        /* the controller's other RAM: not kept */
    } else if (cmd == CMD_WRITE_OUTP) {
        k->outport = v;
        if (!(v & 1))
            vm_request(k->vm, VM_REQ_RESET); /* output port bit 0 is the CPU reset line */
    } else if (cmd == CMD_WRITE_KOBF || cmd == CMD_WRITE_AOBF) {
        ctl_reply(k, v, cmd == CMD_WRITE_AOBF);
    } else if (cmd == CMD_WRITE_AUX) {
        mouse_write(&k->mouse, v);
    } else {
        kbd_write(k, v);
    }
}

static void i8042_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write,
                     bool is_cmd_port)
{
    struct i8042_dev *k = opaque;

    (void)off;
    if (len != 1) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    pthread_mutex_lock(&k->lock);
    if (is_cmd_port && is_write) {
        k->last_cmd = true;
        command(k, data[0]);
    } else if (is_cmd_port) {
        data[0] = (uint8_t)(STS_KEYL | (k->ctr & CTR_SYS) | (k->last_cmd ? STS_CMD : 0) |
                            (k->has_out ? STS_OBF : 0) | (k->has_out && k->out_aux ? STS_AUXB : 0));
    } else if (is_write) {
        k->last_cmd = false;
        data_write(k, data[0]);
    } else {
        data[0] = k->out; /* an empty buffer reads its last byte again */
        k->has_out = false;
        update_irq(k); /* the line drops: the next byte is a new edge */
    }
    refill(k);
    pthread_mutex_unlock(&k->lock);
}

static void data_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    i8042_io(opaque, off, data, len, is_write, false);
}

static void cmd_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    i8042_io(opaque, off, data, len, is_write, true);
}

/* ---- the device ---- */

static void power_on(struct i8042_dev *k)
{
    k->ctr = CTR_POWER_ON; /* keyboard interrupt, system flag, translation */
    k->pending = 0;
    k->outport = OUTP_POWER_ON;
    k->last_cmd = false;
    k->has_out = false;
    k->out_aux = false;
    k->out = 0;
    k->ctl_len = 0;
    k->xlat_break = false;
    k->rep_key = 0;
    kbd_power_on(&k->kbd);
    mouse_power_on(&k->mouse);
}

void i8042_reset(struct vm *vm)
{
    struct i8042_dev *k = vm->i8042;
    if (!k)
        return;
    pthread_mutex_lock(&k->lock);
    power_on(k);
    k->mouse.have_pos = false;
    /* Both lines low (the device is quiesced: update_irq would wait for resume). */
    if (k->kbd_line)
        irq_line(&vm->irq, KBD_IRQ, false);
    if (k->aux_line)
        irq_line(&vm->irq, AUX_IRQ, false);
    k->kbd_line = k->aux_line = false;
    pthread_mutex_unlock(&k->lock);
}

/* Input that arrives meanwhile waits in the devices' queues; no line moves. */
void i8042_quiesce(struct vm *vm)
{
    struct i8042_dev *k = vm->i8042;
    pthread_mutex_lock(&k->lock);
    k->quiesced = true;
    pthread_mutex_unlock(&k->lock);
}

void i8042_resume(struct vm *vm)
{
    struct i8042_dev *k = vm->i8042;
    pthread_mutex_lock(&k->lock);
    k->quiesced = false;
    refill(k);
    pthread_mutex_unlock(&k->lock);
}

/*
 * The controller (command byte, the command waiting for its data, the
 * status and output buffer), then its answers waiting, the keyboard and the
 * mouse with their queues. The pointer's last position is the host's and
 * is not kept; the typematic repeat stops (hv-switch sends the release).
 */
int i8042_save(struct vm *vm, struct state_out *out)
{
    struct i8042_dev *k = vm->i8042;

    pthread_mutex_lock(&k->lock);
    state_put_u8(out, k->ctr);
    state_put_u8(out, k->pending);
    state_put_u8(out, k->last_cmd ? STS_CMD : 0);
    state_put_bool(out, k->has_out);
    state_put_u8(out, k->out);
    state_put_bool(out, k->has_out && k->out_aux);
    state_put_u8(out, k->outport);
    state_put_bool(out, k->xlat_break);
    state_put_u8(out, k->ctl_len);
    for (unsigned i = 0; i < k->ctl_len; i++) {
        state_put_u8(out, k->ctl[i]);
        state_put_bool(out, k->ctl_aux[i]);
    }
    const struct ps2_kbd *kb = &k->kbd;
    q_save(&kb->q, out);
    state_put_u8(out, kb->pending);
    state_put_bool(out, kb->scanning);
    state_put_u8(out, kb->set);
    state_put_u8(out, kb->leds);
    state_put_u8(out, kb->typematic);
    state_put_u8(out, kb->last);
    state_put_bytes(out, kb->held, sizeof(kb->held));
    const struct ps2_mouse *m = &k->mouse;
    q_save(&m->q, out);
    state_put_u8(out, m->pending);
    state_put_bool(out, m->enabled);
    state_put_bool(out, m->remote);
    state_put_bool(out, m->wrap);
    state_put_bool(out, m->scale21);
    state_put_u8(out, m->rate);
    state_put_u8(out, m->res);
    state_put_u8(out, m->id);
    state_put_bytes(out, m->rates, sizeof(m->rates));
    state_put_u8(out, m->buttons);
    state_put_u8(out, m->last);
    state_put_u32(out, (uint32_t)m->dx);
    state_put_u32(out, (uint32_t)m->dy);
    state_put_u32(out, (uint32_t)m->dz);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

static bool pending_ok(uint8_t p)
{
    return p == 0 || (p >= CMD_WRITE_CTR && p < 0x80) || p == CMD_WRITE_OUTP ||
           p == CMD_WRITE_KOBF || p == CMD_WRITE_AOBF || p == CMD_WRITE_AUX;
}

static int load_devices(struct i8042_dev *n, struct state_in *in)
{
    n->out_aux = state_get_bool(in);
    n->outport = state_get_u8(in);
    n->xlat_break = state_get_bool(in);
    n->ctl_len = state_get_u8(in);
    if (state_in_ok(in) && n->ctl_len > CTL_QUEUE)
        return state_in_fail(in, "the controller has %u answers waiting, more than %u", n->ctl_len,
                             CTL_QUEUE);
    for (unsigned i = 0; i < n->ctl_len && state_in_ok(in); i++) {
        n->ctl[i] = state_get_u8(in);
        n->ctl_aux[i] = state_get_bool(in);
    }
    struct ps2_kbd *kb = &n->kbd;
    if (q_load(&kb->q, in, "keyboard") < 0)
        return -1;
    kb->pending = state_get_u8(in);
    kb->scanning = state_get_bool(in);
    kb->set = state_get_u8(in);
    kb->leds = state_get_u8(in);
    kb->typematic = state_get_u8(in);
    kb->last = state_get_u8(in);
    state_get_bytes(in, kb->held, sizeof(kb->held));
    if (!state_in_ok(in))
        return -1;
    if (kb->pending && kb->pending != 0xed && kb->pending != 0xf0 && kb->pending != 0xf3)
        return state_in_fail(in, "the keyboard waits for the parameter of %#x, which has none",
                             kb->pending);
    if (kb->set != 1 && kb->set != 2)
        return state_in_fail(in, "the keyboard is in scan code set %u", kb->set);
    if (kb->leds > 7 || kb->typematic > 0x7f)
        return state_in_fail(in, "the keyboard's LEDs %#x or typematic byte %#x are out of range",
                             kb->leds, kb->typematic);
    struct ps2_mouse *m = &n->mouse;
    if (q_load(&m->q, in, "mouse") < 0)
        return -1;
    m->pending = state_get_u8(in);
    m->enabled = state_get_bool(in);
    m->remote = state_get_bool(in);
    m->wrap = state_get_bool(in);
    m->scale21 = state_get_bool(in);
    m->rate = state_get_u8(in);
    m->res = state_get_u8(in);
    m->id = state_get_u8(in);
    state_get_bytes(in, m->rates, sizeof(m->rates));
    m->buttons = state_get_u8(in);
    m->last = state_get_u8(in);
    m->dx = (int32_t)state_get_u32(in);
    m->dy = (int32_t)state_get_u32(in);
    m->dz = (int32_t)state_get_u32(in);
    if (!state_in_ok(in))
        return -1;
    if (m->pending && m->pending != 0xf3 && m->pending != 0xe8)
        return state_in_fail(in, "the mouse waits for the parameter of %#x, which has none",
                             m->pending);
    if (m->id != 0 && m->id != 3 && m->id != 4)
        return state_in_fail(in, "the mouse has the ID %u", m->id);
    if (m->res > 3 || m->buttons > 7)
        return state_in_fail(in, "the mouse's resolution %u or buttons %#x are out of range",
                             m->res, m->buttons);
    if (m->dx < -4096 || m->dx > 4096 || m->dy < -4096 || m->dy > 4096 || m->dz < -127 ||
        m->dz > 127)
        return state_in_fail(in, "the mouse holds a motion of (%d, %d, %d)", m->dx, m->dy, m->dz);
    return 0;
}

int i8042_load(struct vm *vm, struct state_in *in)
{
    struct i8042_dev *k = vm->i8042;
    bool v1 = in->len == SAVE_V1_LEN; /* saved before the keyboard existed: they power on */

    /* Everything is read into a copy first, and applied only when all of it is good. */
    struct i8042_dev *n = malloc(sizeof(*n));
    if (!n)
        return state_in_fail(in, "no memory to load the controller");
    pthread_mutex_lock(&k->lock);
    memcpy(n, k, sizeof(*n));
    pthread_mutex_unlock(&k->lock);
    power_on(n);
    n->ctr = state_get_u8(in);
    n->pending = state_get_u8(in);
    uint8_t status = state_get_u8(in);
    n->has_out = state_get_bool(in);
    n->out = state_get_u8(in);
    int ret = state_in_ok(in) ? 0 : -1;
    if (ret == 0 && !pending_ok(n->pending))
        ret = state_in_fail(in, "the controller waits for the data of command %#x, which has none",
                            n->pending);
    if (ret == 0 && (status & ~STS_CMD))
        ret = state_in_fail(in, "the status register holds %#x", status);
    if (ret == 0 && (n->ctr & 0x80))
        ret = state_in_fail(in, "the command byte %#x has its reserved bit 7 set", n->ctr);
    if (ret == 0 && !v1)
        ret = load_devices(n, in);
    if (ret == 0) {
        pthread_mutex_lock(&k->lock);
        k->ctr = n->ctr;
        k->pending = n->pending;
        k->last_cmd = status & STS_CMD;
        k->has_out = n->has_out;
        k->out = n->out;
        k->out_aux = n->out_aux && n->has_out;
        k->outport = n->outport;
        k->xlat_break = n->xlat_break;
        k->ctl_len = n->ctl_len;
        memcpy(k->ctl, n->ctl, sizeof(k->ctl));
        memcpy(k->ctl_aux, n->ctl_aux, sizeof(k->ctl_aux));
        k->kbd = n->kbd;
        bool have_pos = k->mouse.have_pos;
        int32_t px = k->mouse.px, py = k->mouse.py;
        k->mouse = n->mouse;
        k->mouse.have_pos = have_pos, k->mouse.px = px, k->mouse.py = py;
        k->rep_key = 0;
        /* KVM's line state is new: a full buffer raises its line again. */
        k->kbd_line = k->aux_line = false;
        update_irq(k);
        pthread_mutex_unlock(&k->lock);
    }
    free(n);
    return ret;
}

int i8042_init(struct vm *vm)
{
    struct i8042_dev *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->vm = vm;
    power_on(k);
    vm->i8042 = k;
    pthread_mutex_init(&k->lock, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC); /* the repeat's deadlines */
    pthread_cond_init(&k->rep_cond, &a);
    pthread_condattr_destroy(&a);
    int ret = io_bus_register(&vm->pio, I8042_DATA, 1, data_io, k);
    if (ret == 0)
        ret = io_bus_register(&vm->pio, I8042_CMD, 1, cmd_io, k);
    return ret;
}

/* vCPUs and the display connection are stopped: nothing reaches the device any more. */
void i8042_destroy(struct vm *vm)
{
    struct i8042_dev *k = vm->i8042;
    if (!k)
        return;
    pthread_mutex_lock(&k->lock);
    k->rep_stop = true;
    pthread_cond_signal(&k->rep_cond);
    pthread_mutex_unlock(&k->lock);
    if (k->rep_started)
        pthread_join(k->rep_thread, NULL);
    pthread_cond_destroy(&k->rep_cond);
    pthread_mutex_destroy(&k->lock);
    free(k);
    vm->i8042 = NULL;
}

void i8042_irq_lines(struct i8042_dev *k, bool *kbd, bool *aux)
{
    pthread_mutex_lock(&k->lock);
    *kbd = k->kbd_line;
    *aux = k->aux_line;
    pthread_mutex_unlock(&k->lock);
}

/* ---- ACPI ---- */

static void aml_hid(struct aml *a, const char *eisaid)
{
    aml_name(a, "_HID");
    aml_eisaid(a, eisaid);
}

void i8042_aml(struct aml *dsdt)
{
    /* IO(Decode16, 0x60, 0x60, 1, 1), IO(Decode16, 0x64, 0x64, 1, 1), IRQNoFlags() {1} */
    static const uint8_t kbd_crs[] = {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01,
                                      0x01, 0x47, 0x01, 0x64, 0x00, 0x64, 0x00,
                                      0x01, 0x01, 0x22, 0x02, 0x00, 0x79, 0x00};
    /* IRQNoFlags() {12} */
    static const uint8_t mou_crs[] = {0x22, 0x00, 0x10, 0x79, 0x00};

    size_t dev = aml_device_open(dsdt, "KBD");
    aml_hid(dsdt, "PNP0303");
    aml_name(dsdt, "_CRS");
    aml_buffer(dsdt, kbd_crs, sizeof(kbd_crs));
    aml_close(dsdt, dev);
    dev = aml_device_open(dsdt, "MOU");
    aml_hid(dsdt, "PNP0F13");
    aml_name(dsdt, "_CRS");
    aml_buffer(dsdt, mou_crs, sizeof(mou_crs));
    aml_close(dsdt, dev);
}
