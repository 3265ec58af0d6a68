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
 */
#include "log.h"
#include "usbd.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS        16
#define LINE_MAX_LEN       65536
#define AGENT_PORT_DEFAULT 5310

struct usb_rule *usbd_rules;
size_t usbd_nrules;
/* Where a rule's VM is reached (hvd will own this mapping later). */
static unsigned *rule_cid, *rule_port;

static struct client {
    int fd;
    char *buf;
    size_t len;
} clients[MAX_CLIENTS];

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
    return fd;
}

void control_accept(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    struct timeval tv = {.tv_sec = 5};

    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].fd < 0) {
            clients[i].fd = fd;
            clients[i].buf = malloc(LINE_MAX_LEN);
            clients[i].len = 0;
            if (clients[i].buf)
                return;
            clients[i].fd = -1;
            break;
        }
    }
    close(fd);
}

int control_fds(int *fds, int max)
{
    int n = 0;

    for (int i = 0; i < MAX_CLIENTS && n < max; i++)
        if (clients[i].fd >= 0)
            fds[n++] = clients[i].fd;
    return n;
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

/* Handshake with the guest agent, then the same socket carries USB/IP. */
static int agent_connect(const struct usbd_dev *d, unsigned cid, unsigned port, const char **why)
{
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    struct timeval tv = {.tv_sec = 5};
    /* vsock's MSG_WAITALL fails for URBs >= its buffer (specs §1.6): raise it. */
    unsigned long long bufsz = 8ull << 20;
    char line[128];
    size_t n = 0;
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        *why = "vsock is not available on this host";
        return -1;
    }
    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &bufsz, sizeof(bufsz));
    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &bufsz, sizeof(bufsz));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        *why = "cannot connect to the guest's USB agent";
        close(fd);
        return -1;
    }
    int len = snprintf(line, sizeof(line), "attach %u %u %s\n",
                       d->info.busnum << 16 | d->info.devnum, d->info.speed, d->info.busid);
    if (write_full(fd, line, (size_t)len) != len) {
        *why = "the guest's USB agent hung up";
        close(fd);
        return -1;
    }
    /* Byte by byte: nothing after the newline belongs to us. */
    while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    if (strncmp(line, "ok ", 3) != 0) {
        *why = "the guest's USB agent refused the device (no free vhci port?)";
        log_warn("agent reply: %.80s", line);
        close(fd);
        return -1;
    }
    tv.tv_sec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

int usbd_attach_vsock(struct usbd_dev *d, const char *vm, unsigned cid, unsigned port,
                      const char **why)
{
    if (!policy_may_attach(usbd_rules, usbd_nrules, &d->props, vm, d->owner[0] ? d->owner : NULL,
                           why))
        return -1;
    int fd = agent_connect(d, cid, port ? port : AGENT_PORT_DEFAULT, why);
    if (fd < 0)
        return -1;
    struct conn *c = conn_new(fd, CONN_URB, NULL);
    if (!c) {
        close(fd);
        *why = "out of memory";
        return -1;
    }
    if (conn_start_urb(c, d)) {
        conn_kill(c, "cannot claim the device");
        *why = "cannot take the device from the host (busy or gone)";
        return -1;
    }
    snprintf(d->owner, sizeof(d->owner), "%s", vm);
    log_info("%s attached to %s (cid %u)", d->info.busid, vm, cid);
    return 0;
}

static int export_tcp(struct usbd_dev *d, const char **why)
{
    if (d->owner[0] || d->conn) {
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
                 : usbd_attach_vsock(d, r->target, rule_cid[i], rule_port[i], &why);
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
    json_object *a = rules_json();

    if (!rules_file)
        return;
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

static json_object *handle(json_object *req)
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
    if (usbd_attach_vsock(d, vm, cid, port, &why))
        return err_reply(why);
    return ok_reply();
}

static void reply(struct client *cl, json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (write_full(cl->fd, s, strlen(s)) < 0 || write_full(cl->fd, "\n", 1) < 0)
        log_debug("control client went away before the reply");
    json_object_put(o);
}

static void drop(struct client *cl)
{
    close(cl->fd);
    cl->fd = -1;
    free(cl->buf);
    cl->buf = NULL;
}

void control_on_readable(int fd)
{
    struct client *cl = NULL;

    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd == fd)
            cl = &clients[i];
    if (!cl)
        return;
    ssize_t n = read(fd, cl->buf + cl->len, LINE_MAX_LEN - cl->len);
    if (n <= 0) {
        if (n < 0 && errno == EINTR)
            return;
        drop(cl);
        return;
    }
    cl->len += (size_t)n;
    char *nl;
    while (cl->fd >= 0 && (nl = memchr(cl->buf, '\n', cl->len))) {
        *nl = '\0';
        json_object *req = json_tokener_parse(cl->buf);
        reply(cl, req ? handle(req) : err_reply("not valid JSON"));
        json_object_put(req);
        size_t used = (size_t)(nl + 1 - cl->buf);
        memmove(cl->buf, nl + 1, cl->len - used);
        cl->len -= used;
    }
    if (cl->fd >= 0 && cl->len == LINE_MAX_LEN) {
        reply(cl, err_reply("request line too long"));
        drop(cl);
    }
}
