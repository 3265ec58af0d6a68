/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "jsonproto.h"
#include "log.h"
#include "vcpu.h"
#include "virtio/balloon.h"
#include "vm.h"
#include "vm_save.h"

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_MAX_LINE    65536

struct control_client {
    struct vm_watch watch; /* first: the watch pointer is the client */
    struct jp_reader reader;
    struct control *ctl;
    int passed_fd; /* the last file passed with SCM_RIGHTS, for "save"; -1: none */
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

/* What the balloon asks of the guest and what the guest says it did. */
static void add_balloon(struct json_object *o, struct vm *vm)
{
    struct balloon_info b;
    virtio_balloon_info(vm, &b);
    json_object_object_add(o, "memory_target", json_object_new_int64((int64_t)b.target));
    json_object_object_add(o, "memory_actual", json_object_new_int64((int64_t)b.actual));
    json_object_object_add(o, "balloon", json_object_new_boolean(b.present));
    json_object_object_add(o, "balloon_driver", json_object_new_boolean(b.driver));
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
    add_balloon(o, vm);
    return o;
}

/*
 * {"cmd": "balloon", "target": BYTES}: ask the guest to keep that much of its
 * RAM (docs/vmm-control.md). The reply comes at once; the guest's driver
 * gets there in its own time (query's memory_actual).
 */
static struct json_object *balloon(struct vm *vm, struct json_object *req)
{
    struct json_object *t;
    char why[256];
    if (!json_object_object_get_ex(req, "target", &t) || !json_object_is_type(t, json_type_int) ||
        json_object_get_int64(t) < 0)
        return error_reply("\"target\" must be the bytes of RAM the guest should keep, a "
                           "number such as 402653184 (384 MiB)");
    if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_PAUSED)
        return error_reply("the VM is not running");
    if (virtio_balloon_request(vm, (uint64_t)json_object_get_int64(t), why, sizeof(why)) < 0)
        return error_reply(why);
    struct json_object *o = ok_reply();
    add_balloon(o, vm);
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

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The save file's directory entry is durable too: the rename survives a crash. */
static void sync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

/*
 * Write the VM to a file (docs/vmm-control.md, "save"): into the file the
 * client passed with the request, or, outside the sandbox, to path.part
 * renamed to path when complete. Then stop (exit code 6) or run on.
 */
static struct json_object *save(struct vm *vm, struct json_object *req, int *passed_fd)
{
    struct json_object *o;
    const char *path = NULL, *then = "exit";
    char why[512] = "", part[4096];

    if (json_object_object_get_ex(req, "path", &o)) {
        if (!json_object_is_type(o, json_type_string) || json_object_get_string(o)[0] != '/')
            return error_reply("\"path\" must be an absolute path");
        path = json_object_get_string(o);
        if (strlen(path) + 6 > sizeof(part))
            return error_reply("\"path\" is too long");
    }
    if (json_object_object_get_ex(req, "then", &o)) {
        then = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : "";
        if (strcmp(then, "exit") != 0 && strcmp(then, "resume") != 0)
            return error_reply("\"then\" must be \"exit\" or \"resume\"");
    }
    int fd = passed_fd ? *passed_fd : -1;
    if (fd < 0 && !path)
        return error_reply("give \"path\", or pass an open file with the request (SCM_RIGHTS)");
    if (fd < 0 && vm->cfg->sandbox.mode != SANDBOX_OFF)
        return error_reply("in its sandbox hv-vmm opens no files: pass an open, empty file with "
                           "the request (SCM_RIGHTS) instead of \"path\"");
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != 0)
            return error_reply("the file passed with the request is not an empty regular file");
    }
    if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_PAUSED)
        return error_reply(vm->state == VM_STATE_STOPPING ? "the VM is stopping"
                                                          : "the VM is not running");
    if (vm->vfio)
        return error_reply("a VM with a passed-through PCI device cannot be saved: the device's "
                           "state lives in the hardware");

    uint64_t start = mono_ms();
    bool was_running = vm->state == VM_STATE_RUNNING;
    if (was_running && vm_pause(vm) < 0)
        return error_reply("the VM could not be paused");
    bool own_fd = false;
    if (fd < 0) {
        snprintf(part, sizeof(part), "%s.part", path);
        fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            snprintf(why, sizeof(why), "cannot create %.400s: %s", part, strerror(errno));
        own_fd = fd >= 0;
    }
    struct vm_save_stats stats = {0};
    int r = fd >= 0 ? vm_save(vm, fd, &stats, why, sizeof(why)) : -1;
    if (own_fd) {
        close(fd);
        if (r == 0 && rename(part, path) < 0) {
            snprintf(why, sizeof(why), "cannot rename %.200s to %.200s: %s", part, path,
                     strerror(errno));
            r = -1;
        }
        if (r < 0)
            unlink(part); /* an earlier file at path stays as it was */
        else
            sync_dir_of(path);
    }
    if (passed_fd && *passed_fd >= 0) {
        close(*passed_fd);
        *passed_fd = -1;
    }
    if (r < 0) {
        log_err("save failed: %s", why);
        if (was_running)
            vm_resume(vm);
        return error_reply(why);
    }
    uint64_t ms = mono_ms() - start;
    log_info("saved the VM: %llu bytes (%llu pages of RAM) in %llu ms",
             (unsigned long long)stats.bytes, (unsigned long long)stats.pages,
             (unsigned long long)ms);
    if (strcmp(then, "exit") == 0)
        vm_end_saved(vm);
    else if (was_running)
        vm_resume(vm);
    struct json_object *reply = ok_reply();
    if (path)
        json_object_object_add(reply, "path", json_object_new_string(path));
    json_object_object_add(reply, "bytes", json_object_new_int64((int64_t)stats.bytes));
    json_object_object_add(reply, "ms", json_object_new_int64((int64_t)ms));
    return reply;
}

static struct json_object *handle(struct vm *vm, struct json_object *req, int *passed_fd)
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
    if (strcmp(cmd, "save") == 0)
        return save(vm, req, passed_fd);
    if (strcmp(cmd, "balloon") == 0)
        return balloon(vm, req);
    char msg[160];
    snprintf(msg, sizeof(msg),
             "unknown command \"%.60s\" (try query, pause, resume, stop, kill, "
             "cpu-state, devices, save, balloon)",
             cmd);
    return error_reply(msg);
}

struct json_object *control_handle(struct vm *vm, struct json_object *req)
{
    return handle(vm, req, NULL);
}

static void client_close(struct vm *vm, struct control_client *c)
{
    struct control *ctl = c->ctl;

    vm_watch_del(vm, &c->watch);
    close(c->watch.fd);
    if (c->passed_fd >= 0)
        close(c->passed_fd);
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
    union {
        struct cmsghdr hdr;
        uint8_t bytes[CMSG_SPACE(4 * sizeof(int))];
    } cbuf;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cbuf.bytes,
                         .msg_controllen = sizeof(cbuf)};
    ssize_t n = recvmsg(w->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* A file passed with a request: keep the first, close the rest. */
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfds; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->passed_fd >= 0)
                close(c->passed_fd);
            c->passed_fd = fd;
        }
    }
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
        send_reply(w->fd, handle(vm, req, &c->passed_fd));
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
    c->passed_fd = -1;
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
