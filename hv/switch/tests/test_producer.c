// SPDX-License-Identifier: GPL-2.0-or-later
/* hvd's producer records (producer.h): good ones read right, bad ones refused with a reason. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "producer.h"

static struct disp_hello from_hello(void)
{
    struct disp_hello h = {.type = DISP_HELLO,
                           .version = DISP_VERSION,
                           .flags = DISP_HELLO_UIVM,
                           .slot = 5,
                           .colour = 0x123456};
    strcpy(h.name, "liar");
    return h;
}

static int parse(const char *text, struct disp_hello *h, char *err)
{
    return producer_record_parse(text, strlen(text), h, err, 200);
}

static void refused(const char *text, const char *why)
{
    struct disp_hello h = from_hello();
    char err[200] = "";
    CHECK(parse(text, &h, err) == -1);
    if (!strstr(err, why)) {
        fprintf(stderr, "record %s: error '%s', wanted '%s'\n", text, err, why);
        CHECK(0);
    }
}

int main(void)
{
    struct disp_hello h = from_hello();
    char err[200];

    /* The record replaces what the HELLO said, type and version stay. */
    CHECK(parse("name work\ncolour c03030\nslot 2\nuivm no\n", &h, err) == 0);
    CHECK(!strcmp(h.name, "work") && h.colour == 0xc03030 && h.slot == 2 && h.flags == 0);
    CHECK(h.type == DISP_HELLO && h.version == DISP_VERSION);

    h = from_hello();
    CHECK(parse("uivm yes\nslot 0\nname uivm\ncolour 2E3440", &h, err) == 0); /* any order, no \n */
    CHECK(!strcmp(h.name, "uivm") && h.colour == 0x2e3440 && h.slot == 0 &&
          h.flags == DISP_HELLO_UIVM);

    h = from_hello();
    CHECK(parse("name a b\n\ncolour 000000\nslot 9\nuivm no\n\n", &h, err) == 0);
    CHECK(!strcmp(h.name, "a b") && h.slot == 9);

    refused("", "no 'name' line");
    refused("name x\ncolour 000000\nslot 1\n", "no 'uivm' line");
    refused("name x\nname y\ncolour 000000\nslot 1\nuivm no\n", "'name' twice");
    refused("name x\ncolour 00000\nslot 1\nuivm no\n", "colour: RRGGBB");
    refused("name x\ncolour 0x1234\nslot 1\nuivm no\n", "colour: RRGGBB");
    refused("name x\ncolour 00000g\nslot 1\nuivm no\n", "colour: RRGGBB");
    refused("name x\ncolour 000000\nslot 10\nuivm no\n", "slot: 0..9");
    refused("name x\ncolour 000000\nslot -1\nuivm no\n", "slot: 0..9");
    refused("name x\ncolour 000000\nslot 1\nuivm maybe\n", "uivm: yes or no");
    refused("name x\ncolour 000000\nslot 3\nuivm yes\n", "slot but 0");
    refused("name \ncolour 000000\nslot 1\nuivm no\n", "printable ASCII");
    refused("name \x1b[31mred\ncolour 000000\nslot 1\nuivm no\n", "printable ASCII");
    refused("name 0123456789012345678901234567890123\ncolour 000000\nslot 1\nuivm no\n",
            "too long");
    refused("name x\ncolour 000000\nslot 1\nuivm no\nowner root\n", "not a 'name'");
    refused("namex\n", "not a 'name'");

    char big[PRODUCER_RECORD_MAX + 2];
    memset(big, '\n', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    refused(big, "longer than");
    h = from_hello();
    CHECK(producer_record_parse("name a\0b\ncolour 000000\nslot 1\nuivm no\n", 38, &h, err,
                                sizeof(err)) == -1);
    CHECK(strstr(err, "NUL"));
    printf("ok\n");
    return 0;
}
