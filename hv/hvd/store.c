/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VM definitions on disk: <state-dir>/vms/NAME.conf, one INI file per VM. */
#include "hvd.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hvd_vmdef_ctx(struct hvd *d, struct vmdef_ctx *ctx)
{
    ctx->images_dir = d->images_dir;
    ctx->check_files = true;
}

struct hvd_vm *hvd_find_vm(struct hvd *d, const char *name)
{
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next)
        if (strcmp(vm->def->name, name) == 0)
            return vm;
    return NULL;
}

struct hvd_vm *hvd_add_vm(struct hvd *d, struct vmdef *def)
{
    struct hvd_vm *vm = calloc(1, sizeof(*vm));
    vm->def = def;
    vm->hvd = d;
    vm->monitor_pidfd = -1;
    vm->slot = -1;
    struct hvd_vm **p = &d->vms;
    while (*p && strcmp((*p)->def->name, def->name) < 0)
        p = &(*p)->next;
    vm->next = *p;
    *p = vm;
    return vm;
}

void hvd_remove_vm(struct hvd *d, struct hvd_vm *vm)
{
    for (struct hvd_vm **p = &d->vms; *p; p = &(*p)->next) {
        if (*p == vm) {
            *p = vm->next;
            break;
        }
    }
    sd_event_source_disable_unref(vm->exit_source);
    if (vm->monitor_pidfd >= 0)
        close(vm->monitor_pidfd);
    vmdef_free(vm->def);
    free(vm->tap);
    free(vm);
}

static char *conf_path(struct hvd *d, const char *name)
{
    return g_strdup_printf("%s/%s.conf", d->vms_dir, name);
}

int store_save(struct hvd *d, const struct vmdef *def, char **err)
{
    char *text = vmdef_to_text(def);
    char *path = conf_path(d, def->name);
    GError *gerr = NULL;
    int rc = 0;

    /* g_file_set_contents writes a temporary file and renames it: never half a file. */
    if (!g_file_set_contents(path, text, -1, &gerr)) {
        *err = strdup(gerr->message);
        g_error_free(gerr);
        rc = -1;
    }
    g_free(path);
    free(text);
    return rc;
}

int store_remove(struct hvd *d, const char *name)
{
    char *path = conf_path(d, name);
    int rc = unlink(path);
    g_free(path);
    return rc;
}

int store_load_all(struct hvd *d)
{
    DIR *dir = opendir(d->vms_dir);
    if (!dir) {
        log_err("cannot open %s: %s", d->vms_dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".conf") != 0 || de->d_name[0] == '.')
            continue;
        char *path = g_strdup_printf("%s/%s", d->vms_dir, de->d_name);
        char *text = NULL;
        gsize len;
        if (!g_file_get_contents(path, &text, &len, NULL)) {
            log_warn("cannot read %s", path);
            g_free(path);
            continue;
        }
        /* Files are checked at start; a missing kernel must not hide the VM. */
        struct vmdef_ctx ctx = {.images_dir = d->images_dir, .check_files = false};
        char *err = NULL;
        struct vmdef *def = vmdef_from_text(text, len, &ctx, &err);
        if (!def) {
            log_warn("%s: %s; ignoring it", path, err);
        } else if (strlen(def->name) != n - 5 || strncmp(def->name, de->d_name, n - 5) != 0) {
            log_warn("%s: defines '%s', not its file name; ignoring it", path, def->name);
            vmdef_free(def);
        } else if (hvd_find_vm(d, def->name)) {
            vmdef_free(def);
        } else {
            hvd_add_vm(d, def);
        }
        free(err);
        g_free(text);
        g_free(path);
    }
    closedir(dir);
    return 0;
}
