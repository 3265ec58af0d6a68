/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The API's methods (docs/hvd-api.md): checks parameters and calls vm/disk/net. */
#include "hvd.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_DEFAULT 16384
#define CONSOLE_MAX     262144

typedef struct json_object *(*method_fn)(struct hvd *d, struct client *c,
                                         struct json_object *params, struct api_error *e);

static const char *param_str(struct json_object *params, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(params, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static bool param_bool(struct json_object *params, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(params, key, &v) && json_object_get_boolean(v);
}

static struct hvd_vm *param_vm(struct hvd *d, struct json_object *params, struct api_error *e)
{
    const char *name = param_str(params, "name");
    if (!name) {
        api_fail(e, "bad-params", "Parameter 'name' (a string) is required.");
        return NULL;
    }
    struct hvd_vm *vm = hvd_find_vm(d, name);
    if (!vm)
        api_fail(e, "not-found", "No VM named '%s' is defined.", name);
    return vm;
}

static struct json_object *vm_summary(struct hvd_vm *vm)
{
    const struct vmdef *def = vm->def;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(def->name));
    json_object_object_add(o, "state", json_object_new_string(hvd_vm_state_name(vm->state)));
    json_object_object_add(o, "memory", json_object_new_int64((int64_t)def->memory));
    json_object_object_add(o, "cpus", json_object_new_int((int)def->cpus));
    json_object_object_add(o, "colour", json_object_new_string(def->colour));
    json_object_object_add(o, "os", json_object_new_string(def->os));
    json_object_object_add(o, "role", json_object_new_string(def->role));
    json_object_object_add(o, "autostart", json_object_new_boolean(def->autostart));
    json_object_object_add(o, "pid",
                           hvd_vm_is_active(vm) ? json_object_new_int(vm->vmm_pid) : NULL);
    json_object_object_add(o, "last_exit", hvd_vm_exit_json(&vm->last_exit));
    /* hv-switch's hotkey slot while it runs with a display (0 = UIVM). */
    json_object_object_add(
        o, "slot", hvd_vm_is_active(vm) && vm->slot >= 0 ? json_object_new_int(vm->slot) : NULL);
    memory_info(vm->hvd, vm, o); /* memory_target, memory_actual: the balloon */
    return o;
}

/* ---- hello, host ---- */

static struct json_object *m_hello(struct hvd *d, struct client *c, struct json_object *params,
                                   struct api_error *e)
{
    (void)d;
    struct json_object *versions, *features;
    bool async_replies = false;
    if (json_object_object_get_ex(params, "features", &features)) {
        if (!json_object_is_type(features, json_type_array)) {
            api_fail(e, "bad-params", "Parameter 'features' must be an array of strings.");
            return NULL;
        }
        for (size_t i = 0; i < json_object_array_length(features); i++) {
            struct json_object *f = json_object_array_get_idx(features, i);
            if (json_object_is_type(f, json_type_string) &&
                strcmp(json_object_get_string(f), "async-replies") == 0)
                async_replies = true;
        }
    }
    if (json_object_object_get_ex(params, "versions", &versions)) {
        bool ok = false;
        if (!json_object_is_type(versions, json_type_array)) {
            api_fail(e, "bad-params", "Parameter 'versions' must be an array of integers.");
            return NULL;
        }
        for (size_t i = 0; i < json_object_array_length(versions); i++)
            if (json_object_get_int(json_object_array_get_idx(versions, i)) == HVD_API_VERSION)
                ok = true;
        if (!ok) {
            api_fail(e, "version", "This hvd speaks API version %d only.", HVD_API_VERSION);
            return NULL;
        }
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "server", json_object_new_string("hvd"));
    json_object_object_add(r, "server_version", json_object_new_string(HV_VERSION));
    json_object_object_add(r, "version", json_object_new_int(HVD_API_VERSION));
    struct json_object *vs = json_object_new_array();
    json_object_array_add(vs, json_object_new_int(HVD_API_VERSION));
    json_object_object_add(r, "versions", vs);
    /* The features this hvd has; those the client asked for are now on. */
    struct json_object *fs = json_object_new_array();
    json_object_array_add(fs, json_object_new_string("async-replies"));
    json_object_object_add(r, "features", fs);
    if (async_replies)
        client_set_async_replies(c);
    return r;
}

static uint64_t meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    unsigned long long kb = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            sscanf(line + n + 1, "%llu", &kb);
            break;
        }
    }
    if (f)
        fclose(f);
    return (uint64_t)kb * 1024;
}

static struct json_object *m_host_info(struct hvd *d, struct client *c, struct json_object *params,
                                       struct api_error *e)
{
    (void)c;
    (void)params;
    (void)e;
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    int running = 0;
    uint64_t assigned = 0;
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next) {
        if (hvd_vm_is_active(vm)) {
            running++;
            assigned += vm->def->memory;
        }
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "hostname", json_object_new_string(host));
    json_object_object_add(r, "cpus", json_object_new_int(get_nprocs()));
    json_object_object_add(r, "memory_total", json_object_new_int64((int64_t)meminfo("MemTotal")));
    json_object_object_add(r, "memory_available",
                           json_object_new_int64((int64_t)meminfo("MemAvailable")));
    json_object_object_add(r, "vms_running", json_object_new_int(running));
    json_object_object_add(r, "memory_assigned", json_object_new_int64((int64_t)assigned));
    json_object_object_add(r, "kvm", json_object_new_boolean(access("/dev/kvm", F_OK) == 0));
    json_object_object_add(r, "version", json_object_new_int(HVD_API_VERSION));
    return r;
}

static struct json_object *m_events_subscribe(struct hvd *d, struct client *c,
                                              struct json_object *params, struct api_error *e)
{
    (void)d;
    (void)params;
    (void)e;
    client_subscribe(c);
    struct json_object *r = json_object_new_object();
    struct json_object *all = json_object_new_array();
    static const char *const kinds[] = {"vm.state",     "vm.defined",    "vm.undefined",
                                        "disk.changed", "disk.progress", "vm.progress",
                                        "host.suspend", "host.resume"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        json_object_array_add(all, json_object_new_string(kinds[i]));
    json_object_object_add(r, "subscribed", all);
    return r;
}

/* ---- definitions ---- */

static struct json_object *m_vm_list(struct hvd *d, struct client *c, struct json_object *params,
                                     struct api_error *e)
{
    (void)c;
    (void)params;
    (void)e;
    struct json_object *list = json_object_new_array();
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next)
        json_object_array_add(list, vm_summary(vm));
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "vms", list);
    return r;
}

/* The definition in params, validated; files are checked when check_files. */
static struct vmdef *parse_definition(struct hvd *d, struct json_object *params, bool check_files,
                                      struct api_error *e)
{
    struct vmdef_ctx ctx;
    hvd_vmdef_ctx(d, &ctx);
    ctx.check_files = check_files;
    char *err = NULL;
    struct vmdef *def;
    struct json_object *obj;
    const char *text = param_str(params, "text");
    if (text)
        def = vmdef_from_text(text, strlen(text), &ctx, &err);
    else if (json_object_object_get_ex(params, "definition", &obj))
        def = vmdef_from_json(obj, &ctx, &err);
    else {
        api_fail(e, "bad-params", "Give the definition as 'text' (INI) or 'definition' (object).");
        return NULL;
    }
    if (!def) {
        api_fail(e, "invalid-definition", "%s.", err);
        free(err);
    }
    return def;
}

/*
 * A manager's definition passes policy.c before any file outside the stores
 * is looked at, so its errors do not tell which host paths exist.
 */
static struct vmdef *manager_definition(struct hvd *d, struct json_object *params,
                                        struct vmdef *def, struct hvd_vm *old, struct api_error *e)
{
    struct vmdef *checked = NULL;
    if (policy_check_define(d, def, old ? old->def : NULL, e) == 0)
        checked = parse_definition(d, params, true, e);
    vmdef_free(def);
    return checked;
}

static struct json_object *m_vm_define(struct hvd *d, struct client *c, struct json_object *params,
                                       struct api_error *e)
{
    char *err = NULL;
    struct json_object *rep;
    bool manager = client_level(c) == CLIENT_MANAGER;
    struct vmdef *def = parse_definition(d, params, !manager, e);
    if (!def)
        return NULL;
    bool replace =
        json_object_object_get_ex(params, "replace", &rep) && json_object_get_boolean(rep);
    struct hvd_vm *old = hvd_find_vm(d, def->name);
    if (old && !replace) {
        api_fail(e, "exists", "A VM named '%s' is already defined.", def->name);
        vmdef_free(def);
        return NULL;
    }
    if (manager && !(def = manager_definition(d, params, def, old, e)))
        return NULL;
    if (old)
        layout_keep(def, old->def); /* hvd's record, unless the client gives one */
    if (policy_check_vsock(d, def, e) < 0) {
        vmdef_free(def);
        return NULL;
    }
    if (old && hvd_vm_is_active(old)) {
        api_fail(e, "bad-state", "VM '%s' is %s; shut it off before replacing it.", def->name,
                 hvd_vm_state_name(old->state));
        vmdef_free(def);
        return NULL;
    }
    /* Its save file expects the same devices, memory and vCPUs (save.c). */
    if (old && old->state == VM_SAVED && save_check_replace(old, def, e) < 0) {
        vmdef_free(def);
        return NULL;
    }
    /* Each disk's format, decided now and stored with it (diskfmt.c). */
    if (diskfmt_decide(d, def, e) < 0) {
        vmdef_free(def);
        return NULL;
    }
    if (store_save(d, def, &err) < 0) {
        api_fail(e, "internal", "Cannot store the definition: %s.", err);
        free(err);
        vmdef_free(def);
        return NULL;
    }
    struct hvd_vm *vm;
    if (old) {
        vmdef_free(old->def);
        old->def = def;
        vm = old;
    } else {
        vm = hvd_add_vm(d, def);
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(def->name));
    json_object_object_add(r, "definition", vmdef_to_json(def));
    struct json_object *ev = json_object_new_object();
    json_object_object_add(ev, "name", json_object_new_string(vm->def->name));
    server_emit(d, "vm.defined", ev);
    log_info("VM %s defined", def->name);
    return r;
}

static struct json_object *m_vm_undefine(struct hvd *d, struct client *c,
                                         struct json_object *params, struct api_error *e)
{
    struct hvd_vm *vm = param_vm(d, params, e);
    if (!vm || (client_level(c) == CLIENT_MANAGER && policy_check_undefine(d, vm, e) < 0))
        return NULL;
    if (hvd_vm_is_active(vm)) {
        api_fail(e, "bad-state", "VM '%s' is %s; shut it off first.", vm->def->name,
                 hvd_vm_state_name(vm->state));
        return NULL;
    }
    if (vm->state == VM_SAVED) {
        api_fail(e, "bad-state",
                 "VM '%s' is saved; restore it (vm.start) or discard its saved state "
                 "(vm.discard) first.",
                 vm->def->name);
        return NULL;
    }
    if (store_remove(d, vm->def->name) < 0 && errno != ENOENT) {
        api_fail(e, "internal", "Cannot remove the definition of '%s': %s.", vm->def->name,
                 strerror(errno));
        return NULL;
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(vm->def->name));
    struct json_object *ev = json_object_new_object();
    json_object_object_add(ev, "name", json_object_new_string(vm->def->name));
    log_info("VM %s undefined", vm->def->name);
    hvd_vm_scratch_remove(d, vm);
    hvd_remove_vm(d, vm);
    server_emit(d, "vm.undefined", ev);
    return r;
}

static struct json_object *m_vm_get(struct hvd *d, struct client *c, struct json_object *params,
                                    struct api_error *e)
{
    (void)c;
    struct hvd_vm *vm = param_vm(d, params, e);
    if (!vm)
        return NULL;
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(vm->def->name));
    json_object_object_add(r, "definition", vmdef_to_json(vm->def));
    char *text = vmdef_to_text(vm->def);
    json_object_object_add(r, "text", json_object_new_string(text));
    free(text);
    return r;
}

static struct json_object *m_vm_info(struct hvd *d, struct client *c, struct json_object *params,
                                     struct api_error *e)
{
    (void)c;
    struct hvd_vm *vm = param_vm(d, params, e);
    if (!vm)
        return NULL;
    struct json_object *r = vm_summary(vm);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    json_object_object_add(r, "uptime",
                           hvd_vm_is_active(vm) && vm->started_at > 0
                               ? json_object_new_double(now - vm->started_at)
                               : NULL);
    json_object_object_add(r, "vsock",
                           vm->def->vsock ? json_object_new_int64(vm->def->vsock) : NULL);
    struct json_object *disks = json_object_new_array();
    for (char **dk = vm->def->disks; dk && *dk; dk++)
        json_object_array_add(disks, json_object_new_string(*dk));
    json_object_object_add(r, "disks", disks);
    json_object_object_add(r, "net", json_object_new_string(vm->def->net));
    char mac[18];
    vmdef_mac(vm->def, mac);
    json_object_object_add(r, "mac",
                           strcmp(vm->def->net, "none") ? json_object_new_string(mac) : NULL);
    char *p = hvd_vm_run_path(d, vm, "console.log");
    json_object_object_add(r, "console_log", json_object_new_string(p));
    g_free(p);
    p = hvd_vm_run_path(d, vm, "control.sock");
    json_object_object_add(r, "control_socket", json_object_new_string(p));
    g_free(p);
    return r;
}

/* ---- lifecycle ---- */

#define LIFECYCLE(fn, call)                                                                        \
    static struct json_object *fn(struct hvd *d, struct client *c, struct json_object *params,     \
                                  struct api_error *e)                                             \
    {                                                                                              \
        (void)c;                                                                                   \
        struct hvd_vm *vm = param_vm(d, params, e);                                                \
        if (!vm || call < 0)                                                                       \
            return NULL; /* shutdown, pause, resume: deferred */                                   \
        return hvd_vm_name_state(vm);                                                              \
    }

LIFECYCLE(m_vm_start, hvd_vm_start_client(d, c, vm, param_bool(params, "discard"), e))
LIFECYCLE(m_vm_save, save_vm(d, c, vm, e))
LIFECYCLE(m_vm_discard, save_discard(d, vm, e))
LIFECYCLE(m_vm_shutdown, hvd_vm_shutdown(d, c, vm, e))
LIFECYCLE(m_vm_destroy, hvd_vm_destroy(d, vm, e))
LIFECYCLE(m_vm_pause, hvd_vm_pause(d, c, vm, true, e))
LIFECYCLE(m_vm_resume, hvd_vm_pause(d, c, vm, false, e))

static struct json_object *m_vm_console(struct hvd *d, struct client *c, struct json_object *params,
                                        struct api_error *e)
{
    (void)c;
    struct hvd_vm *vm = param_vm(d, params, e);
    if (!vm)
        return NULL;
    int64_t want = CONSOLE_DEFAULT;
    struct json_object *b;
    if (json_object_object_get_ex(params, "bytes", &b)) {
        want = json_object_get_int64(b);
        if (!json_object_is_type(b, json_type_int) || want < 1 || want > CONSOLE_MAX) {
            api_fail(e, "bad-params", "Parameter 'bytes' must be an integer from 1 to %d.",
                     CONSOLE_MAX);
            return NULL;
        }
    }
    char *path = hvd_vm_run_path(d, vm, "console.log");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    g_free(path);
    struct stat st = {0};
    char *buf = calloc(1, (size_t)want + 1);
    off_t start = 0;
    ssize_t n = 0;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        start = st.st_size > want ? st.st_size - want : 0;
        n = pread(fd, buf, (size_t)want, start);
        if (n < 0)
            n = 0;
    }
    if (fd >= 0)
        close(fd);
    char *text = g_utf8_make_valid(buf, n);
    free(buf);
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(vm->def->name));
    json_object_object_add(r, "data", json_object_new_string(text));
    json_object_object_add(r, "offset", json_object_new_int64(start));
    json_object_object_add(r, "size", json_object_new_int64(st.st_size));
    g_free(text);
    return r;
}

static struct json_object *m_vm_screenshot(struct hvd *d, struct client *c,
                                           struct json_object *params, struct api_error *e)
{
    return switchctl_screenshot(d, c, params, e);
}

static struct json_object *m_vm_switch(struct hvd *d, struct client *c, struct json_object *params,
                                       struct api_error *e)
{
    return switchctl_switch(d, c, params, e);
}

/* ---- disks and networks ---- */

static struct json_object *m_disk_list(struct hvd *d, struct client *c, struct json_object *params,
                                       struct api_error *e)
{
    (void)c;
    (void)params;
    return disk_list(d, e);
}

#define DISK(fn, call)                                                                             \
    static struct json_object *fn(struct hvd *d, struct client *c, struct json_object *params,     \
                                  struct api_error *e)                                             \
    {                                                                                              \
        (void)c;                                                                                   \
        return call(d, params, e);                                                                 \
    }

/* A manager's image names must stay in the store: not a link out of it, not a device. */
static bool images_ok(struct hvd *d, struct client *c, struct json_object *params,
                      struct api_error *e)
{
    static const char *const keys[] = {"name", "source", "backing"};
    if (client_level(c) != CLIENT_MANAGER)
        return true;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (policy_check_image_param(d, params, keys[i], e) < 0)
            return false;
    return true;
}

static struct json_object *m_disk_create(struct hvd *d, struct client *c,
                                         struct json_object *params, struct api_error *e)
{
    return images_ok(d, c, params, e) ? disk_create(d, c, params, e) : NULL;
}

static struct json_object *m_disk_clone(struct hvd *d, struct client *c, struct json_object *params,
                                        struct api_error *e)
{
    return images_ok(d, c, params, e) ? disk_clone(d, c, params, e) : NULL;
}

static struct json_object *m_disk_resize(struct hvd *d, struct client *c,
                                         struct json_object *params, struct api_error *e)
{
    return images_ok(d, c, params, e) ? disk_resize(d, params, e) : NULL;
}

DISK(m_disk_delete, disk_delete)
DISK(m_disk_jobs, disk_jobs)
DISK(m_disk_cancel, disk_cancel)
DISK(m_usb_list, usb_list)
DISK(m_usb_attach, usb_attach)
DISK(m_usb_detach, usb_detach)
DISK(m_usb_rules, usb_rules)

static struct json_object *m_net_list(struct hvd *d, struct client *c, struct json_object *params,
                                      struct api_error *e)
{
    (void)c;
    (void)params;
    (void)e;
    return net_list(d);
}

/* The host's sleep hooks call these; the UIVM has no say over the host's sleep. */
static bool host_level(struct client *c, const char *method, struct api_error *e)
{
    if (client_level(c) != CLIENT_MANAGER)
        return true;
    api_fail(e, "not-allowed",
             "Not allowed from the UIVM: %s is for the host's sleep and "
             "shutdown hooks.",
             method);
    return false;
}

static struct json_object *m_host_suspend(struct hvd *d, struct client *c,
                                          struct json_object *params, struct api_error *e)
{
    return host_level(c, "host.suspend", e) ? save_host_suspend(d, c, params, e) : NULL;
}

static struct json_object *m_host_resume(struct hvd *d, struct client *c,
                                         struct json_object *params, struct api_error *e)
{
    return host_level(c, "host.resume", e) ? save_host_resume(d, c, params, e) : NULL;
}

static const struct {
    const char *name;
    method_fn fn;
} methods[] = {
    {"hello", m_hello},
    {"host.info", m_host_info},
    {"events.subscribe", m_events_subscribe},
    {"vm.list", m_vm_list},
    {"vm.define", m_vm_define},
    {"vm.undefine", m_vm_undefine},
    {"vm.get", m_vm_get},
    {"vm.info", m_vm_info},
    {"vm.start", m_vm_start},
    {"vm.shutdown", m_vm_shutdown},
    {"vm.destroy", m_vm_destroy},
    {"vm.pause", m_vm_pause},
    {"vm.save", m_vm_save},
    {"vm.discard", m_vm_discard},
    {"host.suspend", m_host_suspend},
    {"host.resume", m_host_resume},
    {"vm.resume", m_vm_resume},
    {"vm.memory", memory_set},
    {"vm.console", m_vm_console},
    {"vm.screenshot", m_vm_screenshot},
    {"vm.switch", m_vm_switch},
    {"disk.list", m_disk_list},
    {"disk.create", m_disk_create},
    {"disk.resize", m_disk_resize},
    {"disk.clone", m_disk_clone},
    {"disk.delete", m_disk_delete},
    {"disk.jobs", m_disk_jobs},
    {"disk.cancel", m_disk_cancel},
    {"net.list", m_net_list},
    {"usb.list", m_usb_list},
    {"usb.attach", m_usb_attach},
    {"usb.detach", m_usb_detach},
    {"usb.rules", m_usb_rules},
};

struct json_object *api_dispatch(struct hvd *d, struct client *c, const char *method,
                                 struct json_object *params, struct api_error *e)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i].name, method) == 0) {
            struct json_object *r = methods[i].fn(d, c, params, e);
            if (!r && !e->code)
                api_fail(e, "internal", "Method '%s' failed.", method);
            return r;
        }
    }
    char shown[80];
    snprintf(shown, sizeof(shown), "%.64s", method);
    api_fail(e, "unknown-method", "Unknown method '%s'.", shown);
    return NULL;
}
