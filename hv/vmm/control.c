/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "control.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "device.h"
#include "jsonproto.h"
#include "log.h"
#include "vcpu.h"
#include "vm.h"

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_MAX_LINE    65536

struct control_client {
    struct vm_watch watch; /* first: the watch pointer is the client */
    struct jp_reader reader;
    struct control *ctl;
};

struct control {
    struct vm_watch listen;
    char *path;
    struct control_client *clients[CONTROL_MAX_CLIENTS];
};

static struct json_object *error_reply(const char *msg)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

static struct json_object *ok_reply(void)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

/* The VM's device list in creation order, with PCI slots: the VM's layout. */
static struct json_object *devices(struct vm *vm)
{
    struct json_object *o = ok_reply(), *list = json_object_new_array();
    for (struct device *d = vm->devices; d; d = d->next) {
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "id", json_object_new_string(d->id));
        if (d->pci_slot >= 0) {
            char slot[16];
            snprintf(slot, sizeof(slot), "00:%02x.0", (unsigned)d->pci_slot);
            json_object_object_add(e, "pci", json_object_new_string(slot));
        }
        json_object_object_add(e, "quiesced", json_object_new_boolean(d->quiesced));
        json_object_array_add(list, e);
    }
    json_object_object_add(o, "devices", list);
    return o;
}

static struct json_object *query(struct vm *vm)
{
    struct json_object *o = ok_reply();
    json_object_object_add(o, "name", json_object_new_string(vm->cfg->name ? vm->cfg->name : ""));
    json_object_object_add(o, "state", json_object_new_string(vm_state_name(vm->state)));
    json_object_object_add(o, "vcpus", json_object_new_int((int)vm->nr_vcpus));
    json_object_object_add(o, "memory", json_object_new_int64((int64_t)vm->mem.size));
    json_object_object_add(o, "reboots", json_object_new_int((int)vm->nr_reboots));
    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    return o;
}

static void add_hex(struct json_object *o, const char *key, uint64_t value)
{
    char hex[19];
    snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)value);
    json_object_object_add(o, key, json_object_new_string(hex));
}

/*
 * Where each vCPU is (a guest that hangs: is it spinning, and where?). The
 * vCPUs are paused for the read and run on afterwards if they were running.
 */
static struct json_object *cpu_state(struct vm *vm)
{
    bool was_running = vm->state == VM_STATE_RUNNING;
    if (!was_running && vm->state != VM_STATE_PAUSED)
        return error_reply("the VM is not running");
    if (was_running && vm_pause(vm) < 0)
        return error_reply("the vCPUs could not be paused");
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct kvm_regs r;
        struct kvm_sregs s;
        struct json_object *c = json_object_new_object();
        json_object_object_add(c, "id", json_object_new_int((int)i));
        if (vcpu_get_regs(vm->vcpus[i], &r, &s) == 0) {
            add_hex(c, "rip", r.rip);
            add_hex(c, "rsp", r.rsp);
            add_hex(c, "rflags", r.rflags);
            add_hex(c, "cr0", s.cr0);
            add_hex(c, "cr3", s.cr3);
            add_hex(c, "cr4", s.cr4);
            add_hex(c, "efer", s.efer);
            add_hex(c, "cs", s.cs.selector);
        }
        json_object_array_add(list, c);
    }
    if (was_running)
        vm_resume(vm);
    struct json_object *o = ok_reply();
    json_object_object_add(o, "cpus", list);
    return o;
}

struct json_object *control_handle(struct vm *vm, struct json_object *req)
{
    struct json_object *cmd_obj;

    if (!json_object_object_get_ex(req, "cmd", &cmd_obj) ||
        !json_object_is_type(cmd_obj, json_type_string))
        return error_reply("the request has no \"cmd\" string");
    const char *cmd = json_object_get_string(cmd_obj);

    if (strcmp(cmd, "query") == 0)
        return query(vm);
    if (strcmp(cmd, "pause") == 0) {
        if (vm->state == VM_STATE_PAUSED)
            return error_reply("the VM is already paused");
        if (vm_pause(vm) < 0)
            return error_reply("the VM is not running, so it cannot be paused");
        return ok_reply();
    }
    if (strcmp(cmd, "resume") == 0) {
        if (vm_resume(vm) < 0)
            return error_reply("the VM is not paused");
        return ok_reply();
    }
    if (strcmp(cmd, "stop") == 0) {
        if (vm_stop(vm) < 0)
            return error_reply("the VM is not running");
        return ok_reply();
    }
    if (strcmp(cmd, "cpu-state") == 0)
        return cpu_state(vm);
    if (strcmp(cmd, "devices") == 0)
        return devices(vm);
    if (strcmp(cmd, "kill") == 0) {
        vm_kill(vm);
        return ok_reply();
    }
    char msg[160];
    snprintf(msg, sizeof(msg),
             "unknown command \"%.60s\" (try query, pause, resume, stop, kill, "
             "cpu-state, devices)",
             cmd);
    return error_reply(msg);
}

static void client_close(struct vm *vm, struct control_client *c)
{
    struct control *ctl = c->ctl;

    vm_watch_del(vm, &c->watch);
    close(c->watch.fd);
    jp_reader_free(&c->reader);
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl->clients[i] == c)
            ctl->clients[i] = NULL;
    free(c);
}

static void send_reply(int fd, struct json_object *reply)
{
    /* Replies are small and the peer reads them: a blocking send is fine here. */
    jp_send(fd, reply);
    json_object_put(reply);
}

static void client_event(struct vm *vm, struct vm_watch *w, uint32_t events)
{
    struct control_client *c = (struct control_client *)w;
    char buf[4096];

    (void)events;
    ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || jp_reader_feed(&c->reader, buf, (size_t)n) < 0) {
        client_close(vm, c);
        return;
    }
    for (;;) {
        char *line;
        size_t len;
        const char *err;
        enum jp_next next = jp_reader_next(&c->reader, &line, &len);
        if (next == JP_NONE)
            return;
        if (next == JP_TOO_LARGE) {
            send_reply(w->fd, error_reply("the request line is too long"));
            client_close(vm, c);
            return;
        }
        struct json_object *req = jp_parse_object(line, len, &err);
        if (!req) {
            send_reply(w->fd, error_reply(err));
            continue;
        }
        send_reply(w->fd, control_handle(vm, req));
        json_object_put(req);
    }
}

static void listen_event(struct vm *vm, struct vm_watch *w, uint32_t events)
{
    struct control *ctl = w->opaque;

    (void)events;
    int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    unsigned slot = 0;
    while (slot < CONTROL_MAX_CLIENTS && ctl->clients[slot])
        slot++;
    struct control_client *c = slot < CONTROL_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        struct json_object *r = error_reply("too many control connections");
        send_reply(fd, r);
        close(fd);
        return;
    }
    c->ctl = ctl;
    c->watch.fd = fd;
    c->watch.fn = client_event;
    jp_reader_init(&c->reader, CONTROL_MAX_LINE);
    if (vm_watch_add(vm, &c->watch, EPOLLIN) < 0) {
        jp_reader_free(&c->reader);
        close(fd);
        free(c);
        return;
    }
    ctl->clients[slot] = c;
}

int control_init(struct vm *vm, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("the control socket path %s is too long (at most %zu bytes)", path,
                sizeof(sa.sun_path) - 1);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_err("cannot create the control socket: %s", strerror(errno));
        return -1;
    }
    /* A socket file left by a dead hv-vmm would make bind fail: replace it. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        log_err("cannot listen on the control socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    struct control *ctl = calloc(1, sizeof(*ctl));
    if (!ctl || !(ctl->path = strdup(path))) {
        free(ctl);
        close(fd);
        return -1;
    }
    ctl->listen.fd = fd;
    ctl->listen.fn = listen_event;
    ctl->listen.opaque = ctl;
    vm->control = ctl;
    if (vm_watch_add(vm, &ctl->listen, EPOLLIN) < 0) {
        log_err("cannot watch the control socket: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void control_destroy(struct vm *vm)
{
    struct control *ctl = vm->control;

    if (!ctl)
        return;
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl->clients[i])
            client_close(vm, ctl->clients[i]);
    vm_watch_del(vm, &ctl->listen);
    close(ctl->listen.fd);
    unlink(ctl->path);
    free(ctl->path);
    free(ctl);
    vm->control = NULL;
}
