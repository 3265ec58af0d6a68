/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Save and restore (docs/hvd.md, "Save and restore"): vm.save asks the VM's
 * hv-vmm to write itself into a file hvd opened and passes with the request
 * (a sandboxed hv-vmm opens no files), then stop; a saved VM is one whose
 * save file exists. vm.start of a saved VM runs hv-vmm with --restore and
 * removes the file only once hv-vmm answers a query, i.e. the VM runs
 * again: a restore that fails leaves the VM saved. host.suspend and
 * host.resume do it for every VM around a host sleep.
 */
#include "hvd.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SAVE_SUFFIX      ".hvsave"
#define PROGRESS_USEC    (250 * 1000)
#define GRACE_USEC       (2 * 1000 * 1000) /* for hv-vmm's exit after a failed restore query */
#define RESUME_LIST      "resume-after-sleep"
#define EXIT_ERROR_CODE  1
#define EXIT_USAGE_CODE  2
#define EXIT_EXEC_FAILED 127

struct suspend; /* one host.suspend */

struct saveop {
    struct hvd *d;
    char name[VMDEF_NAME_MAX + 1]; /* found again by name: the VM may have changed */
    pid_t pid;                     /* the hv-vmm asked */
    bool restore;                  /* a restore's confirmation, else a save */
    bool call_pending;             /* vmmctl still holds a pointer to this op */
    bool answered;                 /* replied and detached from its VM */
    struct deferred *reply;        /* NULL: no client waits */
    struct suspend *group;
    int fd; /* save: hvd's descriptor of the .part file */
    uint64_t memory;
    double fraction; /* last progress sent */
    int64_t bytes, ms;
    sd_event_source *timer; /* save: progress ticks; restore: grace for hv-vmm's exit */
};

struct suspend {
    struct hvd *d;
    struct deferred *reply;
    int pending;
    bool skipped; /* a shutdown without --save-on-shutdown: nothing saved, the list kept */
    struct json_object *saved, *failed;
};

static void suspend_done_one(struct suspend *g, const char *name, const struct api_error *e);

char *save_path(struct hvd *d, const struct hvd_vm *vm, const char *suffix)
{
    return g_strdup_printf("%s/%s" SAVE_SUFFIX "%s", d->saved_dir, vm->def->name,
                           suffix ? suffix : "");
}

bool save_file_exists(struct hvd *d, const struct hvd_vm *vm)
{
    char *p = save_path(d, vm, NULL);
    struct stat st;
    bool yes = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
    g_free(p);
    return yes;
}

/*
 * <state-dir>/saved is root's and 0700: hvd opens each file and hands it to
 * hv-vmm, and hv-vmm opens its --restore file before it drops to the VM's
 * user, so no VM's user needs (or has) any access to any save file.
 */
int save_prepare_dir(struct hvd *d)
{
    if (g_mkdir_with_parents(d->saved_dir, 0700) < 0) {
        log_err("cannot create %s: %s", d->saved_dir, strerror(errno));
        return -1;
    }
    if (chmod(d->saved_dir, 0700) < 0)
        log_warn("cannot make %s private: %s", d->saved_dir, strerror(errno));
    return 0;
}

static void sync_dir(struct hvd *d)
{
    int fd = open(d->saved_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void remove_file(struct hvd *d, struct hvd_vm *vm, const char *suffix)
{
    char *p = save_path(d, vm, suffix);
    if (unlink(p) == 0)
        sync_dir(d);
    g_free(p);
}

/* The .part file of a save hv-vmm completed becomes the save file. */
static bool finish_part(struct hvd *d, struct hvd_vm *vm)
{
    char *part = save_path(d, vm, ".part"), *path = save_path(d, vm, NULL);
    int fd = open(part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    bool ok = false;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
        ok = rename(part, path) == 0;
        if (!ok)
            log_err("VM %s: cannot rename %s to %s: %s", vm->def->name, part, path,
                    strerror(errno));
        sync_dir(d);
    }
    g_free(part);
    g_free(path);
    return ok;
}

static void emit_progress(struct hvd *d, struct saveop *op, const char *state)
{
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(op->name));
    json_object_object_add(p, "op", json_object_new_string("save"));
    json_object_object_add(p, "fraction", json_object_new_double(op->fraction));
    json_object_object_add(p, "bytes", json_object_new_int64(op->bytes));
    json_object_object_add(p, "state", json_object_new_string(state));
    server_emit(d, "vm.progress", p);
}

static void op_free_if_done(struct saveop *op)
{
    if (!op->answered || op->call_pending)
        return;
    sd_event_source_disable_unref(op->timer);
    if (op->fd >= 0)
        close(op->fd);
    free(op);
}

/* Replies (result consumed, or e), detaches the op from its VM, frees it when it may. */
static void op_answer(struct hvd *d, struct saveop *op, struct json_object *result,
                      const struct api_error *e)
{
    struct hvd_vm *vm = hvd_find_vm(d, op->name);
    if (vm && vm->save_op == op) {
        vm->save_op = NULL;
        vm->ctl_busy = false;
    }
    op->answered = true;
    op->timer = sd_event_source_disable_unref(op->timer);
    if (!op->restore)
        emit_progress(d, op, result ? "done" : "failed");
    if (op->group)
        suspend_done_one(op->group, op->name, result ? NULL : e);
    if (op->reply)
        server_reply(op->reply, result, e);
    else
        json_object_put(result);
    op->reply = NULL;
    op_free_if_done(op);
}

static struct json_object *saved_result(struct hvd *d, struct hvd_vm *vm, struct saveop *op)
{
    struct json_object *r = hvd_vm_name_state(vm);
    char *p = save_path(d, vm, NULL);
    struct stat st;
    if (op->bytes <= 0 && stat(p, &st) == 0)
        op->bytes = st.st_size;
    json_object_object_add(r, "path", json_object_new_string(p));
    json_object_object_add(r, "bytes", json_object_new_int64(op->bytes));
    json_object_object_add(r, "ms", json_object_new_int64(op->ms));
    g_free(p);
    return r;
}

/* ---- save ---- */

/* Every 250 ms: the .part file's size against the VM's RAM, sent when it grew by 1 %. */
static int on_save_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct saveop *op = userdata;
    struct stat st;
    if (op->fd >= 0 && fstat(op->fd, &st) == 0 && op->memory > 0) {
        /* Zero pages are not stored: the size is a lower bound of the work done. */
        double f = (double)st.st_size / (double)op->memory;
        if (f > 0.99)
            f = 0.99;
        if (f >= op->fraction + 0.01) {
            op->fraction = f;
            op->bytes = st.st_size;
            emit_progress(op->d, op, "running");
        }
    }
    sd_event_source_set_time(s, usec + PROGRESS_USEC);
    sd_event_source_set_enabled(s, SD_EVENT_ON); /* a one-shot timer, armed again */
    return 0;
}

static void on_save_reply(struct hvd *d, void *userdata, struct json_object *reply, const char *err)
{
    struct saveop *op = userdata;
    op->call_pending = false;
    if (op->answered) { /* hv-vmm's exit answered first */
        json_object_put(reply);
        op_free_if_done(op);
        return;
    }
    struct hvd_vm *vm = hvd_find_vm(d, op->name);
    struct api_error e = {0};
    if (!reply) {
        /* A refusal removes the part file; a timeout does not: hv-vmm may still write it. */
        if (vm && strncmp(err, "hv-vmm refused", 14) == 0)
            remove_file(d, vm, ".part");
        api_fail(&e, "vmm", "VM '%s' was not saved: %s.", op->name, err);
        log_warn("VM %s was not saved: %s", op->name, err);
        op_answer(d, op, NULL, &e);
        return;
    }
    struct json_object *v;
    if (json_object_object_get_ex(reply, "bytes", &v))
        op->bytes = json_object_get_int64(v);
    if (json_object_object_get_ex(reply, "ms", &v))
        op->ms = json_object_get_int64(v);
    json_object_put(reply);
    if (op->fd >= 0)
        fsync(op->fd);
    if (vm && hvd_vm_is_active(vm) && vm->vmm_pid == op->pid) {
        /* hv-vmm exits with 6 next: handle_exit() finishes the file and answers. */
        op->fraction = 1;
        return;
    }
    if (vm && finish_part(d, vm))
        vm->state = VM_SAVED;
    if (vm && vm->state == VM_SAVED) {
        op->fraction = 1;
        op_answer(d, op, saved_result(d, vm, op), &e);
    } else {
        api_fail(&e, "vmm", "VM '%s' was saved by hv-vmm, but its save file is missing.", op->name);
        op_answer(d, op, NULL, &e);
    }
}

/* hv-vmm's time for a save: a minute, and a second per 32 MiB of RAM. */
static int save_timeout_ms(const struct vmdef *def)
{
    uint64_t s = 60 + (def->memory >> 25);
    return s > 3600 ? 3600 * 1000 : (int)s * 1000;
}

static int start_save(struct hvd *d, struct client *c, struct hvd_vm *vm, struct suspend *group,
                      struct api_error *e)
{
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
        return api_fail(e, "bad-state", "VM '%s' is %s; only a running or paused VM can be saved.",
                        vm->def->name, hvd_vm_state_name(vm->state));
    if (vm->def->pci && vm->def->pci[0])
        return api_fail(e, "bad-state",
                        "VM '%s' cannot be saved: it has passed-through PCI devices (pci=%s), "
                        "whose state lives in the hardware.",
                        vm->def->name, vm->def->pci[0]);
    if (vm->ctl_busy || vm->save_op)
        return api_fail(e, "bad-state", "VM '%s' is busy: hv-vmm has not answered yet.",
                        vm->def->name);
    if (save_prepare_dir(d) < 0)
        return api_fail(e, "internal", "Cannot create %s: %s.", d->saved_dir, strerror(errno));
    if (vm->restoring) { /* it runs, so the file it came from is stale */
        remove_file(d, vm, NULL);
        vm->restoring = false;
    }
    char *part = save_path(d, vm, ".part");
    unlink(part); /* a fresh file: an earlier hv-vmm may still hold the old one */
    int fd = open(part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        api_fail(e, "internal", "Cannot create %s: %s.", part, strerror(errno));
        g_free(part);
        return -1;
    }
    g_free(part);
    int pass = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    struct saveop *op = calloc(1, sizeof(*op));
    if (!op || pass < 0)
        hv_die("out of memory");
    op->d = d;
    snprintf(op->name, sizeof(op->name), "%s", vm->def->name);
    op->pid = vm->vmm_pid;
    op->fd = fd;
    op->memory = vm->def->memory;
    op->group = group;
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string("save"));
    json_object_object_add(req, "then", json_object_new_string("exit"));
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    char err[400];
    int rc = vmmctl_request_async(d, sock, req, pass, save_timeout_ms(vm->def), on_save_reply, op,
                                  err, sizeof(err));
    g_free(sock);
    if (rc < 0) {
        remove_file(d, vm, ".part");
        close(fd);
        free(op);
        return api_fail(e, "vmm", "VM '%s': %s.", vm->def->name, err);
    }
    op->call_pending = true;
    uint64_t now = 0;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
    if (sd_event_add_time(d->loop, &op->timer, CLOCK_MONOTONIC, now + PROGRESS_USEC, 10000,
                          on_save_tick, op) < 0)
        log_warn("VM %s: no progress events for this save", vm->def->name);
    vm->ctl_busy = true;
    vm->save_op = op;
    log_info("VM %s: saving to %s/%s" SAVE_SUFFIX, vm->def->name, d->saved_dir, vm->def->name);
    emit_progress(d, op, "running");
    if (c) {
        op->reply = server_defer(c);
        api_defer(e);
    }
    return 0;
}

int save_vm(struct hvd *d, struct client *c, struct hvd_vm *vm, struct api_error *e)
{
    if (start_save(d, c, vm, NULL, e) < 0)
        return -1;
    return -1; /* deferred: e says so */
}

int save_discard(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    if (vm->state != VM_SAVED)
        return api_fail(e, "bad-state", "VM '%s' is %s, not saved: there is nothing to discard.",
                        vm->def->name, hvd_vm_state_name(vm->state));
    remove_file(d, vm, NULL);
    remove_file(d, vm, ".part");
    vm->state = VM_SHUTOFF;
    log_info("VM %s: saved state discarded; it starts afresh next time", vm->def->name);
    hvd_vm_emit_state(d, vm, "discarded");
    return 0;
}

/* ---- restore ---- */

/* The sentence hv-vmm logged about the restore ("cannot restore from PATH: ..."), or NULL. */
static char *restore_error(struct hvd *d, struct hvd_vm *vm)
{
    char *log = hvd_vm_run_path(d, vm, "vmm.log");
    char *text = NULL, *found = NULL;
    if (g_file_get_contents(log, &text, NULL, NULL)) {
        char *last = NULL;
        for (char *p = strstr(text, "cannot restore from"); p;
             p = strstr(p + 1, "cannot restore from"))
            last = p;
        if (last) {
            size_t n = strcspn(last, "\r\n");
            if (n > 400)
                n = 400;
            found = g_strndup(last, n);
        }
    }
    g_free(text);
    g_free(log);
    return found;
}

static void restore_confirmed(struct hvd *d, struct hvd_vm *vm, struct saveop *op)
{
    remove_file(d, vm, NULL);
    vm->restoring = false;
    log_info("VM %s restored (hv-vmm pid %d); its save file is removed", vm->def->name,
             (int)vm->vmm_pid);
    struct json_object *r = hvd_vm_name_state(vm);
    json_object_object_add(r, "restored", json_object_new_boolean(true));
    op_answer(d, op, r, NULL);
    hvd_vm_emit_state(d, vm, "restored");
}

static int on_restore_grace(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s;
    (void)usec;
    struct saveop *op = userdata;
    struct hvd *d = op->d;
    struct api_error e;
    api_fail(&e, "vmm",
             "VM '%s': hv-vmm did not confirm the restore; the save file is kept until the VM "
             "has run.",
             op->name);
    op_answer(d, op, NULL, &e);
    return 0;
}

static void on_restore_reply(struct hvd *d, void *userdata, struct json_object *reply,
                             const char *err)
{
    struct saveop *op = userdata;
    struct json_object *st;
    op->call_pending = false;
    /* A VM saved while paused may come back paused: hv-vmm's query says. */
    bool paused = reply && json_object_object_get_ex(reply, "state", &st) &&
                  strcmp(json_object_get_string(st), "paused") == 0;
    bool answered = reply != NULL;
    json_object_put(reply);
    if (op->answered) {
        op_free_if_done(op);
        return;
    }
    struct hvd_vm *vm = hvd_find_vm(d, op->name);
    bool same = vm && vm->save_op == op && hvd_vm_is_active(vm) && vm->vmm_pid == op->pid;
    if (answered && same) {
        if (paused)
            vm->state = VM_PAUSED;
        restore_confirmed(d, vm, op);
        return;
    }
    /* hv-vmm that could not restore exits at once: let handle_exit() give its reason. */
    log_debug("VM %s: no answer after the restore yet: %s", op->name, err ? err : "");
    uint64_t now = 0;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
    if (sd_event_add_time(d->loop, &op->timer, CLOCK_MONOTONIC, now + GRACE_USEC, 10000,
                          on_restore_grace, op) < 0)
        on_restore_grace(NULL, 0, op);
}

/* hv-vmm's time to load a save file: 30 s, and a second per 64 MiB of RAM. */
static int restore_timeout_ms(const struct vmdef *def)
{
    uint64_t s = 30 + (def->memory >> 26);
    return s > 3600 ? 3600 * 1000 : (int)s * 1000;
}

void save_restore_started(struct hvd *d, struct client *c, struct hvd_vm *vm, struct api_error *e)
{
    struct saveop *op = calloc(1, sizeof(*op));
    if (!op)
        hv_die("out of memory");
    op->d = d;
    snprintf(op->name, sizeof(op->name), "%s", vm->def->name);
    op->pid = vm->vmm_pid;
    op->restore = true;
    op->fd = -1;
    vm->save_op = op;
    vm->ctl_busy = true;
    if (c) {
        op->reply = server_defer(c);
        api_defer(e);
    }
    /* hv-vmm serves its control socket only once the VM runs: an answer means restored. */
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string("query"));
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    char err[400];
    op->call_pending = vmmctl_request_async(d, sock, req, -1, restore_timeout_ms(vm->def),
                                            on_restore_reply, op, err, sizeof(err)) == 0;
    g_free(sock);
    if (!op->call_pending)
        on_restore_reply(d, op, NULL, err);
}

void save_reattached(struct hvd *d, struct hvd_vm *vm)
{
    if (!hvd_vm_is_active(vm) || !save_file_exists(d, vm))
        return;
    /* Restored by an hvd that stopped before it saw the VM run: confirm it now. */
    vm->restoring = true;
    struct api_error ignored;
    save_restore_started(d, NULL, vm, &ignored);
}

const char *save_vm_ended(struct hvd *d, struct hvd_vm *vm, int code)
{
    struct saveop *op = vm->save_op;
    const char *why = NULL;
    struct api_error e = {0};

    if (code == 6) {
        finish_part(d, vm); /* exit 6: hv-vmm completed the file */
        if (!save_file_exists(d, vm)) {
            log_err("VM %s: hv-vmm saved the VM and stopped, but its save file is missing",
                    vm->def->name);
            vm->state = VM_CRASHED;
        }
    } else if (op && !op->restore) {
        remove_file(d, vm, ".part");
    }
    if (vm->restoring) {
        bool failed =
            code == EXIT_ERROR_CODE || code == EXIT_USAGE_CODE || code == EXIT_EXEC_FAILED;
        if (failed) {
            char *msg = restore_error(d, vm);
            log_err("VM %s was not restored: %s; it stays saved", vm->def->name,
                    msg ? msg : "hv-vmm failed (see its vmm.log)");
            api_fail(&e, "vmm", "VM '%s' was not restored (%s); it stays saved.", vm->def->name,
                     msg ? msg : "hv-vmm failed; see its vmm.log");
            g_free(msg);
            why = "restore-failed";
        } else {
            remove_file(d, vm, NULL); /* it ran: the file is stale */
        }
        vm->restoring = false;
    }
    if (save_file_exists(d, vm))
        vm->state = VM_SAVED;
    if (vm->state == VM_SAVED && !why)
        why = "saved";
    if (op) {
        if (op->restore && e.code) {
            op_answer(d, op, NULL, &e);
        } else if (op->restore) {
            op_answer(d, op, hvd_vm_name_state(vm), NULL);
        } else if (code == 6 && vm->state == VM_SAVED) {
            op->fraction = 1;
            op_answer(d, op, saved_result(d, vm, op), NULL);
        } else {
            api_fail(&e, "vmm", "VM '%s' ended (%s) before its save was complete.", vm->def->name,
                     vm->last_exit.reason);
            op_answer(d, op, NULL, &e);
        }
    }
    vm->ctl_busy = false;
    return why;
}

/* ---- definitions of saved VMs ---- */

static bool str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool strv_same(char **a, char **b)
{
    size_t na = a ? g_strv_length(a) : 0, nb = b ? g_strv_length(b) : 0;
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

int save_check_replace(const struct hvd_vm *vm, const struct vmdef *def, struct api_error *e)
{
    const struct vmdef *o = vm->def;
    char mac_old[18], mac_new[18];
    vmdef_mac(o, mac_old);
    vmdef_mac(def, mac_new);
    const char *field = NULL;
    if (o->memory != def->memory)
        field = "memory";
    else if (o->cpus != def->cpus)
        field = "cpus";
    else if (!strv_same(o->disks, def->disks))
        field = "disk";
    else if (!strv_same(o->pci, def->pci))
        field = "pci";
    else if (!strv_same(o->pci_slots, def->pci_slots))
        field = "pci_slots";
    else if (!str_same(o->net, def->net))
        field = "net";
    else if (strcmp(mac_old, mac_new) != 0)
        field = "mac";
    else if (o->vsock != def->vsock)
        field = "vsock";
    else if (o->display != def->display)
        field = "display";
    else if (!str_same(o->gpu, def->gpu))
        field = "gpu";
    else if (!str_same(o->firmware, def->firmware))
        field = "firmware";
    else if (!str_same(o->role, def->role))
        field = "role";
    else if (!str_same(o->kernel, def->kernel) || !str_same(o->initrd, def->initrd) ||
             !str_same(o->cmdline, def->cmdline))
        field = !str_same(o->kernel, def->kernel)   ? "kernel"
                : !str_same(o->initrd, def->initrd) ? "initrd"
                                                    : "cmdline";
    if (!field)
        return 0;
    return api_fail(e, "bad-state",
                    "VM '%s' is saved: field '%s' cannot change until it is restored (vm.start) "
                    "or its saved state is discarded (vm.discard); colour, os, autostart and "
                    "slot may change.",
                    o->name, field);
}

/* ---- host.suspend, host.resume ---- */

static char *resume_list_path(struct hvd *d)
{
    return g_strdup_printf("%s/" RESUME_LIST, d->saved_dir);
}

/* The VMs to restore after the wake, for host.resume. */
static void write_resume_list(struct suspend *g)
{
    char *path = resume_list_path(g->d), *old = NULL;
    /* Appended to: VMs saved by an earlier suspend and not resumed yet stay listed. */
    GString *list = g_string_new(g_file_get_contents(path, &old, NULL, NULL) ? old : "");
    g_free(old);
    for (size_t i = 0; i < json_object_array_length(g->saved); i++)
        g_string_append_printf(list, "%s\n",
                               json_object_get_string(json_object_array_get_idx(g->saved, i)));
    GError *gerr = NULL;
    if (!g_file_set_contents(path, list->str, (gssize)list->len, &gerr)) {
        log_err("cannot write %s: %s", path, gerr->message);
        g_error_free(gerr);
    }
    g_free(path);
    g_string_free(list, TRUE);
}

static void suspend_finish(struct suspend *g)
{
    struct hvd *d = g->d;
    if (!g->skipped)
        write_resume_list(g);
    struct json_object *ev = json_object_new_object();
    json_object_object_add(ev, "state", json_object_new_string(g->skipped ? "skipped" : "done"));
    json_object_object_add(ev, "saved", json_object_get(g->saved));
    json_object_object_add(ev, "failed", json_object_get(g->failed));
    server_emit(d, "host.suspend", ev);
    log_info("host.suspend: %zu VMs saved, %zu not", json_object_array_length(g->saved),
             json_object_array_length(g->failed));
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "saved", g->saved);
    json_object_object_add(r, "failed", g->failed);
    if (g->reply)
        server_reply(g->reply, r, NULL);
    else
        json_object_put(r);
    free(g);
}

static void add_failure(struct json_object *failed, const char *name, const char *message)
{
    struct json_object *f = json_object_new_object();
    json_object_object_add(f, "name", json_object_new_string(name));
    json_object_object_add(f, "error", json_object_new_string(message));
    json_object_array_add(failed, f);
}

static void suspend_done_one(struct suspend *g, const char *name, const struct api_error *e)
{
    if (e)
        add_failure(g->failed, name, e->message);
    else
        json_object_array_add(g->saved, json_object_new_string(name));
    if (--g->pending == 0)
        suspend_finish(g);
}

struct json_object *save_host_suspend(struct hvd *d, struct client *c, struct json_object *params,
                                      struct api_error *e)
{
    struct json_object *v;
    const char *reason = "sleep";
    if (json_object_object_get_ex(params, "reason", &v)) {
        reason = json_object_get_string(v);
        if (!json_object_is_type(v, json_type_string) ||
            (strcmp(reason, "sleep") != 0 && strcmp(reason, "shutdown") != 0)) {
            api_fail(e, "bad-params", "Parameter 'reason' must be \"sleep\" or \"shutdown\".");
            return NULL;
        }
    }
    struct suspend *g = calloc(1, sizeof(*g));
    if (!g)
        hv_die("out of memory");
    g->d = d;
    g->saved = json_object_new_array();
    g->failed = json_object_new_array();
    g->pending = 1; /* held until every save has started */
    bool skip = strcmp(reason, "shutdown") == 0 && !d->save_on_shutdown;
    g->skipped = skip;
    struct json_object *names = json_object_new_array();
    for (struct hvd_vm *vm = d->vms; vm && !skip; vm = vm->next) {
        if (!hvd_vm_is_active(vm))
            continue;
        struct api_error err = {0};
        g->pending++;
        if (start_save(d, NULL, vm, g, &err) < 0) {
            g->pending--;
            add_failure(g->failed, vm->def->name, err.message);
        } else {
            json_object_array_add(names, json_object_new_string(vm->def->name));
        }
    }
    if (!skip) {
        struct json_object *ev = json_object_new_object();
        json_object_object_add(ev, "state", json_object_new_string("saving"));
        json_object_object_add(ev, "reason", json_object_new_string(reason));
        json_object_object_add(ev, "vms", names);
        server_emit(d, "host.suspend", ev);
    } else {
        json_object_put(names);
    }
    if (skip)
        log_info("host.suspend for a shutdown: VMs are not saved (hvd --save-on-shutdown is off)");
    g->reply = server_defer(c);
    api_defer(e);
    if (--g->pending == 0)
        suspend_finish(g); /* nothing to wait for: answered from here, still deferred */
    return NULL;
}

struct json_object *save_host_resume(struct hvd *d, struct client *c, struct json_object *params,
                                     struct api_error *e)
{
    (void)c;
    (void)params;
    (void)e;
    char *path = resume_list_path(d), *text = NULL;
    struct json_object *restoring = json_object_new_array(), *failed = json_object_new_array();
    if (g_file_get_contents(path, &text, NULL, NULL)) {
        char **names = g_strsplit(text, "\n", -1);
        for (char **n = names; *n; n++) {
            struct hvd_vm *vm = **n ? hvd_find_vm(d, *n) : NULL;
            if (!vm || vm->state != VM_SAVED)
                continue; /* started or discarded meanwhile */
            struct api_error err = {0};
            if (hvd_vm_start(d, vm, &err) < 0)
                add_failure(failed, vm->def->name, err.message);
            else
                json_object_array_add(restoring, json_object_new_string(vm->def->name));
        }
        g_strfreev(names);
        unlink(path);
    }
    g_free(text);
    g_free(path);
    struct json_object *ev = json_object_new_object();
    json_object_object_add(ev, "restoring", json_object_get(restoring));
    json_object_object_add(ev, "failed", json_object_get(failed));
    server_emit(d, "host.resume", ev);
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "restoring", restoring);
    json_object_object_add(r, "failed", failed);
    return r;
}
