/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * USB/IP wire format (Documentation/usb/usbip_protocol.rst): encode and
 * decode of the OP messages and the URB-phase messages. Pure functions on
 * byte buffers, no I/O. Every decoder treats its input as hostile: lengths,
 * counts and ranges are checked and a malformed message yields a negative
 * USBIP_E* code, never a crash or an out-of-bounds access.
 */
#ifndef HV_USB_USBIP_H
#define HV_USB_USBIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USBIP_VERSION 0x0111

/* OP codes (requests have bit 15 set). */
#define USBIP_OP_REQ_DEVLIST 0x8005
#define USBIP_OP_REP_DEVLIST 0x0005
#define USBIP_OP_REQ_IMPORT  0x8003
#define USBIP_OP_REP_IMPORT  0x0003

/* OP reply status values (tools/usb/usbip/libsrc/usbip_common.h). */
#define USBIP_ST_OK       0
#define USBIP_ST_NA       1
#define USBIP_ST_DEV_BUSY 2
#define USBIP_ST_DEV_ERR  3
#define USBIP_ST_NODEV    4
#define USBIP_ST_ERROR    5

/* URB-phase commands. */
#define USBIP_CMD_SUBMIT 1
#define USBIP_CMD_UNLINK 2
#define USBIP_RET_SUBMIT 3
#define USBIP_RET_UNLINK 4

#define USBIP_DIR_OUT 0
#define USBIP_DIR_IN  1

/* Linux URB transfer_flags as carried on the wire. */
#define USBIP_URB_SHORT_NOT_OK 0x0001
#define USBIP_URB_ISO_ASAP     0x0002
#define USBIP_URB_ZERO_PACKET  0x0040
#define USBIP_URB_DIR_IN       0x0200

#define USBIP_OP_HDR_SIZE     8
#define USBIP_BUSID_SIZE      32
#define USBIP_PATH_SIZE       256
#define USBIP_DEV_SIZE        0x138 /* device record */
#define USBIP_INTF_SIZE       4     /* interface record (DEVLIST only) */
#define USBIP_REQ_IMPORT_SIZE (USBIP_OP_HDR_SIZE + USBIP_BUSID_SIZE)
#define USBIP_REP_IMPORT_SIZE (USBIP_OP_HDR_SIZE + USBIP_DEV_SIZE)
#define USBIP_HDR_SIZE        48
#define USBIP_ISO_DESC_SIZE   16

/*
 * Caps on what a peer may ask for. The transfer cap bounds the memory one
 * URB can pin; vhci never sends more than a few hundred KiB per URB.
 * 1024 ISO packets is what the kernel's usbip stub accepts (USBIP_MAX_ISO_PACKETS
 * is not in the uapi header; the stub checks against its own limit).
 */
#define USBIP_MAX_TRANSFER    (16u << 20)
#define USBIP_MAX_ISO_PACKETS 1024u
#define USBIP_MAX_INTERFACES  32u
#define USBIP_MAX_DEVLIST     256u

/* Error codes (negative). usbip_strerror() says what each means. */
enum usbip_err {
    USBIP_OK = 0,
    USBIP_E_SHORT = -1,    /* buffer shorter than the message */
    USBIP_E_VERSION = -2,  /* OP version is not 0x0111 */
    USBIP_E_CODE = -3,     /* unknown or unexpected OP code / URB command */
    USBIP_E_BUSID = -4,    /* busid not NUL-terminated or has bad characters */
    USBIP_E_DIR = -5,      /* direction not 0 or 1 */
    USBIP_E_EP = -6,       /* endpoint number above 15 */
    USBIP_E_LENGTH = -7,   /* transfer length above the cap */
    USBIP_E_NPACKETS = -8, /* number_of_packets out of range */
    USBIP_E_ISO = -9,      /* ISO descriptor out of the buffer, or sums wrong */
    USBIP_E_COUNT = -10,   /* device / interface count above the cap */
    USBIP_E_STATUS = -11,  /* non-zero status where zero is required */
    USBIP_E_SETUP = -12,   /* control setup inconsistent with the URB */
};

const char *usbip_strerror(int err);

struct usbip_op_hdr {
    uint16_t version;
    uint16_t code;
    uint32_t status;
};

struct usbip_dev_info {
    char path[USBIP_PATH_SIZE];
    char busid[USBIP_BUSID_SIZE];
    uint32_t busnum, devnum, speed;
    uint16_t id_vendor, id_product, bcd_device;
    uint8_t dev_class, dev_subclass, dev_protocol;
    uint8_t configuration_value, num_configurations, num_interfaces;
};

struct usbip_intf_info {
    uint8_t cls, subclass, protocol;
};

struct usbip_hdr {
    uint32_t command, seqnum, devid, direction, ep;
    union {
        struct {
            uint32_t transfer_flags;
            uint32_t transfer_buffer_length;
            int32_t start_frame;
            int32_t number_of_packets;
            int32_t interval;
            uint8_t setup[8];
        } submit;
        struct {
            int32_t status;
            uint32_t actual_length;
            int32_t start_frame;
            int32_t number_of_packets;
            int32_t error_count;
        } ret_submit;
        struct {
            uint32_t unlink_seqnum;
        } unlink;
        struct {
            int32_t status;
        } ret_unlink;
    } u;
};

struct usbip_iso_desc {
    uint32_t offset, length, actual_length;
    int32_t status;
};

/* --- OP phase --- */

/* Decode the 8-byte common header; checks the version only. */
int usbip_op_hdr_decode(const uint8_t *buf, size_t len, struct usbip_op_hdr *h);
void usbip_op_hdr_encode(uint8_t out[USBIP_OP_HDR_SIZE], uint16_t code, uint32_t status);

/* A busid: NUL-terminated within 32 bytes, only [0-9a-zA-Z.-:_] and non-empty. */
bool usbip_busid_valid(const char *busid, size_t size);

/* OP_REQ_IMPORT (40 bytes): checks header code/status and the busid. */
int usbip_req_import_decode(const uint8_t *buf, size_t len, char busid[USBIP_BUSID_SIZE]);
void usbip_req_import_encode(uint8_t out[USBIP_REQ_IMPORT_SIZE], const char *busid);

void usbip_dev_encode(uint8_t out[USBIP_DEV_SIZE], const struct usbip_dev_info *d);
/* Decodes and NUL-terminates path/busid; rejects a bad busid. */
int usbip_dev_decode(const uint8_t *buf, size_t len, struct usbip_dev_info *d);

/* OP_REP_IMPORT: status 0 carries a device record, otherwise only the header. */
size_t usbip_rep_import_encode(uint8_t out[USBIP_REP_IMPORT_SIZE], uint32_t status,
                               const struct usbip_dev_info *d);
/* Returns the OP status (>= 0) with *d filled when 0, or a USBIP_E* code. */
int usbip_rep_import_decode(const uint8_t *buf, size_t len, struct usbip_dev_info *d);

/*
 * OP_REP_DEVLIST: header + u32 count + per device (record + interfaces).
 * Encoding: usbip_devlist_size() gives the exact size for the counts.
 */
size_t usbip_devlist_size(size_t ndev, const struct usbip_dev_info *devs);
size_t usbip_rep_devlist_encode(uint8_t *out, size_t cap, size_t ndev,
                                const struct usbip_dev_info *devs,
                                const struct usbip_intf_info *const *intfs);
/*
 * Decoding calls cb once per device with its interfaces; returns the device
 * count or a USBIP_E* code. cb returning non-zero stops the walk.
 */
typedef int (*usbip_devlist_cb)(void *opaque, const struct usbip_dev_info *d,
                                const struct usbip_intf_info *intfs, size_t nintf);
int usbip_rep_devlist_decode(const uint8_t *buf, size_t len, usbip_devlist_cb cb, void *opaque);

/* --- URB phase --- */

void usbip_hdr_encode(uint8_t out[USBIP_HDR_SIZE], const struct usbip_hdr *h);

/*
 * Decode a header a server receives (CMD_SUBMIT or CMD_UNLINK) and check it:
 * direction, endpoint, transfer length cap, number_of_packets range.
 */
int usbip_cmd_decode(const uint8_t *buf, size_t len, struct usbip_hdr *h);
/* Decode a header a client receives (RET_SUBMIT or RET_UNLINK). */
int usbip_ret_decode(const uint8_t *buf, size_t len, struct usbip_hdr *h);

/*
 * Bytes that follow a CMD_SUBMIT header: OUT data, then ISO descriptors
 * when the endpoint is isochronous (the server knows that from the
 * endpoint descriptor, not from the wire).
 */
int usbip_submit_payload(const struct usbip_hdr *h, bool iso, size_t *data_len, size_t *iso_len);

/* Bytes that follow a RET_SUBMIT header, given the request it answers. */
int usbip_ret_payload(const struct usbip_hdr *ret, const struct usbip_hdr *cmd, bool iso,
                      size_t *data_len, size_t *iso_len);

void usbip_iso_encode(uint8_t *out, const struct usbip_iso_desc *d, size_t n);
/*
 * Decode n descriptors of a CMD_SUBMIT: each [offset, offset+length) must
 * lie in the transfer buffer and the lengths must sum to at most its size.
 */
int usbip_iso_decode_cmd(const uint8_t *buf, size_t len, size_t n, uint32_t buffer_length,
                         struct usbip_iso_desc *d);
/*
 * Decode n descriptors of a RET_SUBMIT: as above, plus actual_length <=
 * length per packet and the actual lengths summing to total_actual.
 */
int usbip_iso_decode_ret(const uint8_t *buf, size_t len, size_t n, uint32_t buffer_length,
                         uint32_t total_actual, struct usbip_iso_desc *d);

/* Control setup packet fields (little-endian inside the 8 bytes). */
struct usb_setup {
    uint8_t request_type, request;
    uint16_t value, index, length;
};
void usb_setup_decode(const uint8_t raw[8], struct usb_setup *s);
/*
 * For ep 0: the setup's direction must match the URB's and wLength must
 * fit the transfer buffer.
 */
int usbip_check_control(const struct usbip_hdr *h, struct usb_setup *s);

#endif
