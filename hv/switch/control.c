/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket (docs/display-protocol.md, "The control socket"): hvd
 * asks hv-switch to focus a VM, for the list of VMs and for thumbnails.
 * Separate from the producers' socket and root only, so that no producer
 * can steal the focus or read another VM's pixels. Runs in the render loop:
 * every socket is non-blocking, each reply is one small datagram (pixels go
 * in a memfd), and a client that does not read its replies is closed.
 */
#include "app.h"
#include "ctlproto.h"
#include "dgram.h"
#include "log.h"
#include "thumb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int control_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    mode_t old;
    int fd, rc;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("control socket path %s is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("socket: %s", strerror(errno));
        return -1;
    }
    unlink(path);      /* a stale socket from an earlier run */
    old = umask(0177); /* no moment at which others could connect */
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
        log_err("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void ctl_close(struct ctl_client *k)
{
    close(k->fd);
    memset(k, 0, sizeof(*k));
}

/* Sends a reply, with fd when >= 0; closes a client that does not read its replies. */
static int reply(struct ctl_client *k, const void *msg, size_t len, int fd)
{
    if (dgram_send(k->fd, msg, len, fd, MSG_DONTWAIT) == (ssize_t)len)
        return 0;
    log_warn("control client does not take its reply (%s): closing it", strerror(errno));
    ctl_close(k);
    return -1;
}

__attribute__((format(printf, 4, 5))) static int error(struct ctl_client *k, uint32_t request,
                                                       uint32_t status, const char *fmt, ...)
{
    struct ctl_error e = {.type = CTL_ERROR, .status = status, .request = request};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    log_info("control: %s", e.message);
    return reply(k, &e, sizeof(e), -1);
}

static int focus(struct app *a, struct ctl_client *k, const struct ctl_focus *q)
{
    struct vm *v = reg_by_slot(&a->reg, (int)q->slot);
    struct ctl_focus_reply r = {.type = CTL_FOCUS_REPLY, .slot = q->slot};
    struct focus_out out;

    if (!v)
        return error(k, q->type, CTL_E_NO_VM, "no VM in slot %u", q->slot);
    log_info("control: focus slot %u (%s)", q->slot, v->name);
    if (a->focus.overlay) {
        a->focus.overlay = false; /* the user chose elsewhere */
        a->redraw = true;
    }
    focus_set(&a->focus, &a->reg, v->id, &out);
    input_apply(a, &out, true, now_ns());
    memcpy(r.name, v->name, sizeof(r.name));
    return reply(k, &r, sizeof(r), -1);
}

static int list(struct app *a, struct ctl_client *k)
{
    struct ctl_list_reply r = {.type = CTL_LIST_REPLY};

    for (int i = 0; i < a->reg.count && r.count < CTL_LIST_MAX; i++) {
        const struct vm *v = &a->reg.vms[i];
        const struct client *c = client_of(a, v->id);
        struct ctl_vm *o = &r.vms[r.count++];

        o->slot = v->slot == REG_NO_SLOT ? CTL_NO_SLOT : (uint32_t)v->slot;
        o->colour = v->colour;
        o->flags = (v->uivm ? CTL_VM_UIVM : 0) | (a->focus.focused == v->id ? CTL_VM_FOCUSED : 0);
        if (c && c->map) {
            o->flags |= CTL_VM_PICTURE;
            o->width = c->width;
            o->height = c->height;
        }
        memcpy(o->name, v->name, sizeof(o->name));
    }
    return reply(k, &r, sizeof(r), -1);
}

/* A sealed memfd holding the client's picture scaled to w×h; -1 on failure. */
static int thumb_memfd(const struct client *c, uint32_t w, uint32_t h)
{
    size_t len = (size_t)w * 4 * h;
    int fd = memfd_create("hv-switch-thumb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *p;

    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)len) < 0)
        goto fail;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto fail;
    thumb_scale(c->map, c->width, c->height, c->stride, p, w, h, w * 4);
    munmap(p, len);
    /* The reader may trust its size and contents: nothing can change them now. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

static int thumbnail(struct app *a, struct ctl_client *k, const struct ctl_thumb *q)
{
    struct vm *v = reg_by_slot(&a->reg, (int)q->slot);
    struct client *c = v ? client_of(a, v->id) : NULL;
    struct ctl_thumb_reply r = {.type = CTL_THUMB_REPLY, .slot = q->slot};
    int fd, rc;

    if (!v || !c)
        return error(k, q->type, CTL_E_NO_VM, "no VM in slot %u", q->slot);
    if (!c->map)
        return error(k, q->type, CTL_E_NO_PICTURE, "vm '%s' shows no picture", v->name);
    thumb_size(c->width, c->height, q->max_width, q->max_height, &r.width, &r.height);
    fd = thumb_memfd(c, r.width, r.height);
    if (fd < 0)
        return error(k, q->type, CTL_E_INTERNAL, "cannot make a %ux%u thumbnail: %s", r.width,
                     r.height, strerror(errno));
    r.stride = r.width * 4;
    r.format = DISP_FORMAT_XRGB8888;
    r.src_width = c->width;
    r.src_height = c->height;
    memcpy(r.name, v->name, sizeof(r.name));
    rc = reply(k, &r, sizeof(r), fd);
    close(fd);
    return rc;
}

/* Handles one datagram; -1 when the client was closed. */
static int handle(struct app *a, struct ctl_client *k, const void *buf, size_t len, int nfds)
{
    struct ctl_req q;
    char err[sizeof(((struct ctl_error *)0)->message)];
    uint32_t type = 0;

    if (len >= sizeof(type))
        memcpy(&type, buf, sizeof(type));
    if (ctl_parse(buf, len, nfds, &q, err, sizeof(err)) < 0)
        return error(k, type, CTL_E_BAD_REQUEST, "%s", err);
    switch (q.type) {
    case CTL_FOCUS:
        return focus(a, k, &q.u.focus);
    case CTL_LIST:
        return list(a, k);
    default:
        return thumbnail(a, k, &q.u.thumb);
    }
}

static void ctl_read(struct app *a, struct ctl_client *k)
{
    uint8_t buf[CTL_MAX_MSG + 1];

    /* A few requests per wake-up: a thumbnail costs a little render time. */
    for (int budget = 4; budget > 0; budget--) {
        int fds[4], nfds;
        bool truncated;
        ssize_t n = dgram_recv(k->fd, buf, sizeof(buf), fds, 4, &nfds, &truncated);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            ctl_close(k);
            return;
        }
        for (int i = 0; i < nfds; i++) /* no request carries one: handle() refuses it */
            close(fds[i]);
        if (truncated) {
            if (error(k, 0, CTL_E_BAD_REQUEST, "request or its descriptors too long") < 0)
                return;
            continue;
        }
        if (handle(a, k, buf, (size_t)n, nfds) < 0)
            return;
    }
}

static bool peer_allowed(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return false;
    if (cr.uid == 0 || cr.uid == geteuid())
        return true;
    log_warn("control: refusing pid %d (uid %u): only root and hv-switch's user", (int)cr.pid,
             cr.uid);
    return false;
}

static void accept_all(struct app *a)
{
    for (;;) {
        int fd = accept4(a->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int i;

        if (fd < 0)
            return;
        if (!peer_allowed(fd)) {
            close(fd);
            continue;
        }
        for (i = 0; i < CTL_CLIENTS && a->ctl[i].used; i++)
            ;
        if (i == CTL_CLIENTS) {
            log_warn("control: too many connections: refusing one");
            close(fd);
            continue;
        }
        a->ctl[i] = (struct ctl_client){.used = true, .fd = fd};
    }
}

void control_service(struct app *a)
{
    if (a->ctl_fd < 0)
        return;
    accept_all(a);
    for (int i = 0; i < CTL_CLIENTS; i++) {
        if (a->ctl[i].used)
            ctl_read(a, &a->ctl[i]);
    }
}

void control_close_all(struct app *a)
{
    for (int i = 0; i < CTL_CLIENTS; i++) {
        if (a->ctl[i].used)
            ctl_close(&a->ctl[i]);
    }
    if (a->ctl_fd >= 0)
        close(a->ctl_fd);
    a->ctl_fd = -1;
}
