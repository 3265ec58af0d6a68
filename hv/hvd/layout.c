/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Stable PCI slots for hvd's VMs (docs/hvd.md, "PCI layout"). At its first
 * start hv-vmm places the devices itself; hvd asks it where they went (the
 * control socket's "devices") and keeps that in the definition's pci_slots.
 * Every later start passes the same places (--pci-slot), so a device added
 * to the definition takes a free slot and nothing already there moves: a
 * guest (Windows above all) keeps its idea of which card is which.
 *
 * Disks are named disk:PATH in the record, not virtio-blkN: taking a disk
 * out of the list must not move the ones after it.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvd.h"
#include "log.h"

#define DISK_PREFIX "disk:"
#define BLK_PREFIX  "virtio-blk"

struct learn {
    char *name;        /* the VM, looked up again when the reply comes */
    char **disk_paths; /* the --disk paths of this start, in order */
};

static char *entry_key(const char *entry)
{
    const char *eq = strrchr(entry, '=');
    return g_strndup(entry, eq ? (size_t)(eq - entry) : strlen(entry));
}

void layout_add_args(const struct vmdef *def, char *const *disk_paths, GPtrArray *argv)
{
    for (char **p = def->pci_slots; p && *p; p++) {
        const char *slot = strrchr(*p, '=') + 1; /* vmdef.c checked the form */
        char *key = entry_key(*p);
        if (g_str_has_prefix(key, DISK_PREFIX)) {
            /* The disk's place in this start's list; a disk taken out has none. */
            for (guint i = 0; disk_paths && disk_paths[i]; i++)
                if (strcmp(disk_paths[i], key + strlen(DISK_PREFIX)) == 0) {
                    g_ptr_array_add(argv, g_strdup("--pci-slot"));
                    g_ptr_array_add(argv, g_strdup_printf(BLK_PREFIX "%u=%s", i, slot));
                    break;
                }
        } else if (!g_str_has_prefix(key, BLK_PREFIX)) {
            g_ptr_array_add(argv, g_strdup("--pci-slot"));
            g_ptr_array_add(argv, g_strdup_printf("%s=%s", key, slot));
        }
        g_free(key);
    }
}

void layout_keep(struct vmdef *def, const struct vmdef *old)
{
    if (def->pci_slots || !old->pci_slots)
        return;
    def->pci_slots = calloc(g_strv_length(old->pci_slots) + 1, sizeof(char *));
    for (guint i = 0; def->pci_slots && old->pci_slots[i]; i++)
        def->pci_slots[i] = strdup(old->pci_slots[i]);
}

/* hv-vmm's "devices" reply as pci_slots entries (NULL-terminated), or NULL. */
static char **entries_from_reply(struct json_object *reply, char **disk_paths)
{
    struct json_object *devs, *id, *pci;
    if (!json_object_object_get_ex(reply, "devices", &devs) ||
        !json_object_is_type(devs, json_type_array))
        return NULL;
    GPtrArray *out = g_ptr_array_new();
    guint nr_disks = disk_paths ? g_strv_length(disk_paths) : 0;
    for (size_t i = 0; i < json_object_array_length(devs); i++) {
        struct json_object *dev = json_object_array_get_idx(devs, i);
        unsigned slot;
        if (!json_object_object_get_ex(dev, "id", &id) ||
            !json_object_object_get_ex(dev, "pci", &pci) ||
            sscanf(json_object_get_string(pci), "00:%x.0", &slot) != 1 || slot == 0 ||
            slot > VMDEF_PCI_SLOTS)
            continue;
        const char *name = json_object_get_string(id);
        unsigned k;
        char extra;
        if (sscanf(name, BLK_PREFIX "%u%c", &k, &extra) == 1) {
            if (k < nr_disks)
                g_ptr_array_add(out, g_strdup_printf(DISK_PREFIX "%s=%u", disk_paths[k], slot));
        } else {
            g_ptr_array_add(out, g_strdup_printf("%s=%u", name, slot));
        }
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

static bool same_entries(char **a, char **b)
{
    guint na = a ? g_strv_length(a) : 0, nb = b ? g_strv_length(b) : 0;
    if (na != nb)
        return false;
    for (guint i = 0; i < na; i++)
        if (!g_strv_contains((const char *const *)b, a[i]))
            return false;
    return true;
}

static void learn_done(struct hvd *d, void *userdata, struct json_object *reply, const char *err)
{
    struct learn *l = userdata;
    struct hvd_vm *vm = hvd_find_vm(d, l->name);
    char **got = reply ? entries_from_reply(reply, l->disk_paths) : NULL;

    if (!reply)
        log_warn("VM %s: cannot read where hv-vmm put its PCI devices: %s", l->name, err);
    else if (!got)
        log_warn("VM %s: hv-vmm's device list has no devices", l->name);
    else if (vm && hvd_vm_is_active(vm) && !same_entries(got, vm->def->pci_slots)) {
        /* glib's strv and the definition's malloc'd one: copy across. */
        char **old = vm->def->pci_slots, *errtext = NULL;
        vm->def->pci_slots = calloc(g_strv_length(got) + 1, sizeof(char *));
        for (guint i = 0; vm->def->pci_slots && got[i]; i++)
            vm->def->pci_slots[i] = strdup(got[i]);
        if (store_save(d, vm->def, &errtext) < 0) {
            log_warn("VM %s: cannot store its PCI layout: %s", l->name, errtext);
            free(errtext);
        } else {
            log_info("VM %s: its PCI layout is kept in its definition (%u devices)", l->name,
                     g_strv_length(got));
        }
        for (char **p = old; p && *p; p++)
            free(*p);
        free(old);
    }
    if (reply)
        json_object_put(reply);
    g_strfreev(got);
    g_strfreev(l->disk_paths);
    g_free(l->name);
    g_free(l);
}

void layout_learn(struct hvd *d, struct hvd_vm *vm, char **disk_paths)
{
    struct learn *l = g_new0(struct learn, 1);
    char err[256];
    l->name = g_strdup(vm->def->name);
    l->disk_paths = g_strdupv(disk_paths);
    char *sock = hvd_vm_run_path(d, vm, "control.sock");
    if (vmmctl_call_async(d, sock, "devices", learn_done, l, err, sizeof(err)) < 0) {
        log_warn("VM %s: cannot ask hv-vmm where its PCI devices are: %s", l->name, err);
        g_strfreev(l->disk_paths);
        g_free(l->name);
        g_free(l);
    }
    g_free(sock);
}
