// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-balloon (virtio 1.2 §5.5): pages the guest gives back (inflate) and
 * the free pages it reports (VIRTIO_BALLOON_F_REPORTING) are punched out of
 * the RAM memfd, so the host gets the memory back; a later guest access just
 * faults in a zero page. Deflate needs no work for the same reason.
 */
#include "balloon.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../devices.h"
#include "../vm.h"
#include "log.h"
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
    bool logged_bad_pfn;
    bool stats_held; /* the driver's stats buffer, kept until we want fresh stats */
    uint16_t stats_head;
};

static struct balloon *the_balloon; /* one per VM, one VM per process */

/* Give [hva, hva + len) back to the host: punch it out of the memfd. */
static void discard(struct balloon *b, void *hva, uint64_t len)
{
    const struct guest_mem *mem = &b->vd.vm->mem;
    uint64_t off = (uint64_t)((uint8_t *)hva - mem->base);
    uint64_t start = align_up(off, BAL_PAGE), end = (off + len) & ~(uint64_t)(BAL_PAGE - 1);
    if (end <= start)
        return;
    if (fallocate(mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
                  (off_t)(end - start)) < 0)
        log_debug("%s: punching guest RAM failed: %s", b->vd.name, strerror(errno));
    /* A page that maps a save file privately (--instant-on): drop our copy of it. */
    if (mem->file_mapped)
        madvise(mem->base + start, end - start, MADV_DONTNEED);
}

static int64_t inflate_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    struct balloon *b = arg;
    size_t n = (size_t)c->out_len / 4;
    for (size_t i = 0; i < n; i++) {
        uint8_t raw[4];
        iov_to_buf(c->iov, c->nr_out, 4 * i, raw, 4);
        uint64_t gpa = (uint64_t)le32_get(raw) * BAL_PAGE;
        void *p = guest_mem_ptr(&vd->vm->mem, gpa, BAL_PAGE);
        if (!p) {
            if (!b->logged_bad_pfn)
                log_warn("%s: guest gave back page 0x%llx, which is not RAM; ignored", vd->name,
                         (unsigned long long)gpa);
            b->logged_bad_pfn = true;
            continue;
        }
        discard(b, p, BAL_PAGE);
    }
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

static void bal_notify(struct virtio_dev *vd, unsigned q)
{
    static const virtio_chain_fn fns[] = {inflate_chain, deflate_chain, stats_chain, report_chain};
    if (q < ARRAY_SIZE(fns))
        virtio_serve_queue(vd, q, fns[q], vd->priv);
}

static void bal_reset(struct virtio_dev *vd)
{
    struct balloon *b = vd->priv;
    b->stats_held = false;
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
    if (the_balloon) {
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
    if ((ret = virtio_dev_start(&b->vd)))
        return ret;
    the_balloon = b;
    return 0;
}

int virtio_balloon_set_target(struct vm *vm, uint64_t bytes)
{
    (void)vm;
    if (!the_balloon)
        return -ENODEV;
    uint8_t v[4];
    le32_put(v, (uint32_t)MIN(bytes / BAL_PAGE, UINT32_MAX));
    virtio_config_update(&the_balloon->vd, 0, v, 4);
    return 0;
}

int virtio_balloon_get_actual(struct vm *vm, uint64_t *bytes)
{
    (void)vm;
    if (!the_balloon)
        return -ENODEV;
    pthread_mutex_lock(&the_balloon->vd.lock);
    *bytes = (uint64_t)le32_get(the_balloon->vd.config + 4) * BAL_PAGE;
    pthread_mutex_unlock(&the_balloon->vd.lock);
    return 0;
}
