/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Newline-delimited JSON framing shared by hvd, hvctl and hv-manager: one JSON
 * object per line, each line at most a fixed size (docs/hvd-api.md).
 */
#ifndef HV_COMMON_JSONPROTO_H
#define HV_COMMON_JSONPROTO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define JP_MAX_MESSAGE (1024 * 1024)

/* Splits a byte stream into lines. */
struct jp_reader {
    char *buf;
    size_t start; /* first byte not yet returned */
    size_t scan;  /* bytes before this offset hold no '\n' (from start) */
    size_t len;
    size_t cap;
    size_t max; /* longest allowed line, without its '\n' */
};

void jp_reader_init(struct jp_reader *r, size_t max);
void jp_reader_free(struct jp_reader *r);

/* Append received bytes. Returns 0, or -1 when out of memory. */
int jp_reader_feed(struct jp_reader *r, const void *data, size_t n);

/* Bytes held that are not yet a whole line (a partial message). */
size_t jp_reader_pending(const struct jp_reader *r);

enum jp_next {
    JP_NONE = 0,       /* no complete line yet */
    JP_LINE = 1,       /* *line is a NUL-terminated line, valid until the next call */
    JP_TOO_LARGE = -1, /* the current line exceeds max: the stream cannot go on */
};

/* The next complete line (without '\n'); empty lines are skipped. */
enum jp_next jp_reader_next(struct jp_reader *r, char **line, size_t *len);

/*
 * Parse a line that must hold exactly one JSON object.
 * Returns the object, or NULL with *err set to a sentence.
 */
struct json_object *jp_parse_object(const char *line, size_t len, const char **err);

/* The object as one line ending in '\n' (malloc'd), or NULL. */
char *jp_format(struct json_object *obj, size_t *len);

/* Blocking helpers for simple clients. */
int jp_send(int fd, struct json_object *obj);

/*
 * Read the next object from fd. timeout_ms < 0 waits forever.
 * Returns 1 with *out, 0 on EOF, -1 on error with *err (timeout, too large, bad JSON...).
 */
int jp_recv(int fd, struct jp_reader *r, int timeout_ms, struct json_object **out,
            const char **err);

#endif
