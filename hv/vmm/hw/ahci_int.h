/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The AHCI controller's insides, shared by ahci.c (HBA and port registers,
 * command list, FISes, PRDT walking, lifecycle), ahci_ata.c (the ATA
 * commands of a SATA disk) and atapi.c (the SCSI/MMC packet commands of the
 * CD-ROM drive).
 */
#ifndef HV_VMM_HW_AHCI_INT_H
#define HV_VMM_HW_AHCI_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ahci.h"
#include "device.h"
#include "msix.h"
#include "pci.h"
#include "virtio/blk.h"

#define AHCI_ABAR      5
#define AHCI_MSIX_BAR  4
#define AHCI_ABAR_SIZE 0x800 /* ICH9's: 0x100 of HBA registers, 0x80 per port */
#define AHCI_PORT_BASE 0x100
#define AHCI_PORT_SIZE 0x80
#define AHCI_SLOTS     32
#define AHCI_MAX_XFER  (32u << 20) /* 65536 sectors: the most one ATA command moves */
#define AHCI_SECTOR    512
#define ATAPI_BLOCK    2048

/* HBA registers. */
#define HBA_CAP  0x00
#define HBA_GHC  0x04
#define HBA_IS   0x08
#define HBA_PI   0x0c
#define HBA_VS   0x10
#define HBA_CAP2 0x24

#define GHC_HR 0x1u
#define GHC_IE 0x2u
#define GHC_AE 0x80000000u

/* Port registers (offsets in the port's 0x80 bytes). */
#define PX_CLB  0x00
#define PX_CLBU 0x04
#define PX_FB   0x08
#define PX_FBU  0x0c
#define PX_IS   0x10
#define PX_IE   0x14
#define PX_CMD  0x18
#define PX_TFD  0x20
#define PX_SIG  0x24
#define PX_SSTS 0x28
#define PX_SCTL 0x2c
#define PX_SERR 0x30
#define PX_SACT 0x34
#define PX_CI   0x38
#define PX_SNTF 0x3c

#define CMD_ST    (1u << 0)
#define CMD_SUD   (1u << 1)
#define CMD_POD   (1u << 2)
#define CMD_CLO   (1u << 3)
#define CMD_FRE   (1u << 4)
#define CMD_FR    (1u << 14)
#define CMD_CR    (1u << 15)
#define CMD_ATAPI (1u << 24)
/* Bits the guest may write and read back: ST, CLO, FRE, PMA, ATAPI, DLAE, ALPE, ASP (no effect). */
#define CMD_WMASK (CMD_ST | CMD_CLO | CMD_FRE | 1u << 17 | CMD_ATAPI | 7u << 25)

/* PxIS bits. */
#define IS_DHRS  0x00000001u /* D2H register FIS */
#define IS_PSS   0x00000002u /* PIO setup FIS */
#define IS_SDBS  0x00000008u /* set device bits FIS */
#define IS_DPS   0x00000020u /* a PRD with I set was transferred */
#define IS_HBDS  0x10000000u /* host bus data error: a PRD outside guest RAM */
#define IS_HBFS  0x20000000u /* host bus fatal error: command list/table outside RAM */
#define IS_TFES  0x40000000u /* task file error */
#define IS_MASK  0xfdc000ffu
#define IS_FATAL (IS_HBDS | IS_HBFS | IS_TFES | 1u << 27 /* IFS */)

/* ATA status and error bits. */
#define ATA_ERR  0x01
#define ATA_DRQ  0x08
#define ATA_DSC  0x10
#define ATA_DRDY 0x40
#define ATA_BSY  0x80
#define ATA_ABRT 0x04
#define ATA_IDNF 0x10
#define ATA_UNC  0x40
#define ATA_OK   (ATA_DRDY | ATA_DSC)

enum ahci_kind { AHCI_NONE, AHCI_ATA, AHCI_ATAPI };

/* What one command table asks of the device, and what the device answers. */
struct ahci_cmd {
    struct ahci_port *port;
    unsigned slot;
    uint8_t fis[20];  /* the H2D register FIS */
    uint8_t acmd[16]; /* the ATAPI packet */
    uint64_t prdt;    /* guest address of the first PRD */
    uint32_t prdtl;   /* PRDs in the table */
    bool write;       /* the header's W bit: data goes to the device */
    uint32_t xferred; /* bytes moved, for the header's PRDBC */
    bool host_error;  /* a PRD outside guest RAM or malformed (PxIS.HBDS) */
    bool dps;         /* a PRD with its I bit was transferred */
    bool pio;         /* data goes through a PIO setup FIS, not DMA */
    bool ncq;         /* completes with a set device bits FIS */
    unsigned tag;
    uint8_t status, error; /* the result: status (ATA_OK or ERR), error */
    uint8_t count;         /* the count register of the answer (ATAPI: interrupt reason) */
    bool res_lba_set;      /* the answer carries res_lba (READ NATIVE MAX), else the LBA asked */
    bool res_lba48;
    uint64_t res_lba;
};

/* The ATA disk's state the guest can change (SET FEATURES...), saved. */
struct ata_state {
    uint8_t xfer_mode; /* SET FEATURES 03h: the mode last selected */
    bool wcache;       /* volatile write cache enabled */
    bool lookahead;
    uint8_t mult; /* SET MULTIPLE: sectors per DRQ block */
    /* NCQ command error log (log 10h): the failed queued command, until read */
    bool ncq_err;
    uint8_t ncq_tag, ncq_status, ncq_error;
    uint64_t ncq_lba;
};

/* The ATAPI drive's state, saved. */
struct atapi_state {
    uint8_t sense_key, asc, ascq; /* what REQUEST SENSE reports next */
    bool media_event;             /* "new media" not yet reported by GET EVENT STATUS */
    bool locked;                  /* PREVENT ALLOW MEDIUM REMOVAL */
    bool stopped;                 /* START STOP UNIT: start 0 */
};

struct ahci_port {
    struct ahci *hba;
    unsigned index;
    enum ahci_kind kind;
    struct blk_disk disk; /* ATA: the disk; ATAPI: the ISO image, read-only */
    char serial[20], model[40];

    /* Registers (under hba->lock). */
    uint64_t clb, fb;
    uint32_t is, ie, cmd, tfd, sig, sctl, serr, sact, ci, sntf;
    uint8_t ccs;    /* PxCMD.CCS: the slot served last */
    bool fatal;     /* a fatal error stopped the port until ST goes 0 */
    bool srst;      /* a control FIS with SRST set: the device is held in reset */
    bool srst_link; /* PxSCTL.DET 1: COMRESET held, the link is down */
    struct ata_state ata;
    struct atapi_state atapi;
};

struct ahci {
    struct device dev;
    struct pci_device pci;
    struct msix msix;
    struct vm *vm;
    char name[16];
    unsigned nr_used; /* ports with a device */
    pthread_mutex_t lock;
    uint32_t ghc, is;
    bool bus_master; /* PCI command bit 2: no DMA without it */
    bool quiesced;   /* commands issued meanwhile wait in PxCI */
    bool logged_bad;
    struct ahci_port port[AHCI_PORTS];
};

/* ahci.c: the command's data through its PRDT (lock held). */
/* Copy len bytes into the guest's buffers (a data-in command); the bytes copied, or -1. */
int64_t ahci_sg_to_guest(struct ahci_cmd *c, const void *buf, uint64_t len);
/* Copy up to len bytes out of the guest's buffers (a data-out command); the bytes, or -1. */
int64_t ahci_sg_from_guest(struct ahci_cmd *c, void *buf, uint64_t len);
/*
 * Move len bytes between the disk at off and the guest's buffers, in pieces.
 * 0, -1 (host_error set: a PRD outside RAM, or a PRDT shorter than len) or
 * -2 (the image failed).
 */
int ahci_sg_disk(struct ahci_cmd *c, uint64_t off, uint64_t len, bool to_disk);
/* The guest wrote something it should not: logged once per controller. */
void ahci_log_bad(struct ahci *h, const char *what);

/* ahci_ata.c */
void ata_identify_ids(struct ahci_port *p); /* serial, model (at creation) */
void ata_power_on(struct ahci_port *p);
void ata_command(struct ahci_cmd *c);
/* atapi.c */
void atapi_power_on(struct ahci_port *p);
/* A command to the ATAPI device: PACKET, or one of the few ATA commands it takes. */
void atapi_command(struct ahci_cmd *c);
/* IDENTIFY PACKET DEVICE's 512 bytes (atapi.c), IDENTIFY DEVICE's (ahci_ata.c). */
void atapi_identify(struct ahci_port *p, uint8_t *id);
void ata_identify(struct ahci_port *p, uint8_t *id);
/* An ATA string: pad with spaces, bytes swapped in each word. */
void ata_string(uint8_t *dst, const char *src, unsigned len);

#endif
