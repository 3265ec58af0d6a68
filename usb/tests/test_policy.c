/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Assignment policy and libusb-to-Linux translations. */
#include "check.h"
#include "policy.h"
#include "xlate.h"

#include <errno.h>
#include <string.h>

static struct usb_dev_props stick(void)
{
    struct usb_dev_props d = {.vendor = 0x46f4, .product = 0x0001, .nintf = 1};
    d.intf_class[0] = 8;
    d.intf_subclass[0] = 6;
    d.intf_protocol[0] = 0x50;
    strcpy(d.port, "1-2");
    return d;
}

static struct usb_dev_props keyboard(void)
{
    struct usb_dev_props d = {.vendor = 0x0627, .product = 0x0001, .nintf = 1};
    d.intf_class[0] = 3;
    d.intf_subclass[0] = 1;
    d.intf_protocol[0] = 1;
    strcpy(d.port, "1-3");
    return d;
}

static struct usb_rule rule(int v, int p, int cls, const char *port, const char *target)
{
    struct usb_rule r = {.vendor = v, .product = p, .cls = cls};
    strcpy(r.port, port);
    strcpy(r.target, target);
    return r;
}

static void test_match(void)
{
    struct usb_dev_props s = stick(), k = keyboard();
    struct usb_rule rules[3] = {rule(-1, -1, -1, "1-3", "host"), rule(-1, -1, 8, "", "work"),
                                rule(0x46f4, -1, -1, "", "play")};

    CHECK(!policy_is_input(&s));
    CHECK(policy_is_input(&k));
    /* A HID that is not boot keyboard/mouse (protocol 0) is not "input". */
    k.intf_protocol[0] = 0;
    CHECK(!policy_is_input(&k));
    k = keyboard();

    CHECK(policy_match(rules, 3, &s) == &rules[1]); /* first match wins */
    CHECK(strcmp(policy_on_plug(rules, 3, &s), "work") == 0);
    CHECK(policy_on_plug(rules, 3, &k) == NULL); /* "host" */
    CHECK(policy_on_plug(rules, 0, &s) == NULL);
    s.intf_class[0] = 7;
    CHECK(policy_match(rules, 3, &s) == &rules[2]);
    s.dev_class = 8; /* class also matches the device class */
    CHECK(policy_match(rules, 3, &s) == &rules[1]);
}

static void test_attach(void)
{
    struct usb_dev_props s = stick(), k = keyboard();
    struct usb_rule kbrule[1] = {rule(0x0627, 0x0001, -1, "", "work")};
    const char *why = NULL;

    CHECK(policy_may_attach(NULL, 0, &s, "work", NULL, &why));
    CHECK(!policy_may_attach(NULL, 0, &s, "play", "work", &why) && strstr(why, "another VM"));
    CHECK(!policy_may_attach(NULL, 0, &s, "work", "work", &why));
    CHECK(!policy_may_attach(NULL, 0, &s, "host", NULL, &why));
    CHECK(!policy_may_attach(NULL, 0, &s, "", NULL, &why));
    CHECK(!policy_may_attach(NULL, 0, &s, "../x", NULL, &why));
    /* Keyboards: refused without a rule naming this VM, allowed with one. */
    CHECK(!policy_may_attach(NULL, 0, &k, "work", NULL, &why) && strstr(why, "keyboards"));
    CHECK(policy_may_attach(kbrule, 1, &k, "work", NULL, &why));
    CHECK(!policy_may_attach(kbrule, 1, &k, "play", NULL, &why));
}

static void test_parse(void)
{
    int v, p;

    CHECK(policy_parse_id("046d:c52b", &v, &p) == 0 && v == 0x046d && p == 0xc52b);
    CHECK(policy_parse_id("*:0001", &v, &p) == 0 && v == -1 && p == 1);
    CHECK(policy_parse_id("046d", &v, &p) == -1);
    CHECK(policy_parse_id("046d:c52bx", &v, &p) == -1);
    CHECK(policy_parse_id("10000:1", &v, &p) == -1);
    CHECK(policy_parse_id(":1", &v, &p) == -1);
    CHECK(policy_parse_id("g:1", &v, &p) == -1);
    CHECK(policy_name_valid("win10.work_2-a"));
    CHECK(!policy_name_valid("-x") && !policy_name_valid("a b") && !policy_name_valid(""));
    char big[80];
    memset(big, 'a', sizeof(big) - 1);
    big[79] = '\0';
    CHECK(!policy_name_valid(big));
}

static void test_xlate(void)
{
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_COMPLETED, 0, 1) == 0);
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_COMPLETED, 1, 1) == -EREMOTEIO);
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_STALL, 0, 0) == -EPIPE);
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_NO_DEVICE, 0, 0) == -ENODEV);
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_CANCELLED, 0, 0) == -ECONNRESET);
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_OVERFLOW, 0, 0) == -EOVERFLOW);
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_TIMED_OUT, 0, 0) == -ETIMEDOUT);
    CHECK(xlate_transfer_status(LIBUSB_TRANSFER_ERROR, 0, 0) == -EPROTO);
    CHECK(xlate_error(LIBUSB_ERROR_PIPE) == -EPIPE);
    CHECK(xlate_error(LIBUSB_ERROR_NO_DEVICE) == -ENODEV);
    CHECK(xlate_error(-1234) == -EPROTO);
    CHECK(xlate_speed(LIBUSB_SPEED_SUPER) == 5 && xlate_speed(LIBUSB_SPEED_HIGH) == 3);
    CHECK(xlate_speed(LIBUSB_SPEED_UNKNOWN) == 0);
    CHECK(xlate_flags(0x1 | 0x40, 1) == LIBUSB_TRANSFER_SHORT_NOT_OK);
    CHECK(xlate_flags(0x1 | 0x40, 0) == LIBUSB_TRANSFER_ADD_ZERO_PACKET);
}

int main(void)
{
    test_match();
    test_attach();
    test_parse();
    test_xlate();
    CHECK_DONE();
}
