/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VM lifecycle. Each VM runs as hv-vmm under a small watcher process (the
 * "monitor", forked from hvd into its own session) that waits for hv-vmm and
 * writes its exit status to <run-dir>/vms/NAME/exit. hvd watches the monitor
 * with a pidfd, so a restarted hvd re-attaches to VMs it did not start and
 * still learns how each one ended (docs/hvd.md).
 */
#include "hvd.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MONITOR_COMM  "hvd-monitor"
#define EXIT_POWEROFF 0
#define EXIT_ERROR    1
#define EXIT_USAGE    2
#define EXIT_REBOOT   3
#define EXIT_KILLED   4
#define EXIT_SAVED    6 /* "save" with then=exit: the save file is complete */

#define VMM_MAX_IMAGE_DIRS 8 /* hv-vmm's limit of --image-dir options */

int api_fail(struct api_error *e, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

const char *hvd_vm_state_name(enum hvd_vm_state s)
{
    switch (s) {
    case VM_RUNNING:
        return "running";
    case VM_PAUSED:
        return "paused";
    case VM_SHUTTING_DOWN:
        return "shutting-down";
    case VM_CRASHED:
        return "crashed";
    case VM_SAVED:
        return "saved";
    case VM_SHUTOFF:
        break;
    }
    return "shutoff";
}

bool hvd_vm_is_active(const struct hvd_vm *vm)
{
    return vm->state == VM_RUNNING || vm->state == VM_PAUSED || vm->state == VM_SHUTTING_DOWN;
}

char *hvd_vm_run_path(struct hvd *d, const struct hvd_vm *vm, const char *file)
{
    return g_strdup_printf("%s/vms/%s%s%s", d->run_dir, vm->def->name, file ? "/" : "",
                           file ? file : "");
}

static double now_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Whether pid is (still) a process whose name is comm. */
static bool pid_has_comm(pid_t pid, const char *comm)
{
    char path[64], buf[32] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(buf, sizeof(buf), f) && strncmp(buf, comm, strlen(comm)) == 0;
    fclose(f);
    return ok;
}

static void write_file(const char *path, const char *text)
{
    GError *gerr = NULL;
    if (!g_file_set_contents(path, text, -1, &gerr)) {
        log_warn("cannot write %s: %s", path, gerr->message);
        g_error_free(gerr);
    }
}

static void remove_run_file(struct hvd *d, struct hvd_vm *vm, const char *file)
{
    char *p = hvd_vm_run_path(d, vm, file);
    unlink(p);
    g_free(p);
}

struct json_object *hvd_vm_exit_json(const struct hvd_vm_exit *x)
{
    if (!x->valid)
        return NULL;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "reason", json_object_new_string(x->reason));
    json_object_object_add(o, x->signalled ? "signal" : "status", json_object_new_int(x->code));
    return o;
}

void hvd_vm_emit_state(struct hvd *d, struct hvd_vm *vm, const char *reason)
{
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(vm->def->name));
    json_object_object_add(p, "state", json_object_new_string(hvd_vm_state_name(vm->state)));
    json_object_object_add(p, "reason", json_object_new_string(reason));
    if (hvd_vm_is_active(vm))
        json_object_object_add(p, "pid", json_object_new_int(vm->vmm_pid));
    else if (vm->last_exit.valid)
        json_object_object_add(p, "last_exit", hvd_vm_exit_json(&vm->last_exit));
    server_emit(d, "vm.state", p);
}

static void emit_state(struct hvd *d, struct hvd_vm *vm, const char *reason)
{
    hvd_vm_emit_state(d, vm, reason);
}

/* ---- the monitor process ---- */

static _Noreturn void exec_vmm(char **argv, const char *log_path)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (null >= 0)
        dup2(null, 0);
    if (logfd >= 0) {
        dup2(logfd, 1);
        dup2(logfd, 2);
    }
    execv(argv[0], argv);
    dprintf(2, "hvd: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static _Noreturn void run_monitor(char **argv, int report_fd, const char *log_path,
                                  const char *exit_path)
{
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    setsid();
    prctl(PR_SET_NAME, MONITOR_COMM);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    pid_t vmm = fork();
    if (vmm == 0)
        exec_vmm(argv, log_path);
    write_full(report_fd, &vmm, sizeof(vmm));
    close(report_fd);
    if (vmm < 0)
        _exit(1);
    /* hvd's sockets and event fds were inherited: drop them all. */
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    signal(SIGTERM, SIG_IGN); /* the VM decides when it ends, not a stray signal */
    signal(SIGHUP, SIG_IGN);
    int status;
    while (waitpid(vmm, &status, 0) < 0 && errno == EINTR)
        ;
    char text[64];
    if (WIFSIGNALED(status))
        snprintf(text, sizeof(text), "signal %d\n", WTERMSIG(status));
    else
        snprintf(text, sizeof(text), "exit %d\n", WEXITSTATUS(status));
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", exit_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        write_full(fd, text, strlen(text));
        fsync(fd);
        close(fd);
        rename(tmp, exit_path);
    }
    _exit(0);
}

/* ---- exit handling ---- */

static void classify_exit(struct hvd_vm *vm, bool have, bool signalled, int code)
{
    struct hvd_vm_exit *x = &vm->last_exit;
    x->valid = true;
    x->signalled = signalled;
    x->code = have ? code : -1;
    const char *reason;
    if (vm->destroying)
        reason = "killed";
    else if (!have || signalled)
        reason = "crashed";
    else if (code == EXIT_POWEROFF)
        reason = "poweroff";
    else if (code == EXIT_REBOOT)
        reason = "reboot";
    else if (code == EXIT_KILLED)
        reason = "killed";
    else if (code == EXIT_SAVED)
        reason = "saved";
    else if (code == EXIT_ERROR || code == EXIT_USAGE || code == 127)
        reason = "error";
    else
        reason = "crashed";
    snprintf(x->reason, sizeof(x->reason), "%s", reason);
}

static bool parse_exit_text(const char *text, bool *signalled, int *code)
{
    if (sscanf(text, "exit %d", code) == 1) {
        *signalled = false;
        return true;
    }
    if (sscanf(text, "signal %d", code) == 1) {
        *signalled = true;
        return true;
    }
    return false;
}

/* The monitor is gone: record how the VM ended and tell the subscribers. */
static void handle_exit(struct hvd *d, struct hvd_vm *vm)
{
    sd_event_source_disable_unref(vm->exit_source);
    vm->exit_source = NULL;
    if (vm->monitor_pidfd >= 0) {
        siginfo_t si;
        waitid((idtype_t)P_PIDFD, (id_t)vm->monitor_pidfd, &si, WEXITED | WNOHANG);
        close(vm->monitor_pidfd);
        vm->monitor_pidfd = -1;
    }
    char *exit_path = hvd_vm_run_path(d, vm, "exit");
    char *last_path = hvd_vm_run_path(d, vm, "last-exit");
    char *text = NULL;
    bool signalled = false;
    int code = 0;
    bool have = g_file_get_contents(exit_path, &text, NULL, NULL) &&
                parse_exit_text(text, &signalled, &code);
    g_free(text);
    classify_exit(vm, have, signalled, code);
    char line[64];
    snprintf(line, sizeof(line), "%s %s %d\n", vm->last_exit.reason,
             vm->last_exit.signalled ? "signal" : "exit", vm->last_exit.code);
    write_file(last_path, line);
    unlink(exit_path);
    g_free(exit_path);
    g_free(last_path);
    remove_run_file(d, vm, "monitor.pid");
    remove_run_file(d, vm, "started");
    remove_run_file(d, vm, "control.sock"); /* hv-vmm's user may not remove it */
    remove_run_file(d, vm, "slot");
    display_record_remove(d, vm);
    vm->slot = -1;

    bool crashed =
        strcmp(vm->last_exit.reason, "crashed") == 0 || strcmp(vm->last_exit.reason, "error") == 0;
    if (signalled && code == SIGSYS)
        log_err("VM %s: hv-vmm made a system call that its sandbox forbids, and was killed (the "
                "kernel log names it: audit type=1326 ... syscall=N)",
                vm->def->name);
    log_info("VM %s ended: %s (%s %d)", vm->def->name, vm->last_exit.reason,
             signalled ? "signal" : "exit", code);
    vm->state = crashed ? VM_CRASHED : VM_SHUTOFF;
    vm->vmm_pid = 0;
    vm->monitor_pid = 0;
    vm->started_at = 0;
    vm->destroying = false;
    net_detach(d, vm);
    pci_detach(d, vm);
    /* A save or a restore in flight ends here; the state may become saved. */
    const char *why = save_vm_ended(d, vm, have && !signalled ? code : -1);
    if (vm->state != VM_SAVED)
        hvd_vm_scratch_remove(d, vm); /* what it wrote to its non-persistent disks goes */
    emit_state(d, vm, why ? why : vm->last_exit.reason);

    if (strcmp(vm->last_exit.reason, "reboot") == 0) {
        struct api_error e;
        if (hvd_vm_start(d, vm, &e) < 0)
            log_err("VM %s rebooted but cannot start again: %s", vm->def->name, e.message);
    }
}

static int on_monitor_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)fd;
    (void)revents;
    struct hvd_vm *vm = userdata;
    handle_exit(vm->hvd, vm);
    return 0;
}

static int watch_monitor(struct hvd *d, struct hvd_vm *vm)
{
    vm->monitor_pidfd = pidfd_open_(vm->monitor_pid);
    if (vm->monitor_pidfd < 0)
        return -1;
    if (sd_event_add_io(d->loop, &vm->exit_source, vm->monitor_pidfd, EPOLLIN, on_monitor_exit,
                        vm) < 0) {
        close(vm->monitor_pidfd);
        vm->monitor_pidfd = -1;
        return -1;
    }
    return 0;
}

/* ---- start ---- */

/* A stored entry (validated when defined), parsed against the image store. */
static int parse_disk(struct hvd *d, const char *entry, struct vmdef_disk *disk,
                      struct api_error *e)
{
    char *err = NULL;
    if (vmdef_disk_parse(entry, d->images_dir, disk, &err) == 0)
        return 0;
    api_fail(e, "invalid-definition", "%s.", err);
    free(err);
    return -1;
}

/* -1 with e when another running VM has path among its disks. */
static int check_not_running_elsewhere(struct hvd *d, struct hvd_vm *vm, const char *path,
                                       struct api_error *e)
{
    for (struct hvd_vm *o = d->vms; o; o = o->next) {
        /* A saved VM's disks hold what its saved RAM expects: they are its, too. */
        if (o == vm || (!hvd_vm_is_active(o) && o->state != VM_SAVED))
            continue;
        for (char **oe = o->def->disks; oe && *oe; oe++) {
            struct vmdef_disk od;
            struct api_error ignored;
            if (parse_disk(d, *oe, &od, &ignored) < 0)
                continue;
            bool same = strcmp(od.path, path) == 0;
            vmdef_disk_clear(&od);
            if (same)
                return api_fail(e, "in-use", "Image '%s' is in use by the %s VM '%s'.", path,
                                o->state == VM_SAVED ? "saved" : "running", o->def->name);
        }
    }
    return 0;
}

/* ---- non-persistent disks: an overlay per disk in <state-dir>/scratch/NAME/ ---- */

static char *scratch_dir(struct hvd *d, const struct hvd_vm *vm)
{
    return g_strdup_printf("%s/scratch/%s", d->state_dir, vm->def->name);
}

/* The overlay of the definition's disk entry number i: stable, so the PCI layout is too. */
static char *scratch_path(struct hvd *d, const struct hvd_vm *vm, unsigned i)
{
    return g_strdup_printf("%s/scratch/%s/disk%u.qcow2", d->state_dir, vm->def->name, i);
}

void hvd_vm_scratch_remove(struct hvd *d, struct hvd_vm *vm)
{
    char *dir = scratch_dir(d, vm);
    GDir *g = g_dir_open(dir, 0, NULL);
    const char *n;
    while (g && (n = g_dir_read_name(g))) {
        char *p = g_build_filename(dir, n, NULL);
        unlink(p);
        g_free(p);
    }
    if (g)
        g_dir_close(g);
    rmdir(dir);
    g_free(dir);
}

/*
 * Fresh overlays for the VM's non-persistent disks (qcow2 over the image, made by qemu-img: it
 * reads only the image's size), whatever the last run left. A restore keeps them: the saved
 * guest's memory goes with what it wrote there.
 */
static int make_scratch(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    if (!vm->restoring)
        hvd_vm_scratch_remove(d, vm);
    unsigned i = 0;
    int rc = 0;
    for (char **entry = vm->def->disks; entry && *entry && rc == 0; entry++, i++) {
        struct vmdef_disk disk;
        if (parse_disk(d, *entry, &disk, e) < 0)
            return -1;
        char *path = disk.nonpersistent ? scratch_path(d, vm, i) : NULL;
        char *dir = path ? scratch_dir(d, vm) : NULL;
        const char *fmt = disk.format ? disk.format : VMDEF_FORMAT_RAW;
        if (!path) {
            /* a disk kept as it is */
        } else if (vm->restoring) {
            if (access(path, R_OK | W_OK) != 0)
                rc = api_fail(e, "bad-state",
                              "VM '%s' is saved, but the overlay of its non-persistent disk %s "
                              "is gone (%s); discard its saved state (vm.discard).",
                              vm->def->name, disk.path, path);
        } else if (strcmp(fmt, VMDEF_FORMAT_VHD) == 0) {
            rc = api_fail(e, "bad-params",
                          "VM '%s': %s is a VHD; non-persistent VHD disks are not supported yet.",
                          vm->def->name, disk.path);
        } else if (g_mkdir_with_parents(dir, 0700) < 0) {
            rc = api_fail(e, "internal", "Cannot create %s: %s.", dir, strerror(errno));
        } else {
            const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-b",
                                  disk.path,  "-F",     fmt,  path, NULL};
            char *err = NULL;
            if (run_cmd(argv, NULL, &err) != 0)
                rc = api_fail(e, "internal",
                              "Cannot make the overlay of the non-persistent disk %s (qemu-img "
                              "create: %s).",
                              disk.path, err && *err ? g_strstrip(err) : "it failed");
            free(err);
        }
        g_free(path);
        g_free(dir);
        vmdef_disk_clear(&disk);
    }
    return rc;
}

static int check_disks(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    for (char **entry = vm->def->disks; entry && *entry; entry++) {
        struct vmdef_disk disk;
        if (parse_disk(d, *entry, &disk, e) < 0)
            return -1;
        /* diskfmt_decide() has given every entry its format by now. */
        int rc = disk_check_image(disk.path, disk.format ? disk.format : VMDEF_FORMAT_RAW, e);
        /* A non-persistent disk's image is only read, as a read-only one is. */
        if (rc == 0 && !disk.readonly && !disk.nonpersistent)
            rc = check_not_running_elsewhere(d, vm, disk.path, e);
        vmdef_disk_clear(&disk);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/*
 * A definition stored before formats were kept gets them at its first start
 * (diskfmt.c), and is stored again with them.
 */
static int decide_formats(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    int changed = diskfmt_decide(d, vm->def, e);
    char *err = NULL;
    if (changed <= 0)
        return changed;
    if (store_save(d, vm->def, &err) < 0) {
        api_fail(e, "internal", "Cannot store the definition of '%s': %s.", vm->def->name, err);
        free(err);
        return -1;
    }
    log_info("VM %s: the format of its disks is now kept in its definition", vm->def->name);
    return 0;
}

/*
 * Where hv-vmm may find a qcow2's backing files or a differencing VHD's
 * parent (--image-dir): the image store, and the folder of each such disk
 * given as a path outside it (what hv-vmm allows without --image-dir), each once.
 */
static void add_image_dirs(struct hvd *d, const struct vmdef *def, GPtrArray *a)
{
    GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
    if (def->disks && def->disks[0])
        g_ptr_array_add(dirs, g_strdup(d->images_dir));
    for (char **entry = def->disks; entry && *entry; entry++) {
        struct vmdef_disk disk;
        struct api_error ignored;
        if (parse_disk(d, *entry, &disk, &ignored) < 0)
            continue;
        char *dir = g_path_get_dirname(disk.path);
        bool chained =
            disk.nonpersistent || (disk.format && (strcmp(disk.format, VMDEF_FORMAT_QCOW2) == 0 ||
                                                   strcmp(disk.format, VMDEF_FORMAT_VHD) == 0));
        bool seen = false;
        for (guint i = 0; i < dirs->len && !seen; i++)
            seen = strcmp(g_ptr_array_index(dirs, i), dir) == 0;
        if (chained && !seen && dirs->len == VMM_MAX_IMAGE_DIRS)
            log_warn("VM %s: hv-vmm takes %d --image-dir, so %s is not one: a backing file of "
                     "%s must be in one of the others",
                     def->name, VMM_MAX_IMAGE_DIRS, dir, disk.path);
        if (chained && !seen && dirs->len < VMM_MAX_IMAGE_DIRS)
            g_ptr_array_add(dirs, dir);
        else
            g_free(dir);
        vmdef_disk_clear(&disk);
    }
    for (guint i = 0; i < dirs->len; i++) {
        g_ptr_array_add(a, g_strdup("--image-dir"));
        g_ptr_array_add(a, g_strdup(g_ptr_array_index(dirs, i)));
    }
    g_ptr_array_free(dirs, TRUE);
}

/* disk_paths: the --disk paths in order (a glib strv), for layout.c. */
static char **build_argv(struct hvd *d, struct hvd_vm *vm, const char *user, char ***disk_paths)
{
    GPtrArray *a = g_ptr_array_new();
    GPtrArray *paths = g_ptr_array_new();
    const struct vmdef *def = vm->def;
#define ADD(s)    g_ptr_array_add(a, g_strdup(s))
#define ADDF(...) g_ptr_array_add(a, g_strdup_printf(__VA_ARGS__))
    ADD(d->vmm_path);
    ADD("--name");
    ADD(def->name);
    if (def->firmware) { /* firmware=bios: boot from the disks through SeaBIOS */
        ADD("--firmware");
        ADD(d->bios_path);
    } else {
        ADD("--kernel");
        ADD(def->kernel);
    }
    if (def->initrd) {
        ADD("--initrd");
        ADD(def->initrd);
    }
    if (def->cmdline) {
        ADD("--cmdline");
        ADD(def->cmdline);
    }
    ADD("--memory");
    if (def->memory % (1 << 20) == 0)
        ADDF("%lluM", (unsigned long long)(def->memory >> 20));
    else
        ADDF("%llu", (unsigned long long)def->memory);
    ADD("--cpus");
    ADDF("%u", def->cpus);
    unsigned index = 0;
    for (char **entry = def->disks; entry && *entry; entry++, index++) {
        struct vmdef_disk disk;
        struct api_error ignored;
        if (parse_disk(d, *entry, &disk, &ignored) < 0)
            continue; /* check_disks() has refused it */
        ADD("--disk");
        if (disk.nonpersistent) { /* its overlay, which make_scratch() made */
            char *overlay = scratch_path(d, vm, index);
            ADDF("%s,format=qcow2", overlay);
            g_free(overlay);
        } else { /* the format hvd decided: hv-vmm never probes a guest-written image */
            ADDF("%s%s%s%s", disk.path, disk.readonly ? ",ro" : "", disk.format ? ",format=" : "",
                 disk.format ? disk.format : "");
        }
        /* The layout keys its slots by the definition's path, the same for an overlay. */
        g_ptr_array_add(paths, g_strdup(disk.path));
        vmdef_disk_clear(&disk);
    }
    add_image_dirs(d, def, a);
    if (vm->tap) {
        char mac[18];
        vmdef_mac(def, mac);
        ADD("--net");
        ADDF("tap=%s", vm->tap);
        ADD("--mac");
        ADD(mac);
    }
    if (def->vsock) {
        ADD("--vsock");
        ADDF("%u", def->vsock);
    }
    for (char **p = def->pci; p && *p; p++) { /* bound to vfio-pci by pci_attach() */
        ADD("--pci");
        ADD(*p);
    }
    char *display = display_vmm_arg(d, vm);
    if (display) {
        ADD("--display");
        g_ptr_array_add(a, display);
    }
    g_ptr_array_add(paths, NULL);
    *disk_paths = (char **)g_ptr_array_free(paths, FALSE);
    layout_add_args(def, *disk_paths, a);
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    char *console = hvd_vm_run_path(d, vm, "console.log");
    ADD("--control");
    ADD(sock);
    ADD("--console");
    ADDF("file:%s", console);
    ADD("--on-reboot");
    ADD("exit");
    if (!def->page_sharing) { /* docs/memory.md */
        ADD("--ksm");
        ADD("off");
    }
    if (vm->restoring) { /* the same command line, plus the file to continue from */
        ADD("--restore");
        g_ptr_array_add(a, save_path(d, vm, NULL));
        if (def->instant_on)
            ADD("--instant-on");
    }
    if (user) { /* hv-vmm drops to it once the VM is built (vmuser.c) */
        ADD("--user");
        ADD(user);
    }
    g_free(sock);
    g_free(console);
    g_ptr_array_add(a, NULL);
#undef ADD
#undef ADDF
    return (char **)g_ptr_array_free(a, FALSE);
}

static int start_vmm(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    if (hvd_vm_is_active(vm))
        return api_fail(e, "bad-state", "VM '%s' is already %s.", vm->def->name,
                        hvd_vm_state_name(vm->state));
    if (vm->state == VM_SAVED && !save_file_exists(d, vm)) {
        log_warn("VM %s: its save file is gone; starting it afresh", vm->def->name);
        vm->state = VM_SHUTOFF;
    }
    vm->restoring = vm->state == VM_SAVED;
    if (vm->def->kernel && access(vm->def->kernel, R_OK) != 0)
        return api_fail(e, "bad-params", "VM '%s': its kernel '%s' cannot be read.", vm->def->name,
                        vm->def->kernel);
    if (vm->def->firmware && access(d->bios_path, R_OK) != 0)
        return api_fail(e, "bad-params",
                        "VM '%s' boots firmware=bios, but the BIOS image %s cannot be read (%s; "
                        "it comes with Debian's seabios package, or hvd --bios).",
                        vm->def->name, d->bios_path, strerror(errno));
    if (vm->def->initrd && access(vm->def->initrd, R_OK) != 0)
        return api_fail(e, "bad-params", "VM '%s': its initrd '%s' cannot be read.", vm->def->name,
                        vm->def->initrd);
    if (access(d->vmm_path, X_OK) != 0)
        return api_fail(e, "internal", "The VMM '%s' cannot be run: %s.", d->vmm_path,
                        strerror(errno));
    if (decide_formats(d, vm, e) < 0 || check_disks(d, vm, e) < 0 ||
        policy_check_start_cid(d, vm, e) < 0 || make_scratch(d, vm, e) < 0) {
        vm->restoring = false;
        return -1;
    }

    char *dir = hvd_vm_run_path(d, vm, NULL);
    if (g_mkdir_with_parents(dir, 0750) < 0) {
        api_fail(e, "internal", "Cannot create %s: %s.", dir, strerror(errno));
        g_free(dir);
        vm->restoring = false;
        return -1;
    }
    g_free(dir);
    remove_run_file(d, vm, "exit");
    remove_run_file(d, vm, "control.sock");
    remove_run_file(d, vm, "console.log");
    remove_run_file(d, vm, "vmm.log");

    if (pci_attach(d, vm, e) < 0)
        return -1;
    if (strcmp(vm->def->net, "nat") == 0) {
        vm->tap = net_attach(d, vm, e);
        if (!vm->tap) {
            pci_detach(d, vm);
            return -1;
        }
    }

    char *user = NULL;
    unsigned uid = 0;
    if (display_pick_slot(d, vm, e) < 0 || vmuser_arg(d, vm, &user, &uid, e) < 0 ||
        display_record_write(d, vm, uid, e) < 0) {
        g_free(user);
        net_detach(d, vm);
        pci_detach(d, vm);
        return -1;
    }
    char **disk_paths = NULL;
    char **argv = build_argv(d, vm, user, &disk_paths);
    g_free(user);
    char *log_path = hvd_vm_run_path(d, vm, "vmm.log");
    char *exit_path = hvd_vm_run_path(d, vm, "exit");
    int pipefd[2];
    pid_t mon = -1;
    if (pipe2(pipefd, O_CLOEXEC) == 0) {
        mon = fork();
        if (mon == 0) {
            close(pipefd[0]);
            run_monitor(argv, pipefd[1], log_path, exit_path);
        }
        close(pipefd[1]);
    }
    g_strfreev(argv);
    g_free(log_path);
    g_free(exit_path);
    if (mon < 0) {
        g_strfreev(disk_paths);
        display_record_remove(d, vm);
        net_detach(d, vm);
        pci_detach(d, vm);
        return api_fail(e, "internal", "Cannot start a process for VM '%s': %s.", vm->def->name,
                        strerror(errno));
    }
    pid_t vmm = -1;
    if (read_full(pipefd[0], &vmm, sizeof(vmm)) != sizeof(vmm))
        vmm = -1;
    close(pipefd[0]);

    vm->monitor_pid = mon;
    vm->vmm_pid = vmm;
    vm->destroying = false;
    vm->ctl_busy = false;
    if (vmm <= 0 || watch_monitor(d, vm) < 0) {
        g_strfreev(disk_paths);
        kill(mon, SIGKILL);
        waitpid(mon, NULL, 0);
        display_record_remove(d, vm);
        net_detach(d, vm);
        pci_detach(d, vm);
        return api_fail(e, "internal", "Cannot start hv-vmm for VM '%s'.", vm->def->name);
    }
    vm->started_at = now_realtime();
    char *pidfile = hvd_vm_run_path(d, vm, "monitor.pid");
    char *startfile = hvd_vm_run_path(d, vm, "started");
    char text[64];
    snprintf(text, sizeof(text), "%d %d\n", (int)mon, (int)vmm);
    write_file(pidfile, text);
    snprintf(text, sizeof(text), "%.3f\n", vm->started_at);
    write_file(startfile, text);
    char *slotfile = hvd_vm_run_path(d, vm, "slot");
    snprintf(text, sizeof(text), "%d\n", vm->slot);
    write_file(slotfile, text);
    g_free(slotfile);
    g_free(pidfile);
    g_free(startfile);
    vm->state = VM_RUNNING;
    log_info("VM %s %s (hv-vmm pid %d)", vm->def->name,
             vm->restoring ? "is being restored from its save file" : "started", (int)vmm);
    layout_learn(d, vm, disk_paths);
    g_strfreev(disk_paths);
    emit_state(d, vm, vm->restoring ? "restoring" : "started");
    return 0;
}

static int start_checked(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    enum hvd_vm_state before = vm->state;
    if (start_vmm(d, vm, e) == 0)
        return 0;
    if (!hvd_vm_is_active(vm)) {
        vm->restoring = false;
        if (before == VM_SAVED)
            vm->state = VM_SAVED; /* not started: the save file is kept */
    }
    return -1;
}

int hvd_vm_start(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    if (start_checked(d, vm, e) < 0)
        return -1;
    if (vm->restoring)
        save_restore_started(d, NULL, vm, e);
    return 0;
}

int hvd_vm_start_client(struct hvd *d, struct client *c, struct hvd_vm *vm, bool discard,
                        struct api_error *e)
{
    if (discard && vm->state == VM_SAVED && save_discard(d, vm, e) < 0)
        return -1;
    if (start_checked(d, vm, e) < 0)
        return -1;
    if (!vm->restoring)
        return 0;
    save_restore_started(d, c, vm, e); /* the reply comes once hv-vmm runs the VM */
    return -1;
}

/* ---- control ---- */

static int control(struct hvd *d, struct hvd_vm *vm, const char *cmd, struct api_error *e)
{
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    char err[400];
    struct json_object *r = vmmctl_call(sock, cmd, VMMCTL_TIMEOUT_MS, err, sizeof(err));
    g_free(sock);
    if (!r)
        return api_fail(e, "vmm", "VM '%s': %s.", vm->def->name, err);
    json_object_put(r);
    return 0;
}

struct json_object *hvd_vm_name_state(const struct hvd_vm *vm)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(vm->def->name));
    json_object_object_add(o, "state", json_object_new_string(hvd_vm_state_name(vm->state)));
    if (hvd_vm_is_active(vm))
        json_object_object_add(o, "pid", json_object_new_int(vm->vmm_pid));
    return o;
}

/* A control request of an API call in flight; the call's reply is deferred. */
struct ctlop {
    char name[VMDEF_NAME_MAX + 1]; /* found again by name: the VM may be gone by then */
    pid_t pid;                     /* hv-vmm asked: a later run is not this one */
    enum hvd_vm_state from, to;
    const char *reason; /* of the vm.state event */
    struct deferred *reply;
};

static void on_control_done(struct hvd *d, void *userdata, struct json_object *reply,
                            const char *err)
{
    struct ctlop *op = userdata;
    struct hvd_vm *vm = hvd_find_vm(d, op->name);
    bool same = vm && vm->vmm_pid == op->pid && hvd_vm_is_active(vm);
    struct json_object *result = NULL;
    struct api_error e = {0};

    if (same)
        vm->ctl_busy = false;
    if (!reply) {
        api_fail(&e, "vmm", "VM '%s': %s.", op->name, err);
    } else if (vm && !same && op->to == VM_SHUTTING_DOWN) {
        result = hvd_vm_name_state(vm); /* it powered off before its reply was read */
    } else if (!same || vm->state != op->from) {
        /* destroyed or ended while hv-vmm answered */
        api_fail(&e, "bad-state", "VM '%s' is %s now.", op->name,
                 vm ? hvd_vm_state_name(vm->state) : "undefined");
    } else {
        vm->state = op->to;
        emit_state(d, vm, op->reason);
        result = hvd_vm_name_state(vm);
    }
    json_object_put(reply);
    server_reply(op->reply, result, &e);
    free(op);
}

/* Sends cmd to hv-vmm and defers the API reply (-1 with e->code API_DEFERRED). */
static int control_async(struct hvd *d, struct client *c, struct hvd_vm *vm, const char *cmd,
                         enum hvd_vm_state to, const char *reason, struct api_error *e)
{
    if (vm->ctl_busy)
        return api_fail(e, "bad-state", "VM '%s' is busy: hv-vmm has not answered yet.",
                        vm->def->name);
    struct ctlop *op = calloc(1, sizeof(*op));
    if (!op)
        hv_die("out of memory");
    snprintf(op->name, sizeof(op->name), "%s", vm->def->name);
    op->pid = vm->vmm_pid;
    op->from = vm->state;
    op->to = to;
    op->reason = reason;
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    char err[400];
    int rc = vmmctl_call_async(d, sock, cmd, on_control_done, op, err, sizeof(err));
    g_free(sock);
    if (rc < 0) {
        free(op);
        return api_fail(e, "vmm", "VM '%s': %s.", vm->def->name, err);
    }
    vm->ctl_busy = true;
    op->reply = server_defer(c);
    api_defer(e);
    return -1;
}

int hvd_vm_shutdown(struct hvd *d, struct client *c, struct hvd_vm *vm, struct api_error *e)
{
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
        return api_fail(e, "bad-state", "VM '%s' is %s, not running.", vm->def->name,
                        hvd_vm_state_name(vm->state));
    return control_async(d, c, vm, "stop", VM_SHUTTING_DOWN, "shutting-down", e);
}

int hvd_vm_pause(struct hvd *d, struct client *c, struct hvd_vm *vm, bool pause,
                 struct api_error *e)
{
    enum hvd_vm_state want = pause ? VM_RUNNING : VM_PAUSED;
    if (vm->state != want)
        return api_fail(e, "bad-state", "VM '%s' is %s, not %s.", vm->def->name,
                        hvd_vm_state_name(vm->state), hvd_vm_state_name(want));
    return control_async(d, c, vm, pause ? "pause" : "resume", pause ? VM_PAUSED : VM_RUNNING,
                         pause ? "paused" : "resumed", e);
}

static bool wait_gone(int pidfd, int ms)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
        ;
    return r > 0;
}

/* hv-vmm's pid is only trusted while its parent is still our monitor. */
static bool vmm_pid_is_ours(const struct hvd_vm *vm)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)vm->vmm_pid);
    char *text = NULL;
    bool ours = false;
    if (vm->vmm_pid > 0 && g_file_get_contents(path, &text, NULL, NULL)) {
        const char *close_paren = strrchr(text, ')');
        int ppid = 0;
        char st;
        if (close_paren && sscanf(close_paren + 1, " %c %d", &st, &ppid) == 2)
            ours = ppid == vm->monitor_pid;
    }
    g_free(text);
    return ours;
}

int hvd_vm_destroy(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    if (!hvd_vm_is_active(vm))
        return api_fail(e, "bad-state", "VM '%s' is not running.", vm->def->name);
    vm->destroying = true;
    struct api_error ignored;
    control(d, vm, "kill", &ignored);
    if (!wait_gone(vm->monitor_pidfd, 2000)) {
        if (vmm_pid_is_ours(vm))
            kill(vm->vmm_pid, SIGKILL);
        if (!wait_gone(vm->monitor_pidfd, 3000)) {
            vm->destroying = false;
            return api_fail(e, "internal", "VM '%s' did not stop after SIGKILL.", vm->def->name);
        }
    }
    handle_exit(d, vm);
    return 0;
}

/* ---- re-attach after an hvd restart ---- */

static void load_last_exit(struct hvd *d, struct hvd_vm *vm)
{
    char *path = hvd_vm_run_path(d, vm, "last-exit");
    char *text = NULL;
    char reason[16], kind[16];
    int code;
    if (g_file_get_contents(path, &text, NULL, NULL) &&
        sscanf(text, "%15s %15s %d", reason, kind, &code) == 3) {
        vm->last_exit.valid = true;
        snprintf(vm->last_exit.reason, sizeof(vm->last_exit.reason), "%s", reason);
        vm->last_exit.signalled = strcmp(kind, "signal") == 0;
        vm->last_exit.code = code;
        if (strcmp(reason, "crashed") == 0 || strcmp(reason, "error") == 0)
            vm->state = VM_CRASHED;
    }
    g_free(text);
    g_free(path);
}

static void reattach(struct hvd *d, struct hvd_vm *vm)
{
    load_last_exit(d, vm);
    display_record_reattach(d, vm);
    char *pidfile = hvd_vm_run_path(d, vm, "monitor.pid");
    char *text = NULL;
    int mon = 0, vmm = 0;
    bool have = g_file_get_contents(pidfile, &text, NULL, NULL) &&
                sscanf(text, "%d %d", &mon, &vmm) == 2 && mon > 0;
    g_free(text);
    text = NULL;
    g_free(pidfile);
    if (!have) {
        /* A save file present is a saved VM (also after a restore that failed). */
        if (save_file_exists(d, vm))
            vm->state = VM_SAVED;
        return;
    }
    vm->monitor_pid = mon;
    vm->vmm_pid = vmm;
    if (!pid_has_comm(mon, MONITOR_COMM) || watch_monitor(d, vm) < 0) {
        /* It ended while hvd was away: the exit file says how. */
        handle_exit(d, vm);
        return;
    }
    char *startfile = hvd_vm_run_path(d, vm, "started");
    if (g_file_get_contents(startfile, &text, NULL, NULL))
        vm->started_at = g_ascii_strtod(text, NULL);
    g_free(text);
    g_free(startfile);
    text = NULL;
    char *slotfile = hvd_vm_run_path(d, vm, "slot");
    if (g_file_get_contents(slotfile, &text, NULL, NULL))
        vm->slot = atoi(text);
    g_free(text);
    g_free(slotfile);
    vm->state = VM_RUNNING;
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    char err[400];
    struct json_object *r = vmmctl_call(sock, "query", VMMCTL_TIMEOUT_MS, err, sizeof(err));
    g_free(sock);
    if (r) {
        struct json_object *st;
        if (json_object_object_get_ex(r, "state", &st)) {
            const char *s = json_object_get_string(st);
            if (strcmp(s, "paused") == 0)
                vm->state = VM_PAUSED;
            else if (strcmp(s, "stopping") == 0 || strcmp(s, "shutting-down") == 0)
                vm->state = VM_SHUTTING_DOWN;
        }
        json_object_put(r);
    } else {
        log_warn("VM %s: re-attached to its process, but %s", vm->def->name, err);
    }
    if (strcmp(vm->def->net, "nat") == 0)
        vm->tap = net_tap_name(vm);
    save_reattached(d, vm);
    log_info("VM %s re-attached (hv-vmm pid %d, %s)", vm->def->name, vmm,
             hvd_vm_state_name(vm->state));
    emit_state(d, vm, "reattached");
}

void hvd_vm_reattach_all(struct hvd *d)
{
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next)
        reattach(d, vm);
}

void hvd_vm_autostart_all(struct hvd *d)
{
    /* The UIVM first, so the user has a screen as soon as possible. */
    for (int pass = 0; pass < 2; pass++) {
        for (struct hvd_vm *vm = d->vms; vm; vm = vm->next) {
            bool uivm = strcmp(vm->def->role, "uivm") == 0;
            if (!vm->def->autostart || hvd_vm_is_active(vm) || uivm != (pass == 0))
                continue;
            struct api_error e;
            if (hvd_vm_start(d, vm, &e) < 0)
                log_err("autostart of VM %s failed: %s", vm->def->name, e.message);
        }
    }
}
