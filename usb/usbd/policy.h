/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * USB assignment policy: pure functions, no I/O, unit-tested.
 * A rule matches a device by vendor:product, class and/or port path and
 * names where it goes: a VM, or "host" (stay with the host's drivers).
 * Keyboards and mice (HID boot protocol) reach a VM only through a rule
 * that names that VM; a device is in one VM at most.
 */
#ifndef HV_USB_POLICY_H
#define HV_USB_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_NAME_MAX 64
#define POLICY_PORT_MAX 32
#define POLICY_MAX_INTF 32
#define POLICY_HOST     "host"

struct usb_rule {
    int vendor, product;          /* -1: any */
    int cls;                      /* -1: any; else device class or any interface class */
    char port[POLICY_PORT_MAX];   /* "" any; else busid / port path such as "1-2.3" */
    char target[POLICY_NAME_MAX]; /* VM name or "host" */
};

struct usb_dev_props {
    uint16_t vendor, product;
    uint8_t dev_class;
    size_t nintf;
    uint8_t intf_class[POLICY_MAX_INTF], intf_subclass[POLICY_MAX_INTF],
        intf_protocol[POLICY_MAX_INTF];
    char port[POLICY_PORT_MAX];
};

/* Keyboard or mouse: an interface of class 3 (HID) with protocol 1 or 2. */
bool policy_is_input(const struct usb_dev_props *d);

bool policy_rule_matches(const struct usb_rule *r, const struct usb_dev_props *d);

/* First matching rule, or NULL. */
const struct usb_rule *policy_match(const struct usb_rule *rules, size_t n,
                                    const struct usb_dev_props *d);

/*
 * Where a newly plugged device goes: the VM name from the first matching
 * rule, or NULL (stays on the host) when no rule matches or it says "host".
 */
const char *policy_on_plug(const struct usb_rule *rules, size_t n, const struct usb_dev_props *d);

/*
 * May the device go to `vm` now? `owner` is the VM it is in, or NULL.
 * Returns true, or false with *why set to a sentence for the user.
 */
bool policy_may_attach(const struct usb_rule *rules, size_t n, const struct usb_dev_props *d,
                       const char *vm, const char *owner, const char **why);

/*
 * Parse "vvvv:pppp" (hex; either side may be "*"). Returns 0 or -1.
 */
int policy_parse_id(const char *s, int *vendor, int *product);

/* A VM name: 1..63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool policy_name_valid(const char *s);

#endif
