/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk images in <state-dir>/images/: raw files, and qcow2 through Debian's
 * qemu-img (create, overlays on a golden image, check). Every image is checked
 * with `qemu-img info`/`check` before it is used, so a corrupt or truncated
 * one is refused with a clear error instead of being half-used.
 */
#include "hvd.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_SIZE (1ULL << 20)
#define MAX_SIZE (16ULL << 40)

static bool have_qemu_img(void)
{
    char *p = g_find_program_in_path("qemu-img");
    bool ok = p != NULL;
    g_free(p);
    return ok;
}

/* qemu-img info as JSON, or NULL with e set. */
static struct json_object *image_info(const char *path, struct api_error *e)
{
    const char *argv[] = {"qemu-img", "info", "-U", "--output=json", path, NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, &out, &err);
    struct json_object *info = NULL;
    if (rc == 0)
        info = json_tokener_parse(out);
    if (!info)
        api_fail(e, "bad-image", "Image '%s' cannot be read: %s.", path,
                 err && *err ? err : "qemu-img info failed");
    free(out);
    free(err);
    return info;
}

static const char *info_str(struct json_object *info, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(info, key, &v) ? json_object_get_string(v) : NULL;
}

int disk_check_image(const char *path, struct api_error *e)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return api_fail(e, "bad-image", "Image '%s' does not exist.", path);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return api_fail(e, "bad-image", "Image '%s' is not a file or block device.", path);
    if (!have_qemu_img())
        return 0; /* a raw image has nothing to check */
    struct json_object *info = image_info(path, e);
    if (!info)
        return -1;
    const char *fmt = info_str(info, "format");
    int rc = 0;
    if (!fmt || (strcmp(fmt, "raw") != 0 && strcmp(fmt, "qcow2") != 0)) {
        rc = api_fail(e, "bad-image", "Image '%s' has the unsupported format '%s'.", path,
                      fmt ? fmt : "unknown");
    } else if (strcmp(fmt, "qcow2") == 0) {
        const char *argv[] = {"qemu-img", "check", "-U", "-q", path, NULL};
        char *err = NULL;
        int c = run_cmd(argv, NULL, &err);
        if (c != 0)
            rc =
                api_fail(e, "bad-image", "Image '%s' is corrupt or truncated (qemu-img check: %s).",
                         path, err && *err ? err : "errors found");
        free(err);
    }
    json_object_put(info);
    return rc;
}

static char *image_path(struct hvd *d, const char *name)
{
    return g_strdup_printf("%s/%s", d->images_dir, name);
}

static const char *param_name(struct json_object *params, const char *key, struct api_error *e)
{
    struct json_object *v;
    if (!json_object_object_get_ex(params, key, &v) || !json_object_is_type(v, json_type_string)) {
        api_fail(e, "bad-params", "Parameter '%s' (an image name) is required.", key);
        return NULL;
    }
    const char *s = json_object_get_string(v);
    if (!vmdef_name_ok(s)) {
        api_fail(e, "bad-params",
                 "Parameter '%s': '%.64s' is not a valid image name (A-Z a-z 0-9 . _ -).", key, s);
        return NULL;
    }
    return s;
}

static int param_size(struct json_object *params, uint64_t *out, struct api_error *e)
{
    struct json_object *v;
    const char *why = "expected a size";
    if (!json_object_object_get_ex(params, "size", &v))
        return api_fail(e, "bad-params", "Parameter 'size' is required.");
    if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0)
        *out = (uint64_t)json_object_get_int64(v);
    else if (!json_object_is_type(v, json_type_string) ||
             parse_size(json_object_get_string(v), out, &why) < 0)
        return api_fail(e, "bad-params", "Parameter 'size': %s.", why);
    if (*out < MIN_SIZE || *out > MAX_SIZE)
        return api_fail(e, "bad-params", "Parameter 'size' must be between 1M and 16T.");
    return 0;
}

/* VMs whose definitions list this image. */
static struct json_object *used_by(struct hvd *d, const char *path, bool running_only)
{
    struct json_object *a = json_object_new_array();
    for (struct vm *vm = d->vms; vm; vm = vm->next) {
        if (running_only && !vm_is_active(vm))
            continue;
        for (char **entry = vm->def->disks; entry && *entry; entry++) {
            bool ro;
            char *p = vmdef_disk_path(*entry, d->images_dir, &ro);
            bool same = strcmp(p, path) == 0;
            free(p);
            if (same) {
                json_object_array_add(a, json_object_new_string(vm->def->name));
                break;
            }
        }
    }
    return a;
}

static struct json_object *entry(struct hvd *d, const char *name, struct api_error *e)
{
    char *path = image_path(d, name);
    struct stat st;
    struct json_object *o = NULL;
    if (stat(path, &st) < 0) {
        api_fail(e, "not-found", "No image named '%s'.", name);
        goto out;
    }
    o = json_object_new_object();
    const char *fmt = "raw";
    uint64_t vsize = (uint64_t)st.st_size;
    const char *backing = NULL;
    struct json_object *info = have_qemu_img() ? image_info(path, e) : NULL;
    if (info) {
        fmt = info_str(info, "format") ? info_str(info, "format") : "unknown";
        struct json_object *v;
        if (json_object_object_get_ex(info, "virtual-size", &v))
            vsize = (uint64_t)json_object_get_int64(v);
        backing = info_str(info, "backing-filename");
    }
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "format", json_object_new_string(fmt));
    json_object_object_add(o, "virtual_size", json_object_new_int64((int64_t)vsize));
    json_object_object_add(o, "actual_size", json_object_new_int64((int64_t)st.st_blocks * 512));
    json_object_object_add(o, "backing", backing ? json_object_new_string(backing) : NULL);
    json_object_object_add(o, "used_by", used_by(d, path, false));
    json_object_put(info);
out:
    g_free(path);
    return o;
}

static void emit(struct hvd *d, const char *name, const char *op)
{
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(name));
    json_object_object_add(p, "op", json_object_new_string(op));
    server_emit(d, "disk.changed", p);
}

struct json_object *disk_list(struct hvd *d, struct api_error *e)
{
    GDir *dir = g_dir_open(d->images_dir, 0, NULL);
    struct json_object *list = json_object_new_array();
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while (dir && (n = g_dir_read_name(dir)))
        if (vmdef_name_ok(n))
            g_ptr_array_add(names, g_strdup(n));
    if (dir)
        g_dir_close(dir);
    g_ptr_array_sort(names, (GCompareFunc)g_ascii_strcasecmp);
    for (guint i = 0; i < names->len; i++) {
        struct api_error ignored;
        struct json_object *o = entry(d, g_ptr_array_index(names, i), &ignored);
        if (o)
            json_object_array_add(list, o);
    }
    g_ptr_array_free(names, TRUE);
    (void)e;
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "images", list);
    return r;
}

static int run_tool(const char *const *argv, const char *what, struct api_error *e)
{
    char *err = NULL;
    int rc = run_cmd(argv, NULL, &err);
    if (rc != 0)
        api_fail(e, rc < 0 ? "internal" : "bad-image", "%s failed: %s.", what,
                 err && *err ? err : "no message");
    free(err);
    return rc == 0 ? 0 : -1;
}

struct json_object *disk_create(struct hvd *d, struct json_object *params, struct api_error *e)
{
    const char *name = param_name(params, "name", e);
    if (!name)
        return NULL;
    const char *fmt = "raw";
    struct json_object *v;
    if (json_object_object_get_ex(params, "format", &v))
        fmt = json_object_get_string(v);
    bool has_backing = json_object_object_get_ex(params, "backing", &v);
    const char *backing = has_backing ? param_name(params, "backing", e) : NULL;
    if (has_backing && !backing)
        return NULL;
    if (strcmp(fmt, "raw") != 0 && strcmp(fmt, "qcow2") != 0) {
        api_fail(e, "bad-params", "Parameter 'format' must be raw or qcow2 (got '%.32s').", fmt);
        return NULL;
    }
    if (backing && strcmp(fmt, "qcow2") != 0) {
        api_fail(e, "bad-params", "A backing image needs format qcow2.");
        return NULL;
    }
    uint64_t size = 0;
    if ((!backing || json_object_object_get_ex(params, "size", &v)) &&
        param_size(params, &size, e) < 0)
        return NULL;
    char *path = image_path(d, name);
    struct json_object *r = NULL;
    if (access(path, F_OK) == 0) {
        api_fail(e, "exists", "An image named '%s' already exists.", name);
        goto out;
    }
    if (strcmp(fmt, "raw") == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
            api_fail(e, "internal", "Cannot create image '%s': %s.", name, strerror(errno));
            if (fd >= 0) {
                close(fd);
                unlink(path);
            }
            goto out;
        }
        close(fd);
    } else {
        char sz[32];
        snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
        char *bpath = backing ? image_path(d, backing) : NULL;
        if (bpath && disk_check_image(bpath, e) < 0) {
            g_free(bpath);
            goto out;
        }
        g_free(bpath);
        char *bfmt = NULL;
        if (backing) {
            char *bp = image_path(d, backing);
            struct json_object *info = image_info(bp, e);
            bfmt = g_strdup(info && info_str(info, "format") ? info_str(info, "format") : "raw");
            json_object_put(info);
            g_free(bp);
        }
        const char *argv[12] = {"qemu-img", "create", "-q", "-f", "qcow2"};
        int n = 5;
        if (backing) {
            argv[n++] = "-b";
            argv[n++] = backing; /* relative: resolved next to the overlay */
            argv[n++] = "-F";
            argv[n++] = bfmt;
        }
        argv[n++] = path;
        if (size)
            argv[n++] = sz;
        argv[n] = NULL;
        int rc = run_tool(argv, "qemu-img create", e);
        g_free(bfmt);
        if (rc < 0) {
            unlink(path);
            goto out;
        }
    }
    r = entry(d, name, e);
    emit(d, name, "created");
out:
    g_free(path);
    return r;
}

struct json_object *disk_resize(struct hvd *d, struct json_object *params, struct api_error *e)
{
    const char *name = param_name(params, "name", e);
    uint64_t size;
    if (!name || param_size(params, &size, e) < 0)
        return NULL;
    char *path = image_path(d, name);
    struct json_object *r = NULL, *cur = entry(d, name, e), *running = NULL;
    if (!cur)
        goto out;
    struct json_object *v;
    json_object_object_get_ex(cur, "virtual_size", &v);
    if (size < (uint64_t)json_object_get_int64(v)) {
        api_fail(e, "bad-params", "Image '%s' is %lld bytes; it can only grow.", name,
                 (long long)json_object_get_int64(v));
        goto out;
    }
    running = used_by(d, path, true);
    if (json_object_array_length(running) > 0) {
        api_fail(e, "in-use", "Image '%s' is used by the running VM '%s'.", name,
                 json_object_get_string(json_object_array_get_idx(running, 0)));
        goto out;
    }
    json_object_object_get_ex(cur, "format", &v);
    if (strcmp(json_object_get_string(v), "raw") == 0) {
        if (truncate(path, (off_t)size) < 0) {
            api_fail(e, "internal", "Cannot resize '%s': %s.", name, strerror(errno));
            goto out;
        }
    } else {
        char sz[32];
        snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
        const char *argv[] = {"qemu-img", "resize", "-q", path, sz, NULL};
        if (run_tool(argv, "qemu-img resize", e) < 0)
            goto out;
    }
    r = entry(d, name, e);
    emit(d, name, "resized");
out:
    json_object_put(cur);
    json_object_put(running);
    g_free(path);
    return r;
}

struct json_object *disk_clone(struct hvd *d, struct json_object *params, struct api_error *e)
{
    const char *src = param_name(params, "source", e);
    const char *name = src ? param_name(params, "name", e) : NULL;
    if (!name)
        return NULL;
    const char *mode = "copy";
    struct json_object *v;
    if (json_object_object_get_ex(params, "mode", &v))
        mode = json_object_get_string(v);
    if (strcmp(mode, "copy") != 0 && strcmp(mode, "overlay") != 0) {
        api_fail(e, "bad-params", "Parameter 'mode' must be copy or overlay (got '%.32s').", mode);
        return NULL;
    }
    if (strcmp(mode, "overlay") == 0) {
        struct json_object *p = json_object_new_object();
        json_object_object_add(p, "name", json_object_new_string(name));
        json_object_object_add(p, "format", json_object_new_string("qcow2"));
        json_object_object_add(p, "backing", json_object_new_string(src));
        struct json_object *r = disk_create(d, p, e);
        json_object_put(p);
        return r;
    }
    char *spath = image_path(d, src), *dpath = image_path(d, name);
    struct json_object *r = NULL;
    if (access(spath, F_OK) != 0) {
        api_fail(e, "not-found", "No image named '%s'.", src);
        goto out;
    }
    if (access(dpath, F_OK) == 0) {
        api_fail(e, "exists", "An image named '%s' already exists.", name);
        goto out;
    }
    if (disk_check_image(spath, e) < 0)
        goto out;
    if (have_qemu_img()) {
        struct json_object *info = image_info(spath, e);
        char *fmt = g_strdup(info ? info_str(info, "format") : "raw");
        json_object_put(info);
        const char *argv[] = {"qemu-img", "convert", "-U",  "-q",  "-f", fmt,
                              "-O",       fmt,       spath, dpath, NULL};
        int rc = run_tool(argv, "qemu-img convert", e);
        g_free(fmt);
        if (rc < 0) {
            unlink(dpath);
            goto out;
        }
    } else {
        const char *argv[] = {"cp", "--sparse=always", spath, dpath, NULL};
        if (run_tool(argv, "cp", e) < 0) {
            unlink(dpath);
            goto out;
        }
    }
    r = entry(d, name, e);
    emit(d, name, "created");
out:
    g_free(spath);
    g_free(dpath);
    return r;
}

struct json_object *disk_delete(struct hvd *d, struct json_object *params, struct api_error *e)
{
    const char *name = param_name(params, "name", e);
    if (!name)
        return NULL;
    char *path = image_path(d, name);
    struct json_object *r = NULL, *users = used_by(d, path, false);
    struct json_object *all = NULL;
    if (access(path, F_OK) != 0) {
        api_fail(e, "not-found", "No image named '%s'.", name);
        goto out;
    }
    if (json_object_array_length(users) > 0) {
        api_fail(e, "in-use", "Image '%s' is used by the VM '%s'; undefine it or change its disks.",
                 name, json_object_get_string(json_object_array_get_idx(users, 0)));
        goto out;
    }
    all = disk_list(d, e);
    struct json_object *images;
    json_object_object_get_ex(all, "images", &images);
    for (size_t i = 0; i < json_object_array_length(images); i++) {
        struct json_object *img = json_object_array_get_idx(images, i), *b, *n;
        json_object_object_get_ex(img, "name", &n);
        if (!json_object_object_get_ex(img, "backing", &b) || !b)
            continue;
        char *base = g_path_get_basename(json_object_get_string(b));
        bool same = strcmp(base, name) == 0;
        g_free(base);
        if (same) {
            api_fail(e, "in-use", "Image '%s' is the backing image of '%s'.", name,
                     json_object_get_string(n));
            goto out;
        }
    }
    if (unlink(path) < 0) {
        api_fail(e, "internal", "Cannot delete '%s': %s.", name, strerror(errno));
        goto out;
    }
    r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(name));
    emit(d, name, "deleted");
out:
    json_object_put(users);
    json_object_put(all);
    g_free(path);
    return r;
}
