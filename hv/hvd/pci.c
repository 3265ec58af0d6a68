// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pci= in a VM definition (docs/passthrough.md). Before hv-vmm starts:
 * no other running VM has the device, the passthrough checks pass (IOMMU
 * on, the device's IOMMU group assignable), and the device is bound to
 * vfio-pci. hv-vmm (root until its sandbox drops to the VM's user) opens the
 * group itself. What each device was bound to is written to
 * <run-dir>/vms/NAME/pci as it happens, so that the VM's end, whatever it
 * was (poweroff, destroy, crash, an hvd restart in between), gives every
 * device back to its own driver.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hvd.h"
#include "log.h"
#include "pt.h"

static bool vm_has_pci(const struct hvd_vm *vm, const char *bdf)
{
    for (char **p = vm->def->pci; p && *p; p++)
        if (strcmp(*p, bdf) == 0)
            return true;
    return false;
}

static int check_free(struct hvd *d, struct hvd_vm *vm, const char *bdf, struct api_error *e)
{
    for (struct hvd_vm *o = d->vms; o; o = o->next)
        if (o != vm && hvd_vm_is_active(o) && vm_has_pci(o, bdf))
            return api_fail(e, "in-use", "PCI device %s is in use by the running VM '%s'.", bdf,
                            o->def->name);
    return 0;
}

int pci_attach(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    const struct pt_sys sys = {.root = ""};
    char err[1024];

    pci_detach(d, vm); /* a previous run's bindings, if its end was never handled */
    if (!vm->def->pci || !vm->def->pci[0])
        return 0;
    for (char **p = vm->def->pci; *p; p++) {
        if (check_free(d, vm, *p, e) < 0)
            return -1;
        if (pt_check_assignable(&sys, *p, err, sizeof(err)) < 0)
            return api_fail(e, "pci", "VM '%s' cannot have PCI device %s: %s.", vm->def->name, *p,
                            err);
    }
    if (pt_load_vfio(&sys, err, sizeof(err)) < 0)
        return api_fail(e, "pci", "VM '%s': %s.", vm->def->name, err);

    char *path = hvd_vm_run_path(d, vm, "pci");
    GString *text = g_string_new(NULL);
    int ret = 0;
    for (char **p = vm->def->pci; *p; p++) {
        struct pt_binding b;
        char line[128];
        if (pt_bind_vfio(&sys, *p, &b, err, sizeof(err)) < 0) {
            ret = api_fail(e, "pci", "VM '%s': %s.", vm->def->name, err);
            break;
        }
        pt_binding_format(&b, line, sizeof(line));
        g_string_append_printf(text, "%s\n", line);
        GError *gerr = NULL;
        if (!g_file_set_contents(path, text->str, (gssize)text->len, &gerr)) {
            log_err("VM %s: cannot write %s: %s", vm->def->name, path, gerr->message);
            g_error_free(gerr);
        }
        log_info("VM %s: PCI device %s bound to vfio-pci (was %s)", vm->def->name, b.bdf,
                 b.driver[0] ? b.driver : "unbound");
    }
    g_string_free(text, TRUE);
    g_free(path);
    if (ret < 0)
        pci_detach(d, vm);
    return ret;
}

void pci_detach(struct hvd *d, struct hvd_vm *vm)
{
    const struct pt_sys sys = {.root = ""};
    char *path = hvd_vm_run_path(d, vm, "pci");
    char *text = NULL;

    if (g_file_get_contents(path, &text, NULL, NULL)) {
        char **lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
            struct pt_binding b;
            char err[1024];
            if (!**l)
                continue;
            if (pt_binding_parse(*l, &b) < 0) {
                log_err("VM %s: ignoring the line '%s' of %s", vm->def->name, *l, path);
                continue;
            }
            if (pt_restore(&sys, &b, err, sizeof(err)) < 0)
                log_err("VM %s: PCI device %s: %s", vm->def->name, b.bdf, err);
            else
                log_info("VM %s: PCI device %s given back to %s", vm->def->name, b.bdf,
                         b.driver[0] ? b.driver : "no driver (as it was)");
        }
        g_strfreev(lines);
        g_free(text);
        unlink(path);
    }
    g_free(path);
}
