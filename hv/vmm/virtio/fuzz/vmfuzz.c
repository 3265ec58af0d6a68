// SPDX-License-Identifier: GPL-2.0-or-later
/* The VM-level fuzz targets' common part: see vmfuzz.h. */
#include "vmfuzz.h"

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../../device.h"
#include "../../pci.h"
#include "state.h"
#include "util.h"

uint8_t fz_u8(struct fz *f)
{
    if (!f->n)
        return 0;
    f->n--;
    return *f->p++;
}

uint16_t fz_u16(struct fz *f)
{
    uint16_t lo = fz_u8(f);
    return (uint16_t)(lo | fz_u8(f) << 8);
}

uint32_t fz_u32(struct fz *f)
{
    uint32_t lo = fz_u16(f);
    return lo | (uint32_t)fz_u16(f) << 16;
}

uint64_t fz_u64(struct fz *f)
{
    uint64_t lo = fz_u32(f);
    return lo | (uint64_t)fz_u32(f) << 32;
}

unsigned fz_width(uint8_t b)
{
    return 1u << (b & 3);
}

void fz_vm_init(struct vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->vm_fd = vm->kvm_fd = vm->event_fd = -1;
    if (guest_mem_init(&vm->mem, FZ_RAM))
        __builtin_trap();
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    if (pci_bus_init(&vm->pci, &vm->pio, &vm->mmio))
        __builtin_trap();
    /* irq_line() and friends then fail with EBADF: no KVM, no interrupts. */
    vm->irq.vm_fd = -1;
    pthread_mutex_init(&vm->irq.lock, NULL);
}

void fz_vm_freeze(struct vm *vm)
{
    devices_quiesce(vm);
}

void fz_vm_restart(struct vm *vm)
{
    devices_reset(vm);
    memset(vm->mem.base, 0, vm->mem.size);
}

/* Every virtio device registers virtio.c's device_ops; their priv is the virtio_dev. */
unsigned fz_virtio_devs(struct vm *vm, struct virtio_dev **out, unsigned max)
{
    unsigned n = 0;
    for (struct device *d = vm->devices; d && n < max; d = d->next) {
        if (d->pci_slot < 0)
            continue;
        struct virtio_dev *vd = d->priv;
        if (vd->pci.vendor_id == 0x1af4 && &vd->dev == d)
            out[n++] = vd;
    }
    return n;
}

void fz_pump(struct virtio_dev *vd)
{
    /* A device may kick itself (DRIVER_OK serves what was queued): a few rounds. */
    for (int round = 0; round < 4; round++) {
        bool busy = false;
        for (unsigned q = 0; q < vd->nr_queues; q++) {
            uint64_t v;
            if (vd->queues[q].kernel_kick)
                continue;
            if (read(vd->queues[q].kick_efd, &v, sizeof(v)) == sizeof(v)) {
                virtio_handle_kick(vd, q);
                busy = true;
            }
        }
        for (unsigned k = 0; k < vd->nr_fds; k++) {
            int fd = vd->fds[k].fd;
            struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
            if (fd < 0 || poll(&p, 1, 0) != 1)
                continue;
            uint32_t ev =
                (p.revents & POLLIN ? EPOLLIN : 0) | (p.revents & POLLRDHUP ? EPOLLRDHUP : 0) |
                (p.revents & POLLHUP ? EPOLLHUP : 0) | (p.revents & POLLERR ? EPOLLERR : 0);
            pthread_mutex_lock(&vd->qlock);
            if (vd->fds[k].fd == fd)
                vd->fds[k].fn(vd, fd, ev, vd->fds[k].arg);
            pthread_mutex_unlock(&vd->qlock);
            busy = true;
        }
        if (!busy)
            break;
    }
}

/* ---- bus accesses ---- */

uint64_t fz_bus_read(struct io_bus *bus, uint64_t addr, unsigned len)
{
    uint64_t v = 0;
    io_bus_access(bus, addr, (uint8_t *)&v, len, false);
    return v;
}

void fz_bus_write(struct io_bus *bus, uint64_t addr, uint64_t v, unsigned len)
{
    io_bus_access(bus, addr, (uint8_t *)&v, len, true);
}

static void cfg_access(struct vm *vm, unsigned slot, unsigned off, unsigned len, uint32_t *v,
                       bool is_write)
{
    fz_bus_write(&vm->pio, 0xcf8, 0x80000000u | slot << 11 | (off & 0xfc), 4);
    io_bus_access(&vm->pio, 0xcfc + (off & 3), (uint8_t *)v, len, is_write);
}

static void cfg_write(struct vm *vm, unsigned slot, unsigned off, uint32_t v, unsigned len)
{
    cfg_access(vm, slot, off, len, &v, true);
}

/* Where the guest last put a BAR (what it would remember), mapped or not. */
static uint64_t bar_base(struct virtio_dev *vd, unsigned bar)
{
    uint64_t a = pci_bar_addr(&vd->pci, bar);
    if (!a)
        a = le32_get(vd->pci.cfg + 0x10 + 4 * bar) & ~0xfu;
    return a;
}

static void common_write(struct vm *vm, struct virtio_dev *vd, unsigned off, uint64_t v,
                         unsigned len)
{
    fz_bus_write(&vm->mmio, bar_base(vd, VIRTIO_BAR) + VIRTIO_COMMON_OFF + off, v, len);
}

static uint8_t status(struct vm *vm, struct virtio_dev *vd)
{
    return (uint8_t)fz_bus_read(&vm->mmio, bar_base(vd, VIRTIO_BAR) + VIRTIO_PCI_COMMON_STATUS, 1);
}

/* ---- driver steps ---- */

static void op_features(struct vm *vm, struct virtio_dev *vd, struct fz *f)
{
    uint8_t how = fz_u8(f);
    uint64_t want = fz_u64(f);
    if (!(how & 1))
        want = (want & vd->host_features) | 1ull << VIRTIO_F_VERSION_1; /* a driver that behaves */
    if (!(how & 2))
        common_write(vm, vd, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    common_write(vm, vd, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE, 1);
    common_write(vm, vd, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_DRIVER, 1);
    for (unsigned sel = 0; sel < 2; sel++) {
        common_write(vm, vd, VIRTIO_PCI_COMMON_DFSELECT, sel, 4);
        fz_bus_read(&vm->mmio, bar_base(vd, VIRTIO_BAR) + VIRTIO_PCI_COMMON_DF, 4);
        common_write(vm, vd, VIRTIO_PCI_COMMON_GFSELECT, sel, 4);
        common_write(vm, vd, VIRTIO_PCI_COMMON_GF, (uint32_t)(want >> (32 * sel)), 4);
    }
    common_write(vm, vd, VIRTIO_PCI_COMMON_STATUS,
                 status(vm, vd) | VIRTIO_CONFIG_S_FEATURES_OK | (how & 4 ? 4 : 0), 1);
}

/* Rings in the first 2 MiB, data buffers above. */
#define RING_AREA 0x10000u
#define DATA_AREA 0x200000u

static void op_queue(struct vm *vm, struct virtio_dev *vd, struct fz *f)
{
    unsigned q = fz_u8(f) % (vd->nr_queues + 1);
    uint8_t sz = fz_u8(f);
    uint16_t size = sz & 0x80 ? fz_u16(f) : (uint16_t)(1u << (sz % 9));
    uint64_t desc = RING_AREA * (1 + fz_u8(f) % 24);
    uint64_t avail = desc + 16ull * size, used = align_up(avail + 6 + 2ull * size, 4096);
    uint8_t vec = fz_u8(f);
    common_write(vm, vd, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
    common_write(vm, vd, VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
    common_write(vm, vd, VIRTIO_PCI_COMMON_Q_DESCLO, desc, 8);
    common_write(vm, vd, VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)avail, 4); /* in two halves */
    common_write(vm, vd, VIRTIO_PCI_COMMON_Q_AVAILHI, avail >> 32, 4);
    common_write(vm, vd, VIRTIO_PCI_COMMON_Q_USEDLO, used, 8);
    common_write(vm, vd, VIRTIO_PCI_COMMON_Q_MSIX, vec == 0xff ? VIRTIO_NO_VECTOR : vec, 2);
    if (!(sz & 0x40))
        common_write(vm, vd, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

static struct virtio_queue *pick_queue(struct virtio_dev *vd, struct fz *f)
{
    return &vd->queues[fz_u8(f) % vd->nr_queues];
}

/* The guest's view of its rings: the addresses it wrote (the device's copy of them). */
static void op_desc(struct vm *vm, struct virtio_dev *vd, struct fz *f)
{
    struct virtio_queue *vq = pick_queue(vd, f);
    uint8_t mode = fz_u8(f);
    uint16_t size = vq->size ? vq->size : 1;
    uint16_t i = fz_u16(f) % size;
    uint64_t addr = mode & 1 ? fz_u64(f) : DATA_AREA + fz_u32(f) % (FZ_RAM - DATA_AREA);
    uint32_t len = mode & 2 ? fz_u32(f) : fz_u16(f) % 0x2000;
    uint16_t flags = mode & 4 ? fz_u16(f) : (uint16_t)(mode >> 4 & 7);
    uint16_t next = mode & 8 ? fz_u16(f) : (uint16_t)(fz_u8(f) % size);
    uint8_t d[16];
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    /* An indirect table lives at a descriptor's address: mode 0x80 writes there instead. */
    uint64_t at =
        mode & 0x80 ? DATA_AREA + (uint64_t)(fz_u16(f) % 0x1000) * 16 : vq->desc + 16ull * i;
    guest_mem_write(&vm->mem, at, d, 16);
}

static void op_publish(struct vm *vm, struct virtio_dev *vd, struct fz *f)
{
    struct virtio_queue *vq = pick_queue(vd, f);
    uint16_t head = fz_u16(f), idx = 0, size = vq->size ? vq->size : 1;
    uint8_t how = fz_u8(f);
    guest_mem_read(&vm->mem, vq->driver + 2, &idx, 2);
    guest_mem_write(&vm->mem, vq->driver + 4 + 2ull * (idx % size), &head, 2);
    idx += how & 0x80 ? fz_u16(f) : 1; /* a driver may also lie about how many it added */
    guest_mem_write(&vm->mem, vq->driver + 2, &idx, 2);
    if (how & 1) { /* avail flags (NO_INTERRUPT) and used_event */
        uint16_t fl = how >> 1 & 1, ev = fz_u16(f);
        guest_mem_write(&vm->mem, vq->driver, &fl, 2);
        guest_mem_write(&vm->mem, vq->driver + 4 + 2ull * size, &ev, 2);
    }
}

static void op_msix_setup(struct vm *vm, struct virtio_dev *vd, struct fz *f)
{
    uint8_t ctrl = fz_u8(f);
    cfg_write(vm, vd->pci.slot, vd->msix.cap + 3, ctrl & 0xc0, 1);
    uint64_t base = bar_base(vd, VIRTIO_MSIX_BAR);
    for (unsigned n = ctrl & 3; n; n--) {
        unsigned i = fz_u8(f) % (vd->msix.nr + 1);
        fz_bus_write(&vm->mmio, base + 16 * i, 0xfee00000u, 4);
        fz_bus_write(&vm->mmio, base + 16 * i + 8, fz_u32(f), 4);
        fz_bus_write(&vm->mmio, base + 16 * i + 12, fz_u8(f) & 1, 4);
    }
}

enum {
    OP_CFG,      /* a config cycle through CF8/CFC */
    OP_CF8_RAW,  /* any access to CF8-CFF */
    OP_ECAM,     /* a config access through ECAM */
    OP_BAR0,     /* the virtio registers */
    OP_MSIX,     /* the MSI-X table and PBA */
    OP_MEM,      /* the guest writes its RAM */
    OP_FEATURES, /* reset, negotiate */
    OP_QUEUE,    /* set a queue up */
    OP_DESC,     /* write a descriptor */
    OP_PUBLISH,  /* make a chain available */
    OP_KICK,     /* notify, and let the device run */
    OP_STATUS,   /* write the status byte: DRIVER_OK, 0 (reset mid-request)... */
    OP_BAR_MOVE, /* reprogram BAR 0 or 2, or the command register */
    OP_PLATFORM, /* the VM resets every device (reboot), or the devices run */
    OP_HOST,     /* the host side of a device (the target's) */
    OP_MSIX_SETUP,
};

static bool trace; /* FUZZ_TRACE=1: each operation on stderr, for writing seeds */

static void one_op(struct vm *vm, struct virtio_dev **devs, unsigned ndev, struct fz *f,
                   fz_host_fn host)
{
    uint8_t b = fz_u8(f);
    struct virtio_dev *vd = devs[(b >> 4) % ndev];
    if (trace)
        fprintf(stderr, "op %u on %s, %zu bytes left\n", b & 15, vd->name, f->n);
    uint8_t wb = 0;
    uint32_t v32 = 0;
    uint64_t v64 = 0;

    switch (b & 15) {
    case OP_CFG: {
        unsigned off = fz_u8(f);
        wb = fz_u8(f);
        unsigned len = MIN(fz_width(wb), 4u);
        v32 = fz_u32(f);
        cfg_access(vm, wb & 0x80 ? fz_u8(f) % 32 : vd->pci.slot, off, len, &v32, wb & 4);
        break;
    }
    case OP_CF8_RAW:
        wb = fz_u8(f);
        v64 = fz_u32(f);
        io_bus_access(&vm->pio, 0xcf8 + (wb >> 4 & 7), (uint8_t *)&v64, MIN(fz_width(wb), 4u),
                      wb & 4);
        break;
    case OP_ECAM: {
        wb = fz_u8(f); /* width, direction, and 0x80: anywhere in ECAM (any slot, function) */
        uint32_t off = wb & 0x80 ? fz_u32(f) % (uint32_t)MEM_PCI_ECAM_SIZE
                                 : (uint32_t)vd->pci.slot << 15 | (fz_u16(f) & 0xfff);
        v64 = fz_u64(f);
        io_bus_access(&vm->mmio, MEM_PCI_ECAM_BASE + off, (uint8_t *)&v64, fz_width(wb), wb & 4);
        break;
    }
    case OP_BAR0:
    case OP_MSIX: {
        bool msix = (b & 15) == OP_MSIX;
        uint64_t off = fz_u16(f) % (msix ? MSIX_BAR_SIZE + 16 : VIRTIO_BAR_SIZE + 16);
        wb = fz_u8(f);
        v64 = fz_u64(f);
        uint64_t base = bar_base(vd, msix ? VIRTIO_MSIX_BAR : VIRTIO_BAR);
        io_bus_access(&vm->mmio, base + off, (uint8_t *)&v64, fz_width(wb), wb & 4);
        break;
    }
    case OP_MEM: {
        uint64_t gpa = fz_u32(f) % FZ_RAM;
        size_t len = fz_u8(f); /* (MIN evaluates its arguments twice) */
        len = MIN(len, f->n);
        guest_mem_write(&vm->mem, gpa, f->p, MIN(len, FZ_RAM - gpa));
        f->p += len, f->n -= len;
        break;
    }
    case OP_FEATURES:
        op_features(vm, vd, f);
        break;
    case OP_QUEUE:
        op_queue(vm, vd, f);
        break;
    case OP_DESC:
        op_desc(vm, vd, f);
        break;
    case OP_PUBLISH:
        op_publish(vm, vd, f);
        break;
    case OP_KICK: {
        uint8_t k = fz_u8(f);
        unsigned q = (k & 0x7f) % (VIRTIO_MAX_QUEUES + 8);
        fz_bus_write(&vm->mmio, bar_base(vd, VIRTIO_BAR) + VIRTIO_NOTIFY_OFF + 4ull * q, q, 2);
        if (!(k & 0x80)) /* else: pending, as if the device thread had not run yet */
            fz_pump(vd);
        if (trace && q < vd->nr_queues) {
            uint16_t u = 0;
            guest_mem_read(&vm->mem, vd->queues[q].device + 2, &u, 2);
            fprintf(stderr, "  %s q%u: status %#x, used idx %u\n", vd->name, q, status(vm, vd), u);
        }
        break;
    }
    case OP_STATUS: {
        uint8_t s = fz_u8(f);
        common_write(vm, vd, VIRTIO_PCI_COMMON_STATUS, s & 0x80 ? status(vm, vd) | (s & 0x7f) : s,
                     1);
        break;
    }
    case OP_BAR_MOVE:
        wb = fz_u8(f);
        v32 = fz_u32(f);
        if (wb & 1)
            cfg_write(vm, vd->pci.slot, 0x04, v32 & 0x7, 2); /* command */
        else
            cfg_write(vm, vd->pci.slot, wb & 2 ? 0x18 : 0x10, v32, 4);
        break;
    case OP_PLATFORM:
        if (fz_u8(f) & 1) {
            devices_reset(vm); /* with kicks in flight: nothing may land after it */
        } else {
            for (unsigned i = 0; i < ndev; i++)
                fz_pump(devs[i]);
        }
        break;
    case OP_HOST:
        if (host)
            host(vm, vd, f);
        break;
    case OP_MSIX_SETUP:
        op_msix_setup(vm, vd, f);
        break;
    }
}

unsigned fz_run_driver(struct vm *vm, struct fz *f, unsigned max_ops, fz_host_fn host)
{
    struct virtio_dev *devs[FZ_MAX_DEVS];
    unsigned ndev = fz_virtio_devs(vm, devs, FZ_MAX_DEVS), n = 0;
    if (!ndev)
        __builtin_trap();
    const char *t = getenv("FUZZ_TRACE");
    trace = t && *t == '1';
    /* The device is enabled as firmware leaves it: memory decoding, bus master. */
    for (unsigned i = 0; i < ndev; i++)
        cfg_write(vm, devs[i]->pci.slot, 0x04, 0x6, 2);
    while (f->n && n < max_ops) {
        one_op(vm, devs, ndev, f, host);
        n++;
    }
    for (unsigned i = 0; i < ndev; i++)
        fz_pump(devs[i]);
    for (unsigned i = 0; trace && i < ndev; i++) {
        for (unsigned q = 0; q < devs[i]->nr_queues; q++) {
            uint16_t u = 0;
            if (!devs[i]->queues[q].enabled)
                continue;
            guest_mem_read(&vm->mem, devs[i]->queues[q].device + 2, &u, 2);
            fprintf(stderr, "end: %s q%u: status %#x, used idx %u\n", devs[i]->name, q,
                    status(vm, devs[i]), u);
        }
    }
    return n;
}

/* ---- log lines ---- */

static FILE *real_stderr, *counting;
static unsigned log_lines;
static bool log_echo;

static ssize_t count_write(void *cookie, const char *buf, size_t len)
{
    (void)cookie;
    for (size_t i = 0; i < len; i++)
        log_lines += buf[i] == '\n';
    if (log_echo)
        fwrite(buf, 1, len, real_stderr);
    return (ssize_t)len;
}

void fz_log_begin(void)
{
    if (!counting) {
        real_stderr = stderr;
        counting = fopencookie(NULL, "w", (cookie_io_functions_t){.write = count_write});
        if (!counting)
            __builtin_trap();
        setvbuf(counting, NULL, _IONBF, 0);
        const char *e = getenv("FUZZ_LOGS");
        log_echo = e && *e == '1';
    }
    log_lines = 0;
    stderr = counting; /* hv's log writes to stderr; libFuzzer and ASan keep theirs */
}

unsigned fz_log_end(void)
{
    stderr = real_stderr;
    return log_lines;
}

bool fz_ram_is_zero(const struct vm *vm)
{
    static const uint8_t zero[64 * KiB];
    for (uint64_t off = 0; off < vm->mem.size; off += sizeof(zero))
        if (memcmp(vm->mem.base + off, zero, MIN(sizeof(zero), vm->mem.size - off)))
            return false;
    return true;
}

void fz_save_device(struct vm *vm, const char *name, struct state_out *o)
{
    struct device *d = device_find(vm, name);
    state_out_init(o);
    devices_quiesce(vm);
    if (!d || d->ops->save(d, o) < 0)
        __builtin_trap();
}

void fz_load_compare(struct vm *vm2, const char *name, const struct state_out *o)
{
    devices_quiesce(vm2);
    struct state_in in;
    state_in_init(&in, o->buf, o->len);
    struct device *d2 = device_find(vm2, name);
    if (!d2)
        __builtin_trap();
    if (d2->ops->load(d2, &in) < 0 || state_in_end(&in) < 0) {
        if (!strstr(in.why, "PCI BAR")) {
            if (getenv("FUZZ_LOGS"))
                fprintf(stderr, "load refused: %s\n", in.why);
            __builtin_trap();
        }
        return;
    }
    struct state_out o2;
    fz_save_device(vm2, name, &o2);
    if (o2.len != o->len || memcmp(o2.buf, o->buf, o->len))
        __builtin_trap();
    state_out_free(&o2);
}
