// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-balloon (virtio 1.2 §5.5): pages the guest gives back (inflate) and
 * the free pages it reports (VIRTIO_BALLOON_F_REPORTING) are discarded from
 * guest RAM (guest_mem_discard: MADV_DONTNEED, or a hole punched in a shared
 * memfd), so the host gets the memory back; a later guest access just faults
 * in a zero page. Deflate needs no work for the same reason. The control
 * socket's "balloon" sets the target (docs/memory.md).
 */
#include "balloon.h"

#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../devices.h"
#include "../vm.h"
#include "log.h"
#include "memfloor.h"
#include "state.h"
#include "util.h"
#include "virtio.h"

#define BAL_INFLATE   0
#define BAL_DEFLATE   1
#define BAL_STATS     2
#define BAL_REPORTING 3
#define BAL_PAGE      4096
#define BAL_CFG_LEN   8

struct balloon {
    struct virtio_dev vd;
    bool logged_bad_pfn, logged_discard;
    bool stats_held; /* the driver's stats buffer, kept until we want fresh stats */
    uint16_t stats_head;
    uint64_t run_off, run_len; /* inflated pages not discarded yet: one run of RAM offsets */
};

static void discard_range(struct balloon *b, uint64_t off, uint64_t len)
{
    int r = guest_mem_discard(&b->vd.vm->mem, off, len);
    if (r < 0 && !b->logged_discard) {
        log_warn("%s: giving guest RAM back to the host failed: %s", b->vd.name, strerror(-r));
        b->logged_discard = true;
    }
}

/* Give [hva, hva + len) (inside RAM: checked by the caller) back to the host, whole pages. */
static void discard(struct balloon *b, void *hva, uint64_t len)
{
    const struct guest_mem *mem = &b->vd.vm->mem;
    uint64_t off = (uint64_t)((uint8_t *)hva - mem->base);
    uint64_t start = align_up(off, BAL_PAGE), end = (off + len) & ~(uint64_t)(BAL_PAGE - 1);
    if (end > start)
        discard_range(b, start, end - start);
}

/* Inflated pages come one by one: neighbours are given back as one range. */
static void run_flush(struct balloon *b)
{
    if (b->run_len)
        discard_range(b, b->run_off, b->run_len);
    b->run_len = 0;
}

static void run_add(struct balloon *b, uint64_t off)
{
    if (b->run_len && off == b->run_off + b->run_len) {
        b->run_len += BAL_PAGE;
        return;
    }
    run_flush(b);
    b->run_off = off;
    b->run_len = BAL_PAGE;
}

/*
 * Each PFN the guest gives back must name a page of RAM: one in the PCI
 * hole, past the end of RAM or straddling a region is ignored (logged once).
 */
static int64_t inflate_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    struct balloon *b = arg;
    const struct guest_mem *mem = &vd->vm->mem;
    size_t n = (size_t)c->out_len / 4;
    for (size_t i = 0; i < n; i++) {
        uint8_t raw[4];
        iov_to_buf(c->iov, c->nr_out, 4 * i, raw, 4);
        uint64_t gpa = (uint64_t)le32_get(raw) * BAL_PAGE;
        uint8_t *p = guest_mem_ptr(mem, gpa, BAL_PAGE);
        if (!p) {
            if (!b->logged_bad_pfn)
                log_warn("%s: guest gave back page 0x%llx, which is not RAM; ignored", vd->name,
                         (unsigned long long)gpa);
            b->logged_bad_pfn = true;
            continue;
        }
        run_add(b, (uint64_t)(p - mem->base));
    }
    run_flush(b);
    return 0;
}

static int64_t deflate_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd;
    (void)c;
    (void)arg;
    return 0;
}

/* Free page reporting: each writable segment is a free range (already checked RAM). */
static int64_t report_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd;
    for (unsigned i = 0; i < c->nr_in; i++)
        discard(arg, vq_chain_in(c)[i].iov_base, vq_chain_in(c)[i].iov_len);
    return 0;
}

static int64_t stats_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    (void)vd;
    struct balloon *b = arg;
    if (b->stats_held)
        return 0; /* a second buffer: give it straight back */
    b->stats_held = true;
    b->stats_head = c->head;
    return VIRTIO_CHAIN_KEEP; /* keep it: returning it is how we would ask for fresh stats */
}

/*
 * The queues are inflateq, deflateq, then statsq only with STATS_VQ and the
 * reporting queue only with REPORTING (virtio 1.2 §5.5.2; no FREE_PAGE_HINT
 * here). A driver without STATS_VQ puts the reporting queue at 2 (Linux
 * numbers only the queues it has); 3 is served as reporting either way.
 */
static void bal_notify(struct virtio_dev *vd, unsigned q)
{
    virtio_chain_fn fn = NULL;
    bool stats = virtio_has_feature(vd, VIRTIO_BALLOON_F_STATS_VQ);
    bool reporting = virtio_has_feature(vd, VIRTIO_BALLOON_F_REPORTING);
    if (q == BAL_INFLATE)
        fn = inflate_chain;
    else if (q == BAL_DEFLATE)
        fn = deflate_chain;
    else if (q == BAL_STATS && stats)
        fn = stats_chain;
    else if ((q == BAL_STATS || q == BAL_REPORTING) && reporting)
        fn = report_chain;
    if (fn)
        virtio_serve_queue(vd, q, fn, vd->priv);
}

/*
 * A reset (the guest's driver going away, or a reboot that wiped RAM)
 * empties the balloon: actual goes back to 0. The target stays, so the next
 * driver inflates to it again.
 */
static void bal_reset(struct virtio_dev *vd)
{
    struct balloon *b = vd->priv;
    b->stats_held = false;
    memset(vd->config + 4, 0, 4);
}

/* The driver writes `actual` (offset 4); num_pages is ours. */
static void bal_config_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len)
{
    if (off >= 4 && off + len <= 8)
        memcpy(vd->config + off, data, len);
}

/*
 * The target (num_pages) and the guest's actual are the device config the
 * transport keeps. Ours: the held stats buffer, by its head. Its chain is
 * not fetched again on load: we only ever give it back, by that head.
 */
static int bal_save(struct virtio_dev *vd, struct state_out *out)
{
    struct balloon *b = vd->priv;
    state_put_bool(out, b->stats_held);
    state_put_u16(out, b->stats_held ? b->stats_head : 0);
    return 0;
}

static int bal_load(struct virtio_dev *vd, struct state_in *in)
{
    struct balloon *b = vd->priv;
    bool held = state_get_bool(in);
    uint16_t head = state_get_u16(in);
    if (!state_in_ok(in))
        return -1;
    struct virtio_queue *q = &vd->queues[BAL_STATS];
    uint16_t in_flight = (uint16_t)(q->vq.last_avail - q->vq.used_idx);
    if (in_flight != (held ? 1 : 0))
        return state_in_fail(in, "the stats queue has %u buffers in flight, the balloon holds %u",
                             in_flight, held ? 1 : 0);
    if (held && head >= q->vq.size)
        return state_in_fail(in, "the held stats buffer %u is past the queue's %u entries", head,
                             q->vq.size);
    b->stats_held = held;
    b->stats_head = held ? head : 0;
    return 0;
}

static const struct virtio_ops bal_ops = {
    .queue_notify = bal_notify,
    .save = bal_save,
    .load = bal_load,
    .reset = bal_reset,
    .config_write = bal_config_write,
};

int virtio_balloon_create(struct vm *vm)
{
    for (struct device *d = vm->devices; d; d = d->next)
        if (strcmp(d->id, "virtio-balloon") == 0) {
            log_err("a VM has one balloon device at most");
            return -EEXIST;
        }
    struct balloon *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    uint64_t f = 1ull << VIRTIO_BALLOON_F_STATS_VQ | 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM |
                 1ull << VIRTIO_BALLOON_F_REPORTING;
    int ret = virtio_dev_init(&b->vd, vm, "virtio-balloon", VIRTIO_ID_BALLOON, 4, 128, f,
                              BAL_CFG_LEN, &bal_ops, b);
    if (ret) {
        free(b);
        return ret;
    }
    return virtio_dev_start(&b->vd);
}

/* The VM's balloon, found on its device list (no state outside the VM). */
static struct balloon *find(struct vm *vm)
{
    for (struct device *d = vm->devices; d; d = d->next) {
        struct virtio_dev *vd = d->priv;
        if (strcmp(d->id, "virtio-balloon") == 0 && vd && vd->ops == &bal_ops)
            return vd->priv;
    }
    return NULL;
}

int virtio_balloon_set_target(struct vm *vm, uint64_t bytes)
{
    struct balloon *b = find(vm);
    if (!b)
        return -ENODEV;
    uint8_t v[4];
    le32_put(v, (uint32_t)MIN(bytes / BAL_PAGE, UINT32_MAX));
    virtio_config_update(&b->vd, 0, v, 4);
    return 0;
}

int virtio_balloon_get_actual(struct vm *vm, uint64_t *bytes)
{
    struct balloon *b = find(vm);
    if (!b)
        return -ENODEV;
    pthread_mutex_lock(&b->vd.lock);
    *bytes = (uint64_t)le32_get(b->vd.config + 4) * BAL_PAGE;
    pthread_mutex_unlock(&b->vd.lock);
    return 0;
}

static void mib(char *buf, size_t len, uint64_t bytes)
{
    if (bytes % MiB)
        snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes / MiB));
}

int virtio_balloon_request(struct vm *vm, uint64_t target, char *err, size_t errlen)
{
    struct balloon *b = find(vm);
    uint64_t memory = vm->mem.size, floor = hv_memory_floor(memory);
    char t[32], m[32], f[32];
    mib(t, sizeof(t), target);
    mib(m, sizeof(m), memory);
    mib(f, sizeof(f), floor);
    if (!b) {
        snprintf(err, errlen,
                 "this VM has no balloon device (none with --pci: its RAM is pinned "
                 "for the device's DMA)");
        return -1;
    }
    if (target > memory) {
        snprintf(err, errlen,
                 "target %s is more than the VM's memory (%s): a balloon only gives "
                 "back memory the VM was started with",
                 t, m);
        return -1;
    }
    if (target < floor) {
        snprintf(err, errlen,
                 "target %s is below the least this VM may keep, %s (128 MiB or an "
                 "eighth of its %s, whichever is more)",
                 t, f, m);
        return -1;
    }
    uint64_t pages = (memory - (target & ~(uint64_t)(BAL_PAGE - 1))) / BAL_PAGE;
    return virtio_balloon_set_target(vm, pages * BAL_PAGE) < 0 ? -1 : 0;
}

void virtio_balloon_info(struct vm *vm, struct balloon_info *info)
{
    struct balloon *b = find(vm);
    memset(info, 0, sizeof(*info));
    info->memory = info->target = info->actual = vm->mem.size;
    if (!b)
        return;
    pthread_mutex_lock(&b->vd.lock);
    /* Both are the guest's to read (num_pages) or write (actual): clamp them to RAM. */
    uint64_t want = (uint64_t)le32_get(b->vd.config) * BAL_PAGE;
    uint64_t given = (uint64_t)le32_get(b->vd.config + 4) * BAL_PAGE;
    info->driver = b->vd.status & VIRTIO_CONFIG_S_DRIVER_OK;
    pthread_mutex_unlock(&b->vd.lock);
    info->present = true;
    info->target = vm->mem.size - MIN(want, vm->mem.size);
    info->actual = vm->mem.size - MIN(given, vm->mem.size);
}
