/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hvctl: the command line on hvd's API (docs/hvctl.1, docs/hvd-api.md).
 * Exit codes: 0 ok, 1 hvd answered with an error (or a definition is invalid),
 * 2 usage, 3 cannot connect to hvd.
 */
#include "jsonproto.h"
#include "util.h"
#include "vmdef.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_HVD = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static const char *socket_path = "/run/hv/hvd.sock";
static bool json_out;
static int sock = -1;
static struct jp_reader reader;
static int next_id = 1;
/* While a disk job runs: the image whose disk.progress events are shown, and how. */
static const char *progress_name;
static char progress_label[200];
static bool progress_shown;

static _Noreturn void usage(void)
{
    fputs("Usage: hvctl [--socket PATH] [--json] COMMAND [ARGS]\n"
          "  list | info NAME | show NAME | console NAME [--bytes N]\n"
          "  define FILE [--replace] | undefine NAME | validate FILE [--state-dir DIR]\n"
          "  start NAME | shutdown NAME | destroy NAME | pause NAME | resume NAME\n"
          "  save NAME | restore NAME | discard NAME | memory NAME [SIZE]\n"
          "  disk list | disk create NAME SIZE [--format raw|qcow2|vhd] [--backing IMAGE]\n"
          "  disk resize NAME SIZE | disk clone SOURCE NAME [--overlay] | disk delete NAME\n"
          "  disk jobs | disk cancel NAME\n"
          "  net list | host | host suspend [--shutdown] | host resume | events\n"
          "  switch NAME | screenshot NAME FILE [--max WxH]\n"
          "  usb list | usb attach BUSID VM | usb detach BUSID\n"
          "  usb rules | usb rules add TARGET [--id VID:PID] [--class N] [--port BUSID]\n"
          "  usb rules remove INDEX | usb rules clear\n"
          "Exit: 0 ok, 1 error from hvd, 2 usage, 3 cannot connect. See hvctl(1).\n",
          stderr);
    exit(EXIT_USAGE);
}

static void print_json(struct json_object *o)
{
    puts(json_object_to_json_string_ext(o,
                                        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void connect_hvd(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "hvctl: socket path too long\n");
        exit(EXIT_USAGE);
    }
    strcpy(sa.sun_path, socket_path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "hvctl: cannot connect to hvd at %s: %s\n", socket_path, strerror(errno));
        exit(EXIT_CONNECT);
    }
    jp_reader_init(&reader, JP_MAX_MESSAGE);
}

/* A disk.progress event for progress_name: one line on the terminal, rewritten in place. */
static void show_progress(struct json_object *msg)
{
    struct json_object *ev, *params, *name, *fraction;
    if (!json_object_object_get_ex(msg, "event", &ev) ||
        strcmp(json_object_get_string(ev), "disk.progress") != 0 ||
        !json_object_object_get_ex(msg, "params", &params) ||
        !json_object_object_get_ex(params, "name", &name) ||
        strcmp(json_object_get_string(name), progress_name) != 0 ||
        !json_object_object_get_ex(params, "fraction", &fraction) || !fraction)
        return;
    double f = json_object_get_double(fraction);
    if (!(f >= 0 && f <= 1))
        return;
    fprintf(stderr, "\r%s: %3d%%", progress_label, (int)(f * 100));
    fflush(stderr);
    progress_shown = true;
}

/* Reads until the reply to id; events are skipped. Exits on transport errors. */
static struct json_object *read_reply(int id, int timeout_ms)
{
    for (;;) {
        struct json_object *msg;
        const char *why = "";
        int rc = jp_recv(sock, &reader, timeout_ms, &msg, &why);
        if (rc <= 0) {
            fprintf(stderr, "%shvctl: lost hvd: %s\n", progress_shown ? "\n" : "",
                    rc == 0 ? "it closed the connection" : why);
            exit(EXIT_CONNECT);
        }
        struct json_object *jid;
        if (json_object_object_get_ex(msg, "id", &jid) && json_object_get_int(jid) == id) {
            if (progress_shown)
                fputc('\n', stderr);
            progress_shown = false;
            return msg;
        }
        if (progress_name)
            show_progress(msg);
        json_object_put(msg);
    }
}

/* Calls method; returns the reply's result (owned by *reply) or exits 1 on an error. */
static struct json_object *call(const char *method, struct json_object *params,
                                struct json_object **reply)
{
    if (sock < 0)
        connect_hvd();
    int id = next_id++;
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "id", json_object_new_int(id));
    json_object_object_add(req, "method", json_object_new_string(method));
    json_object_object_add(req, "params", params ? params : json_object_new_object());
    if (jp_send(sock, req) < 0) {
        fprintf(stderr, "hvctl: cannot send to hvd: %s\n", strerror(errno));
        exit(EXIT_CONNECT);
    }
    json_object_put(req);
    /* disk jobs, saves and restores take as long as they take: hvd answers when they end */
    bool long_call = strncmp(method, "disk.", 5) == 0 || strcmp(method, "vm.save") == 0 ||
                     strcmp(method, "vm.start") == 0 || strcmp(method, "host.suspend") == 0;
    *reply = read_reply(id, long_call ? -1 : 120000);
    struct json_object *err, *result;
    if (json_object_object_get_ex(*reply, "error", &err)) {
        if (json_out) {
            print_json(*reply);
        } else {
            struct json_object *m, *c;
            json_object_object_get_ex(err, "message", &m);
            json_object_object_get_ex(err, "code", &c);
            fprintf(stderr, "hvctl: %s (%s)\n", json_object_get_string(m),
                    json_object_get_string(c));
        }
        exit(EXIT_HVD);
    }
    json_object_object_get_ex(*reply, "result", &result);
    return result;
}

static const char *str(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return "-";
    return json_object_get_string(v);
}

static int64_t num(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void human_size(uint64_t b, char *out, size_t n)
{
    if (b >= GiB && b % (GiB / 10) == 0)
        snprintf(out, n, "%.1fG", (double)b / GiB);
    else if (b >= GiB)
        snprintf(out, n, "%.2fG", (double)b / GiB);
    else
        snprintf(out, n, "%lluM", (unsigned long long)(b / MiB));
}

static struct json_object *name_params(const char *name)
{
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(name));
    return p;
}

static int simple(const char *method, const char *name)
{
    struct json_object *reply;
    struct json_object *r = call(method, name ? name_params(name) : NULL, &reply);
    if (json_out)
        print_json(r);
    else if (name)
        printf("%s: %s\n", name, str(r, "state"));
    json_object_put(reply);
    return EXIT_OK;
}

static int cmd_list(void)
{
    struct json_object *reply, *vms;
    struct json_object *r = call("vm.list", NULL, &reply);
    if (json_out) {
        print_json(r);
    } else {
        json_object_object_get_ex(r, "vms", &vms);
        printf("%-20s %-14s %8s %4s %8s  %s\n", "NAME", "STATE", "MEMORY", "CPUS", "PID",
               "LAST EXIT");
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
            struct json_object *vm = json_object_array_get_idx(vms, i), *le;
            char mem[32];
            human_size((uint64_t)num(vm, "memory"), mem, sizeof(mem));
            json_object_object_get_ex(vm, "last_exit", &le);
            printf("%-20s %-14s %8s %4lld %8s  %s\n", str(vm, "name"), str(vm, "state"), mem,
                   (long long)num(vm, "cpus"), str(vm, "pid"), le ? str(le, "reason") : "-");
        }
    }
    json_object_put(reply);
    return EXIT_OK;
}

static char *read_file(const char *path, size_t *len)
{
    char *text = NULL;
    gsize n;
    GError *err = NULL;
    if (!g_file_get_contents(path, &text, &n, &err)) {
        fprintf(stderr, "hvctl: %s\n", err->message);
        g_error_free(err);
        exit(EXIT_USAGE);
    }
    *len = n;
    return text;
}

static int cmd_define(int argc, char **argv)
{
    if (argc < 1 || argc > 2 || (argc == 2 && strcmp(argv[1], "--replace") != 0))
        usage();
    size_t len;
    char *text = read_file(argv[0], &len);
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "text", json_object_new_string_len(text, (int)len));
    json_object_object_add(p, "replace", json_object_new_boolean(argc == 2));
    g_free(text);
    struct json_object *reply;
    struct json_object *r = call("vm.define", p, &reply);
    if (json_out)
        print_json(r);
    else
        printf("defined %s\n", str(r, "name"));
    json_object_put(reply);
    return EXIT_OK;
}

/* Each disk and its format: given, or decided by hvd when the VM is defined. */
static void print_disk_formats(const struct vmdef *def, const char *images)
{
    for (char **entry = def->disks; entry && *entry; entry++) {
        struct vmdef_disk disk;
        char *err = NULL;
        if (vmdef_disk_parse(*entry, images, &disk, &err) < 0) {
            free(err);
            continue;
        }
        if (disk.format)
            printf("  disk %s%s: format=%s\n", disk.path, disk.readonly ? " (read-only)" : "",
                   disk.format);
        else
            printf("  disk %s%s: format not given; hvd decides it when the VM is defined\n",
                   disk.path, disk.readonly ? " (read-only)" : "");
        vmdef_disk_clear(&disk);
    }
}

static int cmd_validate(int argc, char **argv)
{
    const char *state = "/var/lib/hv";
    if (argc == 3 && strcmp(argv[1], "--state-dir") == 0)
        state = argv[2];
    else if (argc != 1)
        usage();
    size_t len;
    char *text = read_file(argv[0], &len);
    char *images = g_strdup_printf("%s/images", state);
    struct vmdef_ctx ctx = {.images_dir = images, .check_files = true};
    char *err = NULL;
    struct vmdef *def = vmdef_from_text(text, len, &ctx, &err);
    int rc = def ? EXIT_OK : EXIT_HVD;
    if (json_out) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "valid", json_object_new_boolean(def != NULL));
        if (def)
            json_object_object_add(o, "definition", vmdef_to_json(def));
        else
            json_object_object_add(o, "error", json_object_new_string(err));
        print_json(o);
        json_object_put(o);
    } else if (def) {
        printf("%s: valid (VM '%s')\n", argv[0], def->name);
        print_disk_formats(def, images);
    } else {
        fprintf(stderr, "%s: %s\n", argv[0], err);
    }
    vmdef_free(def);
    free(err);
    g_free(images);
    g_free(text);
    return rc;
}

static int cmd_show(const char *name)
{
    struct json_object *reply;
    struct json_object *r = call("vm.get", name_params(name), &reply);
    if (json_out)
        print_json(r);
    else
        fputs(str(r, "text"), stdout);
    json_object_put(reply);
    return EXIT_OK;
}

static int cmd_info(const char *name)
{
    struct json_object *reply;
    struct json_object *r = call("vm.info", name_params(name), &reply);
    if (json_out) {
        print_json(r);
    } else {
        json_object_object_foreach(r, key, val)
        {
            printf("%-15s %s\n", key,
                   val ? (json_object_is_type(val, json_type_string)
                              ? json_object_get_string(val)
                              : json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN))
                       : "-");
        }
    }
    json_object_put(reply);
    return EXIT_OK;
}

static int cmd_console(int argc, char **argv)
{
    if (argc != 1 && !(argc == 3 && strcmp(argv[1], "--bytes") == 0))
        usage();
    struct json_object *p = name_params(argv[0]);
    if (argc == 3)
        json_object_object_add(p, "bytes", json_object_new_int64(atoll(argv[2])));
    struct json_object *reply;
    struct json_object *r = call("vm.console", p, &reply);
    if (json_out)
        print_json(r);
    else
        fputs(str(r, "data"), stdout);
    json_object_put(reply);
    return EXIT_OK;
}

static void print_image(struct json_object *img)
{
    char vs[32], as[32];
    human_size((uint64_t)num(img, "virtual_size"), vs, sizeof(vs));
    human_size((uint64_t)num(img, "actual_size"), as, sizeof(as));
    struct json_object *u;
    json_object_object_get_ex(img, "used_by", &u);
    printf("%-24s %-7s %9s %9s %-16s %s\n", str(img, "name"), str(img, "format"), vs, as,
           str(img, "backing"),
           u ? json_object_to_json_string_ext(u, JSON_C_TO_STRING_PLAIN) : "[]");
}

static int cmd_disk(int argc, char **argv)
{
    if (argc < 1)
        usage();
    const char *sub = argv[0];
    struct json_object *p = json_object_new_object(), *reply, *r;
    const char *method;
    if (strcmp(sub, "list") == 0 && argc == 1) {
        method = "disk.list";
    } else if (strcmp(sub, "create") == 0 && argc >= 3) {
        method = "disk.create";
        json_object_object_add(p, "name", json_object_new_string(argv[1]));
        json_object_object_add(p, "size", json_object_new_string(argv[2]));
        for (int i = 3; i < argc; i++) {
            if (i + 1 < argc && strcmp(argv[i], "--format") == 0)
                json_object_object_add(p, "format", json_object_new_string(argv[++i]));
            else if (i + 1 < argc && strcmp(argv[i], "--backing") == 0)
                json_object_object_add(p, "backing", json_object_new_string(argv[++i]));
            else
                usage();
        }
    } else if (strcmp(sub, "resize") == 0 && argc == 3) {
        method = "disk.resize";
        json_object_object_add(p, "name", json_object_new_string(argv[1]));
        json_object_object_add(p, "size", json_object_new_string(argv[2]));
    } else if (strcmp(sub, "clone") == 0 && (argc == 3 || argc == 4)) {
        method = "disk.clone";
        if (argc == 4 && strcmp(argv[3], "--overlay") != 0)
            usage();
        json_object_object_add(p, "source", json_object_new_string(argv[1]));
        json_object_object_add(p, "name", json_object_new_string(argv[2]));
        json_object_object_add(p, "mode", json_object_new_string(argc == 4 ? "overlay" : "copy"));
    } else if (strcmp(sub, "delete") == 0 && argc == 2) {
        method = "disk.delete";
        json_object_object_add(p, "name", json_object_new_string(argv[1]));
    } else if (strcmp(sub, "jobs") == 0 && argc == 1) {
        method = "disk.jobs";
    } else if (strcmp(sub, "cancel") == 0 && argc == 2) {
        method = "disk.cancel";
        json_object_object_add(p, "name", json_object_new_string(argv[1]));
    } else {
        usage();
    }
    bool job = strcmp(method, "disk.create") == 0 || strcmp(method, "disk.clone") == 0;
    if (job && !json_out && isatty(STDERR_FILENO)) {
        struct json_object *sub_reply;
        call("events.subscribe", NULL, &sub_reply);
        json_object_put(sub_reply);
        progress_name = argv[strcmp(sub, "clone") == 0 ? 2 : 1];
        if (strcmp(sub, "clone") == 0)
            snprintf(progress_label, sizeof(progress_label), "copying %s to %s", argv[1], argv[2]);
        else
            snprintf(progress_label, sizeof(progress_label), "creating %s", argv[1]);
    }
    r = call(method, p, &reply);
    if (json_out) {
        print_json(r);
    } else if (strcmp(method, "disk.list") == 0) {
        struct json_object *imgs;
        json_object_object_get_ex(r, "images", &imgs);
        printf("%-24s %-7s %9s %9s %-16s %s\n", "NAME", "FORMAT", "SIZE", "ON DISK", "BACKING",
               "USED BY");
        for (size_t i = 0; i < json_object_array_length(imgs); i++)
            print_image(json_object_array_get_idx(imgs, i));
    } else if (strcmp(method, "disk.delete") == 0) {
        printf("deleted %s\n", str(r, "name"));
    } else if (strcmp(method, "disk.cancel") == 0) {
        printf("cancelling the job making %s\n", str(r, "name"));
    } else if (strcmp(method, "disk.jobs") == 0) {
        struct json_object *jobs;
        json_object_object_get_ex(r, "jobs", &jobs);
        printf("%-24s %-8s %-24s %s\n", "NAME", "OP", "SOURCE", "DONE");
        for (size_t i = 0; i < json_object_array_length(jobs); i++) {
            struct json_object *j = json_object_array_get_idx(jobs, i), *f;
            char done[16] = "-";
            if (json_object_object_get_ex(j, "fraction", &f) && f)
                snprintf(done, sizeof(done), "%d%%", (int)(json_object_get_double(f) * 100));
            printf("%-24s %-8s %-24s %s\n", str(j, "name"), str(j, "op"), str(j, "source"), done);
        }
    } else {
        print_image(r);
    }
    json_object_put(reply);
    return EXIT_OK;
}

static int cmd_net(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "list") != 0)
        usage();
    struct json_object *reply, *nets;
    struct json_object *r = call("net.list", NULL, &reply);
    if (json_out) {
        print_json(r);
    } else {
        json_object_object_get_ex(r, "networks", &nets);
        printf("%-8s %-8s %-16s %-8s %s\n", "NAME", "BRIDGE", "SUBNET", "ACTIVE", "VMS");
        for (size_t i = 0; i < json_object_array_length(nets); i++) {
            struct json_object *n = json_object_array_get_idx(nets, i), *vms;
            json_object_object_get_ex(n, "vms", &vms);
            printf("%-8s %-8s %-16s %-8s %s\n", str(n, "name"), str(n, "bridge"), str(n, "subnet"),
                   str(n, "active"), json_object_to_json_string_ext(vms, JSON_C_TO_STRING_PLAIN));
        }
    }
    json_object_put(reply);
    return EXIT_OK;
}

static void print_usb_rules(struct json_object *r)
{
    struct json_object *rules;
    json_object_object_get_ex(r, "rules", &rules);
    printf("%-5s %-11s %-5s %-10s %s\n", "INDEX", "ID", "CLASS", "PORT", "TARGET");
    for (size_t i = 0; i < json_object_array_length(rules); i++) {
        struct json_object *o = json_object_array_get_idx(rules, i), *cls;
        char c[8] = "*";
        if (json_object_object_get_ex(o, "class", &cls))
            snprintf(c, sizeof(c), "%d", json_object_get_int(cls));
        const char *id = str(o, "id"), *port = str(o, "port");
        printf("%-5zu %-11s %-5s %-10s %s\n", i, strcmp(id, "-") ? id : "*:*", c,
               strcmp(port, "-") ? port : "*", str(o, "target"));
    }
}

/* usb rules add|remove|clear: read the rules, change them, set them all. */
static int cmd_usb_rules(int argc, char **argv)
{
    struct json_object *reply, *r, *rules;
    if (argc == 0) {
        r = call("usb.rules", NULL, &reply);
        if (json_out)
            print_json(r);
        else
            print_usb_rules(r);
        json_object_put(reply);
        return EXIT_OK;
    }
    const char *sub = argv[0];
    struct json_object *set = json_object_new_array();
    if (strcmp(sub, "clear") == 0 && argc == 1) {
        /* nothing to keep */
    } else if ((strcmp(sub, "add") == 0 && argc >= 2) ||
               (strcmp(sub, "remove") == 0 && argc == 2)) {
        long skip = -1;
        if (sub[0] == 'r') {
            char *end;
            skip = strtol(argv[1], &end, 10);
            if (*end || skip < 0)
                usage();
        }
        r = call("usb.rules", NULL, &reply);
        json_object_object_get_ex(r, "rules", &rules);
        size_t n = rules ? json_object_array_length(rules) : 0;
        if (skip >= (long)n) {
            fprintf(stderr, "hvctl: no rule %ld (see hvctl usb rules)\n", skip);
            json_object_put(reply);
            json_object_put(set);
            return EXIT_HVD;
        }
        for (size_t i = 0; i < n; i++)
            if ((long)i != skip)
                json_object_array_add(set, json_object_get(json_object_array_get_idx(rules, i)));
        json_object_put(reply);
        if (sub[0] == 'a') {
            struct json_object *rule = json_object_new_object();
            json_object_object_add(rule, "target", json_object_new_string(argv[1]));
            for (int i = 2; i < argc; i++) {
                if (i + 1 < argc && strcmp(argv[i], "--id") == 0)
                    json_object_object_add(rule, "id", json_object_new_string(argv[++i]));
                else if (i + 1 < argc && strcmp(argv[i], "--port") == 0)
                    json_object_object_add(rule, "port", json_object_new_string(argv[++i]));
                else if (i + 1 < argc && strcmp(argv[i], "--class") == 0)
                    json_object_object_add(rule, "class",
                                           json_object_new_int((int)strtol(argv[++i], NULL, 0)));
                else
                    usage();
            }
            json_object_array_add(set, rule);
        }
    } else {
        json_object_put(set);
        usage();
    }
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "set", set);
    r = call("usb.rules", p, &reply);
    if (json_out)
        print_json(r);
    else
        print_usb_rules(r);
    json_object_put(reply);
    return EXIT_OK;
}

static int cmd_usb(int argc, char **argv)
{
    if (argc < 1)
        usage();
    const char *sub = argv[0];
    struct json_object *p = json_object_new_object(), *reply, *r;
    if (strcmp(sub, "rules") == 0) {
        json_object_put(p);
        return cmd_usb_rules(argc - 1, argv + 1);
    }
    if (strcmp(sub, "list") == 0 && argc == 1) {
        json_object_put(p);
        r = call("usb.list", NULL, &reply);
        if (json_out) {
            print_json(r);
        } else {
            struct json_object *devs;
            json_object_object_get_ex(r, "devices", &devs);
            printf("%-10s %-9s %-6s %-12s %s\n", "BUSID", "ID", "SPEED", "VM", "NAME");
            for (size_t i = 0; devs && i < json_object_array_length(devs); i++) {
                struct json_object *dv = json_object_array_get_idx(devs, i);
                const char *owner = str(dv, "owner");
                printf("%-10s %-9s %-6s %-12s %s %s\n", str(dv, "busid"), str(dv, "id"),
                       str(dv, "speed"), strcmp(owner, "-") ? owner : "(host)", str(dv, "vendor"),
                       str(dv, "product"));
            }
        }
        json_object_put(reply);
        return EXIT_OK;
    }
    if (strcmp(sub, "attach") == 0 && argc == 3) {
        json_object_object_add(p, "busid", json_object_new_string(argv[1]));
        json_object_object_add(p, "vm", json_object_new_string(argv[2]));
        r = call("usb.attach", p, &reply);
    } else if (strcmp(sub, "detach") == 0 && argc == 2) {
        json_object_object_add(p, "busid", json_object_new_string(argv[1]));
        r = call("usb.detach", p, &reply);
    } else {
        json_object_put(p);
        usage();
    }
    if (json_out)
        print_json(r);
    else if (sub[0] == 'a')
        printf("%s: attached to %s\n", str(r, "busid"), str(r, "vm"));
    else
        printf("%s: back on the host\n", str(r, "busid"));
    json_object_put(reply);
    return EXIT_OK;
}

static int cmd_events(void)
{
    struct json_object *reply;
    call("events.subscribe", NULL, &reply);
    json_object_put(reply);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        struct json_object *msg;
        const char *why = "";
        int rc = jp_recv(sock, &reader, -1, &msg, &why);
        if (rc <= 0) {
            fprintf(stderr, "hvctl: lost hvd: %s\n", rc == 0 ? "it closed the connection" : why);
            return EXIT_CONNECT;
        }
        struct json_object *ev, *params;
        if (json_object_object_get_ex(msg, "event", &ev)) {
            if (json_out) {
                puts(json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN));
            } else {
                json_object_object_get_ex(msg, "params", &params);
                printf("%s %s\n", json_object_get_string(ev),
                       json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN));
            }
        }
        json_object_put(msg);
    }
}

/* memory NAME [SIZE]: ask a running guest to keep SIZE of its memory (its balloon); show it. */
static int cmd_memory(int argc, char **argv)
{
    if (argc != 1 && argc != 2)
        usage();
    struct json_object *reply, *p = name_params(argv[0]);
    if (argc == 2)
        json_object_object_add(p, "size", json_object_new_string(argv[1]));
    struct json_object *r = call("vm.memory", p, &reply);
    if (json_out) {
        print_json(r);
    } else {
        char mem[32], target[32], actual[32];
        human_size((uint64_t)num(r, "memory"), mem, sizeof(mem));
        human_size((uint64_t)num(r, "target"), target, sizeof(target));
        human_size((uint64_t)num(r, "actual"), actual, sizeof(actual));
        struct json_object *drv;
        bool driver =
            json_object_object_get_ex(r, "balloon_driver", &drv) && json_object_get_boolean(drv);
        printf("%s: memory %s, target %s, actual %s%s\n", argv[0], mem, target, actual,
               !driver ? " (the guest runs no balloon driver: it cannot give memory back)"
               : num(r, "target") != num(r, "actual") ? " (the guest is on its way)"
                                                      : "");
    }
    json_object_put(reply);
    return EXIT_OK;
}

/* save NAME: the VM into hvd's save file, then stopped (state saved). */
static int cmd_save(const char *name)
{
    struct json_object *reply;
    struct json_object *r = call("vm.save", name_params(name), &reply);
    if (json_out)
        print_json(r);
    else
        printf("%s: %s (%.1f MiB in %lld ms)\n", name, str(r, "state"),
               (double)num(r, "bytes") / MiB, (long long)num(r, "ms"));
    json_object_put(reply);
    return EXIT_OK;
}

/* restore NAME: start a saved VM, which continues where it was saved. */
static int cmd_restore(const char *name)
{
    struct json_object *reply;
    struct json_object *info = call("vm.info", name_params(name), &reply);
    if (strcmp(str(info, "state"), "saved") != 0) {
        fprintf(stderr,
                "hvctl: VM '%s' is %s, not saved: there is nothing to restore (use start)\n", name,
                str(info, "state"));
        json_object_put(reply);
        return EXIT_HVD;
    }
    json_object_put(reply);
    struct json_object *r = call("vm.start", name_params(name), &reply);
    if (json_out)
        print_json(r);
    else
        printf("%s: %s (restored)\n", name, str(r, "state"));
    json_object_put(reply);
    return EXIT_OK;
}

static void print_names(const char *label, struct json_object *r, const char *key)
{
    struct json_object *a;
    if (!json_object_object_get_ex(r, key, &a) || !json_object_is_type(a, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        struct json_object *x = json_object_array_get_idx(a, i);
        if (json_object_is_type(x, json_type_string))
            printf("%s: %s\n", json_object_get_string(x), label);
        else
            printf("%s: %s: %s\n", str(x, "name"), label, str(x, "error"));
    }
}

/* host suspend [--shutdown] | host resume: every running VM saved, and restored after. */
static int cmd_host(int argc, char **argv)
{
    struct json_object *reply, *r, *p = json_object_new_object();
    if (argc >= 1 && strcmp(argv[0], "suspend") == 0 &&
        (argc == 1 || (argc == 2 && strcmp(argv[1], "--shutdown") == 0))) {
        json_object_object_add(p, "reason",
                               json_object_new_string(argc == 2 ? "shutdown" : "sleep"));
        r = call("host.suspend", p, &reply);
        if (!json_out) {
            print_names("saved", r, "saved");
            print_names("not saved", r, "failed");
        }
    } else if (argc == 1 && strcmp(argv[0], "resume") == 0) {
        json_object_put(p);
        r = call("host.resume", NULL, &reply);
        if (!json_out) {
            print_names("restoring", r, "restoring");
            print_names("not restored", r, "failed");
        }
    } else {
        json_object_put(p);
        usage();
    }
    if (json_out)
        print_json(r);
    json_object_put(reply);
    return EXIT_OK;
}

/* Shows the VM on the screen (hv-switch). */
static int cmd_switch(const char *name)
{
    struct json_object *reply;
    struct json_object *r = call("vm.switch", name_params(name), &reply);
    if (json_out)
        print_json(r);
    else
        printf("%s: on the screen (Ctrl+Alt+%s)\n", name, str(r, "slot"));
    json_object_put(reply);
    return EXIT_OK;
}

/* screenshot NAME FILE [--max WxH]: the VM's screen as a PNG file. */
static int cmd_screenshot(int argc, char **argv)
{
    unsigned w = 0, h = 0;
    if (argc == 4 && strcmp(argv[2], "--max") == 0) {
        if (sscanf(argv[3], "%ux%u", &w, &h) != 2 || !w || !h) {
            fprintf(stderr, "hvctl: --max %s: want WxH, e.g. 640x400\n", argv[3]);
            return EXIT_USAGE;
        }
    } else if (argc != 2) {
        usage();
    }
    struct json_object *reply, *p = name_params(argv[0]);
    if (w) {
        json_object_object_add(p, "max_width", json_object_new_int64(w));
        json_object_object_add(p, "max_height", json_object_new_int64(h));
    }
    struct json_object *r = call("vm.screenshot", p, &reply);
    gsize len = 0;
    guchar *png = g_base64_decode(str(r, "data"), &len);
    FILE *f = fopen(argv[1], "wbe");
    bool ok = f && fwrite(png, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    g_free(png);
    if (!ok) {
        fprintf(stderr, "hvctl: cannot write %s: %s\n", argv[1], strerror(errno));
        json_object_put(reply);
        return EXIT_HVD;
    }
    if (json_out) {
        json_object_object_del(r, "data");
        print_json(r);
    } else {
        printf("%s: %sx%s %s, %zu bytes\n", argv[1], str(r, "width"), str(r, "height"),
               str(r, "format"), (size_t)len);
    }
    json_object_put(reply);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json_out = true;
        else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            socket_path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            usage();
        else
            usage();
    }
    if (i >= argc)
        usage();
    const char *cmd = argv[i];
    int nargs = argc - i - 1;
    char **args = argv + i + 1;
    static const char *const by_name[][2] = {
        {"start", "vm.start"},     {"shutdown", "vm.shutdown"}, {"destroy", "vm.destroy"},
        {"pause", "vm.pause"},     {"resume", "vm.resume"},     {"undefine", "vm.undefine"},
        {"discard", "vm.discard"},
    };
    for (size_t k = 0; k < ARRAY_SIZE(by_name); k++) {
        if (strcmp(cmd, by_name[k][0]) == 0) {
            if (nargs != 1)
                usage();
            return simple(by_name[k][1], args[0]);
        }
    }
    if (strcmp(cmd, "save") == 0 && nargs == 1)
        return cmd_save(args[0]);
    if (strcmp(cmd, "memory") == 0)
        return cmd_memory(nargs, args);
    if (strcmp(cmd, "restore") == 0 && nargs == 1)
        return cmd_restore(args[0]);
    if (strcmp(cmd, "host") == 0 && nargs > 0)
        return cmd_host(nargs, args);
    if (strcmp(cmd, "list") == 0 && nargs == 0)
        return cmd_list();
    if (strcmp(cmd, "define") == 0)
        return cmd_define(nargs, args);
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(nargs, args);
    if (strcmp(cmd, "show") == 0 && nargs == 1)
        return cmd_show(args[0]);
    if (strcmp(cmd, "info") == 0 && nargs == 1)
        return cmd_info(args[0]);
    if (strcmp(cmd, "console") == 0)
        return cmd_console(nargs, args);
    if (strcmp(cmd, "disk") == 0)
        return cmd_disk(nargs, args);
    if (strcmp(cmd, "net") == 0)
        return cmd_net(nargs, args);
    if (strcmp(cmd, "events") == 0 && nargs == 0)
        return cmd_events();
    if (strcmp(cmd, "usb") == 0)
        return cmd_usb(nargs, args);
    if (strcmp(cmd, "switch") == 0 && nargs == 1)
        return cmd_switch(args[0]);
    if (strcmp(cmd, "screenshot") == 0)
        return cmd_screenshot(nargs, args);
    if (strcmp(cmd, "host") == 0 && nargs == 0) {
        struct json_object *reply;
        struct json_object *r = call("host.info", NULL, &reply);
        print_json(r);
        json_object_put(reply);
        return EXIT_OK;
    }
    usage();
}
