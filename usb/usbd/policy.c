/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "policy.h"

#include <stdlib.h>
#include <string.h>

bool policy_is_input(const struct usb_dev_props *d)
{
    for (size_t i = 0; i < d->nintf && i < POLICY_MAX_INTF; i++)
        if (d->intf_class[i] == 3 && (d->intf_protocol[i] == 1 || d->intf_protocol[i] == 2))
            return true;
    return false;
}

static bool has_class(const struct usb_dev_props *d, int cls)
{
    if (d->dev_class == cls)
        return true;
    for (size_t i = 0; i < d->nintf && i < POLICY_MAX_INTF; i++)
        if (d->intf_class[i] == cls)
            return true;
    return false;
}

bool policy_rule_matches(const struct usb_rule *r, const struct usb_dev_props *d)
{
    if (r->vendor >= 0 && r->vendor != d->vendor)
        return false;
    if (r->product >= 0 && r->product != d->product)
        return false;
    if (r->cls >= 0 && !has_class(d, r->cls))
        return false;
    if (r->port[0] && strcmp(r->port, d->port) != 0)
        return false;
    return true;
}

const struct usb_rule *policy_match(const struct usb_rule *rules, size_t n,
                                    const struct usb_dev_props *d)
{
    for (size_t i = 0; i < n; i++)
        if (policy_rule_matches(&rules[i], d))
            return &rules[i];
    return NULL;
}

const char *policy_on_plug(const struct usb_rule *rules, size_t n, const struct usb_dev_props *d)
{
    const struct usb_rule *r = policy_match(rules, n, d);

    if (!r || strcmp(r->target, POLICY_HOST) == 0)
        return NULL;
    return r->target;
}

/* An explicit rule: one that matches this device and names this VM. */
static bool explicit_rule(const struct usb_rule *rules, size_t n, const struct usb_dev_props *d,
                          const char *vm)
{
    for (size_t i = 0; i < n; i++)
        if (policy_rule_matches(&rules[i], d) && strcmp(rules[i].target, vm) == 0)
            return true;
    return false;
}

bool policy_may_attach(const struct usb_rule *rules, size_t n, const struct usb_dev_props *d,
                       const char *vm, const char *owner, const char **why)
{
    if (!vm || !policy_name_valid(vm) || strcmp(vm, POLICY_HOST) == 0) {
        *why = "not a valid VM name";
        return false;
    }
    if (owner && strcmp(owner, vm) != 0) {
        *why = "the device is already attached to another VM; detach it first";
        return false;
    }
    if (owner) {
        *why = "the device is already attached to this VM";
        return false;
    }
    if (policy_is_input(d) && !explicit_rule(rules, n, d, vm)) {
        *why = "keyboards and mice go to a VM only through a rule naming that VM";
        return false;
    }
    return true;
}

static int parse_hex16(const char *s, size_t len, int *out)
{
    int v = 0;

    if (len == 1 && s[0] == '*') {
        *out = -1;
        return 0;
    }
    if (len == 0 || len > 4)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int x = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (x < 0)
            return -1;
        v = v * 16 + x;
    }
    *out = v;
    return 0;
}

int policy_parse_id(const char *s, int *vendor, int *product)
{
    const char *colon = strchr(s, ':');

    if (!colon)
        return -1;
    if (parse_hex16(s, (size_t)(colon - s), vendor) ||
        parse_hex16(colon + 1, strlen(colon + 1), product))
        return -1;
    return 0;
}

bool policy_name_valid(const char *s)
{
    size_t n = strnlen(s, POLICY_NAME_MAX);

    if (n == 0 || n >= POLICY_NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}
