// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The NVMe controller (docs/nvme.md): PCI function, registers and doorbells,
 * the controller's enable/disable/shutdown, the queues and the device thread
 * that serves them, and the device interface (reset, quiesce, save, load).
 * Commands are in nvme_cmd.c.
 *
 * A vCPU's register or doorbell write only records the value (checked) under
 * the lock and kicks the device thread, so no vCPU waits for the disk. The
 * thread acts on CC, then takes commands from the submission queues in turn,
 * runs each to its end (disk I/O without the lock) and posts its completion.
 */
#include "nvme.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../block/block.h"
#include "devices.h"
#include "le.h"
#include "log.h"
#include "mem.h"
#include "nvme_int.h"
#include "state.h"
#include "util.h"
#include "vm.h"

#define NVME_VS        0x00010400u /* 1.4.0 */
#define NVME_CAP_TO    20          /* CAP.TO: 10 s, in 500 ms units */
#define CMDS_PER_ROUND 64          /* per queue, before the next queue's turn */

static unsigned nr_controllers;

static uint64_t cap_value(void)
{
    return (uint64_t)NVME_MQES | UINT64_C(1) << 16 /* CQR: contiguous queues */ |
           (uint64_t)NVME_CAP_TO << 24 | UINT64_C(1) << 37 /* CSS: the NVM command set */;
}

void nvme_kick(struct nvme *n)
{
    uint64_t one = 1;
    if (write(n->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("%s: kick eventfd write failed", n->name);
}

static void drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) == sizeof(v))
        ;
}

void nvme_features_default(struct nvme *n)
{
    n->feat = (struct nvme_features){
        .temp_over = 0x157, /* 343 K, the WCTEMP of Identify */
        .nr_sq = NVME_MAX_IOQ,
        .nr_cq = NVME_MAX_IOQ,
        .vwc = true,
    };
}

/* ---- controller reset, enable, shutdown (lock held, device thread or quiesced) ---- */

/* What CC.EN 1 -> 0 does: every queue and AER gone, not ready. Registers the host wrote stay. */
static void ctrl_reset(struct nvme *n)
{
    memset(n->sq, 0, sizeof(n->sq));
    memset(n->cq, 0, sizeof(n->cq));
    n->nr_aer = 0;
    n->aen_pending = n->aen_masked = false;
    n->running = false;
    n->csts &= ~(NVME_CSTS_RDY | NVME_CSTS_CFS);
    nvme_features_default(n);
}

/* A fatal status instead of ready: the host's enable asked for something we do not do. */
static void ctrl_fatal(struct nvme *n, const char *why)
{
    log_warn_limited("%s: the guest enabled the controller with %s; it reports a fatal status",
                     n->name, why);
    n->csts |= NVME_CSTS_CFS;
}

static bool queue_in_ram(struct nvme *n, uint64_t base, uint32_t size, unsigned entry)
{
    return (base & (NVME_PAGE - 1)) == 0 &&
           guest_mem_ptr(&n->vm->mem, base, (uint64_t)size * entry) != NULL;
}

static void ctrl_enable(struct nvme *n)
{
    uint32_t sqs = (n->aqa & 0xfff) + 1, cqs = ((n->aqa >> 16) & 0xfff) + 1;
    if (NVME_CC_MPS(n->cc) != 0)
        return ctrl_fatal(n, "a memory page size other than 4 KiB");
    if (NVME_CC_CSS(n->cc) != 0 || NVME_CC_AMS(n->cc) != 0)
        return ctrl_fatal(n, "a command set or arbitration it does not have");
    if (sqs < 2 || cqs < 2 || sqs > NVME_MQES + 1 || cqs > NVME_MQES + 1)
        return ctrl_fatal(n, "an admin queue size out of range");
    if (!queue_in_ram(n, n->asq, sqs, 64) || !queue_in_ram(n, n->acq, cqs, 16))
        return ctrl_fatal(n, "admin queues outside guest RAM");
    n->sq[0] = (struct nvme_sq){.live = true, .base = n->asq, .size = sqs};
    n->cq[0] =
        (struct nvme_cq){.live = true, .ien = true, .phase = true, .base = n->acq, .size = cqs};
    n->running = true;
    n->csts = (n->csts & ~NVME_CSTS_SHST) | NVME_CSTS_RDY;
}

/* Act on what the guest wrote into CC since the last time. */
static void apply_cc(struct nvme *n)
{
    if (n->reset_pending) {
        n->reset_pending = false;
        ctrl_reset(n);
    }
    if (!(n->cc & NVME_CC_EN)) {
        if (n->running)
            ctrl_reset(n);
    } else if (!n->running && !(n->csts & NVME_CSTS_CFS)) {
        ctrl_enable(n);
    }
    if (NVME_CC_SHN(n->cc) && (n->csts & NVME_CSTS_SHST) != NVME_SHST_DONE) {
        /* Shutdown: what the guest wrote is made durable (not under the lock). */
        pthread_mutex_unlock(&n->lock);
        int ret = n->disk.readonly ? 0 : bdev_flush(n->disk.bdev);
        pthread_mutex_lock(&n->lock);
        if (ret < 0)
            log_err("%s: cannot flush the disk image at shutdown: %s", n->name, strerror(-ret));
        n->csts = (n->csts & ~NVME_CSTS_SHST) | NVME_SHST_DONE;
    }
}

/* ---- registers ---- */

static void reg_image(struct nvme *n, uint8_t *img)
{
    memset(img, 0, NVME_REG_END);
    le64_put(img + NVME_REG_CAP, cap_value());
    le32_put(img + NVME_REG_VS, NVME_VS);
    le32_put(img + NVME_REG_INTMS, n->intms);
    le32_put(img + NVME_REG_INTMC, n->intms);
    le32_put(img + NVME_REG_CC, n->cc);
    le32_put(img + NVME_REG_CSTS, n->csts);
    le32_put(img + NVME_REG_AQA, n->aqa);
    le64_put(img + NVME_REG_ASQ, n->asq);
    le64_put(img + NVME_REG_ACQ, n->acq);
}

static void reg_write32(struct nvme *n, uint64_t off, uint32_t v)
{
    switch (off) {
    case NVME_REG_INTMS:
        n->intms |= v; /* pin-based and MSI masking: kept, there is no INTx or MSI */
        break;
    case NVME_REG_INTMC:
        n->intms &= ~v;
        break;
    case NVME_REG_CC:
        if ((n->cc & NVME_CC_EN) && !(v & NVME_CC_EN))
            n->reset_pending = true;
        n->cc = v & NVME_CC_MASK;
        nvme_kick(n);
        break;
    case NVME_REG_AQA:
        n->aqa = v & NVME_AQA_MASK;
        break;
    case NVME_REG_ASQ:
        n->asq = (n->asq & ~UINT64_C(0xffffffff)) | (v & ~(NVME_PAGE - 1));
        break;
    case NVME_REG_ASQ + 4:
        n->asq = (n->asq & 0xffffffffu) | (uint64_t)v << 32;
        break;
    case NVME_REG_ACQ:
        n->acq = (n->acq & ~UINT64_C(0xffffffff)) | (v & ~(NVME_PAGE - 1));
        break;
    case NVME_REG_ACQ + 4:
        n->acq = (n->acq & 0xffffffffu) | (uint64_t)v << 32;
        break;
    default: /* CAP, VS, CSTS, NSSR (no subsystem reset), reserved: read-only */
        break;
    }
}

/* A doorbell write: checked against the queue, else an error event (docs/nvme.md). */
static void doorbell(struct nvme *n, uint64_t off, uint32_t v)
{
    uint64_t idx = (off - NVME_DB_BASE) / 4;
    uint64_t qid = idx / 2;
    if (!n->running)
        return; /* no queue exists: nothing to tell either */
    if (qid >= NVME_NR_Q || !(idx & 1 ? n->cq[qid].live : n->sq[qid].live)) {
        nvme_aen_error(n, NVME_AEN_INVALID_DB);
    } else if (idx & 1) {
        struct nvme_cq *cq = &n->cq[qid];
        /* The new head may not pass entries the controller has not posted. */
        uint32_t used = (cq->tail + cq->size - cq->head) % cq->size;
        if (v >= cq->size || (v + cq->size - cq->head) % cq->size > used)
            nvme_aen_error(n, NVME_AEN_INVALID_DB_VALUE);
        else
            cq->head = v;
    } else if (v >= n->sq[qid].size) {
        nvme_aen_error(n, NVME_AEN_INVALID_DB_VALUE);
    } else {
        n->sq[qid].tail = v;
    }
    nvme_kick(n);
}

static void bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct nvme *n = opaque;
    uint8_t img[NVME_REG_END];

    if (!is_write)
        memset(data, 0, len);
    pthread_mutex_lock(&n->lock);
    if (off >= NVME_DB_BASE) {
        if (is_write && len == 4 && off % 4 == 0)
            doorbell(n, off, le32_get(data));
    } else if (off < NVME_REG_END && len <= NVME_REG_END - off) {
        if (!is_write) {
            reg_image(n, img);
            memcpy(data, img + off, len);
        } else if ((len == 4 || len == 8) && off % 4 == 0) {
            /* 64-bit registers may be written whole or as two halves. */
            reg_write32(n, off, le32_get(data));
            if (len == 8)
                reg_write32(n, off + 4, le32_get(data + 4));
        }
    }
    pthread_mutex_unlock(&n->lock);
}

/* ---- the queues ---- */

bool nvme_cq_full(const struct nvme_cq *cq)
{
    return (cq->tail + 1) % cq->size == cq->head;
}

void nvme_post(struct nvme *n, uint16_t cqid, uint16_t sqid, uint16_t cid, uint16_t status,
               uint32_t dw0)
{
    struct nvme_cq *cq = &n->cq[cqid];
    uint8_t e[16];
    if (!cq->live)
        return;
    uint32_t st = status ? (uint32_t)(status & 0x7ff) | 1u << 14 : 0; /* errors: DNR */
    le32_put(e, dw0);
    le32_put(e + 4, 0);
    le16_put(e + 8, (uint16_t)n->sq[sqid].head);
    le16_put(e + 10, sqid);
    le32_put(e + 12, cid | (uint32_t)cq->phase << 16 | st << 17);
    uint8_t *p = guest_mem_ptr(&n->vm->mem, cq->base + (uint64_t)cq->tail * 16, 16);
    if (!p)
        return; /* checked at creation: RAM does not shrink */
    memcpy(p, e, 12);
    /* The phase tag last: the guest may see the entry as soon as it flips. */
    __atomic_store_n((uint32_t *)(p + 12), le32_get(e + 12), __ATOMIC_RELEASE);
    if (++cq->tail == cq->size) {
        cq->tail = 0;
        cq->phase = !cq->phase;
    }
    if (cq->ien)
        msix_notify(&n->msix, cq->iv);
}

/* One command from SQ sqid, if there is one and room for its completion. Lock held. */
static bool serve_one(struct nvme *n, unsigned sqid)
{
    struct nvme_sq *sq = &n->sq[sqid];
    uint8_t raw[64];
    struct nvme_sqe c;

    if (!sq->live || sq->head == sq->tail)
        return false;
    uint16_t cqid = sq->cqid;
    if (!n->cq[cqid].live || nvme_cq_full(&n->cq[cqid]))
        return false; /* the CQ head doorbell kicks us again */
    if (guest_mem_read(&n->vm->mem, sq->base + (uint64_t)sq->head * 64, raw, 64) < 0)
        return false; /* checked at creation */
    sq->head = (sq->head + 1) % sq->size;
    nvme_sqe_decode(&c, raw);

    uint32_t dw0 = 0;
    uint16_t status;
    bool none = false;
    if (sqid == 0) {
        status = nvme_admin(n, &c, &dw0, &none);
    } else {
        pthread_mutex_unlock(&n->lock);
        status = nvme_io(n, &c);
        pthread_mutex_lock(&n->lock);
    }
    if (!none)
        nvme_post(n, cqid, (uint16_t)sqid, c.cid, status, dw0);
    return true;
}

/* Everything the guest asked for until now. Lock held. */
static void work(struct nvme *n)
{
    for (;;) {
        apply_cc(n);
        if (!n->running || !__atomic_load_n(&n->bus_master, __ATOMIC_ACQUIRE) ||
            __atomic_load_n(&n->stopping, __ATOMIC_ACQUIRE))
            return; /* what is left stays queued: the next kick serves it */
        bool progress = false;
        for (unsigned q = 0; q < NVME_NR_Q; q++) {
            for (unsigned k = 0; k < CMDS_PER_ROUND && serve_one(n, q); k++)
                progress = true;
            if (n->reset_pending || !n->running)
                break; /* the guest reset the controller meanwhile */
        }
        nvme_aen_deliver(n);
        if (!progress && !n->reset_pending)
            return;
    }
}

void nvme_run(struct nvme *n)
{
    drain(n->kick_fd);
    pthread_mutex_lock(&n->lock);
    if (!n->quiesced)
        work(n);
    pthread_mutex_unlock(&n->lock);
}

static void *device_thread(void *arg)
{
    struct nvme *n = arg;
    prctl(PR_SET_NAME, "nvme");
    for (;;) {
        struct pollfd p[2] = {{n->stop_fd, POLLIN, 0}, {n->kick_fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (p[0].revents)
            return NULL;
        if (p[1].revents)
            nvme_run(n);
    }
}

static int start_thread(struct nvme *n)
{
    int err = pthread_create(&n->thread, NULL, device_thread, n);
    if (err) {
        log_err("%s: cannot start the device thread: %s", n->name, strerror(err));
        return -err;
    }
    n->thread_running = true;
    return 0;
}

static void stop_thread(struct nvme *n)
{
    uint64_t one = 1;
    if (!n->thread_running)
        return;
    __atomic_store_n(&n->stopping, true, __ATOMIC_RELEASE);
    if (write(n->stop_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(n->thread, NULL);
    n->thread_running = false;
    __atomic_store_n(&n->stopping, false, __ATOMIC_RELEASE);
    drain(n->stop_fd);
}

/* ---- PCI ---- */

static void config_written(struct pci_device *pci, uint32_t off, uint32_t len)
{
    struct nvme *n = pci->opaque;
    msix_config_written(&n->msix, off, len);
    bool bm = pci->cfg[4] & 4;
    bool was = __atomic_exchange_n(&n->bus_master, bm, __ATOMIC_ACQ_REL);
    if (bm && !was)
        nvme_kick(n); /* what waited for bus mastering */
}

struct pci_device *nvme_pci(struct nvme *n)
{
    return &n->pci;
}

/* ---- the device interface ---- */

static void nvme_quiesce(struct device *dev)
{
    struct nvme *n = dev->priv;
    stop_thread(n);
    pthread_mutex_lock(&n->lock);
    n->quiesced = true;
    pthread_mutex_unlock(&n->lock);
}

static void nvme_resume(struct device *dev)
{
    struct nvme *n = dev->priv;
    pthread_mutex_lock(&n->lock);
    n->quiesced = false;
    pthread_mutex_unlock(&n->lock);
    /* Doorbells written meanwhile, or restored: served now. */
    nvme_kick(n);
    if (n->has_thread && !n->thread_running && start_thread(n) < 0)
        log_err("%s: the controller stops: its thread did not restart", n->name);
}

static void power_on(struct nvme *n)
{
    ctrl_reset(n);
    n->cc = n->csts = n->aqa = n->intms = 0;
    n->asq = n->acq = 0;
    n->reset_pending = false;
}

static void nvme_reset(struct device *dev)
{
    struct nvme *n = dev->priv;
    pthread_mutex_lock(&n->lock);
    power_on(n);
    drain(n->kick_fd);
    pthread_mutex_unlock(&n->lock);
    msix_reset(&n->msix);
    pci_device_reset(&n->pci);
}

static void nvme_destroy(struct device *dev)
{
    struct nvme *n = dev->priv;
    stop_thread(n);
    msix_destroy(&n->msix);
    blk_disk_close(&n->disk);
    close(n->kick_fd);
    close(n->stop_fd);
    n->kick_fd = n->stop_fd = -1;
    /* The PCI bus keeps pointing at n (pci_bus_destroy): n itself stays. */
}

/*
 * Saved after PCI config space and MSI-X: the namespace's size and mode
 * (checked against the image), the registers, the controller's state, the
 * features, the held AERs and event, the SMART counters, then each queue.
 */
static int nvme_save(struct device *dev, struct state_out *out)
{
    struct nvme *n = dev->priv;
    if (pci_device_save(&n->pci, out) < 0 || msix_save(&n->msix, out) < 0)
        return -1;
    /* Commands run whole on the thread, joined by quiesce: none in flight. */
    int ret = n->disk.readonly ? 0 : bdev_flush(n->disk.bdev);
    if (ret < 0)
        return state_fail(out, "cannot flush the disk image: %s", strerror(-ret));
    pthread_mutex_lock(&n->lock);
    state_put_u64(out, n->disk.sectors);
    state_put_bool(out, n->disk.readonly);
    state_put_u32(out, n->cc);
    state_put_u32(out, n->csts);
    state_put_u32(out, n->aqa);
    state_put_u32(out, n->intms);
    state_put_u64(out, n->asq);
    state_put_u64(out, n->acq);
    state_put_bool(out, n->reset_pending);
    state_put_bool(out, n->running);
    const struct nvme_features *f = &n->feat;
    state_put_u32(out, f->arbitration);
    state_put_u32(out, f->power);
    state_put_u32(out, f->err_recovery);
    state_put_u32(out, f->coalescing);
    state_put_u32(out, f->write_atomic);
    state_put_u32(out, f->async_cfg);
    state_put_u16(out, f->temp_over);
    state_put_u16(out, f->temp_under);
    state_put_u16(out, f->nr_sq);
    state_put_u16(out, f->nr_cq);
    state_put_bool(out, f->vwc);
    state_put_u8(out, n->nr_aer);
    for (unsigned i = 0; i < n->nr_aer; i++)
        state_put_u16(out, n->aer_cid[i]);
    state_put_bool(out, n->aen_pending);
    state_put_bool(out, n->aen_masked);
    state_put_u8(out, n->aen_info);
    state_put_u64(out, n->units_read);
    state_put_u64(out, n->units_written);
    state_put_u64(out, n->reads);
    state_put_u64(out, n->writes);
    state_put_u16(out, NVME_NR_Q);
    for (unsigned q = 0; q < NVME_NR_Q; q++) {
        const struct nvme_sq *s = &n->sq[q];
        const struct nvme_cq *c = &n->cq[q];
        state_put_bool(out, s->live);
        state_put_u64(out, s->base);
        state_put_u32(out, s->size);
        state_put_u32(out, s->head);
        state_put_u32(out, s->tail);
        state_put_u16(out, s->cqid);
        state_put_u8(out, s->prio);
        state_put_bool(out, c->live);
        state_put_bool(out, c->ien);
        state_put_bool(out, c->phase);
        state_put_u64(out, c->base);
        state_put_u32(out, c->size);
        state_put_u32(out, c->head);
        state_put_u32(out, c->tail);
        state_put_u16(out, c->iv);
    }
    pthread_mutex_unlock(&n->lock);
    return out->failed ? -1 : 0;
}

/* Every value of a loaded controller, checked before any is applied. */
static int check_loaded(struct nvme *n, const struct nvme *s, struct state_in *in)
{
    if (s->cc & ~NVME_CC_MASK)
        return state_in_fail(in, "CC 0x%x has reserved bits set", s->cc);
    if (s->csts & ~(NVME_CSTS_RDY | NVME_CSTS_CFS | NVME_CSTS_SHST) ||
        (s->csts & NVME_CSTS_SHST) == NVME_CSTS_SHST)
        return state_in_fail(in, "CSTS 0x%x is not a status the controller can have", s->csts);
    if (s->aqa & ~NVME_AQA_MASK || (s->asq | s->acq) & (NVME_PAGE - 1))
        return state_in_fail(in, "the admin queue registers hold reserved bits");
    if (s->running != !!(s->csts & NVME_CSTS_RDY) || (s->running && !(s->cc & NVME_CC_EN)))
        return state_in_fail(in, "the controller is %s, but CC.EN and CSTS.RDY say otherwise",
                             s->running ? "running" : "stopped");
    const struct nvme_features *f = &s->feat;
    if (f->nr_sq < 1 || f->nr_sq > NVME_MAX_IOQ || f->nr_cq < 1 || f->nr_cq > NVME_MAX_IOQ)
        return state_in_fail(in, "%u and %u I/O queues allowed, at most %u", f->nr_sq, f->nr_cq,
                             NVME_MAX_IOQ);
    if (f->power != 0)
        return state_in_fail(in, "power state %u, the controller has only 0", f->power);
    if (s->nr_aer > NVME_AERL + 1)
        return state_in_fail(in, "%u AERs held, at most %u", s->nr_aer, NVME_AERL + 1);
    if (!s->running && (s->nr_aer || s->aen_pending))
        return state_in_fail(in, "a stopped controller holds AERs or an event");
    for (unsigned q = 0; q < NVME_NR_Q; q++) {
        const struct nvme_sq *sq = &s->sq[q];
        const struct nvme_cq *cq = &s->cq[q];
        if ((sq->live || cq->live) && !s->running)
            return state_in_fail(in, "queue %u is live in a stopped controller", q);
        /* (AQA, ASQ and ACQ may have changed since the enable: they act at the next.) */
        if (q == 0 && s->running &&
            (!sq->live || !cq->live || sq->cqid != 0 || cq->iv != 0 || !cq->ien))
            return state_in_fail(in, "a running controller has no admin queue pair");
        if (q > 0 && ((sq->live && q > f->nr_sq) || (cq->live && q > f->nr_cq)))
            return state_in_fail(in, "queue %u is past the %u allowed", q, f->nr_sq);
        if (sq->live) {
            if (sq->size < 2 || sq->size > NVME_MQES + 1 || sq->head >= sq->size ||
                sq->tail >= sq->size)
                return state_in_fail(in, "SQ %u: size %u, head %u, tail %u are out of range", q,
                                     sq->size, sq->head, sq->tail);
            if (!queue_in_ram(n, sq->base, sq->size, 64))
                return state_in_fail(in, "SQ %u lies outside guest RAM", q);
            if (sq->cqid >= NVME_NR_Q || !s->cq[sq->cqid].live || (q > 0) != (sq->cqid > 0))
                return state_in_fail(in, "SQ %u completes on CQ %u, which it cannot", q, sq->cqid);
            if (sq->prio > 3)
                return state_in_fail(in, "SQ %u has priority %u", q, sq->prio);
        } else if (sq->base || sq->size || sq->head || sq->tail || sq->cqid || sq->prio) {
            return state_in_fail(in, "SQ %u is not live but has a position", q);
        }
        if (cq->live) {
            if (cq->size < 2 || cq->size > NVME_MQES + 1 || cq->head >= cq->size ||
                cq->tail >= cq->size)
                return state_in_fail(in, "CQ %u: size %u, head %u, tail %u are out of range", q,
                                     cq->size, cq->head, cq->tail);
            if (!queue_in_ram(n, cq->base, cq->size, 16))
                return state_in_fail(in, "CQ %u lies outside guest RAM", q);
            if (cq->iv >= n->msix.nr)
                return state_in_fail(in, "CQ %u: vector %u is past the MSI-X table (%u vectors)", q,
                                     cq->iv, n->msix.nr);
        } else if (cq->base || cq->size || cq->head || cq->tail || cq->iv || cq->ien || cq->phase) {
            return state_in_fail(in, "CQ %u is not live but has a position", q);
        }
    }
    return 0;
}

static int nvme_load(struct device *dev, struct state_in *in)
{
    struct nvme *n = dev->priv;
    if (pci_device_load(&n->pci, in) < 0 || msix_load(&n->msix, in) < 0)
        return -1;
    struct nvme *s = calloc(1, sizeof(*s));
    if (!s)
        return state_in_fail(in, "out of memory");
    uint64_t sectors = state_get_u64(in);
    bool readonly = state_get_bool(in);
    s->cc = state_get_u32(in);
    s->csts = state_get_u32(in);
    s->aqa = state_get_u32(in);
    s->intms = state_get_u32(in);
    s->asq = state_get_u64(in);
    s->acq = state_get_u64(in);
    s->reset_pending = state_get_bool(in);
    s->running = state_get_bool(in);
    struct nvme_features *f = &s->feat;
    f->arbitration = state_get_u32(in);
    f->power = state_get_u32(in);
    f->err_recovery = state_get_u32(in);
    f->coalescing = state_get_u32(in);
    f->write_atomic = state_get_u32(in);
    f->async_cfg = state_get_u32(in);
    f->temp_over = state_get_u16(in);
    f->temp_under = state_get_u16(in);
    f->nr_sq = state_get_u16(in);
    f->nr_cq = state_get_u16(in);
    f->vwc = state_get_bool(in);
    s->nr_aer = state_get_u8(in);
    for (unsigned i = 0; i < s->nr_aer && i <= NVME_AERL; i++)
        s->aer_cid[i] = state_get_u16(in);
    s->aen_pending = state_get_bool(in);
    s->aen_masked = state_get_bool(in);
    s->aen_info = state_get_u8(in);
    s->units_read = state_get_u64(in);
    s->units_written = state_get_u64(in);
    s->reads = state_get_u64(in);
    s->writes = state_get_u64(in);
    unsigned nr_q = state_get_u16(in);
    if (state_in_ok(in) && nr_q != NVME_NR_Q) {
        free(s);
        return state_in_fail(in, "%u queue pairs saved, the controller has %u", nr_q, NVME_NR_Q);
    }
    for (unsigned q = 0; q < NVME_NR_Q; q++) {
        struct nvme_sq *sq = &s->sq[q];
        struct nvme_cq *cq = &s->cq[q];
        sq->live = state_get_bool(in);
        sq->base = state_get_u64(in);
        sq->size = state_get_u32(in);
        sq->head = state_get_u32(in);
        sq->tail = state_get_u32(in);
        sq->cqid = state_get_u16(in);
        sq->prio = state_get_u8(in);
        cq->live = state_get_bool(in);
        cq->ien = state_get_bool(in);
        cq->phase = state_get_bool(in);
        cq->base = state_get_u64(in);
        cq->size = state_get_u32(in);
        cq->head = state_get_u32(in);
        cq->tail = state_get_u32(in);
        cq->iv = state_get_u16(in);
    }
    int ret = state_in_ok(in) ? 0 : -1;
    if (ret == 0 && sectors != n->disk.sectors)
        ret = state_in_fail(in, "the namespace had %llu blocks, the image now has %llu",
                            (unsigned long long)sectors, (unsigned long long)n->disk.sectors);
    if (ret == 0 && readonly != n->disk.readonly)
        ret = state_in_fail(in, "the disk was %s when saved and is %s now",
                            readonly ? "read-only" : "writable",
                            n->disk.readonly ? "read-only" : "writable");
    if (ret == 0)
        ret = check_loaded(n, s, in);
    if (ret == 0) {
        pthread_mutex_lock(&n->lock);
        n->cc = s->cc;
        n->csts = s->csts;
        n->aqa = s->aqa;
        n->intms = s->intms;
        n->asq = s->asq;
        n->acq = s->acq;
        n->reset_pending = s->reset_pending;
        n->running = s->running;
        n->feat = s->feat;
        n->nr_aer = s->nr_aer;
        memcpy(n->aer_cid, s->aer_cid, sizeof(n->aer_cid));
        n->aen_pending = s->aen_pending;
        n->aen_masked = s->aen_masked;
        n->aen_info = s->aen_info;
        n->units_read = s->units_read;
        n->units_written = s->units_written;
        n->reads = s->reads;
        n->writes = s->writes;
        memcpy(n->sq, s->sq, sizeof(n->sq));
        memcpy(n->cq, s->cq, sizeof(n->cq));
        drain(n->kick_fd);
        pthread_mutex_unlock(&n->lock);
    }
    free(s);
    return ret;
}

static const struct device_ops nvme_ops = {
    .reset = nvme_reset,
    .quiesce = nvme_quiesce,
    .resume = nvme_resume,
    .destroy = nvme_destroy,
    .save = nvme_save,
    .load = nvme_load,
};

/* ---- creation ---- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* Serial (ASCII, the image's file name as virtio-blk's), NQN and NGUID, unique in the VM. */
static void make_ids(struct nvme *n, const char *path)
{
    for (unsigned i = 0; i < sizeof(n->serial); i++) {
        char ch = n->disk.serial[i];
        n->serial[i] = ch == 0 ? ' ' : ch > 0x20 && ch < 0x7f ? ch : '_';
    }
    char sn[21];
    memcpy(sn, n->serial, 20);
    sn[20] = 0;
    for (int i = 19; i >= 0 && sn[i] == ' '; i--)
        sn[i] = 0;
    snprintf(n->subnqn, sizeof(n->subnqn), "nqn.2026-12.org.hv:nvme:%u:%s", n->index, sn);
    uint64_t h = fnv1a(UINT64_C(0xcbf29ce484222325), path, strlen(path));
    uint64_t h2 = fnv1a(h, &n->index, sizeof(n->index));
    le64_put(n->nguid, h | 1);
    le64_put(n->nguid + 8, h2);
}

int nvme_create_dev(struct vm *vm, const struct vm_disk *disk, bool thread, struct nvme **out)
{
    struct nvme *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->vm = vm;
    n->index = nr_controllers;
    snprintf(n->name, sizeof(n->name), "nvme%u", n->index);
    n->disk.name = n->name;
    pthread_mutex_init(&n->lock, NULL);
    int ret = blk_disk_open(&n->disk, disk->path, disk->readonly, disk->format,
                            vm->cfg ? vm->cfg->image_dirs : NULL);
    if (ret) {
        free(n);
        return ret;
    }
    make_ids(n, disk->path);
    power_on(n);
    n->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->kick_fd < 0 || n->stop_fd < 0) {
        ret = -errno;
        log_err("%s: cannot make its eventfds: %s", n->name, strerror(errno));
        return ret; /* the VM is not started: the process ends */
    }

    struct pci_device *p = &n->pci;
    p->name = n->name;
    p->vendor_id = 0x1b36; /* Red Hat's ID for an emulated NVMe controller */
    p->device_id = 0x0010;
    p->subsys_vendor_id = 0x1af4;
    p->subsys_id = 0x1100;
    p->class_code = 0x010802; /* mass storage, non-volatile memory, NVM Express */
    p->revision = 2;
    p->bar_def[0] = (struct pci_bar_def){
        .size = NVME_BAR_SIZE, .is_64 = true, .handler = bar_access, .opaque = n};
    p->config_written = config_written;
    p->opaque = n;
    if ((ret = msix_init(&n->msix, p, &vm->irq, NVME_VECTORS, NVME_MSIX_BAR)) < 0) {
        log_err("%s: cannot set up MSI-X: %s", n->name, strerror(-ret));
        return ret;
    }
    if (vm->vm_fd < 0)
        n->msix.irq = NULL; /* unit tests and fuzzers: no KVM */
    if ((ret = pci_register(vm->pci, p)) < 0)
        return ret;
    if (thread) {
        n->has_thread = true;
        if ((ret = start_thread(n)) < 0)
            return ret;
    }
    device_add(vm, &n->dev, &nvme_ops, n->name, p->slot, n);
    nr_controllers++;
    log_info("%s: %s (%s), %llu MiB%s, NVMe at 00:%02x.0", n->name, disk->path,
             n->disk.bdev->format, (unsigned long long)(n->disk.sectors * BLK_SECTOR / MiB),
             disk->readonly ? ", read-only" : "", p->slot);
    if (out)
        *out = n;
    return 0;
}

int nvme_create(struct vm *vm, const struct vm_disk *disk)
{
    return nvme_create_dev(vm, disk, true, NULL);
}
