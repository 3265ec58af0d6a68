/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The display protocol between a producer (hv-vmm, one per VM) and hv-switch:
 * see docs/display-protocol.md. Messages are fixed-size structs in native byte
 * order, one per SOCK_SEQPACKET datagram. Everything here is pure (no I/O) so
 * that it can be unit-tested and fuzzed.
 */
#ifndef HV_SWITCH_PROTO_H
#define HV_SWITCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISP_VERSION 1

#define DISP_NAME_MAX      32 /* bytes including the terminating NUL */
#define DISP_MAX_DIM       8192
#define DISP_MAX_BYTES     (256u << 20)
#define DISP_MAX_MSG       2048 /* no valid message is longer */
#define DISP_ABS_MAX       32767
#define DISP_STATS_SAMPLES 64

/* DRM fourcc codes (drm_fourcc.h); only XRGB8888 is accepted today. */
#define DISP_FOURCC(a, b, c, d)                                                                    \
    ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
#define DISP_FORMAT_XRGB8888 DISP_FOURCC('X', 'R', '2', '4')

enum disp_type {
    /* producer -> hv-switch */
    DISP_HELLO = 0x01,
    DISP_SCANOUT = 0x02,
    DISP_DAMAGE = 0x03,
    DISP_BLANK = 0x04,
    DISP_STATS_REQ = 0x10,
    /* hv-switch -> producer */
    DISP_WELCOME = 0x81,
    DISP_KEY = 0x82,
    DISP_POINTER = 0x83,
    DISP_WHEEL = 0x84,
    DISP_FOCUS = 0x85,
    DISP_STATS = 0x90,
};

#define DISP_HELLO_UIVM 0x1u

struct disp_hello {
    uint32_t type;
    uint32_t version;
    uint32_t flags;  /* DISP_HELLO_UIVM */
    uint32_t slot;   /* 1..9 wanted hotkey slot, 0 = first free */
    uint32_t colour; /* 0xRRGGBB */
    char name[DISP_NAME_MAX];
};

/* Carries exactly one file descriptor (SCM_RIGHTS): a memfd sealed against shrinking. */
struct disp_scanout {
    uint32_t type;
    uint32_t width;
    uint32_t height;
    uint32_t stride; /* bytes per line */
    uint32_t format; /* DISP_FORMAT_* */
    uint32_t reserved;
    uint64_t offset; /* of the first line in the memfd; page-aligned */
};

struct disp_rect {
    uint32_t x, y, w, h;
};

struct disp_damage {
    uint32_t type;
    struct disp_rect rect;
};

struct disp_blank {
    uint32_t type;
};

struct disp_stats_req {
    uint32_t type;
};

struct disp_welcome {
    uint32_t type;
    uint32_t version;
    uint32_t slot; /* 0 for the UIVM, 1..9, or DISP_NO_SLOT */
};
#define DISP_NO_SLOT 0xffffffffu

struct disp_key {
    uint32_t type;
    uint32_t code;    /* Linux evdev KEY_* code */
    uint32_t pressed; /* 1 press, 0 release */
};

#define DISP_BTN_LEFT   0x1u
#define DISP_BTN_RIGHT  0x2u
#define DISP_BTN_MIDDLE 0x4u

struct disp_pointer {
    uint32_t type;
    uint32_t x, y;    /* 0..DISP_ABS_MAX across the guest's picture */
    uint32_t buttons; /* DISP_BTN_* held */
};

struct disp_wheel {
    uint32_t type;
    int32_t dx, dy; /* notches; dy > 0 scrolls up (away from the user) */
};

struct disp_focus {
    uint32_t type;
    uint32_t focused;
};

struct disp_stats {
    uint32_t type;
    uint32_t switches; /* focus changes presented since start */
    uint32_t nsamples; /* valid entries in sample_us, oldest first */
    uint32_t reserved;
    uint32_t sample_us[DISP_STATS_SAMPLES]; /* hotkey to frame presented */
};

/* A parsed producer message. */
struct disp_msg {
    uint32_t type;
    union {
        struct disp_hello hello;
        struct disp_scanout scanout;
        struct disp_damage damage;
    } u;
};

/* What hv-switch learnt about a passed file descriptor (fstat, F_GET_SEALS). */
struct disp_fdinfo {
    bool regular;
    uint64_t size;
    bool seal_shrink;
};

/* Per-connection protocol state: what a producer has said so far. */
struct disp_conn {
    bool hello;
    bool stats;   /* a stats query: nothing else may follow */
    bool surface; /* a scanout is active */
    uint32_t width, height;
};

/* err is always a sentence for the log; errlen >= 1. */

/* Checks a datagram of len bytes carrying nfds descriptors on its own. 0 or -1. */
int disp_parse(const void *buf, size_t len, int nfds, struct disp_msg *out, char *err,
               size_t errlen);

/* Checks a scanout against the memfd it came with. 0 or -1. */
int disp_check_scanout(const struct disp_scanout *s, const struct disp_fdinfo *fd, char *err,
                       size_t errlen);

/*
 * Checks msg (parsed, and for a scanout already checked against its fd) against
 * what the connection said before, then updates c. 0 or -1.
 */
int disp_conn_apply(struct disp_conn *c, const struct disp_msg *msg, char *err, size_t errlen);

/* True when a name is 1..31 printable ASCII characters, NUL-terminated within the field. */
bool disp_name_valid(const char name[DISP_NAME_MAX]);

#endif
