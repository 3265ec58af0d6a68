/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a manager client (the UIVM, over vsock) may do: less than local root
 * (docs/hvd-api.md, "Privilege levels"). A manager names only what lives in
 * hvd's stores: disks in <state-dir>/images, kernels and initrds in
 * <state-dir>/kernels, PCI devices on the host admin's allow list. Paths are
 * checked after resolving symbolic links, so a link root left in a store
 * does not lead a manager out of it.
 *
 * Replacing a definition: a value a manager could not set itself may stay
 * when it is unchanged from the definition it replaces (the settings dialog
 * sends a root-defined VM's paths back as they were), never be changed.
 *
 * The fields of struct vmdef (vmdef.c), audited: name, memory, cpus,
 * cmdline, net, mac, colour, os, autostart, display and slot reach only the
 * guest or hvd's own bounded resources: anyone may set them. vsock: anyone,
 * but the UIVM's CID is the UIVM's alone (policy_check_vsock, every client).
 * kernel, initrd, disk, pci and role=uivm: below. A disk's format= may be
 * given too: whatever it says, a qcow2's backing files must be in the image
 * store (hv-vmm's --image-dir, vm.c). A new field needs a line here.
 */
#include "hvd.h"

#include "pt.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NOT_ALLOWED "not-allowed"

static int refuse(struct api_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct api_error *e, const char *fmt, ...)
{
    char why[sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return api_fail(e, NOT_ALLOWED, "Not allowed from the UIVM: %s.", why);
}

static bool is_uivm(const struct vmdef *def)
{
    return strcmp(def->role, "uivm") == 0;
}

enum place { IN_STORE, MISSING, OUTSIDE, NOT_FILE };

/* Where path leads once every link is resolved, against the store dir. */
static enum place locate(const char *path, const char *dir)
{
    char *rdir = realpath(dir, NULL), *rpath = realpath(path, NULL);
    enum place p = IN_STORE;
    struct stat st;
    size_t n = rdir ? strlen(rdir) : 0;
    if (!rpath || !rdir)
        p = MISSING;
    else if (strncmp(rpath, rdir, n) != 0 || rpath[n] != '/')
        p = OUTSIDE;
    else if (stat(rpath, &st) < 0 || !S_ISREG(st.st_mode))
        p = NOT_FILE;
    free(rdir);
    free(rpath);
    return p;
}

static bool listed(char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* kernel= or initrd=: an absolute path to a file in the kernels folder. */
static int check_boot_file(struct hvd *d, const char *field, const char *value, const char *old,
                           struct api_error *e)
{
    if (!value || (old && strcmp(value, old) == 0))
        return 0;
    if (value[0] != '/')
        return refuse(e, "field '%s': '%s' is not an absolute path in hvd's kernels folder %s",
                      field, value, d->kernels_dir);
    enum place p = locate(value, d->kernels_dir);
    if (p == IN_STORE)
        return 0;
    if (p == NOT_FILE) /* in the folder: naming it tells nothing about the host */
        return refuse(e, "field '%s': '%s' is not a regular file", field, value);
    return refuse(e,
                  "field '%s': '%s' is not a file in hvd's kernels folder %s (links resolved); "
                  "the UIVM may boot only the kernels and initrds the host put there",
                  field, value, d->kernels_dir);
}

/* disk=: the name of an image in the store (vmdef.c has refused "..", "/" inside). */
static int check_disk(struct hvd *d, const struct vmdef_disk *disk, struct api_error *e)
{
    const char *name = disk->path;
    int rc = 0;
    if (name[0] == '/') {
        rc = refuse(e,
                    "field 'disk': '%s' is a host path; from the UIVM a disk is the name of an "
                    "image in hvd's image store (disk.list)",
                    name);
    } else if (!vmdef_name_ok(name)) {
        rc = refuse(e, "field 'disk': '%s' is not the name of an image", name);
    } else {
        char *path = g_strdup_printf("%s/%s", d->images_dir, name);
        enum place p = locate(path, d->images_dir);
        if (p == OUTSIDE)
            rc = refuse(e, "field 'disk': image '%s' leads outside hvd's image store (a link)",
                        name);
        else if (p == NOT_FILE)
            rc = refuse(e, "field 'disk': image '%s' is not a regular file", name);
        else if (p == MISSING)
            rc = refuse(e, "field 'disk': there is no image '%s' in hvd's image store", name);
        g_free(path);
    }
    return rc;
}

/*
 * Whether the replaced definition has this disk as it is: the same file as
 * written, as read-only or writable, and the same format (none given: the
 * one kept, see diskfmt.c). ",format=" on a host path is never a manager's
 * to change.
 */
static bool disk_kept(char *const *old, const struct vmdef_disk *disk)
{
    bool kept = false;
    for (; old && *old && !kept; old++) {
        struct vmdef_disk o;
        char *err = NULL;
        if (vmdef_disk_parse(*old, NULL, &o, &err) < 0) {
            free(err);
            continue;
        }
        kept = strcmp(o.path, disk->path) == 0 && o.readonly == disk->readonly &&
               (!disk->format || (o.format && strcmp(o.format, disk->format) == 0));
        vmdef_disk_clear(&o);
    }
    return kept;
}

/* Each disk= entry: kept from the replaced definition, or an image of the store. */
static int check_disks(struct hvd *d, const struct vmdef *def, const struct vmdef *old,
                       struct api_error *e)
{
    for (char **entry = def->disks; entry && *entry; entry++) {
        struct vmdef_disk disk;
        char *err = NULL;
        if (vmdef_disk_parse(*entry, NULL, &disk, &err) < 0) { /* validated: not reached */
            int rc = refuse(e, "%s", err);
            free(err);
            return rc;
        }
        int rc = old && disk_kept(old->disks, &disk) ? 0 : check_disk(d, &disk, e);
        vmdef_disk_clear(&disk);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The host admin's allow list: one PCI address a line, '#' comments. */
static bool pci_allowed(struct hvd *d, const char *bdf)
{
    char *text = NULL;
    bool ok = false;
    if (!g_file_get_contents(d->uivm_pci_allow, &text, NULL, NULL))
        return false; /* no file: nothing is allowed */
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l && !ok; l++) {
        char *hash = strchr(*l, '#'), norm[PT_BDF_LEN];
        if (hash)
            *hash = '\0';
        g_strstrip(*l);
        ok = **l && pt_parse_bdf(*l, norm) == 0 && strcmp(norm, bdf) == 0;
    }
    g_strfreev(lines);
    g_free(text);
    return ok;
}

int policy_check_define(struct hvd *d, const struct vmdef *def, const struct vmdef *old,
                        struct api_error *e)
{
    if (old && is_uivm(old))
        return refuse(e, "VM '%s' is the UIVM; its definition is changed on the host (hvctl)",
                      old->name);
    if (is_uivm(def))
        return refuse(e, "field 'role': only the host defines the UIVM (role=uivm)");
    if (check_boot_file(d, "kernel", def->kernel, old ? old->kernel : NULL, e) < 0 ||
        check_boot_file(d, "initrd", def->initrd, old ? old->initrd : NULL, e) < 0)
        return -1;
    if (check_disks(d, def, old, e) < 0)
        return -1;
    for (char **bdf = def->pci; bdf && *bdf; bdf++)
        if (!(old && listed(old->pci, *bdf)) && !pci_allowed(d, *bdf))
            return refuse(e,
                          "field 'pci': %s is not on the host's list of PCI devices the UIVM "
                          "may give (%s)",
                          *bdf, d->uivm_pci_allow);
    return 0;
}

int policy_check_undefine(struct hvd *d, const struct hvd_vm *vm, struct api_error *e)
{
    (void)d;
    if (is_uivm(vm->def))
        return refuse(e, "VM '%s' is the UIVM; its definition is changed on the host (hvctl)",
                      vm->def->name);
    return 0;
}

int policy_check_image_param(struct hvd *d, struct json_object *params, const char *key,
                             struct api_error *e)
{
    struct json_object *v;
    if (!json_object_object_get_ex(params, key, &v) || !json_object_is_type(v, json_type_string))
        return 0; /* the method itself says what is missing */
    const char *name = json_object_get_string(v);
    if (!vmdef_name_ok(name))
        return 0;
    char *path = g_strdup_printf("%s/%s", d->images_dir, name);
    enum place p = locate(path, d->images_dir);
    g_free(path);
    if (p == OUTSIDE)
        return refuse(e, "image '%s' leads outside hvd's image store (a link)", name);
    if (p == NOT_FILE)
        return refuse(e, "image '%s' is not a regular file", name);
    return 0; /* in the store, or absent: the method answers not-found */
}

bool policy_is_uivm_cid(struct hvd *d, uint32_t cid, const char *except)
{
    if (cid == 0)
        return false;
    if (d->uivm_cid && cid == d->uivm_cid)
        return true;
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next)
        if (is_uivm(vm->def) && vm->def->vsock == cid &&
            !(except && strcmp(vm->def->name, except) == 0))
            return true;
    return false;
}

int policy_check_vsock(struct hvd *d, const struct vmdef *def, struct api_error *e)
{
    if (!def->vsock)
        return 0;
    if (!is_uivm(def) && policy_is_uivm_cid(d, def->vsock, def->name))
        return api_fail(e, "invalid-definition",
                        "field 'vsock': CID %u is reserved for the UIVM (hvd --uivm-cid or a "
                        "role=uivm VM); give this VM another one.",
                        def->vsock);
    if (!is_uivm(def))
        return 0;
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next)
        if (!is_uivm(vm->def) && vm->def->vsock == def->vsock &&
            strcmp(vm->def->name, def->name) != 0)
            return api_fail(e, "invalid-definition",
                            "field 'vsock': CID %u is VM '%s''s; the UIVM's CID must be its own.",
                            def->vsock, vm->def->name);
    return 0;
}

int policy_check_start_cid(struct hvd *d, const struct hvd_vm *vm, struct api_error *e)
{
    uint32_t cid = vm->def->vsock;
    if (!cid)
        return 0;
    if (!is_uivm(vm->def) && policy_is_uivm_cid(d, cid, vm->def->name))
        return api_fail(e, "in-use",
                        "VM '%s': vsock CID %u is reserved for the UIVM; give the VM another "
                        "vsock=.",
                        vm->def->name, cid);
    for (struct hvd_vm *o = d->vms; o; o = o->next)
        if (o != vm && hvd_vm_is_active(o) && o->def->vsock == cid)
            return api_fail(e, "in-use", "VM '%s': vsock CID %u is in use by the running VM '%s'.",
                            vm->def->name, cid, o->def->name);
    return 0;
}
