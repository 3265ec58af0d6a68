/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-usbd's control socket (hvd will front it as `hvctl usb ...`): one JSON
 * object per line in, one per line out.
 *   {"cmd":"list"}
 *   {"cmd":"attach","busid":"1-2","vm":"work","cid":3,"port":5310}   vsock to a guest agent
 *   {"cmd":"attach","busid":"1-2","tcp":true}                         offer on the TCP listener
 *   {"cmd":"detach","busid":"1-2"}
 *   {"cmd":"rules"}  or  {"cmd":"rules","set":[{"id":"46f4:0001","class":8,"port":"1-2",
 *                         "target":"work","cid":3,"port_vsock":5310}, ...]}
 * Replies: {"ok":true,...} or {"ok":false,"error":"sentence"}.
 *
 * Nothing here blocks: clients' sockets are non-blocking with a capped
 * output queue and deadlines, and a vsock attach is a small state machine
 * (connect, send the request, read the agent's reply line) whose reply to
 * the control client goes out when it ends, so a slow guest agent holds
 * only its own attach.
 */
#include "log.h"
#include "usbd.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS        16
#define LINE_MAX_LEN       65536
#define AGENT_PORT_DEFAULT 5310
/* A client's requests wait while this much of its replies is queued. */
#define CLIENT_OUT_SOFT (256 * KiB)
/* Bounds a client's queue: a reply that would pass it drops the client. */
#define CLIENT_OUT_CAP (1 * MiB)
#define MAX_ATTACHES   16
#define AGENT_LINE_MAX 128

struct usb_rule *usbd_rules;
size_t usbd_nrules;
/* Where a rule's VM is reached (hvd will own this mapping later). */
static unsigned *rule_cid, *rule_port;

static struct client {
    int fd;
    unsigned gen; /* changes with each client in the slot: an attach finds its own */
    char name[48];
    char *buf; /* the request line being received */
    size_t len;
    struct outq out;
    int64_t in_deadline; /* the next request must be in by then */
    bool eof;            /* sent all it will: closed once answered */
    bool waiting;        /* its attach is in progress: its next lines wait */
} clients[MAX_CLIENTS];

/* A vsock attach in progress: connect, send "attach ...", read "ok PORT". */
static struct attach {
    int fd; /* -1: slot free */
    struct usbd_dev *d;
    char vm[POLICY_NAME_MAX];
    unsigned cid;
    bool connected;
    char line[AGENT_LINE_MAX]; /* the request, then the reply */
    size_t sent, want, len;
    int64_t deadline; /* the whole handshake, not each byte */
    int client;       /* who asked, -1 for a rule */
    unsigned gen;
} attaches[MAX_ATTACHES];

int control_listen(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(a.sun_path))
        return -1;
    strcpy(a.sun_path, path);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (!clients[i].buf)
            clients[i].fd = -1;
    for (int i = 0; i < MAX_ATTACHES; i++)
        attaches[i].fd = -1;
    return fd;
}

void control_accept(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    struct ucred uc = {0};
    socklen_t ulen = sizeof(uc);

    if (fd < 0)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *cl = &clients[i];
        if (cl->fd >= 0)
            continue;
        cl->buf = malloc(LINE_MAX_LEN);
        if (!cl->buf)
            break;
        cl->fd = fd;
        cl->gen++;
        cl->len = 0;
        cl->eof = cl->waiting = false;
        outq_init(&cl->out, CLIENT_OUT_CAP, USBD_CONTROL_DRAIN_MS);
        cl->in_deadline = io_now_ms() + USBD_REQUEST_MS;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ulen) == 0 && uc.pid)
            snprintf(cl->name, sizeof(cl->name), "control client (pid %d)", (int)uc.pid);
        else
            snprintf(cl->name, sizeof(cl->name), "control client");
        return;
    }
    /* Each client has its deadlines, so a full table empties by itself. */
    io_log_slow("refusing a control client: %d are connected", MAX_CLIENTS);
    close(fd);
}

static json_object *err_reply(const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

static json_object *ok_reply(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

static const char *speed_name(uint32_t s)
{
    static const char *const names[] = {"unknown",  "low",   "full",      "high",
                                        "wireless", "super", "super-plus"};
    return s < ARRAY_SIZE(names) ? names[s] : "unknown";
}

static json_object *dev_json(const struct usbd_dev *d)
{
    json_object *o = json_object_new_object();
    json_object *ifs = json_object_new_array();
    char id[16];

    snprintf(id, sizeof(id), "%04x:%04x", d->info.id_vendor, d->info.id_product);
    json_object_object_add(o, "busid", json_object_new_string(d->info.busid));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "vendor", json_object_new_string(d->vendor_name));
    json_object_object_add(o, "product", json_object_new_string(d->product_name));
    json_object_object_add(o, "speed", json_object_new_string(speed_name(d->info.speed)));
    json_object_object_add(o, "class", json_object_new_int(d->info.dev_class));
    for (size_t i = 0; i < d->info.num_interfaces; i++)
        json_object_array_add(ifs, json_object_new_int(d->intf[i].cls));
    json_object_object_add(o, "interface_classes", ifs);
    json_object_object_add(o, "input", json_object_new_boolean(policy_is_input(&d->props)));
    json_object_object_add(o, "exported", json_object_new_boolean(d->exported));
    json_object_object_add(o, "attached", json_object_new_boolean(d->conn != NULL));
    json_object_object_add(o, "owner", d->owner[0] ? json_object_new_string(d->owner) : NULL);
    return o;
}

static void reply(struct client *cl, json_object *o);
static void client_process(struct client *cl);

/* The client an attach answers to, if it is still there. */
static struct client *attach_client(const struct attach *a)
{
    if (a->client < 0 || clients[a->client].fd < 0 || clients[a->client].gen != a->gen)
        return NULL;
    return &clients[a->client];
}

/* The attach is over (why NULL: it worked): answer whoever asked, free the slot. */
static void attach_end(struct attach *a, const char *why)
{
    struct client *cl = attach_client(a);

    if (why)
        log_warn("attach of %s to %s (vsock cid %u) failed: %s", a->d->info.busid,
                 a->vm[0] ? a->vm : "?", a->cid, why);
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    a->d->pending = NULL;
    if (cl) {
        cl->waiting = false;
        cl->in_deadline = io_now_ms() + USBD_REQUEST_MS;
        reply(cl, why ? err_reply(why) : ok_reply());
        if (cl->fd >= 0)
            client_process(cl); /* its next lines waited for this reply */
    }
}

/* The agent said "ok PORT": the same socket now carries USB/IP. */
static void attach_ok(struct attach *a)
{
    struct usbd_dev *d = a->d;
    char name[96];

    if (d->gone || d->conn || d->owner[0]) {
        attach_end(a, "the device was taken or unplugged meanwhile");
        return;
    }
    snprintf(name, sizeof(name), "VM %s (vsock cid %u)", a->vm[0] ? a->vm : "?", a->cid);
    struct conn *c = conn_new(a->fd, CONN_URB, NULL, name);
    if (!c) {
        attach_end(a, "out of memory");
        return;
    }
    a->fd = -1; /* the connection owns it now */
    if (conn_start_urb(c, d)) {
        conn_kill(c, "cannot claim the device");
        attach_end(a, "cannot take the device from the host (busy or gone)");
        return;
    }
    snprintf(d->owner, sizeof(d->owner), "%s", a->vm);
    log_info("%s attached to %s (cid %u)", d->info.busid, a->vm, a->cid);
    attach_end(a, NULL);
}

/*
 * Starts a vsock attach (the reply comes from attach_end). client is the
 * index of the control client that asked, or -1 for a rule.
 */
static int attach_start(struct usbd_dev *d, const char *vm, unsigned cid, unsigned port, int client,
                        const char **why)
{
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid};
    /* vsock's MSG_WAITALL fails for URBs >= its buffer (specs §1.6): raise it. */
    unsigned long long bufsz = 8ull << 20;
    struct attach *a = NULL;

    if (d->pending) {
        *why = "an attach of this device is already in progress";
        return -1;
    }
    if (!policy_may_attach(usbd_rules, usbd_nrules, &d->props, vm, d->owner[0] ? d->owner : NULL,
                           why))
        return -1;
    for (int i = 0; i < MAX_ATTACHES && !a; i++)
        if (attaches[i].fd < 0)
            a = &attaches[i];
    if (!a) {
        *why = "too many attaches in progress; try again";
        return -1;
    }
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *why = "vsock is not available on this host";
        return -1;
    }
    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &bufsz, sizeof(bufsz));
    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &bufsz, sizeof(bufsz));
    sa.svm_port = port ? port : AGENT_PORT_DEFAULT;
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r && errno != EINPROGRESS) {
        *why = "cannot connect to the guest's USB agent";
        close(fd);
        return -1;
    }
    memset(a, 0, sizeof(*a));
    a->fd = fd;
    a->d = d;
    snprintf(a->vm, sizeof(a->vm), "%s", vm);
    a->cid = cid;
    a->connected = r == 0;
    a->want = (size_t)snprintf(a->line, sizeof(a->line), "attach %u %u %s\n",
                               d->info.busnum << 16 | d->info.devnum, d->info.speed, d->info.busid);
    a->deadline = io_now_ms() + USBD_REQUEST_MS;
    a->client = client;
    a->gen = client >= 0 ? clients[client].gen : 0;
    d->pending = a;
    return 0;
}

/* Sends what is left of the request. 0 or -1 (ended). */
static int attach_send(struct attach *a)
{
    while (a->sent < a->want) {
        ssize_t n = send(a->fd, a->line + a->sent, a->want - a->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            attach_end(a, "the guest's USB agent hung up");
            return -1;
        }
        a->sent += (size_t)n;
    }
    if (a->sent == a->want)
        a->len = 0; /* line[] now collects the reply */
    return 0;
}

/*
 * Reads the reply line, never past its newline: what follows is the
 * USB/IP stream and belongs to the connection. Peeking finds the newline
 * and the read takes only that much; without one it takes all (part of the
 * line), so a peer that sends a little at a time costs no busy loop.
 */
static void attach_recv(struct attach *a)
{
    size_t room = sizeof(a->line) - 1 - a->len;
    ssize_t n = recv(a->fd, a->line + a->len, room, MSG_PEEK | MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        attach_end(a, "the guest's USB agent hung up");
        return;
    }
    char *nl = memchr(a->line + a->len, '\n', (size_t)n);
    size_t take = nl ? (size_t)(nl - (a->line + a->len)) + 1 : (size_t)n;
    if (recv(a->fd, a->line + a->len, take, MSG_DONTWAIT) != (ssize_t)take) {
        attach_end(a, "the guest's USB agent hung up");
        return;
    }
    a->len += take;
    if (!nl) {
        if (a->len == sizeof(a->line) - 1)
            attach_end(a, "the guest's USB agent sent a line too long");
        return;
    }
    a->line[a->len - 1] = '\0';
    if (strncmp(a->line, "ok ", 3) != 0) {
        log_warn("agent reply: %.80s", a->line);
        attach_end(a, "the guest's USB agent refused the device (no free vhci port?)");
        return;
    }
    attach_ok(a);
}

static void attach_on_event(struct attach *a, short revents)
{
    if (!a->connected) {
        struct sockaddr_vm peer;
        socklen_t plen = sizeof(peer);
        int err = 0;
        socklen_t elen = sizeof(err);
        if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &elen) || err) {
            attach_end(a, "cannot connect to the guest's USB agent");
            return;
        }
        /*
         * Connected only once it has a peer: the event may be stale (the
         * slot's previous attach ended and this one took it in the same
         * round of the loop).
         */
        if (getpeername(a->fd, (struct sockaddr *)&peer, &plen))
            return;
        a->connected = true;
    }
    if (a->sent < a->want) {
        if (attach_send(a) || a->sent < a->want)
            return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR))
        attach_recv(a);
}

static short attach_events(const struct attach *a)
{
    return !a->connected || a->sent < a->want ? POLLOUT : POLLIN;
}

void control_cancel_attach(struct usbd_dev *d, const char *why)
{
    if (d->pending)
        attach_end(d->pending, why);
}

static int export_tcp(struct usbd_dev *d, const char **why)
{
    if (d->owner[0] || d->conn || d->pending) {
        *why = "the device is attached; detach it first";
        return -1;
    }
    if (policy_is_input(&d->props) &&
        !policy_may_attach(usbd_rules, usbd_nrules, &d->props, "tcp", NULL, why))
        return -1;
    d->exported = true;
    log_info("%s offered on the USB/IP TCP listener", d->info.busid);
    return 0;
}

void usbd_detach(struct usbd_dev *d)
{
    d->exported = false;
    control_cancel_attach(d, "detached before the guest's agent answered");
    if (d->conn)
        conn_kill(d->conn, "detached on request");
}

/* Called for each device that arrives: the rules decide. */
void usbd_on_plug(struct usbd_dev *d);
void usbd_on_plug(struct usbd_dev *d)
{
    const struct usb_rule *r = policy_match(usbd_rules, usbd_nrules, &d->props);
    const char *why = NULL;

    if (!r || strcmp(r->target, POLICY_HOST) == 0)
        return;
    size_t i = (size_t)(r - usbd_rules);
    int rc = strcmp(r->target, "tcp") == 0
                 ? export_tcp(d, &why)
                 : attach_start(d, r->target, rule_cid[i], rule_port[i], -1, &why);
    if (rc)
        log_warn("rule for %s -> %s not applied: %s", d->info.busid, r->target, why);
}

static json_object *rules_json(void)
{
    json_object *a = json_object_new_array();
    char id[20];

    for (size_t i = 0; i < usbd_nrules; i++) {
        const struct usb_rule *r = &usbd_rules[i];
        json_object *o = json_object_new_object();
        char v[8] = "*", p[8] = "*";
        if (r->vendor >= 0)
            snprintf(v, sizeof(v), "%04x", (unsigned)r->vendor & 0xffff);
        if (r->product >= 0)
            snprintf(p, sizeof(p), "%04x", (unsigned)r->product & 0xffff);
        snprintf(id, sizeof(id), "%s:%s", v, p);
        json_object_object_add(o, "id", json_object_new_string(id));
        if (r->cls >= 0)
            json_object_object_add(o, "class", json_object_new_int(r->cls));
        if (r->port[0])
            json_object_object_add(o, "port", json_object_new_string(r->port));
        json_object_object_add(o, "target", json_object_new_string(r->target));
        if (rule_cid[i])
            json_object_object_add(o, "cid", json_object_new_int64(rule_cid[i]));
        if (rule_port[i])
            json_object_object_add(o, "port_vsock", json_object_new_int64(rule_port[i]));
        json_object_array_add(a, o);
    }
    return a;
}

static const char *set_rules(json_object *arr)
{
    size_t n;

    if (!json_object_is_type(arr, json_type_array))
        return "\"set\" must be an array of rules";
    n = json_object_array_length(arr);
    if (n > 256)
        return "too many rules (256 at most)";
    struct usb_rule *rules = calloc(n + 1, sizeof(*rules));
    unsigned *cids = calloc(n + 1, sizeof(unsigned)), *ports = calloc(n + 1, sizeof(unsigned));
    if (!rules || !cids || !ports) {
        free(rules);
        free(cids);
        free(ports);
        return "out of memory";
    }
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, i), *v;
        struct usb_rule *r = &rules[i];
        const char *err = NULL;
        r->vendor = r->product = r->cls = -1;
        if (!json_object_is_type(o, json_type_object))
            err = "each rule must be an object";
        else if (json_object_object_get_ex(o, "id", &v) &&
                 policy_parse_id(json_object_get_string(v), &r->vendor, &r->product))
            err = "rule \"id\" must be vendor:product in hex, e.g. 046d:c52b";
        else if (json_object_object_get_ex(o, "class", &v) &&
                 (json_object_get_int(v) < 0 || json_object_get_int(v) > 255))
            err = "rule \"class\" must be 0..255";
        else if (!json_object_object_get_ex(o, "target", &v) ||
                 (strcmp(json_object_get_string(v), POLICY_HOST) != 0 &&
                  !policy_name_valid(json_object_get_string(v))))
            err = "rule \"target\" must be a VM name or \"host\"";
        if (err) {
            free(rules);
            free(cids);
            free(ports);
            return err;
        }
        snprintf(r->target, sizeof(r->target), "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "class", &v))
            r->cls = json_object_get_int(v);
        if (json_object_object_get_ex(o, "port", &v))
            snprintf(r->port, sizeof(r->port), "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "cid", &v))
            cids[i] = (unsigned)json_object_get_int64(v);
        if (json_object_object_get_ex(o, "port_vsock", &v))
            ports[i] = (unsigned)json_object_get_int64(v);
    }
    free(usbd_rules);
    free(rule_cid);
    free(rule_port);
    usbd_rules = rules;
    rule_cid = cids;
    rule_port = ports;
    usbd_nrules = n;
    return NULL;
}

/* --rules FILE: the rules survive a restart of hv-usbd. */
static const char *rules_file;

static void save_rules(void)
{
    char tmp[4096];

    if (!rules_file)
        return;
    json_object *a = rules_json();
    snprintf(tmp, sizeof(tmp), "%s.tmp", rules_file);
    if (json_object_to_file_ext(tmp, a, JSON_C_TO_STRING_PLAIN) || rename(tmp, rules_file))
        log_warn("cannot save the rules to %s: %s", rules_file, strerror(errno));
    json_object_put(a);
}

int control_load_rules(const char *path)
{
    const char *why;

    rules_file = path;
    if (access(path, F_OK) != 0)
        return 0; /* none saved yet */
    json_object *a = json_object_from_file(path);
    if (!a) {
        log_warn("cannot read the rules in %s; starting without rules", path);
        return -1;
    }
    why = set_rules(a);
    json_object_put(a);
    if (why) {
        log_warn("rules in %s not loaded: %s", path, why);
        return -1;
    }
    log_info("%zu rule(s) loaded from %s", usbd_nrules, path);
    return 0;
}

/* A request's reply, or NULL when it comes later (an attach in progress). */
static json_object *handle(json_object *req, int client)
{
    json_object *v, *busid_o;
    const char *cmd, *why = NULL;
    struct usbd_dev *d = NULL;

    if (!json_object_is_type(req, json_type_object) || !json_object_object_get_ex(req, "cmd", &v))
        return err_reply("expected an object with \"cmd\"");
    cmd = json_object_get_string(v);
    if (strcmp(cmd, "list") == 0) {
        json_object *o = ok_reply(), *a = json_object_new_array();
        for (struct usbd_dev *x = usbd_devs; x; x = x->next)
            if (!x->gone)
                json_object_array_add(a, dev_json(x));
        json_object_object_add(o, "devices", a);
        return o;
    }
    if (strcmp(cmd, "rules") == 0) {
        if (json_object_object_get_ex(req, "set", &v)) {
            if ((why = set_rules(v)))
                return err_reply(why);
            save_rules();
        }
        json_object *o = ok_reply();
        json_object_object_add(o, "rules", rules_json());
        return o;
    }
    if (strcmp(cmd, "attach") != 0 && strcmp(cmd, "detach") != 0)
        return err_reply("unknown command (list, attach, detach, rules)");
    if (!json_object_object_get_ex(req, "busid", &busid_o) ||
        !(d = dev_find(json_object_get_string(busid_o))))
        return err_reply("no such device (see \"list\" for bus ids)");
    if (strcmp(cmd, "detach") == 0) {
        usbd_detach(d);
        return ok_reply();
    }
    if (json_object_object_get_ex(req, "tcp", &v) && json_object_get_boolean(v)) {
        if (export_tcp(d, &why))
            return err_reply(why);
        return ok_reply();
    }
    if (!json_object_object_get_ex(req, "cid", &v) || json_object_get_int64(v) < 3 ||
        json_object_get_int64(v) > 0xfffffffe)
        return err_reply("attach needs \"cid\" (the guest's vsock CID, 3 or more) or \"tcp\"");
    unsigned cid = (unsigned)json_object_get_int64(v), port = 0;
    if (json_object_object_get_ex(req, "port", &v))
        port = (unsigned)json_object_get_int64(v);
    const char *vm = json_object_object_get_ex(req, "vm", &v) ? json_object_get_string(v) : "";
    if (attach_start(d, vm, cid, port, client, &why))
        return err_reply(why);
    return NULL;
}

static void drop(struct client *cl)
{
    close(cl->fd);
    cl->fd = -1;
    free(cl->buf);
    cl->buf = NULL;
    outq_free(&cl->out);
}

/* Queues the reply (consumed); a client whose queue is full is dropped. */
static void reply(struct client *cl, json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    int r = outq_put(&cl->out, cl->fd, s, strlen(s), "\n", 1);

    if (r == IO_FULL) {
        io_log_slow("dropping %s: %zu bytes of replies queued for it, cap %zu", cl->name,
                    cl->out.bytes, cl->out.cap);
        drop(cl);
    } else if (r == IO_ERROR) {
        log_debug("%s went away before the reply", cl->name);
        drop(cl);
    }
    json_object_put(o);
}

/* Closes a client that has said all it will once it has all its answers. */
static void maybe_close(struct client *cl)
{
    if (cl->fd >= 0 && cl->eof && !cl->waiting && !cl->out.bytes)
        drop(cl);
}

/* Answers the complete lines received, in order, while the client takes its replies. */
static void client_process(struct client *cl)
{
    char *nl;

    while (cl->fd >= 0 && !cl->waiting && cl->out.bytes < CLIENT_OUT_SOFT &&
           (nl = memchr(cl->buf, '\n', cl->len))) {
        *nl = '\0';
        json_object *req = json_tokener_parse(cl->buf);
        json_object *o = req ? handle(req, (int)(cl - clients)) : err_reply("not valid JSON");
        json_object_put(req);
        size_t used = (size_t)(nl + 1 - cl->buf);
        memmove(cl->buf, nl + 1, cl->len - used);
        cl->len -= used;
        cl->in_deadline = io_now_ms() + USBD_REQUEST_MS;
        if (o)
            reply(cl, o);
        else
            cl->waiting = true;
    }
    if (cl->fd >= 0 && cl->len == LINE_MAX_LEN && !memchr(cl->buf, '\n', cl->len)) {
        reply(cl, err_reply("request line too long"));
        cl->len = 0;
        cl->eof = true; /* close once that is out */
    }
    if (cl->fd >= 0 && cl->eof && !memchr(cl->buf, '\n', cl->len))
        cl->len = 0; /* a last line without newline is not a request */
    maybe_close(cl);
}

static bool client_may_read(const struct client *cl)
{
    return !cl->eof && !cl->waiting && cl->out.bytes < CLIENT_OUT_SOFT && cl->len < LINE_MAX_LEN;
}

static void client_read(struct client *cl)
{
    ssize_t n = read(cl->fd, cl->buf + cl->len, LINE_MAX_LEN - cl->len);

    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        drop(cl);
        return;
    }
    if (n == 0)
        cl->eof = true; /* it may still wait for the answers to what it sent */
    cl->len += (size_t)n;
    client_process(cl);
}

static void client_on_event(struct client *cl, short revents)
{
    if (cl->out.bytes && (revents & (POLLOUT | POLLERR | POLLHUP))) {
        if (outq_flush(&cl->out, cl->fd)) {
            log_debug("%s went away before its replies", cl->name);
            drop(cl);
            return;
        }
        client_process(cl); /* lines may have waited for the queue to shrink */
    }
    if (cl->fd >= 0 && client_may_read(cl) && (revents & (POLLIN | POLLERR | POLLHUP)))
        client_read(cl);
}

int control_poll(struct pollfd *pfd, int *ids, int max)
{
    int n = 0;

    for (int i = 0; i < MAX_CLIENTS && n < max; i++) {
        struct client *cl = &clients[i];
        short ev = 0;
        if (cl->fd < 0)
            continue;
        ev = (short)((client_may_read(cl) ? POLLIN : 0) | (cl->out.bytes ? POLLOUT : 0));
        /* Nothing to wait for (its attach is in progress): a hangup would only spin. */
        if (!ev)
            continue;
        pfd[n] = (struct pollfd){.fd = cl->fd, .events = ev};
        ids[n++] = i;
    }
    for (int i = 0; i < MAX_ATTACHES && n < max; i++) {
        if (attaches[i].fd < 0)
            continue;
        pfd[n] = (struct pollfd){.fd = attaches[i].fd, .events = attach_events(&attaches[i])};
        ids[n++] = MAX_CLIENTS + i;
    }
    return n;
}

void control_on_event(int id, short revents)
{
    if (id < MAX_CLIENTS) {
        if (clients[id].fd >= 0)
            client_on_event(&clients[id], revents);
    } else if (id - MAX_CLIENTS < MAX_ATTACHES && attaches[id - MAX_CLIENTS].fd >= 0) {
        attach_on_event(&attaches[id - MAX_CLIENTS], revents);
    }
}

/* A client owes a request when nothing of its own is pending or queued. */
static bool client_owes_request(const struct client *cl)
{
    return !cl->waiting && !cl->eof && !cl->out.bytes;
}

int64_t control_next_deadline(void)
{
    int64_t t = 0;

    for (int i = 0; i < MAX_CLIENTS; i++) {
        const struct client *cl = &clients[i];
        if (cl->fd < 0)
            continue;
        if (client_owes_request(cl))
            t = io_earliest(t, cl->in_deadline);
        t = io_earliest(t, cl->out.deadline);
    }
    for (int i = 0; i < MAX_ATTACHES; i++)
        if (attaches[i].fd >= 0)
            t = io_earliest(t, attaches[i].deadline);
    return t;
}

void control_check_deadlines(int64_t now)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *cl = &clients[i];
        if (cl->fd < 0)
            continue;
        if (client_owes_request(cl) && now >= cl->in_deadline) {
            io_log_slow("dropping %s: no whole request within %d s (%zu bytes of a line)", cl->name,
                        USBD_REQUEST_MS / 1000, cl->len);
            drop(cl);
        } else if (outq_expired(&cl->out, now)) {
            io_log_slow("dropping %s: it did not read its replies within %d s (%zu bytes queued, "
                        "cap %zu)",
                        cl->name, cl->out.timeout_ms / 1000, cl->out.bytes, cl->out.cap);
            drop(cl);
        }
    }
    for (int i = 0; i < MAX_ATTACHES; i++) {
        struct attach *a = &attaches[i];
        if (a->fd < 0 || now < a->deadline)
            continue;
        io_log_slow("dropping the USB agent of VM %s (vsock cid %u): no whole answer within %d s "
                    "(%zu bytes)",
                    a->vm[0] ? a->vm : "?", a->cid, USBD_REQUEST_MS / 1000,
                    a->connected && a->sent == a->want ? a->len : 0);
        attach_end(a, "the guest's USB agent did not answer in time");
    }
}
