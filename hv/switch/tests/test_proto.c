/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "check.h"
#include "proto.h"

#include <string.h>

static char err[256];

static struct disp_hello hello(const char *name)
{
    struct disp_hello h = {DISP_HELLO, DISP_VERSION, 0, 0, 0xff0000, ""};

    strncpy(h.name, name, sizeof(h.name) - 1);
    return h;
}

static struct disp_scanout scanout(uint32_t w, uint32_t h, uint32_t stride)
{
    return (struct disp_scanout){DISP_SCANOUT, w, h, stride, DISP_FORMAT_XRGB8888, 0, 0};
}

static int parse(const void *m, size_t len, int nfds)
{
    struct disp_msg out;

    return disp_parse(m, len, nfds, &out, err, sizeof(err));
}

static void test_hello(void)
{
    struct disp_hello h = hello("red");

    CHECK(parse(&h, sizeof(h), 0) == 0);
    CHECK(parse(&h, sizeof(h) - 1, 0) < 0);
    CHECK(parse(&h, sizeof(h), 1) < 0);
    h.version = 2;
    CHECK(parse(&h, sizeof(h), 0) < 0 && strstr(err, "version"));
    h = hello("red");
    h.slot = 10;
    CHECK(parse(&h, sizeof(h), 0) < 0);
    h = hello("red");
    h.colour = 0x1000000;
    CHECK(parse(&h, sizeof(h), 0) < 0);
    h = hello("red");
    h.flags = 2;
    CHECK(parse(&h, sizeof(h), 0) < 0);
    h = hello("");
    CHECK(parse(&h, sizeof(h), 0) < 0);
    h = hello(" lead");
    CHECK(parse(&h, sizeof(h), 0) < 0);
    h = hello("tab\there");
    CHECK(parse(&h, sizeof(h), 0) < 0);
    memset(h.name, 'a', sizeof(h.name)); /* no NUL */
    CHECK(parse(&h, sizeof(h), 0) < 0);
}

static void test_scanout(void)
{
    struct disp_scanout s = scanout(640, 480, 2560);
    struct disp_fdinfo fd = {true, 640 * 480 * 4, true};

    CHECK(parse(&s, sizeof(s), 1) == 0);
    CHECK(parse(&s, sizeof(s), 0) < 0);
    CHECK(parse(&s, sizeof(s), 2) < 0);
    CHECK(disp_check_scanout(&s, &fd, err, sizeof(err)) == 0);

    s = scanout(100000, 100000, 400000);
    CHECK(parse(&s, sizeof(s), 1) < 0 && strstr(err, "size"));
    s = scanout(0, 480, 2560);
    CHECK(parse(&s, sizeof(s), 1) < 0);
    s = scanout(640, 480, 2556);
    CHECK(parse(&s, sizeof(s), 1) < 0 && strstr(err, "stride"));
    s = scanout(640, 480, 2562);
    CHECK(parse(&s, sizeof(s), 1) < 0);
    s = scanout(8192, 8192, 0xfffffffc); /* stride * height overflows 32 bits */
    CHECK(parse(&s, sizeof(s), 1) < 0);
    s = scanout(640, 480, 2560);
    s.format = 0x34325241; /* AR24 */
    CHECK(parse(&s, sizeof(s), 1) < 0 && strstr(err, "format"));
    s = scanout(640, 480, 2560);
    s.offset = 100;
    CHECK(parse(&s, sizeof(s), 1) < 0);

    s = scanout(640, 480, 2560);
    fd.size = 4096;
    CHECK(disp_check_scanout(&s, &fd, err, sizeof(err)) < 0 && strstr(err, "needs"));
    fd.size = 640 * 480 * 4;
    fd.seal_shrink = false;
    CHECK(disp_check_scanout(&s, &fd, err, sizeof(err)) < 0 && strstr(err, "sealed"));
    fd.seal_shrink = true;
    fd.regular = false;
    CHECK(disp_check_scanout(&s, &fd, err, sizeof(err)) < 0);
    fd.regular = true;
    s.offset = UINT64_MAX & ~4095ull; /* offset + size overflows */
    CHECK(disp_check_scanout(&s, &fd, err, sizeof(err)) < 0);
    s.offset = 4096;
    fd.size = 4096 + 640 * 480 * 4;
    CHECK(disp_check_scanout(&s, &fd, err, sizeof(err)) == 0);
}

static void test_conn(void)
{
    struct disp_conn c = {0};
    struct disp_msg m = {0};

    m.type = DISP_DAMAGE;
    m.u.damage = (struct disp_damage){DISP_DAMAGE, {0, 0, 1, 1}};
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0 && strstr(err, "before hello"));

    m.type = DISP_HELLO;
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) == 0);
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0);

    m.type = DISP_DAMAGE;
    m.u.damage = (struct disp_damage){DISP_DAMAGE, {0, 0, 1, 1}};
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0 && strstr(err, "without"));

    m.type = DISP_SCANOUT;
    m.u.scanout = scanout(640, 480, 2560);
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) == 0);

    m.type = DISP_DAMAGE;
    m.u.damage = (struct disp_damage){DISP_DAMAGE, {0, 0, 640, 480}};
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) == 0);
    m.u.damage = (struct disp_damage){DISP_DAMAGE, {630, 470, 20, 20}};
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0 && strstr(err, "outside"));
    m.u.damage = (struct disp_damage){DISP_DAMAGE, {0xffffffff, 0, 2, 1}};
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0);

    m.type = DISP_BLANK;
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) == 0);
    m.type = DISP_DAMAGE;
    m.u.damage = (struct disp_damage){DISP_DAMAGE, {0, 0, 1, 1}};
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0);

    m.type = DISP_STATS_REQ;
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0);
    c = (struct disp_conn){0};
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) == 0);
    m.type = DISP_HELLO;
    CHECK(disp_conn_apply(&c, &m, err, sizeof(err)) < 0);
}

static void test_garbage(void)
{
    uint8_t junk[8] = {0x7f};
    uint32_t t = DISP_DAMAGE;

    CHECK(parse(junk, 0, 0) < 0);
    CHECK(parse(junk, 3, 0) < 0);
    CHECK(parse(junk, sizeof(junk), 0) < 0 && strstr(err, "unknown"));
    CHECK(parse(&t, sizeof(t), 0) < 0);
}

int main(void)
{
    test_hello();
    test_scanout();
    test_conn();
    test_garbage();
    CHECK_DONE();
}
