// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * BARs of a passed-through function. Each BAR is registered with pci.c like
 * an emulated one (its handler traps accesses and forwards them to the
 * device with pread/pwrite), and where VFIO lets us mmap() the region, those
 * pages become KVM memory slots at the address the guest programmed, so the
 * guest reaches the device without an exit. The pages holding the MSI-X
 * table and PBA are never slots: the table is ours (msix.c).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "vfio.h"
#include "vm.h"

#define PAGE         UINT64_C(4096)
#define FIRST_SLOT   8 /* guest RAM has slots 0 and 1 */
#define SLOTS_PER_VP (PCI_NR_BARS * VFIO_BAR_MAX_PIECES)

/* Region info, with the capability chain when there is one (malloc'd). */
static struct vfio_region_info *region_info(int fd, unsigned index)
{
    struct vfio_region_info *info = calloc(1, sizeof(*info));
    if (!info)
        return NULL;
    info->argsz = sizeof(*info);
    info->index = index;
    if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, info) < 0) {
        free(info);
        return NULL;
    }
    if (info->argsz > sizeof(*info) && info->argsz < 65536) {
        uint32_t argsz = info->argsz;
        struct vfio_region_info *big = realloc(info, argsz);
        if (!big) {
            free(info);
            return NULL;
        }
        info = big;
        memset(info, 0, argsz);
        info->argsz = argsz;
        info->index = index;
        if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, info) < 0) {
            free(info);
            return NULL;
        }
    }
    return info;
}

/* The mmap()able areas of a region: the sparse list if VFIO gives one, else all of it. */
static unsigned mappable_areas(const struct vfio_region_info *info, struct vfio_piece *out,
                               unsigned max)
{
    if (!(info->flags & VFIO_REGION_INFO_FLAG_MMAP))
        return 0;
    if (info->flags & VFIO_REGION_INFO_FLAG_CAPS) {
        uint32_t off = info->cap_offset;
        for (unsigned guard = 0; off && guard < 16; guard++) {
            if (!range_within(off, sizeof(struct vfio_info_cap_header), info->argsz))
                break;
            const struct vfio_info_cap_header *h = (const void *)((const uint8_t *)info + off);
            if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP &&
                range_within(off, sizeof(struct vfio_region_info_cap_sparse_mmap), info->argsz)) {
                const struct vfio_region_info_cap_sparse_mmap *s = (const void *)h;
                uint64_t room = (info->argsz - off - sizeof(*s)) / sizeof(s->areas[0]);
                unsigned n = 0;
                for (uint32_t i = 0; i < s->nr_areas && i < room && n < max; i++) {
                    if (s->areas[i].size &&
                        range_within(s->areas[i].offset, s->areas[i].size, info->size))
                        out[n++] = (struct vfio_piece){s->areas[i].offset, s->areas[i].size, NULL};
                }
                return n;
            }
            off = h->next;
        }
    }
    out[0] = (struct vfio_piece){0, info->size, NULL};
    return 1;
}

/* Remove [start, end) from the pieces (page-aligned bounds). */
static void subtract(struct vfio_bar *bar, uint64_t start, uint64_t end)
{
    struct vfio_piece out[VFIO_BAR_MAX_PIECES];
    unsigned n = 0;
    for (unsigned i = 0; i < bar->nr_pieces; i++) {
        struct vfio_piece p = bar->pieces[i];
        uint64_t pend = p.off + p.size;
        if (end <= p.off || start >= pend) {
            if (n < VFIO_BAR_MAX_PIECES)
                out[n++] = p;
            continue;
        }
        if (start > p.off && n < VFIO_BAR_MAX_PIECES)
            out[n++] = (struct vfio_piece){p.off, start - p.off, p.hva};
        if (end < pend && n < VFIO_BAR_MAX_PIECES)
            out[n++] = (struct vfio_piece){end, pend - end, p.hva + (end - p.off)};
    }
    memcpy(bar->pieces, out, sizeof(out));
    bar->nr_pieces = n;
}

static void map_region(struct vfio_pci *vp, struct vfio_bar *bar,
                       const struct vfio_region_info *info)
{
    struct vfio_piece areas[VFIO_BAR_MAX_PIECES];
    unsigned n = mappable_areas(info, areas, VFIO_BAR_MAX_PIECES);

    for (unsigned i = 0; i < n; i++) {
        /* Whole pages only: KVM slots are page-granular. */
        if (areas[i].off % PAGE || areas[i].size % PAGE)
            continue;
        void *p = mmap(NULL, areas[i].size, PROT_READ | PROT_WRITE, MAP_SHARED, vp->fd,
                       (off_t)(bar->offset + areas[i].off));
        if (p == MAP_FAILED) {
            log_debug("%s: BAR %u: mmap of 0x%llx+0x%llx failed (%s): trapped instead", vp->bdf,
                      bar->index, (unsigned long long)areas[i].off,
                      (unsigned long long)areas[i].size, strerror(errno));
            continue;
        }
        areas[i].hva = p;
        bar->maps[bar->nr_maps++] = areas[i];
        bar->pieces[bar->nr_pieces++] = areas[i];
    }
    if (vp->has_msix && vp->msix_bar == bar->index) {
        uint64_t t = vp->msix_table_off, p = vp->msix_pba_off;
        uint64_t tlen = 16 * (uint64_t)vp->msix_real_nr, plen = (vp->msix_real_nr + 63) / 64 * 8;
        subtract(bar, t & ~(PAGE - 1), align_up(t + tlen, PAGE));
        subtract(bar, p & ~(PAGE - 1), align_up(p + plen, PAGE));
    }
}

int vfio_bars_setup(struct vfio_pci *vp, const uint8_t *raw)
{
    for (unsigned i = 0; i < PCI_NR_BARS; i++) {
        struct vfio_bar *bar = &vp->bars[i];
        bar->vp = vp;
        bar->index = i;
        struct vfio_region_info *info = region_info(vp->fd, VFIO_PCI_BAR0_REGION_INDEX + i);
        if (!info)
            continue;
        uint32_t reg = raw[0x10 + 4 * i] | raw[0x11 + 4 * i] << 8;
        if (info->size == 0 || (info->size & (info->size - 1)) ||
            info->size > (UINT64_C(1) << 40)) {
            free(info);
            continue;
        }
        bar->size = info->size;
        bar->offset = info->offset;
        bar->is_io = reg & 1;
        bar->is_64 = !bar->is_io && (reg & 6) == 4;
        bar->prefetch = !bar->is_io && (reg & 8);
        if (bar->is_64 && i == PCI_NR_BARS - 1) {
            free(info);
            bar->size = 0;
            continue;
        }
        if (bar->is_io && bar->size > 256) {
            log_warn("%s: I/O BAR %u is too big (%llu bytes): hidden", vp->bdf, i,
                     (unsigned long long)bar->size);
            free(info);
            bar->size = 0;
            continue;
        }
        /* pci.c's minimum sizes; the guest sees the padding read as all ones. */
        uint64_t min = bar->is_io ? 16 : PAGE;
        vp->pci.bar_def[i] = (struct pci_bar_def){
            .size = MAX(bar->size, min),
            .is_io = bar->is_io,
            .is_64 = bar->is_64,
            .handler = vfio_bar_access,
            .opaque = bar,
        };
        if (!bar->is_io)
            map_region(vp, bar, info);
        log_debug("%s: BAR %u: %s %llu bytes%s, %u direct piece(s)", vp->bdf, i,
                  bar->is_io   ? "I/O"
                  : bar->is_64 ? "64-bit memory"
                               : "memory",
                  (unsigned long long)bar->size, bar->prefetch ? " prefetchable" : "",
                  bar->nr_pieces);
        free(info);
        if (bar->is_64)
            i++; /* the upper half of this BAR */
    }
    return 0;
}

static int set_slot(struct vfio_pci *vp, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)hva,
    };
    return ioctl(vp->vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

static void unmap_slots(struct vfio_pci *vp, struct vfio_bar *bar)
{
    uint32_t base = FIRST_SLOT + vp->index * SLOTS_PER_VP + bar->index * VFIO_BAR_MAX_PIECES;
    if (!bar->slot_gpa)
        return;
    for (unsigned i = 0; i < bar->nr_pieces; i++)
        set_slot(vp, base + i, 0, 0, NULL); /* size 0 deletes the slot */
    bar->slot_gpa = 0;
}

/* Make the BARs' KVM slots follow where pci.c has them now (caller: cfg lock). */
void vfio_bars_sync(struct vfio_pci *vp)
{
    for (unsigned b = 0; b < PCI_NR_BARS; b++) {
        struct vfio_bar *bar = &vp->bars[b];
        if (!bar->nr_pieces)
            continue;
        uint64_t gpa = pci_bar_addr(&vp->pci, b);
        if (gpa == bar->slot_gpa)
            continue;
        unmap_slots(vp, bar);
        if (!gpa)
            continue;
        uint32_t base = FIRST_SLOT + vp->index * SLOTS_PER_VP + b * VFIO_BAR_MAX_PIECES;
        for (unsigned i = 0; i < bar->nr_pieces; i++) {
            const struct vfio_piece *p = &bar->pieces[i];
            int r = set_slot(vp, base + i, gpa + p->off, p->size, p->hva);
            if (r < 0) {
                /* Over RAM or another slot: the guest's mistake. Trapped accesses still work. */
                vfio_bad(vp,
                         "BAR %u at 0x%llx cannot be mapped directly (%s): accesses are "
                         "trapped",
                         b, (unsigned long long)gpa, strerror(-r));
                for (unsigned j = 0; j < i; j++)
                    set_slot(vp, base + j, 0, 0, NULL);
                gpa = 0;
                break;
            }
        }
        bar->slot_gpa = gpa;
    }
}

void vfio_bars_unmap(struct vfio_pci *vp)
{
    for (unsigned b = 0; b < PCI_NR_BARS; b++)
        unmap_slots(vp, &vp->bars[b]);
}

/* A trapped access: the MSI-X table and PBA are ours, the rest is the device's. */
void vfio_bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct vfio_bar *bar = opaque;
    struct vfio_pci *vp = bar->vp;

    if (vp->has_msix && vp->msix_bar == bar->index) {
        uint64_t t = vp->msix_table_off, p = vp->msix_pba_off;
        uint64_t tlen = 16 * (uint64_t)vp->msix_real_nr, plen = (vp->msix_real_nr + 63) / 64 * 8;
        if (off >= t && off - t < tlen) {
            /* Vectors beyond the ones we offer read 0 and ignore writes. */
            if (off - t + len <= 16 * (uint64_t)vp->msix.nr)
                msix_bar_access(&vp->msix, off - t, data, len, is_write);
            else if (!is_write)
                memset(data, 0, len);
            return;
        }
        if (off >= p && off - p < plen) {
            if (!is_write && off - p + len <= MSIX_BAR_SIZE - MSIX_PBA_OFF)
                msix_bar_access(&vp->msix, MSIX_PBA_OFF + (off - p), data, len, false);
            else if (!is_write)
                memset(data, 0, len);
            return;
        }
    }
    if (!range_within(off, len, bar->size)) {
        /* The padding up to pci.c's minimum BAR size. */
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    off_t at = (off_t)(bar->offset + off);
    ssize_t n = is_write ? pwrite(vp->fd, data, len, at) : pread(vp->fd, data, len, at);
    if (n != (ssize_t)len) {
        if (!is_write)
            memset(data, 0xff, len);
        vfio_bad(vp, "BAR %u: %s of %u bytes at 0x%llx failed", bar->index,
                 is_write ? "write" : "read", len, (unsigned long long)off);
    }
}
