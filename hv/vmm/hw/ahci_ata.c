// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The SATA disk behind an AHCI port (ATA8-ACS): IDENTIFY DEVICE, reads and
 * writes (DMA, PIO, NCQ), FLUSH CACHE, DATA SET MANAGEMENT (TRIM), SET
 * FEATURES, READ NATIVE MAX, READ LOG EXT (the log directory and the NCQ
 * command error log) and the power commands a driver sends. Every LBA and
 * count is checked against the image; a command the disk does not have is
 * aborted.
 */
#include <stdio.h>
#include <string.h>

#include "../block/block.h"
#include "ahci_int.h"
#include "le.h"
#include "log.h"
#include "util.h"

#define MAX_MULT       16 /* sectors per DRQ block (SET MULTIPLE) */
#define DSM_MAX_BLOCKS 8  /* 512-byte blocks of TRIM ranges per command */
#define LBA28_MAX      0x0fffffffu

void ata_string(uint8_t *dst, const char *src, unsigned len)
{
    size_t n = strnlen(src, len);
    memset(dst, ' ', len);
    memcpy(dst, src, n);
    for (unsigned i = 0; i + 1 < len; i += 2) {
        uint8_t t = dst[i];
        dst[i] = dst[i + 1];
        dst[i + 1] = t;
    }
}

void ata_identify_ids(struct ahci_port *p)
{
    memset(p->serial, 0, sizeof(p->serial));
    for (unsigned i = 0; i < sizeof(p->serial); i++) {
        char ch = p->disk.serial[i];
        p->serial[i] = ch == 0 ? ' ' : ch > 0x20 && ch < 0x7f ? ch : '_';
    }
    snprintf(p->model, sizeof(p->model), "%s",
             p->kind == AHCI_ATAPI ? "hv DVD-ROM" : "hv SATA disk");
}

void ata_power_on(struct ahci_port *p)
{
    p->ata = (struct ata_state){.xfer_mode = 0x46 /* UDMA 6 */, .wcache = true, .lookahead = true};
}

static void put_word(uint8_t *id, unsigned w, uint16_t v)
{
    le16_put(id + 2 * w, v);
}

/* Word 255: the signature A5h and a checksum that makes all 512 bytes sum to 0. */
static void id_checksum(uint8_t *id)
{
    uint8_t sum = 0xa5;
    id[510] = 0xa5;
    for (unsigned i = 0; i < 510; i++)
        sum += id[i];
    id[511] = (uint8_t)-sum;
}

void ata_identify(struct ahci_port *p, uint8_t *id)
{
    uint64_t n = p->disk.sectors;
    const struct ata_state *a = &p->ata;
    memset(id, 0, 512);
    put_word(id, 0, 0x0040); /* a fixed ATA device */
    put_word(id, 1, (uint16_t)MIN(n / (16 * 63), 16383));
    put_word(id, 3, 16);
    put_word(id, 6, 63);
    ata_string(id + 20, p->serial, 20);
    ata_string(id + 46, "1.0", 8);
    ata_string(id + 54, p->model, 40);
    put_word(id, 47, 0x8000 | MAX_MULT);
    put_word(id, 49, 0x0b00); /* IORDY, LBA, DMA */
    put_word(id, 50, 0x4000);
    put_word(id, 53, 0x0006); /* words 64-70 and 88 are valid */
    put_word(id, 59, a->mult ? 0x0100 | a->mult : 0);
    put_word(id, 60, (uint16_t)MIN(n, LBA28_MAX));
    put_word(id, 61, (uint16_t)(MIN(n, LBA28_MAX) >> 16));
    put_word(id, 63, 0x0007 | ((a->xfer_mode & 0xf8) == 0x20 ? 0x100u << (a->xfer_mode & 7) : 0));
    put_word(id, 64, 0x0003); /* PIO 3 and 4 */
    for (unsigned w = 65; w <= 68; w++)
        put_word(id, w, 120);
    put_word(id, 69, 0x4020);         /* trimmed ranges read deterministically, as zeros */
    put_word(id, 75, AHCI_SLOTS - 1); /* queue depth 32 */
    put_word(id, 76, 0x0106);         /* NCQ, SATA Gen1 and Gen2 */
    put_word(id, 80, 0x01f0);         /* ATA/ATAPI-4 to ATA8-ACS */
    put_word(id, 82, 0x4460);         /* NOP, HPA, look-ahead, write cache */
    put_word(id, 83, 0x7400);         /* FLUSH CACHE EXT, FLUSH CACHE, 48-bit */
    put_word(id, 84, 0x4020);         /* general purpose logging */
    put_word(id, 85, 0x0400 | (a->wcache ? 0x20 : 0) | (a->lookahead ? 0x40 : 0));
    put_word(id, 86, 0x3400);
    put_word(id, 87, 0x4020);
    put_word(id, 88, 0x007f | ((a->xfer_mode & 0xf8) == 0x40 ? 0x100u << (a->xfer_mode & 7) : 0));
    put_word(id, 93, 0);
    le64_put(id + 200, n);     /* words 100-103 */
    put_word(id, 106, 0x4000); /* one logical sector per physical, 512 bytes */
    put_word(id, 169, 0x0001); /* DSM TRIM */
    put_word(id, 105, DSM_MAX_BLOCKS);
    put_word(id, 217, 0x0001); /* not rotating */
    id_checksum(id);
}

static void fail(struct ahci_cmd *c, uint8_t error)
{
    c->status = ATA_DRDY | ATA_ERR;
    c->error = error;
}

static uint64_t lba48(const uint8_t *f)
{
    return (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 | (uint64_t)f[8] << 24 |
           (uint64_t)f[9] << 32 | (uint64_t)f[10] << 40;
}

static uint64_t lba28(const uint8_t *f)
{
    return (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
           (uint64_t)(f[7] & 0xf) << 24;
}

/* A read or write of n sectors at lba through the PRDT. */
static void read_write(struct ahci_cmd *c, uint64_t lba, uint64_t n, bool write, bool fua)
{
    struct ahci_port *p = c->port;
    if (lba > p->disk.sectors || n > p->disk.sectors - lba)
        return fail(c, ATA_IDNF);
    if (write && p->disk.readonly)
        return fail(c, ATA_ABRT);
    int ret = ahci_sg_disk(c, lba * AHCI_SECTOR, n * AHCI_SECTOR, write);
    if (ret == -1)
        return; /* host_error: the controller reports it */
    if (ret == -3) {
        ahci_log_bad(p->hba, "gave a PRDT shorter than its transfer");
        return fail(c, ATA_ABRT);
    }
    if (ret == 0 && write && (fua || !p->ata.wcache) && bdev_flush(p->disk.bdev) < 0)
        ret = -2;
    if (ret < 0)
        return fail(c, write ? ATA_ABRT : ATA_UNC);
}

static void flush(struct ahci_cmd *c)
{
    struct ahci_port *p = c->port;
    if (!p->disk.readonly && bdev_flush(p->disk.bdev) < 0)
        fail(c, ATA_ABRT);
}

/* DATA SET MANAGEMENT with TRIM: ranges of 8 bytes, LBA in 47:0, length in 63:48. */
static void dsm(struct ahci_cmd *c, uint16_t feat, uint16_t count)
{
    struct ahci_port *p = c->port;
    uint8_t buf[DSM_MAX_BLOCKS * AHCI_SECTOR];
    if (!(feat & 1) || count == 0 || count > DSM_MAX_BLOCKS || p->disk.readonly)
        return fail(c, ATA_ABRT);
    int64_t got = ahci_sg_from_guest(c, buf, (uint64_t)count * AHCI_SECTOR);
    if (got < 0)
        return;
    if (got < (int64_t)count * AHCI_SECTOR)
        return fail(c, ATA_ABRT);
    for (unsigned i = 0; i < count * AHCI_SECTOR / 8u; i++) {
        uint64_t e = le64_get(buf + 8 * i);
        uint64_t lba = e & ((UINT64_C(1) << 48) - 1), len = e >> 48;
        if (len == 0)
            continue;
        if (lba > p->disk.sectors || len > p->disk.sectors - lba)
            return fail(c, ATA_IDNF);
        if (bdev_write_zeroes(p->disk.bdev, lba * AHCI_SECTOR, len * AHCI_SECTOR, true) < 0)
            return fail(c, ATA_ABRT);
    }
}

static void set_features(struct ahci_cmd *c, uint8_t sub, uint8_t count)
{
    struct ata_state *a = &c->port->ata;
    switch (sub) {
    case 0x03: /* transfer mode: PIO default/flow control, MWDMA 0-2, UDMA 0-6 */
        if (count <= 0x01 || (count >= 0x08 && count <= 0x0c) || (count >= 0x20 && count <= 0x22) ||
            (count >= 0x40 && count <= 0x46))
            a->xfer_mode = count;
        else
            fail(c, ATA_ABRT);
        break;
    case 0x02:
        a->wcache = true;
        break;
    case 0x82:
        flush(c);
        a->wcache = false;
        break;
    case 0xaa:
        a->lookahead = true;
        break;
    case 0x55:
        a->lookahead = false;
        break;
    case 0x66: /* reverting to power-on defaults: there are no others */
    case 0xcc:
        break;
    default:
        fail(c, ATA_ABRT);
    }
}

/* READ LOG EXT: the directory (log 0) and the NCQ command error log (10h), one page each. */
static void read_log(struct ahci_cmd *c, uint8_t log, uint16_t page, uint16_t count)
{
    struct ata_state *a = &c->port->ata;
    uint8_t buf[AHCI_SECTOR] = {0};
    if (page != 0 || count != 1 || (log != 0x00 && log != 0x10))
        return fail(c, ATA_ABRT);
    if (log == 0x00) {
        le16_put(buf, 0x0001); /* GPL version */
        le16_put(buf + 2 * 0x10, 1);
    } else {
        if (a->ncq_err) {
            buf[0] = a->ncq_tag;
            buf[2] = a->ncq_status;
            buf[3] = a->ncq_error;
            buf[4] = (uint8_t)a->ncq_lba, buf[5] = (uint8_t)(a->ncq_lba >> 8);
            buf[6] = (uint8_t)(a->ncq_lba >> 16), buf[7] = 0x40;
            buf[8] = (uint8_t)(a->ncq_lba >> 24), buf[9] = (uint8_t)(a->ncq_lba >> 32);
            buf[10] = (uint8_t)(a->ncq_lba >> 40);
        } else {
            buf[0] = 0x80; /* NQ: no queued command failed */
        }
        uint8_t sum = 0;
        for (unsigned i = 0; i < 511; i++)
            sum += buf[i];
        buf[511] = (uint8_t)-sum;
        a->ncq_err = false;
    }
    c->pio = true;
    ahci_sg_to_guest(c, buf, sizeof(buf));
}

static void native_max(struct ahci_cmd *c, bool ext)
{
    uint64_t max = c->port->disk.sectors ? c->port->disk.sectors - 1 : 0;
    c->res_lba_set = true;
    c->res_lba48 = ext;
    c->res_lba = ext ? max : MIN(max, LBA28_MAX);
}

/* LBA, count and direction of the read/write commands; false for other opcodes. */
static bool rw_params(const uint8_t *f, uint64_t *lba, uint64_t *n, bool *write, bool *pio)
{
    uint16_t count = (uint16_t)(f[12] | f[13] << 8);
    *pio = false;
    switch (f[2]) {
    case 0x25: /* READ DMA EXT */
    case 0x35: /* WRITE DMA EXT */
    case 0x24: /* READ SECTORS EXT */
    case 0x34: /* WRITE SECTORS EXT */
    case 0x29: /* READ MULTIPLE EXT */
    case 0x39: /* WRITE MULTIPLE EXT */
        *lba = lba48(f);
        *n = count ? count : 65536;
        *write = f[2] & 0x10;
        *pio = f[2] != 0x25 && f[2] != 0x35;
        return true;
    case 0xc8: /* READ DMA */
    case 0xca: /* WRITE DMA */
    case 0x20: /* READ SECTORS */
    case 0x30: /* WRITE SECTORS */
    case 0xc4: /* READ MULTIPLE */
    case 0xc5: /* WRITE MULTIPLE */
        *lba = lba28(f);
        *n = (count & 0xff) ? (count & 0xff) : 256;
        *write = f[2] == 0xca || f[2] == 0x30 || f[2] == 0xc5;
        *pio = f[2] != 0xc8 && f[2] != 0xca;
        return true;
    default:
        return false;
    }
}

void ata_command(struct ahci_cmd *c)
{
    struct ahci_port *p = c->port;
    const uint8_t *f = c->fis;
    uint16_t feat = (uint16_t)(f[3] | f[11] << 8), count = (uint16_t)(f[12] | f[13] << 8);
    uint64_t lba, n;
    bool write, pio;
    uint8_t id[512];

    c->status = ATA_OK;
    if (rw_params(f, &lba, &n, &write, &pio)) {
        c->pio = pio && !write;
        return read_write(c, lba, n, write, false);
    }
    switch (f[2]) {
    case 0x60: /* READ FPDMA QUEUED */
    case 0x61: /* WRITE FPDMA QUEUED */
        c->ncq = true;
        c->tag = (count >> 3) & 0x1f;
        lba = lba48(f);
        read_write(c, lba, feat ? feat : 65536, f[2] == 0x61, f[7] & 0x80);
        if (c->status & ATA_ERR) {
            p->ata = (struct ata_state){.xfer_mode = p->ata.xfer_mode,
                                        .wcache = p->ata.wcache,
                                        .lookahead = p->ata.lookahead,
                                        .mult = p->ata.mult,
                                        .ncq_err = true,
                                        .ncq_tag = (uint8_t)c->tag,
                                        .ncq_status = c->status,
                                        .ncq_error = c->error,
                                        .ncq_lba = lba};
        }
        return;
    case 0xec: /* IDENTIFY DEVICE */
        ata_identify(p, id);
        c->pio = true;
        ahci_sg_to_guest(c, id, sizeof(id));
        return;
    case 0xe7: /* FLUSH CACHE */
    case 0xea: /* FLUSH CACHE EXT */
        return flush(c);
    case 0x06: /* DATA SET MANAGEMENT */
        return dsm(c, feat, count);
    case 0xef: /* SET FEATURES */
        return set_features(c, (uint8_t)feat, (uint8_t)count);
    case 0xf8: /* READ NATIVE MAX ADDRESS */
        return native_max(c, false);
    case 0x27: /* READ NATIVE MAX ADDRESS EXT */
        return native_max(c, true);
    case 0x2f: /* READ LOG EXT */
    case 0x47: /* READ LOG DMA EXT */
        return read_log(c, f[4], (uint16_t)(f[5] | f[9] << 8), count);
    case 0xc6: /* SET MULTIPLE MODE */
        if ((count & 0xff) > MAX_MULT || ((count & 0xff) & ((count & 0xff) - 1)))
            return fail(c, ATA_ABRT);
        p->ata.mult = (uint8_t)count;
        return;
    case 0x40: /* READ VERIFY SECTORS */
    case 0x42: /* READ VERIFY SECTORS EXT */
        lba = f[2] == 0x42 ? lba48(f) : lba28(f);
        n = f[2] == 0x42 ? (count ? count : 65536) : ((count & 0xff) ? (count & 0xff) : 256);
        if (lba > p->disk.sectors || n > p->disk.sectors - lba)
            fail(c, ATA_IDNF);
        return;
    case 0xe0: /* STANDBY IMMEDIATE */
    case 0xe2: /* STANDBY */
        return flush(c);
    case 0xe1: /* IDLE IMMEDIATE */
    case 0xe3: /* IDLE */
    case 0x91: /* INITIALIZE DEVICE PARAMETERS */
        return;
    case 0xe5: /* CHECK POWER MODE: active */
        c->count = 0xff;
        return;
    default:
        if ((f[2] & 0xf0) == 0x10) /* RECALIBRATE */
            return;
        return fail(c, ATA_ABRT); /* NOP, PACKET, IDENTIFY PACKET... and the unknown */
    }
}
