/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsing qemu-img's progress output; see progress.h. */
#include "progress.h"

#include <string.h>

void progress_init(struct progress *p)
{
    memset(p, 0, sizeof(*p));
    p->fraction = -1;
}

/* "D+[.D+]" with at most 3 integer and 6 decimal digits; no locale, no exponent, no sign. */
static bool parse_number(const char **s, const char *end, double *out)
{
    const char *q = *s;
    double v = 0;
    int digits = 0;
    while (q < end && *q >= '0' && *q <= '9' && digits < 4) {
        v = v * 10 + (*q++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 3)
        return false;
    if (q < end && *q == '.') {
        q++;
        double scale = 0.1;
        int dec = 0;
        while (q < end && *q >= '0' && *q <= '9' && dec < 7) {
            v += (*q++ - '0') * scale;
            scale /= 10;
            dec++;
        }
        if (dec == 0 || dec > 6)
            return false;
    }
    *s = q;
    *out = v;
    return true;
}

double progress_parse_record(const char *rec, size_t len)
{
    const char *s = rec, *end = rec + len;
    static const char tail[] = "/100%)";
    while (s < end && *s == ' ')
        s++;
    if (s == end || *s++ != '(')
        return -1;
    double v;
    if (!parse_number(&s, end, &v))
        return -1;
    if ((size_t)(end - s) != sizeof(tail) - 1 || memcmp(s, tail, sizeof(tail) - 1) != 0)
        return -1;
    if (v > 100)
        return -1;
    return v / 100;
}

static bool end_record(struct progress *p)
{
    bool grew = false;
    if (!p->overlong && p->len > 0) {
        double f = progress_parse_record(p->rec, p->len);
        if (f > p->fraction) {
            p->fraction = f;
            grew = true;
        }
    }
    p->len = 0;
    p->overlong = false;
    return grew;
}

bool progress_feed(struct progress *p, const char *data, size_t n)
{
    bool grew = false;
    for (size_t i = 0; i < n; i++) {
        char ch = data[i];
        if (ch == '\r' || ch == '\n') {
            grew |= end_record(p);
        } else if (p->len < sizeof(p->rec)) {
            p->rec[p->len++] = ch;
        } else {
            p->overlong = true;
        }
    }
    return grew;
}
