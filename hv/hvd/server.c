/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The API's transports: the unix socket (root and group hv only) and vsock
 * (the UIVM's CID only), each connection framed by jsonproto and answered in
 * order. A bad client is dropped without hurting the others. The transport
 * decides a client's level: unix clients are local, vsock clients managers
 * (policy.c). Each level has its own limits, so a full vsock side never
 * keeps local clients out.
 *
 * A reply can be deferred (disk jobs): the client's later requests then wait,
 * unread, until it is sent, so replies stay in order — unless the client asked
 * for "async-replies" in hello, which lets them be answered meanwhile.
 */
#include "hvd.h"

#include "log.h"

#include <errno.h>
#include <grp.h>
#include <linux/vm_sockets.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_CHUNK 65536

/*
 * Per level: how many clients at once, and how much may wait unread for one
 * of them. Its input is at most one message (JP_MAX_MESSAGE) plus a read.
 */
static const struct limits {
    const char *what;
    unsigned max_clients;
    size_t max_queued;
} limits[CLIENT_LEVELS] = {
    [CLIENT_LOCAL] = {"local", 256, 4 * 1024 * 1024},
    [CLIENT_MANAGER] = {"UIVM", 16, 2 * 1024 * 1024},
};

struct deferred {
    struct deferred *next;
    struct client *c; /* NULL once the client has gone */
    struct json_object *id;
};

struct client {
    struct client *next;
    struct hvd *hvd;
    enum client_level level;
    int fd;
    sd_event_source *io;
    struct jp_reader in;
    char *out;
    size_t out_len, out_off, out_cap;
    bool subscribed;
    bool closing; /* flush what is queued, then close */
    bool dead;    /* freed from a deferred callback: never free a client under its own call */
    bool eof;     /* sent EOF while replies were deferred: close once they are sent */
    bool async_replies;
    struct json_object *cur_id; /* id of the request being dispatched */
    struct deferred *deferreds; /* replies promised to this client */
    sd_event_source *resume;    /* reads on after the last deferred reply */
    char peer[64];
};

/* Requests wait while a deferred reply is due (in-order clients). */
static bool held(const struct client *c)
{
    return c->deferreds && !c->async_replies;
}

static void client_free(struct client *c)
{
    struct hvd *d = c->hvd;
    for (struct client **p = &d->clients; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    d->nr_clients[c->level]--;
    for (struct deferred *r = c->deferreds; r; r = r->next)
        r->c = NULL; /* the work goes on; its reply is dropped */
    sd_event_source_disable_unref(c->resume);
    sd_event_source_disable_unref(c->io);
    close(c->fd);
    jp_reader_free(&c->in);
    free(c->out);
    free(c);
}

static int on_deferred_free(sd_event_source *s, void *userdata)
{
    (void)s;
    client_free(userdata);
    return 0;
}

static void client_kill(struct client *c)
{
    if (c->dead)
        return;
    c->dead = true;
    sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
    if (sd_event_add_defer(c->hvd->loop, NULL, on_deferred_free, c) < 0)
        log_err("cannot schedule closing a client");
}

static void update_events(struct client *c)
{
    uint32_t ev = c->closing || c->eof || held(c) ? 0 : EPOLLIN;
    if (c->out_len > c->out_off)
        ev |= EPOLLOUT;
    sd_event_source_set_io_events(c->io, ev);
}

/* Write what can be written now; returns -1 when the client is gone. */
static int flush_out(struct client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    return 0;
}

static int queue(struct client *c, struct json_object *msg)
{
    size_t len;
    char *s = jp_format(msg, &len);
    if (!s)
        return -1;
    if (c->out_len - c->out_off + len > limits[c->level].max_queued) {
        log_warn("client %s does not read its messages; closing it", c->peer);
        free(s);
        return -1;
    }
    if (c->out_off > 0 && c->out_len + len > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 8192;
        while (cap < c->out_len + len)
            cap *= 2;
        char *out = realloc(c->out, cap);
        if (!out) {
            free(s);
            return -1;
        }
        c->out = out;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, len);
    c->out_len += len;
    free(s);
    return 0;
}

static struct json_object *error_reply(struct json_object *id, const char *code,
                                       const char *message)
{
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "id", id ? json_object_get(id) : NULL);
    struct json_object *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(r, "error", e);
    return r;
}

static struct json_object *handle_request(struct client *c, struct json_object *req)
{
    struct json_object *id = NULL, *method = NULL, *params = NULL;
    json_object_object_get_ex(req, "id", &id);
    if (!json_object_object_get_ex(req, "method", &method) ||
        !json_object_is_type(method, json_type_string))
        return error_reply(id, "bad-request", "The request has no \"method\" string.");
    if (json_object_object_get_ex(req, "params", &params) && params &&
        !json_object_is_type(params, json_type_object))
        return error_reply(id, "bad-request", "\"params\" must be a JSON object.");
    struct api_error e = {0};
    struct json_object *empty = NULL;
    if (!params)
        params = empty = json_object_new_object();
    c->cur_id = id;
    struct json_object *result =
        api_dispatch(c->hvd, c, json_object_get_string(method), params, &e);
    c->cur_id = NULL;
    json_object_put(empty);
    if (!result && e.code && strcmp(e.code, API_DEFERRED) == 0)
        return NULL; /* server_reply() answers later */
    if (!result)
        return error_reply(id, e.code ? e.code : "internal", e.message);
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "id", id ? json_object_get(id) : NULL);
    json_object_object_add(r, "result", result);
    return r;
}

void client_subscribe(struct client *c)
{
    c->subscribed = true;
}

void client_set_async_replies(struct client *c)
{
    c->async_replies = true;
}

enum client_level client_level(const struct client *c)
{
    return c ? c->level : CLIENT_LOCAL; /* hvd's own calls (autostart) are the host's */
}

/* Returns -1 when the client must go. */
static int process_input(struct client *c)
{
    char *line;
    size_t len;
    enum jp_next next;
    while (!c->closing && !c->dead && !held(c) &&
           (next = jp_reader_next(&c->in, &line, &len)) != JP_NONE) {
        struct json_object *reply;
        if (next == JP_TOO_LARGE) {
            char msg[128];
            snprintf(msg, sizeof(msg),
                     "The message is longer than %d bytes; closing the connection.",
                     JP_MAX_MESSAGE);
            reply = error_reply(NULL, "too-large", msg);
            c->closing = true;
        } else {
            const char *why;
            struct json_object *req = jp_parse_object(line, len, &why);
            reply = req ? handle_request(c, req) : error_reply(NULL, "bad-json", why);
            json_object_put(req);
        }
        if (!reply)
            continue; /* deferred */
        int rc = queue(c, reply);
        json_object_put(reply);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    struct client *c = userdata;
    char buf[READ_CHUNK];

    if (c->dead)
        return 0;
    if ((revents & EPOLLIN) && !c->closing && !c->eof && !held(c)) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            goto drop;
        if (n == 0 && c->deferreds) {
            c->eof = true; /* it may still wait for its deferred replies */
        } else if (n == 0) {
            if (jp_reader_pending(&c->in))
                log_debug("client %s left in the middle of a message", c->peer);
            goto drop;
        }
        if (n > 0 && (jp_reader_feed(&c->in, buf, (size_t)n) < 0 || process_input(c) < 0))
            goto drop;
        if (c->dead)
            return 0;
    } else if (revents & (EPOLLHUP | EPOLLERR) && !(revents & EPOLLOUT)) {
        goto drop;
    }
    if (flush_out(c) < 0)
        goto drop;
    if (c->closing && c->out_len == c->out_off)
        goto drop;
    update_events(c);
    return 0;
drop:
    client_kill(c);
    return 0;
}

/* ---- deferred replies ---- */

void api_defer(struct api_error *e)
{
    e->code = API_DEFERRED;
    e->message[0] = '\0';
}

struct deferred *server_defer(struct client *c)
{
    struct deferred *r = calloc(1, sizeof(*r));
    if (!r)
        hv_die("out of memory");
    r->c = c;
    r->id = c->cur_id ? json_object_get(c->cur_id) : NULL;
    /* appended: in-order clients get their replies in request order */
    struct deferred **p = &c->deferreds;
    while (*p)
        p = &(*p)->next;
    *p = r;
    return r;
}

/* After the last deferred reply: the requests that waited are read now. */
static int on_resume(sd_event_source *s, void *userdata)
{
    (void)s;
    struct client *c = userdata;
    c->resume = sd_event_source_disable_unref(c->resume);
    if (c->dead)
        return 0;
    if (process_input(c) < 0 || flush_out(c) < 0 || (c->closing && c->out_len == c->out_off)) {
        client_kill(c);
        return 0;
    }
    update_events(c);
    return 0;
}

void server_reply(struct deferred *r, struct json_object *result, const struct api_error *e)
{
    struct client *c = r->c;
    if (c) {
        for (struct deferred **p = &c->deferreds; *p; p = &(*p)->next) {
            if (*p == r) {
                *p = r->next;
                break;
            }
        }
    }
    if (c && !c->dead) {
        struct json_object *msg;
        if (result) {
            msg = json_object_new_object();
            json_object_object_add(msg, "id", r->id ? json_object_get(r->id) : NULL);
            json_object_object_add(msg, "result", result);
            result = NULL;
        } else {
            msg = error_reply(r->id, e->code ? e->code : "internal", e->message);
        }
        int rc = queue(c, msg);
        json_object_put(msg);
        if (!c->deferreds && c->eof)
            c->closing = true;
        if (rc < 0 || flush_out(c) < 0 || (c->closing && c->out_len == c->out_off)) {
            client_kill(c);
        } else {
            if (!c->deferreds && !c->resume && !c->closing &&
                sd_event_add_defer(c->hvd->loop, &c->resume, on_resume, c) < 0)
                log_err("cannot resume reading from client %s", c->peer);
            update_events(c);
        }
    }
    json_object_put(result);
    json_object_put(r->id);
    free(r);
}

/* false when it was refused (and closed) */
static bool add_client(struct hvd *d, int fd, const char *peer, enum client_level level)
{
    static bool warned[CLIENT_LEVELS]; /* once while full: a flood must not flood the log */
    if (d->nr_clients[level] >= limits[level].max_clients) {
        if (!warned[level])
            log_warn("%u %s clients already; refusing %s (and others, until one leaves)",
                     limits[level].max_clients, limits[level].what, peer);
        warned[level] = true;
        close(fd);
        return false;
    }
    warned[level] = false;
    struct client *c = calloc(1, sizeof(*c));
    if (!c) {
        log_err("out of memory; refusing %s", peer);
        close(fd);
        return false;
    }
    c->hvd = d;
    c->level = level;
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    jp_reader_init(&c->in, JP_MAX_MESSAGE);
    if (sd_event_add_io(d->loop, &c->io, fd, EPOLLIN, on_client, c) < 0) {
        close(fd);
        jp_reader_free(&c->in);
        free(c);
        return false;
    }
    c->next = d->clients;
    d->clients = c;
    d->nr_clients[level]++;
    return true;
}

void server_emit(struct hvd *d, const char *event, struct json_object *params)
{
    struct json_object *msg = json_object_new_object();
    json_object_object_add(msg, "event", json_object_new_string(event));
    json_object_object_add(msg, "params", params);
    struct client *next;
    for (struct client *c = d->clients; c; c = next) {
        next = c->next;
        if (!c->subscribed || c->closing || c->dead)
            continue;
        if (queue(c, msg) < 0 || flush_out(c) < 0) {
            client_kill(c);
            continue;
        }
        update_events(c);
    }
    json_object_put(msg);
}

void server_close_all(struct hvd *d)
{
    while (d->clients)
        client_free(d->clients);
}

/* ---- unix socket ---- */

static gid_t hv_gid(void)
{
    struct group *g = getgrnam("hv");
    return g ? g->gr_gid : (gid_t)-1;
}

static bool peer_allowed(const struct ucred *cr)
{
    if (cr->uid == 0 || cr->uid == geteuid())
        return true;
    gid_t hv = hv_gid();
    if (hv == (gid_t)-1)
        return false;
    if (cr->gid == hv)
        return true;
    struct passwd *pw = getpwuid(cr->uid);
    if (!pw)
        return false;
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
        return false;
    for (int i = 0; i < n; i++)
        if (groups[i] == hv)
            return true;
    return false;
}

static void accept_unix(struct hvd *d, int fd, enum client_level level)
{
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0)
        return;
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || !peer_allowed(&cr)) {
        log_warn("refused a client (uid %d): not root and not in group hv", (int)cr.uid);
        close(cfd);
        return;
    }
    char peer[64];
    snprintf(peer, sizeof(peer), "%s pid %d uid %d", level == CLIENT_MANAGER ? "manager" : "unix",
             (int)cr.pid, (int)cr.uid);
    add_client(d, cfd, peer, level);
}

static int on_unix_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)revents;
    accept_unix(userdata, fd, CLIENT_LOCAL);
    return 0;
}

static int on_manager_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)revents;
    accept_unix(userdata, fd, CLIENT_MANAGER);
    return 0;
}

static int listen_unix(struct hvd *d, const char *path, sd_event_io_handler_t on_accept)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("socket path %s is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    unlink(path);
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        log_err("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    chmod(path, 0660);
    gid_t hv = hv_gid();
    if (hv != (gid_t)-1 && chown(path, (uid_t)-1, hv) < 0)
        log_warn("cannot give %s to group hv: %s", path, strerror(errno));
    sd_event_source *src;
    if (sd_event_add_io(d->loop, &src, fd, EPOLLIN, on_accept, d) < 0) {
        close(fd);
        return -1;
    }
    sd_event_source_set_io_fd_own(src, 1);
    sd_event_source_set_floating(src, 1);
    sd_event_source_unref(src);
    log_info("listening on %s", path);
    return 0;
}

int server_listen_unix(struct hvd *d)
{
    return listen_unix(d, d->socket_path, on_unix_accept);
}

/* Tests: clients of this socket are treated as the UIVM (manager level). */
int server_listen_manager(struct hvd *d)
{
    if (!d->manager_socket)
        return 0;
    log_warn("--manager-socket %s: its clients get the UIVM's level (for tests)",
             d->manager_socket);
    return listen_unix(d, d->manager_socket, on_manager_accept);
}

/* ---- vsock ---- */

static int on_vsock_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)revents;
    struct hvd *d = userdata;
    struct sockaddr_vm peer;
    socklen_t len = sizeof(peer);
    int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0)
        return 0;
    if (!policy_is_uivm_cid(d, peer.svm_cid, NULL)) {
        log_warn("refused a vsock client from CID %u: not the UIVM", peer.svm_cid);
        close(cfd);
        return 0;
    }
    char name[64];
    snprintf(name, sizeof(name), "vsock cid %u", peer.svm_cid);
    /* Rare (the UIVM's manager, once per connection) and worth knowing. */
    if (add_client(d, cfd, name, CLIENT_MANAGER))
        log_info("the UIVM connected over vsock (CID %u)", peer.svm_cid);
    return 0;
}

int server_listen_vsock(struct hvd *d)
{
    if (d->vsock_port < 0)
        return 0;
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_info("vsock is not available (%s); serving the unix socket only", strerror(errno));
        return 0;
    }
    struct sockaddr_vm sa = {
        .svm_family = AF_VSOCK, .svm_port = (unsigned)d->vsock_port, .svm_cid = VMADDR_CID_ANY};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
        log_info("cannot listen on vsock port %d (%s); serving the unix socket only", d->vsock_port,
                 strerror(errno));
        close(fd);
        return 0;
    }
    sd_event_source *src;
    if (sd_event_add_io(d->loop, &src, fd, EPOLLIN, on_vsock_accept, d) < 0) {
        close(fd);
        return 0;
    }
    sd_event_source_set_io_fd_own(src, 1);
    sd_event_source_set_floating(src, 1);
    sd_event_source_unref(src);
    log_info("listening on vsock port %d", d->vsock_port);
    return 0;
}

void hvd_exit_hook_once(sd_event *loop, bool *added, sd_event_handler_t fn)
{
    sd_event_source *src;
    if (*added || sd_event_add_exit(loop, &src, fn, NULL) < 0)
        return;
    sd_event_source_set_floating(src, 1);
    sd_event_source_unref(src);
    *added = true;
}
