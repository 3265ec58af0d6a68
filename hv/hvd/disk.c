/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk images in <state-dir>/images/: raw files, and qcow2 and VHD through
 * Debian's qemu-img (create, overlays on a golden image, check; qemu-img
 * calls VHD "vpc", and is told to take a VHD's size from its footer, as
 * Hyper-V and hv-vmm do, not from its geometry). A qcow2 image is
 * checked with `qemu-img check` before it is used, so a corrupt or truncated
 * one is refused with a clear error instead of being half-used. Copies and
 * qcow2 creation run as disk jobs (job.c) so that hvd never waits for them.
 * Each image's format is decided once (diskfmt.c) and qemu-img is always told
 * it (-f, -F): qemu-img never probes an image a guest can write.
 */
#include "hvd.h"
#include "job.h"

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

/* qemu-img info of an image of that format as JSON, or NULL with e set. */
static struct json_object *image_info(const char *path, const char *format, struct api_error *e)
{
    const char *argv[] = {"qemu-img", "info", "-U", "--output=json", "-f", format, path, NULL};
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

/* A VHD as qemu-img's --image-opts: its size from the footer (commas in the path doubled). */
static char *vhd_image_opts(const char *path)
{
    GString *s = g_string_new("driver=vpc,force_size_calc=current_size,file.filename=");
    for (const char *p = path; *p; p++) {
        if (*p == ',')
            g_string_append_c(s, ',');
        g_string_append_c(s, *p);
    }
    return g_string_free(s, FALSE);
}

static const char *info_str(struct json_object *info, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(info, key, &v) ? json_object_get_string(v) : NULL;
}

int disk_check_image(const char *path, const char *format, struct api_error *e)
{
    struct stat st;
    if (job_check_free(path, false, e) < 0)
        return -1;
    if (stat(path, &st) < 0)
        return api_fail(e, "bad-image", "Image '%s' does not exist.", path);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return api_fail(e, "bad-image", "Image '%s' is not a file or block device.", path);
    if (strcmp(format, VMDEF_FORMAT_QCOW2) != 0 || !have_qemu_img())
        return 0; /* a raw image has nothing to check */
    /* Synchronous: bounded by the image's metadata, not its data (docs/hvd.md). */
    const char *argv[] = {"qemu-img", "check", "-U", "-q", "-f", "qcow2", path, NULL};
    char *err = NULL;
    int rc = 0;
    if (run_cmd(argv, NULL, &err) != 0)
        rc = api_fail(e, "bad-image", "Image '%s' is corrupt or truncated (qemu-img check: %s).",
                      path, err && *err ? err : "errors found");
    free(err);
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
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next) {
        /* A saved VM holds its disks as a running one does: its RAM expects them. */
        if (running_only && !hvd_vm_is_active(vm) && vm->state != VM_SAVED)
            continue;
        for (char **entry = vm->def->disks; entry && *entry; entry++) {
            struct vmdef_disk disk;
            char *err = NULL;
            if (vmdef_disk_parse(*entry, d->images_dir, &disk, &err) < 0) {
                free(err);
                continue;
            }
            bool same = strcmp(disk.path, path) == 0;
            vmdef_disk_clear(&disk);
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
    /*
     * Not decided yet (put here by hand): "unknown", and its header is not
     * read; the first definition or disk.* method that needs it decides.
     */
    const char *fmt = diskfmt_known(d, path, NULL);
    uint64_t vsize = (uint64_t)st.st_size;
    const char *backing = NULL;
    bool qcow2 = fmt && strcmp(fmt, VMDEF_FORMAT_QCOW2) == 0;
    struct json_object *info = qcow2 && have_qemu_img() ? image_info(path, fmt, e) : NULL;
    if (info) {
        struct json_object *v;
        if (json_object_object_get_ex(info, "virtual-size", &v))
            vsize = (uint64_t)json_object_get_int64(v);
        backing = info_str(info, "backing-filename");
    }
    char *parent = NULL;
    if (fmt && strcmp(fmt, VMDEF_FORMAT_VHD) == 0) {
        if (vmdef_vhd_size(path, &vsize) < 0)
            vsize = 0; /* not a VHD (any more): hv-vmm refuses it with the reason */
        backing = parent = vmdef_vhd_parent(path);
    }
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "format", json_object_new_string(fmt ? fmt : "unknown"));
    json_object_object_add(o, "virtual_size", json_object_new_int64((int64_t)vsize));
    json_object_object_add(o, "actual_size", json_object_new_int64((int64_t)st.st_blocks * 512));
    json_object_object_add(o, "backing", backing ? json_object_new_string(backing) : NULL);
    json_object_object_add(o, "used_by", used_by(d, path, false));
    json_object_put(info);
    free(parent);
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
    job_sweep_stale(d->images_dir);
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

/* A disk job's last word: the new image's format recorded, its entry, and everyone is told. */
static struct json_object *created(struct hvd *d, const char *name, const char *format,
                                   struct api_error *e)
{
    diskfmt_record(d, name, format);
    struct json_object *r = entry(d, name, e);
    emit(d, name, "created");
    return r;
}

static struct json_object *created_raw(struct hvd *d, const char *name, struct api_error *e)
{
    return created(d, name, VMDEF_FORMAT_RAW, e);
}

static struct json_object *created_qcow2(struct hvd *d, const char *name, struct api_error *e)
{
    return created(d, name, VMDEF_FORMAT_QCOW2, e);
}

static struct json_object *created_vhd(struct hvd *d, const char *name, struct api_error *e)
{
    return created(d, name, VMDEF_FORMAT_VHD, e);
}

static job_done_fn created_as(const char *fmt)
{
    if (strcmp(fmt, VMDEF_FORMAT_QCOW2) == 0)
        return created_qcow2;
    return strcmp(fmt, VMDEF_FORMAT_VHD) == 0 ? created_vhd : created_raw;
}

/* A job step that refuses a corrupt qcow2 image (`name` at path) before it is used. */
static void add_check_step(struct job *j, const char *path, const char *name)
{
    const char *argv[] = {"qemu-img", "check", "-U", "-q", "-f", "qcow2", path, NULL};
    char *prefix = g_strdup_printf("Image '%s' is corrupt or truncated (qemu-img check: ", name);
    job_add_step(j, argv, false, "bad-image", prefix, ").");
    g_free(prefix);
}

static int create_raw(const char *path, const char *name, uint64_t size, struct api_error *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        api_fail(e, "internal", "Cannot create image '%s': %s.", name, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        return -1;
    }
    close(fd);
    return 0;
}

/* qemu-img create as a disk job: the reply is deferred. */
static int create_qcow2(struct hvd *d, struct client *c, const char *name, const char *path,
                        uint64_t size, const char *backing, struct api_error *e)
{
    char *bpath = backing ? image_path(d, backing) : NULL;
    const char *bfmt = NULL;
    int rc = -1;
    if (bpath && (job_check_free(bpath, true, e) < 0 || !(bfmt = diskfmt_of_image(d, backing, e))))
        goto out;
    if (bfmt && strcmp(bfmt, VMDEF_FORMAT_VHD) == 0) {
        api_fail(e, "bad-params",
                 "'%s' is a VHD: an overlay on it is a differencing VHD (format vhd), not a qcow2.",
                 backing);
        goto out;
    }
    struct job *j = job_new(d, "create", name, path, bpath);
    if (bfmt && strcmp(bfmt, VMDEF_FORMAT_QCOW2) == 0)
        add_check_step(j, bpath, backing);
    char sz[32];
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
    const char *argv[12] = {"qemu-img", "create", "-q", "-f", "qcow2"};
    int n = 5;
    if (backing) {
        argv[n++] = "-b";
        argv[n++] = backing; /* relative: resolved next to the overlay */
        argv[n++] = "-F";
        argv[n++] = bfmt;
    }
    argv[n++] = job_tmp_path(j);
    if (size)
        argv[n++] = sz;
    argv[n] = NULL;
    job_add_step(j, argv, false, "bad-image", "qemu-img create failed: ", ".");
    rc = job_start(j, c, created_qcow2, e);
out:
    g_free(bpath);
    return rc;
}

/*
 * A dynamic VHD of exactly size bytes (qemu-img; force_size: the footer says so, not the
 * geometry), or a differencing one over the VHD `backing` (hv-img: qemu-img cannot).
 */
static int create_vhd(struct hvd *d, struct client *c, const char *name, const char *path,
                      uint64_t size, const char *backing, struct api_error *e)
{
    if (!backing && (size % 512 || size > VMDEF_VHD_MAX_SIZE))
        return api_fail(e, "bad-params",
                        "A VHD's size is whole 512-byte sectors up to 2040 GiB (got %llu bytes).",
                        (unsigned long long)size);
    char *bpath = backing ? image_path(d, backing) : NULL;
    const char *bfmt = NULL;
    int rc = -1;
    if (bpath && (job_check_free(bpath, true, e) < 0 || !(bfmt = diskfmt_of_image(d, backing, e))))
        goto out;
    if (bfmt && strcmp(bfmt, VMDEF_FORMAT_VHD) != 0) {
        api_fail(e, "bad-params",
                 "A differencing VHD needs a VHD parent; '%s' is %s (an overlay on it is a qcow2).",
                 backing, bfmt);
        goto out;
    }
    struct job *j = job_new(d, "create", name, path, bpath);
    char sz[32];
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
    if (bpath) {
        const char *argv[] = {d->img_path, "create", "--parent", bpath, job_tmp_path(j), NULL};
        job_add_step(j, argv, false, "bad-image", "hv-img create failed: ", ".");
    } else {
        const char *argv[] = {
            "qemu-img",      "create", "-q", "-f", "vpc", "-o", "subformat=dynamic,force_size=on",
            job_tmp_path(j), sz,       NULL};
        job_add_step(j, argv, false, "bad-image", "qemu-img create failed: ", ".");
    }
    rc = job_start(j, c, created_vhd, e);
out:
    g_free(bpath);
    return rc;
}

struct json_object *disk_create(struct hvd *d, struct client *c, struct json_object *params,
                                struct api_error *e)
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
    if (!vmdef_format_name(fmt)) {
        api_fail(e, "bad-params", "Parameter 'format' must be raw, qcow2 or vhd (got '%.32s').",
                 fmt);
        return NULL;
    }
    if (backing && strcmp(fmt, VMDEF_FORMAT_QCOW2) != 0 && strcmp(fmt, VMDEF_FORMAT_VHD) != 0) {
        api_fail(e, "bad-params", "A backing image needs format qcow2 or vhd.");
        return NULL;
    }
    if (backing && strcmp(fmt, VMDEF_FORMAT_VHD) == 0 &&
        json_object_object_get_ex(params, "size", &v)) {
        api_fail(e, "bad-params", "A differencing VHD has its parent's size: give no size.");
        return NULL;
    }
    uint64_t size = 0;
    if ((!backing || json_object_object_get_ex(params, "size", &v)) &&
        param_size(params, &size, e) < 0)
        return NULL;
    char *path = image_path(d, name);
    struct json_object *r = NULL;
    if (job_check_free(path, false, e) < 0)
        goto out;
    if (access(path, F_OK) == 0) {
        api_fail(e, "exists", "An image named '%s' already exists.", name);
        goto out;
    }
    if (strcmp(fmt, "raw") == 0) {
        if (create_raw(path, name, size, e) == 0)
            r = created_raw(d, name, e);
    } else if (strcmp(fmt, VMDEF_FORMAT_VHD) == 0) {
        create_vhd(d, c, name, path, size, backing, e);
    } else {
        create_qcow2(d, c, name, path, size, backing, e);
    }
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
    struct json_object *r = NULL, *cur = NULL, *running = NULL;
    if (job_check_free(path, false, e) < 0 || !(cur = entry(d, name, e)))
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
        const char *who = json_object_get_string(json_object_array_get_idx(running, 0));
        struct hvd_vm *user = hvd_find_vm(d, who);
        api_fail(e, "in-use", "Image '%s' is used by the %s VM '%s'.", name,
                 user && user->state == VM_SAVED ? "saved" : "running", who);
        goto out;
    }
    const char *fmt = diskfmt_of_image(d, name, e);
    if (!fmt)
        goto out;
    if (strcmp(fmt, VMDEF_FORMAT_VHD) == 0) {
        api_fail(e, "bad-params", "Image '%s' is a VHD: hvd cannot grow a VHD yet.", name);
        goto out;
    }
    if (strcmp(fmt, VMDEF_FORMAT_RAW) == 0) {
        if (truncate(path, (off_t)size) < 0) {
            api_fail(e, "internal", "Cannot resize '%s': %s.", name, strerror(errno));
            goto out;
        }
    } else {
        /* Synchronous: growing a qcow2 only rewrites its tables (docs/hvd.md). */
        char sz[32];
        snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
        const char *argv[] = {"qemu-img", "resize", "-q", "-f", fmt, path, sz, NULL};
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

/* disk.clone in copy mode: qemu-img convert -p into a temporary file, as a disk job. */
static void clone_copy(struct hvd *d, struct client *c, const char *src, const char *name,
                       struct api_error *e)
{
    char *spath = image_path(d, src), *dpath = image_path(d, name);
    const char *fmt;
    if (job_check_free(dpath, false, e) < 0 || job_check_free(spath, true, e) < 0)
        goto out;
    if (access(spath, F_OK) != 0) {
        api_fail(e, "not-found", "No image named '%s'.", src);
        goto out;
    }
    if (access(dpath, F_OK) == 0) {
        api_fail(e, "exists", "An image named '%s' already exists.", name);
        goto out;
    }
    if (!(fmt = diskfmt_of_image(d, src, e)))
        goto out;
    struct job *j = job_new(d, "clone", name, dpath, spath);
    char *prefix =
        g_strdup_printf("Cannot copy '%s' (%s: ", src, have_qemu_img() ? "qemu-img convert" : "cp");
    if (have_qemu_img()) {
        if (strcmp(fmt, VMDEF_FORMAT_QCOW2) == 0)
            add_check_step(j, spath, src);
        if (strcmp(fmt, VMDEF_FORMAT_VHD) == 0) {
            char *opts = vhd_image_opts(spath);
            const char *argv[] = {"qemu-img",
                                  "convert",
                                  "-U",
                                  "-p",
                                  "--image-opts",
                                  opts,
                                  "-O",
                                  "vpc",
                                  "-o",
                                  "subformat=dynamic,force_size=on",
                                  job_tmp_path(j),
                                  NULL};
            job_add_step(j, argv, true, "bad-image", prefix, ").");
            g_free(opts);
        } else {
            const char *argv[] = {"qemu-img", "convert",       "-U", "-p", "-f", fmt, "-O", fmt,
                                  spath,      job_tmp_path(j), NULL};
            job_add_step(j, argv, true, "bad-image", prefix, ").");
        }
    } else {
        const char *argv[] = {"cp", "--sparse=always", spath, job_tmp_path(j), NULL};
        job_add_step(j, argv, false, "internal", prefix, ").");
    }
    g_free(prefix);
    /* The copy has its source's format. */
    job_start(j, c, created_as(fmt), e);
out:
    g_free(spath);
    g_free(dpath);
}

struct json_object *disk_clone(struct hvd *d, struct client *c, struct json_object *params,
                               struct api_error *e)
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
        /* An overlay on a VHD is a differencing VHD; on anything else a qcow2. */
        char *spath = image_path(d, src);
        const char *known = diskfmt_known(d, spath, NULL);
        g_free(spath);
        bool vhd = known && strcmp(known, VMDEF_FORMAT_VHD) == 0;
        json_object_object_add(p, "format", json_object_new_string(vhd ? "vhd" : "qcow2"));
        json_object_object_add(p, "backing", json_object_new_string(src));
        struct json_object *r = disk_create(d, c, p, e);
        json_object_put(p);
        return r;
    }
    clone_copy(d, c, src, name, e);
    return NULL; /* deferred, or e says why not */
}

struct json_object *disk_delete(struct hvd *d, struct json_object *params, struct api_error *e)
{
    const char *name = param_name(params, "name", e);
    if (!name)
        return NULL;
    char *path = image_path(d, name);
    struct json_object *r = NULL, *users = used_by(d, path, false);
    struct json_object *all = NULL;
    if (job_check_free(path, false, e) < 0)
        goto out;
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
    diskfmt_record(d, name, NULL);
    r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(name));
    emit(d, name, "deleted");
out:
    json_object_put(users);
    json_object_put(all);
    g_free(path);
    return r;
}

struct json_object *disk_jobs(struct hvd *d, struct json_object *params, struct api_error *e)
{
    (void)d;
    (void)params;
    (void)e;
    return job_list();
}

struct json_object *disk_cancel(struct hvd *d, struct json_object *params, struct api_error *e)
{
    (void)d;
    const char *name = param_name(params, "name", e);
    if (!name || job_cancel(name, e) < 0)
        return NULL;
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "name", json_object_new_string(name));
    return r;
}
