// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The ATAPI CD/DVD-ROM drive behind an AHCI port: IDENTIFY PACKET DEVICE and
 * the PACKET command's SCSI/MMC commands (SPC-3, MMC-5) on an ISO image of
 * 2048-byte blocks, read-only, its medium always loaded: TEST UNIT READY,
 * REQUEST SENSE, INQUIRY (and VPD pages 00h, 80h), READ CAPACITY, READ(10),
 * READ(12), MODE SENSE(10) (pages 01h, 2Ah), GET CONFIGURATION, READ TOC
 * (formats 0 and 1), GET EVENT STATUS NOTIFICATION (media class), START STOP
 * UNIT, PREVENT ALLOW MEDIUM REMOVAL. Anything else is a CHECK CONDITION
 * with its sense data (ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE...).
 */
#include <string.h>

#include "ahci_int.h"
#include "le.h"
#include "util.h"

#define KEY_NONE            0x0
#define KEY_NOT_READY       0x2
#define KEY_ILLEGAL_REQUEST 0x5
#define KEY_ABORTED         0xb
#define ASC_INVALID_OPCODE  0x20
#define ASC_LBA_RANGE       0x21
#define ASC_INVALID_FIELD   0x24
#define ASC_NO_SAVING       0x39
#define ASC_NO_MEDIUM       0x3a
#define ASC_REMOVAL_LOCKED  0x53
#define CD_MAX_BLOCKS       360000u /* 80 minutes: larger images are DVDs */
#define PROFILE_DVD_ROM     0x0010
#define PROFILE_CD_ROM      0x0008

static void be16_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32_put(uint8_t *p, uint32_t v)
{
    be16_put(p, v >> 16);
    be16_put(p + 2, v);
}

static uint16_t be16_get(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)be16_get(p) << 16 | be16_get(p + 2);
}

static uint64_t blocks(const struct ahci_port *p)
{
    return p->disk.sectors / (ATAPI_BLOCK / AHCI_SECTOR);
}

void atapi_power_on(struct ahci_port *p)
{
    p->atapi = (struct atapi_state){.media_event = true};
}

void atapi_identify(struct ahci_port *p, uint8_t *id)
{
    memset(id, 0, 512);
    le16_put(id, 0x85c0); /* ATAPI, CD-ROM, removable, 50 us DRQ, 12-byte packets */
    ata_string(id + 20, p->serial, 20);
    ata_string(id + 46, "1.0", 8);
    ata_string(id + 54, p->model, 40);
    le16_put(id + 2 * 49, 0x0300); /* LBA, DMA */
    le16_put(id + 2 * 53, 0x0006);
    le16_put(id + 2 * 63, 0x0007);
    le16_put(id + 2 * 64, 0x0003);
    for (unsigned w = 65; w <= 68; w++)
        le16_put(id + 2 * w, 120);
    le16_put(id + 2 * 76, 0x0006); /* SATA Gen1, Gen2 */
    le16_put(id + 2 * 80, 0x01f0);
    le16_put(id + 2 * 82, 0x4014); /* NOP, PACKET, removable media */
    le16_put(id + 2 * 83, 0x4000);
    le16_put(id + 2 * 84, 0x4000);
    le16_put(id + 2 * 85, 0x4014);
    le16_put(id + 2 * 87, 0x4000);
    le16_put(id + 2 * 88, 0x203f); /* UDMA 0-5, 5 selected */
}

/* ---- results ---- */

static void check(struct ahci_cmd *c, uint8_t key, uint8_t asc, uint8_t ascq)
{
    struct atapi_state *s = &c->port->atapi;
    s->sense_key = key;
    s->asc = asc;
    s->ascq = ascq;
    c->status = ATA_DRDY | ATA_ERR;
    c->error = (uint8_t)(key << 4 | (key == KEY_ILLEGAL_REQUEST ? ATA_ABRT : 0));
}

static void invalid_field(struct ahci_cmd *c)
{
    check(c, KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
}

/* The answer's first MIN(len, alloc) bytes to the guest (PIO setup FIS unless DMA). */
static void reply(struct ahci_cmd *c, const uint8_t *buf, uint32_t len, uint32_t alloc)
{
    len = MIN(len, alloc);
    if (len == 0)
        return;
    c->pio = !(c->fis[3] & 1);
    ahci_sg_to_guest(c, buf, len);
}

/* ---- commands ---- */

static void request_sense(struct ahci_cmd *c, uint32_t alloc)
{
    struct atapi_state *s = &c->port->atapi;
    uint8_t b[18] = {0x70, 0, s->sense_key};
    b[7] = 10;
    b[12] = s->asc;
    b[13] = s->ascq;
    s->sense_key = s->asc = s->ascq = 0;
    reply(c, b, sizeof(b), alloc);
}

static void inquiry(struct ahci_cmd *c, const uint8_t *cdb)
{
    struct ahci_port *p = c->port;
    uint32_t alloc = be16_get(cdb + 3);
    uint8_t b[36] = {0};
    if (cdb[1] & 1) { /* vital product data */
        if (cdb[2] == 0x00) {
            uint8_t v[6] = {0x05, 0x00, 0, 2, 0x00, 0x80};
            return reply(c, v, sizeof(v), alloc);
        }
        if (cdb[2] == 0x80) {
            uint8_t v[24] = {0x05, 0x80, 0, 20};
            memcpy(v + 4, p->serial, 20);
            return reply(c, v, sizeof(v), alloc);
        }
        return invalid_field(c);
    }
    if (cdb[2])
        return invalid_field(c);
    b[0] = 0x05; /* CD/DVD device */
    b[1] = 0x80; /* removable */
    b[2] = 0x05; /* SPC-3 */
    b[3] = 0x02;
    b[4] = sizeof(b) - 5;
    memcpy(b + 8, "hv      ", 8);
    memcpy(b + 16, "DVD-ROM         ", 16);
    memcpy(b + 32, "1.0 ", 4);
    reply(c, b, sizeof(b), alloc);
}

static void read_capacity(struct ahci_cmd *c)
{
    uint8_t b[8];
    uint64_t n = blocks(c->port);
    be32_put(b, (uint32_t)MIN(n - 1, 0xffffffffu));
    be32_put(b + 4, ATAPI_BLOCK);
    reply(c, b, sizeof(b), sizeof(b));
}

static void read_blocks(struct ahci_cmd *c, uint64_t lba, uint64_t n)
{
    struct ahci_port *p = c->port;
    if (lba > blocks(p) || n > blocks(p) - lba)
        return check(c, KEY_ILLEGAL_REQUEST, ASC_LBA_RANGE, 0);
    if (n == 0)
        return;
    if (n * ATAPI_BLOCK > AHCI_MAX_XFER)
        return invalid_field(c);
    int ret = ahci_sg_disk(c, lba * ATAPI_BLOCK, n * ATAPI_BLOCK, false);
    if (ret == -3) {
        ahci_log_bad(p->hba, "gave a PRDT shorter than its transfer");
        return check(c, KEY_ABORTED, 0, 0);
    }
    if (ret == -2)
        check(c, 0x3 /* MEDIUM ERROR */, 0x11 /* unrecovered read error */, 0);
}

/* Page 2Ah: the drive's capabilities (reads CD and DVD, tray, lockable, ejectable). */
static unsigned caps_page(const struct ahci_port *p, uint8_t *b, bool changeable)
{
    memset(b, 0, 20);
    b[0] = 0x2a;
    b[1] = 18;
    if (changeable)
        return 20;
    b[2] = 0x08;                                /* DVD-ROM read */
    b[4] = 0x70;                                /* mode 2 form 1 and 2, multi-session */
    b[6] = 0x29 | (p->atapi.locked ? 0x02 : 0); /* tray, eject, lock, lock state */
    be16_put(b + 8, 7056);                      /* 40x */
    be16_put(b + 10, 256);
    be16_put(b + 12, 512);
    be16_put(b + 14, 7056);
    return 20;
}

static void mode_sense(struct ahci_cmd *c, const uint8_t *cdb)
{
    uint8_t b[8 + 12 + 20] = {0};
    unsigned pc = cdb[2] >> 6, page = cdb[2] & 0x3f, len = 8;
    if (pc == 3)
        return check(c, KEY_ILLEGAL_REQUEST, ASC_NO_SAVING, 0);
    if (page != 0x01 && page != 0x2a && page != 0x3f)
        return invalid_field(c);
    if (page == 0x01 || page == 0x3f) {
        b[len] = 0x01; /* read error recovery: defaults */
        b[len + 1] = 10;
        len += 12;
    }
    if (page == 0x2a || page == 0x3f)
        len += caps_page(c->port, b + len, pc == 1);
    be16_put(b, len - 2);
    reply(c, b, len, be16_get(cdb + 7));
}

/* One feature descriptor of GET CONFIGURATION. */
struct feature {
    uint16_t code;
    bool current;
    uint8_t version, len;
    uint8_t data[8];
};

static void get_configuration(struct ahci_cmd *c, const uint8_t *cdb)
{
    bool dvd = blocks(c->port) > CD_MAX_BLOCKS;
    uint16_t profile = dvd ? PROFILE_DVD_ROM : PROFILE_CD_ROM;
    const struct feature f[] = {
        {0x0000, true, 0, 8, {0, 0x10, dvd, 0, 0, 0x08, !dvd, 0}}, /* profile list */
        {0x0001, true, 2, 8, {0, 0, 0, 2}},                        /* core: ATAPI */
        {0x0003, true, 0, 4, {0x29}},                              /* removable medium */
        {0x0010, true, 0, 8, {0, 0, 0x08, 0, 0, 1}},               /* random readable */
        {0x001e, !dvd, 2, 4, {0}},                                 /* CD read */
        {0x001f, dvd, 0, 0, {0}},                                  /* DVD read */
    };
    unsigned rt = cdb[1] & 3, sfn = be16_get(cdb + 2);
    uint8_t b[8 + 6 * 12] = {0};
    unsigned len = 8;
    if (rt == 3)
        return invalid_field(c);
    for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].code < sfn || (rt == 1 && !f[i].current) || (rt == 2 && f[i].code != sfn))
            continue;
        be16_put(b + len, f[i].code);
        b[len + 2] = (uint8_t)(f[i].version << 2 | (f[i].code <= 3 ? 2 : 0) | f[i].current);
        b[len + 3] = f[i].len;
        memcpy(b + len + 4, f[i].data, f[i].len);
        len += 4u + f[i].len;
    }
    be32_put(b, len - 4);
    be16_put(b + 6, profile);
    reply(c, b, len, be16_get(cdb + 7));
}

static void put_addr(uint8_t *p, uint32_t lba, bool msf)
{
    if (!msf)
        return be32_put(p, lba);
    uint32_t f = lba + 150; /* the 2-second pre-gap */
    p[0] = 0;
    p[1] = (uint8_t)MIN(f / (75 * 60), 255);
    p[2] = (uint8_t)(f / 75 % 60);
    p[3] = (uint8_t)(f % 75);
}

static void read_toc(struct ahci_cmd *c, const uint8_t *cdb)
{
    bool msf = cdb[1] & 2;
    unsigned format = cdb[2] & 0xf, track = cdb[6];
    uint8_t b[4 + 2 * 8] = {0};
    unsigned len = 4;
    if (format == 0)
        format = cdb[9] >> 6; /* the older place of the format */
    if (format == 0) {
        if (track > 1 && track != 0xaa)
            return invalid_field(c);
        b[2] = b[3] = 1; /* first and last track */
        if (track <= 1) {
            b[len + 1] = 0x14; /* ADR 1, a data track */
            b[len + 2] = 1;
            put_addr(b + len + 4, 0, msf);
            len += 8;
        }
        b[len + 1] = 0x14;
        b[len + 2] = 0xaa; /* lead-out */
        put_addr(b + len + 4, (uint32_t)MIN(blocks(c->port), 0xffffffffu), msf);
        len += 8;
    } else if (format == 1) {
        b[2] = b[3] = 1; /* one session */
        b[len + 1] = 0x14;
        b[len + 2] = 1; /* its first track */
        put_addr(b + len + 4, 0, msf);
        len += 8;
    } else {
        return invalid_field(c);
    }
    be16_put(b, len - 2);
    reply(c, b, len, be16_get(cdb + 7));
}

static void event_status(struct ahci_cmd *c, const uint8_t *cdb)
{
    struct atapi_state *s = &c->port->atapi;
    uint8_t b[8] = {0};
    if (!(cdb[1] & 1))
        return invalid_field(c); /* only polled */
    b[3] = 0x10;                 /* supported: media */
    if (!(cdb[4] & 0x10)) {
        b[2] = 0x80; /* no event available */
        be16_put(b, 2);
        return reply(c, b, 4, be16_get(cdb + 7));
    }
    be16_put(b, 6);
    b[2] = 0x04;                         /* media class */
    b[4] = s->media_event ? 0x02 : 0x00; /* new media, or no change */
    b[5] = 0x02;                         /* media present, tray closed */
    s->media_event = false;
    reply(c, b, sizeof(b), be16_get(cdb + 7));
}

static void start_stop(struct ahci_cmd *c, const uint8_t *cdb)
{
    struct atapi_state *s = &c->port->atapi;
    bool start = cdb[4] & 1, loej = cdb[4] & 2;
    if (loej && !start && s->locked)
        return check(c, KEY_ILLEGAL_REQUEST, ASC_REMOVAL_LOCKED, 2);
    /* The image stays loaded: an eject is accepted and the medium stays in. */
    s->stopped = !start && !loej;
}

static void packet(struct ahci_cmd *c)
{
    struct ahci_port *p = c->port;
    const uint8_t *cdb = c->acmd;
    uint8_t op = cdb[0];
    bool needs_medium = op == 0x00 || op == 0x25 || op == 0x28 || op == 0xa8 || op == 0x43;

    c->count = 3; /* interrupt reason: I/O, C/D: the command is done */
    if (needs_medium && blocks(p) == 0)
        return check(c, KEY_NOT_READY, ASC_NO_MEDIUM, 0);
    if (op != 0x03) /* REQUEST SENSE reports what the last command left */
        p->atapi.sense_key = p->atapi.asc = p->atapi.ascq = 0;
    switch (op) {
    case 0x00: /* TEST UNIT READY */
        if (p->atapi.stopped)
            check(c, KEY_NOT_READY, 0x04, 0x02); /* initializing command required */
        return;
    case 0x03:
        return request_sense(c, cdb[4]);
    case 0x12:
        return inquiry(c, cdb);
    case 0x1b:
        return start_stop(c, cdb);
    case 0x1e: /* PREVENT ALLOW MEDIUM REMOVAL */
        p->atapi.locked = cdb[4] & 1;
        return;
    case 0x25: /* READ CAPACITY */
        return read_capacity(c);
    case 0x28: /* READ(10) */
        return read_blocks(c, be32_get(cdb + 2), be16_get(cdb + 7));
    case 0xa8: /* READ(12) */
        return read_blocks(c, be32_get(cdb + 2), be32_get(cdb + 6));
    case 0x5a: /* MODE SENSE(10) */
        return mode_sense(c, cdb);
    case 0x46:
        return get_configuration(c, cdb);
    case 0x43:
        return read_toc(c, cdb);
    case 0x4a:
        return event_status(c, cdb);
    default:
        return check(c, KEY_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
    }
}

void atapi_command(struct ahci_cmd *c)
{
    uint8_t id[512];
    c->status = ATA_OK;
    switch (c->fis[2]) {
    case 0xa0: /* PACKET */
        return packet(c);
    case 0xa1: /* IDENTIFY PACKET DEVICE */
        atapi_identify(c->port, id);
        c->pio = true;
        ahci_sg_to_guest(c, id, sizeof(id));
        return;
    case 0x08: /* DEVICE RESET */
        atapi_power_on(c->port);
        c->port->atapi.media_event = false;
        c->status = 0;
        return;
    case 0xef: /* SET FEATURES: transfer modes and the rest, accepted */
    case 0xe0: /* STANDBY IMMEDIATE */
    case 0xe1: /* IDLE IMMEDIATE */
        return;
    case 0xe5: /* CHECK POWER MODE */
        c->count = 0xff;
        return;
    default: /* IDENTIFY DEVICE and every other ATA command: aborted */
        c->status = ATA_DRDY | ATA_ERR;
        c->error = ATA_ABRT;
        return;
    }
}
