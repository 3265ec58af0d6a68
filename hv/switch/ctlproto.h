/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-switch's control protocol (hvd ⇄ hv-switch): focus a VM, list the VMs,
 * take a thumbnail. See docs/display-protocol.md, "The control socket".
 * Like the producer protocol: fixed-size structs in native byte order, one
 * per SOCK_SEQPACKET datagram, but on a socket of its own (root only), so a
 * producer can never send these. Pure (no I/O): unit-tested and fuzzed.
 */
#ifndef HV_SWITCH_CTLPROTO_H
#define HV_SWITCH_CTLPROTO_H

#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_MSG   2048 /* no request or reply is longer */
#define CTL_THUMB_MAX 2048 /* largest thumbnail side, in pixels */
#define CTL_LIST_MAX  16   /* as many VMs as hv-switch's registry holds */
#define CTL_NO_SLOT   DISP_NO_SLOT

enum ctl_type {
    /* client -> hv-switch */
    CTL_FOCUS = 0x41,
    CTL_LIST = 0x42,
    CTL_THUMB = 0x43,
    /* hv-switch -> client: the request's type | 0x80, or CTL_ERROR */
    CTL_ERROR = 0xc0,
    CTL_FOCUS_REPLY = 0xc1,
    CTL_LIST_REPLY = 0xc2,
    CTL_THUMB_REPLY = 0xc3,
};

/* CTL_ERROR's status. */
enum ctl_status {
    CTL_E_BAD_REQUEST = 1, /* not a valid request: length, type, field range */
    CTL_E_NO_VM = 2,       /* no VM in that slot */
    CTL_E_NO_PICTURE = 3,  /* the VM shows nothing (no scanout yet, or BLANK) */
    CTL_E_INTERNAL = 4,    /* hv-switch could not do it (memfd, mmap) */
};

struct ctl_focus {
    uint32_t type;
    uint32_t slot; /* 0 = UIVM, 1..9 */
};

struct ctl_list {
    uint32_t type;
};

struct ctl_thumb {
    uint32_t type;
    uint32_t slot;
    uint32_t max_width, max_height; /* 1..CTL_THUMB_MAX */
};

struct ctl_error {
    uint32_t type;     /* CTL_ERROR */
    uint32_t status;   /* enum ctl_status */
    uint32_t request;  /* the request's type as received (0 when too short) */
    char message[116]; /* one English sentence, NUL-terminated */
};

/* The VM now focused. */
struct ctl_focus_reply {
    uint32_t type;
    uint32_t slot;
    char name[DISP_NAME_MAX];
};

#define CTL_VM_PICTURE 0x1u /* it has a scanout */
#define CTL_VM_FOCUSED 0x2u
#define CTL_VM_UIVM    0x4u

struct ctl_vm {
    uint32_t slot; /* 0..9 or CTL_NO_SLOT */
    uint32_t colour;
    uint32_t flags;         /* CTL_VM_* */
    uint32_t width, height; /* of its picture, 0 without one */
    char name[DISP_NAME_MAX];
};

struct ctl_list_reply {
    uint32_t type;
    uint32_t count; /* valid entries, in display order */
    struct ctl_vm vms[CTL_LIST_MAX];
};

/*
 * Carries exactly one fd: a memfd sealed against any change, holding the
 * thumbnail as XRGB8888 rows of stride bytes from offset 0.
 */
struct ctl_thumb_reply {
    uint32_t type;
    uint32_t slot;
    uint32_t width, height; /* ≤ the request's maximum, aspect kept, never enlarged */
    uint32_t stride;
    uint32_t format;                /* DISP_FORMAT_XRGB8888 */
    uint32_t src_width, src_height; /* the picture it was made from */
    char name[DISP_NAME_MAX];
};

/* A parsed request. */
struct ctl_req {
    uint32_t type;
    union {
        struct ctl_focus focus;
        struct ctl_thumb thumb;
    } u;
};

/*
 * Checks a datagram of len bytes carrying nfds descriptors. 0, or -1 with
 * err (a sentence) — the caller answers CTL_ERROR / CTL_E_BAD_REQUEST.
 */
int ctl_parse(const void *buf, size_t len, int nfds, struct ctl_req *out, char *err, size_t errlen);

/* The reply's expected length for a reply type, 0 for an unknown type (client side). */
size_t ctl_reply_size(uint32_t type);

#endif
