// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Bochs VBE display (docs/bochs-vbe.md). The framebuffer is a sealed
 * memfd: a KVM memory slot (with dirty logging) wherever the guest puts
 * BAR 0, and the very surface hv-switch maps, so no pixel is copied (a 15,
 * 16 or 24-bit mode, or one not starting on a page, is converted into a
 * shadow memfd of XRGB8888 instead, rows as they are damaged). Each
 * register write recomputes the picture (bochs_vbe_regs.c checks it against
 * the memfd's size) and hands hv-switch a new SCANOUT or BLANK when it
 * changed; a timer of the main loop turns the dirty log into DAMAGE.
 */
#include "bochs_vbe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bochs_vbe_regs.h"
#include "device.h"
#include "le.h"
#include "log.h"
#include "mem.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "virtio/gpu.h"
#include "vm.h"

#define POLL_NS      (33 * 1000 * 1000)   /* damage about 30 times a second */
#define SHADOW_MAX   (UINT64_C(32) << 20) /* a converted picture's memfd, at most */
#define VRAM_PAGES   (VBE_VRAM_SIZE / 4096)
#define QEXT_SIZE    8
#define QEXT_LE      0x1e1e1e1eu
#define VGA_AR_PAS   0x20 /* attribute index bit 5: the picture is on */
#define VGA_AR_PORT  0x3c0
#define VGA_IS1_PORT 0x3da /* reading it resets the attribute flip-flop */

struct bochs_vbe {
    struct device dev;
    struct pci_device pci;
    struct vm *vm;
    struct vbe_sink sink;

    pthread_mutex_t lock; /* everything below */
    struct vbe_regs regs;
    bool ar_data_next; /* the attribute port's flip-flop: the next write is data */
    uint8_t ar_index;  /* last attribute index written (bit 5: picture on) */
    int fd;
    uint8_t *vram;
    uint64_t slot_gpa; /* where the KVM slot is now, 0: none (accesses trap) */
    bool shown;        /* the sink has shown_mode; else it is blank */
    int shadow_fd;     /* XRGB8888 copy of a picture not shown directly, -1: none */
    uint8_t *shadow;
    size_t shadow_len;
    const char *why; /* why not, as last logged */
    struct vbe_mode shown_mode;
    bool damage_all; /* the next poll damages the whole picture */
    bool quiesced;
    uint64_t dirty[VRAM_PAGES / 64];
    bool has_thread;
    uint8_t edid[GPU_EDID_BYTES];
    /* The damage thread (only on a real KVM: tests poll by hand). */
    pthread_t thread;
    int timer_fd, stop_fd;
};

/* ---- the picture (lock held) ---- */

static void drop_shadow(struct bochs_vbe *v)
{
    if (v->shadow)
        munmap(v->shadow, v->shadow_len);
    if (v->shadow_fd >= 0)
        close(v->shadow_fd);
    v->shadow = NULL;
    v->shadow_fd = -1;
    v->shadow_len = 0;
}

static int make_shadow(struct bochs_vbe *v, size_t len)
{
    drop_shadow(v);
    int fd = memfd_create("hv-bochs-shadow", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        close(fd);
        return -err;
    }
    v->shadow_fd = fd;
    v->shadow = p;
    v->shadow_len = len;
    return 0;
}

static uint32_t expand(uint32_t c, unsigned bits)
{
    return c << (8 - bits) | c >> (2 * bits - 8);
}

/* Rows [y0, y1) of the picture into the shadow, as XRGB8888. */
static void convert_rows(struct bochs_vbe *v, uint32_t y0, uint32_t y1)
{
    const struct vbe_mode *m = &v->shown_mode;
    for (uint32_t y = y0; y < y1; y++) {
        const uint8_t *s = v->vram + m->offset + (uint64_t)m->stride * y;
        uint8_t *d = v->shadow + (size_t)m->width * 4 * y;
        for (uint32_t x = 0; x < m->width; x++) {
            uint32_t p;
            if (m->bpp == 32) {
                p = le32_get(s + 4 * x) & 0xffffff;
            } else if (m->bpp == 24) {
                p = (uint32_t)s[3 * x + 2] << 16 | (uint32_t)s[3 * x + 1] << 8 | s[3 * x];
            } else if (m->bpp == 16) {
                uint32_t q = le16_get(s + 2 * x);
                p = expand(q >> 11, 5) << 16 | expand((q >> 5) & 0x3f, 6) << 8 |
                    expand(q & 0x1f, 5);
            } else { /* 15 */
                uint32_t q = le16_get(s + 2 * x);
                p = expand((q >> 10) & 0x1f, 5) << 16 | expand((q >> 5) & 0x1f, 5) << 8 |
                    expand(q & 0x1f, 5);
            }
            le32_put(d + 4 * x, p);
        }
    }
}

/* Hand the sink a picture now valid: VRAM itself, or a converted copy. NULL or why not. */
static const char *show(struct bochs_vbe *v, const struct vbe_mode *m)
{
    v->shown_mode = *m;
    if (vbe_mode_direct(m)) {
        drop_shadow(v);
        if (v->sink.scanout)
            v->sink.scanout(v->sink.ctx, v->fd, m->offset, m->width, m->height, m->stride);
        return NULL;
    }
    size_t len = (size_t)m->width * m->height * 4;
    if (len > SHADOW_MAX)
        return "a converted picture is at most 32 MiB";
    if (make_shadow(v, len) < 0)
        return "hv-vmm cannot make the memory to convert the picture into";
    convert_rows(v, 0, m->height);
    if (v->sink.scanout)
        v->sink.scanout(v->sink.ctx, v->shadow_fd, 0, m->width, m->height, m->width * 4);
    return NULL;
}

static void update_scanout(struct bochs_vbe *v)
{
    struct vbe_mode m;
    const char *why = v->ar_index & VGA_AR_PAS ? vbe_mode(&v->regs, &m) : "the VGA screen is off";
    const struct vbe_mode *o = &v->shown_mode;
    if (!why && v->shown && m.width == o->width && m.height == o->height && m.stride == o->stride &&
        m.bpp == o->bpp && m.offset == o->offset)
        return;
    if (!why) {
        log_debug("bochs-vbe: %ux%u, %u bpp, stride %u, at 0x%llx", m.width, m.height, m.bpp,
                  m.stride, (unsigned long long)m.offset);
        v->damage_all = false; /* a new surface is damaged whole anyway */
        why = show(v, &m);
        if (!why) {
            v->shown = true;
            v->why = NULL;
            return;
        }
    }
    /* Each new reason once (a guest switching off is no news); the reasons are constants. */
    if (why != v->why && (v->regs.reg[VBE_ENABLE] & VBE_ENABLED) && (v->ar_index & VGA_AR_PAS))
        log_warn_limited("bochs-vbe: the display is blank: %s (%ux%u, %u bpp)", why,
                         v->regs.reg[VBE_XRES], v->regs.reg[VBE_YRES], v->regs.reg[VBE_BPP]);
    v->why = why;
    if (v->shown && v->sink.blank)
        v->sink.blank(v->sink.ctx);
    v->shown = false;
    drop_shadow(v);
}

/* Zero video memory: the pages go back to the host (the KVM slot sees zeros). */
static void clear_vram(struct bochs_vbe *v)
{
    if (fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)VBE_VRAM_SIZE) < 0)
        memset(v->vram, 0, VBE_VRAM_SIZE);
    v->damage_all = true;
}

static uint16_t dispi_read(struct bochs_vbe *v, uint16_t index)
{
    return vbe_read(&v->regs, index);
}

static void dispi_write(struct bochs_vbe *v, uint16_t index, uint16_t val)
{
    if (vbe_write(&v->regs, index, val) & VBE_WRITE_CLEAR_VRAM)
        clear_vram(v);
    update_scanout(v);
}

/* The VGA ports that a VBE driver touches: the attribute index's screen-on bit. */
static uint8_t vga_read(struct bochs_vbe *v, unsigned port)
{
    if (port == VGA_IS1_PORT) {
        v->ar_data_next = false;
        return 0;
    }
    if (port == VGA_AR_PORT)
        return v->ar_index;
    return 0;
}

static void vga_write(struct bochs_vbe *v, unsigned port, uint8_t val)
{
    if (port != VGA_AR_PORT)
        return;
    if (!v->ar_data_next)
        v->ar_index = val & 0x3f;
    v->ar_data_next = !v->ar_data_next;
    update_scanout(v);
}

/* ---- guest accesses ---- */

/* Ports 0x1CE (index) and 0x1CF (data), 16 bits wide. */
static void port_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct bochs_vbe *v = opaque;
    if (len > 2 || off > 1) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    pthread_mutex_lock(&v->lock);
    uint16_t val = len == 2 ? le16_get(data) : data[0];
    if (off == 0 && is_write)
        v->regs.index = val;
    else if (off == 0)
        val = v->regs.index;
    else if (is_write)
        dispi_write(v, v->regs.index, val);
    else
        val = dispi_read(v, v->regs.index);
    if (!is_write) {
        data[0] = (uint8_t)val;
        if (len == 2)
            data[1] = (uint8_t)(val >> 8);
    }
    pthread_mutex_unlock(&v->lock);
}

/* BAR 2: EDID, VGA ports, DISPI registers, the size and byte order registers. */
static void mmio_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct bochs_vbe *v = opaque;
    if (!is_write)
        memset(data, 0, len);
    pthread_mutex_lock(&v->lock);
    if (off < VBE_MMIO_VGA) {
        for (uint32_t i = 0; i < len && !is_write; i++)
            if (off + i < sizeof(v->edid))
                data[i] = v->edid[off + i];
    } else if (off < VBE_MMIO_VGA + 0x20) {
        for (uint32_t i = 0; i < len && off + i < VBE_MMIO_VGA + 0x20; i++) {
            unsigned port = VGA_AR_PORT + (unsigned)(off + i - VBE_MMIO_VGA);
            if (is_write)
                vga_write(v, port, data[i]);
            else
                data[i] = vga_read(v, port);
        }
    } else if (off >= VBE_MMIO_DISPI && off < VBE_MMIO_DISPI + 2 * VBE_NR_REGS) {
        /* Whole registers only: 2 bytes at an even offset, or 4 for two. */
        for (uint32_t i = 0; i + 2 <= len && (off & 1) == 0; i += 2) {
            uint16_t index = (uint16_t)((off + i - VBE_MMIO_DISPI) / 2);
            if (is_write)
                dispi_write(v, index, le16_get(data + i));
            else
                le16_put(data + i, dispi_read(v, index));
        }
    } else if (off == VBE_MMIO_QEXT && len == 4 && !is_write) {
        le32_put(data, QEXT_SIZE);
    } else if (off == VBE_MMIO_QEXT + 4 && len == 4 && !is_write) {
        le32_put(data, QEXT_LE); /* little-endian only: a write of another order is ignored */
    }
    pthread_mutex_unlock(&v->lock);
}

/* BAR 0 where it is not a KVM slot (no KVM, or the guest put it over something). */
static void vram_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct bochs_vbe *v = opaque;
    if (!range_within(off, len, VBE_VRAM_SIZE)) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    if (is_write) {
        memcpy(v->vram + off, data, len);
        pthread_mutex_lock(&v->lock);
        v->damage_all = true;
        pthread_mutex_unlock(&v->lock);
    } else {
        memcpy(data, v->vram + off, len);
    }
}

/* ---- the KVM slot ---- */

static int set_slot(struct bochs_vbe *v, uint64_t gpa, uint64_t size)
{
    struct kvm_userspace_memory_region r = {
        .slot = MEM_KVM_SLOT_VBE,
        .flags = size ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)v->vram,
    };
    if (v->vm->vm_fd < 0)
        return -EBADF;
    return ioctl(v->vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

/* Make the slot follow BAR 0 (caller: the PCI cfg lock). */
static void sync_slot(struct bochs_vbe *v)
{
    uint64_t gpa = pci_bar_addr(&v->pci, 0);
    pthread_mutex_lock(&v->lock);
    if (gpa != v->slot_gpa) {
        if (v->slot_gpa)
            set_slot(v, 0, 0); /* size 0 deletes it */
        v->slot_gpa = 0;
        if (gpa) {
            int r = set_slot(v, gpa, VBE_VRAM_SIZE);
            if (r == 0)
                v->slot_gpa = gpa;
            else if (r != -EBADF)
                log_warn_limited("bochs-vbe: the framebuffer at 0x%llx cannot be mapped "
                                 "directly (%s): accesses are trapped",
                                 (unsigned long long)gpa, strerror(-r));
        }
        v->damage_all = true;
    }
    pthread_mutex_unlock(&v->lock);
}

static void config_written(struct pci_device *pci, uint32_t off, uint32_t len)
{
    (void)off;
    (void)len;
    sync_slot(pci->opaque);
}

/* ---- damage ---- */

/* The rows [*y0, *y1) that dirty pages touch; false if none. Lock held. */
static bool dirty_rows(struct bochs_vbe *v, uint32_t *y0, uint32_t *y1)
{
    const struct vbe_mode *m = &v->shown_mode;
    uint64_t row = (uint64_t)m->width * vbe_bytes_per_pixel(m->bpp);
    uint64_t end = m->offset + (uint64_t)m->stride * (m->height - 1) + row;
    uint64_t first = UINT64_MAX, last = 0;
    for (uint64_t p = m->offset / 4096; p <= (end - 1) / 4096; p++) {
        if (v->dirty[p / 64] & (UINT64_C(1) << (p % 64))) {
            first = MIN(first, p);
            last = p;
        }
    }
    if (first == UINT64_MAX)
        return false;
    uint64_t a = MAX(first * 4096, m->offset), b = MIN((last + 1) * 4096, end);
    *y0 = (uint32_t)((a - m->offset) / m->stride);
    *y1 = (uint32_t)MIN((b - m->offset + m->stride - 1) / m->stride, m->height);
    return *y1 > *y0;
}

void bochs_vbe_poll(struct bochs_vbe *v)
{
    pthread_mutex_lock(&v->lock);
    if (v->quiesced || !v->shown) {
        pthread_mutex_unlock(&v->lock);
        return;
    }
    bool all = v->damage_all;
    memset(v->dirty, 0, sizeof(v->dirty));
    if (v->slot_gpa && !all) {
        struct kvm_dirty_log log = {.slot = MEM_KVM_SLOT_VBE, .dirty_bitmap = v->dirty};
        if (ioctl(v->vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
            log_warn_limited("bochs-vbe: KVM_GET_DIRTY_LOG: %s: damaging the whole picture",
                             strerror(errno));
            all = true;
        }
    }
    uint32_t y0 = 0, y1 = v->shown_mode.height;
    if (all || dirty_rows(v, &y0, &y1)) {
        if (v->shadow)
            convert_rows(v, y0, y1);
        if (v->sink.damage)
            v->sink.damage(v->sink.ctx, 0, y0, v->shown_mode.width, y1 - y0);
    }
    v->damage_all = false;
    pthread_mutex_unlock(&v->lock);
}

static void *damage_thread(void *arg)
{
    struct bochs_vbe *v = arg;
    prctl(PR_SET_NAME, "bochs-vbe");
    for (;;) {
        struct pollfd p[2] = {{v->stop_fd, POLLIN, 0}, {v->timer_fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (p[0].revents)
            return NULL;
        uint64_t n;
        if (p[1].revents && read(v->timer_fd, &n, sizeof(n)) == sizeof(n))
            bochs_vbe_poll(v);
    }
}

static int start_damage_thread(struct bochs_vbe *v)
{
    struct itimerspec it = {{0, POLL_NS}, {0, POLL_NS}};
    v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    v->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (v->timer_fd < 0 || v->stop_fd < 0 || timerfd_settime(v->timer_fd, 0, &it, NULL) < 0)
        return -errno;
    int err = pthread_create(&v->thread, NULL, damage_thread, v);
    if (err)
        return -err;
    v->has_thread = true;
    return 0;
}

uint8_t *bochs_vbe_vram(struct bochs_vbe *v)
{
    return v->vram;
}

struct pci_device *bochs_vbe_pci(struct bochs_vbe *v)
{
    return &v->pci;
}

/* ---- the device interface ---- */

static void power_on(struct bochs_vbe *v)
{
    vbe_regs_reset(&v->regs, VBE_VRAM_SIZE);
    v->ar_data_next = false;
    v->ar_index = VGA_AR_PAS; /* on, so that a driver that never touches VGA is seen */
}

static void vbe_reset(struct device *dev)
{
    struct bochs_vbe *v = dev->priv;
    pthread_mutex_lock(&v->lock);
    power_on(v);
    clear_vram(v);
    update_scanout(v);
    pthread_mutex_unlock(&v->lock);
    pci_device_reset(&v->pci); /* unmaps BAR 0: the slot goes */
}

static void vbe_quiesce(struct device *dev)
{
    struct bochs_vbe *v = dev->priv;
    pthread_mutex_lock(&v->lock);
    v->quiesced = true;
    pthread_mutex_unlock(&v->lock);
}

static void vbe_resume(struct device *dev)
{
    struct bochs_vbe *v = dev->priv;
    pthread_mutex_lock(&v->lock);
    v->quiesced = false;
    v->damage_all = true;
    pthread_mutex_unlock(&v->lock);
}

static void vbe_destroy(struct device *dev)
{
    struct bochs_vbe *v = dev->priv;
    uint64_t one = 1;
    if (v->has_thread && write(v->stop_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(v->thread, NULL);
    v->has_thread = false;
    if (v->timer_fd >= 0)
        close(v->timer_fd);
    if (v->stop_fd >= 0)
        close(v->stop_fd);
    v->timer_fd = v->stop_fd = -1;
    drop_shadow(v);
    munmap(v->vram, VBE_VRAM_SIZE);
    close(v->fd);
    v->vram = NULL;
    v->fd = -1;
    io_bus_unregister(&v->vm->pio, VBE_PORT_INDEX);
    /* The PCI bus keeps pointing at v (pci_bus_destroy): v itself stays. */
}

/*
 * Saved: PCI config space, the DISPI index and registers, the VGA attribute
 * state, then video memory as runs of non-zero pages (first page, count,
 * bytes), ended by a run of count 0.
 */
/* The runs of non-zero pages among pages [first, end). */
static void put_runs(struct bochs_vbe *v, struct state_out *out, uint64_t first, uint64_t end)
{
    static const uint8_t zero[4096];
    end = MIN(end, VRAM_PAGES);
    for (uint64_t p = first; p < end;) {
        uint64_t n = 0;
        while (p + n < end && memcmp(v->vram + (p + n) * 4096, zero, 4096))
            n++;
        if (n) {
            state_put_u32(out, (uint32_t)p);
            state_put_u32(out, (uint32_t)n);
            state_put_bytes(out, v->vram + p * 4096, n * 4096);
        }
        p += n + 1;
    }
}

static int vbe_save(struct device *dev, struct state_out *out)
{
    struct bochs_vbe *v = dev->priv;
    if (pci_device_save(&v->pci, out) < 0)
        return -1;
    pthread_mutex_lock(&v->lock);
    state_put_u16(out, v->regs.index);
    for (unsigned i = 0; i < VBE_NR_REGS; i++)
        state_put_u16(out, v->regs.reg[i]);
    state_put_bool(out, v->ar_data_next);
    state_put_u8(out, v->ar_index);
    /* Only the parts of the memfd that hold pages: reading a hole would allocate it. */
    for (uint64_t at = 0; at < VBE_VRAM_SIZE;) {
        off_t data = lseek(v->fd, (off_t)at, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* holes to the end */
        off_t hole = data < 0 ? (off_t)VBE_VRAM_SIZE : lseek(v->fd, data, SEEK_HOLE);
        if (data < 0 || hole < 0)
            data = (off_t)at, hole = (off_t)VBE_VRAM_SIZE; /* no SEEK_DATA: look at all */
        put_runs(v, out, (uint64_t)data / 4096, align_up((uint64_t)hole, 4096) / 4096);
        at = align_up((uint64_t)hole, 4096);
    }
    state_put_u32(out, 0);
    state_put_u32(out, 0);
    pthread_mutex_unlock(&v->lock);
    return out->failed ? -1 : 0;
}

static int vbe_load(struct device *dev, struct state_in *in)
{
    struct bochs_vbe *v = dev->priv;
    if (pci_device_load(&v->pci, in) < 0)
        return -1;
    struct vbe_regs r = {.vram_size = VBE_VRAM_SIZE};
    r.index = state_get_u16(in);
    for (unsigned i = 0; i < VBE_NR_REGS; i++)
        r.reg[i] = state_get_u16(in);
    bool ar_data_next = state_get_bool(in);
    uint8_t ar_index = state_get_u8(in);
    if (!state_in_ok(in))
        return -1;
    const char *why = vbe_regs_check(&r);
    if (why)
        return state_in_fail(in, "DISPI registers: %s", why);
    if (ar_index & ~0x3f)
        return state_in_fail(in, "VGA attribute index 0x%x has bits above 0x3f", ar_index);

    pthread_mutex_lock(&v->lock);
    clear_vram(v);
    uint64_t next = 0; /* runs ascend and do not overlap */
    int ret = 0;
    for (;;) {
        uint32_t p = state_get_u32(in), n = state_get_u32(in);
        if (!state_in_ok(in)) {
            ret = -1;
            break;
        }
        if (n == 0)
            break;
        if (p < next || !range_within(p, n, VRAM_PAGES)) {
            ret = state_in_fail(in, "video memory pages %u+%u are out of order or past its end", p,
                                n);
            break;
        }
        state_get_bytes(in, v->vram + (uint64_t)p * 4096, (uint64_t)n * 4096);
        next = (uint64_t)p + n;
    }
    if (ret == 0) {
        v->regs = r;
        v->ar_data_next = ar_data_next;
        v->ar_index = ar_index;
        v->shown = false;
        update_scanout(v);
    } else {
        clear_vram(v);
    }
    pthread_mutex_unlock(&v->lock);
    return ret;
}

static const struct device_ops vbe_ops = {
    .reset = vbe_reset,
    .quiesce = vbe_quiesce,
    .resume = vbe_resume,
    .destroy = vbe_destroy,
    .save = vbe_save,
    .load = vbe_load,
};

static int make_vram(struct bochs_vbe *v)
{
    v->fd = memfd_create("hv-bochs-vram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (v->fd < 0)
        return -errno;
    if (ftruncate(v->fd, (off_t)VBE_VRAM_SIZE) < 0 ||
        fcntl(v->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        return -errno;
    void *p = mmap(NULL, VBE_VRAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    v->vram = p;
    return 0;
}

int bochs_vbe_create(struct vm *vm, uint32_t width, uint32_t height, const struct vbe_sink *sink,
                     struct bochs_vbe **out)
{
    struct bochs_vbe *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->vm = vm;
    v->fd = v->timer_fd = v->stop_fd = v->shadow_fd = -1;
    if (sink)
        v->sink = *sink;
    pthread_mutex_init(&v->lock, NULL);
    gpu_edid_build(v->edid, width, height);
    power_on(v);
    int ret = make_vram(v);
    if (ret < 0) {
        log_err("bochs-vbe: cannot make its 16 MiB of video memory: %s", strerror(-ret));
        return ret; /* the VM is not started: the process ends */
    }

    struct pci_device *p = &v->pci;
    p->name = "bochs-vbe";
    p->vendor_id = 0x1234;
    p->device_id = 0x1111;
    p->subsys_vendor_id = 0x1af4;
    p->subsys_id = 0x1100;
    p->class_code = 0x030000; /* VGA-compatible display */
    p->revision = 2;
    p->bar_def[0] = (struct pci_bar_def){
        .size = VBE_VRAM_SIZE, .prefetch = true, .handler = vram_access, .opaque = v};
    p->bar_def[2] =
        (struct pci_bar_def){.size = VBE_MMIO_SIZE, .handler = mmio_access, .opaque = v};
    p->config_written = config_written;
    p->opaque = v;
    ret = pci_register(vm->pci, p);
    if (ret == 0)
        ret = io_bus_register(&vm->pio, VBE_PORT_INDEX, 3, port_access, v); /* 0x1CF is 16-bit */
    if (ret < 0) {
        log_err("bochs-vbe: cannot put the display on the bus: %s", strerror(-ret));
        return ret;
    }
    device_add(vm, &v->dev, &vbe_ops, "bochs-vbe", p->slot, v);

    /* Damage comes from a thread's timer; without KVM (tests) bochs_vbe_poll() is called by hand.
     */
    if (vm->vm_fd >= 0 && (ret = start_damage_thread(v)) < 0) {
        log_err("bochs-vbe: cannot start its damage timer: %s", strerror(-ret));
        return ret;
    }
    log_debug("bochs-vbe: at 00:%02x.0, %u MiB of video memory", p->slot,
              (unsigned)(VBE_VRAM_SIZE >> 20));
    if (out)
        *out = v;
    return 0;
}
