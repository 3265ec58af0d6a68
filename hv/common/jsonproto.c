/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "jsonproto.h"

#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void jp_reader_init(struct jp_reader *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
}

void jp_reader_free(struct jp_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

size_t jp_reader_pending(const struct jp_reader *r)
{
    return r->len - r->start;
}

int jp_reader_feed(struct jp_reader *r, const void *data, size_t n)
{
    if (r->start > 0 && (r->start == r->len || r->len + n > r->cap)) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->scan -= r->start;
        r->start = 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *buf = realloc(r->buf, cap);
        if (!buf)
            return -1;
        r->buf = buf;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return 0;
}

enum jp_next jp_reader_next(struct jp_reader *r, char **line, size_t *len)
{
    for (;;) {
        if (!r->buf)
            return JP_NONE;
        if (r->scan < r->start)
            r->scan = r->start;
        char *nl = memchr(r->buf + r->scan, '\n', r->len - r->scan);
        if (!nl) {
            r->scan = r->len;
            return r->len - r->start > r->max ? JP_TOO_LARGE : JP_NONE;
        }
        size_t n = (size_t)(nl - (r->buf + r->start));
        if (n > r->max)
            return JP_TOO_LARGE;
        char *s = r->buf + r->start;
        *nl = '\0';
        r->start += n + 1;
        r->scan = r->start;
        if (n > 0 && s[n - 1] == '\r')
            s[--n] = '\0';
        if (n == 0)
            continue;
        *line = s;
        *len = n;
        return JP_LINE;
    }
}

struct json_object *jp_parse_object(const char *line, size_t len, const char **err)
{
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        *err = "Out of memory.";
        return NULL;
    }
    if (len > (size_t)INT32_MAX) {
        json_tokener_free(tok);
        *err = "The message is too large.";
        return NULL;
    }
    struct json_object *obj = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!obj || jerr != json_tokener_success) {
        json_object_put(obj);
        *err = "The message is not valid JSON.";
        return NULL;
    }
    for (; used < len; used++) {
        if (!strchr(" \t\r", line[used])) {
            json_object_put(obj);
            *err = "The message has data after its JSON object.";
            return NULL;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        *err = "The message is JSON but not a JSON object.";
        return NULL;
    }
    return obj;
}

char *jp_format(struct json_object *obj, size_t *len)
{
    size_t n;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (!s)
        return NULL;
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    *len = n + 1;
    return out;
}

int jp_send(int fd, struct json_object *obj)
{
    size_t len;
    char *s = jp_format(obj, &len);
    if (!s)
        return -1;
    ssize_t w = write_full(fd, s, len);
    free(s);
    return w == (ssize_t)len ? 0 : -1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int jp_recv(int fd, struct jp_reader *r, int timeout_ms, struct json_object **out, const char **err)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    char buf[16384];

    for (;;) {
        char *line;
        size_t len;
        enum jp_next next = jp_reader_next(r, &line, &len);
        if (next == JP_TOO_LARGE) {
            *err = "The reply is larger than the protocol allows.";
            return -1;
        }
        if (next == JP_LINE) {
            *out = jp_parse_object(line, len, err);
            return *out ? 1 : -1;
        }
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                *err = "Timed out waiting for a reply.";
                return -1;
            }
            wait = (int)left;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int p = poll(&pfd, 1, wait);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0) {
            *err = "poll() failed.";
            return -1;
        }
        if (p == 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            *err = "Reading the socket failed.";
            return -1;
        }
        if (n == 0) {
            if (jp_reader_pending(r)) {
                *err = "The connection closed in the middle of a message.";
                return -1;
            }
            return 0;
        }
        if (jp_reader_feed(r, buf, (size_t)n) < 0) {
            *err = "Out of memory.";
            return -1;
        }
    }
}
