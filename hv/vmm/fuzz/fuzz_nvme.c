// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: a hostile driver of the NVMe controller (hw/nvme.c,
 * hw/nvme_cmd.c) on a VM without KVM, the controller served on the fuzzer's
 * thread (nvme_run) after each operation. Each input starts from a fresh
 * controller on a 1 MiB raw image (in /dev/shm); unless its first byte says otherwise the
 * harness enables it and creates I/O queue pair 1, as a driver's probe does.
 *
 * Input: byte 0 (bit 0: skip the bring-up), then operations, byte 0 of each
 * picking one (low 3 bits) and a variant, then its operands:
 *   0  a submission queue entry on queue 0-2, from the input (opcode from a
 *      list or raw, NSID, PRP1/PRP2 in RAM, on a page, in the PRP list area
 *      or raw, CDW10-15), the tail doorbell rung
 *   1  a register write (CC, AQA, ASQ, ACQ, INTMS/INTMC..., 4 or 8 bytes)
 *   2  a doorbell write, any queue, any value
 *   3  guest RAM: 8 bytes (PRP list entries, queue entries changing under
 *      the controller)
 *   4  the driver consumes completions of a queue and rings its head
 *   5  PCI config: command register, MSI-X control, BAR 0
 *   6  controller reset (CC.EN 0) and enable again
 *   7  a save/load round trip into a fresh controller, or a device reset
 *
 * Checked besides ASan/UBSan: after a device reset CSTS and CC read 0 and
 * the controller writes nothing into (zeroed) guest RAM whatever the guest
 * rings; a saved controller loads into a fresh one and saves the same bytes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "hw/nvme.h"
#include "hw/nvme_int.h"
#include "le.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "virtio/fuzz/vmfuzz.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASQ  0x10000
#define ACQ  0x11000
#define IOSQ 0x20000 /* + 0x10000 per queue */
#define IOCQ 0x18000 /* + 0x1000 per queue */
#define LIST 0x100000
#define DATA 0x200000

/* Two images on a tmpfs, where a flush costs nothing. */
static char image[64], image2[64];

struct drvq {
    uint64_t sq, cq;
    uint32_t size, tail, head;
    bool phase;
};

struct h {
    struct vm vm;
    struct nvme *n;
    uint64_t bar;
    struct drvq q[3];
};

static void cfg_write(struct vm *vm, unsigned off, uint32_t v, unsigned len)
{
    fz_bus_write(&vm->pio, 0xcf8, 0x80000000u | 1u << 11 | (off & 0xfc), 4);
    fz_bus_write(&vm->pio, 0xcfc + (off & 3), v, len);
}

static void make(struct h *h, const char *path)
{
    memset(h, 0, sizeof(*h));
    fz_vm_init(&h->vm);
    if (nvme_create_dev(&h->vm, &(struct vm_disk){.path = path, .format = "raw"}, false, &h->n) < 0)
        __builtin_trap();
    struct pci_device *p = nvme_pci(h->n);
    h->bar = le32_get(p->cfg + 0x10) & ~0xfu;
    cfg_write(&h->vm, 0x04, 6, 2); /* memory decoding, bus master */
    cfg_write(&h->vm, h->n->msix.cap + 2, 0x8000, 2);
}

static void drop(struct h *h)
{
    devices_destroy(&h->vm);
    pci_bus_destroy(h->vm.pci);
    io_bus_destroy(&h->vm.pio);
    io_bus_destroy(&h->vm.mmio);
    guest_mem_destroy(&h->vm.mem);
    free(h->n);
}

static void reg_w(struct h *h, unsigned off, uint64_t v, unsigned len)
{
    fz_bus_write(&h->vm.mmio, h->bar + off, v, len);
    nvme_run(h->n);
}

static void enable(struct h *h)
{
    reg_w(h, NVME_REG_CC, 0, 4);
    reg_w(h, NVME_REG_AQA, 15 | 15u << 16, 4);
    reg_w(h, NVME_REG_ASQ, ASQ, 8);
    reg_w(h, NVME_REG_ACQ, ACQ, 8);
    reg_w(h, NVME_REG_CC, NVME_CC_EN | 6u << 16 | 4u << 20, 4);
    memset(h->q, 0, sizeof(h->q));
    h->q[0] = (struct drvq){ASQ, ACQ, 16, 0, 0, true};
}

static void submit(struct h *h, unsigned qi, const uint8_t *e)
{
    struct drvq *q = &h->q[qi];
    if (!q->size)
        return;
    uint8_t *p = guest_mem_ptr(&h->vm.mem, q->sq + 64ull * q->tail, 64);
    if (p)
        memcpy(p, e, 64);
    q->tail = (q->tail + 1) % q->size;
    reg_w(h, NVME_DB_BASE + 8 * qi, q->tail, 4);
}

static void reap(struct h *h, unsigned qi)
{
    struct drvq *q = &h->q[qi];
    if (!q->size)
        return;
    for (unsigned i = 0; i < q->size; i++) {
        uint8_t *p = guest_mem_ptr(&h->vm.mem, q->cq + 16ull * q->head, 16);
        if (!p || ((le32_get(p + 12) >> 16) & 1) != q->phase)
            break;
        if (++q->head == q->size) {
            q->head = 0;
            q->phase = !q->phase;
        }
    }
    reg_w(h, NVME_DB_BASE + 8 * qi + 4, q->head, 4);
}

/* Queue pair qi (1 or 2) made through admin commands, as a driver does. */
static void create_pair(struct h *h, unsigned qi, uint32_t size, uint16_t iv, bool ien)
{
    uint8_t e[64] = {0};
    uint64_t sq = IOSQ + 0x10000ull * (qi - 1), cq = IOCQ + 0x1000ull * (qi - 1);
    e[0] = 0x05;
    le64_put(e + 24, cq);
    le32_put(e + 40, qi | (size - 1) << 16);
    le32_put(e + 44, 1u | (ien ? 2u : 0) | (uint32_t)iv << 16);
    submit(h, 0, e);
    e[0] = 0x01;
    le64_put(e + 24, sq);
    le32_put(e + 44, 1u | qi << 16);
    submit(h, 0, e);
    reap(h, 0);
    h->q[qi] = (struct drvq){sq, cq, size, 0, 0, true};
}

static uint64_t addr(struct fz *f)
{
    uint8_t b = fz_u8(f);
    switch (b & 3) {
    case 0:
        return DATA + (uint64_t)(fz_u16(f) & 0xfffc);
    case 1:
        return (uint64_t)(fz_u16(f) % (FZ_RAM / 4096 + 4)) * 4096; /* a page, maybe past RAM */
    case 2:
        return LIST + (uint64_t)(fz_u16(f) & 0x3ff8);
    default:
        return fz_u64(f);
    }
}

static void sqe_op(struct h *h, struct fz *f, uint8_t op)
{
    static const uint8_t admin[] = {0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0c};
    static const uint8_t io[] = {0x00, 0x01, 0x02, 0x08, 0x09};
    unsigned qi = (op >> 3) % 3;
    uint8_t e[64] = {0}, b = fz_u8(f);
    if (qi == 0)
        e[0] = b & 0x80 ? fz_u8(f) : admin[b % sizeof(admin)];
    else
        e[0] = b & 0x80 ? fz_u8(f) : io[b % sizeof(io)];
    e[1] = b & 0x40 ? fz_u8(f) : 0;
    le16_put(e + 2, fz_u16(f));
    uint8_t ns = fz_u8(f);
    le32_put(e + 4, ns & 1 ? fz_u32(f) : (ns & 2 ? 0xffffffffu : 1));
    le64_put(e + 24, addr(f));
    le64_put(e + 32, addr(f));
    for (unsigned i = 0; i < 6; i++) {
        uint8_t k = fz_u8(f);
        uint32_t v = k & 1 ? fz_u32(f) : k & 2 ? fz_u16(f) : k >> 2;
        le32_put(e + 40 + 4 * i, v);
    }
    submit(h, qi, e);
}

/* The controller's section, or trap. */
static void round_trip(struct h *h)
{
    struct state_out o;
    fz_save_device(&h->vm, h->n->name, &o);
    struct h *h2 = calloc(1, sizeof(*h2));
    make(h2, image2); /* the first image is locked by h */
    /* (Load reads no guest RAM: the queues are checked to lie in it, not read.) */
    fz_load_compare(&h2->vm, h2->n->name, &o);
    drop(h2);
    free(h2);
    state_out_free(&o);
    devices_resume(&h->vm);
}

static void device_reset(struct h *h)
{
    devices_quiesce(&h->vm);
    devices_reset(&h->vm);
    devices_resume(&h->vm);
    memset(h->vm.mem.base, 0, h->vm.mem.size);
    cfg_write(&h->vm, 0x04, 6, 2);
    struct pci_device *p = nvme_pci(h->n);
    h->bar = p->bar_addr[0];
    if (fz_bus_read(&h->vm.mmio, h->bar + NVME_REG_CSTS, 4) ||
        fz_bus_read(&h->vm.mmio, h->bar + NVME_REG_CC, 4))
        __builtin_trap();
    for (unsigned q = 0; q < 3; q++) /* doorbells of the old queues: nothing happens */
        reg_w(h, NVME_DB_BASE + 8 * q, 1, 4);
    if (!fz_ram_is_zero(&h->vm))
        __builtin_trap();
    memset(h->q, 0, sizeof(h->q));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        if (!getenv("FUZZ_LOGS"))
            hv_log_set_level(HV_LOG_ERROR);
        for (unsigned i = 0; i < 2; i++) {
            char *path = i ? image2 : image;
            snprintf(path, 64, "%s/hv-fuzz-nvme-XXXXXX",
                     access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
            int fd = mkstemp(path);
            if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
                __builtin_trap();
            close(fd);
        }
    }
    struct h *h = calloc(1, sizeof(*h));
    make(h, image);
    struct fz f = {data, size};
    if (!(fz_u8(&f) & 1)) {
        enable(h);
        create_pair(h, 1, 16, 1, true);
    }
    for (unsigned ops = 0; f.n && ops < 256; ops++) {
        uint8_t op = fz_u8(&f);
        switch (op & 7) {
        case 0:
            sqe_op(h, &f, op);
            break;
        case 1: {
            static const unsigned regs[] = {NVME_REG_CC,   NVME_REG_AQA,     NVME_REG_ASQ,
                                            NVME_REG_ACQ,  NVME_REG_INTMS,   NVME_REG_INTMC,
                                            NVME_REG_CSTS, NVME_REG_ASQ + 4, 0x3c};
            unsigned r = regs[(op >> 3) % 9];
            reg_w(h, r, op & 0x80 ? fz_u64(&f) : fz_u32(&f), op & 0x80 ? 8 : 4);
            break;
        }
        case 2:
            reg_w(h, NVME_DB_BASE + 4 * (fz_u8(&f) % 40), op & 0x80 ? fz_u32(&f) : fz_u8(&f), 4);
            break;
        case 3: {
            uint64_t a = fz_u32(&f) % FZ_RAM & ~7ull, v = fz_u64(&f);
            uint8_t *p = guest_mem_ptr(&h->vm.mem, a, 8);
            if (p)
                memcpy(p, &v, 8);
            break;
        }
        case 4:
            reap(h, (op >> 3) % 3);
            break;
        case 5: {
            static const unsigned offs[] = {0x04, 0x10, 0x14};
            uint8_t which = fz_u8(&f);
            if (which & 0x80)
                cfg_write(&h->vm, h->n->msix.cap + 2, fz_u16(&f), 2);
            else
                cfg_write(&h->vm, offs[which % 3], fz_u32(&f), 4);
            struct pci_device *p = nvme_pci(h->n);
            if (p->bar_addr[0] && p->bar_mapped[0])
                h->bar = p->bar_addr[0];
            nvme_run(h->n);
            break;
        }
        case 6:
            enable(h);
            if (op & 0x80)
                create_pair(h, 1 + ((op >> 3) & 1), 2 + fz_u8(&f) % 32, fz_u8(&f) % 20,
                            fz_u8(&f) & 1);
            break;
        case 7:
            if (op & 0x80)
                device_reset(h);
            else
                round_trip(h);
            break;
        }
    }
    drop(h);
    free(h);
    return 0;
}
