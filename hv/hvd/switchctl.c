/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vm.switch and vm.screenshot: hvd as a client of hv-switch's control socket
 * (docs/display-protocol.md, "The control socket"). A VM is found on
 * hv-switch by the hotkey slot hvd gave it (display.c), and hv-switch's
 * answer must name that VM, so a stale or foreign producer in the slot is
 * never switched to or photographed as another VM.
 *
 * Calls never block hvd: the request goes out on a non-blocking socket, the
 * reply is read from the event loop and the API reply is deferred until it
 * comes, or until SWITCHCTL_TIMEOUT_MS without one (no-switch).
 */
#include "hvd.h"
#include "log.h"
#include "png.h"

#include "ctlproto.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * hv-switch answers from its render loop, after the frame it is drawing: on
 * a laptop that is milliseconds, but a software-rendered panel under load
 * (the virtual laptop: a switch there takes about a second) can hold a
 * reply for longer than one frame. 5 s still tells a person promptly that
 * hv-switch is hung.
 */
#define SWITCHCTL_TIMEOUT_MS 5000
#define SHOT_DEFAULT_MAX     CTL_THUMB_MAX
/* Keeps the reply line under the API's 1 MiB: base64 is 4/3 of the PNG, plus the JSON around. */
#define SHOT_PNG_MAX (760 * 1024)

static int no_switch(struct hvd *d, struct api_error *e, const char *what)
{
    return api_fail(e, "no-switch", "hv-switch is not running or does not answer (%s %s: %s).",
                    what, d->switch_control, strerror(errno));
}

/*
 * A call in flight: one API request's conversation with hv-switch, a request
 * and its reply at a time (vm.switch: list, then focus; vm.screenshot: a
 * thumbnail, perhaps again smaller). The reply is read from the event loop,
 * so hvd serves everyone else meanwhile; the API reply is deferred.
 */
enum sw_step { STEP_LIST, STEP_FOCUS, STEP_THUMB, STEP_THUMB_AGAIN };

struct swreq {
    struct swreq *next;
    struct hvd *d;
    struct deferred *reply;
    enum sw_step step;
    char name[VMDEF_NAME_MAX + 1]; /* the VM's, as when asked: it may go meanwhile */
    int slot;
    uint32_t mw, mh;
    int sock;
    sd_event_source *io, *timer;
};

union sw_reply {
    struct ctl_error err;
    struct ctl_list_reply list;
    struct ctl_focus_reply focus;
    struct ctl_thumb_reply thumb;
};

static struct swreq *pending;
static bool exit_hook;

static void sw_close(struct swreq *q)
{
    q->io = sd_event_source_disable_unref(q->io);
    q->timer = sd_event_source_disable_unref(q->timer);
    if (q->sock >= 0)
        close(q->sock);
    q->sock = -1;
}

/* Answers the API request (result consumed; e when NULL) and frees q. */
static void sw_finish(struct swreq *q, struct json_object *result, const struct api_error *e)
{
    for (struct swreq **p = &pending; *p; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            break;
        }
    }
    sw_close(q);
    if (q->reply)
        server_reply(q->reply, result, e);
    else
        json_object_put(result);
    free(q);
}

static int on_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata);

/* Sends one request; its reply comes to on_reply(). -1 with *e. */
static int sw_send(struct swreq *q, const void *req, size_t len, struct api_error *e)
{
    struct hvd *d = q->d;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    uint64_t now;

    sw_close(q);
    if (strlen(d->switch_control) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return no_switch(d, e, "cannot connect to");
    }
    strcpy(sa.sun_path, d->switch_control);
    q->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->sock < 0)
        return api_fail(e, "internal", "socket: %s.", strerror(errno));
    /* A unix socket connects at once (or fails: EAGAIN when its backlog is full). */
    if (connect(q->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return no_switch(d, e, "cannot connect to");
    if (send(q->sock, req, len, MSG_NOSIGNAL) != (ssize_t)len)
        return no_switch(d, e, "cannot send to");
    if (sd_event_add_io(d->loop, &q->io, q->sock, EPOLLIN, on_reply, q) < 0 ||
        sd_event_now(d->loop, CLOCK_MONOTONIC, &now) < 0 ||
        sd_event_add_time(d->loop, &q->timer, CLOCK_MONOTONIC,
                          now + SWITCHCTL_TIMEOUT_MS * UINT64_C(1000), 1000, on_timeout, q) < 0)
        return api_fail(e, "internal", "Cannot watch hv-switch's control socket.");
    return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s;
    (void)usec;
    struct swreq *q = userdata;
    struct api_error e = {0};

    errno = ETIMEDOUT;
    no_switch(q->d, &e, "no reply from");
    sw_finish(q, NULL, &e);
    return 0;
}

/* hvd is stopping: the calls in flight are answered, never left. */
static int on_loop_exit(sd_event_source *s, void *userdata)
{
    (void)s;
    (void)userdata;
    struct api_error e = {0};

    api_fail(&e, "internal", "hvd is stopping.");
    while (pending)
        sw_finish(pending, NULL, &e);
    return 0;
}

/* A new call for the VM; its first request is sent by the caller. */
static struct swreq *sw_new(struct hvd *d, const struct hvd_vm *vm)
{
    struct swreq *q = calloc(1, sizeof(*q));
    if (!q)
        hv_die("out of memory");
    q->d = d;
    q->sock = -1;
    snprintf(q->name, sizeof(q->name), "%s", vm->def->name);
    q->slot = vm->slot;
    hvd_exit_hook_once(d->loop, &exit_hook, on_loop_exit);
    q->next = pending;
    pending = q;
    return q;
}

/* The first request went out: the API reply comes when the call ends. */
static struct json_object *sw_defer(struct swreq *q, struct client *c, struct api_error *e)
{
    q->reply = server_defer(c);
    api_defer(e);
    return NULL;
}

/*
 * Reads one reply (len ≤ sizeof(*r); *fd gets a passed descriptor or -1).
 * Returns its length, 0 when nothing is there yet, or -1 with *e.
 */
static ssize_t sw_recv(struct swreq *q, union sw_reply *r, int *fd, struct api_error *e)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cbuf;
    struct iovec iov = {r, sizeof(*r)};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf.buf,
                        .msg_controllen = sizeof(cbuf.buf)};
    ssize_t n = recvmsg(q->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

    *fd = -1;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int got;
            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*fd < 0)
                *fd = got;
            else
                close(got);
        }
    }
    if (n <= 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        if (n == 0)
            errno = ECONNRESET;
        else if (n > 0)
            errno = EMSGSIZE;
        no_switch(q->d, e, "a bad reply from");
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return -1;
    }
    return n;
}

/* Turns hv-switch's CTL_ERROR into ours; -1 always. */
static int switch_error(const struct ctl_error *er, const struct swreq *q, struct api_error *e)
{
    char msg[sizeof(er->message) + 1];

    memcpy(msg, er->message, sizeof(er->message));
    msg[sizeof(er->message)] = '\0';
    if (er->status == CTL_E_NO_VM)
        return api_fail(e, "no-display",
                        "VM '%s' is not on hv-switch (yet): its display has not connected.",
                        q->name);
    if (er->status == CTL_E_NO_PICTURE)
        return api_fail(e, "no-display", "VM '%s' shows no picture (yet).", q->name);
    return api_fail(e, "internal", "hv-switch refused the request: %s.", msg);
}

/* The VM's name as hv-switch has it (hv-vmm passes at most 31 characters). */
static bool same_name(const struct swreq *q, const char name[DISP_NAME_MAX])
{
    return strncmp(q->name, name, DISP_NAME_MAX - 1) == 0 &&
           memchr(name, '\0', DISP_NAME_MAX) != NULL;
}

static int wrong_vm(const struct swreq *q, const char name[DISP_NAME_MAX], struct api_error *e)
{
    return api_fail(e, "no-display", "hv-switch has '%.31s' in slot %d, not VM '%s'.", name,
                    q->slot, q->name);
}

/* The running, displayed VM named in params, with a slot; NULL with *e. */
static struct hvd_vm *display_vm(struct hvd *d, struct json_object *params, struct api_error *e)
{
    struct json_object *v;
    struct hvd_vm *vm;

    if (!json_object_object_get_ex(params, "name", &v) ||
        !json_object_is_type(v, json_type_string)) {
        api_fail(e, "bad-params", "Parameter 'name' (a string) is required.");
        return NULL;
    }
    vm = hvd_find_vm(d, json_object_get_string(v));
    if (!vm) {
        api_fail(e, "not-found", "No VM named '%s' is defined.", json_object_get_string(v));
        return NULL;
    }
    if (!vm->def->display) {
        api_fail(e, "no-display", "VM '%s' has no display (display=false in its definition).",
                 vm->def->name);
        return NULL;
    }
    if (!hvd_vm_is_active(vm)) {
        api_fail(e, "bad-state", "VM '%s' is %s: it has a screen only while it runs.",
                 vm->def->name, hvd_vm_state_name(vm->state));
        return NULL;
    }
    if (vm->slot < 0) {
        api_fail(e, "no-display",
                 "VM '%s' has no hotkey slot on hv-switch (all nine are taken): use the "
                 "switcher overlay (Ctrl+Alt+Tab).",
                 vm->def->name);
        return NULL;
    }
    return vm;
}

/* vm.switch, step 1: the list says whether the slot holds this VM; then focus it. */
static int on_list(struct swreq *q, const union sw_reply *r, ssize_t n, struct api_error *e)
{
    struct ctl_focus fq = {CTL_FOCUS, (uint32_t)q->slot};
    uint32_t i;

    if (r->err.type == CTL_ERROR && n == sizeof(r->err))
        return switch_error(&r->err, q, e);
    if (r->list.type != CTL_LIST_REPLY || n != sizeof(r->list) || r->list.count > CTL_LIST_MAX)
        return api_fail(e, "internal", "hv-switch sent a bad list (%zd bytes).", n);
    for (i = 0; i < r->list.count && r->list.vms[i].slot != (uint32_t)q->slot; i++)
        ;
    if (i == r->list.count)
        return api_fail(e, "no-display",
                        "VM '%s' is not on hv-switch (yet): its display has not connected.",
                        q->name);
    if (!same_name(q, r->list.vms[i].name))
        return wrong_vm(q, r->list.vms[i].name, e);
    q->step = STEP_FOCUS;
    return sw_send(q, &fq, sizeof(fq), e);
}

/* vm.switch, step 2: focused. */
static struct json_object *on_focus(struct swreq *q, const union sw_reply *r, ssize_t n,
                                    struct api_error *e)
{
    if (r->err.type == CTL_ERROR && n == sizeof(r->err)) {
        switch_error(&r->err, q, e);
        return NULL;
    }
    if (r->focus.type != CTL_FOCUS_REPLY || n != sizeof(r->focus)) {
        api_fail(e, "internal", "hv-switch sent a bad reply to focus (%zd bytes).", n);
        return NULL;
    }
    log_info("VM %s: switched to (slot %d)", q->name, q->slot);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(q->name));
    json_object_object_add(o, "slot", json_object_new_int(q->slot));
    return o;
}

struct json_object *switchctl_switch(struct hvd *d, struct client *c, struct json_object *params,
                                     struct api_error *e)
{
    struct hvd_vm *vm = display_vm(d, params, e);
    struct ctl_list lq = {CTL_LIST};

    if (!vm)
        return NULL;
    /* First make sure that the slot holds this VM: focusing is not undone. */
    struct swreq *q = sw_new(d, vm);
    q->step = STEP_LIST;
    if (sw_send(q, &lq, sizeof(lq), e) < 0) {
        sw_finish(q, NULL, e);
        return NULL;
    }
    return sw_defer(q, c, e);
}

static int param_dim(struct json_object *params, const char *key, uint32_t *out,
                     struct api_error *e)
{
    struct json_object *v;

    *out = SHOT_DEFAULT_MAX;
    if (!json_object_object_get_ex(params, key, &v))
        return 0;
    int64_t n = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || n < 1 || n > CTL_THUMB_MAX)
        return api_fail(e, "bad-params", "Parameter '%s' must be an integer from 1 to %d.", key,
                        CTL_THUMB_MAX);
    *out = (uint32_t)n;
    return 0;
}

static int send_thumb(struct swreq *q, struct api_error *e)
{
    struct ctl_thumb tq = {CTL_THUMB, (uint32_t)q->slot, q->mw, q->mh};
    return sw_send(q, &tq, sizeof(tq), e);
}

/* A thumbnail from hv-switch as PNG bytes (free), with its size; NULL with *e. */
static uint8_t *thumb_png(struct swreq *q, const union sw_reply *r, ssize_t n, int fd,
                          size_t *png_len, struct api_error *e)
{
    uint8_t *png;
    struct stat st;

    if (r->err.type == CTL_ERROR && n == sizeof(r->err)) {
        switch_error(&r->err, q, e);
        return NULL;
    }
    /* hv-switch is trusted more than a guest, but its answer is still checked. */
    const struct ctl_thumb_reply *t = &r->thumb;
    if (t->type != CTL_THUMB_REPLY || n != sizeof(*t) || fd < 0 || t->width < 1 ||
        t->width > q->mw || t->height < 1 || t->height > q->mh ||
        t->format != DISP_FORMAT_XRGB8888 || t->stride < t->width * 4 ||
        t->stride > CTL_THUMB_MAX * 4 || fstat(fd, &st) < 0 ||
        (uint64_t)st.st_size < (uint64_t)t->stride * t->height) {
        api_fail(e, "internal", "hv-switch sent a bad thumbnail (%zd bytes).", n);
        return NULL;
    }
    if (!same_name(q, t->name)) {
        wrong_vm(q, t->name, e);
        return NULL;
    }
    size_t len = (size_t)t->stride * t->height;
    void *px = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (px == MAP_FAILED) {
        api_fail(e, "internal", "Cannot map hv-switch's thumbnail: %s.", strerror(errno));
        return NULL;
    }
    png = png_from_xrgb(px, t->width, t->height, t->stride, png_len);
    munmap(px, len);
    if (!png)
        api_fail(e, "internal", "Cannot encode a %ux%u PNG.", t->width, t->height);
    return png;
}

/* vm.screenshot: the thumbnail came; encoded, or asked again smaller. */
static struct json_object *on_thumb(struct swreq *q, const union sw_reply *r, ssize_t n, int fd,
                                    bool *again, struct api_error *e)
{
    size_t len = 0;
    uint8_t *png = thumb_png(q, r, n, fd, &len, e);

    if (!png)
        return NULL;
    const struct ctl_thumb_reply *t = &r->thumb;
    if (len > SHOT_PNG_MAX && q->step == STEP_THUMB) {
        /* Too detailed to fit one message: again at a size whose raw RGB fits. */
        free(png);
        q->mw = t->width;
        q->mh = t->height;
        while (((uint64_t)q->mw * 3 + 1) * q->mh > SHOT_PNG_MAX / 100 * 97 && q->mw > 1 &&
               q->mh > 1) {
            q->mw = q->mw * 3 / 4;
            q->mh = q->mh * 3 / 4;
        }
        q->step = STEP_THUMB_AGAIN;
        *again = send_thumb(q, e) == 0;
        return NULL;
    }
    gchar *b64 = g_base64_encode(png, len);
    free(png);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(q->name));
    json_object_object_add(o, "format", json_object_new_string("png"));
    json_object_object_add(o, "width", json_object_new_int((int)t->width));
    json_object_object_add(o, "height", json_object_new_int((int)t->height));
    json_object_object_add(o, "source_width", json_object_new_int((int)t->src_width));
    json_object_object_add(o, "source_height", json_object_new_int((int)t->src_height));
    json_object_object_add(o, "data", json_object_new_string(b64));
    g_free(b64);
    return o;
}

struct json_object *switchctl_screenshot(struct hvd *d, struct client *c,
                                         struct json_object *params, struct api_error *e)
{
    struct hvd_vm *vm = display_vm(d, params, e);
    uint32_t mw, mh;

    if (!vm || param_dim(params, "max_width", &mw, e) < 0 ||
        param_dim(params, "max_height", &mh, e) < 0)
        return NULL;
    struct swreq *q = sw_new(d, vm);
    q->step = STEP_THUMB;
    q->mw = mw;
    q->mh = mh;
    if (send_thumb(q, e) < 0) {
        sw_finish(q, NULL, e);
        return NULL;
    }
    return sw_defer(q, c, e);
}

/* hv-switch answered: the call's next request, or its end. */
static int on_reply(sd_event_source *s, int sfd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)sfd;
    (void)revents;
    struct swreq *q = userdata;
    struct api_error e = {0};
    struct json_object *result = NULL;
    union sw_reply r;
    bool again = false;
    int fd;
    ssize_t n = sw_recv(q, &r, &fd, &e);

    if (n == 0)
        return 0;
    if (n > 0) {
        switch (q->step) {
        case STEP_LIST:
            again = on_list(q, &r, n, &e) == 0;
            break;
        case STEP_FOCUS:
            result = on_focus(q, &r, n, &e);
            break;
        case STEP_THUMB:
        case STEP_THUMB_AGAIN:
            result = on_thumb(q, &r, n, fd, &again, &e);
            break;
        }
    }
    if (fd >= 0)
        close(fd);
    if (!again)
        sw_finish(q, result, &e);
    return 0;
}
