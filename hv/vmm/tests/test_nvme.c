// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The NVMe controller (hw/nvme.c, hw/nvme_cmd.c) without KVM, driven as an
 * OS driver drives it: config space through CF8/CFC, BAR 0's registers and
 * doorbells through the MMIO bus, queues and data in fake guest RAM, the
 * device thread serving them. Registers and enable/disable/shutdown; the
 * admin commands a driver sends; reads and writes through PRP1/PRP2, PRP
 * lists and chained lists, landing in the image file; hostile commands
 * (PRPs outside RAM or misaligned, LBAs past the end, bad queue ids, sizes
 * and vectors, unknown opcodes) each answered with its status; invalid
 * doorbells reported through an AER; a full CQ holds back commands; a
 * read-only disk; device reset; a save/load round trip with a command
 * queued while quiesced, and corrupted sections refused.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "hw/nvme.h"
#include "hw/nvme_int.h"
#include "le.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "virtio/tests/pci_driver.h"
#include "vm.h"

#define RAM      (64 * MiB)
#define DISK_MIB 8
#define NSZE     (DISK_MIB * 2048)
#define ASQ_GPA  0x100000
#define ACQ_GPA  0x101000
#define ID_GPA   0x102000 /* identify / log data */
#define IOSQ_GPA 0x110000
#define IOCQ_GPA 0x120000
#define DATA_GPA 0x200000 /* 1 MiB of data pages */
#define LIST_GPA 0x400000 /* PRP lists */
#define CC_GOOD  (NVME_CC_EN | 6u << 16 | 4u << 20)

static struct vm vma, vmb;
static char img[] = "/tmp/hv-test-nvme-XXXXXX", img_b[] = "/tmp/hv-test-nvme-b-XXXXXX",
            img_ro[] = "/tmp/hv-test-nvme-ro-XXXXXX";

static void make_vm(struct vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->vm_fd = vm->kvm_fd = -1;
    CHECK(guest_mem_init(&vm->mem, RAM) == 0);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    CHECK(pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) == 0);
}

/* ---- the driver's side ---- */

struct ctl {
    struct nvme *n;
    uint64_t qbase; /* where its queues are, past the first controller's */
    unsigned slot;
    uint64_t bar, msix_bar;
    uint8_t msix_cap;
};

struct q {
    uint16_t qid;
    uint64_t sq, cq;
    uint32_t size, tail, head;
    bool phase;
    uint16_t cid;
};

struct cqe {
    uint32_t dw0;
    uint16_t sqhd, sqid, cid, status; /* status: SC | SCT << 8 | DNR << 14 */
    bool ok;                          /* one came */
};

static struct ctl find(struct nvme *n)
{
    struct ctl c = {.n = n, .slot = nvme_pci(n)->slot};
    CHECK(cfg_rd(c.slot, 0, 4) == 0x00101b36);
    CHECK(cfg_rd(c.slot, 8, 4) >> 8 == 0x010802);
    uint32_t lo = cfg_rd(c.slot, 0x10, 4);
    CHECK((lo & 0x6) == 0x4); /* 64-bit memory BAR */
    c.bar = (lo & ~0xfu) | (uint64_t)cfg_rd(c.slot, 0x14, 4) << 32;
    c.msix_bar = cfg_rd(c.slot, 0x10 + 4 * NVME_MSIX_BAR, 4) & ~0xfu;
    for (unsigned p = cfg_rd(c.slot, 0x34, 1); p; p = cfg_rd(c.slot, p + 1, 1))
        if (cfg_rd(c.slot, p, 1) == 0x11)
            c.msix_cap = (uint8_t)p;
    CHECK(c.msix_cap != 0);
    return c;
}

static uint32_t reg(struct ctl *c, unsigned off)
{
    return (uint32_t)mr(c->bar + off, 4);
}

static void wreg(struct ctl *c, unsigned off, uint32_t v)
{
    mw(c->bar + off, v, 4);
}

/* Waits (5 s at most) until (CSTS & mask) == want. */
static bool wait_csts(struct ctl *c, uint32_t mask, uint32_t want)
{
    for (int i = 0; i < 5000; i++) {
        if ((reg(c, NVME_REG_CSTS) & mask) == want)
            return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

static void sq_db(struct ctl *c, uint16_t qid, uint32_t v)
{
    wreg(c, NVME_DB_BASE + 8 * qid, v);
}

static void cq_db(struct ctl *c, uint16_t qid, uint32_t v)
{
    wreg(c, NVME_DB_BASE + 8 * qid + 4, v);
}

static void put_sqe(struct q *q, const uint8_t *e)
{
    memcpy(guest_mem_ptr(&drv_vm->mem, q->sq + 64ull * q->tail, 64), e, 64);
    q->tail = (q->tail + 1) % q->size;
}

static void make_sqe(uint8_t *e, uint8_t opc, uint16_t cid, uint32_t nsid, uint64_t prp1,
                     uint64_t prp2, const uint32_t cdw[6])
{
    memset(e, 0, 64);
    e[0] = opc;
    le16_put(e + 2, cid);
    le32_put(e + 4, nsid);
    le64_put(e + 24, prp1);
    le64_put(e + 32, prp2);
    for (unsigned i = 0; i < 6; i++)
        le32_put(e + 40 + 4 * i, cdw ? cdw[i] : 0);
}

/* The next completion on q, waiting at most ms; consumes it and rings the head doorbell. */
static struct cqe reap(struct ctl *c, struct q *q, int ms)
{
    struct cqe r = {0};
    for (int i = 0; i <= ms; i++) {
        uint8_t *p = guest_mem_ptr(&drv_vm->mem, q->cq + 16ull * q->head, 16);
        uint32_t dw3 = __atomic_load_n((uint32_t *)(p + 12), __ATOMIC_ACQUIRE);
        if (((dw3 >> 16) & 1) == q->phase) {
            r.ok = true;
            r.dw0 = le32_get(p);
            r.sqhd = le16_get(p + 8);
            r.sqid = le16_get(p + 10);
            r.cid = (uint16_t)dw3;
            r.status = (uint16_t)(dw3 >> 17);
            if (++q->head == q->size) {
                q->head = 0;
                q->phase = !q->phase;
            }
            cq_db(c, q->qid, q->head);
            return r;
        }
        if (ms)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return r;
}

/* One command on q, waited for: its status (without DNR) and dw0. */
static uint16_t run(struct ctl *c, struct q *q, uint8_t opc, uint32_t nsid, uint64_t prp1,
                    uint64_t prp2, const uint32_t cdw[6], uint32_t *dw0)
{
    uint8_t e[64];
    uint16_t cid = ++q->cid;
    make_sqe(e, opc, cid, nsid, prp1, prp2, cdw);
    put_sqe(q, e);
    sq_db(c, q->qid, q->tail);
    struct cqe r = reap(c, q, 5000);
    CHECK(r.ok);
    CHECK(r.cid == cid && r.sqid == q->qid && r.sqhd == q->tail);
    if (r.status)
        CHECK(r.status & (1u << 14)); /* errors say: do not retry */
    if (dw0)
        *dw0 = r.dw0;
    return r.ok ? r.status & 0x7ff : 0xffff;
}

#define CDW(...) ((const uint32_t[6]){__VA_ARGS__})

static bool vector_fired(struct ctl *c, unsigned vec)
{
    int fd = msix_vector_fd(&c->n->msix, vec);
    uint64_t v;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    bool fired = poll(&p, 1, 0) == 1;
    if (read(fd, &v, sizeof(v)) < 0)
        v = 0;
    return fired;
}

static struct q admin_q(struct ctl *c)
{
    return (struct q){
        .qid = 0, .sq = c->qbase + ASQ_GPA, .cq = c->qbase + ACQ_GPA, .size = 32, .phase = true};
}

/* Memory and bus master on, MSI-X on, the admin queues, CC.EN: as a driver's probe. */
static void bring_up(struct ctl *c, struct q *aq)
{
    cfg_wr(c->slot, 4, 0x0006, 2);
    cfg_wr(c->slot, c->msix_cap + 3, 0x80, 1);
    *aq = admin_q(c);
    memset(guest_mem_ptr(&drv_vm->mem, aq->sq, 0x2000), 0, 0x2000);
    wreg(c, NVME_REG_AQA, 31 | 31u << 16);
    mw(c->bar + NVME_REG_ASQ, aq->sq, 8);
    wreg(c, NVME_REG_ACQ, (uint32_t)aq->cq);
    wreg(c, NVME_REG_ACQ + 4, 0);
    wreg(c, NVME_REG_CC, CC_GOOD);
    CHECK(wait_csts(c, NVME_CSTS_RDY, NVME_CSTS_RDY));
}

/* I/O queue pair 1 (size entries, vector 1). */
static struct q io_q(struct ctl *c, struct q *aq, uint32_t size)
{
    struct q q = {.qid = 1,
                  .sq = c->qbase + IOSQ_GPA,
                  .cq = c->qbase + IOCQ_GPA,
                  .size = size,
                  .phase = true};
    memset(guest_mem_ptr(&drv_vm->mem, q.sq, 0x20000), 0, 0x20000);
    CHECK(run(c, aq, 0x05, 0, q.cq, 0, CDW(1 | (size - 1) << 16, 3 | 1u << 16), NULL) == 0);
    CHECK(run(c, aq, 0x01, 0, q.sq, 0, CDW(1 | (size - 1) << 16, 1 | 1u << 16), NULL) == 0);
    return q;
}

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
    return guest_mem_ptr(&drv_vm->mem, gpa, len);
}

static bool image_is(const char *path, uint64_t off, const uint8_t *want, size_t len)
{
    uint8_t *b = malloc(len);
    int fd = open(path, O_RDONLY);
    bool ok = pread(fd, b, len, (off_t)off) == (ssize_t)len && memcmp(b, want, len) == 0;
    close(fd);
    free(b);
    return ok;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

/* ---- the tests ---- */

static void test_registers(struct ctl *c)
{
    CHECK(mr(c->bar + NVME_REG_VS, 4) != 0x00010400); /* no memory decoding yet */
    cfg_wr(c->slot, 4, 0x0002, 2);
    uint64_t cap = mr(c->bar + NVME_REG_CAP, 8);
    CHECK((cap & 0xffff) == NVME_MQES);
    CHECK(cap >> 16 & 1);             /* CQR */
    CHECK(((cap >> 32) & 0xf) == 0);  /* DSTRD */
    CHECK(cap >> 37 & 1);             /* NVM command set */
    CHECK(((cap >> 48) & 0xff) == 0); /* MPSMIN, MPSMAX: 4 KiB */
    CHECK(reg(c, NVME_REG_CAP + 4) == (uint32_t)(cap >> 32));
    CHECK(reg(c, NVME_REG_VS) == 0x00010400);
    CHECK(reg(c, NVME_REG_CSTS) == 0 && reg(c, NVME_REG_CC) == 0);
    wreg(c, NVME_REG_INTMS, 0x5);
    wreg(c, NVME_REG_INTMC, 0x1);
    CHECK(reg(c, NVME_REG_INTMS) == 0x4 && reg(c, NVME_REG_INTMC) == 0x4);
    wreg(c, NVME_REG_INTMC, 0x4);
    wreg(c, NVME_REG_CAP, 0); /* read-only */
    CHECK(mr(c->bar + NVME_REG_CAP, 8) == cap);
    wreg(c, NVME_REG_AQA, 0xffffffff);
    CHECK(reg(c, NVME_REG_AQA) == NVME_AQA_MASK);
    mw(c->bar + NVME_REG_ASQ, 0x123456789abcdef0ull, 8);
    CHECK(mr(c->bar + NVME_REG_ASQ, 8) == 0x123456789abcd000ull); /* page aligned */
    CHECK(mr(c->bar + 0x50, 4) == 0 && mr(c->bar + 0x3000, 4) == 0);
    sq_db(c, 0, 1); /* a doorbell before enable: nothing */

    /* Enable with what the controller does not do: a fatal status, not ready. */
    cfg_wr(c->slot, 4, 0x0006, 2);
    wreg(c, NVME_REG_AQA, 31 | 31u << 16);
    mw(c->bar + NVME_REG_ASQ, ASQ_GPA, 8);
    mw(c->bar + NVME_REG_ACQ, ACQ_GPA, 8);
    wreg(c, NVME_REG_CC, CC_GOOD | 1u << 7); /* MPS 8 KiB */
    CHECK(wait_csts(c, NVME_CSTS_CFS, NVME_CSTS_CFS));
    CHECK(!(reg(c, NVME_REG_CSTS) & NVME_CSTS_RDY));
    wreg(c, NVME_REG_CC, 0);
    CHECK(wait_csts(c, ~0u, 0));
    wreg(c, NVME_REG_AQA, 127 | 31u << 16);
    mw(c->bar + NVME_REG_ASQ, (uint64_t)RAM - 0x1000, 8); /* 128 entries past RAM's end */
    wreg(c, NVME_REG_CC, CC_GOOD);
    CHECK(wait_csts(c, NVME_CSTS_CFS, NVME_CSTS_CFS));
    wreg(c, NVME_REG_CC, 0);
    CHECK(wait_csts(c, ~0u, 0));
}

static void test_identify(struct ctl *c, struct q *aq)
{
    uint8_t *d = ram(ID_GPA, 4096);
    memset(d, 0xee, 4096);
    CHECK(run(c, aq, 0x06, 0, ID_GPA, 0, CDW(1), NULL) == 0);
    CHECK(le16_get(d) == 0x1b36);
    const char *base = strrchr(img, '/') + 1;
    CHECK(memcmp(d + 4, base, strlen(base)) == 0 && d[4 + strlen(base)] == ' ');
    CHECK(memcmp(d + 24, "hv NVMe disk ", 13) == 0);
    CHECK(d[77] == NVME_MDTS && d[259] == NVME_AERL);
    CHECK(le32_get(d + 80) == 0x00010400);
    CHECK(d[512] == 0x66 && d[513] == 0x44 && le32_get(d + 516) == 1);
    CHECK((le16_get(d + 520) & 0xc) == 0xc && (d[525] & 1));
    CHECK(strncmp((char *)d + 768, "nqn.2026-12.org.hv:nvme:0:", 26) == 0);
    CHECK(d[4095] == 0); /* all 4096 bytes written */

    /* Namespace 1: 8 MiB of 512-byte blocks. */
    CHECK(run(c, aq, 0x06, 1, ID_GPA, 0, CDW(0), NULL) == 0);
    CHECK(le64_get(d) == NSZE && le64_get(d + 8) == NSZE);
    CHECK(d[26] == 0 && d[128 + 2] == 9 && d[99] == 0);
    uint8_t nguid[16];
    memcpy(nguid, d + 104, 16);
    CHECK(run(c, aq, 0x06, 0, ID_GPA, 0, CDW(2), NULL) == 0);
    CHECK(le32_get(d) == 1 && le32_get(d + 4) == 0);
    CHECK(run(c, aq, 0x06, 1, ID_GPA, 0, CDW(2), NULL) == 0);
    CHECK(le32_get(d) == 0);
    CHECK(run(c, aq, 0x06, 1, ID_GPA, 0, CDW(3), NULL) == 0);
    CHECK(d[0] == 2 && d[1] == 16 && memcmp(d + 4, nguid, 16) == 0 && d[20] == 0);
    CHECK(run(c, aq, 0x06, 0, ID_GPA, 0, CDW(6), NULL) == 0);
    CHECK(run(c, aq, 0x06, 0, ID_GPA, 0, CDW(6, 1u << 24), NULL) == NVME_INVALID_FIELD);

    /* Refused. */
    CHECK(run(c, aq, 0x06, 2, ID_GPA, 0, CDW(0), NULL) == NVME_INVALID_NS);
    CHECK(run(c, aq, 0x06, 0xffffffff, ID_GPA, 0, CDW(0), NULL) == NVME_INVALID_NS);
    CHECK(run(c, aq, 0x06, 0, ID_GPA, 0, CDW(0x42), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x06, 0, (uint64_t)RAM, 0, CDW(1), NULL) == NVME_DATA_XFER_ERROR);
    CHECK(run(c, aq, 0x06, 0, ID_GPA + 2, 0, CDW(1), NULL) == NVME_PRP_OFFSET);
    /* Across two pages: PRP2 must be a page. */
    CHECK(run(c, aq, 0x06, 0, ID_GPA + 0x800, ID_GPA + 0x1010, CDW(1), NULL) == NVME_PRP_OFFSET);
    CHECK(run(c, aq, 0x06, 0, ID_GPA + 0x800, (uint64_t)1 << 45, CDW(1), NULL) ==
          NVME_DATA_XFER_ERROR);
    CHECK(run(c, aq, 0x06, 0, ID_GPA + 0x800, ID_GPA + 0x2000, CDW(1), NULL) == 0);
    CHECK(le16_get(ram(ID_GPA + 0x800, 2)) == 0x1b36);
    CHECK(run(c, aq, 0x7e, 0, 0, 0, NULL, NULL) == NVME_INVALID_OPCODE);
    uint8_t e[64];
    make_sqe(e, 0x06, 0x77, 0, ID_GPA, 0, CDW(1));
    e[1] = 0x40; /* PSDT: an SGL */
    put_sqe(aq, e);
    sq_db(c, 0, aq->tail);
    struct cqe r = reap(c, aq, 5000);
    CHECK(r.ok && r.cid == 0x77 && (r.status & 0x7ff) == NVME_INVALID_FIELD);
}

static void test_features_and_logs(struct ctl *c, struct q *aq)
{
    uint32_t dw0;
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(7, 63 | 63u << 16), &dw0) == 0);
    CHECK(dw0 == (15 | 15u << 16));
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(7, 3 | 1u << 16), &dw0) == 0);
    CHECK(dw0 == (3 | 1u << 16));
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(7), &dw0) == 0 && dw0 == (3 | 1u << 16));
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(7, 0xffff), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(8, 0x0a04), NULL) == 0); /* coalescing: accepted */
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(8), &dw0) == 0 && dw0 == 0x0a04);
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(6), &dw0) == 0 && dw0 == 1);
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(6, 0), NULL) == 0);
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(6), &dw0) == 0 && dw0 == 0);
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(6 | 1u << 8), &dw0) == 0 && dw0 == 1); /* default */
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(6, 1), NULL) == 0);
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(4), &dw0) == 0 && dw0 == 0x157);
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(4, 0x160), NULL) == 0);
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(4), &dw0) == 0 && dw0 == 0x160);
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(4, 0x160 | 3u << 16), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(2, 1), NULL) == NVME_INVALID_FIELD); /* power state 1 */
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(6 | 1u << 31, 1), NULL) == NVME_NOT_SAVEABLE);
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(0x77, 1), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(9, 99), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x0a, 0, 0, 0, CDW(6 | 5u << 8), NULL) == NVME_INVALID_FIELD);

    uint8_t *d = ram(ID_GPA, 4096);
    memset(d, 0xee, 4096);
    CHECK(run(c, aq, 0x02, 0xffffffff, ID_GPA, 0, CDW(2 | 127u << 16), NULL) == 0);
    CHECK(le16_get(d + 1) == 310 && d[3] == 100 && d[512] == 0xee);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(3 | 127u << 16), NULL) == 0);
    CHECK(d[0] == 1 && memcmp(d + 8, "1.0     ", 8) == 0);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(3 | 1u << 16, 0, 8), NULL) == 0); /* offset 8 */
    CHECK(memcmp(d, "1.0     ", 8) == 0);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(1 | 15u << 16), NULL) == 0);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(0x80 | 15u << 16), NULL) == NVME_INVALID_LOG_PAGE);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(2 | 15u << 16, 0, 3), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(2 | 15u << 16, 0, 512), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(2 | 0xffffu << 16, 0xffff), NULL) ==
          NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x02, 7, ID_GPA, 0, CDW(2 | 15u << 16), NULL) == NVME_INVALID_NS);
    CHECK(run(c, aq, 0x08, 0, 0, 0, CDW(1 | 5u << 16), &dw0) == 0 && dw0 == 1); /* not aborted */
}

static void test_queues(struct ctl *c, struct q *aq)
{
    /* 4 SQs and 2 CQs are allowed (Set Features above). */
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(0 | 15u << 16, 3), NULL) == NVME_QID_INVALID);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(3 | 15u << 16, 3), NULL) == NVME_QID_INVALID);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(1, 3), NULL) == NVME_QUEUE_SIZE); /* 1 entry */
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(1 | 1024u << 16, 3), NULL) == NVME_QUEUE_SIZE);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(1 | 15u << 16, 3 | 17u << 16), NULL) ==
          NVME_INVALID_VECTOR);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(1 | 15u << 16, 2), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA + 8, 0, CDW(1 | 15u << 16, 3), NULL) == NVME_PRP_OFFSET);
    CHECK(run(c, aq, 0x05, 0, RAM - 0x1000, 0, CDW(1 | 1023u << 16, 3), NULL) ==
          NVME_DATA_XFER_ERROR);
    CHECK(run(c, aq, 0x01, 0, IOSQ_GPA, 0, CDW(1 | 15u << 16, 1 | 1u << 16), NULL) ==
          NVME_CQ_INVALID);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(1 | 15u << 16, 3 | 1u << 16), NULL) == 0);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(1 | 15u << 16, 3 | 1u << 16), NULL) ==
          NVME_QID_INVALID);
    CHECK(run(c, aq, 0x01, 0, IOSQ_GPA, 0, CDW(1 | 15u << 16, 1 | 2u << 16), NULL) ==
          NVME_CQ_INVALID);
    CHECK(run(c, aq, 0x01, 0, IOSQ_GPA, 0, CDW(5 | 15u << 16, 1 | 1u << 16), NULL) ==
          NVME_QID_INVALID);
    CHECK(run(c, aq, 0x01, 0, IOSQ_GPA, 0, CDW(1 | 15u << 16, 1 | 1u << 16), NULL) == 0);
    CHECK(run(c, aq, 0x09, 0, 0, 0, CDW(7, 3), NULL) == NVME_CMD_SEQ_ERROR);
    CHECK(run(c, aq, 0x04, 0, 0, 0, CDW(1), NULL) == NVME_INVALID_QUEUE_DELETE);
    CHECK(run(c, aq, 0x00, 0, 0, 0, CDW(0), NULL) == NVME_QID_INVALID);
    CHECK(run(c, aq, 0x00, 0, 0, 0, CDW(2), NULL) == NVME_QID_INVALID);
    CHECK(run(c, aq, 0x00, 0, 0, 0, CDW(1), NULL) == 0);
    CHECK(run(c, aq, 0x04, 0, 0, 0, CDW(1), NULL) == 0);
    CHECK(run(c, aq, 0x04, 0, 0, 0, CDW(1), NULL) == NVME_QID_INVALID);
}

static void test_io(struct ctl *c, struct q *aq)
{
    struct q q = io_q(c, aq, 16);
    uint8_t *data = ram(DATA_GPA, 1 * MiB), *list = ram(LIST_GPA, 3 * 4096);
    uint8_t want[512 * 1024];

    /* One block, PRP1 only; then 8 KiB across two pages (PRP2 the second page). */
    fill(data, 512, 1);
    CHECK(run(c, &q, 0x01, 1, DATA_GPA, 0, CDW(3, 0, 0), NULL) == 0);
    CHECK(image_is(img, 3 * 512, data, 512));
    CHECK(vector_fired(c, 1));
    fill(data + 0x1800, 0x2000, 2);
    CHECK(run(c, &q, 0x01, 1, DATA_GPA + 0x1800, DATA_GPA + 0x5000, CDW(100, 0, 15), NULL) == 0);
    memcpy(want, data + 0x1800, 0x800);
    memcpy(want + 0x800, data + 0x5000, 0x1800);
    CHECK(image_is(img, 100 * 512, want, 0x2000));

    /* 64 KiB through a PRP list, PRP1 at an offset, pages out of order. */
    fill(want, 0x10000, 3);
    memcpy(data + 0x10200, want, 0xe00);
    for (unsigned i = 0; i < 16; i++) {
        uint64_t page = DATA_GPA + 0x20000 + 0x1000 * (15 - i), at = 0xe00 + 0x1000 * i;
        le64_put(list + 8 * i, page);
        memcpy(ram(page, 4096), want + at, MIN(0x1000, 0x10000 - at));
    }
    CHECK(run(c, &q, 0x01, 1, DATA_GPA + 0x10200, LIST_GPA, CDW(2048, 0, 127), NULL) == 0);
    CHECK(image_is(img, 2048 * 512, want, 0x10000));
    memset(data + 0x10200, 0, 0xe00);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA + 0x10200, LIST_GPA, CDW(2048, 0, 127), NULL) == 0);
    CHECK(memcmp(data + 0x10200, want, 0xe00) == 0);

    /* 512 KiB (MDTS) through a chained list: PRP2 on the last entry of a page. */
    fill(want, sizeof(want), 4);
    memcpy(data, want, 4096);
    uint64_t first = LIST_GPA + 0x1ff8;
    le64_put(ram(first, 8), LIST_GPA + 0x2000); /* the next list */
    for (unsigned i = 0; i < 127; i++) {
        le64_put(ram(LIST_GPA + 0x2000 + 8 * i, 8), DATA_GPA + 0x1000 * (i + 1));
        memcpy(data + 0x1000 * (i + 1), want + 0x1000 * (i + 1), 4096);
    }
    CHECK(run(c, &q, 0x01, 1, DATA_GPA, first, CDW(4096, 0, 1023), NULL) == 0);
    CHECK(image_is(img, 4096 * 512, want, sizeof(want)));
    memset(data, 0, 512 * 1024);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, first, CDW(4096, 0, 1023), NULL) == 0);
    CHECK(memcmp(data, want, sizeof(want)) == 0);
    CHECK(run(c, &q, 0x00, 1, 0, 0, NULL, NULL) == 0);          /* flush */
    CHECK(run(c, &q, 0x00, 0xffffffff, 0, 0, NULL, NULL) == 0); /* flush, every namespace */

    /* Hostile: each its status, nothing written. */
    CHECK(run(c, &q, 0x01, 1, DATA_GPA, 0, CDW(NSZE, 0, 0), NULL) == NVME_LBA_RANGE);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, 0, CDW(NSZE - 1, 0, 1), NULL) == NVME_LBA_RANGE);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, 0, CDW(0xffffffff, 0xffffffff, 1), NULL) == NVME_LBA_RANGE);
    CHECK(run(c, &q, 0x02, 2, DATA_GPA, 0, CDW(0), NULL) == NVME_INVALID_NS);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, 0, CDW(0, 0, 2047), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, 0, CDW(0, 0, 1u << 26), NULL) == NVME_INVALID_FIELD);
    CHECK(run(c, &q, 0x02, 1, (uint64_t)RAM - 256, RAM, CDW(0), NULL) == NVME_DATA_XFER_ERROR);
    CHECK(run(c, &q, 0x02, 1, 0xfee00000, 0, CDW(0), NULL) == NVME_DATA_XFER_ERROR);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA + 1, 0, CDW(0), NULL) == NVME_PRP_OFFSET);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, DATA_GPA + 8, CDW(0, 0, 15), NULL) == NVME_PRP_OFFSET);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, LIST_GPA + 4, CDW(0, 0, 127), NULL) == NVME_PRP_OFFSET);
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, (uint64_t)RAM, CDW(0, 0, 127), NULL) ==
          NVME_DATA_XFER_ERROR);
    le64_put(list + 8, (uint64_t)RAM + 0x10000); /* a list entry outside RAM */
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, LIST_GPA, CDW(0, 0, 127), NULL) == NVME_DATA_XFER_ERROR);
    le64_put(list + 8, DATA_GPA + 0x10); /* a list entry not on a page */
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, LIST_GPA, CDW(0, 0, 127), NULL) == NVME_PRP_OFFSET);
    le64_put(ram(first, 8), LIST_GPA + 0x2008); /* a next list not on a page */
    CHECK(run(c, &q, 0x02, 1, DATA_GPA, first, CDW(0, 0, 1023), NULL) == NVME_PRP_OFFSET);
    CHECK(run(c, &q, 0x7f, 1, 0, 0, NULL, NULL) == NVME_INVALID_OPCODE);
    CHECK(run(c, &q, 0x05, 1, 0, 0, NULL, NULL) == NVME_INVALID_OPCODE); /* compare */

    /* Write Zeroes and Dataset Management. */
    CHECK(run(c, &q, 0x08, 1, 0, 0, CDW(2048, 0, 127 | 1u << 25), NULL) == 0);
    memset(want, 0, 0x10000);
    CHECK(image_is(img, 2048 * 512, want, 0x10000));
    CHECK(run(c, &q, 0x08, 1, 0, 0, CDW(NSZE - 1, 0, 1), NULL) == NVME_LBA_RANGE);
    uint8_t *r = ram(ID_GPA, 32);
    memset(r, 0, 32);
    le32_put(r + 4, 8);
    le64_put(r + 8, 4096);
    le32_put(r + 16 + 4, 8);
    le64_put(r + 16 + 8, 4104);
    CHECK(run(c, &q, 0x09, 1, ID_GPA, 0, CDW(1, 1u << 2), NULL) == 0);
    CHECK(image_is(img, 4096 * 512, want, 8192));
    CHECK(run(c, &q, 0x09, 1, ID_GPA, 0, CDW(1, 0), NULL) == 0); /* hints only */
    le64_put(r + 16 + 8, NSZE - 4);
    CHECK(run(c, &q, 0x09, 1, ID_GPA, 0, CDW(1, 1u << 2), NULL) == NVME_LBA_RANGE);

    /* SMART counts what the guest did. */
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(2 | 127u << 16), NULL) == 0);
    CHECK(le64_get(ram(ID_GPA + 80, 8)) == 4 && le64_get(ram(ID_GPA + 64, 8)) == 2);

    /* A full CQ holds commands back until the host moves its head. */
    vector_fired(c, 1);
    CHECK(run(c, aq, 0x00, 0, 0, 0, CDW(1), NULL) == 0);
    CHECK(run(c, aq, 0x04, 0, 0, 0, CDW(1), NULL) == 0);
    struct q s = {.qid = 1, .sq = IOSQ_GPA, .cq = IOCQ_GPA, .size = 2, .phase = true};
    memset(ram(IOSQ_GPA, 0x20000), 0, 0x20000);
    CHECK(run(c, aq, 0x05, 0, IOCQ_GPA, 0, CDW(1 | 1u << 16, 1), NULL) == 0); /* polled */
    CHECK(run(c, aq, 0x01, 0, IOSQ_GPA, 0, CDW(1 | 3u << 16, 1 | 1u << 16), NULL) == 0);
    s.size = 4; /* SQ of 4, CQ of 2: one completion fits */
    uint8_t e[64];
    for (unsigned i = 0; i < 3; i++) {
        make_sqe(e, 0x00, (uint16_t)(10 + i), 1, 0, 0, NULL);
        put_sqe(&s, e);
    }
    sq_db(c, 1, s.tail);
    s.size = 2;
    settle();
    struct cqe a = reap(c, &s, 0);
    CHECK(a.ok && a.cid == 10 && a.sqhd == 1);
    settle();
    struct cqe b = reap(c, &s, 0);
    CHECK(b.ok && b.cid == 11);
    settle();
    struct cqe d = reap(c, &s, 5000);
    CHECK(d.ok && d.cid == 12 && d.sqhd == 3);
    CHECK(!vector_fired(c, 1)); /* interrupts off */
    CHECK(run(c, aq, 0x00, 0, 0, 0, CDW(1), NULL) == 0);
    CHECK(run(c, aq, 0x04, 0, 0, 0, CDW(1), NULL) == 0);
}

/* Invalid doorbells are errors reported through a held AER; the error log re-arms it. */
static void test_aer(struct ctl *c, struct q *aq)
{
    uint8_t e[64];
    for (unsigned i = 0; i < 4; i++) {
        make_sqe(e, 0x0c, (uint16_t)(0x100 + i), 0, 0, 0, NULL);
        put_sqe(aq, e);
    }
    sq_db(c, 0, aq->tail);
    settle();
    CHECK(!reap(c, aq, 0).ok); /* held */
    CHECK(run(c, aq, 0x0c, 0, 0, 0, NULL, NULL) == NVME_AER_LIMIT);
    sq_db(c, 9, 1); /* no SQ 9 */
    struct cqe r = reap(c, aq, 5000);
    CHECK(r.ok && r.cid == 0x103 && r.status == 0 && r.dw0 == (0 | 0 << 8 | 1u << 16));
    sq_db(c, 0, 40); /* past the admin SQ's 32 entries: masked until the log is read */
    settle();
    CHECK(!reap(c, aq, 0).ok);
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(1 | 15u << 16), NULL) == 0);
    cq_db(c, 0, (aq->head + 5) % aq->size); /* a head past what was posted */
    r = reap(c, aq, 5000);
    CHECK(r.ok && r.cid == 0x102 && r.dw0 == (1u << 8 | 1u << 16));
    CHECK(run(c, aq, 0x02, 0, ID_GPA, 0, CDW(1 | 15u << 16), NULL) == 0);
}

static void test_readonly(void)
{
    struct nvme *n;
    CHECK(
        nvme_create_dev(drv_vm,
                        &(struct vm_disk){
                            .path = img_ro, .readonly = true, .format = "raw", .bus = VM_DISK_NVME},
                        true, &n) == 0);
    struct ctl c = find(n);
    c.qbase = 0x800000;
    struct q aq;
    uint8_t before[4096];
    int fd = open(img_ro, O_RDONLY);
    CHECK(pread(fd, before, sizeof(before), 0) == (ssize_t)sizeof(before));
    close(fd);
    bring_up(&c, &aq);
    CHECK(run(&c, &aq, 0x06, 1, ID_GPA, 0, CDW(0), NULL) == 0);
    CHECK(ram(ID_GPA, 4096)[99] == 1); /* NSATTR: write protected */
    CHECK(run(&c, &aq, 0x06, 0, ID_GPA, 0, CDW(1), NULL) == 0);
    CHECK(le16_get(ram(ID_GPA + 520, 2)) == 0);
    struct q q = io_q(&c, &aq, 8);
    memset(ram(DATA_GPA, 4096), 0x5a, 4096);
    CHECK(run(&c, &q, 0x01, 1, DATA_GPA, 0, CDW(0, 0, 7), NULL) == NVME_WRITE_PROTECTED);
    CHECK(run(&c, &q, 0x08, 1, 0, 0, CDW(0, 0, 7), NULL) == NVME_WRITE_PROTECTED);
    CHECK(run(&c, &q, 0x09, 1, ID_GPA, 0, CDW(0, 1u << 2), NULL) == NVME_WRITE_PROTECTED);
    CHECK(run(&c, &q, 0x02, 1, DATA_GPA, 0, CDW(0, 0, 7), NULL) == 0);
    CHECK(memcmp(ram(DATA_GPA, 4096), before, 4096) == 0);
    CHECK(run(&c, &q, 0x00, 1, 0, 0, NULL, NULL) == 0);
    CHECK(image_is(img_ro, 0, before, sizeof(before)));

    /* Shutdown, then a controller reset: queues gone. */
    wreg(&c, NVME_REG_CC, CC_GOOD | 1u << 14);
    CHECK(wait_csts(&c, NVME_CSTS_SHST, NVME_SHST_DONE));
    wreg(&c, NVME_REG_CC, 0);
    CHECK(wait_csts(&c, NVME_CSTS_RDY, 0));
    bring_up(&c, &aq);
    CHECK(reg(&c, NVME_REG_CSTS) == NVME_CSTS_RDY);
    CHECK(run(&c, &aq, 0x00, 0, 0, 0, CDW(1), NULL) == NVME_QID_INVALID);

    /* Device reset: power-on registers, MSI-X off. */
    devices_quiesce(drv_vm);
    n->dev.ops->reset(&n->dev);
    devices_resume(drv_vm);
    CHECK(!msix_enabled(&n->msix) && cfg_rd(c.slot, 4, 2) == 0);
    cfg_wr(c.slot, 4, 0x0002, 2);
    CHECK(reg(&c, NVME_REG_CC) == 0 && reg(&c, NVME_REG_CSTS) == 0 && reg(&c, NVME_REG_AQA) == 0);
}

/* ---- save and load ---- */

static struct state_out sec;

static int load_into(struct nvme *n, const uint8_t *p, size_t len, char *why)
{
    struct state_in in;
    state_in_init(&in, p, len);
    int r = n->dev.ops->load(&n->dev, &in);
    if (r == 0)
        r = state_in_end(&in);
    snprintf(why, STATE_WHY_MAX, "%s", in.why);
    return r;
}

static bool refused(struct nvme *n, size_t off, const void *val, size_t len, size_t cut,
                    const char *expect)
{
    uint8_t *copy = malloc(sec.len);
    char why[STATE_WHY_MAX];
    memcpy(copy, sec.buf, sec.len);
    if (val)
        memcpy(copy + off, val, len);
    int r = load_into(n, copy, cut ? cut : sec.len, why);
    free(copy);
    bool ok = r < 0 && strstr(why, expect);
    if (!ok)
        fprintf(stderr, "expected a refusal with \"%s\", got %d \"%s\"\n", expect, r, why);
    return ok;
}

static void test_save(struct ctl *c, struct q *aq)
{
    struct q q = io_q(c, aq, 16);
    uint8_t e[64];
    make_sqe(e, 0x0c, 0x200, 0, 0, 0, NULL); /* an AER held across */
    put_sqe(aq, e);
    sq_db(c, 0, aq->tail);
    fill(ram(DATA_GPA, 4096), 4096, 9);
    CHECK(run(c, &q, 0x01, 1, DATA_GPA, 0, CDW(50, 0, 7), NULL) == 0);

    /* Quiesced: a command queued now waits, and is saved as queued. */
    devices_quiesce(&vma);
    fill(ram(DATA_GPA + 0x1000, 4096), 4096, 10);
    make_sqe(e, 0x01, 0x300, 1, DATA_GPA + 0x1000, 0, CDW(60, 0, 7));
    put_sqe(&q, e);
    sq_db(c, 1, q.tail);
    settle();
    CHECK(!reap(c, &q, 0).ok);
    state_out_init(&sec);
    CHECK(c->n->dev.ops->save(&c->n->dev, &sec) == 0 && !sec.failed);

    /* VM b: the same command line, a copy of the image, the RAM copied. */
    int src = open(img, O_RDONLY), dst = open(img_b, O_WRONLY);
    uint8_t *buf = malloc(DISK_MIB * MiB);
    CHECK(pread(src, buf, DISK_MIB * MiB, 0) == (ssize_t)(DISK_MIB * MiB));
    CHECK(pwrite(dst, buf, DISK_MIB * MiB, 0) == (ssize_t)(DISK_MIB * MiB));
    close(src);
    close(dst);
    free(buf);
    make_vm(&vmb);
    struct nvme *nb;
    CHECK(nvme_create_dev(&vmb, &(struct vm_disk){.path = img_b, .format = "raw"}, true, &nb) == 0);
    memcpy(vmb.mem.base, vma.mem.base, vma.mem.size);
    devices_quiesce(&vmb);

    /* Damaged sections first (each refused whole), then the real one. */
    size_t pci = 2 + le16_get(sec.buf) + 6 * 9, nv = pci + 4 + 16 * NVME_VECTORS + 3;
    size_t q1 = nv + 77 + 2 * 3 + 3 + 32 + 2 + 49 * 1; /* 3 AERs held */
    uint32_t bad32 = 0xffffffff, big = 4096;
    uint64_t far = (uint64_t)1 << 40, sectors = 5;
    uint16_t vec = 40, cq9 = 9;
    uint8_t two = 2;
    CHECK(refused(nb, 0, NULL, 0, sec.len - 1, "ends early"));
    CHECK(refused(nb, nv, &sectors, 8, 0, "the namespace had 5 blocks"));
    CHECK(refused(nb, nv + 9, &bad32, 4, 0, "reserved bits"));
    CHECK(refused(nb, nv + 13, &bad32, 4, 0, "not a status"));
    CHECK(refused(nb, nv + 42, &two, 1, 0, "a flag holds 2"));
    CHECK(refused(nb, q1 + 9, &big, 4, 0, "out of range"));
    CHECK(refused(nb, q1 + 1, &far, 8, 0, "SQ 1 lies outside guest RAM"));
    CHECK(refused(nb, q1 + 21, &cq9, 2, 0, "SQ 1 completes on CQ 9"));
    CHECK(refused(nb, q1 + 24 + 23, &vec, 2, 0, "vector 40 is past the MSI-X table"));
    CHECK(refused(nb, q1 + 24 + 3, &far, 8, 0, "CQ 1 lies outside guest RAM"));
    uint8_t *longer = calloc(1, sec.len + 1);
    char why[STATE_WHY_MAX];
    memcpy(longer, sec.buf, sec.len);
    CHECK(load_into(nb, longer, sec.len + 1, why) < 0 && strstr(why, "not read"));
    free(longer);
    CHECK(load_into(nb, sec.buf, sec.len, why) == 0);

    /* b carries on: the queued write is served, the AER still held, positions kept. */
    devices_resume(&vmb);
    drv_vm = &vmb;
    struct ctl cb = find(nb);
    CHECK(cb.bar == c->bar);
    CHECK(reg(&cb, NVME_REG_CSTS) == NVME_CSTS_RDY && reg(&cb, NVME_REG_CC) == CC_GOOD);
    struct cqe r = reap(&cb, &q, 5000);
    CHECK(r.ok && r.cid == 0x300 && r.status == 0 && r.sqhd == q.tail);
    CHECK(image_is(img_b, 60 * 512, ram(DATA_GPA + 0x1000, 4096), 4096));
    CHECK(image_is(img_b, 50 * 512, ram(DATA_GPA, 4096), 4096));
    CHECK(run(&cb, &q, 0x02, 1, DATA_GPA + 0x3000, 0, CDW(60, 0, 7), NULL) == 0);
    CHECK(memcmp(ram(DATA_GPA + 0x3000, 4096), ram(DATA_GPA + 0x1000, 4096), 4096) == 0);
    sq_db(&cb, 7, 0);
    r = reap(&cb, aq, 5000);
    CHECK(r.ok && r.cid == 0x200 && r.dw0 == 1u << 16);
    CHECK(run(&cb, aq, 0x06, 0, ID_GPA, 0, CDW(1), NULL) == 0);
    state_out_free(&sec);
    devices_destroy(&vmb);
}

int main(void)
{
    hv_log_init("test");
    int fd;
    CHECK((fd = mkstemp(img)) >= 0 && ftruncate(fd, DISK_MIB * MiB) == 0 && close(fd) == 0);
    CHECK((fd = mkstemp(img_b)) >= 0 && ftruncate(fd, DISK_MIB * MiB) == 0 && close(fd) == 0);
    CHECK((fd = mkstemp(img_ro)) >= 0);
    uint8_t junk[4096];
    fill(junk, sizeof(junk), 77);
    CHECK(pwrite(fd, junk, sizeof(junk), 0) == (ssize_t)sizeof(junk) &&
          ftruncate(fd, 1 * MiB) == 0 && close(fd) == 0);

    make_vm(&vma);
    drv_vm = &vma;
    struct nvme *n;
    CHECK(nvme_create_dev(&vma,
                          &(struct vm_disk){.path = img, .format = "raw", .bus = VM_DISK_NVME},
                          true, &n) == 0);
    struct ctl c = find(n);
    struct q aq;
    test_registers(&c);
    bring_up(&c, &aq);
    CHECK(vector_fired(&c, 0) == false);
    test_identify(&c, &aq);
    CHECK(vector_fired(&c, 0));
    test_features_and_logs(&c, &aq);
    test_queues(&c, &aq);
    test_io(&c, &aq);
    test_aer(&c, &aq);
    test_readonly();
    drv_vm = &vma;
    test_save(&c, &aq);
    devices_destroy(&vma);
    unlink(img);
    unlink(img_b);
    unlink(img_ro);
    CHECK_DONE();
}
