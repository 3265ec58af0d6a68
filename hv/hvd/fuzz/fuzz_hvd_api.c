// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: what a client of hvd's API controls before any VM
 * exists. Byte 0 picks:
 *   0  the rest is a VM definition in INI form (vmdef_from_text);
 *   1  the rest is the byte stream of a connection: framed into lines
 *      (jsonproto.c, fed in chunks whose sizes come from byte 1, with a
 *      small line limit), each line parsed as a JSON object and checked as
 *      server.c checks a request (method string, params object), and a
 *      definition in params ("text" or "definition") validated as
 *      vm.define and vm.validate do;
 *   2  the rest is disk entries, one a line (vmdef_disk_parse).
 * Validation looks at no file (images_dir NULL, check_files false).
 *
 * Checked besides ASan/UBSan: a definition that validates comes back from
 * its INI and JSON forms valid and the same; a disk entry likewise; GLib
 * says nothing (a critical aborts: corpus/json-odd-types did, with a JSON
 * key GKeyFile cannot hold, before vmdef.c checked keys first).
 */
#include <glib.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonproto.h" /* MIN: glib.h's */
#include "vmdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct vmdef_ctx ctx = {.images_dir = NULL, .check_files = false};

/* Round trips of a valid definition: INI and JSON give it back unchanged. */
static void check_def(const struct vmdef *def)
{
    char *err = NULL, *text = vmdef_to_text(def);
    if (!text)
        __builtin_trap();
    struct vmdef *again = vmdef_from_text(text, strlen(text), &ctx, &err);
    if (!again) {
        fprintf(stderr, "stored form refused: %s\n---\n%s---\n", err, text);
        __builtin_trap();
    }
    char *text2 = vmdef_to_text(again);
    if (strcmp(text, text2) != 0)
        __builtin_trap(); /* the stored form is not stable */
    struct json_object *j = vmdef_to_json(def);
    struct vmdef *from_json = vmdef_from_json(j, &ctx, &err);
    if (!from_json) {
        fprintf(stderr, "JSON form refused: %s\n%s\n", err, json_object_to_json_string(j));
        __builtin_trap();
    }
    char *text3 = vmdef_to_text(from_json);
    if (strcmp(text, text3) != 0)
        __builtin_trap(); /* the JSON form says something else */
    free(text3);
    vmdef_free(from_json);
    json_object_put(j);
    free(text2);
    vmdef_free(again);
    free(text);
}

/* FUZZ_TRACE=1: say what each definition gave, for writing seeds. */
static void trace(const struct vmdef *def, const char *err)
{
    static int on = -1;
    if (on < 0)
        on = getenv("FUZZ_TRACE") && *getenv("FUZZ_TRACE") == '1';
    if (on)
        fprintf(stderr, "definition: %s\n", def ? def->name : err);
}

static void definition_text(const char *text, size_t len)
{
    char *err = NULL;
    struct vmdef *def = vmdef_from_text(text, len, &ctx, &err);
    trace(def, err);
    if (def)
        check_def(def);
    else if (!err)
        __builtin_trap(); /* refused without saying why */
    vmdef_free(def);
    free(err);
}

/* What server.c's handle_request and api.c's parse_definition look at. */
static void request(struct json_object *req)
{
    struct json_object *method, *params, *v;
    if (!json_object_object_get_ex(req, "method", &method) ||
        !json_object_is_type(method, json_type_string))
        return;
    if (!json_object_object_get_ex(req, "params", &params) ||
        !json_object_is_type(params, json_type_object))
        return;
    if (json_object_object_get_ex(params, "text", &v) && json_object_is_type(v, json_type_string)) {
        definition_text(json_object_get_string(v), (size_t)json_object_get_string_len(v));
    } else if (json_object_object_get_ex(params, "definition", &v)) {
        char *err = NULL;
        struct vmdef *def = vmdef_from_json(v, &ctx, &err);
        trace(def, err);
        if (def)
            check_def(def);
        else if (!err)
            __builtin_trap();
        vmdef_free(def);
        free(err);
    }
}

static void stream(const uint8_t *data, size_t size)
{
    if (!size)
        return;
    unsigned chunk = data[0] % 64 + 1;
    data++, size--;
    struct jp_reader r;
    jp_reader_init(&r, 4096);
    for (size_t off = 0; off < size;) {
        size_t n = MIN(chunk, size - off);
        if (jp_reader_feed(&r, data + off, n) < 0)
            break;
        off += n;
        char *line;
        size_t len;
        enum jp_next next;
        while ((next = jp_reader_next(&r, &line, &len)) == JP_LINE) {
            if (strlen(line) > len)
                __builtin_trap();
            const char *why = NULL;
            struct json_object *req = jp_parse_object(line, len, &why);
            if (!req) {
                if (!why)
                    __builtin_trap();
                continue;
            }
            /* What we send back must frame and parse again. */
            size_t flen;
            char *out = jp_format(req, &flen);
            if (!out || flen == 0 || out[flen - 1] != '\n' || memchr(out, '\n', flen - 1))
                __builtin_trap();
            struct json_object *back = jp_parse_object(out, flen - 1, &why);
            if (!back)
                __builtin_trap();
            json_object_put(back);
            free(out);
            request(req);
            json_object_put(req);
        }
        if (next == JP_TOO_LARGE)
            break; /* hvd closes the connection */
    }
    jp_reader_free(&r);
}

static void disks(const char *text)
{
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct vmdef_disk d, d2;
        char *err = NULL;
        if (vmdef_disk_parse(line, line[0] == '#' ? "/images" : NULL, &d, &err) < 0) {
            if (!err)
                __builtin_trap();
            free(err);
            continue;
        }
        char *stored = vmdef_disk_text(&d);
        if (vmdef_disk_parse(stored, NULL, &d2, &err) < 0)
            __builtin_trap(); /* the stored form of a valid entry is refused */
        if (strcmp(d.path, d2.path) || d.readonly != d2.readonly || d.format != d2.format)
            __builtin_trap();
        vmdef_disk_clear(&d2);
        vmdef_disk_clear(&d);
        free(stored);
    }
    free(copy);
}

/* A GLib critical or warning on a client's input is a bug: crash on it (SIGILL, which
 * libFuzzer catches; GLib's own fatal path raises SIGTRAP, which it does not). */
static void glib_log(const char *domain, GLogLevelFlags level, const char *msg, void *data)
{
    (void)data;
    fprintf(stderr, "%s: %s\n", domain ? domain : "glib", msg);
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        g_log_set_default_handler(glib_log, NULL);
        inited = true;
    }
    if (size < 1 || size > 64 * 1024)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        definition_text(text, size - 1);
        break;
    case 1:
        stream(data + 1, size - 1);
        break;
    default:
        disks(text);
        break;
    }
    free(text);
    return 0;
}
