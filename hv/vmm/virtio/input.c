// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The virtio-input devices (virtio 1.2 §5.8): queue 0 (eventq) takes the
 * reports the display connection queues (input_core.c), queue 1 (statusq,
 * LEDs) is drained and ignored. Reports come from another thread: they are
 * queued under the state's lock and an eventfd wakes the device thread.
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../vm.h"
#include "input.h"
#include "log.h"
#include "state.h"
#include "virtio.h"

#define INPUT_EVENTQ  0
#define INPUT_STATUSQ 1

struct virtio_input {
    struct virtio_dev vd;
    struct input_state st;
    int wake_fd;
    uint8_t select, subsel;
};

static int64_t event_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd;
    int64_t r = input_fill_chain(arg, c);
    return r < 0 ? VIRTIO_CHAIN_RETRY : r;
}

static int64_t status_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd, (void)c, (void)arg;
    return 0; /* LED changes: the host keyboard's LEDs are hv-switch's business */
}

static void deliver(struct virtio_input *d)
{
    if (virtio_ready(&d->vd) && d->vd.queues[INPUT_EVENTQ].enabled)
        virtio_serve_queue(&d->vd, INPUT_EVENTQ, event_chain, &d->st);
}

static void input_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_input *d = vd->priv;
    if (q == INPUT_EVENTQ)
        deliver(d);
    else if (q == INPUT_STATUSQ)
        virtio_serve_queue(vd, q, status_chain, NULL);
}

static void wake_event(struct virtio_dev *vd, int fd, uint32_t events, void *arg)
{
    (void)vd, (void)events;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) == sizeof(v))
        deliver(arg);
}

static void refresh_config(struct virtio_input *d)
{
    struct virtio_input_config cfg;
    input_config_query(d->st.kind, d->select, d->subsel, &cfg);
    memcpy(d->vd.config, &cfg, sizeof(cfg));
}

/* The driver selects a query by writing select (byte 0) and subsel (byte 1). */
static void input_config_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data,
                               uint32_t len)
{
    struct virtio_input *d = vd->priv;
    for (uint32_t i = 0; i < len; i++) {
        if (off + i == 0)
            d->select = data[i];
        else if (off + i == 1)
            d->subsel = data[i];
    }
    refresh_config(d);
}

static void input_reset(struct virtio_dev *vd)
{
    struct virtio_input *d = vd->priv;
    input_flush(&d->st);
    d->select = d->subsel = 0;
    refresh_config(d);
}

/*
 * Ours: the config query the driver selected and the events it has not
 * read yet. Held chains there are none: an event buffer is taken only when
 * an event fills it (VIRTIO_CHAIN_RETRY otherwise). Resume kicks the eventq,
 * which delivers what was queued.
 */
static int input_save(struct virtio_dev *vd, struct state_out *out)
{
    struct virtio_input *d = vd->priv;
    state_put_u8(out, d->select);
    state_put_u8(out, d->subsel);
    input_state_save(&d->st, out);
    return 0;
}

static int input_load(struct virtio_dev *vd, struct state_in *in)
{
    struct virtio_input *d = vd->priv;
    uint8_t select = state_get_u8(in), subsel = state_get_u8(in);
    if (input_state_load(&d->st, in) < 0)
        return -1;
    d->select = select;
    d->subsel = subsel;
    refresh_config(d); /* the answer is ours to compute, not the file's */
    return 0;
}

static const struct virtio_ops input_ops = {
    .queue_notify = input_notify,
    .save = input_save,
    .load = input_load,
    .reset = input_reset,
    .config_write = input_config_write,
};

struct virtio_input *virtio_input_create(struct vm *vm, enum input_kind kind)
{
    struct virtio_input *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    const char *name = kind == INPUT_KEYBOARD ? "virtio-keyboard" : "virtio-tablet";
    input_state_init(&d->st, kind, name);
    d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int ret = d->wake_fd < 0 ? -errno : 0;
    if (!ret)
        ret = virtio_dev_init(&d->vd, vm, name, VIRTIO_ID_INPUT, 2, 64, 0, INPUT_CONFIG_LEN,
                              &input_ops, d);
    if (!ret) {
        d->vd.pci.class_code = 0x098000; /* input device, other */
        refresh_config(d);
        ret = virtio_add_fd(&d->vd, d->wake_fd, EPOLLIN, wake_event, d);
        if (!ret)
            ret = virtio_dev_start(&d->vd);
        if (ret)
            virtio_dev_destroy(&d->vd);
    }
    if (ret) {
        log_err("%s: cannot create the device: %s", name, strerror(-ret));
        if (d->wake_fd >= 0)
            close(d->wake_fd);
        free(d);
        return NULL;
    }
    return d;
}

static void wake(struct virtio_input *d)
{
    uint64_t one = 1;
    if (write(d->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("%s: cannot wake the device: %s", d->vd.name, strerror(errno));
}

void virtio_input_key(struct virtio_input *d, uint32_t code, bool pressed)
{
    if (input_key(&d->st, code, pressed))
        wake(d);
}

void virtio_input_pointer(struct virtio_input *d, uint32_t x, uint32_t y, uint32_t buttons)
{
    if (input_pointer(&d->st, x, y, buttons))
        wake(d);
}

void virtio_input_wheel(struct virtio_input *d, int32_t dx, int32_t dy)
{
    if (input_wheel(&d->st, dx, dy))
        wake(d);
}

bool virtio_input_active(struct virtio_input *d)
{
    uint8_t status = __atomic_load_n(&d->vd.status, __ATOMIC_ACQUIRE);
    return (status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           __atomic_load_n(&d->vd.queues[INPUT_EVENTQ].enabled, __ATOMIC_ACQUIRE);
}
