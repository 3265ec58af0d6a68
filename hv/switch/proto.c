/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "proto.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(struct disp_hello) == 20 + DISP_NAME_MAX, "hello layout");
_Static_assert(sizeof(struct disp_scanout) == 32, "scanout layout");
_Static_assert(sizeof(struct disp_damage) == 20, "damage layout");
_Static_assert(sizeof(struct disp_stats) <= DISP_MAX_MSG, "stats fit a datagram");

bool disp_name_valid(const char name[DISP_NAME_MAX])
{
    size_t i;

    for (i = 0; i < DISP_NAME_MAX && name[i]; i++) {
        if (name[i] < 0x20 || name[i] > 0x7e)
            return false;
    }
    return i > 0 && i < DISP_NAME_MAX && name[0] != ' ';
}

static size_t expected_size(uint32_t type)
{
    switch (type) {
    case DISP_HELLO:
        return sizeof(struct disp_hello);
    case DISP_SCANOUT:
        return sizeof(struct disp_scanout);
    case DISP_DAMAGE:
        return sizeof(struct disp_damage);
    case DISP_BLANK:
        return sizeof(struct disp_blank);
    case DISP_STATS_REQ:
        return sizeof(struct disp_stats_req);
    default:
        return 0;
    }
}

static int parse_hello(const struct disp_hello *h, char *err, size_t errlen)
{
    if (h->version != DISP_VERSION)
        return hv_fail(err, errlen, "hello: protocol version %u, hv-switch speaks %u", h->version,
                       DISP_VERSION);
    if (h->flags & ~DISP_HELLO_UIVM)
        return hv_fail(err, errlen, "hello: unknown flags 0x%x", h->flags);
    if (h->slot > 9)
        return hv_fail(err, errlen, "hello: slot %u is not 0..9", h->slot);
    if (h->colour > 0xffffff)
        return hv_fail(err, errlen, "hello: colour 0x%x is not 0xRRGGBB", h->colour);
    if (!disp_name_valid(h->name))
        return hv_fail(err, errlen, "hello: the name must be 1..%d printable ASCII characters",
                       DISP_NAME_MAX - 1);
    return 0;
}

static int parse_scanout(const struct disp_scanout *s, char *err, size_t errlen)
{
    if (s->width == 0 || s->height == 0 || s->width > DISP_MAX_DIM || s->height > DISP_MAX_DIM)
        return hv_fail(err, errlen, "scanout: size %ux%u is not within 1x1..%ux%u", s->width,
                       s->height, DISP_MAX_DIM, DISP_MAX_DIM);
    if (s->format != DISP_FORMAT_XRGB8888)
        return hv_fail(err, errlen, "scanout: format 0x%08x is not XRGB8888", s->format);
    if (s->stride % 4 || s->stride < (uint64_t)s->width * 4)
        return hv_fail(err, errlen, "scanout: stride %u is not a multiple of 4 of at least %u",
                       s->stride, s->width * 4);
    if ((uint64_t)s->stride * s->height > DISP_MAX_BYTES)
        return hv_fail(err, errlen, "scanout: %u lines of %u bytes exceed %u MiB", s->height,
                       s->stride, DISP_MAX_BYTES >> 20);
    if (s->offset % 4096)
        return hv_fail(err, errlen, "scanout: offset %llu is not page-aligned",
                       (unsigned long long)s->offset);
    if (s->reserved)
        return hv_fail(err, errlen, "scanout: reserved field is not 0");
    return 0;
}

int disp_parse(const void *buf, size_t len, int nfds, struct disp_msg *out, char *err,
               size_t errlen)
{
    uint32_t type;
    size_t want;

    if (len < sizeof(type))
        return hv_fail(err, errlen, "message of %zu bytes has no type", len);
    memcpy(&type, buf, sizeof(type));
    want = expected_size(type);
    if (!want)
        return hv_fail(err, errlen, "unknown message type 0x%x", type);
    if (len != want)
        return hv_fail(err, errlen, "message type 0x%x is %zu bytes, not %zu", type, len, want);
    if (nfds != (type == DISP_SCANOUT ? 1 : 0))
        return hv_fail(err, errlen, "message type 0x%x came with %d file descriptors", type, nfds);

    memset(out, 0, sizeof(*out));
    out->type = type;
    memcpy(&out->u, buf, len);
    switch (type) {
    case DISP_HELLO:
        return parse_hello(&out->u.hello, err, errlen);
    case DISP_SCANOUT:
        return parse_scanout(&out->u.scanout, err, errlen);
    case DISP_DAMAGE:
        if (out->u.damage.rect.w == 0 || out->u.damage.rect.h == 0)
            return hv_fail(err, errlen, "damage: empty rectangle");
        return 0;
    default:
        return 0;
    }
}

int disp_check_scanout(const struct disp_scanout *s, const struct disp_fdinfo *fd, char *err,
                       size_t errlen)
{
    uint64_t need = (uint64_t)s->stride * (s->height - 1) + (uint64_t)s->width * 4;

    if (!fd->regular)
        return hv_fail(err, errlen, "scanout: the descriptor is not a memfd");
    if (!fd->seal_shrink)
        return hv_fail(err, errlen, "scanout: the memfd is not sealed against shrinking");
    if (s->offset > fd->size || need > fd->size - s->offset)
        return hv_fail(err, errlen,
                       "scanout: %ux%u stride %u at offset %llu needs %llu bytes, the memfd has "
                       "%llu",
                       s->width, s->height, s->stride, (unsigned long long)s->offset,
                       (unsigned long long)(s->offset + need), (unsigned long long)fd->size);
    return 0;
}

int disp_conn_apply(struct disp_conn *c, const struct disp_msg *msg, char *err, size_t errlen)
{
    const struct disp_rect *r;

    if (c->stats)
        return hv_fail(err, errlen, "message after a stats query");
    if (msg->type == DISP_STATS_REQ) {
        if (c->hello)
            return hv_fail(err, errlen, "stats query from a display producer");
        c->stats = true;
        return 0;
    }
    if (msg->type == DISP_HELLO) {
        if (c->hello)
            return hv_fail(err, errlen, "second hello");
        c->hello = true;
        return 0;
    }
    if (!c->hello)
        return hv_fail(err, errlen, "message type 0x%x before hello", msg->type);

    switch (msg->type) {
    case DISP_SCANOUT:
        c->surface = true;
        c->width = msg->u.scanout.width;
        c->height = msg->u.scanout.height;
        return 0;
    case DISP_BLANK:
        c->surface = false;
        return 0;
    case DISP_DAMAGE:
        r = &msg->u.damage.rect;
        if (!c->surface)
            return hv_fail(err, errlen, "damage without a scanout");
        if ((uint64_t)r->x + r->w > c->width || (uint64_t)r->y + r->h > c->height)
            return hv_fail(err, errlen, "damage %ux%u+%u+%u outside the %ux%u scanout", r->w, r->h,
                           r->x, r->y, c->width, c->height);
        return 0;
    default:
        return hv_fail(err, errlen, "unexpected message type 0x%x", msg->type);
    }
}
