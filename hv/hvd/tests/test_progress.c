/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-img's progress output: real records, split chunks, garbage, hostile numbers. */
#include "check.h"
#include "progress.h"

#include <string.h>

static bool near(double a, double b)
{
    return a - b < 1e-9 && b - a < 1e-9;
}

static double rec(const char *s)
{
    return progress_parse_record(s, strlen(s));
}

static void test_records(void)
{
    CHECK(near(rec("    (0.00/100%)"), 0));
    CHECK(near(rec("    (12.50/100%)"), 0.125));
    CHECK(near(rec("(100.00/100%)"), 1));
    CHECK(near(rec("(7/100%)"), 0.07));
    CHECK(rec("") < 0);
    CHECK(rec("    ") < 0);
    CHECK(rec("(100.01/100%)") < 0);
    CHECK(rec("(1000/100%)") < 0);
    CHECK(rec("(-5.00/100%)") < 0);
    CHECK(rec("(nan/100%)") < 0);
    CHECK(rec("(inf/100%)") < 0);
    CHECK(rec("(1e2/100%)") < 0);
    CHECK(rec("(12./100%)") < 0);
    CHECK(rec("(.5/100%)") < 0);
    CHECK(rec("(12.1234567/100%)") < 0);
    CHECK(rec("(12.50/100%) trailing") < 0);
    CHECK(rec("(12.50/200%)") < 0);
    CHECK(rec("x(12.50/100%)") < 0);
    CHECK(rec("(12,50/100%)") < 0);
    CHECK(progress_parse_record("(12.5\0/100%)", 12) < 0);
}

static void test_stream(void)
{
    struct progress p;
    progress_init(&p);
    CHECK(p.fraction < 0);
    const char *out = "    (0.00/100%)\r    (3.12/100%)\r    (6.25/100%)\r";
    /* one byte at a time: a record split anywhere */
    bool grew = false;
    for (size_t i = 0; i < strlen(out); i++)
        grew |= progress_feed(&p, out + i, 1);
    CHECK(grew && near(p.fraction, 0.0625));
    /* a record without its end is not counted yet */
    CHECK(!progress_feed(&p, "    (50.00/100%)", 16));
    CHECK(near(p.fraction, 0.0625));
    CHECK(progress_feed(&p, "\n", 1));
    CHECK(near(p.fraction, 0.5));
    /* never backwards */
    CHECK(!progress_feed(&p, "    (10.00/100%)\r", 17));
    CHECK(near(p.fraction, 0.5));
    /* garbage between records is skipped */
    CHECK(progress_feed(&p, "qemu-img: warning\n\x01\xff\r(75.00/100%)\r", 34));
    CHECK(near(p.fraction, 0.75));
}

static void test_overlong(void)
{
    struct progress p;
    progress_init(&p);
    char big[4096];
    memset(big, ' ', sizeof(big));
    /* a valid-looking record at the end of a too-long line must not count */
    memcpy(big + sizeof(big) - 13, "(90.00/100%)", 12);
    big[sizeof(big) - 1] = '\r';
    CHECK(!progress_feed(&p, big, sizeof(big)));
    CHECK(p.fraction < 0);
    CHECK(progress_feed(&p, "(20.00/100%)\r", 13));
    CHECK(near(p.fraction, 0.2));
}

int main(void)
{
    test_records();
    test_stream();
    test_overlong();
    CHECK_DONE();
}
