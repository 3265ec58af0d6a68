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

#include <glib.h>
#include <stdio.h>
#include <string.h>

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
    if (vm->slot == SLOT_UIVM)
        g_string_append(s, ",uivm");
    else if (vm->slot > 0)
        g_string_append_printf(s, ",slot=%d", vm->slot);
    return g_string_free(s, FALSE);
}
