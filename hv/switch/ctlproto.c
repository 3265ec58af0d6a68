/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctlproto.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(struct ctl_error) == 128, "error layout");
_Static_assert(sizeof(struct ctl_vm) == 20 + DISP_NAME_MAX, "vm layout");
_Static_assert(sizeof(struct ctl_list_reply) <= CTL_MAX_MSG, "list fits a datagram");
_Static_assert(sizeof(struct ctl_thumb_reply) == 32 + DISP_NAME_MAX, "thumb reply layout");

static size_t request_size(uint32_t type)
{
    switch (type) {
    case CTL_FOCUS:
        return sizeof(struct ctl_focus);
    case CTL_LIST:
        return sizeof(struct ctl_list);
    case CTL_THUMB:
        return sizeof(struct ctl_thumb);
    default:
        return 0;
    }
}

size_t ctl_reply_size(uint32_t type)
{
    switch (type) {
    case CTL_ERROR:
        return sizeof(struct ctl_error);
    case CTL_FOCUS_REPLY:
        return sizeof(struct ctl_focus_reply);
    case CTL_LIST_REPLY:
        return sizeof(struct ctl_list_reply);
    case CTL_THUMB_REPLY:
        return sizeof(struct ctl_thumb_reply);
    default:
        return 0;
    }
}

static int check_slot(uint32_t slot, char *err, size_t errlen)
{
    if (slot > 9)
        return hv_fail(err, errlen, "slot %u is not 0..9", slot);
    return 0;
}

int ctl_parse(const void *buf, size_t len, int nfds, struct ctl_req *out, char *err, size_t errlen)
{
    uint32_t type;
    size_t want;

    memset(out, 0, sizeof(*out));
    if (len < sizeof(type))
        return hv_fail(err, errlen, "a request of %zu bytes is too short", len);
    memcpy(&type, buf, sizeof(type));
    want = request_size(type);
    if (!want)
        return hv_fail(err, errlen, "unknown request type 0x%x", type);
    if (len != want)
        return hv_fail(err, errlen, "request 0x%x has %zu bytes, not %zu", type, len, want);
    if (nfds)
        return hv_fail(err, errlen, "requests carry no file descriptors");
    out->type = type;
    switch (type) {
    case CTL_FOCUS:
        memcpy(&out->u.focus, buf, sizeof(out->u.focus));
        return check_slot(out->u.focus.slot, err, errlen);
    case CTL_THUMB:
        memcpy(&out->u.thumb, buf, sizeof(out->u.thumb));
        if (out->u.thumb.max_width < 1 || out->u.thumb.max_width > CTL_THUMB_MAX ||
            out->u.thumb.max_height < 1 || out->u.thumb.max_height > CTL_THUMB_MAX)
            return hv_fail(err, errlen, "thumbnail size %ux%u is not within 1x1..%ux%u",
                           out->u.thumb.max_width, out->u.thumb.max_height, CTL_THUMB_MAX,
                           CTL_THUMB_MAX);
        return check_slot(out->u.thumb.slot, err, errlen);
    default:
        return 0;
    }
}
