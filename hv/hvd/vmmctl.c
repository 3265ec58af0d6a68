/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A client for hv-vmm's control socket: one request, one reply. The blocking
 * call is for re-attach at startup; the API's methods use the asynchronous
 * one, whose reply is read from the event loop.
 */
#include "hvd.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* hv-vmm's {"ok": true, ...}, else false with the reason in err. */
static bool reply_ok(struct json_object *reply, const char *cmd, char *err, size_t errlen)
{
    struct json_object *ok, *e;
    if (json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok))
        return true;
    snprintf(err, errlen, "hv-vmm refused '%s': %s", cmd,
             json_object_object_get_ex(reply, "error", &e) ? json_object_get_string(e)
                                                           : "no reason given");
    return false;
}

struct json_object *vmmctl_call(const char *socket_path, const char *cmd, int timeout_ms, char *err,
                                size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control socket path too long");
        return NULL;
    }
    strcpy(sa.sun_path, socket_path);
    /* Right after a start, hv-vmm may not listen yet: retry within the timeout. */
    int fd = -1;
    for (int waited = 0;; waited += 20) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        int saved = errno;
        close(fd);
        fd = -1;
        if ((saved != ENOENT && saved != ECONNREFUSED) || waited >= timeout_ms) {
            errno = saved;
            break;
        }
        usleep(20 * 1000);
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to hv-vmm's control socket %s: %s", socket_path,
                 strerror(errno));
        return NULL;
    }
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string(cmd));
    int rc = jp_send(fd, req);
    json_object_put(req);
    struct json_object *reply = NULL;
    if (rc < 0) {
        snprintf(err, errlen, "cannot send to hv-vmm: %s", strerror(errno));
    } else {
        struct jp_reader r;
        const char *why = NULL;
        jp_reader_init(&r, JP_MAX_MESSAGE);
        int got = jp_recv(fd, &r, timeout_ms, &reply, &why);
        if (got == 0)
            snprintf(err, errlen, "hv-vmm closed its control socket without a reply");
        else if (got < 0)
            snprintf(err, errlen, "hv-vmm's reply: %s", why);
        jp_reader_free(&r);
    }
    close(fd);
    if (!reply)
        return NULL;
    if (!reply_ok(reply, cmd, err, errlen)) {
        json_object_put(reply);
        return NULL;
    }
    return reply;
}

/* ---- the same call from the event loop (vm.pause/resume/shutdown) ---- */

#define RETRY_USEC (20 * 1000)

struct vmmcall {
    struct vmmcall *next;
    struct hvd *d;
    char *path;
    char cmd[16];
    struct json_object *req; /* sent once connected */
    int pass_fd;             /* passed with the request (SCM_RIGHTS); -1: none */
    int timeout_ms;
    int fd;
    uint64_t deadline; /* CLOCK_MONOTONIC µs */
    struct jp_reader in;
    sd_event_source *io, *timer; /* timer: the next connect attempt, then the deadline */
    vmmctl_done_fn done;
    void *userdata;
};

static struct vmmcall *calls;
static bool exit_hook;

static uint64_t loop_now(struct hvd *d)
{
    uint64_t now = 0;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
    return now;
}

/* Ends the call: done() gets the reply (its own) or err. */
static void call_end(struct vmmcall *k, struct json_object *reply, const char *err)
{
    for (struct vmmcall **p = &calls; *p; p = &(*p)->next) {
        if (*p == k) {
            *p = k->next;
            break;
        }
    }
    k->io = sd_event_source_disable_unref(k->io);
    k->timer = sd_event_source_disable_unref(k->timer);
    if (k->fd >= 0)
        close(k->fd);
    jp_reader_free(&k->in);
    json_object_put(k->req);
    if (k->pass_fd >= 0)
        close(k->pass_fd);
    char msg[400];
    if (reply && !reply_ok(reply, k->cmd, msg, sizeof(msg))) {
        json_object_put(reply);
        reply = NULL;
        err = msg;
    }
    k->done(k->d, k->userdata, reply, err);
    free(k->path);
    free(k);
}

static int on_call_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int set_timer(struct vmmcall *k, uint64_t when)
{
    k->timer = sd_event_source_disable_unref(k->timer);
    return sd_event_add_time(k->d->loop, &k->timer, CLOCK_MONOTONIC, when, 1000, on_call_timer, k);
}

static int on_call_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)revents;
    struct vmmcall *k = userdata;
    char buf[4096], *line, err[400];
    size_t len;
    const char *why;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        snprintf(err, sizeof(err), "hv-vmm closed its control socket without a reply");
        call_end(k, NULL, err);
        return 0;
    }
    if (jp_reader_feed(&k->in, buf, (size_t)n) < 0) {
        call_end(k, NULL, "hv-vmm's reply: out of memory");
        return 0;
    }
    enum jp_next next = jp_reader_next(&k->in, &line, &len);
    if (next == JP_NONE)
        return 0;
    struct json_object *reply = next == JP_LINE ? jp_parse_object(line, len, &why) : NULL;
    if (!reply)
        snprintf(err, sizeof(err), "hv-vmm's reply: %s",
                 next == JP_LINE ? why : "the line is too long");
    call_end(k, reply, err);
    return 0;
}

/* One connect attempt: 1 connected and sent, 0 try again later, -1 failed (err). */
static int call_connect(struct vmmcall *k, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, k->path);
    k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (k->fd >= 0 && connect(k->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int saved = errno;
        close(k->fd);
        k->fd = -1;
        errno = saved;
        /* Right after a start, hv-vmm may not listen yet (EAGAIN: its backlog is full). */
        if ((saved == ENOENT || saved == ECONNREFUSED || saved == EAGAIN) &&
            loop_now(k->d) + RETRY_USEC < k->deadline)
            return 0;
    }
    if (k->fd < 0) {
        snprintf(err, errlen, "cannot connect to hv-vmm's control socket %s: %s", k->path,
                 strerror(errno));
        return -1;
    }
    size_t len;
    char *line = jp_format(k->req, &len);
    /* A few bytes into a new connection's empty buffer: all or nothing. */
    ssize_t n = -1;
    if (line) {
        union {
            struct cmsghdr hdr;
            char bytes[CMSG_SPACE(sizeof(int))];
        } cbuf;
        memset(&cbuf, 0, sizeof(cbuf));
        struct iovec iov = {.iov_base = line, .iov_len = len};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (k->pass_fd >= 0) { /* the file rides on the request's first byte */
            msg.msg_control = cbuf.bytes;
            msg.msg_controllen = sizeof(cbuf.bytes);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &k->pass_fd, sizeof(int));
        }
        n = sendmsg(k->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    free(line);
    if (n != (ssize_t)len) {
        snprintf(err, errlen, "cannot send to hv-vmm: %s", n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    if (sd_event_add_io(k->d->loop, &k->io, k->fd, EPOLLIN, on_call_io, k) < 0 ||
        set_timer(k, k->deadline) < 0) {
        snprintf(err, errlen, "cannot watch hv-vmm's control socket");
        return -1;
    }
    return 1;
}

static int on_call_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s;
    (void)usec;
    struct vmmcall *k = userdata;
    char err[400];
    int rc;

    if (k->io) {
        snprintf(err, sizeof(err), "hv-vmm did not answer within %d ms", k->timeout_ms);
        rc = -1;
    } else {
        rc = call_connect(k, err, sizeof(err));
    }
    if (rc == 0 && set_timer(k, loop_now(k->d) + RETRY_USEC) < 0) {
        snprintf(err, sizeof(err), "cannot wait for hv-vmm's control socket");
        rc = -1;
    }
    if (rc < 0)
        call_end(k, NULL, err);
    return 0;
}

/* hvd is stopping: every call still waiting is ended. */
static int on_loop_exit(sd_event_source *s, void *userdata)
{
    (void)s;
    (void)userdata;
    while (calls)
        call_end(calls, NULL, "hvd is stopping");
    return 0;
}

int vmmctl_call_async(struct hvd *d, const char *socket_path, const char *cmd, vmmctl_done_fn done,
                      void *userdata, char *err, size_t errlen)
{
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string(cmd));
    return vmmctl_request_async(d, socket_path, req, -1, VMMCTL_TIMEOUT_MS, done, userdata, err,
                                errlen);
}

int vmmctl_request_async(struct hvd *d, const char *socket_path, struct json_object *req,
                         int pass_fd, int timeout_ms, vmmctl_done_fn done, void *userdata,
                         char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct json_object *c;
    const char *cmd = json_object_object_get_ex(req, "cmd", &c) ? json_object_get_string(c) : "";
    if (strlen(socket_path) >= sizeof(sa.sun_path) ||
        strlen(cmd) >= sizeof(((struct vmmcall *)0)->cmd)) {
        snprintf(err, errlen, "control socket path too long");
        json_object_put(req);
        if (pass_fd >= 0)
            close(pass_fd);
        return -1;
    }
    struct vmmcall *k = calloc(1, sizeof(*k));
    if (!k)
        hv_die("out of memory");
    k->d = d;
    k->path = strdup(socket_path);
    if (!k->path)
        hv_die("out of memory");
    snprintf(k->cmd, sizeof(k->cmd), "%s", cmd);
    k->req = req;
    k->pass_fd = pass_fd;
    k->timeout_ms = timeout_ms;
    k->fd = -1;
    k->deadline = loop_now(d) + (uint64_t)timeout_ms * UINT64_C(1000);
    k->done = done;
    k->userdata = userdata;
    jp_reader_init(&k->in, JP_MAX_MESSAGE);
    int rc = call_connect(k, err, errlen);
    if (rc == 0 && set_timer(k, loop_now(d) + RETRY_USEC) < 0) {
        snprintf(err, errlen, "cannot wait for hv-vmm's control socket");
        rc = -1;
    }
    if (rc < 0) {
        k->io = sd_event_source_disable_unref(k->io);
        k->timer = sd_event_source_disable_unref(k->timer);
        if (k->fd >= 0)
            close(k->fd);
        jp_reader_free(&k->in);
        json_object_put(k->req);
        if (k->pass_fd >= 0)
            close(k->pass_fd);
        free(k->path);
        free(k);
        return -1;
    }
    hvd_exit_hook_once(d->loop, &exit_hook, on_loop_exit);
    k->next = calls;
    calls = k;
    return 0;
}
