// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The NVMe controller's commands (docs/nvme.md): the admin command set as far
 * as an OS driver uses it, the NVM command set's Read, Write, Flush, Write
 * Zeroes and Dataset Management, and the PRP walker under all data
 * transfers. Every field the guest wrote is checked; a bad one is a status in
 * the completion, never a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../block/block.h"
#include "le.h"
#include "log.h"
#include "mem.h"
#include "nvme_int.h"
#include "util.h"
#include "vm.h"

/* Admin opcodes. */
#define ADM_DELETE_SQ    0x00
#define ADM_CREATE_SQ    0x01
#define ADM_GET_LOG_PAGE 0x02
#define ADM_DELETE_CQ    0x04
#define ADM_CREATE_CQ    0x05
#define ADM_IDENTIFY     0x06
#define ADM_ABORT        0x08
#define ADM_SET_FEATURES 0x09
#define ADM_GET_FEATURES 0x0a
#define ADM_ASYNC_EVENT  0x0c
/* NVM opcodes. */
#define IO_FLUSH        0x00
#define IO_WRITE        0x01
#define IO_READ         0x02
#define IO_WRITE_ZEROES 0x08
#define IO_DSM          0x09

#define NSID_ALL 0xffffffffu

void nvme_sqe_decode(struct nvme_sqe *c, const uint8_t raw[64])
{
    c->opc = raw[0];
    c->flags = raw[1];
    c->cid = le16_get(raw + 2);
    c->nsid = le32_get(raw + 4);
    c->prp1 = le64_get(raw + 24);
    c->prp2 = le64_get(raw + 32);
    c->cdw10 = le32_get(raw + 40);
    c->cdw11 = le32_get(raw + 44);
    c->cdw12 = le32_get(raw + 48);
    c->cdw13 = le32_get(raw + 52);
    c->cdw14 = le32_get(raw + 56);
    c->cdw15 = le32_get(raw + 60);
}

/* ---- PRPs ---- */

static uint16_t add_seg(const struct guest_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
                        unsigned max, unsigned *nr)
{
    uint8_t *p = guest_mem_ptr(mem, gpa, len);
    if (!p)
        return NVME_DATA_XFER_ERROR;
    if (*nr && (uint8_t *)iov[*nr - 1].iov_base + iov[*nr - 1].iov_len == p) {
        iov[*nr - 1].iov_len += len; /* contiguous with the last one */
        return NVME_OK;
    }
    if (*nr == max)
        return NVME_INTERNAL; /* more pages than MDTS allows: cannot happen */
    iov[*nr].iov_base = p;
    iov[*nr].iov_len = len;
    (*nr)++;
    return NVME_OK;
}

uint16_t nvme_prp_map(const struct guest_mem *mem, uint64_t prp1, uint64_t prp2, uint64_t len,
                      struct iovec *iov, unsigned max, unsigned *nr)
{
    uint16_t st;
    *nr = 0;
    if (len == 0)
        return NVME_OK;
    if (len > NVME_MAX_XFER)
        return NVME_INVALID_FIELD;
    if (prp1 & 3)
        return NVME_PRP_OFFSET; /* dword aligned */
    uint64_t first = MIN(len, NVME_PAGE - (prp1 & (NVME_PAGE - 1)));
    if ((st = add_seg(mem, prp1, first, iov, max, nr)))
        return st;
    len -= first;
    if (len == 0)
        return NVME_OK;
    if (len <= NVME_PAGE) { /* PRP2 is the second page */
        if (prp2 & (NVME_PAGE - 1))
            return NVME_PRP_OFFSET;
        return add_seg(mem, prp2, len, iov, max, nr);
    }
    /*
     * PRP2 points into a PRP list, which runs to the end of its page; when
     * more entries are needed, the page's last entry points to the next list
     * (page aligned). Each entry is read once: the guest may change it.
     */
    uint64_t list = prp2;
    if (list & 7)
        return NVME_PRP_OFFSET;
    unsigned lists = 0;
    while (len) {
        uint64_t left = (NVME_PAGE - (list & (NVME_PAGE - 1))) / 8, e;
        uint8_t raw[8];
        if (guest_mem_read(mem, list, raw, 8) < 0)
            return NVME_DATA_XFER_ERROR;
        e = le64_get(raw);
        if (left == 1 && len > NVME_PAGE) {
            if (e & (NVME_PAGE - 1))
                return NVME_PRP_OFFSET;
            if (++lists > NVME_MAX_SEGS)
                return NVME_INVALID_FIELD; /* cannot happen either: each list has 511 pages */
            list = e;
            continue;
        }
        if (e & (NVME_PAGE - 1))
            return NVME_PRP_OFFSET;
        uint64_t chunk = MIN(len, NVME_PAGE);
        if ((st = add_seg(mem, e, chunk, iov, max, nr)))
            return st;
        len -= chunk;
        list += 8;
    }
    return NVME_OK;
}

/* Copy buf (len bytes, the rest of `want` zero) to the command's data pages. */
static uint16_t to_host(struct nvme *n, const struct nvme_sqe *c, const void *buf, size_t len,
                        size_t want)
{
    struct iovec iov[NVME_MAX_SEGS];
    unsigned nr;
    uint16_t st = nvme_prp_map(&n->vm->mem, c->prp1, c->prp2, want, iov, NVME_MAX_SEGS, &nr);
    if (st)
        return st;
    iov_memset(iov, nr, 0, 0, want);
    iov_from_buf(iov, nr, 0, buf, MIN(len, want));
    return NVME_OK;
}

/* ---- asynchronous events ---- */

void nvme_aen_error(struct nvme *n, uint8_t info)
{
    log_warn_limited("%s: the guest wrote an invalid doorbell (%s)", n->name,
                     info == NVME_AEN_INVALID_DB ? "no such queue" : "a value past the queue");
    if (n->aen_masked || n->aen_pending)
        return; /* one error event until the host reads the error log */
    n->aen_pending = true;
    n->aen_info = info;
}

void nvme_aen_deliver(struct nvme *n)
{
    if (!n->aen_pending || n->nr_aer == 0 || !n->running || nvme_cq_full(&n->cq[0]))
        return; /* a full admin CQ: when the host moves its head */
    uint16_t cid = n->aer_cid[--n->nr_aer];
    n->aen_pending = false;
    n->aen_masked = true;
    /* Type 0 (error status), the event's info, log page 1 (error information). */
    nvme_post(n, 0, 0, cid, NVME_OK, (uint32_t)n->aen_info << 8 | 1u << 16);
}

/* ---- admin: queues ---- */

static uint16_t create_cq(struct nvme *n, const struct nvme_sqe *c)
{
    unsigned qid = c->cdw10 & 0xffff, size = (c->cdw10 >> 16) + 1, iv = c->cdw11 >> 16;
    bool pc = c->cdw11 & 1, ien = c->cdw11 & 2;
    if (qid == 0 || qid > n->feat.nr_cq || n->cq[qid].live)
        return NVME_QID_INVALID;
    if (size < 2 || size > NVME_MQES + 1)
        return NVME_QUEUE_SIZE;
    if (ien && iv >= n->msix.nr)
        return NVME_INVALID_VECTOR;
    if (!pc || NVME_CC_IOCQ(n->cc) != NVME_CQES)
        return NVME_INVALID_FIELD; /* CAP.CQR: contiguous queues only */
    if (c->prp1 & (NVME_PAGE - 1))
        return NVME_PRP_OFFSET;
    if (!guest_mem_ptr(&n->vm->mem, c->prp1, (uint64_t)size * 16))
        return NVME_DATA_XFER_ERROR;
    n->cq[qid] = (struct nvme_cq){.live = true,
                                  .ien = ien,
                                  .phase = true,
                                  .base = c->prp1,
                                  .size = size,
                                  .iv = ien ? (uint16_t)iv : 0};
    return NVME_OK;
}

static uint16_t create_sq(struct nvme *n, const struct nvme_sqe *c)
{
    unsigned qid = c->cdw10 & 0xffff, size = (c->cdw10 >> 16) + 1, cqid = c->cdw11 >> 16;
    bool pc = c->cdw11 & 1;
    if (qid == 0 || qid > n->feat.nr_sq || n->sq[qid].live)
        return NVME_QID_INVALID;
    if (size < 2 || size > NVME_MQES + 1)
        return NVME_QUEUE_SIZE;
    if (cqid == 0 || cqid >= NVME_NR_Q || !n->cq[cqid].live)
        return NVME_CQ_INVALID;
    if (!pc || NVME_CC_IOSQ(n->cc) != NVME_SQES)
        return NVME_INVALID_FIELD;
    if (c->prp1 & (NVME_PAGE - 1))
        return NVME_PRP_OFFSET;
    if (!guest_mem_ptr(&n->vm->mem, c->prp1, (uint64_t)size * 64))
        return NVME_DATA_XFER_ERROR;
    n->sq[qid] = (struct nvme_sq){.live = true,
                                  .base = c->prp1,
                                  .size = size,
                                  .cqid = (uint16_t)cqid,
                                  .prio = (c->cdw11 >> 1) & 3};
    return NVME_OK;
}

static uint16_t delete_sq(struct nvme *n, const struct nvme_sqe *c)
{
    unsigned qid = c->cdw10 & 0xffff;
    if (qid == 0 || qid >= NVME_NR_Q || !n->sq[qid].live)
        return NVME_QID_INVALID;
    /* Commands run to their end: none of this queue is in flight to abort. */
    n->sq[qid] = (struct nvme_sq){0};
    return NVME_OK;
}

static uint16_t delete_cq(struct nvme *n, const struct nvme_sqe *c)
{
    unsigned qid = c->cdw10 & 0xffff;
    if (qid == 0 || qid >= NVME_NR_Q || !n->cq[qid].live)
        return NVME_QID_INVALID;
    for (unsigned q = 1; q < NVME_NR_Q; q++)
        if (n->sq[q].live && n->sq[q].cqid == qid)
            return NVME_INVALID_QUEUE_DELETE;
    n->cq[qid] = (struct nvme_cq){0};
    return NVME_OK;
}

/* ---- admin: identify ---- */

static void put_str(uint8_t *dst, const char *s, size_t width)
{
    size_t len = strlen(s);
    memset(dst, ' ', width);
    memcpy(dst, s, MIN(len, width));
}

static void identify_ctrl(struct nvme *n, uint8_t *d)
{
    le16_put(d + 0, n->pci.vendor_id);
    le16_put(d + 2, n->pci.subsys_vendor_id);
    memcpy(d + 4, n->serial, 20);
    put_str(d + 24, "hv NVMe disk", 40);
    put_str(d + 64, "1.0", 8);
    d[72] = 6;                    /* RAB: arbitration burst of 64 */
    d[77] = NVME_MDTS;            /* MDTS */
    le16_put(d + 78, 0);          /* CNTLID */
    le32_put(d + 80, 0x00010400); /* VER 1.4 */
    d[111] = 1;                   /* CNTRLTYPE: I/O controller */
    le16_put(d + 256, 0);         /* OACS: no optional admin commands */
    d[258] = 3;                   /* ACL: 4 Aborts */
    d[259] = NVME_AERL;
    d[260] = 0x03;            /* FRMW: one slot, read-only */
    d[261] = 0x04;            /* LPA: extended data (NUMDU, offsets) */
    d[262] = 0;               /* ELPE: one error log entry */
    d[263] = 0;               /* NPSS: one power state */
    le16_put(d + 266, 0x157); /* WCTEMP 343 K */
    le16_put(d + 268, 0x175); /* CCTEMP 373 K */
    d[512] = NVME_SQES << 4 | NVME_SQES;
    d[513] = NVME_CQES << 4 | NVME_CQES;
    le32_put(d + 516, 1); /* NN */
    /* ONCS: Dataset Management, Write Zeroes; no Compare, no Write Uncorrectable. */
    le16_put(d + 520, n->disk.readonly ? 0 : 1u << 2 | 1u << 3);
    d[525] = 0x07; /* VWC present, Flush of NSID FFFFFFFFh supported */
    memcpy(d + 768, n->subnqn, MIN(strlen(n->subnqn), 256u));
    /* Power state 0: 25 W, no latencies. */
    le16_put(d + 2048, 2500);
}

static void identify_ns(struct nvme *n, uint8_t *d)
{
    le64_put(d + 0, n->disk.sectors);  /* NSZE */
    le64_put(d + 8, n->disk.sectors);  /* NCAP */
    le64_put(d + 16, n->disk.sectors); /* NUSE */
    d[25] = 0;                         /* NLBAF: one format */
    d[26] = 0;                         /* FLBAS: format 0, no metadata */
    d[33] = 1u << 3;                   /* DLFEAT: Write Zeroes may deallocate */
    d[99] = n->disk.readonly ? 1 : 0;  /* NSATTR: write protected */
    memcpy(d + 104, n->nguid, 16);
    le32_put(d + 128, NVME_LBA_SHIFT << 16); /* LBAF0: 512-byte blocks, no metadata */
}

static uint16_t identify(struct nvme *n, const struct nvme_sqe *c)
{
    uint8_t *d = calloc(1, NVME_PAGE);
    unsigned cns = c->cdw10 & 0xff, csi = c->cdw11 >> 24;
    uint16_t st = NVME_OK;
    if (!d)
        return NVME_INTERNAL;
    switch (cns) {
    case 0x00: /* namespace */
        if (c->nsid != NVME_NSID)
            st = NVME_INVALID_NS;
        else
            identify_ns(n, d);
        break;
    case 0x01:
        identify_ctrl(n, d);
        break;
    case 0x02: /* active namespaces above NSID */
        if (c->nsid >= 0xfffffffeu)
            st = NVME_INVALID_NS;
        else if (c->nsid < NVME_NSID)
            le32_put(d, NVME_NSID);
        break;
    case 0x03: /* namespace identification descriptors: the NGUID */
        if (c->nsid != NVME_NSID) {
            st = NVME_INVALID_NS;
            break;
        }
        d[0] = 2;  /* NIDT: NGUID */
        d[1] = 16; /* NIDL */
        memcpy(d + 4, n->nguid, 16);
        break;
    case 0x05: /* I/O command set specific namespace and controller: nothing for NVM */
    case 0x06:
        if (csi != 0)
            st = NVME_INVALID_FIELD;
        else if (cns == 0x05 && c->nsid != NVME_NSID)
            st = NVME_INVALID_NS;
        break;
    default:
        st = NVME_INVALID_FIELD;
        break;
    }
    if (st == NVME_OK)
        st = to_host(n, c, d, NVME_PAGE, NVME_PAGE);
    free(d);
    return st;
}

/* ---- admin: log pages ---- */

static void put_u128(uint8_t *p, uint64_t v)
{
    le64_put(p, v);
    le64_put(p + 8, 0);
}

static uint16_t get_log_page(struct nvme *n, const struct nvme_sqe *c)
{
    uint8_t page[512] = {0};
    size_t size;
    unsigned lid = c->cdw10 & 0xff;
    bool rae = c->cdw10 & (1u << 15);
    uint64_t numd = ((c->cdw10 >> 16) | (uint64_t)(c->cdw11 & 0xffff) << 16) + 1;
    uint64_t lpo = c->cdw12 | (uint64_t)c->cdw13 << 32;
    if (lpo & 3 || numd * 4 > NVME_MAX_XFER)
        return NVME_INVALID_FIELD;
    switch (lid) {
    case 0x01: /* error information: no entries kept */
        size = 64;
        if (!rae)
            n->aen_masked = false; /* the host read it: the next error event may come */
        break;
    case 0x02: /* SMART / health, for the controller (NSID 0, 1 or all) */
        if (c->nsid != 0 && c->nsid != NVME_NSID && c->nsid != NSID_ALL)
            return NVME_INVALID_NS;
        size = 512;
        le16_put(page + 1, 310);                           /* composite temperature: 310 K */
        page[3] = 100;                                     /* available spare */
        page[4] = 10;                                      /* its threshold */
        put_u128(page + 32, (n->units_read + 999) / 1000); /* 1000s of 512 bytes, rounded up */
        put_u128(page + 48, (n->units_written + 999) / 1000);
        put_u128(page + 64, n->reads);
        put_u128(page + 80, n->writes);
        put_u128(page + 112, 1); /* power cycles */
        break;
    case 0x03: /* firmware slots: slot 1 active */
        size = 512;
        page[0] = 1;
        put_str(page + 8, "1.0", 8);
        break;
    default:
        return NVME_INVALID_LOG_PAGE;
    }
    if (lpo >= size)
        return NVME_INVALID_FIELD;
    return to_host(n, c, page + lpo, size - lpo, numd * 4);
}

/* ---- admin: features ---- */

#define FID_ARBITRATION  0x01
#define FID_POWER        0x02
#define FID_TEMPERATURE  0x04
#define FID_ERR_RECOVERY 0x05
#define FID_VWC          0x06
#define FID_NR_QUEUES    0x07
#define FID_COALESCING   0x08
#define FID_IRQ_CONFIG   0x09
#define FID_WRITE_ATOMIC 0x0a
#define FID_ASYNC_CONFIG 0x0b

static uint16_t *temp_threshold(struct nvme_features *f, uint32_t cdw11, uint16_t *st)
{
    unsigned tmpsel = (cdw11 >> 16) & 0xf, thsel = (cdw11 >> 20) & 3;
    if (tmpsel != 0 || thsel > 1) { /* only the composite temperature */
        *st = NVME_INVALID_FIELD;
        return NULL;
    }
    return thsel ? &f->temp_under : &f->temp_over;
}

static uint16_t set_features(struct nvme *n, const struct nvme_sqe *c, uint32_t *dw0)
{
    unsigned fid = c->cdw10 & 0xff;
    uint32_t v = c->cdw11;
    uint16_t st = NVME_OK, *t;
    struct nvme_features *f = &n->feat;
    if (c->cdw10 & (1u << 31))
        return NVME_NOT_SAVEABLE;
    switch (fid) {
    case FID_ARBITRATION:
        f->arbitration = v;
        break;
    case FID_POWER:
        if ((v & 0x1f) != 0) /* NPSS 0: power state 0 only */
            return NVME_INVALID_FIELD;
        f->power = v & 0x1f;
        break;
    case FID_TEMPERATURE:
        if ((t = temp_threshold(f, v, &st)))
            *t = (uint16_t)v;
        break;
    case FID_ERR_RECOVERY:
        if (v & (1u << 16)) /* DULBE: no deallocated-block errors */
            return NVME_INVALID_FIELD;
        f->err_recovery = v & 0xffff;
        break;
    case FID_VWC:
        f->vwc = v & 1;
        if (!f->vwc && !n->disk.readonly) {
            /* What the cache held is made durable, not under the lock (the thread's own state). */
            pthread_mutex_unlock(&n->lock);
            if (bdev_flush(n->disk.bdev) < 0)
                st = NVME_INTERNAL;
            pthread_mutex_lock(&n->lock);
        }
        break;
    case FID_NR_QUEUES: {
        unsigned nsq = (v & 0xffff) + 1, ncq = (v >> 16) + 1;
        if (nsq > 0xffff || ncq > 0xffff)
            return NVME_INVALID_FIELD;
        for (unsigned q = 1; q < NVME_NR_Q; q++)
            if (n->sq[q].live || n->cq[q].live)
                return NVME_CMD_SEQ_ERROR; /* only before any I/O queue exists */
        f->nr_sq = (uint16_t)MIN(nsq, NVME_MAX_IOQ);
        f->nr_cq = (uint16_t)MIN(ncq, NVME_MAX_IOQ);
        *dw0 = (uint32_t)(f->nr_sq - 1) | (uint32_t)(f->nr_cq - 1) << 16;
        break;
    }
    case FID_COALESCING:
        f->coalescing = v & 0xffff; /* accepted; completions are signalled at once */
        break;
    case FID_IRQ_CONFIG:
        if ((v & 0xffff) >= n->msix.nr)
            return NVME_INVALID_FIELD;
        break;
    case FID_WRITE_ATOMIC:
        f->write_atomic = v & 1;
        break;
    case FID_ASYNC_CONFIG:
        f->async_cfg = v;
        break;
    default:
        return NVME_INVALID_FIELD;
    }
    return st;
}

static uint16_t get_features(struct nvme *n, const struct nvme_sqe *c, uint32_t *dw0)
{
    unsigned fid = c->cdw10 & 0xff, sel = (c->cdw10 >> 8) & 7;
    const struct nvme_features *f = &n->feat;
    struct nvme_features def;
    uint16_t st = NVME_OK, *t;
    if (sel > 3)
        return NVME_INVALID_FIELD;
    if (sel == 1 || sel == 2) { /* default and saved: nothing is saveable */
        struct nvme_features cur = n->feat;
        nvme_features_default(n);
        def = n->feat;
        n->feat = cur;
        f = &def;
    }
    switch (fid) {
    case FID_ARBITRATION:
        *dw0 = f->arbitration;
        break;
    case FID_POWER:
        *dw0 = f->power;
        break;
    case FID_TEMPERATURE: {
        struct nvme_features copy = *f;
        if ((t = temp_threshold(&copy, c->cdw11, &st)))
            *dw0 = *t;
        break;
    }
    case FID_ERR_RECOVERY:
        *dw0 = f->err_recovery;
        break;
    case FID_VWC:
        *dw0 = f->vwc;
        break;
    case FID_NR_QUEUES:
        *dw0 = (uint32_t)(f->nr_sq - 1) | (uint32_t)(f->nr_cq - 1) << 16;
        break;
    case FID_COALESCING:
        *dw0 = f->coalescing;
        break;
    case FID_IRQ_CONFIG:
        if ((c->cdw11 & 0xffff) >= n->msix.nr)
            return NVME_INVALID_FIELD;
        *dw0 = c->cdw11 & 0xffff;
        break;
    case FID_WRITE_ATOMIC:
        *dw0 = f->write_atomic;
        break;
    case FID_ASYNC_CONFIG:
        *dw0 = f->async_cfg;
        break;
    default:
        return NVME_INVALID_FIELD;
    }
    if (st == NVME_OK && sel == 3)
        *dw0 = 1u << 2; /* capabilities: changeable, not saveable, not per namespace */
    return st;
}

uint16_t nvme_admin(struct nvme *n, const struct nvme_sqe *c, uint32_t *dw0, bool *no_completion)
{
    *dw0 = 0;
    *no_completion = false;
    if (c->flags & 0xc3)
        return NVME_INVALID_FIELD; /* fused operations, SGLs: not supported */
    switch (c->opc) {
    case ADM_DELETE_SQ:
        return delete_sq(n, c);
    case ADM_CREATE_SQ:
        return create_sq(n, c);
    case ADM_GET_LOG_PAGE:
        return get_log_page(n, c);
    case ADM_DELETE_CQ:
        return delete_cq(n, c);
    case ADM_CREATE_CQ:
        return create_cq(n, c);
    case ADM_IDENTIFY:
        return identify(n, c);
    case ADM_ABORT:
        *dw0 = 1; /* not aborted: every command runs to its end at once */
        return NVME_OK;
    case ADM_SET_FEATURES:
        return set_features(n, c, dw0);
    case ADM_GET_FEATURES:
        return get_features(n, c, dw0);
    case ADM_ASYNC_EVENT:
        if (n->nr_aer > NVME_AERL)
            return NVME_AER_LIMIT;
        n->aer_cid[n->nr_aer++] = c->cid;
        *no_completion = true; /* completed when an event comes */
        return NVME_OK;
    default:
        return NVME_INVALID_OPCODE;
    }
}

/* ---- I/O ---- */

static uint16_t io_error(struct nvme *n, int ret, bool write)
{
    if (ret == -EPERM && !n->logged_guard) { /* raw.c's guard on a probed image */
        n->logged_guard = true;
        log_warn("%s: refused the guest's write of a qcow2 header into its probed raw image "
                 "(give format=raw to allow it)",
                 n->name);
    } else if (ret != -EPERM && !n->logged_ioerr) {
        n->logged_ioerr = true;
        log_err("%s: I/O error on the image: %s", n->name, strerror(-ret));
    }
    return write ? NVME_WRITE_FAULT : NVME_READ_ERROR;
}

static bool in_range(struct nvme *n, uint64_t slba, uint64_t nlb)
{
    return range_within(slba, nlb, n->disk.sectors);
}

static uint16_t flush(struct nvme *n)
{
    int ret = n->disk.readonly ? 0 : bdev_flush(n->disk.bdev);
    return ret ? io_error(n, ret, true) : NVME_OK;
}

static uint16_t read_write(struct nvme *n, const struct nvme_sqe *c, bool write)
{
    struct iovec iov[NVME_MAX_SEGS];
    unsigned nr;
    uint64_t slba = c->cdw10 | (uint64_t)c->cdw11 << 32, nlb = (c->cdw12 & 0xffff) + 1;
    bool fua = c->cdw12 & (1u << 30);
    if ((c->cdw12 >> 26) & 0xf)
        return NVME_INVALID_FIELD; /* PRINFO: no protection information */
    if (!in_range(n, slba, nlb))
        return NVME_LBA_RANGE;
    if (write && n->disk.readonly)
        return NVME_WRITE_PROTECTED;
    uint64_t len = nlb << NVME_LBA_SHIFT;
    if (len > NVME_MAX_XFER)
        return NVME_INVALID_FIELD;
    uint16_t st = nvme_prp_map(&n->vm->mem, c->prp1, c->prp2, len, iov, NVME_MAX_SEGS, &nr);
    if (st)
        return st;
    uint64_t off = slba << NVME_LBA_SHIFT;
    int ret =
        write ? bdev_pwritev(n->disk.bdev, iov, nr, off) : bdev_preadv(n->disk.bdev, iov, nr, off);
    if (ret)
        return io_error(n, ret, write);
    /* Without the volatile cache (Set Features) or with FUA, written means durable. */
    pthread_mutex_lock(&n->lock);
    bool vwc = n->feat.vwc;
    if (write) {
        n->writes++;
        n->units_written += nlb; /* in 512-byte units; the log divides */
    } else {
        n->reads++;
        n->units_read += nlb;
    }
    pthread_mutex_unlock(&n->lock);
    if (write && (fua || !vwc))
        return flush(n);
    return NVME_OK;
}

static uint16_t write_zeroes(struct nvme *n, const struct nvme_sqe *c)
{
    uint64_t slba = c->cdw10 | (uint64_t)c->cdw11 << 32, nlb = (c->cdw12 & 0xffff) + 1;
    bool deac = c->cdw12 & (1u << 25), fua = c->cdw12 & (1u << 30);
    if ((c->cdw12 >> 26) & 0xf)
        return NVME_INVALID_FIELD;
    if (!in_range(n, slba, nlb))
        return NVME_LBA_RANGE;
    if (n->disk.readonly)
        return NVME_WRITE_PROTECTED;
    pthread_mutex_lock(&n->lock);
    fua |= !n->feat.vwc;
    pthread_mutex_unlock(&n->lock);
    int ret = bdev_write_zeroes(n->disk.bdev, slba << NVME_LBA_SHIFT, nlb << NVME_LBA_SHIFT, deac);
    if (ret)
        return io_error(n, ret, true);
    return fua ? flush(n) : NVME_OK;
}

/* Dataset Management: only Deallocate acts (discard); the hints are taken and ignored. */
static uint16_t dsm(struct nvme *n, const struct nvme_sqe *c)
{
    struct iovec iov[NVME_MAX_SEGS];
    uint8_t ranges[256 * 16];
    unsigned nr, count = (c->cdw10 & 0xff) + 1;
    bool deallocate = c->cdw11 & (1u << 2);
    if (!deallocate)
        return NVME_OK;
    if (n->disk.readonly)
        return NVME_WRITE_PROTECTED;
    uint16_t st = nvme_prp_map(&n->vm->mem, c->prp1, c->prp2, count * 16, iov, NVME_MAX_SEGS, &nr);
    if (st)
        return st;
    iov_to_buf(iov, nr, 0, ranges, count * 16); /* one copy: the guest may change its own */
    for (unsigned i = 0; i < count; i++) {
        uint64_t nlb = le32_get(ranges + 16 * i + 4), slba = le64_get(ranges + 16 * i + 8);
        if (!in_range(n, slba, nlb))
            return NVME_LBA_RANGE;
    }
    for (unsigned i = 0; i < count; i++) {
        uint64_t nlb = le32_get(ranges + 16 * i + 4), slba = le64_get(ranges + 16 * i + 8);
        int ret =
            nlb ? bdev_discard(n->disk.bdev, slba << NVME_LBA_SHIFT, nlb << NVME_LBA_SHIFT) : 0;
        if (ret)
            return io_error(n, ret, true);
    }
    return NVME_OK;
}

uint16_t nvme_io(struct nvme *n, const struct nvme_sqe *c)
{
    if (c->flags & 0xc3)
        return NVME_INVALID_FIELD;
    if (c->opc == IO_FLUSH && c->nsid == NSID_ALL)
        return flush(n);
    if (c->nsid != NVME_NSID)
        return NVME_INVALID_NS;
    switch (c->opc) {
    case IO_FLUSH:
        return flush(n);
    case IO_WRITE:
        return read_write(n, c, true);
    case IO_READ:
        return read_write(n, c, false);
    case IO_WRITE_ZEROES:
        return write_zeroes(n, c);
    case IO_DSM:
        return dsm(n, c);
    default:
        return NVME_INVALID_OPCODE;
    }
}
