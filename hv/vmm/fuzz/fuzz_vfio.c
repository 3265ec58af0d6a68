// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: config space virtualisation of a passed-through PCI
 * function (vfio/config.c) and its trapped BARs and MSI-X table
 * (vfio/bar.c), on a fake device: a memfd holds its config space and BARs,
 * and the few VFIO ioctls the code makes on the device fd are answered here
 * (the link wraps ioctl()). The device is set up as vfio/device.c's
 * create_one() does, on a VM without KVM.
 *
 * Input: 256 bytes of the device's config space (its capability list, BAR
 * types, MSI-X table place...), a byte per BAR (size as log2, 0: none; 0x80:
 * mappable), then guest operations, from byte 0 of each: 0 a config cycle
 * through CF8/CFC, 1 one through ECAM, 2 a BAR access, 3 an MSI-X table
 * access, 4 the device changes one of its own registers, 5 a VM reset.
 *
 * Checked besides ASan/UBSan: whatever the guest writes, the device's own
 * BARs, ROM BAR, MSI-X message control and extended config space keep what
 * the host gave them, and INTx stays disabled in its command register.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices.h"
#include "log.h"
#include "util.h"
#include "vfio/vfio.h"
#include "virtio/fuzz/vmfuzz.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __wrap_ioctl(int fd, unsigned long req, ...);
int __real_ioctl(int fd, unsigned long req, ...);

#define CFG_SIZE   4096
#define BAR_OFF(i) (UINT64_C(0x100000) * ((i) + 1)) /* each BAR's place in the memfd */
#define BAR_MAX    (UINT64_C(1) << 20)

static int dev_fd = -1;                /* the fake device */
static uint64_t bar_size[PCI_NR_BARS]; /* what VFIO says each region is */
static bool bar_mmap[PCI_NR_BARS];

/* The fake VFIO device: region info, and success for interrupts and reset. */
int __wrap_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (fd != dev_fd || dev_fd < 0)
        return __real_ioctl(fd, req, arg);
    if (req == VFIO_DEVICE_GET_REGION_INFO) {
        struct vfio_region_info *ri = arg;
        unsigned i = ri->index;
        ri->cap_offset = 0;
        ri->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        if (i == VFIO_PCI_CONFIG_REGION_INDEX) {
            ri->offset = 0, ri->size = CFG_SIZE;
            return 0;
        }
        if (i >= PCI_NR_BARS || !bar_size[i]) {
            errno = EINVAL;
            return -1;
        }
        ri->offset = BAR_OFF(i), ri->size = bar_size[i];
        if (bar_mmap[i])
            ri->flags |= VFIO_REGION_INFO_FLAG_MMAP;
        return 0;
    }
    if (req == VFIO_DEVICE_SET_IRQS || req == VFIO_DEVICE_RESET)
        return 0;
    errno = ENOTTY;
    return -1;
}

static struct vm vm;
static struct vfio_vm vfio_vm;
static uint8_t raw[0x100]; /* the device's config space as the host left it */

static void create(struct vfio_pci *vp)
{
    memset(&vm, 0, sizeof(vm));
    vm.vm_fd = vm.kvm_fd = vm.event_fd = -1;
    vm.irq.vm_fd = -1;
    pthread_mutex_init(&vm.irq.lock, NULL);
    io_bus_init(&vm.pio, "pio");
    io_bus_init(&vm.mmio, "mmio");
    if (pci_bus_init(&vm.pci, &vm.pio, &vm.mmio))
        __builtin_trap();
    vp->vm = &vm;
    vp->fd = dev_fd;
    vp->group_fd = -1;
    vp->cfg_offset = 0;
    vp->cfg_size = CFG_SIZE;
    vp->flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
    snprintf(vp->bdf, sizeof(vp->bdf), "0000:00:05.0");
    vfio_vm = (struct vfio_vm){.container_fd = -1, .nr = 1, .devs = {vp}};
    vm.vfio = &vfio_vm;

    /* create_one(), past opening the device. */
    uint8_t cmd[2] = {0, 0x04};
    if (vfio_config_read(vp, 0, raw, sizeof(raw)) || vfio_config_write(vp, 0x04, cmd, 2))
        __builtin_trap();
    vp->pci.name = vp->bdf;
    if (vfio_config_setup(vp, raw) < 0 || vfio_bars_setup(vp, raw) < 0) {
        vp->pci.name = NULL; /* refused (a bridge): nothing registered */
        return;
    }
    if (vp->has_msix) {
        unsigned nr = MIN(vp->msix_real_nr, MSIX_MAX_VECTORS);
        if (!vp->bars[vp->msix_bar].size || msix_init_vectors(&vp->msix, &vp->pci, NULL, nr))
            vp->has_msix = false;
        else
            vp->msix.cap = vp->msix_cap;
    }
    vfio_config_hooks(vp);
    if (pci_register(vm.pci, &vp->pci) < 0)
        __builtin_trap();
    vfio_config_finish(vp, raw);
}

static void destroy(struct vfio_pci *vp)
{
    if (vp->has_msix)
        msix_destroy(&vp->msix);
    for (unsigned b = 0; b < PCI_NR_BARS; b++)
        for (unsigned i = 0; i < vp->bars[b].nr_maps; i++)
            munmap(vp->bars[b].maps[i].hva, vp->bars[b].maps[i].size);
    pci_bus_destroy(vm.pci);
    io_bus_destroy(&vm.pio);
    io_bus_destroy(&vm.mmio);
    pthread_mutex_destroy(&vm.irq.lock);
}

/* The bytes of the device that only the host may set (see the file comment). */
static bool host_only(const struct vfio_pci *vp, unsigned off)
{
    if ((off >= 0x10 && off < 0x28) || (off >= 0x30 && off < 0x34) || off >= 0x100)
        return true;
    return vp->has_msix && (off == vp->msix_cap + 2u || off == vp->msix_cap + 3u);
}

static void check_device(const struct vfio_pci *vp)
{
    static const uint8_t zero[CFG_SIZE - 0x100];
    static uint8_t now[CFG_SIZE];
    if (pread(dev_fd, now, CFG_SIZE, 0) != CFG_SIZE)
        __builtin_trap();
    bool changed = memcmp(now + 0x10, raw + 0x10, 0x18) || memcmp(now + 0x30, raw + 0x30, 4) ||
                   memcmp(now + 0x100, zero, sizeof(zero));
    if (vp->has_msix)
        changed |= memcmp(now + vp->msix_cap + 2, raw + vp->msix_cap + 2, 2) != 0;
    if (changed) {
        for (unsigned off = 0; off < CFG_SIZE; off++)
            if (host_only(vp, off) && now[off] != (off < sizeof(raw) ? raw[off] : 0))
                fprintf(stderr, "the guest changed the device's config byte 0x%x\n", off);
        __builtin_trap();
    }
    if (!(now[0x05] & 0x04))
        __builtin_trap(); /* INTx enabled in the device */
}

static uint64_t bar_addr(struct vfio_pci *vp, unsigned b)
{
    uint64_t a = pci_bar_addr(&vp->pci, b);
    return a ? a : le32_get(vp->pci.cfg + 0x10 + 4 * b) & ~UINT64_C(0xf);
}

static void op(struct vfio_pci *vp, struct fz *f)
{
    uint8_t b = fz_u8(f), wb;
    uint64_t v = 0;
    switch (b % 6) {
    case 0: {
        unsigned off = fz_u8(f);
        wb = fz_u8(f);
        v = fz_u32(f);
        fz_bus_write(&vm.pio, 0xcf8, 0x80000000u | vp->pci.slot << 11 | (off & 0xfc), 4);
        io_bus_access(&vm.pio, 0xcfc + (off & 3), (uint8_t *)&v, MIN(fz_width(wb), 4u), wb & 4);
        break;
    }
    case 1: {
        uint64_t off = (uint64_t)vp->pci.slot << 15 | (fz_u16(f) & 0xfff);
        wb = fz_u8(f);
        v = fz_u64(f);
        io_bus_access(&vm.mmio, MEM_PCI_ECAM_BASE + off, (uint8_t *)&v, fz_width(wb), wb & 4);
        break;
    }
    case 2:
    case 3: {
        bool table = b % 6 == 3 && vp->has_msix;
        unsigned bar = table ? vp->msix_bar : fz_u8(f) % PCI_NR_BARS;
        uint64_t size = vp->pci.bar_def[bar].size;
        uint64_t off = fz_u32(f) % (size + 16);
        if (table)
            off = vp->msix_table_off + off % (16 * (uint64_t)vp->msix_real_nr + 64);
        wb = fz_u8(f);
        v = fz_u64(f);
        struct io_bus *bus = vp->pci.bar_def[bar].is_io ? &vm.pio : &vm.mmio;
        io_bus_access(bus, bar_addr(vp, bar) + off, (uint8_t *)&v, fz_width(wb), wb & 4);
        break;
    }
    case 4: { /* the device's own registers change (status bits, a vendor capability) */
        uint8_t off = fz_u8(f), val = fz_u8(f);
        if (!host_only(vp, off) && off != 0x04 && off != 0x05 && pwrite(dev_fd, &val, 1, off) == 1)
            raw[off] = val;
        break;
    }
    default:
        vfio_reset(&vm);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dev_fd < 0) {
        hv_log_init("fuzz");
        dev_fd = memfd_create("fuzz-vfio", MFD_CLOEXEC);
        if (dev_fd < 0 || ftruncate(dev_fd, (off_t)BAR_OFF(PCI_NR_BARS)))
            __builtin_trap();
    }
    if (size < 0x100 + PCI_NR_BARS)
        return 0;
    /* The device: its config space, then its BARs' sizes. */
    static const uint8_t zero[CFG_SIZE];
    if (pwrite(dev_fd, zero, CFG_SIZE, 0) != CFG_SIZE || pwrite(dev_fd, data, 0x100, 0) != 0x100)
        __builtin_trap();
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        uint8_t s = data[0x100 + i];
        bar_size[i] = s & 0x1f ? MIN(UINT64_C(1) << ((s & 0x1f) + 3), BAR_MAX) : 0;
        if (s & 0x40)
            bar_size[i] -= bar_size[i] / 4; /* not a power of two: hidden */
        bar_mmap[i] = s & 0x80;
    }
    struct fz f = {data + 0x100 + PCI_NR_BARS, size - 0x100 - PCI_NR_BARS};
    struct vfio_pci *vp = calloc(1, sizeof(*vp));
    fz_log_begin();
    create(vp);
    unsigned ops = 0;
    if (vp->pci.name) {
        raw[0x04] = 0, raw[0x05] = 0x04; /* what create_one wrote */
        /* Firmware's part: decoding on, as a driver would want it. */
        fz_bus_write(&vm.pio, 0xcf8, 0x80000000u | vp->pci.slot << 11 | 0x04, 4);
        fz_bus_write(&vm.pio, 0xcfc, 0x0007, 2);
        for (; f.n && ops < 1024; ops++) {
            op(vp, &f);
            check_device(vp);
        }
    }
    if (fz_log_end() > 2 * ops + 8)
        __builtin_trap(); /* the guest can make us log without bound */
    destroy(vp);
    free(vp);
    return 0;
}
