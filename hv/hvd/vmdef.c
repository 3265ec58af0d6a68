/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vmdef.h"

#include "pt.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const known_keys[] = {
    "name", "memory",    "cpus",       "kernel",   "initrd", "cmdline",      "disk",    "net",
    "mac",  "vsock",     "colour",     "os",       "role",   "autostart",    "display", "slot",
    "pci",  "pci_slots", "instant_on", "firmware", "gpu",    "page_sharing",
};

#define DEFAULT_MEMORY (512ULL << 20)
#define DEFAULT_COLOUR "#808080"

static char *errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *out = strdup(s);
    g_free(s);
    return out;
}

void vmdef_free(struct vmdef *def)
{
    if (!def)
        return;
    free(def->name);
    free(def->kernel);
    free(def->firmware);
    free(def->gpu);
    free(def->initrd);
    free(def->cmdline);
    if (def->disks)
        for (char **d = def->disks; *d; d++)
            free(*d);
    free(def->disks);
    if (def->pci)
        for (char **p = def->pci; *p; p++)
            free(*p);
    free(def->pci);
    if (def->pci_slots)
        for (char **p = def->pci_slots; *p; p++)
            free(*p);
    free(def->pci_slots);
    free(def->net);
    free(def->mac);
    free(def->colour);
    free(def->os);
    free(def->role);
    free(def);
}

bool vmdef_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > VMDEF_NAME_MAX || !g_ascii_isalnum(name[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(name[i]) && !strchr("._-", name[i]))
            return false;
    return true;
}

const char *vmdef_format_name(const char *s)
{
    if (s && strcmp(s, VMDEF_FORMAT_RAW) == 0)
        return VMDEF_FORMAT_RAW;
    if (s && strcmp(s, VMDEF_FORMAT_QCOW2) == 0)
        return VMDEF_FORMAT_QCOW2;
    if (s && strcmp(s, VMDEF_FORMAT_VHD) == 0)
        return VMDEF_FORMAT_VHD;
    return NULL;
}

void vmdef_disk_clear(struct vmdef_disk *disk)
{
    free(disk->path);
    *disk = (struct vmdef_disk){0};
}

/* One option of an entry into out; seen[] refuses the second ro/rw, format= or nonpersistent. */
static char *disk_option(const char *entry, const char *opt, bool seen[3], struct vmdef_disk *out)
{
    bool is_format = strncmp(opt, "format=", 7) == 0;
    bool is_np = strcmp(opt, "nonpersistent") == 0;
    if (strcmp(opt, "ro") != 0 && strcmp(opt, "rw") != 0 && !is_format && !is_np)
        return errorf("field 'disk': unknown option '%s' in '%s' (the options are ro, rw, "
                      "nonpersistent and format=raw|qcow2|vhd)",
                      opt, entry);
    int kind = is_np ? 2 : is_format;
    static const char *const names[] = {"ro/rw", "format=", "nonpersistent"};
    if (seen[kind])
        return errorf("field 'disk': %s given twice in '%s'", names[kind], entry);
    seen[kind] = true;
    if (is_np) {
        out->nonpersistent = true;
        return NULL;
    }
    if (!is_format) {
        out->readonly = strcmp(opt, "ro") == 0;
        return NULL;
    }
    out->format = vmdef_format_name(opt + 7);
    if (!out->format)
        return errorf("field 'disk': format must be raw, qcow2 or vhd (got '%s' in '%s')", opt + 7,
                      entry);
    return NULL;
}

int vmdef_disk_parse(const char *entry, const char *images_dir, struct vmdef_disk *out, char **err)
{
    char **parts = g_strsplit(entry, ",", -1);
    bool seen[3] = {false, false, false}; /* ro/rw, format=, nonpersistent */
    char *e = NULL;

    *out = (struct vmdef_disk){0};
    for (char **opt = parts + 1; *opt && !e; opt++)
        e = disk_option(entry, *opt, seen, out);
    if (!e && out->nonpersistent && out->readonly)
        e = errorf("field 'disk': ro and nonpersistent in '%s' (a read-only disk keeps nothing "
                   "anyway: give one)",
                   entry);
    if (!e && (!parts[0] || !*parts[0]))
        e = errorf("field 'disk': '%s' names no file", entry);
    if (e) {
        g_strfreev(parts);
        *err = e;
        return -1;
    }
    if (parts[0][0] != '/' && images_dir)
        out->path = errorf("%s/%s", images_dir, parts[0]);
    else
        out->path = strdup(parts[0]);
    g_strfreev(parts);
    return 0;
}

char *vmdef_disk_text(const struct vmdef_disk *disk)
{
    return errorf("%s%s%s%s%s", disk->path, disk->readonly ? ",ro" : "",
                  disk->nonpersistent ? ",nonpersistent" : "", disk->format ? ",format=" : "",
                  disk->format ? disk->format : "");
}

/*
 * The qcow2 magic, or a VHD footer's cookie (a dynamic or differencing VHD
 * starts with a copy of its footer; a fixed one has it only at its end and
 * probes as raw: only its format= says otherwise), else raw.
 */
int vmdef_probe_format(const char *path, const char **format, char **err)
{
    static const unsigned char qcow2_magic[4] = {'Q', 'F', 'I', 0xfb};
    unsigned char head[8];
    /* O_NONBLOCK: a FIFO named as a disk must not hang the caller. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        *err = errorf("image '%s' cannot be read: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = pread(fd, head, sizeof(head), 0);
    int saved = errno;
    close(fd);
    if (n < 0) {
        *err = errorf("image '%s' cannot be read: %s", path, strerror(saved));
        return -1;
    }
    if (n >= 4 && memcmp(head, qcow2_magic, 4) == 0)
        *format = VMDEF_FORMAT_QCOW2;
    else if (n == 8 && memcmp(head, VHD_COOKIE, 8) == 0)
        *format = VMDEF_FORMAT_VHD;
    else
        *format = VMDEF_FORMAT_RAW;
    return 0;
}

int vmdef_vhd_size(const char *path, uint64_t *size)
{
    unsigned char foot[56];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 512 &&
              pread(fd, foot, sizeof(foot), st.st_size - 512) == (ssize_t)sizeof(foot) &&
              memcmp(foot, VHD_COOKIE, 8) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok)
        return -1;
    *size = 0;
    for (int i = 48; i < 56; i++) /* current size, big-endian */
        *size = *size << 8 | foot[i];
    return 0;
}

static uint64_t be_field(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

char *vmdef_vhd_parent(const char *path)
{
    unsigned char foot[512], dyn[1024];
    char *name = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 512 &&
        pread(fd, foot, sizeof(foot), st.st_size - 512) == (ssize_t)sizeof(foot) &&
        memcmp(foot, VHD_COOKIE, 8) == 0 && be_field(foot + 60, 4) == 4 /* differencing */ &&
        be_field(foot + 16, 8) <= (uint64_t)st.st_size - sizeof(dyn) &&
        pread(fd, dyn, sizeof(dyn), (off_t)be_field(foot + 16, 8)) == (ssize_t)sizeof(dyn) &&
        memcmp(dyn, "cxsparse", 8) == 0) {
        char text[257];
        size_t n = 0;
        for (; n < 256 && be_field(dyn + 64 + 2 * n, 2); n++) {
            uint64_t c = be_field(dyn + 64 + 2 * n, 2);
            if (c < 0x20 || c > 0x7e)
                break;
            text[n] = (char)c;
        }
        text[n] = '\0';
        const char *base = strrchr(text, '\\') ? strrchr(text, '\\') + 1 : text;
        if (n && (n == 256 || !be_field(dyn + 64 + 2 * n, 2)) && *base)
            name = strdup(base);
    }
    close(fd);
    return name;
}

static bool is_known_key(const char *key)
{
    for (size_t i = 0; i < ARRAY_SIZE(known_keys); i++)
        if (strcmp(known_keys[i], key) == 0)
            return true;
    return false;
}

static char *check_file(const char *field, const char *path, const struct vmdef_ctx *ctx)
{
    if (path[0] == '\0')
        return errorf("field '%s': must not be empty", field);
    if (!ctx->check_files)
        return NULL;
    if (access(path, R_OK) != 0)
        return errorf("field '%s': file '%s' does not exist or cannot be read", field, path);
    return NULL;
}

static char *check_choice(const char *field, const char *value, const char *const *choices)
{
    GString *list = g_string_new(NULL);
    for (const char *const *c = choices; *c; c++) {
        if (strcmp(*c, value) == 0) {
            g_string_free(list, TRUE);
            return NULL;
        }
        g_string_append_printf(list, "%s%s", list->len ? ", " : "", *c);
    }
    char *err = errorf("field '%s': must be one of %s (got '%s')", field, list->str, value);
    g_string_free(list, TRUE);
    return err;
}

static bool mac_ok(const char *s)
{
    if (strlen(s) != 17)
        return false;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2 ? s[i] != ':' : !g_ascii_isxdigit(s[i]))
            return false;
    }
    unsigned first = (unsigned)g_ascii_xdigit_value(s[1]);
    return (first & 1) == 0; /* unicast */
}

static bool colour_ok(const char *s)
{
    if (strlen(s) != 7 || s[0] != '#')
        return false;
    for (int i = 1; i < 7; i++)
        if (!g_ascii_isxdigit(s[i]))
            return false;
    return true;
}

/* Reads one string key; NULL when absent. */
static char *get_str(GKeyFile *kf, const char *key)
{
    if (!g_key_file_has_key(kf, "vm", key, NULL))
        return NULL;
    char *g = g_key_file_get_string(kf, "vm", key, NULL);
    if (!g)
        return strdup("");
    g_strstrip(g);
    char *s = strdup(g);
    g_free(g);
    return s;
}

/* One parsed disk entry: a name stays in the image store; files are checked when asked. */
static char *check_disk(const char *entry, const char *written, const struct vmdef_disk *disk,
                        const struct vmdef_ctx *ctx)
{
    const char *base = strrchr(disk->path, '/') ? strrchr(disk->path, '/') + 1 : disk->path;
    const char *fmt;
    char *err = NULL;
    if (!*base)
        return errorf("field 'disk': '%s' names no file", entry);
    if (written[0] != '/' && (strstr(written, "..") || strchr(written, '/')))
        return errorf("field 'disk': '%s' must be an absolute path or an image name", entry);
    if (!ctx->check_files || (written[0] != '/' && !ctx->images_dir))
        return NULL;
    if (access(disk->path, R_OK) != 0)
        return errorf("field 'disk': image '%s' does not exist", disk->path);
    /* format=raw is the user's word even on a qcow2 header; format=qcow2 (vhd) must be one. */
    if (disk->format && strcmp(disk->format, VMDEF_FORMAT_QCOW2) == 0) {
        if (vmdef_probe_format(disk->path, &fmt, &err) < 0) {
            char *e = errorf("field 'disk': %s", err);
            free(err);
            return e;
        }
        if (strcmp(fmt, VMDEF_FORMAT_QCOW2) != 0)
            return errorf("field 'disk': '%s' is not a qcow2 image (it does not start with the "
                          "qcow2 magic); give format=raw, or leave format= out",
                          disk->path);
    }
    uint64_t vsize;
    if (disk->format && strcmp(disk->format, VMDEF_FORMAT_VHD) == 0 &&
        vmdef_vhd_size(disk->path, &vsize) < 0)
        return errorf("field 'disk': '%s' is not a VHD image (no VHD footer at its end); give "
                      "format=raw, or leave format= out",
                      disk->path);
    return NULL;
}

static char *validate_disks(struct vmdef *def, GKeyFile *kf, const struct vmdef_ctx *ctx)
{
    gsize n = 0;
    char **list = g_key_file_get_string_list(kf, "vm", "disk", &n, NULL);
    char *err = NULL;

    def->disks = calloc(n + 1, sizeof(char *));
    if (n > VMDEF_MAX_DISKS) {
        err = errorf("field 'disk': at most %d disks (got %zu)", VMDEF_MAX_DISKS, (size_t)n);
        goto out;
    }
    size_t used = 0;
    for (gsize i = 0; i < n; i++) {
        char *entry = g_strstrip(list[i]);
        if (!*entry)
            continue;
        struct vmdef_disk disk, written;
        if (vmdef_disk_parse(entry, ctx->images_dir, &disk, &err) < 0)
            goto out;
        vmdef_disk_parse(entry, NULL, &written, &err); /* same entry: cannot fail now */
        err = check_disk(entry, written.path, &disk, ctx);
        if (!err)
            def->disks[used++] = vmdef_disk_text(&written);
        vmdef_disk_clear(&disk);
        vmdef_disk_clear(&written);
        if (err)
            goto out;
    }
out:
    g_strfreev(list);
    return err;
}

/* pci=BDF;BDF: host PCI functions, kept in the kernel's form (0000:00:02.0). */
static char *validate_pci(struct vmdef *def, GKeyFile *kf)
{
    gsize n = 0;
    char **list = g_key_file_get_string_list(kf, "vm", "pci", &n, NULL);
    char *err = NULL;

    if (!list)
        return NULL;
    if (n > VMDEF_MAX_PCI) {
        err = errorf("field 'pci': at most %d devices (got %zu)", VMDEF_MAX_PCI, (size_t)n);
        goto out;
    }
    def->pci = calloc(n + 1, sizeof(char *));
    size_t used = 0;
    for (gsize i = 0; i < n; i++) {
        char *entry = g_strstrip(list[i]), bdf[PT_BDF_LEN];
        if (!*entry)
            continue;
        if (pt_parse_bdf(entry, bdf) < 0) {
            err = errorf("field 'pci': '%s' is not a PCI address: write it as 0000:00:02.0 "
                         "(hv-pci list shows them)",
                         entry);
            goto out;
        }
        for (size_t j = 0; j < used; j++)
            if (strcmp(def->pci[j], bdf) == 0) {
                err = errorf("field 'pci': %s is listed twice", bdf);
                goto out;
            }
        def->pci[used++] = strdup(bdf);
    }
out:
    g_strfreev(list);
    return err;
}

/* pci_slots: "DEVICE=SLOT" entries, each device and each slot once. */
static char *validate_pci_slots(struct vmdef *def, GKeyFile *kf)
{
    gsize n = 0;
    char **list = g_key_file_get_string_list(kf, "vm", "pci_slots", &n, NULL);
    char *err = NULL;
    bool used[VMDEF_PCI_SLOTS + 1] = {false};

    if (!list)
        return NULL;
    if (n > VMDEF_PCI_SLOTS) {
        err = errorf("field 'pci_slots': at most %d devices (got %zu)", VMDEF_PCI_SLOTS, (size_t)n);
        goto out;
    }
    def->pci_slots = calloc(n + 1, sizeof(char *));
    size_t nr = 0;
    for (gsize i = 0; i < n; i++) {
        char *entry = g_strstrip(list[i]), *eq = strrchr(entry, '=');
        uint64_t slot;
        if (!*entry)
            continue;
        if (!eq || eq == entry || strlen(entry) > 4096 ||
            parse_uint(eq + 1, 1, VMDEF_PCI_SLOTS, &slot) < 0) {
            err = errorf("field 'pci_slots': '%s' is not DEVICE=SLOT with a slot from 1 to %d",
                         entry, VMDEF_PCI_SLOTS);
            goto out;
        }
        size_t klen = (size_t)(eq - entry);
        for (size_t j = 0; j < nr; j++)
            if (strncmp(def->pci_slots[j], entry, klen + 1) == 0) {
                err = errorf("field 'pci_slots': %.*s is listed twice", (int)klen, entry);
                goto out;
            }
        if (used[slot]) {
            err = errorf("field 'pci_slots': slot %u is given twice", (unsigned)slot);
            goto out;
        }
        used[slot] = true;
        def->pci_slots[nr++] = strdup(entry);
    }
out:
    g_strfreev(list);
    return err;
}

/* A yes/no field: NULL (and *out untouched when absent), or the error. */
static char *get_bool(GKeyFile *kf, const char *key, bool *out)
{
    char *s = get_str(kf, key);
    char *err = NULL;
    if (!s)
        return NULL;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "1") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "0") == 0)
        *out = false;
    else
        err = errorf("field '%s': expected true or false (got '%s')", key, s);
    free(s);
    return err;
}

static struct vmdef *validate(GKeyFile *kf, const struct vmdef_ctx *ctx, char **errp)
{
    static const char *const nets[] = {"none", "nat", NULL};
    static const char *const oses[] = {"linux", "windows", "other", NULL};
    static const char *const roles[] = {"normal", "uivm", NULL};
    static const char *const firmwares[] = {"bios", NULL};
    static const char *const gpus[] = {"virtio", "bochs", NULL};
    struct vmdef *def = calloc(1, sizeof(*def));
    char *err = NULL;
    char *s = NULL;
    const char *why;
    uint64_t v;

    gsize ngroups;
    char **groups = g_key_file_get_groups(kf, &ngroups);
    for (gsize i = 0; i < ngroups && !err; i++)
        if (strcmp(groups[i], "vm") != 0)
            err = errorf("unknown section [%s] (only [vm])", groups[i]);
    g_strfreev(groups);
    if (err)
        goto fail;
    if (!g_key_file_has_group(kf, "vm")) {
        err = errorf("the [vm] section is missing");
        goto fail;
    }
    char **keys = g_key_file_get_keys(kf, "vm", NULL, NULL);
    for (char **k = keys; k && *k && !err; k++)
        if (!is_known_key(*k))
            err = errorf("unknown field '%s' in [vm]", *k);
    g_strfreev(keys);
    if (err)
        goto fail;

    def->name = get_str(kf, "name");
    if (!def->name) {
        err = errorf("field 'name': missing (every VM needs a name)");
        goto fail;
    }
    if (!vmdef_name_ok(def->name)) {
        err = errorf("field 'name': '%s' is not a valid name (1 to 64 of A-Z a-z 0-9 . _ -, "
                     "starting with a letter or digit)",
                     def->name);
        goto fail;
    }

    def->memory = DEFAULT_MEMORY;
    if ((s = get_str(kf, "memory"))) {
        if (parse_size(s, &v, &why) < 0) {
            err = errorf("field 'memory': %s (got '%s')", why, s);
            goto fail;
        }
        if (v < 1024 * 1024 && strspn(s, "0123456789") == strlen(s))
            v <<= 20; /* a bare small number means MiB, as in xl */
        if (v < VMDEF_MIN_MEMORY || v > VMDEF_MAX_MEMORY) {
            err = errorf("field 'memory': must be between 16M and 1T (got '%s')", s);
            goto fail;
        }
        def->memory = v;
        free(s);
        s = NULL;
    }

    def->cpus = 1;
    if ((s = get_str(kf, "cpus"))) {
        if (parse_uint(s, 1, VMDEF_MAX_CPUS, &v) < 0) {
            err = errorf("field 'cpus': must be a whole number from 1 to %d (got '%s')",
                         VMDEF_MAX_CPUS, s);
            goto fail;
        }
        def->cpus = (unsigned)v;
        free(s);
        s = NULL;
    }

    def->firmware = get_str(kf, "firmware");
    if (def->firmware && (err = check_choice("firmware", def->firmware, firmwares)))
        goto fail;
    def->kernel = get_str(kf, "kernel");
    if (!def->kernel && !def->firmware) {
        err = errorf("field 'kernel': missing (the guest kernel to boot; or firmware=bios to boot "
                     "from the VM's disks)");
        goto fail;
    }
    if (def->kernel && def->firmware) {
        err = errorf("field 'firmware': a VM boots its kernel= or its firmware, not both; remove "
                     "one");
        goto fail;
    }
    if (def->kernel && (err = check_file("kernel", def->kernel, ctx)))
        goto fail;
    def->initrd = get_str(kf, "initrd");
    if (def->firmware && (def->initrd || g_key_file_has_key(kf, "vm", "cmdline", NULL))) {
        err = errorf("field '%s': only with kernel= (firmware=%s boots from the disks)",
                     def->initrd ? "initrd" : "cmdline", def->firmware);
        goto fail;
    }
    if (def->initrd && (err = check_file("initrd", def->initrd, ctx)))
        goto fail;
    def->cmdline = get_str(kf, "cmdline");
    if (def->cmdline && strlen(def->cmdline) > 2048) {
        err = errorf("field 'cmdline': longer than 2048 characters");
        goto fail;
    }

    if ((err = validate_disks(def, kf, ctx)) || (err = validate_pci(def, kf)) ||
        (err = validate_pci_slots(def, kf)))
        goto fail;

    def->net = get_str(kf, "net");
    if (!def->net)
        def->net = strdup("none");
    if ((err = check_choice("net", def->net, nets)))
        goto fail;
    def->mac = get_str(kf, "mac");
    if (def->mac && !mac_ok(def->mac)) {
        err = errorf("field 'mac': expected a unicast MAC like 52:54:00:12:34:56 (got '%s')",
                     def->mac);
        goto fail;
    }
    if ((s = get_str(kf, "vsock"))) {
        if (parse_uint(s, 3, 0xfffffffeU, &v) < 0) {
            err = errorf("field 'vsock': a guest CID must be a number from 3 to 4294967294 "
                         "(got '%s')",
                         s);
            goto fail;
        }
        def->vsock = (uint32_t)v;
        free(s);
        s = NULL;
    }
    def->colour = get_str(kf, "colour");
    if (!def->colour)
        def->colour = strdup(DEFAULT_COLOUR);
    if (!colour_ok(def->colour)) {
        err = errorf("field 'colour': expected #rrggbb (got '%s')", def->colour);
        goto fail;
    }
    def->os = get_str(kf, "os");
    if (!def->os)
        def->os = strdup("linux");
    if ((err = check_choice("os", def->os, oses)))
        goto fail;
    def->gpu = get_str(kf, "gpu");
    if (!def->gpu) /* Windows has no virtio-gpu driver at install; Bochs VBE it drives */
        def->gpu = strdup(strcmp(def->os, "windows") == 0 ? "bochs" : "virtio");
    if ((err = check_choice("gpu", def->gpu, gpus)))
        goto fail;
    def->role = get_str(kf, "role");
    if (!def->role)
        def->role = strdup("normal");
    if ((err = check_choice("role", def->role, roles)))
        goto fail;
    if ((err = get_bool(kf, "autostart", &def->autostart)))
        goto fail;
    if ((err = get_bool(kf, "instant_on", &def->instant_on)))
        goto fail;
    def->display = true;
    if ((err = get_bool(kf, "display", &def->display)))
        goto fail;
    def->page_sharing = true;
    if ((err = get_bool(kf, "page_sharing", &def->page_sharing)))
        goto fail;
    if ((s = get_str(kf, "slot"))) {
        if (parse_uint(s, 1, 9, &v) < 0) {
            err =
                errorf("field 'slot': the hotkey Ctrl+Alt+N is a number from 1 to 9 (got '%s')", s);
            goto fail;
        }
        if (strcmp(def->role, "uivm") == 0) {
            err = errorf("field 'slot': the UIVM always has Ctrl+Alt+0; remove the slot");
            goto fail;
        }
        def->slot = (unsigned)v;
        free(s);
        s = NULL;
    }
    return def;

fail:
    free(s);
    vmdef_free(def);
    *errp = err;
    return NULL;
}

struct vmdef *vmdef_from_text(const char *text, size_t len, const struct vmdef_ctx *ctx, char **err)
{
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;

    if (memchr(text, '\0', len)) {
        *err = errorf("the definition contains a NUL byte");
        g_key_file_free(kf);
        return NULL;
    }
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &gerr)) {
        *err = errorf("the definition is not a valid INI file: %s", gerr->message);
        g_error_free(gerr);
        g_key_file_free(kf);
        return NULL;
    }
    struct vmdef *def = validate(kf, ctx, err);
    g_key_file_free(kf);
    return def;
}

struct vmdef *vmdef_from_json(struct json_object *obj, const struct vmdef_ctx *ctx, char **err)
{
    if (!json_object_is_type(obj, json_type_object)) {
        *err = errorf("the definition must be a JSON object");
        return NULL;
    }
    GKeyFile *kf = g_key_file_new();
    g_key_file_set_string(kf, "vm", "name", ""); /* creates the group */
    g_key_file_remove_key(kf, "vm", "name", NULL);
    json_object_object_foreach(obj, key, val)
    {
        /* Before GKeyFile sees it: a key it cannot hold ("", "a=b") is a GLib critical. */
        if (!is_known_key(key)) {
            *err = errorf("unknown field '%s' in [vm]", key);
            g_key_file_free(kf);
            return NULL;
        }
        switch (json_object_get_type(val)) {
        case json_type_string:
            g_key_file_set_string(kf, "vm", key, json_object_get_string(val));
            break;
        case json_type_int:
        case json_type_double:
        case json_type_boolean:
            g_key_file_set_value(kf, "vm", key, json_object_get_string(val));
            break;
        case json_type_array: {
            size_t n = json_object_array_length(val);
            const char **items = calloc(n + 1, sizeof(char *));
            for (size_t i = 0; i < n; i++)
                items[i] = json_object_get_string(json_object_array_get_idx(val, i));
            g_key_file_set_string_list(kf, "vm", key, items, n);
            free(items);
            break;
        }
        case json_type_null:
            break;
        default:
            *err = errorf("field '%s': has the wrong JSON type", key);
            g_key_file_free(kf);
            return NULL;
        }
    }
    struct vmdef *def = validate(kf, ctx, err);
    g_key_file_free(kf);
    return def;
}

static char *size_text(uint64_t bytes)
{
    if (bytes % GiB == 0)
        return errorf("%lluG", (unsigned long long)(bytes / GiB));
    if (bytes % MiB == 0)
        return errorf("%lluM", (unsigned long long)(bytes / MiB));
    return errorf("%llu", (unsigned long long)bytes);
}

char *vmdef_to_text(const struct vmdef *def)
{
    GKeyFile *kf = g_key_file_new();
    char *mem = size_text(def->memory);

    g_key_file_set_string(kf, "vm", "name", def->name);
    g_key_file_set_string(kf, "vm", "memory", mem);
    g_key_file_set_integer(kf, "vm", "cpus", (int)def->cpus);
    if (def->kernel)
        g_key_file_set_string(kf, "vm", "kernel", def->kernel);
    if (def->firmware)
        g_key_file_set_string(kf, "vm", "firmware", def->firmware);
    if (def->initrd)
        g_key_file_set_string(kf, "vm", "initrd", def->initrd);
    if (def->cmdline)
        g_key_file_set_string(kf, "vm", "cmdline", def->cmdline);
    size_t nd = 0;
    while (def->disks && def->disks[nd])
        nd++;
    if (nd)
        g_key_file_set_string_list(kf, "vm", "disk", (const char *const *)def->disks, nd);
    size_t np = 0;
    while (def->pci && def->pci[np])
        np++;
    if (np)
        g_key_file_set_string_list(kf, "vm", "pci", (const char *const *)def->pci, np);
    size_t ns = 0;
    while (def->pci_slots && def->pci_slots[ns])
        ns++;
    if (ns)
        g_key_file_set_string_list(kf, "vm", "pci_slots", (const char *const *)def->pci_slots, ns);
    g_key_file_set_string(kf, "vm", "net", def->net);
    if (def->mac)
        g_key_file_set_string(kf, "vm", "mac", def->mac);
    if (def->vsock)
        g_key_file_set_uint64(kf, "vm", "vsock", def->vsock);
    g_key_file_set_string(kf, "vm", "colour", def->colour);
    g_key_file_set_string(kf, "vm", "os", def->os);
    g_key_file_set_string(kf, "vm", "gpu", def->gpu);
    g_key_file_set_string(kf, "vm", "role", def->role);
    if (!def->display)
        g_key_file_set_boolean(kf, "vm", "display", false);
    if (def->slot)
        g_key_file_set_uint64(kf, "vm", "slot", def->slot);
    g_key_file_set_boolean(kf, "vm", "autostart", def->autostart);
    if (def->instant_on)
        g_key_file_set_boolean(kf, "vm", "instant_on", true);
    if (!def->page_sharing)
        g_key_file_set_boolean(kf, "vm", "page_sharing", false);
    free(mem);

    char *g = g_key_file_to_data(kf, NULL, NULL);
    char *out = strdup(g);
    g_free(g);
    g_key_file_free(kf);
    return out;
}

struct json_object *vmdef_to_json(const struct vmdef *def)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(def->name));
    json_object_object_add(o, "memory", json_object_new_int64((int64_t)def->memory));
    json_object_object_add(o, "cpus", json_object_new_int((int)def->cpus));
    if (def->kernel)
        json_object_object_add(o, "kernel", json_object_new_string(def->kernel));
    if (def->firmware)
        json_object_object_add(o, "firmware", json_object_new_string(def->firmware));
    if (def->initrd)
        json_object_object_add(o, "initrd", json_object_new_string(def->initrd));
    if (def->cmdline)
        json_object_object_add(o, "cmdline", json_object_new_string(def->cmdline));
    struct json_object *disks = json_object_new_array();
    for (char **d = def->disks; d && *d; d++)
        json_object_array_add(disks, json_object_new_string(*d));
    json_object_object_add(o, "disk", disks);
    if (def->pci && def->pci[0]) {
        struct json_object *pci = json_object_new_array();
        for (char **p = def->pci; *p; p++)
            json_object_array_add(pci, json_object_new_string(*p));
        json_object_object_add(o, "pci", pci);
    }
    if (def->pci_slots && def->pci_slots[0]) {
        struct json_object *slots = json_object_new_array();
        for (char **p = def->pci_slots; *p; p++)
            json_object_array_add(slots, json_object_new_string(*p));
        json_object_object_add(o, "pci_slots", slots);
    }
    json_object_object_add(o, "net", json_object_new_string(def->net));
    if (def->mac)
        json_object_object_add(o, "mac", json_object_new_string(def->mac));
    if (def->vsock)
        json_object_object_add(o, "vsock", json_object_new_int64(def->vsock));
    json_object_object_add(o, "colour", json_object_new_string(def->colour));
    json_object_object_add(o, "os", json_object_new_string(def->os));
    json_object_object_add(o, "gpu", json_object_new_string(def->gpu));
    json_object_object_add(o, "role", json_object_new_string(def->role));
    json_object_object_add(o, "display", json_object_new_boolean(def->display));
    if (def->slot)
        json_object_object_add(o, "slot", json_object_new_int64(def->slot));
    json_object_object_add(o, "autostart", json_object_new_boolean(def->autostart));
    json_object_object_add(o, "instant_on", json_object_new_boolean(def->instant_on));
    json_object_object_add(o, "page_sharing", json_object_new_boolean(def->page_sharing));
    return o;
}

void vmdef_mac(const struct vmdef *def, char out[18])
{
    if (def->mac) {
        snprintf(out, 18, "%s", def->mac);
        return;
    }
    /* FNV-1a of the name: stable across restarts and hosts. */
    uint32_t h = 2166136261u;
    for (const char *p = def->name; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 16777619u;
    }
    snprintf(out, 18, "52:54:%02x:%02x:%02x:%02x", (h >> 24) & 0xff, (h >> 16) & 0xff,
             (h >> 8) & 0xff, h & 0xff);
}
