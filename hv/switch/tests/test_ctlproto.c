/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The control protocol's checks: every refusal, and the good requests. */
#include "check.h"
#include "ctlproto.h"

#include <string.h>

static int parse(const void *buf, size_t len, int nfds, struct ctl_req *q)
{
    char err[128];
    int rc = ctl_parse(buf, len, nfds, q, err, sizeof(err));

    CHECK(rc == 0 || err[0]); /* every refusal says why */
    return rc;
}

static void test_good(void)
{
    struct ctl_focus f = {CTL_FOCUS, 3};
    struct ctl_list l = {CTL_LIST};
    struct ctl_thumb t = {CTL_THUMB, 0, 320, 200};
    struct ctl_req q;

    CHECK(parse(&f, sizeof(f), 0, &q) == 0 && q.type == CTL_FOCUS && q.u.focus.slot == 3);
    CHECK(parse(&l, sizeof(l), 0, &q) == 0 && q.type == CTL_LIST);
    CHECK(parse(&t, sizeof(t), 0, &q) == 0 && q.type == CTL_THUMB && q.u.thumb.max_width == 320 &&
          q.u.thumb.max_height == 200 && q.u.thumb.slot == 0);
    t.max_width = t.max_height = CTL_THUMB_MAX;
    CHECK(parse(&t, sizeof(t), 0, &q) == 0);
}

static void test_refused(void)
{
    struct ctl_focus f = {CTL_FOCUS, 10};
    struct ctl_thumb t = {CTL_THUMB, 1, 0, 200};
    uint8_t big[CTL_MAX_MSG + 1] = {CTL_LIST};
    uint32_t producer_hello = 0x01, reply = CTL_FOCUS_REPLY;
    struct ctl_req q;

    CHECK(parse(&f, 0, 0, &q) < 0);         /* empty */
    CHECK(parse(&f, 3, 0, &q) < 0);         /* shorter than a type */
    CHECK(parse(&f, sizeof(f), 0, &q) < 0); /* slot 10 */
    f.slot = 0xffffffff;
    CHECK(parse(&f, sizeof(f), 0, &q) < 0);
    f.slot = 1;
    CHECK(parse(&f, sizeof(f) - 1, 0, &q) < 0); /* length */
    CHECK(parse(big, sizeof(big), 0, &q) < 0);  /* too long for its type */
    CHECK(parse(&f, sizeof(f), 1, &q) < 0);     /* with a descriptor */
    CHECK(parse(&t, sizeof(t), 0, &q) < 0);     /* width 0 */
    t.max_width = CTL_THUMB_MAX + 1;
    CHECK(parse(&t, sizeof(t), 0, &q) < 0);
    t.max_width = 64, t.max_height = 0x80000000u;
    CHECK(parse(&t, sizeof(t), 0, &q) < 0);
    t.max_height = 64, t.slot = 99;
    CHECK(parse(&t, sizeof(t), 0, &q) < 0);
    CHECK(parse(&producer_hello, 4, 0, &q) < 0); /* producer messages mean nothing here */
    CHECK(parse(&reply, 4, 0, &q) < 0);          /* nor do replies */
}

static void test_reply_sizes(void)
{
    CHECK(ctl_reply_size(CTL_ERROR) == sizeof(struct ctl_error));
    CHECK(ctl_reply_size(CTL_THUMB_REPLY) == sizeof(struct ctl_thumb_reply));
    CHECK(ctl_reply_size(CTL_LIST_REPLY) <= CTL_MAX_MSG);
    CHECK(ctl_reply_size(CTL_FOCUS) == 0);
}

int main(void)
{
    test_good();
    test_refused();
    test_reply_sizes();
    CHECK_DONE();
}
