/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A VM's screen on hv-switch: which hotkey slot it gets and the --display
 * option hv-vmm is started with (docs/hvd.md, "Displays").
 *
 * hvd chooses the slots, not hv-switch's "first free": a user expects the
 * VM they put on Ctrl+Alt+2 to be there every time, and hvd needs to know
 * which slot a VM has to switch to it. hv-switch refuses a producer whose
 * slot is taken, so a slot is only handed out when no running VM has it.
 */
#include "hvd.h"
#include "log.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOT_NONE -1
#define SLOT_UIVM 0
#define SLOT_MAX  9

static bool is_uivm(const struct hvd_vm *vm)
{
    return strcmp(vm->def->role, "uivm") == 0;
}

static bool slot_taken(struct hvd *d, const struct hvd_vm *self, int slot)
{
    for (struct hvd_vm *o = d->vms; o; o = o->next)
        if (o != self && hvd_vm_is_active(o) && o->slot == slot)
            return true;
    return false;
}

int display_pick_slot(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    vm->slot = SLOT_NONE;
    if (!vm->def->display)
        return 0;
    if (is_uivm(vm)) {
        for (struct hvd_vm *o = d->vms; o; o = o->next)
            if (o != vm && hvd_vm_is_active(o) && o->slot == SLOT_UIVM)
                return api_fail(e, "bad-state",
                                "The UIVM '%s' is already running: only one VM can be the UIVM "
                                "(Ctrl+Alt+0) at a time.",
                                o->def->name);
        vm->slot = SLOT_UIVM;
        return 0;
    }
    if (vm->def->slot && !slot_taken(d, vm, (int)vm->def->slot)) {
        vm->slot = (int)vm->def->slot;
        return 0;
    }
    for (int s = 1; s <= SLOT_MAX; s++) {
        if (!slot_taken(d, vm, s)) {
            if (vm->def->slot)
                log_warn("VM %s: slot %u is taken by a running VM; it gets Ctrl+Alt+%d",
                         vm->def->name, vm->def->slot, s);
            vm->slot = s;
            return 0;
        }
    }
    log_warn("VM %s: all nine hotkey slots are taken; it is reachable from the overlay only",
             vm->def->name);
    return 0;
}

char *display_vmm_arg(struct hvd *d, const struct hvd_vm *vm)
{
    if (!vm->def->display)
        return NULL;
    /* hv-switch shows at most 31 characters of a name; hvd's names are
     * [A-Za-z0-9._-], so nothing in them can break the comma list. */
    char name[32];
    snprintf(name, sizeof(name), "%s", vm->def->name);
    GString *s = g_string_new(d->switch_socket);
    g_string_append_printf(s, ",name=%s,colour=%s", name, vm->def->colour + 1);
    if (strcmp(vm->def->gpu, "bochs") == 0)
        g_string_append(s, ",gpu=bochs");
    if (vm->slot == SLOT_UIVM)
        g_string_append(s, ",uivm");
    else if (vm->slot > 0)
        g_string_append_printf(s, ",slot=%d", vm->slot);
    return g_string_free(s, FALSE);
}

static char *record_path(struct hvd *d, unsigned uid)
{
    char *dir = g_path_get_dirname(d->switch_socket);
    char *path = g_strdup_printf("%s/displays/%u", dir, uid);
    g_free(dir);
    return path;
}

int display_record_write(struct hvd *d, struct hvd_vm *vm, unsigned uid, struct api_error *e)
{
    vm->display_uid = 0;
    if (!vm->def->display || !uid || !d->switch_socket)
        return 0;
    char *path = record_path(d, uid);
    char *dir = g_path_get_dirname(path);
    char name[32];
    snprintf(name, sizeof(name), "%s", vm->def->name); /* as in display_vmm_arg */
    char *text =
        g_strdup_printf("name %s\ncolour %s\nslot %d\nuivm %s\n", name, vm->def->colour + 1,
                        vm->slot > 0 ? vm->slot : 0, vm->slot == SLOT_UIVM ? "yes" : "no");
    GError *gerr = NULL;
    int ret = 0;
    if (g_mkdir_with_parents(dir, 0755) < 0 ||
        !g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &gerr))
        ret = api_fail(e, "internal",
                       "VM '%s': cannot write hv-switch's record of its display (%s): %s.",
                       vm->def->name, path, gerr ? gerr->message : strerror(errno));
    else
        vm->display_uid = uid;
    if (!ret) {
        /* For an hvd restarted meanwhile: whose record to remove when the VM ends. */
        char *run = hvd_vm_run_path(d, vm, "display-uid");
        char num[16];
        snprintf(num, sizeof(num), "%u\n", uid);
        g_file_set_contents(run, num, -1, NULL);
        g_free(run);
    }
    if (gerr)
        g_error_free(gerr);
    g_free(text);
    g_free(dir);
    g_free(path);
    return ret;
}

void display_record_reattach(struct hvd *d, struct hvd_vm *vm)
{
    char *run = hvd_vm_run_path(d, vm, "display-uid");
    char *text = NULL;
    if (g_file_get_contents(run, &text, NULL, NULL))
        vm->display_uid = (unsigned)strtoul(text, NULL, 10);
    g_free(text);
    g_free(run);
}

void display_record_remove(struct hvd *d, struct hvd_vm *vm)
{
    char *run = hvd_vm_run_path(d, vm, "display-uid");
    unlink(run);
    g_free(run);
    if (!vm->display_uid)
        return;
    char *path = record_path(d, vm->display_uid);
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
    g_free(path);
    vm->display_uid = 0;
}
