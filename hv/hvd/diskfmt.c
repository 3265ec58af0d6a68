/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Each disk's format, decided once (docs/disks.md, "Formats are decided
 * once"). A guest controls its raw disk's first sector: if the format were
 * probed at every start, a qcow2 header written there would make the next
 * start open the disk as qcow2 with a backing file of the guest's choosing.
 * So hvd decides a format when it makes an image, or when a definition first
 * names a disk, keeps it in the definition (",format=F") and, for images of
 * the store, in <state-dir>/image-formats ("NAME FORMAT" lines), and tells
 * hv-vmm and qemu-img; nothing reads a guest-written header to decide again.
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

static char *record_path(struct hvd *d)
{
    return g_strdup_printf("%s/image-formats", d->state_dir);
}

/* The record file's lines, NULL-terminated (g_strfreev), or NULL when there is none. */
static char **record_lines(struct hvd *d)
{
    char *path = record_path(d), *text = NULL;
    char **lines = NULL;
    if (g_file_get_contents(path, &text, NULL, NULL))
        lines = g_strsplit(text, "\n", -1);
    g_free(text);
    g_free(path);
    return lines;
}

/* "NAME FORMAT" → name (in buf) and the format; false for anything else. */
static bool parse_line(const char *line, char name[VMDEF_NAME_MAX + 1], const char **format)
{
    char n[VMDEF_NAME_MAX + 1], f[8];
    if (sscanf(line, "%64s %7s", n, f) != 2 || !vmdef_name_ok(n) || !vmdef_format_name(f))
        return false;
    snprintf(name, VMDEF_NAME_MAX + 1, "%s", n);
    *format = vmdef_format_name(f);
    return true;
}

const char *diskfmt_recorded(struct hvd *d, const char *name)
{
    char **lines = record_lines(d);
    const char *found = NULL, *f;
    char n[VMDEF_NAME_MAX + 1];
    for (char **l = lines; l && *l && !found; l++)
        if (parse_line(*l, n, &f) && strcmp(n, name) == 0)
            found = f;
    g_strfreev(lines);
    return found;
}

int diskfmt_record(struct hvd *d, const char *name, const char *format)
{
    char **lines = record_lines(d);
    GString *out = g_string_new("# hvd: the format of each image in images/ (docs/disks.md)\n");
    const char *f;
    char n[VMDEF_NAME_MAX + 1];
    for (char **l = lines; l && *l; l++) {
        if (!parse_line(*l, n, &f) || strcmp(n, name) == 0)
            continue;
        char *img = g_strdup_printf("%s/%s", d->images_dir, n);
        bool gone = access(img, F_OK) != 0 && errno == ENOENT;
        g_free(img);
        if (!gone) /* an image removed by hand takes its record with it */
            g_string_append_printf(out, "%s %s\n", n, f);
    }
    if (format)
        g_string_append_printf(out, "%s %s\n", name, format);
    char *path = record_path(d);
    GError *gerr = NULL;
    int rc = 0;
    /* A temporary file renamed over the old one: never half a record. */
    if (!g_file_set_contents_full(path, out->str, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0640,
                                  &gerr)) {
        log_err("cannot write %s: %s", path, gerr->message);
        g_error_free(gerr);
        rc = -1;
    }
    g_free(path);
    g_string_free(out, TRUE);
    g_strfreev(lines);
    return rc;
}

const char *diskfmt_store_name(struct hvd *d, const char *path)
{
    size_t n = strlen(d->images_dir);
    if (strncmp(path, d->images_dir, n) != 0 || path[n] != '/' || !vmdef_name_ok(path + n + 1))
        return NULL;
    return path + n + 1;
}

const char *diskfmt_known(struct hvd *d, const char *path, const struct vmdef *skip)
{
    const char *name = diskfmt_store_name(d, path), *f = name ? diskfmt_recorded(d, name) : NULL;
    for (struct hvd_vm *vm = d->vms; vm && !f; vm = vm->next) {
        if (vm->def == skip)
            continue;
        for (char **entry = vm->def->disks; entry && *entry && !f; entry++) {
            struct vmdef_disk disk;
            char *err = NULL;
            if (vmdef_disk_parse(*entry, d->images_dir, &disk, &err) < 0) {
                free(err);
                continue;
            }
            if (disk.format && strcmp(disk.path, path) == 0)
                f = vmdef_format_name(disk.format);
            vmdef_disk_clear(&disk);
        }
    }
    return f;
}

/* The first 4 bytes decide, once; logged, and recorded for an image of the store. */
static const char *probe_once(struct hvd *d, const char *path, const char *who, struct api_error *e)
{
    const char *f, *name = diskfmt_store_name(d, path);
    char *err = NULL;
    if (vmdef_probe_format(path, &f, &err) < 0) {
        api_fail(e, "bad-image", "Image '%s' cannot be read: %s.", path, err);
        free(err);
        return NULL;
    }
    log_info("%s: image '%s' has no format recorded; its first bytes say %s, which is now its "
             "format%s",
             who, path, f, name ? " (recorded)" : " (in the definition)");
    if (name)
        diskfmt_record(d, name, f);
    return f;
}

const char *diskfmt_of_image(struct hvd *d, const char *name, struct api_error *e)
{
    char *path = g_strdup_printf("%s/%s", d->images_dir, name);
    const char *f = NULL;
    struct stat st;
    if (stat(path, &st) < 0)
        api_fail(e, "not-found", "No image named '%s'.", name);
    else if (!S_ISREG(st.st_mode))
        api_fail(e, "bad-image", "Image '%s' is not a regular file.", name);
    else if (!(f = diskfmt_known(d, path, NULL)))
        f = probe_once(d, path, "disk", e);
    g_free(path);
    return f;
}

/* One entry without format=: the record, another definition, else its first bytes. */
static char *decide_entry(struct hvd *d, const struct vmdef *def, const char *entry,
                          struct api_error *e)
{
    struct vmdef_disk disk, written;
    char *err = NULL, *out = NULL;
    if (vmdef_disk_parse(entry, d->images_dir, &disk, &err) < 0) {
        api_fail(e, "invalid-definition", "%s.", err);
        free(err);
        return NULL;
    }
    vmdef_disk_parse(entry, NULL, &written, &err); /* the same entry: it parses */
    /* A format the user gave stays in the definition only: the record is hvd's own word. */
    const char *f = disk.format;
    if (!f && !(f = diskfmt_known(d, disk.path, def))) {
        char who[VMDEF_NAME_MAX + 8];
        snprintf(who, sizeof(who), "VM %s", def->name);
        f = probe_once(d, disk.path, who, e);
    }
    if (f) {
        written.format = f;
        out = vmdef_disk_text(&written);
    }
    vmdef_disk_clear(&disk);
    vmdef_disk_clear(&written);
    return out;
}

int diskfmt_decide(struct hvd *d, struct vmdef *def, struct api_error *e)
{
    int changed = 0;
    for (char **entry = def->disks; entry && *entry; entry++) {
        char *decided = decide_entry(d, def, *entry, e);
        if (!decided)
            return -1;
        if (strcmp(decided, *entry) != 0) {
            free(*entry);
            *entry = decided;
            changed++;
        } else {
            free(decided);
        }
    }
    return changed;
}

void diskfmt_first_start(struct hvd *d)
{
    char *path = record_path(d);
    bool have = access(path, F_OK) == 0;
    g_free(path);
    if (have)
        return;
    /*
     * An hvd from before records were kept made these images: their first
     * bytes decide, this once (that hv-vmm refused a guest's writes of the
     * qcow2 magic to a probed raw image, so they are the images' own).
     */
    GDir *dir = g_dir_open(d->images_dir, 0, NULL);
    const char *n;
    unsigned count = 0;
    while (dir && (n = g_dir_read_name(dir))) {
        char *img = g_strdup_printf("%s/%s", d->images_dir, n), *err = NULL;
        const char *f;
        struct stat st;
        if (vmdef_name_ok(n) && stat(img, &st) == 0 && S_ISREG(st.st_mode) &&
            vmdef_probe_format(img, &f, &err) == 0 && diskfmt_record(d, n, f) == 0)
            count++;
        free(err);
        g_free(img);
    }
    if (dir)
        g_dir_close(dir);
    if (count == 0)
        diskfmt_record(d, "-", NULL); /* an empty record: this runs once */
    else
        log_info("recorded the format of %u images in %s from their first bytes (the first "
                 "start of an hvd that keeps formats)",
                 count, d->images_dir);
}
