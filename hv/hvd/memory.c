/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vm.memory: a running VM's balloon, through its hv-vmm's control socket
 * ("balloon" and "query", docs/vmm-control.md), and what vm.info shows of
 * it. hvd keeps what hv-vmm last said per VM run (its pid); while the guest
 * is still on its way to a target, hvd asks again every second and sends a
 * vm.memory event when the numbers change (docs/memory.md).
 */
#include "hvd.h"

#include "log.h"
#include "memfloor.h"
#include "util.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_USEC (1000 * 1000)
#define STILL_USEC                                                                                 \
    (UINT64_C(60) * 1000 * 1000) /* a balloon that stood still this long: not polled */

struct memop {
    char name[VMDEF_NAME_MAX + 1]; /* found again by name: the VM may be gone by then */
    pid_t pid;                     /* the run that was asked */
    struct deferred *reply;        /* a vm.memory request's, or NULL (a refresh) */
    bool refresh;
};

static sd_event_source *poll_timer;

static void mib(char *buf, size_t len, uint64_t bytes)
{
    if (bytes % MiB)
        snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes / MiB));
}

static bool cache_valid(const struct hvd_vm *vm)
{
    return hvd_vm_is_active(vm) && vm->mem_pid > 0 && vm->mem_pid == vm->vmm_pid;
}

static uint64_t now_usec(struct hvd *d)
{
    uint64_t now = 0;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
    return now;
}

/*
 * Whether the guest is still on its way to its target: asked again every
 * second, until it gets there or its balloon has not moved for a minute (a
 * guest that ignores it; the next vm.memory or vm.info asks again).
 */
static bool moving(struct hvd *d, const struct hvd_vm *vm)
{
    return cache_valid(vm) && vm->mem_driver && vm->mem_target != vm->mem_actual &&
           now_usec(d) - vm->mem_changed < STILL_USEC;
}

static struct json_object *result_of(const struct hvd_vm *vm)
{
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(vm->def->name));
    json_object_object_add(r, "memory", json_object_new_int64((int64_t)vm->def->memory));
    json_object_object_add(r, "target", json_object_new_int64(vm->mem_target));
    json_object_object_add(r, "actual", json_object_new_int64(vm->mem_actual));
    json_object_object_add(r, "balloon_driver", json_object_new_boolean(vm->mem_driver));
    return r;
}

static int64_t field(struct json_object *o, const char *key, int64_t dflt)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : dflt;
}

static void arm_poll(struct hvd *d);

static void on_reply(struct hvd *d, void *userdata, struct json_object *reply, const char *err)
{
    struct memop *op = userdata;
    struct hvd_vm *vm = hvd_find_vm(d, op->name);
    bool same = vm && vm->vmm_pid == op->pid && hvd_vm_is_active(vm);
    struct api_error e = {0};
    struct json_object *result = NULL;

    if (same && op->refresh)
        vm->mem_querying = false;
    if (!reply) {
        api_fail(&e, "vmm", "VM '%s': %s.", op->name, err);
    } else if (!same) {
        api_fail(&e, "bad-state", "VM '%s' is %s now.", op->name,
                 vm ? hvd_vm_state_name(vm->state) : "undefined");
    } else {
        int64_t memory = field(reply, "memory", (int64_t)vm->def->memory);
        int64_t target = field(reply, "memory_target", memory);
        int64_t actual = field(reply, "memory_actual", memory);
        struct json_object *drv;
        bool driver = json_object_object_get_ex(reply, "balloon_driver", &drv) &&
                      json_object_get_boolean(drv);
        bool changed = vm->mem_pid != op->pid || vm->mem_target != target ||
                       vm->mem_actual != actual || vm->mem_driver != driver;
        if (changed)
            vm->mem_changed = now_usec(d);
        vm->mem_pid = op->pid;
        vm->mem_target = target;
        vm->mem_actual = actual;
        vm->mem_driver = driver;
        if (changed) {
            struct json_object *ev = result_of(vm);
            server_emit(d, "vm.memory", ev);
        }
        if (!op->refresh)
            result = result_of(vm);
        arm_poll(d);
    }
    json_object_put(reply);
    if (!op->refresh)
        server_reply(op->reply, result, &e);
    free(op);
}

/*
 * Asks the VM's hv-vmm (req consumed) for client c, whose reply is then
 * deferred, or (c NULL) for hvd's own refresh.
 */
static int ask(struct hvd *d, struct hvd_vm *vm, struct json_object *req, struct client *c,
               struct api_error *e)
{
    struct memop *op = calloc(1, sizeof(*op));
    if (!op)
        hv_die("out of memory");
    snprintf(op->name, sizeof(op->name), "%s", vm->def->name);
    op->pid = vm->vmm_pid;
    op->refresh = !c;
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    char err[400];
    int rc =
        vmmctl_request_async(d, sock, req, -1, VMMCTL_TIMEOUT_MS, on_reply, op, err, sizeof(err));
    g_free(sock);
    if (rc < 0) {
        free(op);
        return api_fail(e, "vmm", "VM '%s': %s.", vm->def->name, err);
    }
    if (c) /* done() comes later, never from vmmctl_request_async() */
        op->reply = server_defer(c);
    return 0;
}

static void refresh(struct hvd *d, struct hvd_vm *vm)
{
    struct api_error e;
    if (vm->mem_querying || !hvd_vm_is_active(vm))
        return;
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string("query"));
    if (ask(d, vm, req, NULL, &e) == 0)
        vm->mem_querying = true;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct hvd *d = userdata;
    (void)usec;
    poll_timer = sd_event_source_disable_unref(s);
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next)
        if (moving(d, vm))
            refresh(d, vm);
    return 0;
}

/* A timer for the next round of refreshes while a guest's balloon moves. */
static void arm_poll(struct hvd *d)
{
    bool any = false;
    for (struct hvd_vm *vm = d->vms; vm && !any; vm = vm->next)
        any = moving(d, vm);
    if (!any || poll_timer)
        return;
    if (sd_event_add_time(d->loop, &poll_timer, CLOCK_MONOTONIC, now_usec(d) + POLL_USEC, 0,
                          on_poll, d) < 0)
        poll_timer = NULL;
}

struct json_object *memory_set(struct hvd *d, struct client *c, struct json_object *params,
                               struct api_error *e)
{
    struct json_object *n, *v;
    if (!json_object_object_get_ex(params, "name", &n) ||
        !json_object_is_type(n, json_type_string)) {
        api_fail(e, "bad-params", "Parameter 'name' is required.");
        return NULL;
    }
    struct hvd_vm *vm = hvd_find_vm(d, json_object_get_string(n));
    if (!vm) {
        api_fail(e, "not-found", "No VM named '%.64s' is defined.", json_object_get_string(n));
        return NULL;
    }
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
        api_fail(e, "bad-state",
                 "VM '%s' is %s: its memory can be changed only while it runs (for its next "
                 "start, change 'memory' in its definition).",
                 vm->def->name, hvd_vm_state_name(vm->state));
        return NULL;
    }
    struct json_object *req = json_object_new_object();
    if (json_object_object_get_ex(params, "size", &v) && v) {
        uint64_t size = 0;
        const char *why = "expected a size such as 384M or 1G";
        if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0)
            size = (uint64_t)json_object_get_int64(v);
        else if (!json_object_is_type(v, json_type_string) ||
                 parse_size(json_object_get_string(v), &size, &why) < 0) {
            json_object_put(req);
            api_fail(e, "bad-params", "Parameter 'size': %s.", why);
            return NULL;
        }
        uint64_t memory = vm->def->memory, floor = hv_memory_floor(memory);
        char s[32], m[32], f[32];
        mib(s, sizeof(s), size);
        mib(m, sizeof(m), memory);
        mib(f, sizeof(f), floor);
        if (size > memory) {
            json_object_put(req);
            api_fail(e, "bad-params",
                     "Parameter 'size': %s is more than VM '%s' was started with (%s); a "
                     "running VM can only give memory back (for more, change 'memory' in its "
                     "definition and start it again).",
                     s, vm->def->name, m);
            return NULL;
        }
        if (size < floor) {
            json_object_put(req);
            api_fail(e, "bad-params",
                     "Parameter 'size': %s is below the least VM '%s' may keep, %s (128 MiB or "
                     "an eighth of its %s, whichever is more).",
                     s, vm->def->name, f, m);
            return NULL;
        }
        vm->mem_changed = now_usec(d);
        json_object_object_add(req, "cmd", json_object_new_string("balloon"));
        json_object_object_add(req, "target", json_object_new_int64((int64_t)size));
        log_info("VM %s: memory target %s of %s", vm->def->name, s, m);
    } else {
        json_object_object_add(req, "cmd", json_object_new_string("query"));
    }
    if (ask(d, vm, req, c, e) == 0)
        api_defer(e);
    return NULL;
}

void memory_info(struct hvd *d, struct hvd_vm *vm, struct json_object *r)
{
    bool known = cache_valid(vm);
    json_object_object_add(r, "memory_target",
                           known ? json_object_new_int64(vm->mem_target) : NULL);
    json_object_object_add(r, "memory_actual",
                           known ? json_object_new_int64(vm->mem_actual) : NULL);
    /* Not asked yet in this run (a start, an hvd restart): ask now, the next vm.info has it. */
    if (!known && hvd_vm_is_active(vm))
        refresh(d, vm);
}
