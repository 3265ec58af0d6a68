/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hvd's usb.* methods (docs/hvd-api.md, docs/usb.md): a front for hv-usbd's
 * control socket. hvd owns the VM name -> vsock CID mapping (the `vsock=`
 * of each definition), so clients name VMs and never CIDs. Every call is
 * one blocking request/reply on a fresh connection, bounded in time.
 */
#include "hvd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define USBD_TIMEOUT_MS 20000 /* attach waits for the guest agent (5 s) and claims the device */

static const char *usbd_socket = HVD_USBD_SOCKET_DEFAULT;

void usb_set_socket(const char *path)
{
    usbd_socket = path;
}

/* One request (consumed) to hv-usbd; its reply with "ok":true, or NULL and *e set. */
static struct json_object *usbd_call(struct json_object *req, struct api_error *e)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct json_object *reply = NULL;
    int fd = -1;

    if (strlen(usbd_socket) >= sizeof(sa.sun_path)) {
        json_object_put(req);
        api_fail(e, "usb", "hv-usbd's control socket path is too long.");
        return NULL;
    }
    strcpy(sa.sun_path, usbd_socket);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        json_object_put(req);
        api_fail(e, "usb", "hv-usbd is not running (cannot connect to %s: %s).", usbd_socket,
                 strerror(err));
        return NULL;
    }
    int rc = jp_send(fd, req);
    json_object_put(req);
    if (rc < 0) {
        api_fail(e, "usb", "Cannot send to hv-usbd: %s.", strerror(errno));
        close(fd);
        return NULL;
    }
    struct jp_reader r;
    const char *why = "";
    jp_reader_init(&r, JP_MAX_MESSAGE);
    int got = jp_recv(fd, &r, USBD_TIMEOUT_MS, &reply, &why);
    jp_reader_free(&r);
    close(fd);
    if (got <= 0 || !reply || !json_object_is_type(reply, json_type_object)) {
        json_object_put(reply);
        api_fail(e, "usb", "hv-usbd did not answer properly (%s).",
                 got == 0 ? "it closed the connection" : why);
        return NULL;
    }
    struct json_object *ok, *msg;
    if (json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok))
        return reply;
    const char *text = json_object_object_get_ex(reply, "error", &msg) &&
                               json_object_is_type(msg, json_type_string)
                           ? json_object_get_string(msg)
                           : "no reason given";
    if (strncmp(text, "no such device", 14) == 0)
        api_fail(e, "not-found", "No USB device with that bus id (see usb.list).");
    else if (strncmp(text, "rule ", 5) == 0)
        api_fail(e, "bad-params", "Bad USB rule: %.400s.", text); /* hv-usbd checks id, class */
    else
        api_fail(e, "usb", "hv-usbd refused: %.400s.", text);
    json_object_put(reply);
    return NULL;
}

static struct json_object *request(const char *cmd)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "cmd", json_object_new_string(cmd));
    return o;
}

/* A member of reply, referenced for the caller's result; the reply is released. */
static struct json_object *take(struct json_object *reply, const char *key, const char *result_key)
{
    struct json_object *v = NULL, *out = json_object_new_object();
    json_object_object_get_ex(reply, key, &v);
    json_object_object_add(out, result_key, v ? json_object_get(v) : json_object_new_array());
    json_object_put(reply);
    return out;
}

/* params.busid: a short string of [0-9A-Za-z.:_-] (a USB port path like 1-2.3). */
static const char *param_busid(struct json_object *params, struct api_error *e)
{
    struct json_object *v;
    if (!params || !json_object_object_get_ex(params, "busid", &v) ||
        !json_object_is_type(v, json_type_string)) {
        api_fail(e, "bad-params", "Parameter 'busid' (a string, see usb.list) is required.");
        return NULL;
    }
    const char *s = json_object_get_string(v);
    size_t n = strlen(s);
    if (n == 0 || n > 31 ||
        strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ.:_-") != n) {
        api_fail(e, "bad-params", "Parameter 'busid' must be a USB bus id like 1-2 or 3-1.4.");
        return NULL;
    }
    return s;
}

/* A VM that can receive USB devices: defined, with a vsock CID. */
static struct hvd_vm *usb_vm(struct hvd *d, const char *name, const char *field,
                             struct api_error *e)
{
    struct hvd_vm *vm = hvd_find_vm(d, name);
    if (!vm) {
        api_fail(e, "not-found", "No VM named '%.64s' is defined (%s).", name, field);
        return NULL;
    }
    if (!vm->def->vsock) {
        api_fail(e, "bad-params",
                 "VM '%s' has no vsock CID (vsock= in its definition); USB devices reach a guest "
                 "over vsock.",
                 vm->def->name);
        return NULL;
    }
    return vm;
}

struct json_object *usb_list(struct hvd *d, struct json_object *params, struct api_error *e)
{
    (void)d;
    (void)params;
    struct json_object *reply = usbd_call(request("list"), e);
    return reply ? take(reply, "devices", "devices") : NULL;
}

struct json_object *usb_attach(struct hvd *d, struct json_object *params, struct api_error *e)
{
    struct json_object *v;
    const char *busid = param_busid(params, e);
    if (!busid)
        return NULL;
    if (!json_object_object_get_ex(params, "vm", &v) || !json_object_is_type(v, json_type_string)) {
        api_fail(e, "bad-params", "Parameter 'vm' (the name of a running VM) is required.");
        return NULL;
    }
    struct hvd_vm *vm = usb_vm(d, json_object_get_string(v), "parameter 'vm'", e);
    if (!vm)
        return NULL;
    if (vm->state != VM_RUNNING) {
        api_fail(e, "bad-state", "VM '%s' is %s; USB devices go to running VMs.", vm->def->name,
                 hvd_vm_state_name(vm->state));
        return NULL;
    }
    struct json_object *req = request("attach");
    json_object_object_add(req, "busid", json_object_new_string(busid));
    json_object_object_add(req, "vm", json_object_new_string(vm->def->name));
    json_object_object_add(req, "cid", json_object_new_int64(vm->def->vsock));
    struct json_object *reply = usbd_call(req, e);
    if (!reply)
        return NULL;
    json_object_put(reply);
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "busid", json_object_new_string(busid));
    json_object_object_add(r, "vm", json_object_new_string(vm->def->name));
    return r;
}

struct json_object *usb_detach(struct hvd *d, struct json_object *params, struct api_error *e)
{
    (void)d;
    const char *busid = param_busid(params, e);
    if (!busid)
        return NULL;
    struct json_object *req = request("detach");
    json_object_object_add(req, "busid", json_object_new_string(busid));
    struct json_object *reply = usbd_call(req, e);
    if (!reply)
        return NULL;
    json_object_put(reply);
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "busid", json_object_new_string(busid));
    return r;
}

/* A client's rule → hv-usbd's, with the target VM's CID; NULL and *e on a bad rule. */
static struct json_object *usbd_rule(struct hvd *d, struct json_object *rule, size_t i,
                                     struct api_error *e)
{
    struct json_object *v, *out;
    char field[48];

    snprintf(field, sizeof(field), "rule %zu", i);
    if (!json_object_is_type(rule, json_type_object)) {
        api_fail(e, "bad-params", "Each rule in 'set' must be an object (%s).", field);
        return NULL;
    }
    if (!json_object_object_get_ex(rule, "target", &v) ||
        !json_object_is_type(v, json_type_string)) {
        api_fail(e, "bad-params", "%s: 'target' (a VM name or \"host\") is required.", field);
        return NULL;
    }
    const char *target = json_object_get_string(v);
    struct hvd_vm *vm = NULL;
    if (strcmp(target, "host") != 0 && !(vm = usb_vm(d, target, field, e)))
        return NULL;
    out = json_object_new_object();
    json_object_object_add(out, "target", json_object_new_string(vm ? vm->def->name : "host"));
    if (vm)
        json_object_object_add(out, "cid", json_object_new_int64(vm->def->vsock));
    static const struct {
        const char *key;
        json_type type;
        const char *what;
    } fields[] = {{"id", json_type_string, "a string vendor:product like 046d:c52b"},
                  {"class", json_type_int, "a USB class number 0..255"},
                  {"port", json_type_string, "a USB port path like 1-2"}};
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        if (!json_object_object_get_ex(rule, fields[k].key, &v) || !v)
            continue;
        if (!json_object_is_type(v, fields[k].type) ||
            (fields[k].type == json_type_string && strlen(json_object_get_string(v)) > 31)) {
            api_fail(e, "bad-params", "%s: '%s' must be %s.", field, fields[k].key, fields[k].what);
            json_object_put(out);
            return NULL;
        }
        json_object_object_add(out, fields[k].key, json_object_get(v));
    }
    return out;
}

struct json_object *usb_rules(struct hvd *d, struct json_object *params, struct api_error *e)
{
    struct json_object *req = request("rules"), *set;

    if (params && json_object_object_get_ex(params, "set", &set) && set) {
        if (!json_object_is_type(set, json_type_array)) {
            json_object_put(req);
            api_fail(e, "bad-params", "Parameter 'set' must be an array of rules.");
            return NULL;
        }
        size_t n = json_object_array_length(set);
        if (n > 256) {
            json_object_put(req);
            api_fail(e, "bad-params", "Parameter 'set' holds %zu rules; 256 at most.", n);
            return NULL;
        }
        struct json_object *rules = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            struct json_object *r = usbd_rule(d, json_object_array_get_idx(set, i), i, e);
            if (!r) {
                json_object_put(rules);
                json_object_put(req);
                return NULL;
            }
            json_object_array_add(rules, r);
        }
        json_object_object_add(req, "set", rules);
    }
    struct json_object *reply = usbd_call(req, e);
    if (!reply)
        return NULL;
    struct json_object *r = take(reply, "rules", "rules"), *arr;
    /* The CIDs are hvd's business: clients name VMs (and may send a rule back as is). */
    json_object_object_get_ex(r, "rules", &arr);
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        struct json_object *o = json_object_array_get_idx(arr, i);
        if (json_object_is_type(o, json_type_object)) {
            json_object_object_del(o, "cid");
            json_object_object_del(o, "port_vsock");
        }
    }
    return r;
}
