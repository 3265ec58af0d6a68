/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-input (virtio 1.2 §5.8): a keyboard and an absolute tablet. The
 * pure part (config queries, the bounded event queue, turning display
 * events into evdev reports) is apart from the device so that unit tests
 * drive it without a transport.
 */
#ifndef HV_VMM_VIRTIO_INPUT_H
#define HV_VMM_VIRTIO_INPUT_H

#include <linux/virtio_input.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue.h"

struct vm;

enum input_kind {
    INPUT_KEYBOARD,
    INPUT_TABLET,
};

#define INPUT_QUEUE_EVENTS 512 /* pending events when the guest does not read */
#define INPUT_ABS_MAX      32767
#define INPUT_CONFIG_LEN   ((uint32_t)sizeof(struct virtio_input_config))

struct input_state {
    enum input_kind kind;
    const char *name;
    pthread_mutex_t lock; /* the queue: display thread in, device thread out */
    struct virtio_input_event ev[INPUT_QUEUE_EVENTS];
    unsigned head, count;
    uint32_t buttons; /* DISP_BTN_* held, as last reported */
    bool logged_drop;
};

void input_state_init(struct input_state *s, enum input_kind kind, const char *name);

/* The config answer for (select, subsel); size 0 when there is none. */
void input_config_query(enum input_kind kind, uint8_t select, uint8_t subsel,
                        struct virtio_input_config *cfg);

/*
 * Queue one report: n events then EV_SYN. All or nothing: a report that does
 * not fit is dropped whole (never split). Returns false when dropped.
 */
bool input_queue_report(struct input_state *s, const struct virtio_input_event *ev, unsigned n);

/* Display events turned into reports; codes the device does not offer are ignored. */
bool input_key(struct input_state *s, uint32_t code, bool pressed);
bool input_pointer(struct input_state *s, uint32_t x, uint32_t y, uint32_t buttons);
bool input_wheel(struct input_state *s, int32_t dx, int32_t dy);
/* Forget everything pending (device reset). */
void input_flush(struct input_state *s);

/*
 * Save / restore of what is pending (state.h): the buttons held and the
 * queued events, oldest first. Load replaces the queue; it refuses a count
 * past INPUT_QUEUE_EVENTS or unknown buttons. 0, or -1 after state_in_fail().
 */
struct state_in;
struct state_out;
void input_state_save(struct input_state *s, struct state_out *out);
int input_state_load(struct input_state *s, struct state_in *in);

/*
 * Put the next pending event into one eventq chain. Returns the bytes written
 * (0: the buffer was too small and the event is lost), or -1 when nothing is
 * pending.
 */
int64_t input_fill_chain(struct input_state *s, struct vq_chain *c);

/* The devices (input.c). */
struct virtio_input;
struct virtio_input *virtio_input_create(struct vm *vm, enum input_kind kind);
/* Thread-safe: queue a report and wake the device. */
void virtio_input_key(struct virtio_input *d, uint32_t code, bool pressed);
void virtio_input_pointer(struct virtio_input *d, uint32_t x, uint32_t y, uint32_t buttons);
void virtio_input_wheel(struct virtio_input *d, int32_t dx, int32_t dy);
/* Thread-safe: whether the guest's driver runs the device (DRIVER_OK, eventq enabled). */
bool virtio_input_active(struct virtio_input *d);

#endif
