/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "producer.h"
#include "util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KEY_NAME, KEY_COLOUR, KEY_SLOT, KEY_UIVM, NKEYS };
static const char *const keys[NKEYS] = {"name", "colour", "slot", "uivm"};

static int key_of(const char *line, size_t len)
{
    for (int k = 0; k < NKEYS; k++) {
        size_t kl = strlen(keys[k]);
        if (len > kl && !memcmp(line, keys[k], kl) && line[kl] == ' ')
            return k;
    }
    return -1;
}

/* One "key value" line (value: len bytes, no NUL inside) into h. */
static int apply(int key, const char *v, size_t len, struct disp_hello *h, char *err, size_t errlen)
{
    char buf[DISP_NAME_MAX + 1];
    char *end;

    if (len >= sizeof(buf))
        return hv_fail(err, errlen, "%s: the value is too long", keys[key]);
    memcpy(buf, v, len);
    buf[len] = '\0';
    switch (key) {
    case KEY_NAME:
        memset(h->name, 0, sizeof(h->name));
        memcpy(h->name, buf, len < DISP_NAME_MAX ? len : DISP_NAME_MAX - 1);
        if (len >= DISP_NAME_MAX || !disp_name_valid(h->name))
            return hv_fail(err, errlen, "name: 1..%d printable ASCII characters",
                           DISP_NAME_MAX - 1);
        return 0;
    case KEY_COLOUR: {
        unsigned long c = strtoul(buf, &end, 16);
        if (len != 6 || *end || strspn(buf, "0123456789abcdefABCDEF") != 6)
            return hv_fail(err, errlen, "colour: RRGGBB in hexadecimal");
        h->colour = (uint32_t)c;
        return 0;
    }
    case KEY_SLOT:
        if (len != 1 || buf[0] < '0' || buf[0] > '9')
            return hv_fail(err, errlen, "slot: 0..9");
        h->slot = (uint32_t)(buf[0] - '0');
        return 0;
    case KEY_UIVM:
        if (!strcmp(buf, "yes"))
            h->flags = DISP_HELLO_UIVM;
        else if (!strcmp(buf, "no"))
            h->flags = 0;
        else
            return hv_fail(err, errlen, "uivm: yes or no");
        return 0;
    }
    return hv_fail(err, errlen, "unknown key");
}

int producer_record_parse(const char *text, size_t len, struct disp_hello *h, char *err,
                          size_t errlen)
{
    bool seen[NKEYS] = {false};
    size_t pos = 0;

    if (len > PRODUCER_RECORD_MAX)
        return hv_fail(err, errlen, "longer than %d bytes", PRODUCER_RECORD_MAX);
    if (memchr(text, '\0', len))
        return hv_fail(err, errlen, "a NUL byte in the record");
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n == 0)
            continue;
        int key = key_of(line, n);
        if (key < 0)
            return hv_fail(err, errlen, "not a 'name', 'colour', 'slot' or 'uivm' line: %.*s",
                           (int)(n > 40 ? 40 : n), line);
        if (seen[key])
            return hv_fail(err, errlen, "'%s' twice", keys[key]);
        seen[key] = true;
        size_t kl = strlen(keys[key]) + 1;
        if (apply(key, line + kl, n - kl, h, err, errlen) < 0)
            return -1;
    }
    for (int k = 0; k < NKEYS; k++)
        if (!seen[k])
            return hv_fail(err, errlen, "no '%s' line", keys[k]);
    if ((h->flags & DISP_HELLO_UIVM) && h->slot != 0)
        return hv_fail(err, errlen, "the UIVM has no hotkey slot but 0");
    return 0;
}
