// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Save and restore of the PCI, MSI-X and virtio transport layers and of
 * virtio-blk, virtio-console and virtio-rng, without KVM: a driver brings
 * the devices of one VM to DRIVER_OK through the buses and serves requests;
 * the devices are saved, guest RAM copied into a second VM built the same
 * way, the sections loaded there, and the second VM's devices carry on at
 * the same ring positions with the same registers. Then corrupted sections
 * are refused, each with its reason.
 *
 * HV_SAVE_SEED_DIR=DIR also writes the sections there (the seed corpus of
 * fuzz/fuzz_load.c).
 */
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "devices.h"
#include "log.h"
#include "pci.h"
#include "pci_driver.h"
#include "ring.h"
#include "state.h"
#include "util.h"
#include "virtio.h"
#include "vm.h"

#define NDEV 3 /* blk, console, rng: in creation order */

static struct vm vma, vmb;

static void bring_up(struct drv *d, uint64_t features)
{
    enable(d);
    CHECK(negotiate(d, features));
    CHECK(status(d) == 0x0b);
}

/* Whether the eventfd of MSI-X vector vec was written; drains it. */
static bool vector_fired(struct virtio_dev *vd, unsigned vec)
{
    int fd = msix_vector_fd(&vd->msix, vec);
    uint64_t n;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    bool fired = poll(&p, 1, 0) == 1;
    if (read(fd, &n, sizeof(n)) < 0)
        n = 0;
    return fired;
}

static char img[] = "/tmp/hv-test-save-XXXXXX", img_b[] = "/tmp/hv-test-save-b-XXXXXX";
static char con_a[] = "/tmp/hv-test-save-con-a-XXXXXX", con_b[] = "/tmp/hv-test-save-con-b-XXXXXX";

static void make_vm(struct vm *vm, const char *disk, const char *console_path)
{
    char spec[64];
    vm->vm_fd = vm->kvm_fd = -1;
    CHECK(guest_mem_init(&vm->mem, 64 * MiB) == 0);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    CHECK(pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) == 0);
    CHECK(virtio_blk_create(vm, &(struct vm_disk){.path = disk, .format = "raw"}) == 0);
    snprintf(spec, sizeof(spec), "file:%s", console_path);
    CHECK(virtio_console_create(vm, spec) == 0);
    CHECK(virtio_rng_create(vm) == 0);
    CHECK(devices_count(vm) == NDEV);
}

static struct device *nth(struct vm *vm, unsigned i)
{
    struct device *d = vm->devices;
    while (d && i--)
        d = d->next;
    return d;
}

/* A blk write of one sector (descriptors 3i..3i+2 at buf) published on r. */
static void blk_write(struct test_ring *r, unsigned i, uint64_t buf, uint64_t sector, uint8_t fill)
{
    uint8_t hdr[16] = {0};
    le32_put(hdr, VIRTIO_BLK_T_OUT);
    le64_put(hdr + 8, sector);
    guest_mem_write(r->mem, buf, hdr, 16);
    memset(guest_mem_ptr(r->mem, buf + 0x200, 512), fill, 512);
    uint16_t h = (uint16_t)(3 * i % r->size);
    tr_desc(r, h, buf, 16, VRING_DESC_F_NEXT, h + 1);
    tr_desc(r, h + 1, buf + 0x200, 512, VRING_DESC_F_NEXT, h + 2);
    tr_desc(r, h + 2, buf + 0x400, 1, VRING_DESC_F_WRITE, 0);
    tr_publish(r, h);
}

static bool image_sector_is(const char *path, uint64_t sector, uint8_t fill)
{
    uint8_t b[512], want[512];
    memset(want, fill, sizeof(want));
    int fd = open(path, O_RDONLY);
    bool ok = pread(fd, b, 512, (off_t)(sector * 512)) == 512 && memcmp(b, want, 512) == 0;
    close(fd);
    return ok;
}

static size_t file_size(const char *path)
{
    int fd = open(path, O_RDONLY);
    off_t n = lseek(fd, 0, SEEK_END);
    close(fd);
    return n < 0 ? 0 : (size_t)n;
}

struct saved {
    uint8_t *p;
    size_t len;
};

static struct saved sections[NDEV];

/* Load a (possibly corrupted) copy of a section into device i of vm b. */
static int load_into(unsigned i, const uint8_t *p, size_t len, char *why, size_t whylen)
{
    struct device *d = nth(&vmb, i);
    struct state_in in;
    state_in_init(&in, p, len);
    int r = d->ops->load(d, &in);
    if (r == 0)
        r = state_in_end(&in);
    snprintf(why, whylen, "%s", in.why);
    return r;
}

/* Offsets in a virtio section: PCI, MSI-X, transport header, queues. */
static size_t queue_off(const uint8_t *p, unsigned q)
{
    size_t pci = 2 + le16_get(p) + 6 * 9;
    unsigned nr = le16_get(p + pci);
    size_t t = pci + 4 + 16 * nr + (nr + 7) / 8;
    size_t config_len = le16_get(p + t + 40);
    return t + 42 + config_len + 2 + 37 * (size_t)q;
}

static bool refused(unsigned dev, size_t off, const void *val, size_t n, size_t len,
                    const char *expect)
{
    uint8_t *copy = malloc(sections[dev].len);
    char why[STATE_WHY_MAX];
    memcpy(copy, sections[dev].p, sections[dev].len);
    if (val)
        memcpy(copy + off, val, n);
    int r = load_into(dev, copy, len ? len : sections[dev].len, why, sizeof(why));
    free(copy);
    bool ok = r < 0 && strstr(why, expect);
    if (getenv("HV_TEST_VERBOSE"))
        fprintf(stderr, "refused: %s\n", why);
    if (!ok)
        fprintf(stderr, "expected a refusal with \"%s\", got %d \"%s\"\n", expect, r, why);
    return ok;
}

static void test_corrupt(void)
{
    devices_quiesce(&vmb);
    const uint8_t *blk = sections[0].p;
    size_t q0 = queue_off(blk, 0);
    CHECK(le16_get(blk + q0) == 16); /* the layout the offsets assume */
    uint16_t big = 1024, vec = 200;
    uint64_t far = 1ull << 40;
    uint8_t two = 2, vendor = 0x12;

    CHECK(refused(0, 0, NULL, 0, sections[0].len - 1, "ends early"));
    CHECK(refused(0, 0, NULL, 0, 1, "ends early"));
    CHECK(refused(0, q0, &big, 2, 0, "size 1024 is above the device's maximum 256"));
    CHECK(refused(0, q0 + 3, &vec, 2, 0, "vector 200 is past the MSI-X table"));
    CHECK(refused(0, q0 + 5, &far, 8, 0, "ring lies outside guest RAM"));
    CHECK(refused(0, q0 + 2, &two, 1, 0, "a flag holds 2"));
    CHECK(refused(0, 2, &vendor, 1, 0, "PCI config byte 0x0"));
    uint64_t elsewhere = 0xe0000000;
    size_t bar0 = 2 + le16_get(blk) + 1;
    CHECK(refused(0, bar0, &elsewhere, 8, 0, "PCI BAR 0 was at 0xe0000000 when saved"));
    size_t msix = 2 + le16_get(blk) + 6 * 9;
    CHECK(refused(0, msix + 4 + 12, &two, 1, 0, "MSI-X vector 0 has read-only control bits"));
    /* In flight: last_avail far ahead of the used index. */
    uint16_t ahead = le16_get(blk + q0 + 31) + 100;
    CHECK(refused(0, q0 + 29, &ahead, 2, 0, "chains in flight"));
    /* A console section in the blk device: another config and queue count. */
    char why[STATE_WHY_MAX];
    CHECK(load_into(0, sections[1].p, sections[1].len, why, sizeof(why)) < 0);
    /* One byte too many. */
    uint8_t *longer = calloc(1, sections[2].len + 1);
    memcpy(longer, sections[2].p, sections[2].len);
    CHECK(load_into(2, longer, sections[2].len + 1, why, sizeof(why)) < 0 &&
          strstr(why, "not read"));
    free(longer);
}

static void write_seeds(void)
{
    const char *dir = getenv("HV_SAVE_SEED_DIR");
    if (!dir)
        return;
    for (unsigned i = 0; i < NDEV; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/seed-%u", dir, i);
        FILE *f = fopen(path, "wb");
        CHECK(f);
        uint8_t which = (uint8_t)i;
        fwrite(&which, 1, 1, f); /* fuzz_load's first byte picks the device */
        fwrite(sections[i].p, 1, sections[i].len, f);
        fclose(f);
    }
}

int main(void)
{
    hv_log_init("test");
    int fd = mkstemp(img);
    CHECK(fd >= 0 && ftruncate(fd, 1 * MiB) == 0);
    close(fd);
    CHECK((fd = mkstemp(con_a)) >= 0 && close(fd) == 0);
    CHECK((fd = mkstemp(con_b)) >= 0 && close(fd) == 0);
    CHECK((fd = mkstemp(img_b)) >= 0 && close(fd) == 0);
    make_vm(&vma, img, con_a);

    /* ---- VM a: drive blk and console to DRIVER_OK and serve requests ---- */
    drv_vm = &vma;
    struct drv blk, con, rng;
    CHECK(probe(&blk, 0x1042) && probe(&con, 0x1043) && probe(&rng, 0x1044));
    /*
     * The guest moves rng's BAR 0 away and blk's where rng's was: in the new
     * VM blk, loaded first, finds rng there still (at power-on).
     */
    uint64_t moved = rng.bar, rng_moved = 0xd0000000;
    cfg_wr(rng.slot, 4, 0x0006, 2);
    cfg_wr(rng.slot, 0x10, (uint32_t)rng_moved, 4);
    cfg_wr(blk.slot, 4, 0x0006, 2);
    cfg_wr(blk.slot, 0x10, (uint32_t)moved, 4);
    CHECK(probe(&blk, 0x1042) && blk.bar == moved);
    CHECK(probe(&rng, 0x1044) && rng.bar == rng_moved);
    CHECK(mr(rng.common + VIRTIO_PCI_COMMON_NUMQ, 2) == 1);

    struct test_ring r, rx, tx;
    bring_up(&blk, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX);
    tr_init(&r, &vma.mem, 16, 0x10000);
    queue_setup(&blk, 0, &r, 1);
    mw(blk.common + VIRTIO_PCI_COMMON_MSIX, 0, 2);
    cfg_wr(blk.slot, blk.msix_cap + 3, 0x80, 1); /* MSI-X on */
    for (unsigned v = 0; v < 2; v++) {
        mw(blk.msix_bar + 16 * v, 0xfee00000, 4);
        mw(blk.msix_bar + 16 * v + 8, 0x30 + v, 4);
        mw(blk.msix_bar + 16 * v + 12, 0, 4);
    }
    mw(blk.common + VIRTIO_PCI_COMMON_STATUS, 0x0f, 1);
    CHECK(status(&blk) == 0x0f);
    struct virtio_dev *blk_a = nth(&vma, 0)->priv;
    for (unsigned i = 0; i < 3; i++) {
        tr_w16(&vma.mem, r.avail + 4 + 2 * 16, (uint16_t)i); /* used_event: interrupt me */
        blk_write(&r, i, 0x20000 + 0x1000 * i, i, (uint8_t)(0xa0 + i));
        kick(&blk, 0);
        CHECK(wait_used(&r, (uint16_t)(i + 1)));
    }
    CHECK(image_sector_is(img, 2, 0xa2));
    CHECK(vector_fired(blk_a, 1));

    bring_up(&con, 1ull << VIRTIO_F_VERSION_1);
    tr_init(&rx, &vma.mem, 8, 0x100000);
    tr_init(&tx, &vma.mem, 8, 0x110000);
    queue_setup(&con, 0, &rx, 1);
    queue_setup(&con, 1, &tx, 2);
    cfg_wr(con.slot, con.msix_cap + 3, 0x80, 1);
    mw(con.msix_bar + 32 + 12, 1, 4); /* vector 2 masked: its interrupt stays pending */
    mw(con.common + VIRTIO_PCI_COMMON_STATUS, 0x0f, 1);
    memcpy(guest_mem_ptr(&vma.mem, 0x120000, 6), "hello ", 6);
    tr_desc(&tx, 0, 0x120000, 6, 0, 0);
    tr_publish(&tx, 0);
    kick(&con, 1);
    CHECK(wait_used(&tx, 1));
    tr_desc(&rx, 0, 0x130000, 64, VRING_DESC_F_WRITE, 0); /* nobody connected: stays queued */
    tr_publish(&rx, 0);
    kick(&con, 0);
    settle();
    CHECK(mr(con.msix_bar + MSIX_PBA_OFF, 1) == 4);
    CHECK(file_size(con_a) == 6);

    /* A request queued and kicked while paused: the restored VM serves it. */
    devices_quiesce(&vma);
    tr_w16(&vma.mem, r.avail + 4 + 2 * 16, 3);
    blk_write(&r, 3, 0x30000, 3, 0xa3);
    kick(&blk, 0);

    struct state_out out;
    state_out_init(&out);
    for (unsigned i = 0; i < NDEV; i++) {
        struct device *d = nth(&vma, i);
        state_out_clear(&out);
        CHECK(d->ops->save && d->ops->save(d, &out) == 0 && !out.failed);
        sections[i].p = malloc(out.len);
        memcpy(sections[i].p, out.buf, out.len);
        sections[i].len = out.len;
    }
    state_out_free(&out);
    write_seeds();
    CHECK(tr_used_idx(&r) == 3); /* saving served nothing */

    /*
     * ---- VM b, as a new process would build it from the same command line:
     * the disk as the save left it, RAM copied, sections loaded; it carries on.
     */
    uint8_t *disk = malloc(1 * MiB);
    CHECK((fd = open(img, O_RDONLY)) >= 0 && pread(fd, disk, 1 * MiB, 0) == 1 * MiB);
    close(fd);
    CHECK((fd = open(img_b, O_WRONLY)) >= 0 && pwrite(fd, disk, 1 * MiB, 0) == 1 * MiB);
    close(fd);
    free(disk);
    make_vm(&vmb, img_b, con_b);
    struct virtio_dev *blk_b = nth(&vmb, 0)->priv;
    memcpy(vmb.mem.base, vma.mem.base, vma.mem.size);
    devices_quiesce(&vmb);
    for (unsigned i = 0; i < NDEV; i++) {
        char why[STATE_WHY_MAX];
        CHECK(load_into(i, sections[i].p, sections[i].len, why, sizeof(why)) == 0);
        if (why[0])
            fprintf(stderr, "load %u: %s\n", i, why);
    }
    devices_resume(&vmb);
    drv_vm = &vmb;
    r.mem = rx.mem = tx.mem = &vmb.mem;

    struct drv blk2, con2, rng2;
    CHECK(probe(&blk2, 0x1042) && probe(&con2, 0x1043) && probe(&rng2, 0x1044));
    CHECK(blk2.slot == blk.slot && blk2.bar == moved); /* BAR 0 where the guest put it */
    CHECK(rng2.bar == rng_moved && mr(rng2.common + VIRTIO_PCI_COMMON_NUMQ, 2) == 1);
    CHECK(mr(blk2.common + VIRTIO_PCI_COMMON_NUMQ, 2) == 1);
    CHECK(status(&blk2) == 0x0f && status(&con2) == 0x0f);
    CHECK(mr(blk2.common + VIRTIO_PCI_COMMON_MSIX, 2) == 0);
    mw(blk2.common + VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    CHECK(mr(blk2.common + VIRTIO_PCI_COMMON_Q_MSIX, 2) == 1);
    CHECK(mr(blk2.common + VIRTIO_PCI_COMMON_Q_DESCLO, 8) == r.desc);
    CHECK(mr(blk2.common + VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 1);
    CHECK(mr(blk2.device, 8) == 2048);
    CHECK(mr(blk2.msix_bar + 8, 4) == 0x30 && mr(blk2.msix_bar + 16 + 8, 4) == 0x31);
    CHECK((cfg_rd(blk2.slot, blk2.msix_cap + 3, 1) & 0x80) && msix_enabled(&blk_b->msix));

    /* The request queued before the save is served at its ring position, then the next. */
    CHECK(wait_used(&r, 4));
    CHECK(image_sector_is(img_b, 3, 0xa3));
    CHECK(vector_fired(blk_b, 1));
    tr_w16(&vmb.mem, r.avail + 4 + 2 * 16, 4);
    blk_write(&r, 4, 0x40000, 4, 0xa4);
    kick(&blk2, 0);
    CHECK(wait_used(&r, 5));
    uint32_t id, len;
    tr_used_elem(&r, 4, &id, &len);
    CHECK(id == (3 * 4) % 16 && len == 1);
    CHECK(image_sector_is(img_b, 4, 0xa4));
    CHECK(vector_fired(blk_b, 1));

    /* The console: the pending interrupt survived, output continues in the ring. */
    CHECK(mr(con2.msix_bar + MSIX_PBA_OFF, 1) == 4);
    mw(con2.msix_bar + 32 + 12, 0, 4);
    CHECK(mr(con2.msix_bar + MSIX_PBA_OFF, 1) == 0);
    memcpy(guest_mem_ptr(&vmb.mem, 0x121000, 6), "world\n", 6);
    tr_desc(&tx, 1, 0x121000, 6, 0, 0);
    tr_publish(&tx, 1);
    kick(&con2, 1);
    CHECK(wait_used(&tx, 2));
    tr_used_elem(&tx, 1, &id, &len);
    CHECK(id == 1);
    CHECK(file_size(con_b) == 6);
    CHECK(tr_used_idx(&rx) == 0); /* the receive buffer is still the guest's to fill */

    test_corrupt();

    unlink(img);
    unlink(img_b);
    unlink(con_a);
    unlink(con_b);
    CHECK_DONE();
}
