/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Each VM's own unprivileged user (docs/hvd.md, "Sandbox"). hv-vmm opens
 * everything as root and then drops to uid = gid = base + slot, where a
 * VM's slot is stable: kept in <state-dir>/vm-users ("SLOT NAME" lines),
 * given the first time the VM starts, freed when the VM is no longer
 * defined. No file belongs to these users: a VM's disks, logs and sockets
 * stay root's and out of reach of every other VM's user.
 */
#include "hvd.h"

#include "log.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SLOTS 65535

static char *map_path(struct hvd *d)
{
    return g_strdup_printf("%s/vm-users", d->state_dir);
}

/* The slot of name in the map file, a new one if it has none; -1 on error. */
static int slot_of(struct hvd *d, const char *name)
{
    char *path = map_path(d), *text = NULL;
    GString *out = g_string_new(NULL);
    unsigned char *used = g_malloc0(MAX_SLOTS + 1);
    int slot = -1;

    if (g_file_get_contents(path, &text, NULL, NULL)) {
        char **lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
            int s;
            char n[128];
            if (sscanf(*l, "%d %127s", &s, n) != 2 || s < 1 || s > MAX_SLOTS || used[s])
                continue;
            if (strcmp(n, name) == 0)
                slot = s;
            else if (!hvd_find_vm(d, n))
                continue; /* that VM is gone: its slot is free again */
            used[s] = 1;
            g_string_append_printf(out, "%d %s\n", s, n);
        }
        g_strfreev(lines);
    }
    if (slot < 0) {
        for (int s = 1; s <= MAX_SLOTS && slot < 0; s++)
            if (!used[s])
                slot = s;
        if (slot > 0) {
            g_string_append_printf(out, "%d %s\n", slot, name);
            GError *gerr = NULL;
            if (!g_file_set_contents(path, out->str, -1, &gerr)) {
                log_err("cannot write %s: %s", path, gerr->message);
                g_error_free(gerr);
                slot = -1;
            }
        }
    }
    g_free(used);
    g_string_free(out, TRUE);
    g_free(text);
    g_free(path);
    return slot;
}

/* Take away the "other" bits (a VM's user is no one's group). */
static void private_to_root(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 0007) && chmod(path, st.st_mode & 07770) == 0)
        log_info("%s was open to every user: now mode %04o", path, st.st_mode & 0770);
}

int vmuser_arg(struct hvd *d, const struct hvd_vm *vm, char **arg, unsigned *uid,
               struct api_error *e)
{
    *arg = NULL;
    *uid = 0;
    if (!d->vmm_uid_base || geteuid() != 0)
        return 0; /* hv-vmm runs as hvd's own user, still with its seccomp filter */
    int slot = slot_of(d, vm->def->name);
    if (slot < 0)
        return api_fail(e, "internal", "VM '%s': no free user id for its hv-vmm.", vm->def->name);
    unsigned id = d->vmm_uid_base + (unsigned)slot;
    *uid = id;

    /* The folders of every VM's files, and this VM's writable disks, closed to others. */
    private_to_root(d->images_dir);
    private_to_root(d->vms_dir);
    char *vms_run = g_strdup_printf("%s/vms", d->run_dir);
    private_to_root(vms_run);
    g_free(vms_run);
    for (char **entry = vm->def->disks; entry && *entry; entry++) {
        struct vmdef_disk disk;
        char *err = NULL;
        if (vmdef_disk_parse(*entry, d->images_dir, &disk, &err) < 0) {
            free(err); /* validated when defined: not reached */
            continue;
        }
        if (!disk.readonly && !disk.nonpersistent) /* those are only read, as ro ones */
            private_to_root(disk.path);
        vmdef_disk_clear(&disk);
    }

    /*
     * hv-vmm reconnects to hv-switch as its own user: give it the group of
     * hv-switch's socket, unless that is root's.
     */
    struct stat st;
    if (vm->slot >= 0 && d->switch_socket && stat(d->switch_socket, &st) == 0 && st.st_gid != 0)
        *arg = g_strdup_printf("%u:%u:%u", id, id, (unsigned)st.st_gid);
    else
        *arg = g_strdup_printf("%u:%u", id, id);
    return 0;
}
