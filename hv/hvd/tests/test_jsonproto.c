/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The newline-delimited JSON framing: whole, split, oversize, garbage. */
#include "check.h"
#include "jsonproto.h"

#include <string.h>

static void test_lines_split_across_feeds(void)
{
    struct jp_reader r;
    char *line;
    size_t len;
    jp_reader_init(&r, 64);
    CHECK(jp_reader_feed(&r, "{\"a\":1}\n{\"b\"", 12) == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_LINE);
    CHECK(len == 7 && strcmp(line, "{\"a\":1}") == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_NONE);
    CHECK(jp_reader_pending(&r) == 4);
    CHECK(jp_reader_feed(&r, ":2}\r\n\n\n", 7) == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_LINE);
    CHECK(strcmp(line, "{\"b\":2}") == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_NONE);
    CHECK(jp_reader_pending(&r) == 0);
    jp_reader_free(&r);
}

static void test_oversize(void)
{
    struct jp_reader r;
    char *line;
    size_t len;
    char big[100];
    memset(big, 'x', sizeof(big));
    jp_reader_init(&r, 64);
    CHECK(jp_reader_feed(&r, big, 60) == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_NONE);
    CHECK(jp_reader_feed(&r, big, 10) == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_TOO_LARGE);
    jp_reader_free(&r);

    /* A complete line that is too long is refused too. */
    jp_reader_init(&r, 64);
    big[80] = '\n';
    CHECK(jp_reader_feed(&r, big, 81) == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_TOO_LARGE);
    jp_reader_free(&r);

    /* Exactly the limit is fine. */
    jp_reader_init(&r, 64);
    big[64] = '\n';
    CHECK(jp_reader_feed(&r, big, 65) == 0);
    CHECK(jp_reader_next(&r, &line, &len) == JP_LINE && len == 64);
    jp_reader_free(&r);
}

static void test_parse(void)
{
    const char *err = NULL;
    struct json_object *o = jp_parse_object("{\"id\":1}", 8, &err);
    CHECK(o != NULL);
    json_object_put(o);
    CHECK(!jp_parse_object("hello", 5, &err) && strstr(err, "not valid JSON"));
    CHECK(!jp_parse_object("[1,2]", 5, &err) && strstr(err, "not a JSON object"));
    CHECK(!jp_parse_object("{\"a\":1} {}", 10, &err) && strstr(err, "after its JSON"));
    CHECK(!jp_parse_object("{\"a\":", 5, &err));
    CHECK(!jp_parse_object("\xff\xfe{}", 4, &err));
}

static void test_format_is_one_line(void)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "s", json_object_new_string("a\nb/c"));
    size_t len;
    char *s = jp_format(o, &len);
    CHECK(s && len == strlen(s) && s[len - 1] == '\n' && !memchr(s, '\n', len - 1));
    CHECK(strstr(s, "b/c") != NULL);
    free(s);
    json_object_put(o);
}

int main(void)
{
    test_lines_split_across_feeds();
    test_oversize();
    test_parse();
    test_format_is_one_line();
    CHECK_DONE();
}
