/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hvd's shared state: the daemon, its VMs and its clients (docs/hvd.md). */
#ifndef HV_HVD_HVD_H
#define HV_HVD_HVD_H

#include "jsonproto.h"
#include "vmdef.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#define HVD_API_VERSION 1

enum hvd_vm_state {
    VM_SHUTOFF,
    VM_RUNNING,
    VM_PAUSED,
    VM_SHUTTING_DOWN,
    VM_CRASHED,
    VM_SAVED, /* no hv-vmm; its save file (save.c) is there to continue it from */
};

struct hvd_vm_exit {
    bool valid;
    char reason[16]; /* poweroff, reboot, killed, crashed, error */
    bool signalled;
    int code; /* exit status or signal number */
};

struct hvd;

struct hvd_vm {
    struct hvd_vm *next;
    struct hvd *hvd;
    struct vmdef *def;
    enum hvd_vm_state state;
    pid_t monitor_pid; /* the per-VM watcher that outlives hvd */
    pid_t vmm_pid;
    int monitor_pidfd;
    sd_event_source *exit_source;
    double started_at; /* CLOCK_REALTIME seconds, 0 when not running */
    struct hvd_vm_exit last_exit;
    bool destroying;
    bool ctl_busy;        /* an API call waits for hv-vmm's control socket */
    char *tap;            /* TAP device while running with net=nat */
    int slot;             /* hotkey slot on hv-switch while running: 0 UIVM, 1..9, -1 none */
    unsigned display_uid; /* the user hv-switch's record is for (display.c), 0: none */
    /*
     * Started from its save file, which stays until hv-vmm shows it runs
     * (save.c): a failed restore leaves the VM saved.
     */
    bool restoring;
    struct saveop *save_op; /* a vm.save or restore waiting for hv-vmm, or NULL */
    /* memory.c: the balloon as hv-vmm last said, for the run with pid mem_pid */
    pid_t mem_pid;
    int64_t mem_target, mem_actual;
    uint64_t mem_changed; /* CLOCK_MONOTONIC µs of the last change hv-vmm reported */
    bool mem_driver, mem_querying;
};

struct client;

/*
 * What a client may do, decided by the transport it came on: local (the
 * unix socket: root and group hv) has the whole API; manager (the UIVM over
 * vsock) only what stays inside hvd's stores (policy.c, docs/hvd-api.md).
 */
enum client_level {
    CLIENT_LOCAL,
    CLIENT_MANAGER,
    CLIENT_LEVELS,
};

struct hvd {
    sd_event *loop;
    char *state_dir; /* definitions and images */
    char *vms_dir;
    char *images_dir;
    char *run_dir; /* per-VM runtime state */
    char *socket_path;
    char *manager_socket; /* tests: a unix socket whose clients are managers; NULL: none */
    char *kernels_dir;    /* the kernels and initrds a manager may name */
    char *uivm_pci_allow; /* the host admin's list of PCI devices a manager may give */
    char *vmm_path;
    char *img_path;      /* hv-img: differencing VHDs (disk.c) */
    char *bios_path;     /* firmware=bios: SeaBIOS (--bios) */
    char *switch_socket; /* hv-switch's producer socket, for display=true VMs */
    /* hv-switch's control socket (vm.switch, vm.screenshot) */
    char *switch_control;
    int vsock_port;    /* <0: no vsock listener */
    uint32_t uivm_cid; /* 0: only CIDs of role=uivm VMs */
    bool autostart;
    unsigned vmm_uid_base; /* VM users are base + slot (vmuser.c); 0: hv-vmm runs as hvd's */
    char *saved_dir;       /* <state-dir>/saved: save files, 0700 root's */
    bool save_on_shutdown; /* host.suspend {"reason": "shutdown"} saves VMs (--save-on-shutdown) */
    struct hvd_vm *vms;    /* sorted by name */
    struct client *clients;
    unsigned nr_clients[CLIENT_LEVELS];
};

/* Adds fn as an exit handler of loop the first time (*added false): the
 * modules with work in flight answer it when hvd stops. */
void hvd_exit_hook_once(sd_event *loop, bool *added, sd_event_handler_t fn);

/* name → VM, or NULL */
struct hvd_vm *hvd_find_vm(struct hvd *d, const char *name);
const char *hvd_vm_state_name(enum hvd_vm_state s);

/* ---- store.c: definitions on disk ---- */
int store_load_all(struct hvd *d);
int store_save(struct hvd *d, const struct vmdef *def, char **err);
int store_remove(struct hvd *d, const char *name);
void hvd_vmdef_ctx(struct hvd *d, struct vmdef_ctx *ctx);
struct hvd_vm *hvd_add_vm(struct hvd *d, struct vmdef *def);
void hvd_remove_vm(struct hvd *d, struct hvd_vm *vm);

/* ---- vm.c: lifecycle ---- */
struct api_error {
    const char *code;
    char message[512];
};
int api_fail(struct api_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* display.c: the VM's screen on hv-switch ---- */
/* Sets vm->slot for a start (-1 when display=false); -1 with *e when it cannot start. */
int display_pick_slot(struct hvd *d, struct hvd_vm *vm, struct api_error *e);
/* hv-vmm's --display argument (g_free it), or NULL for display=false. */
char *display_vmm_arg(struct hvd *d, const struct hvd_vm *vm);
/*
 * hv-switch's record of who the producer running as `uid` is (name, colour,
 * slot, UIVM: hv/switch/producer.h), in the "displays" folder beside its
 * socket, for a display VM whose hv-vmm runs as a user of its own; removed
 * when the VM ends. hv-switch believes that record, not the HELLO.
 */
int display_record_write(struct hvd *d, struct hvd_vm *vm, unsigned uid, struct api_error *e);
void display_record_remove(struct hvd *d, struct hvd_vm *vm);
/* After an hvd restart: which user's record a running VM has. */
void display_record_reattach(struct hvd *d, struct hvd_vm *vm);

/*
 * ---- switchctl.c: vm.switch, vm.screenshot through hv-switch's control
 * socket; the reply is deferred (server_defer) while hv-switch answers ----
 */
struct json_object *switchctl_switch(struct hvd *d, struct client *c, struct json_object *params,
                                     struct api_error *e);
struct json_object *switchctl_screenshot(struct hvd *d, struct client *c,
                                         struct json_object *params, struct api_error *e);

char *hvd_vm_run_path(struct hvd *d, const struct hvd_vm *vm, const char *file);
/* Removes the overlays of the VM's non-persistent disks (<state-dir>/scratch/NAME). */
void hvd_vm_scratch_remove(struct hvd *d, struct hvd_vm *vm);
int hvd_vm_start(struct hvd *d, struct hvd_vm *vm, struct api_error *e);
/*
 * vm.start from a client: a saved VM is restored (the reply deferred until
 * hv-vmm runs it) unless discard, which drops the save file first.
 */
int hvd_vm_start_client(struct hvd *d, struct client *c, struct hvd_vm *vm, bool discard,
                        struct api_error *e);
void hvd_vm_emit_state(struct hvd *d, struct hvd_vm *vm, const char *reason);
/* These two ask hv-vmm from the event loop: the reply is deferred (-1, API_DEFERRED). */
int hvd_vm_shutdown(struct hvd *d, struct client *c, struct hvd_vm *vm, struct api_error *e);
int hvd_vm_pause(struct hvd *d, struct client *c, struct hvd_vm *vm, bool pause,
                 struct api_error *e);
int hvd_vm_destroy(struct hvd *d, struct hvd_vm *vm, struct api_error *e);
struct json_object *hvd_vm_name_state(const struct hvd_vm *vm); /* {"name", "state", "pid"?} */
void hvd_vm_reattach_all(struct hvd *d);
void hvd_vm_autostart_all(struct hvd *d);
bool hvd_vm_is_active(const struct hvd_vm *vm);
struct json_object *hvd_vm_exit_json(const struct hvd_vm_exit *x);

/*
 * ---- save.c: vm.save, restore at vm.start, vm.discard, host.suspend and
 * host.resume (docs/hvd.md, "Save and restore") ----
 */
struct saveop;
/* <saved_dir>/NAME.hvsave, + suffix (".part"); g_free it. */
char *save_path(struct hvd *d, const struct hvd_vm *vm, const char *suffix);
bool save_file_exists(struct hvd *d, const struct hvd_vm *vm);
int save_prepare_dir(struct hvd *d);
int save_vm(struct hvd *d, struct client *c, struct hvd_vm *vm, struct api_error *e);
int save_discard(struct hvd *d, struct hvd_vm *vm, struct api_error *e);
/* vm.start of a saved VM, after its hv-vmm was spawned with --restore: defers the reply. */
void save_restore_started(struct hvd *d, struct client *c, struct hvd_vm *vm, struct api_error *e);
/*
 * handle_exit(): hv-vmm ended with status code (-1: a signal). Finishes a
 * save (exit 6: its .part becomes the save file) and a restore (the file
 * goes once the VM ran). Returns the reason for the vm.state event, or NULL.
 */
const char *save_vm_ended(struct hvd *d, struct hvd_vm *vm, int code);
/* Re-attach: a running VM whose save file is still there was restored. */
void save_reattached(struct hvd *d, struct hvd_vm *vm);
/* A saved VM's definition may change only where a restore does not notice; -1 with e. */
int save_check_replace(const struct hvd_vm *vm, const struct vmdef *def, struct api_error *e);
struct json_object *save_host_suspend(struct hvd *d, struct client *c, struct json_object *params,
                                      struct api_error *e);
struct json_object *save_host_resume(struct hvd *d, struct client *c, struct json_object *params,
                                     struct api_error *e);

/* ---- vmmctl.c: hv-vmm's control socket ---- */
#define VMMCTL_TIMEOUT_MS 3000 /* connect retries included */
/* Blocking (re-attach at startup only): the reply, or NULL with err. */
struct json_object *vmmctl_call(const char *socket_path, const char *cmd, int timeout_ms, char *err,
                                size_t errlen);
/* The reply ({"ok": true, ...}; done() owns it), or NULL and why. */
typedef void (*vmmctl_done_fn)(struct hvd *d, void *userdata, struct json_object *reply,
                               const char *err);
/*
 * From the event loop, within VMMCTL_TIMEOUT_MS: done() is called later,
 * never from here. -1 with err when the call cannot start.
 */
int vmmctl_call_async(struct hvd *d, const char *socket_path, const char *cmd, vmmctl_done_fn done,
                      void *userdata, char *err, size_t errlen);
/*
 * The same with a whole request (consumed), a file passed with it (pass_fd,
 * consumed; -1: none) and a timeout of its own.
 */
int vmmctl_request_async(struct hvd *d, const char *socket_path, struct json_object *req,
                         int pass_fd, int timeout_ms, vmmctl_done_fn done, void *userdata,
                         char *err, size_t errlen);

/* ---- memory.c: vm.memory (the balloon) and what vm.info shows of it ---- */
struct json_object *memory_set(struct hvd *d, struct client *c, struct json_object *params,
                               struct api_error *e);
/* Adds memory_target and memory_actual (null until hv-vmm said) to a vm.info result. */
void memory_info(struct hvd *d, struct hvd_vm *vm, struct json_object *r);

/* ---- layout.c: each VM's PCI slots, kept in its definition ---- */

struct _GPtrArray; /* glib's GPtrArray */
/* --pci-slot options for def's pci_slots; disk_paths: this start's --disk paths. */
void layout_add_args(const struct vmdef *def, char *const *disk_paths, struct _GPtrArray *argv);
/* A replacing definition that gives no pci_slots keeps the old one's. */
void layout_keep(struct vmdef *def, const struct vmdef *old);
/* After a start: ask hv-vmm where the devices went and store it (async). */
void layout_learn(struct hvd *d, struct hvd_vm *vm, char **disk_paths);

/* ---- server.c: clients and events ---- */
int server_listen_unix(struct hvd *d);
int server_listen_vsock(struct hvd *d);
void server_emit(struct hvd *d, const char *event, struct json_object *params);
void server_close_all(struct hvd *d);
/*
 * Deferred replies (disk jobs): a method calls server_defer() for the request
 * being dispatched, returns NULL with api_defer(e), and later answers with
 * server_reply() (result consumed; e used when result is NULL). The reply is
 * dropped if the client has gone by then.
 */
struct deferred;
struct deferred *server_defer(struct client *c);
void server_reply(struct deferred *r, struct json_object *result, const struct api_error *e);
#define API_DEFERRED "deferred" /* e->code of a method whose reply comes later */
void api_defer(struct api_error *e);
/* hello's "async-replies": later requests need not wait for a deferred reply. */
void client_set_async_replies(struct client *c);
enum client_level client_level(const struct client *c);
int server_listen_manager(struct hvd *d); /* --manager-socket (tests) */

/* ---- api.c: method dispatch ---- */
struct json_object *api_dispatch(struct hvd *d, struct client *c, const char *method,
                                 struct json_object *params, struct api_error *e);
void client_subscribe(struct client *c);

/*
 * ---- policy.c: what a manager client (the UIVM) may do, and the UIVM's
 * reserved vsock CID ----
 */
/* A manager's definition (old: the one it replaces, or NULL); -1 with e (not-allowed). */
int policy_check_define(struct hvd *d, const struct vmdef *def, const struct vmdef *old,
                        struct api_error *e);
/* vm.undefine by a manager. */
int policy_check_undefine(struct hvd *d, const struct hvd_vm *vm, struct api_error *e);
/* An image-name parameter of a disk.* method from a manager: inside the store, a file. */
int policy_check_image_param(struct hvd *d, struct json_object *params, const char *key,
                             struct api_error *e);
/* Whether cid is the UIVM's: hvd --uivm-cid, or a role=uivm VM's other than except. */
bool policy_is_uivm_cid(struct hvd *d, uint32_t cid, const char *except);
/* Any client's definition: the UIVM's CID is its alone (invalid-definition). */
int policy_check_vsock(struct hvd *d, const struct vmdef *def, struct api_error *e);
/* vm.start: no CID of the UIVM's, none a running VM has (in-use). */
int policy_check_start_cid(struct hvd *d, const struct hvd_vm *vm, struct api_error *e);

/* ---- disk.c ---- */
struct json_object *disk_list(struct hvd *d, struct api_error *e);
struct json_object *disk_create(struct hvd *d, struct client *c, struct json_object *params,
                                struct api_error *e);
struct json_object *disk_resize(struct hvd *d, struct json_object *params, struct api_error *e);
struct json_object *disk_clone(struct hvd *d, struct client *c, struct json_object *params,
                               struct api_error *e);
struct json_object *disk_delete(struct hvd *d, struct json_object *params, struct api_error *e);
struct json_object *disk_jobs(struct hvd *d, struct json_object *params, struct api_error *e);
struct json_object *disk_cancel(struct hvd *d, struct json_object *params, struct api_error *e);
/*
 * Refuse a missing, corrupt, truncated or busy (disk job) image of the given
 * format with a clear message (qemu-img is told the format: it never probes).
 */
int disk_check_image(const char *path, const char *format, struct api_error *e);

/*
 * ---- diskfmt.c: each disk's format, decided once and kept: in the
 * definition (",format=F") and, for images of the store, in
 * <state-dir>/image-formats (docs/disks.md) ----
 */
/* The recorded format of store image `name`, or NULL. */
const char *diskfmt_recorded(struct hvd *d, const char *name);
/* Records `format` for store image `name` (NULL: forgets it); -1 (logged) on error. */
int diskfmt_record(struct hvd *d, const char *name, const char *format);
/* The store image's name when path is <images_dir>/NAME, else NULL (points into path). */
const char *diskfmt_store_name(struct hvd *d, const char *path);
/* What hvd knows of path's format: its record, else a definition (not skip) giving it. */
const char *diskfmt_known(struct hvd *d, const char *path, const struct vmdef *skip);
/* A store image's format: known, else decided now from its first 4 bytes and recorded. */
const char *diskfmt_of_image(struct hvd *d, const char *name, struct api_error *e);
/*
 * Gives each disk entry of def without format= its format (known, else its
 * first 4 bytes, logged, recorded for a store image). The number of entries
 * changed, or -1 with e.
 */
int diskfmt_decide(struct hvd *d, struct vmdef *def, struct api_error *e);
/* With no record file yet (an older hvd made the store): records every image's format. */
void diskfmt_first_start(struct hvd *d);

/* ---- net.c ---- */
struct json_object *net_list(struct hvd *d);
/* Create the NAT network if needed and a TAP for vm; returns the TAP name or NULL. */
char *net_attach(struct hvd *d, struct hvd_vm *vm, struct api_error *e);
void net_detach(struct hvd *d, struct hvd_vm *vm);

/*
 * ---- pci.c: pci= devices: checked and bound to vfio-pci before hv-vmm
 * starts, given back to their drivers when it ends (docs/passthrough.md) ----
 */
int pci_attach(struct hvd *d, struct hvd_vm *vm, struct api_error *e);
void pci_detach(struct hvd *d, struct hvd_vm *vm);
/* The VM's TAP device name, stable for its name (malloc'd). */
char *net_tap_name(const struct hvd_vm *vm);

/* ---- usb.c: usb.* methods, a front for hv-usbd's control socket ---- */
#define HVD_USBD_SOCKET_DEFAULT "/run/hv/usbd.sock"
#define HVD_BIOS_DEFAULT        "/usr/share/seabios/bios.bin" /* Debian's seabios */
void usb_set_socket(const char *path);
struct json_object *usb_list(struct hvd *d, struct json_object *params, struct api_error *e);
struct json_object *usb_attach(struct hvd *d, struct json_object *params, struct api_error *e);
struct json_object *usb_detach(struct hvd *d, struct json_object *params, struct api_error *e);
struct json_object *usb_rules(struct hvd *d, struct json_object *params, struct api_error *e);

/* ---- vmuser.c: each VM's own user for its hv-vmm ---- */
#define HVD_VMM_UID_BASE 1900000000u
/*
 * hv-vmm's --user argument for vm in *arg (g_free it) and its uid in *uid;
 * NULL and 0 when hvd is not root or --vmm-uid-base is 0. Also closes the VM's files to other
 * users.
 */
int vmuser_arg(struct hvd *d, const struct hvd_vm *vm, char **arg, unsigned *uid,
               struct api_error *e);

/* ---- run.c: external programs ---- */
/* Run argv, capture stdout (malloc'd in *out if out) and stderr; returns exit status or -1. */
int run_cmd(const char *const *argv, char **out, char **errout);

#endif
