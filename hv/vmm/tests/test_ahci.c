// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The AHCI controller (hw/ahci.c, hw/ahci_ata.c, hw/atapi.c) without KVM,
 * driven as an OS driver drives it: config space through CF8/CFC, ABAR's
 * registers through the MMIO bus, command lists, command tables, PRDTs and
 * data in fake guest RAM. Registers and the signatures of the ports;
 * IDENTIFY DEVICE; DMA writes and reads through several PRDs landing in the
 * image file; NCQ with several tags at once; FLUSH, SET FEATURES, READ
 * NATIVE MAX, TRIM, READ LOG; a read-only disk; hostile command lists,
 * tables and PRDTs (outside RAM, too short, LBAs past the end) each refused
 * with its error and the port restarted; the CD-ROM's IDENTIFY PACKET,
 * INQUIRY, READ CAPACITY matching the ISO, READ(10)/READ(12) giving its
 * bytes, sense data, MODE SENSE, GET CONFIGURATION, READ TOC, GET EVENT
 * STATUS, the lock; device reset; a save/load round trip with a command
 * issued while quiesced, and damaged sections refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "hw/ahci.h"
#include "hw/ahci_int.h"
#include "le.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "util.h"
#include "virtio/tests/pci_driver.h"
#include "vm.h"

#define RAM      (64 * MiB)
#define DISK_MIB 8
#define ISO_MIB  2
#define CLB(p)   (0x100000 + 0x2000ull * (p))
#define FB(p)    (0x101000 + 0x2000ull * (p))
#define CT(slot) (0x120000 + 0x1000ull * (slot))
#define DATA     0x200000ull
#define DATA2    0x400000ull
#define P_RW     0
#define P_RO     1
#define P_CD     2
#define P_NONE   3

static struct vm vma, vmb;
static char img[] = "/tmp/hv-test-ahci-XXXXXX", img_ro[] = "/tmp/hv-test-ahci-ro-XXXXXX",
            iso[] = "/tmp/hv-test-ahci-iso-XXXXXX", img_b[] = "/tmp/hv-test-ahci-b-XXXXXX";

static void make_vm(struct vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->vm_fd = vm->kvm_fd = -1;
    CHECK(guest_mem_init(&vm->mem, RAM) == 0);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    CHECK(pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) == 0);
}

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
    return guest_mem_ptr(&drv_vm->mem, gpa, len);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 13 + seed + (i >> 9));
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

/* ---- the driver's side ---- */

struct hba {
    struct ahci *h;
    unsigned slot;
    uint64_t abar;
    uint8_t msix_cap;
};

static struct hba hb;

static uint32_t rd(unsigned off)
{
    return (uint32_t)mr(hb.abar + off, 4);
}

static void wr(unsigned off, uint32_t v)
{
    mw(hb.abar + off, v, 4);
}

static uint32_t prd(unsigned port, unsigned off)
{
    return rd(AHCI_PORT_BASE + AHCI_PORT_SIZE * port + off);
}

static void pwr(unsigned port, unsigned off, uint32_t v)
{
    wr(AHCI_PORT_BASE + AHCI_PORT_SIZE * port + off, v);
}

static bool vector_fired(void)
{
    int fd = msix_vector_fd(&hb.h->msix, 0);
    uint64_t v;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    bool fired = poll(&p, 1, 0) == 1;
    if (read(fd, &v, sizeof(v)) < 0)
        v = 0;
    return fired;
}

static void find(struct ahci *h)
{
    hb = (struct hba){.h = h, .slot = ahci_pci(h)->slot};
    CHECK(cfg_rd(hb.slot, 0, 4) == 0x29228086);
    CHECK(cfg_rd(hb.slot, 8, 4) >> 8 == 0x010601);
    hb.abar = cfg_rd(hb.slot, 0x10 + 4 * AHCI_ABAR, 4) & ~0xfu;
    CHECK(hb.abar != 0);
    for (unsigned p = cfg_rd(hb.slot, 0x34, 1); p; p = cfg_rd(hb.slot, p + 1, 1))
        if (cfg_rd(hb.slot, p, 1) == 0x11)
            hb.msix_cap = (uint8_t)p;
    CHECK(hb.msix_cap != 0);
}

/* Memory, bus mastering and MSI-X on (vector 0 unmasked), the port's lists, FRE and ST. */
static void start_port(unsigned port)
{
    pwr(port, PX_CMD, 0);
    pwr(port, PX_CLB, (uint32_t)CLB(port));
    pwr(port, PX_CLBU, 0);
    pwr(port, PX_FB, (uint32_t)FB(port));
    pwr(port, PX_FBU, 0);
    pwr(port, PX_SERR, 0xffffffff);
    pwr(port, PX_IS, 0xffffffff);
    pwr(port, PX_IE, 0xffffffff);
    pwr(port, PX_CMD, CMD_FRE);
    pwr(port, PX_CMD, CMD_FRE | CMD_ST);
    CHECK(prd(port, PX_CMD) & CMD_CR);
}

struct prd_e {
    uint64_t addr;
    uint32_t len;
};

/* An H2D register FIS. */
static void h2d(uint8_t *f, uint8_t cmd, uint64_t lba, uint16_t count, uint16_t feat)
{
    memset(f, 0, 20);
    f[0] = 0x27;
    f[1] = 0x80;
    f[2] = cmd;
    f[3] = (uint8_t)feat;
    f[4] = (uint8_t)lba, f[5] = (uint8_t)(lba >> 8), f[6] = (uint8_t)(lba >> 16);
    f[7] = 0x40;
    f[8] = (uint8_t)(lba >> 24), f[9] = (uint8_t)(lba >> 32), f[10] = (uint8_t)(lba >> 40);
    f[11] = (uint8_t)(feat >> 8);
    f[12] = (uint8_t)count, f[13] = (uint8_t)(count >> 8);
}

/* Slot `slot`'s header and table: the FIS, the packet, the PRDs; not issued. */
static void prepare(unsigned port, unsigned slot, const uint8_t *fis, const uint8_t *cdb,
                    const struct prd_e *prds, unsigned n, bool write)
{
    uint8_t *hdr = ram(CLB(port) + 32 * slot, 32), *ct = ram(CT(slot), 0x80 + 16 * n);
    memset(hdr, 0, 32);
    le32_put(hdr, 5 | (cdb ? 1u << 5 : 0) | (write ? 1u << 6 : 0) | (uint32_t)n << 16);
    le64_put(hdr + 8, CT(slot));
    memset(ct, 0, 0x80);
    memcpy(ct, fis, 20);
    if (cdb)
        memcpy(ct + 0x40, cdb, 12);
    for (unsigned i = 0; i < n; i++) {
        le64_put(ct + 0x80 + 16 * i, prds[i].addr);
        le32_put(ct + 0x80 + 16 * i + 8, 0);
        le32_put(ct + 0x80 + 16 * i + 12, (prds[i].len - 1) | 1u << 31);
    }
}

/* Issue one command and see it done: true if it succeeded (CI clear, no error). */
static bool run(unsigned port, const uint8_t *fis, const uint8_t *cdb, const struct prd_e *prds,
                unsigned n, bool write)
{
    prepare(port, 0, fis, cdb, prds, n, write);
    pwr(port, PX_IS, 0xffffffff);
    pwr(port, PX_CI, 1);
    return prd(port, PX_CI) == 0 && !(prd(port, PX_TFD) & ATA_ERR) &&
           !(prd(port, PX_IS) & IS_FATAL);
}

/* After a fatal error: the driver's restart (ST off, errors cleared, ST on). */
static void restart(unsigned port)
{
    CHECK(prd(port, PX_CI) != 0); /* the failed command is still issued */
    pwr(port, PX_CMD, CMD_FRE);
    CHECK(prd(port, PX_CI) == 0 && !(prd(port, PX_CMD) & CMD_CR));
    pwr(port, PX_SERR, 0xffffffff);
    pwr(port, PX_IS, 0xffffffff);
    pwr(port, PX_CMD, CMD_FRE | CMD_ST);
}

static uint64_t prdbc(unsigned port, unsigned slot)
{
    return le32_get(ram(CLB(port) + 32 * slot + 4, 4));
}

static uint16_t idw(const uint8_t *id, unsigned w)
{
    return le16_get(id + 2 * w);
}

/* ---- the tests ---- */

static void test_registers(void)
{
    CHECK(rd(HBA_VS) != 0x00010301); /* no memory decoding yet */
    cfg_wr(hb.slot, 4, 0x0006, 2);
    uint32_t cap = rd(HBA_CAP);
    CHECK((cap & 0x1f) == AHCI_PORTS - 1);
    CHECK(((cap >> 8) & 0x1f) == 31);
    CHECK(cap & 1u << 30 && cap & 1u << 31 && cap & 1u << 18); /* NCQ, 64-bit, AHCI only */
    CHECK(rd(HBA_PI) == 0x3f);
    CHECK(rd(HBA_VS) == 0x00010301);
    CHECK(rd(HBA_GHC) == GHC_AE);
    CHECK(prd(P_RW, PX_SSTS) == 0x113 && prd(P_RW, PX_SIG) == 0x00000101);
    CHECK(prd(P_RO, PX_SSTS) == 0x113 && prd(P_RO, PX_SIG) == 0x00000101);
    CHECK(prd(P_CD, PX_SSTS) == 0x113 && prd(P_CD, PX_SIG) == 0xeb140101);
    CHECK(prd(P_NONE, PX_SSTS) == 0);
    CHECK((prd(P_RW, PX_TFD) & 0xff) == ATA_OK);
    /* A byte and a word read of a register, and a write to a read-only one. */
    CHECK(mr(hb.abar + HBA_VS + 2, 2) == 0x0001 && mr(hb.abar + HBA_VS, 1) == 0x01);
    wr(HBA_CAP, 0);
    CHECK(rd(HBA_CAP) == cap);
    pwr(P_RW, PX_CLB, 0x12345fff);
    CHECK(prd(P_RW, PX_CLB) == 0x12345c00); /* 1 KiB aligned */
    pwr(P_RW, PX_FB, 0x123456ff);
    CHECK(prd(P_RW, PX_FB) == 0x12345600);

    /* COMRESET: the link down while DET is 1, the signature again after. */
    pwr(P_RW, PX_SCTL, 0x301);
    CHECK(prd(P_RW, PX_SSTS) == 0 && (prd(P_RW, PX_TFD) & ATA_BSY));
    pwr(P_RW, PX_SCTL, 0x300);
    CHECK(prd(P_RW, PX_SSTS) == 0x113 && (prd(P_RW, PX_TFD) & 0xff) == ATA_OK);

    /* HBA reset: GHC back, the ports stopped. */
    start_port(P_RW);
    wr(HBA_GHC, GHC_IE);
    wr(HBA_GHC, GHC_HR);
    CHECK(rd(HBA_GHC) == GHC_AE && !(prd(P_RW, PX_CMD) & (CMD_ST | CMD_CR)));
    CHECK(prd(P_RW, PX_IE) == 0 && prd(P_RW, PX_SIG) == 0x00000101);

    /* MSI-X on, vector 0 unmasked, interrupts enabled. */
    cfg_wr(hb.slot, hb.msix_cap + 3, 0x80, 1);
    uint64_t table = cfg_rd(hb.slot, 0x10 + 4 * AHCI_MSIX_BAR, 4) & ~0xfu;
    mw(table + 12, 0, 4);
    wr(HBA_GHC, GHC_IE);
    CHECK(!vector_fired());
}

static void test_identify(void)
{
    uint8_t f[20];
    start_port(P_RW);
    memset(ram(DATA, 512), 0xee, 512);
    h2d(f, 0xec, 0, 0, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA, 512}, 1, false));
    CHECK(vector_fired());
    CHECK(rd(HBA_IS) & 1u << P_RW);
    CHECK(prd(P_RW, PX_IS) & IS_PSS);
    CHECK(prdbc(P_RW, 0) == 512);
    const uint8_t *id = ram(DATA, 512), *ps = ram(FB(P_RW) + 0x20, 20);
    CHECK(ps[0] == 0x5f && ps[15] == ATA_OK); /* PIO setup, its E_Status */
    CHECK(idw(id, 0) == 0x0040);
    char serial[21] = {0}, model[41] = {0}; /* ATA strings: bytes swapped in each word */
    for (unsigned i = 0; i < 20; i++)
        serial[i] = (char)id[20 + (i ^ 1)];
    for (unsigned i = 0; i < 40; i++)
        model[i] = (char)id[54 + (i ^ 1)];
    CHECK(strcmp(model, "hv SATA disk                            ") == 0);
    CHECK(strncmp(serial, strrchr(img, '/') + 1, strlen(strrchr(img, '/') + 1)) == 0);
    CHECK(le64_get(id + 200) == DISK_MIB * 2048);
    CHECK(idw(id, 60) == (DISK_MIB * 2048 & 0xffff) && idw(id, 61) == DISK_MIB * 2048 >> 16);
    CHECK(idw(id, 76) & 0x100 && idw(id, 75) == 31);         /* NCQ, 32 deep */
    CHECK(idw(id, 83) & 1u << 10 && idw(id, 83) & 1u << 13); /* 48-bit, FLUSH EXT */
    CHECK(idw(id, 169) & 1);                                 /* TRIM */
    uint8_t sum = 0;
    for (unsigned i = 0; i < 512; i++)
        sum += id[i];
    CHECK(id[510] == 0xa5 && sum == 0);

    /* IS cleared while the port's status is still set: set again, and interrupts again. */
    wr(HBA_IS, 0xffffffff);
    CHECK(rd(HBA_IS) & 1u << P_RW);
    CHECK(vector_fired());
    /* The interrupt line goes quiet once the driver clears PxIS, then IS. */
    pwr(P_RW, PX_IS, 0xffffffff);
    wr(HBA_IS, 0xffffffff);
    CHECK(rd(HBA_IS) == 0);
    CHECK(!vector_fired());
}

static void test_dma(void)
{
    uint8_t f[20];
    fill(ram(DATA, 3 * 4096), 3 * 4096, 1);
    /* Three PRDs of uneven length: 24 sectors at LBA 100. */
    struct prd_e w[] = {{DATA, 1024}, {DATA + 1024, 3072}, {DATA + 4096, 8192}};
    h2d(f, 0x35, 100, 24, 0);
    CHECK(run(P_RW, f, NULL, w, 3, true));
    CHECK(prdbc(P_RW, 0) == 12288);
    CHECK(image_is(img, 100 * 512, ram(DATA, 12288), 12288));
    const uint8_t *d2h = ram(FB(P_RW) + 0x40, 20);
    CHECK(d2h[0] == 0x34 && d2h[2] == ATA_OK && (prd(P_RW, PX_IS) & IS_DHRS));

    memset(ram(DATA2, 12288), 0, 12288);
    struct prd_e r[] = {{DATA2, 512}, {DATA2 + 512, 11776}};
    h2d(f, 0x25, 100, 24, 0);
    CHECK(run(P_RW, f, NULL, r, 2, false));
    CHECK(memcmp(ram(DATA2, 12288), ram(DATA, 12288), 12288) == 0);

    /* 28-bit READ DMA and PIO READ SECTORS of the same bytes. */
    memset(ram(DATA2, 1024), 0, 1024);
    h2d(f, 0xc8, 101, 1, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
    CHECK(memcmp(ram(DATA2, 512), ram(DATA + 512, 512), 512) == 0);
    h2d(f, 0x24, 102, 2, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 1024}, 1, false));
    CHECK(memcmp(ram(DATA2, 1024), ram(DATA + 1024, 1024), 1024) == 0);

    h2d(f, 0xea, 0, 0, 0);
    CHECK(run(P_RW, f, NULL, NULL, 0, false));
    h2d(f, 0xef, 0, 0x46, 0x03); /* SET FEATURES: UDMA 6 */
    CHECK(run(P_RW, f, NULL, NULL, 0, false));
    h2d(f, 0xef, 0, 0, 0x82); /* write cache off: shows in IDENTIFY */
    CHECK(run(P_RW, f, NULL, NULL, 0, false));
    h2d(f, 0xec, 0, 0, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
    CHECK(!(idw(ram(DATA2, 512), 85) & 0x20) && (idw(ram(DATA2, 512), 88) & 0x4000));
    h2d(f, 0xef, 0, 0, 0x02);
    CHECK(run(P_RW, f, NULL, NULL, 0, false));

    h2d(f, 0x27, 0, 0, 0); /* READ NATIVE MAX EXT */
    CHECK(run(P_RW, f, NULL, NULL, 0, false));
    CHECK(d2h[4] == (uint8_t)(DISK_MIB * 2048 - 1) &&
          d2h[5] == (uint8_t)((DISK_MIB * 2048 - 1) >> 8));

    /* TRIM LBAs 104-111: they read back as zeros; the rest stays. */
    uint8_t *rng = ram(DATA2, 512);
    memset(rng, 0, 512);
    le64_put(rng, 104 | (uint64_t)8 << 48);
    h2d(f, 0x06, 0, 1, 1);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, true));
    uint8_t zero[4096] = {0};
    CHECK(image_is(img, 104 * 512, zero, 4096));
    CHECK(image_is(img, 100 * 512, ram(DATA, 2048), 2048));

    /* READ LOG EXT: the directory lists log 10h. */
    h2d(f, 0x2f, 0, 1, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
    CHECK(le16_get(ram(DATA2, 512)) == 1 && le16_get(ram(DATA2 + 0x20, 2)) == 1);
}

static void test_ncq(void)
{
    uint8_t f[20];
    fill(ram(DATA, 4 * 8192), 4 * 8192, 5);
    for (unsigned t = 0; t < 4; t++) {
        h2d(f, 0x61, 1000 + 64 * t, (uint16_t)(t << 3), 16); /* 16 sectors, tag t */
        prepare(P_RW, t, f, NULL, &(struct prd_e){DATA + 8192 * t, 8192}, 1, true);
    }
    pwr(P_RW, PX_IS, 0xffffffff);
    pwr(P_RW, PX_SACT, 0xf);
    pwr(P_RW, PX_CI, 0xf);
    CHECK(prd(P_RW, PX_CI) == 0 && prd(P_RW, PX_SACT) == 0);
    CHECK(prd(P_RW, PX_IS) & IS_SDBS);
    CHECK(ram(FB(P_RW) + 0x58, 1)[0] == 0xa1);
    for (unsigned t = 0; t < 4; t++)
        CHECK(image_is(img, (1000 + 64 * t) * 512, ram(DATA + 8192 * t, 8192), 8192));
    memset(ram(DATA2, 4 * 8192), 0, 4 * 8192);
    for (unsigned t = 0; t < 4; t++) {
        h2d(f, 0x60, 1000 + 64 * t, (uint16_t)((3 - t) << 3), 16);
        prepare(P_RW, 3 - t, f, NULL, &(struct prd_e){DATA2 + 8192 * t, 8192}, 1, false);
    }
    pwr(P_RW, PX_SACT, 0xf);
    pwr(P_RW, PX_CI, 0xf);
    CHECK(prd(P_RW, PX_CI) == 0 && prd(P_RW, PX_SACT) == 0);
    CHECK(memcmp(ram(DATA2, 4 * 8192), ram(DATA, 4 * 8192), 4 * 8192) == 0);

    /* A queued read past the end: an error, the failed tag in the NCQ error log. */
    h2d(f, 0x60, DISK_MIB * 2048 - 4, 5 << 3, 8);
    prepare(P_RW, 5, f, NULL, &(struct prd_e){DATA2, 4096}, 1, false);
    pwr(P_RW, PX_SACT, 1u << 5);
    pwr(P_RW, PX_CI, 1u << 5);
    CHECK(prd(P_RW, PX_IS) & IS_TFES);
    CHECK(((prd(P_RW, PX_TFD) >> 8) & 0xff) == ATA_IDNF);
    CHECK(((prd(P_RW, PX_CMD) >> 8) & 0x1f) == 5); /* CCS: the failed slot */
    restart(P_RW);
    h2d(f, 0x2f, 0x10, 1, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
    CHECK(ram(DATA2, 1)[0] == 5 && ram(DATA2 + 3, 1)[0] == ATA_IDNF);
}

/* A command that fails: the error it reports, the port restarted, IDENTIFY works after. */
static void refused(unsigned port, uint32_t is_bit, uint8_t error)
{
    CHECK(prd(port, PX_IS) & is_bit);
    if (error)
        CHECK(((prd(port, PX_TFD) >> 8) & 0xff) == error);
    restart(port);
    uint8_t f[20];
    h2d(f, port == P_CD ? 0xa1 : 0xec, 0, 0, 0);
    CHECK(run(port, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
}

static void test_hostile(void)
{
    uint8_t f[20];
    /* LBA past the end, and a transfer that crosses it. */
    h2d(f, 0x25, DISK_MIB * 2048, 1, 0);
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){DATA, 512}, 1, false));
    refused(P_RW, IS_TFES, ATA_IDNF);
    h2d(f, 0x25, DISK_MIB * 2048 - 1, 0, 0); /* count 0: 65536 sectors */
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){DATA, 512}, 1, false));
    refused(P_RW, IS_TFES, ATA_IDNF);
    h2d(f, 0x35, 0xffffffffffffull, 1, 0);
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){DATA, 512}, 1, true));
    refused(P_RW, IS_TFES, ATA_IDNF);

    /* A PRD outside RAM, one that runs past its end, a PRDT shorter than the transfer. */
    h2d(f, 0x25, 0, 8, 0);
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){1ull << 40, 4096}, 1, false));
    refused(P_RW, IS_HBDS, 0);
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){RAM - 512, 4096}, 1, false));
    refused(P_RW, IS_HBDS, 0);
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){DATA, 2048}, 1, false));
    refused(P_RW, IS_TFES, ATA_ABRT);
    h2d(f, 0xec, 0, 0, 0);
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){~0ull, 512}, 1, false));
    refused(P_RW, IS_HBDS, 0);

    /* 65535 PRDs, the table running out of RAM: walked until it leaves RAM. */
    h2d(f, 0x25, 0, 8, 0);
    prepare(P_RW, 0, f, NULL, &(struct prd_e){DATA, 16}, 1, false);
    uint8_t *hdr = ram(CLB(P_RW), 32);
    le32_put(hdr, 5 | 0xffffu << 16);
    le64_put(hdr + 8, RAM - 0x100);
    memcpy(ram(RAM - 0x100, 20), f, 20);
    memset(ram(RAM - 0x80, 0x80), 0, 0x80); /* PRDs of 1 byte at address 0 */
    pwr(P_RW, PX_CI, 1);
    refused(P_RW, IS_HBDS, 0);

    /* A command table outside RAM, a command list outside RAM, a FIS of another type. */
    prepare(P_RW, 0, f, NULL, NULL, 0, false);
    le64_put(hdr + 8, 1ull << 45);
    pwr(P_RW, PX_CI, 1);
    refused(P_RW, IS_HBFS, 0);
    prepare(P_RW, 0, f, NULL, NULL, 0, false);
    ram(CT(0), 1)[0] = 0x34;
    pwr(P_RW, PX_CI, 1);
    refused(P_RW, IS_HBFS, 0);
    prepare(P_RW, 0, f, NULL, NULL, 0, false);
    le32_put(hdr, 0); /* CFL 0 */
    pwr(P_RW, PX_CI, 1);
    refused(P_RW, IS_HBFS, 0);
    pwr(P_RW, PX_CMD, CMD_FRE);
    pwr(P_RW, PX_CLB, 0xfffffc00);
    pwr(P_RW, PX_CLBU, 0xffffffff);
    pwr(P_RW, PX_CMD, CMD_FRE | CMD_ST);
    pwr(P_RW, PX_CI, 0xffffffff);
    CHECK(prd(P_RW, PX_IS) & IS_HBFS);
    pwr(P_RW, PX_CMD, CMD_FRE);
    pwr(P_RW, PX_CLB, (uint32_t)CLB(P_RW));
    pwr(P_RW, PX_CLBU, 0);
    pwr(P_RW, PX_IS, 0xffffffff);
    pwr(P_RW, PX_CMD, CMD_FRE | CMD_ST);

    /* The FIS area outside RAM: the command still runs, nothing is written. */
    pwr(P_RW, PX_CMD, 0);
    pwr(P_RW, PX_FBU, 0x1000);
    pwr(P_RW, PX_CMD, CMD_FRE | CMD_ST);
    h2d(f, 0xec, 0, 0, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
    pwr(P_RW, PX_CMD, 0);
    pwr(P_RW, PX_FBU, 0);
    pwr(P_RW, PX_CMD, CMD_FRE | CMD_ST);

    /* Unknown and unsupported commands, bad SET FEATURES, a TRIM past the end. */
    h2d(f, 0xb0, 0, 0, 0);
    CHECK(!run(P_RW, f, NULL, NULL, 0, false));
    refused(P_RW, IS_TFES, ATA_ABRT);
    h2d(f, 0xef, 0, 0x99, 0x03);
    CHECK(!run(P_RW, f, NULL, NULL, 0, false));
    refused(P_RW, IS_TFES, ATA_ABRT);
    le64_put(ram(DATA2, 8), (uint64_t)(DISK_MIB * 2048 - 1) | (uint64_t)2 << 48);
    h2d(f, 0x06, 0, 1, 1);
    CHECK(!run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, true));
    refused(P_RW, IS_TFES, ATA_IDNF);

    /* Commands while the port is stopped are not taken; PxSACT neither. */
    pwr(P_RW, PX_CMD, CMD_FRE);
    pwr(P_RW, PX_SACT, 1);
    pwr(P_RW, PX_CI, 1);
    CHECK(prd(P_RW, PX_CI) == 0 && prd(P_RW, PX_SACT) == 0);
    pwr(P_RW, PX_CMD, CMD_FRE | CMD_ST);
}

static void test_readonly(void)
{
    uint8_t f[20], before[4096];
    int fd = open(img_ro, O_RDONLY);
    CHECK(pread(fd, before, sizeof(before), 0) == (ssize_t)sizeof(before));
    close(fd);
    start_port(P_RO);
    memset(ram(DATA, 4096), 0x5a, 4096);
    h2d(f, 0x35, 0, 8, 0);
    CHECK(!run(P_RO, f, NULL, &(struct prd_e){DATA, 4096}, 1, true));
    refused(P_RO, IS_TFES, ATA_ABRT);
    h2d(f, 0x25, 0, 8, 0);
    CHECK(run(P_RO, f, NULL, &(struct prd_e){DATA, 4096}, 1, false));
    CHECK(memcmp(ram(DATA, 4096), before, 4096) == 0);
    CHECK(image_is(img_ro, 0, before, sizeof(before)));
}

/* ---- the CD-ROM ---- */

static uint8_t pf[20];

static bool packet(const uint8_t *cdb, uint32_t len, bool dma)
{
    h2d(pf, 0xa0, (uint64_t)len << 8, 0, dma ? 1 : 0);
    pf[7] = 0;
    memset(ram(DATA2, 0x10000), 0xcc, 0x10000);
    return run(P_CD, pf, cdb, &(struct prd_e){DATA2, len ? len : 2}, 1, false);
}

/* The sense of the last command, through REQUEST SENSE: key << 16 | ASC << 8 | ASCQ. */
static uint32_t sense(void)
{
    const uint8_t cdb[12] = {0x03, 0, 0, 0, 18};
    CHECK(packet(cdb, 18, false));
    const uint8_t *s = ram(DATA2, 18);
    CHECK(s[0] == 0x70 && s[7] == 10);
    return (uint32_t)(s[2] & 0xf) << 16 | (uint32_t)s[12] << 8 | s[13];
}

/* A packet that fails with a CHECK CONDITION: its sense key, after the port's restart. */
static uint32_t failed_packet(const uint8_t *cdb, uint32_t len)
{
    CHECK(!packet(cdb, len, false));
    CHECK(prd(P_CD, PX_IS) & IS_TFES);
    uint8_t key = (uint8_t)(prd(P_CD, PX_TFD) >> 12);
    restart(P_CD);
    uint32_t s = sense();
    CHECK(s >> 16 == key);
    return s;
}

static void test_cdrom(void)
{
    uint8_t f[20];
    uint64_t blocks = ISO_MIB * MiB / 2048;
    start_port(P_CD);
    h2d(f, 0xa1, 0, 0, 0);
    CHECK(run(P_CD, f, NULL, &(struct prd_e){DATA, 512}, 1, false));
    CHECK(idw(ram(DATA, 512), 0) == 0x85c0 && (idw(ram(DATA, 512), 49) & 0x100));
    h2d(f, 0xec, 0, 0, 0); /* IDENTIFY DEVICE: aborted, as ATAPI does */
    CHECK(!run(P_CD, f, NULL, &(struct prd_e){DATA, 512}, 1, false));
    refused(P_CD, IS_TFES, ATA_ABRT);

    const uint8_t tur[12] = {0x00};
    CHECK(packet(tur, 0, false));
    const uint8_t inq[12] = {0x12, 0, 0, 0, 36};
    CHECK(packet(inq, 36, false));
    CHECK(ram(DATA2, 1)[0] == 0x05 && ram(DATA2 + 1, 1)[0] == 0x80);
    CHECK(memcmp(ram(DATA2 + 16, 7), "DVD-ROM", 7) == 0);
    CHECK(prdbc(P_CD, 0) == 36 && (prd(P_CD, PX_IS) & IS_PSS));
    const uint8_t inq_short[12] = {0x12, 0, 0, 0, 5};
    CHECK(packet(inq_short, 36, false) && prdbc(P_CD, 0) == 5 && ram(DATA2 + 5, 1)[0] == 0xcc);
    const uint8_t vpd80[12] = {0x12, 1, 0x80, 0, 24};
    CHECK(packet(vpd80, 24, false) && ram(DATA2 + 1, 1)[0] == 0x80);

    const uint8_t cap[12] = {0x25};
    CHECK(packet(cap, 8, true));
    const uint8_t *c = ram(DATA2, 8);
    CHECK(((uint32_t)c[0] << 24 | c[1] << 16 | c[2] << 8 | c[3]) == blocks - 1);
    CHECK(((uint32_t)c[4] << 24 | c[5] << 16 | c[6] << 8 | c[7]) == 2048);

    /* READ(10) of blocks 3-4 and READ(12) of the last: the ISO's bytes. */
    const uint8_t rd10[12] = {0x28, 0, 0, 0, 0, 3, 0, 0, 2};
    CHECK(packet(rd10, 4096, true));
    CHECK(image_is(iso, 3 * 2048, ram(DATA2, 4096), 4096));
    CHECK(prdbc(P_CD, 0) == 4096);
    uint8_t rd12[12] = {0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    rd12[4] = (uint8_t)((blocks - 1) >> 8);
    rd12[5] = (uint8_t)(blocks - 1);
    CHECK(packet(rd12, 2048, true));
    CHECK(image_is(iso, (blocks - 1) * 2048, ram(DATA2, 2048), 2048));
    /* Past the end, and a PRDT too short for the blocks asked. */
    uint8_t past[12] = {0x28, 0, 0, 0, 0, 0, 0, 0, 2};
    past[4] = (uint8_t)((blocks - 1) >> 8);
    past[5] = (uint8_t)(blocks - 1);
    CHECK(failed_packet(past, 4096) == 0x052100);
    CHECK(failed_packet(rd10, 2048) >> 16 == 0xb);

    const uint8_t bad[12] = {0xff};
    CHECK(failed_packet(bad, 0) == 0x052000);
    CHECK(sense() == 0); /* read once, then cleared */

    const uint8_t ms[12] = {0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 28};
    CHECK(packet(ms, 28, false));
    CHECK(ram(DATA2 + 8, 1)[0] == 0x2a && (ram(DATA2 + 14, 1)[0] & 0x08));
    const uint8_t ms_saved[12] = {0x5a, 0, 0xea, 0, 0, 0, 0, 0, 28};
    CHECK(failed_packet(ms_saved, 28) == 0x053900);

    const uint8_t gc[12] = {0x46, 0, 0, 0, 0, 0, 0, 0, 64};
    CHECK(packet(gc, 64, false));
    CHECK(ram(DATA2 + 6, 1)[0] == 0 && ram(DATA2 + 7, 1)[0] == 0x08); /* CD-ROM */
    CHECK(ram(DATA2 + 9, 1)[0] == 0x00);                              /* profile list first */

    const uint8_t toc[12] = {0x43, 0, 0, 0, 0, 0, 0, 0, 20};
    CHECK(packet(toc, 20, false));
    const uint8_t *t = ram(DATA2, 20);
    CHECK(t[1] == 18 && t[2] == 1 && t[3] == 1 && t[6] == 1 && t[14] == 0xaa);
    CHECK(((uint32_t)t[16] << 24 | t[17] << 16 | t[18] << 8 | t[19]) == blocks);
    const uint8_t toc_ms[12] = {0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40}; /* old-style format 1 */
    CHECK(packet(toc_ms, 12, false) && ram(DATA2 + 1, 1)[0] == 10);

    const uint8_t gesn[12] = {0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8};
    CHECK(packet(gesn, 8, false) && ram(DATA2 + 4, 1)[0] == 0x02); /* new media, once */
    CHECK(packet(gesn, 8, false) && ram(DATA2 + 4, 1)[0] == 0x00 && ram(DATA2 + 5, 1)[0] == 2);
    const uint8_t gesn_async[12] = {0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8};
    CHECK(failed_packet(gesn_async, 8) == 0x052400);

    const uint8_t lock[12] = {0x1e, 0, 0, 0, 1}, unlock[12] = {0x1e};
    const uint8_t eject[12] = {0x1b, 0, 0, 0, 2};
    CHECK(packet(lock, 0, false));
    CHECK(failed_packet(eject, 0) == 0x055302);
    CHECK(packet(unlock, 0, false));
    CHECK(packet(eject, 0, false));
    CHECK(packet(tur, 0, false)); /* the image stays in */
}

/* ---- reset, save and load ---- */

static struct state_out sec;

static int load_into(struct ahci *h, const uint8_t *p, size_t len, char *why)
{
    struct state_in in;
    state_in_init(&in, p, len);
    int r = h->dev.ops->load(&h->dev, &in);
    if (r == 0)
        r = state_in_end(&in);
    snprintf(why, STATE_WHY_MAX, "%s", in.why);
    return r;
}

static void copy_file(const char *from, const char *to)
{
    int src = open(from, O_RDONLY), dst = open(to, O_WRONLY);
    uint8_t *buf = malloc(DISK_MIB * MiB);
    CHECK(pread(src, buf, DISK_MIB * MiB, 0) == (ssize_t)(DISK_MIB * MiB));
    CHECK(pwrite(dst, buf, DISK_MIB * MiB, 0) == (ssize_t)(DISK_MIB * MiB));
    close(src);
    close(dst);
    free(buf);
}

static void test_save(void)
{
    uint8_t f[20];
    /* Quiesced: a write issued now waits, and is saved as issued. */
    devices_quiesce(&vma);
    fill(ram(DATA, 4096), 4096, 9);
    h2d(f, 0x35, 2000, 8, 0);
    prepare(P_RW, 3, f, NULL, &(struct prd_e){DATA, 4096}, 1, true);
    pwr(P_RW, PX_CI, 1u << 3);
    CHECK(prd(P_RW, PX_CI) == 1u << 3);
    state_out_init(&sec);
    CHECK(hb.h->dev.ops->save(&hb.h->dev, &sec) == 0 && !sec.failed);

    copy_file(img, img_b);
    make_vm(&vmb);
    struct ahci *hbb;
    const struct vm_disk db = {.path = img_b, .format = "raw"},
                         dro = {.path = img_ro, .readonly = true, .format = "raw"},
                         dcd = {.path = iso, .format = "raw"};
    const struct vm_disk *disks[] = {&db, &dro};
    CHECK(ahci_create_dev(&vmb, disks, 2, &dcd, &hbb) == 0);
    memcpy(vmb.mem.base, vma.mem.base, vma.mem.size);
    devices_quiesce(&vmb);

    char why[STATE_WHY_MAX];
    CHECK(load_into(hbb, sec.buf, sec.len - 1, why) < 0 && strstr(why, "ends early"));
    uint8_t *copy = malloc(sec.len + 1);
    memcpy(copy, sec.buf, sec.len);
    copy[sec.len] = 0;
    CHECK(load_into(hbb, copy, sec.len + 1, why) < 0 && strstr(why, "not read"));
    copy[sec.len - 1] = 2; /* port 5's last flag */
    CHECK(load_into(hbb, copy, sec.len, why) < 0 && strstr(why, "a flag holds 2"));
    free(copy);
    CHECK(load_into(hbb, sec.buf, sec.len, why) == 0);

    /* b carries on: the issued write is served on resume. */
    devices_resume(&vmb);
    drv_vm = &vmb;
    struct ahci *ha = hb.h;
    find(hbb);
    CHECK(prd(P_RW, PX_CI) == 0 && (prd(P_RW, PX_CMD) & CMD_CR));
    CHECK(image_is(img_b, 2000 * 512, ram(DATA, 4096), 4096));
    h2d(f, 0xec, 0, 0, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
    state_out_free(&sec);
    devices_destroy(&vmb);
    drv_vm = &vma;
    find(ha);
    devices_resume(&vma);
    CHECK(prd(P_RW, PX_CI) == 0); /* a served it too on resume */
}

static void test_reset(void)
{
    uint8_t f[20];
    h2d(f, 0xec, 0, 0, 0);
    CHECK(run(P_RW, f, NULL, &(struct prd_e){DATA2, 512}, 1, false));
    devices_quiesce(drv_vm);
    hb.h->dev.ops->reset(&hb.h->dev);
    devices_resume(drv_vm);
    CHECK(!msix_enabled(&hb.h->msix) && cfg_rd(hb.slot, 4, 2) == 0);
    cfg_wr(hb.slot, 4, 0x0006, 2);
    hb.abar = cfg_rd(hb.slot, 0x10 + 4 * AHCI_ABAR, 4) & ~0xfu;
    CHECK(prd(P_RW, PX_CMD) == (CMD_SUD | CMD_POD) && prd(P_RW, PX_CLB) == 0 &&
          rd(HBA_GHC) == GHC_AE);
    /* The old command list is not served: CI needs ST, which is off. */
    memset(ram(DATA2, 512), 0, 512);
    pwr(P_RW, PX_CI, 1);
    CHECK(ram(DATA2, 1)[0] == 0);
}

int main(void)
{
    hv_log_init("test");
    int fd;
    uint8_t junk[4096];
    CHECK((fd = mkstemp(img)) >= 0 && ftruncate(fd, DISK_MIB * MiB) == 0 && close(fd) == 0);
    CHECK((fd = mkstemp(img_b)) >= 0 && ftruncate(fd, DISK_MIB * MiB) == 0 && close(fd) == 0);
    CHECK((fd = mkstemp(img_ro)) >= 0);
    fill(junk, sizeof(junk), 77);
    CHECK(pwrite(fd, junk, sizeof(junk), 0) == (ssize_t)sizeof(junk) &&
          ftruncate(fd, 1 * MiB) == 0 && close(fd) == 0);
    CHECK((fd = mkstemp(iso)) >= 0);
    uint8_t *isob = malloc(ISO_MIB * MiB);
    fill(isob, ISO_MIB * MiB, 3);
    CHECK(write(fd, isob, ISO_MIB * MiB) == (ssize_t)(ISO_MIB * MiB) && close(fd) == 0);
    free(isob);

    make_vm(&vma);
    drv_vm = &vma;
    struct ahci *h;
    const struct vm_disk drw = {.path = img, .format = "raw", .bus = VM_DISK_AHCI},
                         dro = {.path = img_ro, .readonly = true, .format = "raw"},
                         dcd = {.path = iso, .format = "raw"};
    const struct vm_disk *disks[] = {&drw, &dro};
    CHECK(ahci_create_dev(&vma, disks, 2, &dcd, &h) == 0);
    /* Seven devices do not fit on six ports. */
    const struct vm_disk *many[] = {&drw, &drw, &drw, &drw, &drw, &drw};
    CHECK(ahci_create_dev(&vma, many, 6, &dcd, NULL) == -EINVAL);
    find(h);
    test_registers();
    test_identify();
    test_dma();
    test_ncq();
    test_hostile();
    test_readonly();
    test_cdrom();
    test_save();
    test_reset();
    devices_destroy(&vma);
    unlink(img);
    unlink(img_b);
    unlink(img_ro);
    unlink(iso);
    CHECK_DONE();
}
