// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-gpu 2D commands (virtio 1.2 §5.7.6). Every field comes from the
 * guest: ids, formats, sizes, rectangles, offsets and backing pages are
 * checked (overflow-safe, in 64-bit arithmetic) before any copy, and a bad
 * command is answered with an error code, never acted upon.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../state.h"
#include "gpu.h"
#include "log.h"
#include "queue.h"
#include "util.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio-gpu structs are little-endian");

#define BPP 4

struct gpu_resource {
    struct gpu_resource *next;
    uint32_t id, format, width, height;
    uint8_t *data; /* width * height * 4, stride width * 4 */
    uint64_t bytes;
    struct iovec *backing; /* host pointers into guest RAM, checked at attach */
    unsigned nr_backing;
    uint64_t backing_len;
};

/*
 * Everything the guest makes hv-vmm allocate counts against one cap
 * (GPU_MAX_HOST_BYTES): resource pixels, backing arrays (up to 1 MiB each)
 * and the scanout memfd. Without the arrays, 4096 tiny resources with 65536
 * entries each would cost 4 GiB.
 */
static bool charge(struct gpu_state *g, uint64_t bytes)
{
    if (bytes > GPU_MAX_HOST_BYTES - g->host_bytes)
        return false;
    g->host_bytes += bytes;
    return true;
}

static uint64_t backing_bytes(unsigned nr)
{
    return (uint64_t)nr * sizeof(struct iovec);
}

static void drop_backing(struct gpu_state *g, struct gpu_resource *r)
{
    g->host_bytes -= backing_bytes(r->nr_backing);
    free(r->backing);
    r->backing = NULL;
    r->nr_backing = 0;
    r->backing_len = 0;
}

/* Response: the header, then at most an EDID blob (the largest body). */
struct gpu_resp {
    struct virtio_gpu_ctrl_hdr hdr;
    uint8_t body[sizeof(struct virtio_gpu_resp_edid) - sizeof(struct virtio_gpu_ctrl_hdr)];
};

void gpu_state_init(struct gpu_state *g, const char *name, const struct guest_mem *mem,
                    uint32_t panel_width, uint32_t panel_height)
{
    memset(g, 0, sizeof(*g));
    g->name = name;
    g->mem = mem;
    g->panel_width = panel_width;
    g->panel_height = panel_height;
    g->scanout_fd = -1;
}

static void unmap_scanout(struct gpu_state *g)
{
    if (g->scanout_map) {
        munmap(g->scanout_map, (size_t)g->map_w * g->map_h * BPP);
        g->host_bytes -= (uint64_t)g->map_w * g->map_h * BPP;
    }
    if (g->scanout_fd >= 0)
        close(g->scanout_fd);
    g->scanout_map = NULL;
    g->scanout_fd = -1;
    g->map_w = g->map_h = 0;
}

static void free_resource(struct gpu_state *g, struct gpu_resource *r)
{
    drop_backing(g, r);
    g->host_bytes -= r->bytes;
    g->nr_resources--;
    free(r->data);
    free(r);
}

void gpu_state_reset(struct gpu_state *g)
{
    while (g->resources) {
        struct gpu_resource *r = g->resources;
        g->resources = r->next;
        free_resource(g, r);
    }
    if (g->scanout_res && g->sink.blank)
        g->sink.blank(g->sink.ctx);
    g->scanout_res = 0;
    unmap_scanout(g);
    g->logged_bad = false;
}

static void bad(struct gpu_state *g, const char *why, uint32_t v)
{
    if (!g->logged_bad)
        log_warn("%s: refused a guest command: %s (%u); further ones are not logged", g->name, why,
                 v);
    g->logged_bad = true;
}

static struct gpu_resource *find(struct gpu_state *g, uint32_t id)
{
    for (struct gpu_resource *r = g->resources; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

/* Byte positions of red, green and blue in a pixel of this format; false if unknown. */
static bool format_layout(uint32_t format, uint8_t pos[3])
{
    static const struct {
        uint32_t format;
        uint8_t r, g, b;
    } tab[] = {
        {VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 2, 1, 0}, {VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2, 1, 0},
        {VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, 1, 2, 3}, {VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 1, 2, 3},
        {VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 0, 1, 2}, {VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, 3, 2, 1},
        {VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 3, 2, 1}, {VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, 0, 1, 2},
    };
    for (size_t i = 0; i < ARRAY_SIZE(tab); i++) {
        if (tab[i].format == format) {
            pos[0] = tab[i].r, pos[1] = tab[i].g, pos[2] = tab[i].b;
            return true;
        }
    }
    return false;
}

/* x + w <= limit_w and y + h <= limit_h, without overflow. */
static bool rect_inside(const struct virtio_gpu_rect *r, uint32_t limit_w, uint32_t limit_h)
{
    return range_within(r->x, r->width, limit_w) && range_within(r->y, r->height, limit_h);
}

/* Read the body that follows the header; false when the request is too short. */
static bool body(const struct iovec *iov, unsigned nr_out, void *buf, size_t len)
{
    size_t h = sizeof(struct virtio_gpu_ctrl_hdr);
    return iov_to_buf(iov, nr_out, h, (uint8_t *)buf + h, len - h) == len - h;
}

static uint32_t create_2d(struct gpu_state *g, const struct virtio_gpu_resource_create_2d *c)
{
    uint8_t pos[3];
    if (!c->resource_id || find(g, c->resource_id))
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    if (!format_layout(c->format, pos)) {
        bad(g, "unknown resource format", c->format);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    if (!c->width || !c->height || c->width > GPU_MAX_DIM || c->height > GPU_MAX_DIM) {
        bad(g, "resource size out of range", MAX(c->width, c->height));
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    uint64_t bytes = (uint64_t)c->width * c->height * BPP;
    if (g->nr_resources >= GPU_MAX_RESOURCES || !charge(g, bytes)) {
        bad(g, "resource memory cap reached, MiB asked", (uint32_t)(bytes >> 20));
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    struct gpu_resource *r = calloc(1, sizeof(*r));
    uint8_t *data = r ? calloc(1, bytes) : NULL;
    if (!data) {
        free(r);
        g->host_bytes -= bytes;
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    *r = (struct gpu_resource){.next = g->resources,
                               .id = c->resource_id,
                               .format = c->format,
                               .width = c->width,
                               .height = c->height,
                               .data = data,
                               .bytes = bytes};
    g->resources = r;
    g->nr_resources++;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t unref(struct gpu_state *g, uint32_t id)
{
    for (struct gpu_resource **p = &g->resources; *p; p = &(*p)->next) {
        struct gpu_resource *r = *p;
        if (r->id != id)
            continue;
        *p = r->next;
        if (g->scanout_res == id)
            g->scanout_res = 0; /* the memfd keeps the last picture */
        free_resource(g, r);
        return VIRTIO_GPU_RESP_OK_NODATA;
    }
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
}

static uint32_t attach_backing(struct gpu_state *g, const struct iovec *iov, unsigned nr_out,
                               const struct virtio_gpu_resource_attach_backing *a)
{
    struct gpu_resource *r = find(g, a->resource_id);
    if (!r)
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    if (r->backing)
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    if (!a->nr_entries || a->nr_entries > GPU_MAX_ENTRIES) {
        bad(g, "backing entries", a->nr_entries);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    size_t off = sizeof(*a), need = (size_t)a->nr_entries * sizeof(struct virtio_gpu_mem_entry);
    if (iov_total(iov, nr_out) < off + need)
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    if (!charge(g, backing_bytes(a->nr_entries))) {
        bad(g, "resource memory cap reached by backing entries", a->nr_entries);
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    struct iovec *b = calloc(a->nr_entries, sizeof(*b));
    if (!b) {
        g->host_bytes -= backing_bytes(a->nr_entries);
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < a->nr_entries; i++) {
        struct virtio_gpu_mem_entry e;
        iov_to_buf(iov, nr_out, off + i * sizeof(e), &e, sizeof(e));
        void *p = guest_mem_ptr(g->mem, e.addr, e.length);
        if (!p) {
            bad(g, "backing page outside guest RAM, entry", i);
            free(b);
            g->host_bytes -= backing_bytes(a->nr_entries);
            return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        }
        b[i] = (struct iovec){p, e.length};
        total += e.length;
    }
    if (total < r->bytes) {
        bad(g, "backing shorter than the resource, KiB", (uint32_t)(total >> 10));
        free(b);
        g->host_bytes -= backing_bytes(a->nr_entries);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    r->backing = b;
    r->nr_backing = a->nr_entries;
    r->backing_len = total;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t detach_backing(struct gpu_state *g, uint32_t id)
{
    struct gpu_resource *r = find(g, id);
    if (!r)
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    if (!r->backing)
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    drop_backing(g, r);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

/* A cursor walking the backing forwards, so that row after row costs O(rows + entries). */
struct bcur {
    unsigned i;
    uint64_t base; /* backing offset of entry i */
};

static void backing_read(const struct gpu_resource *r, struct bcur *c, uint64_t off, uint8_t *dst,
                         size_t len)
{
    while (len) {
        while (c->i < r->nr_backing && off >= c->base + r->backing[c->i].iov_len)
            c->base += r->backing[c->i++].iov_len;
        if (c->i == r->nr_backing)
            return; /* cannot happen: the caller checked against backing_len */
        size_t in = (size_t)(off - c->base), k = MIN(len, r->backing[c->i].iov_len - in);
        memcpy(dst, (uint8_t *)r->backing[c->i].iov_base + in, k);
        dst += k, off += k, len -= k;
    }
}

static uint32_t transfer(struct gpu_state *g, const struct virtio_gpu_transfer_to_host_2d *t)
{
    struct gpu_resource *r = find(g, t->resource_id);
    if (!r)
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    if (!r->backing)
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    if (!rect_inside(&t->r, r->width, r->height)) {
        bad(g, "transfer rectangle outside the resource, x", t->r.x);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    if (!t->r.width || !t->r.height)
        return VIRTIO_GPU_RESP_OK_NODATA;
    uint64_t stride = (uint64_t)r->width * BPP, row = (uint64_t)t->r.width * BPP;
    /* The last byte read is offset + stride * (h - 1) + row: all terms < 2^40. */
    if (t->offset > r->backing_len ||
        stride * (t->r.height - 1) + row > r->backing_len - t->offset) {
        bad(g, "transfer beyond the backing, offset", (uint32_t)t->offset);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    struct bcur c = {0};
    for (uint32_t h = 0; h < t->r.height; h++)
        backing_read(r, &c, t->offset + stride * h,
                     r->data + (t->r.y + h) * stride + (uint64_t)t->r.x * BPP, row);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Copy [x, x+w) x [y, y+h) of the scanout (its own coordinates) into the memfd. */
static void scanout_copy(struct gpu_state *g, const struct gpu_resource *r, uint32_t x, uint32_t y,
                         uint32_t w, uint32_t h)
{
    uint8_t pos[3] = {2, 1, 0};
    format_layout(r->format, pos);
    bool same = pos[0] == 2 && pos[1] == 1 && pos[2] == 0; /* already XRGB8888 */
    uint64_t sstride = (uint64_t)r->width * BPP, dstride = (uint64_t)g->map_w * BPP;
    for (uint32_t j = y; j < y + h; j++) {
        const uint8_t *s = r->data + (g->sy + j) * sstride + (uint64_t)(g->sx + x) * BPP;
        uint8_t *d = g->scanout_map + j * dstride + (uint64_t)x * BPP;
        if (same) {
            memcpy(d, s, (size_t)w * BPP);
            continue;
        }
        for (uint32_t i = 0; i < w; i++, s += BPP, d += BPP) {
            d[0] = s[pos[2]];
            d[1] = s[pos[1]];
            d[2] = s[pos[0]];
            d[3] = 0xff;
        }
    }
}

static int new_surface(struct gpu_state *g, uint32_t w, uint32_t h)
{
    unmap_scanout(g);
    size_t size = (size_t)w * h * BPP;
    if (!charge(g, size))
        return -ENOMEM;
    int fd = memfd_create("hv-scanout", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        g->host_bytes -= size;
        return -errno;
    }
    void *map = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
        (map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        int err = -errno;
        close(fd);
        g->host_bytes -= size;
        return err;
    }
    g->scanout_fd = fd;
    g->scanout_map = map;
    g->map_w = w;
    g->map_h = h;
    return 0;
}

static uint32_t set_scanout(struct gpu_state *g, const struct virtio_gpu_set_scanout *s)
{
    if (s->scanout_id != 0)
        return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
    if (!s->resource_id) {
        if (g->scanout_res && g->sink.blank)
            g->sink.blank(g->sink.ctx);
        g->scanout_res = 0;
        return VIRTIO_GPU_RESP_OK_NODATA;
    }
    struct gpu_resource *r = find(g, s->resource_id);
    if (!r)
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    if (!s->r.width || !s->r.height || s->r.width > GPU_MAX_SCANOUT ||
        s->r.height > GPU_MAX_SCANOUT || !rect_inside(&s->r, r->width, r->height)) {
        bad(g, "scanout rectangle refused, width", s->r.width);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    bool resized = s->r.width != g->map_w || s->r.height != g->map_h;
    if (resized) {
        int err = new_surface(g, s->r.width, s->r.height);
        if (err < 0) {
            log_warn("%s: cannot make a %ux%u scanout: %s", g->name, s->r.width, s->r.height,
                     strerror(-err));
            g->scanout_res = 0;
            return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        }
    }
    g->scanout_res = r->id;
    g->sx = s->r.x, g->sy = s->r.y, g->sw = s->r.width, g->sh = s->r.height;
    scanout_copy(g, r, 0, 0, g->sw, g->sh);
    if (resized && g->sink.scanout)
        g->sink.scanout(g->sink.ctx, g->scanout_fd, g->sw, g->sh, g->sw * BPP);
    else if (!resized && g->sink.damage)
        g->sink.damage(g->sink.ctx, 0, 0, g->sw, g->sh);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t flush(struct gpu_state *g, const struct virtio_gpu_resource_flush *f)
{
    struct gpu_resource *r = find(g, f->resource_id);
    if (!r)
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    if (!rect_inside(&f->r, r->width, r->height)) {
        bad(g, "flush rectangle outside the resource, x", f->r.x);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    if (g->scanout_res != r->id || !g->scanout_map)
        return VIRTIO_GPU_RESP_OK_NODATA;
    /* Intersect with the scanout's rectangle, then move to its coordinates. */
    uint64_t x0 = MAX(f->r.x, g->sx), y0 = MAX(f->r.y, g->sy);
    uint64_t x1 = MIN((uint64_t)f->r.x + f->r.width, (uint64_t)g->sx + g->sw);
    uint64_t y1 = MIN((uint64_t)f->r.y + f->r.height, (uint64_t)g->sy + g->sh);
    if (x0 >= x1 || y0 >= y1)
        return VIRTIO_GPU_RESP_OK_NODATA;
    uint32_t x = (uint32_t)(x0 - g->sx), y = (uint32_t)(y0 - g->sy);
    uint32_t w = (uint32_t)(x1 - x0), h = (uint32_t)(y1 - y0);
    scanout_copy(g, r, x, y, w, h);
    if (g->sink.damage)
        g->sink.damage(g->sink.ctx, x, y, w, h);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cursor(struct gpu_state *g, const struct virtio_gpu_update_cursor *c, bool update)
{
    if (c->pos.scanout_id != 0)
        return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
    if (update && c->resource_id) {
        struct gpu_resource *r = find(g, c->resource_id);
        if (!r)
            return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        if (r->width != 64 || r->height != 64)
            return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    /* hv-switch draws the host pointer; the guest cursor is only tracked. */
    g->cursor_x = c->pos.x;
    g->cursor_y = c->pos.y;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Fill resp for one command; returns the response length. */
static size_t dispatch(struct gpu_state *g, const struct iovec *iov, unsigned nr_out,
                       const struct virtio_gpu_ctrl_hdr *hdr, struct gpu_resp *resp)
{
    union {
        struct virtio_gpu_resource_create_2d create;
        struct virtio_gpu_resource_unref unref;
        struct virtio_gpu_resource_attach_backing attach;
        struct virtio_gpu_resource_detach_backing detach;
        struct virtio_gpu_set_scanout scanout;
        struct virtio_gpu_transfer_to_host_2d transfer;
        struct virtio_gpu_resource_flush flush;
        struct virtio_gpu_cmd_get_edid edid;
        struct virtio_gpu_update_cursor cursor;
    } u;
    uint32_t *type = &resp->hdr.type;
    size_t len = sizeof(resp->hdr);

#define BODY(field) body(iov, nr_out, &u.field, sizeof(u.field))
    switch (hdr->type) {
    case VIRTIO_GPU_CMD_GET_DISPLAY_INFO: {
        struct virtio_gpu_resp_display_info *di = (void *)resp;
        memset(di->pmodes, 0, sizeof(di->pmodes));
        di->pmodes[0].r.width = g->panel_width;
        di->pmodes[0].r.height = g->panel_height;
        di->pmodes[0].enabled = 1;
        *type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
        return sizeof(*di);
    }
    case VIRTIO_GPU_CMD_GET_EDID:
        if (!BODY(edid))
            break;
        if (u.edid.scanout != 0) {
            *type = VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
            return len;
        }
        struct virtio_gpu_resp_edid *e = (void *)resp;
        memset(e->edid, 0, sizeof(e->edid));
        e->size = GPU_EDID_BYTES;
        e->padding = 0;
        gpu_edid_build(e->edid, g->panel_width, g->panel_height);
        *type = VIRTIO_GPU_RESP_OK_EDID;
        return sizeof(*e);
    case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
        if (BODY(create))
            *type = create_2d(g, &u.create);
        return len;
    case VIRTIO_GPU_CMD_RESOURCE_UNREF:
        if (BODY(unref))
            *type = unref(g, u.unref.resource_id);
        return len;
    case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
        if (BODY(attach))
            *type = attach_backing(g, iov, nr_out, &u.attach);
        return len;
    case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
        if (BODY(detach))
            *type = detach_backing(g, u.detach.resource_id);
        return len;
    case VIRTIO_GPU_CMD_SET_SCANOUT:
        if (BODY(scanout))
            *type = set_scanout(g, &u.scanout);
        return len;
    case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
        if (BODY(transfer))
            *type = transfer(g, &u.transfer);
        return len;
    case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
        if (BODY(flush))
            *type = flush(g, &u.flush);
        return len;
    case VIRTIO_GPU_CMD_UPDATE_CURSOR:
    case VIRTIO_GPU_CMD_MOVE_CURSOR:
        if (BODY(cursor))
            *type = cursor(g, &u.cursor, hdr->type == VIRTIO_GPU_CMD_UPDATE_CURSOR);
        return len;
    default:
        bad(g, "unknown command", hdr->type);
        break;
    }
#undef BODY
    return len; /* ERR_UNSPEC, set by the caller */
}

uint32_t gpu_process(struct gpu_state *g, const struct iovec *iov, unsigned nr_out, unsigned nr_in)
{
    struct gpu_resp resp;
    struct virtio_gpu_ctrl_hdr hdr;
    memset(&resp.hdr, 0, sizeof(resp.hdr));
    resp.hdr.type = VIRTIO_GPU_RESP_ERR_UNSPEC;
    size_t len = sizeof(resp.hdr);

    if (iov_to_buf(iov, nr_out, 0, &hdr, sizeof(hdr)) == sizeof(hdr)) {
        len = dispatch(g, iov, nr_out, &hdr, &resp);
        /* Commands complete before we answer, so a fence is signalled at once. */
        resp.hdr.flags = hdr.flags & (VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX);
        resp.hdr.fence_id = hdr.fence_id;
        resp.hdr.ctx_id = hdr.ctx_id;
        resp.hdr.ring_idx = hdr.ring_idx;
    }
    return (uint32_t)iov_from_buf(iov + nr_out, nr_in, 0, &resp, len);
}

/* ---- save and restore (docs/device-model.md) ---- */

/* The guest-physical address of a backing entry (attach_backing checked it is in RAM). */
static uint64_t backing_gpa(const struct gpu_state *g, const struct iovec *v)
{
    uintptr_t p = (uintptr_t)v->iov_base;
    for (unsigned i = 0; i < g->mem->nr_regions; i++) {
        const struct mem_region *m = &g->mem->regions[i];
        uintptr_t b = (uintptr_t)m->hva;
        if (p >= b && p - b < m->size)
            return m->gpa + (p - b);
    }
    return UINT64_MAX; /* cannot happen; refused on load */
}

/*
 * Each resource with its pixels (a 2D resource's content may exist only
 * here, once its backing is detached) and its backing as guest-physical
 * entries; the scanout's resource and rectangle; the cursor position.
 */
int gpu_state_save(struct gpu_state *g, struct state_out *out)
{
    state_put_u32(out, g->nr_resources);
    for (struct gpu_resource *r = g->resources; r; r = r->next) {
        state_put_u32(out, r->id);
        state_put_u32(out, r->format);
        state_put_u32(out, r->width);
        state_put_u32(out, r->height);
        state_put_u32(out, r->nr_backing);
        for (unsigned i = 0; i < r->nr_backing; i++) {
            state_put_u64(out, backing_gpa(g, &r->backing[i]));
            state_put_u32(out, (uint32_t)r->backing[i].iov_len);
        }
        state_put_bytes(out, r->data, r->bytes);
    }
    state_put_u32(out, g->scanout_res);
    state_put_u32(out, g->sx);
    state_put_u32(out, g->sy);
    state_put_u32(out, g->sw);
    state_put_u32(out, g->sh);
    state_put_u32(out, g->cursor_x);
    state_put_u32(out, g->cursor_y);
    return out->failed ? -1 : 0;
}

/* One resource, appended at *tail: checked as create_2d and attach_backing check. */
static int load_resource(struct gpu_state *g, struct state_in *in, struct gpu_resource ***tail)
{
    uint8_t pos[3];
    uint32_t id = state_get_u32(in), format = state_get_u32(in);
    uint32_t width = state_get_u32(in), height = state_get_u32(in), nr = state_get_u32(in);
    if (!state_in_ok(in))
        return -1;
    if (!id || find(g, id))
        return state_in_fail(in, "a resource has the id %u, which is 0 or taken", id);
    if (!format_layout(format, pos))
        return state_in_fail(in, "resource %u has format %u, which this device does not know", id,
                             format);
    if (!width || !height || width > GPU_MAX_DIM || height > GPU_MAX_DIM)
        return state_in_fail(in, "resource %u is %ux%u, outside 1..%u", id, width, height,
                             GPU_MAX_DIM);
    if (nr > GPU_MAX_ENTRIES)
        return state_in_fail(in, "resource %u has %u backing entries, more than %u", id, nr,
                             GPU_MAX_ENTRIES);
    uint64_t bytes = (uint64_t)width * height * BPP;
    /* Before allocating: a short section must not make us allocate what it claims. */
    if ((uint64_t)nr * 12 + bytes > in->len - in->pos)
        return state_in_fail(in, "the section ends inside resource %u", id);
    if (!charge(g, bytes))
        return state_in_fail(in, "resource %u passes the GPU memory cap of %u MiB", id,
                             GPU_MAX_HOST_BYTES >> 20);
    struct gpu_resource *r = calloc(1, sizeof(*r));
    uint8_t *data = r ? malloc(bytes) : NULL;
    if (!data) {
        free(r);
        g->host_bytes -= bytes;
        return state_in_fail(in, "out of memory for resource %u", id);
    }
    *r = (struct gpu_resource){
        .id = id, .format = format, .width = width, .height = height, .data = data, .bytes = bytes};
    **tail = r; /* from here free_resource() undoes it all */
    *tail = &r->next;
    g->nr_resources++;

    if (nr) {
        if (!charge(g, backing_bytes(nr)))
            return state_in_fail(in, "the backing of resource %u passes the GPU memory cap", id);
        r->backing = calloc(nr, sizeof(*r->backing));
        if (!r->backing) {
            g->host_bytes -= backing_bytes(nr);
            return state_in_fail(in, "out of memory for resource %u", id);
        }
        r->nr_backing = nr;
    }
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t gpa = state_get_u64(in);
        uint32_t len = state_get_u32(in);
        void *p = guest_mem_ptr(g->mem, gpa, len);
        if (!state_in_ok(in))
            return -1;
        if (!p)
            return state_in_fail(in,
                                 "backing entry %u of resource %u (%u bytes at %#llx) is "
                                 "outside guest RAM",
                                 i, id, len, (unsigned long long)gpa);
        r->backing[i] = (struct iovec){p, len};
        r->backing_len += len;
    }
    if (nr && r->backing_len < bytes)
        return state_in_fail(in, "the backing of resource %u is shorter than its pixels", id);
    state_get_bytes(in, data, bytes);
    return state_in_ok(in) ? 0 : -1;
}

int gpu_state_load(struct gpu_state *g, struct state_in *in)
{
    gpu_state_reset(g);
    uint32_t n = state_get_u32(in);
    if (state_in_ok(in) && n > GPU_MAX_RESOURCES)
        state_in_fail(in, "%u resources, more than %u", n, GPU_MAX_RESOURCES);
    struct gpu_resource **tail = &g->resources;
    for (uint32_t i = 0; i < n && state_in_ok(in); i++)
        load_resource(g, in, &tail);
    uint32_t res = state_get_u32(in);
    struct virtio_gpu_rect rect; /* one read after the other: not in an initialiser list */
    rect.x = state_get_u32(in);
    rect.y = state_get_u32(in);
    rect.width = state_get_u32(in);
    rect.height = state_get_u32(in);
    g->cursor_x = state_get_u32(in);
    g->cursor_y = state_get_u32(in);
    struct gpu_resource *r = res ? find(g, res) : NULL;
    if (state_in_ok(in) && res && !r)
        state_in_fail(in, "the scanout shows resource %u, which does not exist", res);
    if (state_in_ok(in) && r &&
        (!rect.width || !rect.height || rect.width > GPU_MAX_SCANOUT ||
         rect.height > GPU_MAX_SCANOUT || !rect_inside(&rect, r->width, r->height)))
        state_in_fail(in, "the scanout rectangle %ux%u+%u+%u does not fit resource %u", rect.width,
                      rect.height, rect.x, rect.y, res);
    if (state_in_ok(in) && r) {
        int err = new_surface(g, rect.width, rect.height);
        if (err < 0)
            state_in_fail(in, "cannot make a %ux%u scanout: %s", rect.width, rect.height,
                          strerror(-err));
    }
    if (!state_in_ok(in)) {
        gpu_state_reset(g);
        return -1;
    }
    if (!r)
        return 0; /* no scanout: hv-switch gets a surface when the guest sets one */
    g->scanout_res = res;
    g->sx = rect.x, g->sy = rect.y, g->sw = rect.width, g->sh = rect.height;
    /* The picture at once: hv-switch gets the surface as after a SET_SCANOUT. */
    scanout_copy(g, r, 0, 0, g->sw, g->sh);
    if (g->sink.scanout)
        g->sink.scanout(g->sink.ctx, g->scanout_fd, g->sw, g->sh, g->sw * BPP);
    return 0;
}
