// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The connection to hv-switch (docs/display-protocol.md). A thread of its
 * own connects (again every second while hv-switch is away), reads input
 * events and hands them on; the GPU's thread sends scanouts and damage
 * through display_scanout()/display_damage(), which never block: a damage
 * (or a scanout) that does not fit in the socket buffer is remembered, and
 * sent whole as soon as the socket has room again (the thread waits for
 * that too), or widened into the next one if that comes first. A guest
 * that has finished drawing sends no next one: without the wait, the last
 * rows it drew would never reach the panel.
 */
#include "display.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "device.h"
#include "devices.h"
#include "dgram.h"
#include "hw/bochs_vbe.h"
#include "hw/i8042.h"
#include "log.h"
#include "util.h"
#include "virtio/gpu.h"
#include "virtio/input.h"
#include "vm.h"

#define RECONNECT_MS 1000

struct display {
    struct device dev; /* the connection to hv-switch, on the VM's device list */
    struct display_config cfg;
    struct display_input in;
    void *owned; /* freed after the thread stopped (--display's input fan-out) */
    pthread_t thread;
    int stop_fd;
    int wake_fd; /* a send did not fit: the thread waits for room (POLLOUT) from now on */

    pthread_mutex_t lock; /* everything below */
    int sock;             /* -1 while disconnected */
    bool welcomed;
    int surface_fd; /* our dup of the scanout memfd, -1 if none */
    uint32_t width, height, stride;
    uint64_t offset;
    bool blanked;       /* BLANK sent (or to send): no surface at hv-switch */
    bool surface_sent;  /* hv-switch has our current surface */
    bool damage_lost;   /* a damage did not fit: send the whole surface next time */
    bool logged_absent; /* "not reachable" said once per outage */
};

/* ---- the command-line spec ---- */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n >= DISP_NAME_MAX || s[0] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

static int parse_option(char *opt, struct display_config *cfg, char *err, size_t errlen)
{
    char *val = strchr(opt, '=');
    if (val)
        *val++ = '\0';
    char *end;
    if (!strcmp(opt, "uivm") && !val) {
        cfg->uivm = true;
    } else if (!strcmp(opt, "name") && val) {
        if (!name_ok(val))
            return hv_fail(err, errlen,
                           "--display name=%s: a name is 1 to 31 printable ASCII characters, "
                           "not starting with a space",
                           val);
        snprintf(cfg->name, sizeof(cfg->name), "%s", val);
    } else if ((!strcmp(opt, "colour") || !strcmp(opt, "color")) && val) {
        errno = 0;
        unsigned long c = strtoul(val, &end, 16);
        if (strlen(val) != 6 || *end || errno || c > 0xffffff)
            return hv_fail(err, errlen, "--display colour=%s: give six hex digits RRGGBB", val);
        cfg->colour = (uint32_t)c;
    } else if (!strcmp(opt, "slot") && val) {
        uint64_t v;
        if (parse_uint(val, 0, 9, &v) < 0)
            return hv_fail(err, errlen, "--display slot=%s: a slot is 0 (any) to 9", val);
        cfg->slot = (uint32_t)v;
    } else if (!strcmp(opt, "gpu") && val) {
        if (!strcmp(val, "virtio"))
            cfg->gpu = DISPLAY_GPU_VIRTIO;
        else if (!strcmp(val, "bochs"))
            cfg->gpu = DISPLAY_GPU_BOCHS;
        else
            return hv_fail(err, errlen, "--display gpu=%s: give virtio or bochs", val);
    } else if (!strcmp(opt, "size") && val) {
        unsigned long w = strtoul(val, &end, 10), h = 0;
        if (*end == 'x')
            h = strtoul(end + 1, &end, 10);
        if (*end || w < 64 || h < 64 || w > 4096 || h > 4096)
            return hv_fail(err, errlen, "--display size=%s: give WxH, each from 64 to 4096", val);
        cfg->width = (uint32_t)w;
        cfg->height = (uint32_t)h;
    } else {
        return hv_fail(err, errlen,
                       "--display: unknown option '%s'; the options are name=N, colour=RRGGBB, "
                       "slot=K, uivm, size=WxH and gpu=virtio|bochs",
                       opt);
    }
    return 0;
}

int display_parse(const char *spec, const char *default_name, struct display_config *cfg, char *err,
                  size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->width = GPU_DEFAULT_WIDTH;
    cfg->height = GPU_DEFAULT_HEIGHT;
    cfg->colour = 0x808080;
    snprintf(cfg->name, sizeof(cfg->name), "%s",
             default_name && name_ok(default_name) ? default_name : "vm");
    char buf[512];
    if (!spec || strlen(spec) >= sizeof(buf))
        return hv_fail(err, errlen,
                       "--display needs a socket path, as in --display "
                       "/run/hv/switch.sock,name=work,colour=3366ff");
    strcpy(buf, spec);
    char *save, *path = strtok_r(buf, ",", &save);
    if (!path || spec[0] == ',' || strlen(path) >= sizeof(cfg->socket))
        return hv_fail(err, errlen, "--display %s: the socket path is missing or too long", spec);
    strcpy(cfg->socket, path);
    for (char *opt; (opt = strtok_r(NULL, ",", &save));)
        if (parse_option(opt, cfg, err, errlen) < 0)
            return -1;
    return 0;
}

/* ---- sending (lock held) ---- */

static void disconnect(struct display *d, const char *why)
{
    if (d->sock < 0)
        return;
    log_warn("display: connection to hv-switch lost (%s); reconnecting", why);
    close(d->sock);
    d->sock = -1;
    d->welcomed = false;
    d->surface_sent = false;
}

/* 0, or -1 when the message did not fit (EAGAIN); a broken connection is closed. */
static int send_msg(struct display *d, const void *msg, size_t len, int fd)
{
    if (d->sock < 0)
        return -1;
    if (dgram_send(d->sock, msg, len, fd, MSG_DONTWAIT) == (ssize_t)len)
        return 0;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
        disconnect(d, strerror(errno));
    } else {
        uint64_t one = 1;
        (void)!write(d->wake_fd, &one, sizeof(one));
    }
    return -1;
}

/* Bring hv-switch up to date: the surface (whole), or BLANK. */
static void sync_surface(struct display *d)
{
    if (d->sock < 0 || d->surface_sent)
        return;
    if (d->blanked || d->surface_fd < 0) {
        struct disp_blank b = {DISP_BLANK};
        if (d->blanked)
            send_msg(d, &b, sizeof(b), -1);
        d->surface_sent = true; /* nothing more to send until a new surface */
        return;
    }
    struct disp_scanout s = {.type = DISP_SCANOUT,
                             .width = d->width,
                             .height = d->height,
                             .stride = d->stride,
                             .format = DISP_FORMAT_XRGB8888,
                             .offset = d->offset};
    if (send_msg(d, &s, sizeof(s), d->surface_fd) == 0) {
        d->surface_sent = true;
        d->damage_lost = false;
    }
}

void display_scanout(struct display *d, int fd, uint32_t width, uint32_t height, uint32_t stride)
{
    display_scanout_at(d, fd, 0, width, height, stride);
}

void display_scanout_at(struct display *d, int fd, uint64_t offset, uint32_t width, uint32_t height,
                        uint32_t stride)
{
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0) {
        log_warn("display: cannot keep the scanout: %s", strerror(errno));
        return;
    }
    pthread_mutex_lock(&d->lock);
    if (d->surface_fd >= 0)
        close(d->surface_fd);
    d->surface_fd = nfd;
    d->width = width, d->height = height, d->stride = stride;
    d->offset = offset;
    d->blanked = false;
    d->surface_sent = false;
    sync_surface(d);
    pthread_mutex_unlock(&d->lock);
}

/* Something did not fit earlier and waits for room in the socket. Lock held. */
static bool pending(const struct display *d)
{
    return d->sock >= 0 && (!d->surface_sent || (d->damage_lost && d->surface_fd >= 0));
}

/* The socket has room: what did not fit, whole. Lock held. */
static void send_pending(struct display *d)
{
    if (!d->surface_sent) {
        sync_surface(d);
    } else if (d->damage_lost && d->surface_fd >= 0) {
        struct disp_damage m = {DISP_DAMAGE, {0, 0, d->width, d->height}};
        d->damage_lost = send_msg(d, &m, sizeof(m), -1) < 0;
    }
}

void display_damage(struct display *d, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    pthread_mutex_lock(&d->lock);
    if (d->blanked) {
        d->blanked = false; /* the guest draws again on the same surface */
        d->surface_sent = false;
    }
    if (!d->surface_sent) {
        sync_surface(d);
    } else if (d->surface_fd >= 0 && d->sock >= 0) {
        if (d->damage_lost)
            x = y = 0, w = d->width, h = d->height;
        struct disp_damage m = {DISP_DAMAGE, {x, y, w, h}};
        d->damage_lost = send_msg(d, &m, sizeof(m), -1) < 0;
    }
    pthread_mutex_unlock(&d->lock);
}

void display_blank(struct display *d)
{
    pthread_mutex_lock(&d->lock);
    d->blanked = true;
    d->surface_sent = false;
    sync_surface(d);
    pthread_mutex_unlock(&d->lock);
}

void display_size(struct display *d, uint32_t *width, uint32_t *height)
{
    pthread_mutex_lock(&d->lock);
    bool surface = d->surface_fd >= 0 && d->width && d->height;
    *width = surface ? d->width : d->cfg.width;
    *height = surface ? d->height : d->cfg.height;
    pthread_mutex_unlock(&d->lock);
}

bool display_connected(struct display *d)
{
    pthread_mutex_lock(&d->lock);
    bool ok = d->welcomed;
    pthread_mutex_unlock(&d->lock);
    return ok;
}

/* ---- the connection thread ---- */

static void try_connect(struct display *d)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, d->cfg.socket, sizeof(a.sun_path));
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (!d->logged_absent)
            log_info("display: hv-switch is not reachable at %s (%s); trying every second",
                     d->cfg.socket, strerror(errno));
        d->logged_absent = true;
        if (s >= 0)
            close(s);
        return;
    }
    struct disp_hello h = {.type = DISP_HELLO,
                           .version = DISP_VERSION,
                           .flags = d->cfg.uivm ? DISP_HELLO_UIVM : 0,
                           .slot = d->cfg.slot,
                           .colour = d->cfg.colour};
    memcpy(h.name, d->cfg.name, sizeof(h.name));
    pthread_mutex_lock(&d->lock);
    d->sock = s;
    d->surface_sent = false;
    if (send_msg(d, &h, sizeof(h), -1) == 0)
        sync_surface(d);
    pthread_mutex_unlock(&d->lock);
    d->logged_absent = false;
}

static void handle(struct display *d, const uint8_t *buf, size_t len)
{
    uint32_t type;
    memcpy(&type, buf, sizeof(type));
    const struct display_input *in = &d->in;
    if (type == DISP_WELCOME && len == sizeof(struct disp_welcome)) {
        struct disp_welcome w;
        memcpy(&w, buf, sizeof(w));
        log_info("display: hv-switch took vm '%s', slot %d", d->cfg.name,
                 w.slot == DISP_NO_SLOT ? -1 : (int)w.slot);
        pthread_mutex_lock(&d->lock);
        d->welcomed = true;
        pthread_mutex_unlock(&d->lock);
    } else if (type == DISP_KEY && len == sizeof(struct disp_key)) {
        struct disp_key k;
        memcpy(&k, buf, sizeof(k));
        if (in->key)
            in->key(in->ctx, k.code, k.pressed != 0);
    } else if (type == DISP_POINTER && len == sizeof(struct disp_pointer)) {
        struct disp_pointer p;
        memcpy(&p, buf, sizeof(p));
        if (in->pointer)
            in->pointer(in->tablet_ctx, p.x, p.y, p.buttons);
    } else if (type == DISP_WHEEL && len == sizeof(struct disp_wheel)) {
        struct disp_wheel w;
        memcpy(&w, buf, sizeof(w));
        if (in->wheel)
            in->wheel(in->tablet_ctx, w.dx, w.dy);
    } else if (type != DISP_FOCUS || len != sizeof(struct disp_focus)) {
        log_debug("display: ignored a message of type %#x and %zu bytes", type, len);
    }
}

static void *display_thread(void *arg)
{
    struct display *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        int s = d->sock;
        pthread_mutex_unlock(&d->lock);
        if (s < 0) {
            try_connect(d);
            pthread_mutex_lock(&d->lock);
            s = d->sock;
            pthread_mutex_unlock(&d->lock);
        }
        pthread_mutex_lock(&d->lock);
        short out = pending(d) ? POLLOUT : 0;
        pthread_mutex_unlock(&d->lock);
        struct pollfd p[3] = {
            {d->stop_fd, POLLIN, 0}, {d->wake_fd, POLLIN, 0}, {s, (short)(POLLIN | out), 0}};
        int n = poll(p, s >= 0 ? 3 : 2, s >= 0 ? -1 : RECONNECT_MS);
        if (n < 0 && errno != EINTR)
            return NULL;
        if (p[0].revents)
            return NULL;
        uint64_t v;
        if (p[1].revents)
            (void)!read(d->wake_fd, &v, sizeof(v)); /* and poll again, for room */
        if (s >= 0 && (p[2].revents & POLLOUT)) {
            pthread_mutex_lock(&d->lock);
            if (d->sock == s)
                send_pending(d);
            pthread_mutex_unlock(&d->lock);
        }
        if (s < 0 || !(p[2].revents & ~POLLOUT))
            continue;
        uint8_t buf[DISP_MAX_MSG];
        ssize_t r = recv(s, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (r > 0 && (size_t)r <= sizeof(buf) && r >= 4) {
            handle(d, buf, (size_t)r);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        pthread_mutex_lock(&d->lock);
        if (d->sock == s)
            disconnect(d, r == 0 ? "hv-switch closed it" : "bad message");
        pthread_mutex_unlock(&d->lock);
    }
}

struct display *display_start(const struct display_config *cfg, const struct display_input *in)
{
    struct display *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->cfg = *cfg;
    if (in)
        d->in = *in;
    d->sock = d->surface_fd = -1;
    pthread_mutex_init(&d->lock, NULL);
    d->stop_fd = eventfd(0, EFD_CLOEXEC);
    d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /*
     * The first try now, before the sandbox drops hv-vmm's user: hv-switch's
     * socket may only be open to root. Reconnections happen as the VM's user.
     */
    if (d->stop_fd >= 0)
        try_connect(d);
    int err = d->stop_fd < 0 || d->wake_fd < 0
                  ? errno
                  : pthread_create(&d->thread, NULL, display_thread, d);
    if (err) {
        log_err("display: cannot start: %s", strerror(err));
        if (d->stop_fd >= 0)
            close(d->stop_fd);
        if (d->wake_fd >= 0)
            close(d->wake_fd);
        free(d);
        return NULL;
    }
    return d;
}

void display_stop(struct display *d)
{
    uint64_t one = 1;
    if (write(d->stop_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(d->thread, NULL);
    close(d->stop_fd);
    close(d->wake_fd);
    if (d->sock >= 0)
        close(d->sock);
    if (d->surface_fd >= 0)
        close(d->surface_fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* ---- --display: wiring the devices together ---- */

static void display_device_destroy(struct device *dev)
{
    struct display *d = dev->priv;
    void *owned = d->owned;
    display_stop(d);
    free(owned);
}

/* Its thread talks to hv-switch and queues input; only the devices' threads touch guest RAM. */
static const struct device_ops display_device_ops = {.destroy = display_device_destroy};

static void sink_scanout(void *ctx, int fd, uint32_t w, uint32_t h, uint32_t stride)
{
    display_scanout(ctx, fd, w, h, stride);
}

static void sink_damage(void *ctx, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    display_damage(ctx, x, y, w, h);
}

static void sink_blank(void *ctx)
{
    display_blank(ctx);
}

static void vbe_scanout(void *ctx, int fd, uint64_t offset, uint32_t w, uint32_t h, uint32_t stride)
{
    display_scanout_at(ctx, fd, offset, w, h, stride);
}

/*
 * hv-switch's input goes to the virtio keyboard and tablet while the guest
 * runs their driver, else to the PS/2 keyboard and mouse (firmware, and
 * systems without virtio drivers): never to both, so that a Linux guest
 * with both drivers does not get each key twice. A key goes where its press
 * went: releases are offered to both, and each drops a release whose press
 * it did not send (the PS/2 keyboard by its own record, virtio-input's
 * guest by the input core's).
 */
struct input_fanout {
    struct virtio_input *kbd, *tablet;
    struct i8042_dev *ps2;
    struct display *display; /* set once it exists: the picture's size, for the mouse */
};

static void in_key(void *ctx, uint32_t code, bool pressed)
{
    struct input_fanout *f = ctx;
    bool virtio = virtio_input_active(f->kbd);
    if (virtio || !pressed)
        virtio_input_key(f->kbd, code, pressed);
    if ((!virtio || !pressed) && i8042_key)
        i8042_key(f->ps2, code, pressed);
}

static void in_pointer(void *ctx, uint32_t x, uint32_t y, uint32_t buttons)
{
    struct input_fanout *f = ctx;
    bool virtio = virtio_input_active(f->tablet);
    if (virtio)
        virtio_input_pointer(f->tablet, x, y, buttons);
    struct display *d = __atomic_load_n(&f->display, __ATOMIC_ACQUIRE);
    uint32_t w = 0, h = 0;
    if (d)
        display_size(d, &w, &h);
    if (i8042_pointer)
        i8042_pointer(f->ps2, x, y, buttons, w, h, !virtio);
}

static void in_wheel(void *ctx, int32_t dx, int32_t dy)
{
    struct input_fanout *f = ctx;
    if (virtio_input_active(f->tablet))
        virtio_input_wheel(f->tablet, dx, dy);
    else if (i8042_wheel)
        i8042_wheel(f->ps2, dx, dy);
}

int virtio_display_create(struct vm *vm, const char *spec)
{
    struct display_config cfg;
    char err[256];
    if (display_parse(spec, vm->cfg ? vm->cfg->name : NULL, &cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        return -EINVAL;
    }
    struct virtio_input *kbd = virtio_input_create(vm, INPUT_KEYBOARD);
    struct virtio_input *tablet = kbd ? virtio_input_create(vm, INPUT_TABLET) : NULL;
    if (!tablet)
        return -ENOMEM; /* logged; the VM is not started, so nothing to undo */
    struct input_fanout *fan = calloc(1, sizeof(*fan));
    if (!fan)
        return -ENOMEM;
    *fan = (struct input_fanout){kbd, tablet, vm->i8042, NULL};
    struct display_input in = {fan, in_key, in_pointer, in_wheel, fan};
    struct display *d = display_start(&cfg, &in);
    if (!d) {
        free(fan);
        return -ENOMEM;
    }
    d->owned = fan;
    __atomic_store_n(&fan->display, d, __ATOMIC_RELEASE);
    /* After the input devices and before the GPU: destroyed after the GPU's thread stops. */
    device_add(vm, &d->dev, &display_device_ops, "display", -1, d);
    if (cfg.gpu == DISPLAY_GPU_BOCHS) {
        struct vbe_sink vs = {d, vbe_scanout, sink_damage, sink_blank};
        return bochs_vbe_create(vm, cfg.width, cfg.height, &vs, NULL);
    }
    struct gpu_sink sink = {d, sink_scanout, sink_damage, sink_blank};
    return virtio_gpu_create(vm, cfg.width, cfg.height, &sink);
}
