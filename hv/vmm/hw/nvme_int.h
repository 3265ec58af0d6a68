/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NVMe controller's insides, shared by nvme.c (registers, queues, the
 * device thread, lifecycle) and nvme_cmd.c (admin and I/O commands, PRPs).
 */
#ifndef HV_VMM_HW_NVME_INT_H
#define HV_VMM_HW_NVME_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "device.h"
#include "mem.h"
#include "msix.h"
#include "pci.h"
#include "virtio/blk.h"

#define NVME_PAGE      4096u /* CC.MPS 0: the only memory page size (CAP.MPSMIN = MPSMAX = 0) */
#define NVME_MAX_IOQ   16    /* I/O submission and completion queues, each */
#define NVME_NR_Q      (NVME_MAX_IOQ + 1) /* with the admin pair, queue id 0 */
#define NVME_MQES      1023               /* CAP.MQES: 1024 entries per queue at most */
#define NVME_MDTS      7                  /* 2^7 pages = 512 KiB per command */
#define NVME_MAX_XFER  (NVME_PAGE << NVME_MDTS)
#define NVME_MAX_SEGS  ((NVME_MAX_XFER / NVME_PAGE) + 1)
#define NVME_AERL      3 /* 4 Asynchronous Event Requests outstanding */
#define NVME_BAR_SIZE  0x4000
#define NVME_DB_BASE   0x1000 /* doorbells, CAP.DSTRD 0: 4 bytes apart */
#define NVME_MSIX_BAR  4
#define NVME_VECTORS   NVME_NR_Q
#define NVME_SQES      6 /* 64-byte submission entries */
#define NVME_CQES      4 /* 16-byte completion entries */
#define NVME_LBA_SHIFT 9
#define NVME_NSID      1

/* Registers (offsets in BAR 0). */
#define NVME_REG_CAP   0x00
#define NVME_REG_VS    0x08
#define NVME_REG_INTMS 0x0c
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC    0x14
#define NVME_REG_CSTS  0x1c
#define NVME_REG_NSSR  0x20
#define NVME_REG_AQA   0x24
#define NVME_REG_ASQ   0x28
#define NVME_REG_ACQ   0x30
#define NVME_REG_END   0x40

#define NVME_CC_EN       0x1u
#define NVME_CC_MASK     0x00fffff1u /* EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES */
#define NVME_CC_CSS(cc)  (((cc) >> 4) & 7)
#define NVME_CC_MPS(cc)  (((cc) >> 7) & 0xf)
#define NVME_CC_AMS(cc)  (((cc) >> 11) & 7)
#define NVME_CC_SHN(cc)  (((cc) >> 14) & 3)
#define NVME_CC_IOSQ(cc) (((cc) >> 16) & 0xf)
#define NVME_CC_IOCQ(cc) (((cc) >> 20) & 0xf)
#define NVME_CSTS_RDY    0x1u
#define NVME_CSTS_CFS    0x2u
#define NVME_CSTS_SHST   0xcu /* 00 normal, 01 occurring, 10 complete */
#define NVME_SHST_DONE   0x8u
#define NVME_AQA_MASK    0x0fff0fffu

/* Status: bits 7:0 the code, 10:8 its type; DNR is added to every error. */
#define NVME_SC(sct, sc)          ((uint16_t)((sct) << 8 | (sc)))
#define NVME_OK                   0
#define NVME_INVALID_OPCODE       NVME_SC(0, 0x01)
#define NVME_INVALID_FIELD        NVME_SC(0, 0x02)
#define NVME_DATA_XFER_ERROR      NVME_SC(0, 0x04)
#define NVME_INTERNAL             NVME_SC(0, 0x06)
#define NVME_INVALID_NS           NVME_SC(0, 0x0b)
#define NVME_CMD_SEQ_ERROR        NVME_SC(0, 0x0c)
#define NVME_PRP_OFFSET           NVME_SC(0, 0x13)
#define NVME_WRITE_PROTECTED      NVME_SC(0, 0x20)
#define NVME_LBA_RANGE            NVME_SC(0, 0x80)
#define NVME_CQ_INVALID           NVME_SC(1, 0x00)
#define NVME_QID_INVALID          NVME_SC(1, 0x01)
#define NVME_QUEUE_SIZE           NVME_SC(1, 0x02)
#define NVME_AER_LIMIT            NVME_SC(1, 0x05)
#define NVME_INVALID_VECTOR       NVME_SC(1, 0x08)
#define NVME_INVALID_LOG_PAGE     NVME_SC(1, 0x09)
#define NVME_INVALID_QUEUE_DELETE NVME_SC(1, 0x0c)
#define NVME_NOT_SAVEABLE         NVME_SC(1, 0x0d)
#define NVME_WRITE_FAULT          NVME_SC(2, 0x80)
#define NVME_READ_ERROR           NVME_SC(2, 0x81)

/* Asynchronous events the controller reports (type 0: error status). */
#define NVME_AEN_INVALID_DB       0x00 /* a doorbell of a queue that does not exist */
#define NVME_AEN_INVALID_DB_VALUE 0x01 /* a tail or head past the queue's end */

struct nvme_sqe {
    uint8_t opc, flags; /* flags: FUSE 1:0, PSDT 7:6 */
    uint16_t cid;
    uint32_t nsid;
    uint64_t prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct nvme_sq {
    bool live;
    uint64_t base;
    uint32_t size, head, tail; /* tail: the guest's doorbell, checked */
    uint16_t cqid;
    uint8_t prio;
};

struct nvme_cq {
    bool live, ien, phase;
    uint64_t base;
    uint32_t size, head, tail; /* head: the guest's doorbell, checked */
    uint16_t iv;
};

/* Set Features values (the ones the controller keeps). */
struct nvme_features {
    uint32_t arbitration, power, err_recovery, coalescing, write_atomic, async_cfg;
    uint16_t temp_over, temp_under;
    uint16_t nr_sq, nr_cq; /* Number of Queues: I/O queues allowed, 1..NVME_MAX_IOQ */
    bool vwc;              /* volatile write cache enabled */
};

struct nvme {
    struct device dev;
    struct pci_device pci;
    struct msix msix;
    struct vm *vm;
    struct blk_disk disk;
    char name[16];
    unsigned index;
    char serial[20], subnqn[64];
    uint8_t nguid[16];

    /*
     * Everything below under lock: the registers and doorbells that vCPUs
     * write, the queues and the controller state the device thread changes.
     * The thread drops it only for disk I/O and the data a command moves.
     */
    pthread_mutex_t lock;
    uint32_t cc, csts, aqa, intms;
    uint64_t asq, acq;
    bool reset_pending; /* CC.EN went 1 -> 0 since the thread last acted */
    bool running;       /* enabled: the admin queues are live, CSTS.RDY */
    struct nvme_sq sq[NVME_NR_Q];
    struct nvme_cq cq[NVME_NR_Q];
    struct nvme_features feat;
    uint16_t aer_cid[NVME_AERL + 1];
    uint8_t nr_aer;
    bool aen_pending, aen_masked; /* an error event waiting for an AER; reported, log unread */
    uint8_t aen_info;
    uint64_t units_read, units_written, reads, writes; /* SMART, in 1000 x 512 bytes */
    bool logged_ioerr, logged_guard;

    bool bus_master; /* PCI command bit 2: no DMA without it */
    bool quiesced;
    bool stopping; /* quiesce waits: the thread's work loop ends early */
    bool has_thread, thread_running;
    pthread_t thread;
    int kick_fd, stop_fd;
};

/* nvme.c */
void nvme_kick(struct nvme *n);
/* No room for another completion: the host has not moved its head (lock held). */
bool nvme_cq_full(const struct nvme_cq *cq);
void nvme_features_default(struct nvme *n);

/* nvme_cmd.c: one command, with n->lock held (admin) or not (I/O). dw0 is the result. */
uint16_t nvme_admin(struct nvme *n, const struct nvme_sqe *c, uint32_t *dw0, bool *no_completion);
uint16_t nvme_io(struct nvme *n, const struct nvme_sqe *c);
/* A raised error event is reported through a held AER: type 0, this info (lock held). */
void nvme_aen_error(struct nvme *n, uint8_t info);
void nvme_aen_deliver(struct nvme *n);
/* Post a completion on CQ cqid (lock held). */
void nvme_post(struct nvme *n, uint16_t cqid, uint16_t sqid, uint16_t cid, uint16_t status,
               uint32_t dw0);

/*
 * The host segments of a transfer of len bytes described by PRP1/PRP2 (and
 * PRP lists), every address checked against guest RAM. NVME_OK or a status.
 */
uint16_t nvme_prp_map(const struct guest_mem *mem, uint64_t prp1, uint64_t prp2, uint64_t len,
                      struct iovec *iov, unsigned max, unsigned *nr);
void nvme_sqe_decode(struct nvme_sqe *c, const uint8_t raw[64]);

#endif
