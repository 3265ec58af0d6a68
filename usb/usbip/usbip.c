/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "usbip.h"

#include <string.h>

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Copy a C string into a zero-padded fixed field, always leaving a NUL. */
static void put_str(uint8_t *out, const char *s, size_t size)
{
    size_t n = strnlen(s, size - 1);

    memset(out, 0, size);
    memcpy(out, s, n);
}

const char *usbip_strerror(int err)
{
    switch (err) {
    case USBIP_OK:
        return "no error";
    case USBIP_E_SHORT:
        return "message truncated";
    case USBIP_E_VERSION:
        return "unsupported USB/IP version";
    case USBIP_E_CODE:
        return "unknown or unexpected command";
    case USBIP_E_BUSID:
        return "malformed busid";
    case USBIP_E_DIR:
        return "direction is neither IN nor OUT";
    case USBIP_E_EP:
        return "endpoint number out of range";
    case USBIP_E_LENGTH:
        return "transfer length out of range";
    case USBIP_E_NPACKETS:
        return "number_of_packets out of range";
    case USBIP_E_ISO:
        return "isochronous descriptors inconsistent with the transfer";
    case USBIP_E_COUNT:
        return "device or interface count out of range";
    case USBIP_E_STATUS:
        return "unexpected non-zero status";
    case USBIP_E_SETUP:
        return "control setup inconsistent with the transfer";
    }
    return "unknown USB/IP error";
}

int usbip_op_hdr_decode(const uint8_t *buf, size_t len, struct usbip_op_hdr *h)
{
    if (len < USBIP_OP_HDR_SIZE)
        return USBIP_E_SHORT;
    h->version = get16(buf);
    h->code = get16(buf + 2);
    h->status = get32(buf + 4);
    if (h->version != USBIP_VERSION)
        return USBIP_E_VERSION;
    return USBIP_OK;
}

void usbip_op_hdr_encode(uint8_t out[USBIP_OP_HDR_SIZE], uint16_t code, uint32_t status)
{
    put16(out, USBIP_VERSION);
    put16(out + 2, code);
    put32(out + 4, status);
}

bool usbip_busid_valid(const char *busid, size_t size)
{
    size_t n = strnlen(busid, size);

    if (n == 0 || n == size)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = busid[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '.' || c == '-' || c == ':' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

int usbip_req_import_decode(const uint8_t *buf, size_t len, char busid[USBIP_BUSID_SIZE])
{
    struct usbip_op_hdr h;
    int r = usbip_op_hdr_decode(buf, len, &h);

    if (r)
        return r;
    if (h.code != USBIP_OP_REQ_IMPORT)
        return USBIP_E_CODE;
    if (h.status != 0)
        return USBIP_E_STATUS;
    if (len < USBIP_REQ_IMPORT_SIZE)
        return USBIP_E_SHORT;
    memcpy(busid, buf + USBIP_OP_HDR_SIZE, USBIP_BUSID_SIZE);
    if (!usbip_busid_valid(busid, USBIP_BUSID_SIZE)) {
        busid[0] = '\0';
        return USBIP_E_BUSID;
    }
    return USBIP_OK;
}

void usbip_req_import_encode(uint8_t out[USBIP_REQ_IMPORT_SIZE], const char *busid)
{
    usbip_op_hdr_encode(out, USBIP_OP_REQ_IMPORT, 0);
    put_str(out + USBIP_OP_HDR_SIZE, busid, USBIP_BUSID_SIZE);
}

void usbip_dev_encode(uint8_t out[USBIP_DEV_SIZE], const struct usbip_dev_info *d)
{
    memset(out, 0, USBIP_DEV_SIZE);
    put_str(out, d->path, USBIP_PATH_SIZE);
    put_str(out + 0x100, d->busid, USBIP_BUSID_SIZE);
    put32(out + 0x120, d->busnum);
    put32(out + 0x124, d->devnum);
    put32(out + 0x128, d->speed);
    put16(out + 0x12c, d->id_vendor);
    put16(out + 0x12e, d->id_product);
    put16(out + 0x130, d->bcd_device);
    out[0x132] = d->dev_class;
    out[0x133] = d->dev_subclass;
    out[0x134] = d->dev_protocol;
    out[0x135] = d->configuration_value;
    out[0x136] = d->num_configurations;
    out[0x137] = d->num_interfaces;
}

int usbip_dev_decode(const uint8_t *buf, size_t len, struct usbip_dev_info *d)
{
    if (len < USBIP_DEV_SIZE)
        return USBIP_E_SHORT;
    memcpy(d->path, buf, USBIP_PATH_SIZE);
    d->path[USBIP_PATH_SIZE - 1] = '\0';
    memcpy(d->busid, buf + 0x100, USBIP_BUSID_SIZE);
    if (!usbip_busid_valid(d->busid, USBIP_BUSID_SIZE)) {
        d->busid[0] = '\0';
        return USBIP_E_BUSID;
    }
    d->busnum = get32(buf + 0x120);
    d->devnum = get32(buf + 0x124);
    d->speed = get32(buf + 0x128);
    d->id_vendor = get16(buf + 0x12c);
    d->id_product = get16(buf + 0x12e);
    d->bcd_device = get16(buf + 0x130);
    d->dev_class = buf[0x132];
    d->dev_subclass = buf[0x133];
    d->dev_protocol = buf[0x134];
    d->configuration_value = buf[0x135];
    d->num_configurations = buf[0x136];
    d->num_interfaces = buf[0x137];
    return USBIP_OK;
}

size_t usbip_rep_import_encode(uint8_t out[USBIP_REP_IMPORT_SIZE], uint32_t status,
                               const struct usbip_dev_info *d)
{
    usbip_op_hdr_encode(out, USBIP_OP_REP_IMPORT, status);
    if (status != USBIP_ST_OK || !d)
        return USBIP_OP_HDR_SIZE;
    usbip_dev_encode(out + USBIP_OP_HDR_SIZE, d);
    return USBIP_REP_IMPORT_SIZE;
}

int usbip_rep_import_decode(const uint8_t *buf, size_t len, struct usbip_dev_info *d)
{
    struct usbip_op_hdr h;
    int r = usbip_op_hdr_decode(buf, len, &h);

    if (r)
        return r;
    if (h.code != USBIP_OP_REP_IMPORT)
        return USBIP_E_CODE;
    if (h.status != 0)
        return h.status > 0x7fffffff ? USBIP_E_STATUS : (int)h.status;
    r = usbip_dev_decode(buf + USBIP_OP_HDR_SIZE, len - USBIP_OP_HDR_SIZE, d);
    return r;
}

size_t usbip_devlist_size(size_t ndev, const struct usbip_dev_info *devs)
{
    size_t n = USBIP_OP_HDR_SIZE + 4;

    for (size_t i = 0; i < ndev; i++)
        n += USBIP_DEV_SIZE + (size_t)devs[i].num_interfaces * USBIP_INTF_SIZE;
    return n;
}

size_t usbip_rep_devlist_encode(uint8_t *out, size_t cap, size_t ndev,
                                const struct usbip_dev_info *devs,
                                const struct usbip_intf_info *const *intfs)
{
    size_t need = usbip_devlist_size(ndev, devs);
    uint8_t *p = out;

    if (cap < need || ndev > UINT32_MAX)
        return 0;
    usbip_op_hdr_encode(p, USBIP_OP_REP_DEVLIST, USBIP_ST_OK);
    put32(p + 8, (uint32_t)ndev);
    p += 12;
    for (size_t i = 0; i < ndev; i++) {
        usbip_dev_encode(p, &devs[i]);
        p += USBIP_DEV_SIZE;
        for (size_t j = 0; j < devs[i].num_interfaces; j++) {
            p[0] = intfs[i][j].cls;
            p[1] = intfs[i][j].subclass;
            p[2] = intfs[i][j].protocol;
            p[3] = 0;
            p += USBIP_INTF_SIZE;
        }
    }
    return need;
}

int usbip_rep_devlist_decode(const uint8_t *buf, size_t len, usbip_devlist_cb cb, void *opaque)
{
    struct usbip_op_hdr h;
    struct usbip_dev_info d;
    struct usbip_intf_info intf[USBIP_MAX_INTERFACES];
    int r = usbip_op_hdr_decode(buf, len, &h);

    if (r)
        return r;
    if (h.code != USBIP_OP_REP_DEVLIST)
        return USBIP_E_CODE;
    if (h.status != 0)
        return USBIP_E_STATUS;
    if (len < 12)
        return USBIP_E_SHORT;
    uint32_t ndev = get32(buf + 8);
    if (ndev > USBIP_MAX_DEVLIST)
        return USBIP_E_COUNT;
    size_t off = 12;
    for (uint32_t i = 0; i < ndev; i++) {
        r = usbip_dev_decode(buf + off, len - off, &d);
        if (r)
            return r;
        off += USBIP_DEV_SIZE;
        if (d.num_interfaces > USBIP_MAX_INTERFACES)
            return USBIP_E_COUNT;
        if (len - off < (size_t)d.num_interfaces * USBIP_INTF_SIZE)
            return USBIP_E_SHORT;
        for (size_t j = 0; j < d.num_interfaces; j++) {
            intf[j].cls = buf[off];
            intf[j].subclass = buf[off + 1];
            intf[j].protocol = buf[off + 2];
            off += USBIP_INTF_SIZE;
        }
        if (cb && cb(opaque, &d, intf, d.num_interfaces))
            break;
    }
    return (int)ndev;
}

void usbip_hdr_encode(uint8_t out[USBIP_HDR_SIZE], const struct usbip_hdr *h)
{
    memset(out, 0, USBIP_HDR_SIZE);
    put32(out, h->command);
    put32(out + 4, h->seqnum);
    put32(out + 8, h->devid);
    put32(out + 12, h->direction);
    put32(out + 16, h->ep);
    switch (h->command) {
    case USBIP_CMD_SUBMIT:
        put32(out + 20, h->u.submit.transfer_flags);
        put32(out + 24, h->u.submit.transfer_buffer_length);
        put32(out + 28, (uint32_t)h->u.submit.start_frame);
        put32(out + 32, (uint32_t)h->u.submit.number_of_packets);
        put32(out + 36, (uint32_t)h->u.submit.interval);
        memcpy(out + 40, h->u.submit.setup, 8);
        break;
    case USBIP_RET_SUBMIT:
        put32(out + 20, (uint32_t)h->u.ret_submit.status);
        put32(out + 24, h->u.ret_submit.actual_length);
        put32(out + 28, (uint32_t)h->u.ret_submit.start_frame);
        put32(out + 32, (uint32_t)h->u.ret_submit.number_of_packets);
        put32(out + 36, (uint32_t)h->u.ret_submit.error_count);
        break;
    case USBIP_CMD_UNLINK:
        put32(out + 20, h->u.unlink.unlink_seqnum);
        break;
    case USBIP_RET_UNLINK:
        put32(out + 20, (uint32_t)h->u.ret_unlink.status);
        break;
    }
}

static void decode_basic(const uint8_t *buf, struct usbip_hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->command = get32(buf);
    h->seqnum = get32(buf + 4);
    h->devid = get32(buf + 8);
    h->direction = get32(buf + 12);
    h->ep = get32(buf + 16);
}

/* Non-ISO URBs carry 0 or -1 here (both are seen on the wire); ISO 1..cap. */
static bool npackets_ok(int32_t n)
{
    return n == -1 || (n >= 0 && (uint32_t)n <= USBIP_MAX_ISO_PACKETS);
}

int usbip_cmd_decode(const uint8_t *buf, size_t len, struct usbip_hdr *h)
{
    if (len < USBIP_HDR_SIZE)
        return USBIP_E_SHORT;
    decode_basic(buf, h);
    if (h->command == USBIP_CMD_UNLINK) {
        h->u.unlink.unlink_seqnum = get32(buf + 20);
        return USBIP_OK;
    }
    if (h->command != USBIP_CMD_SUBMIT)
        return USBIP_E_CODE;
    if (h->direction > USBIP_DIR_IN)
        return USBIP_E_DIR;
    if (h->ep > 15)
        return USBIP_E_EP;
    h->u.submit.transfer_flags = get32(buf + 20);
    h->u.submit.transfer_buffer_length = get32(buf + 24);
    h->u.submit.start_frame = (int32_t)get32(buf + 28);
    h->u.submit.number_of_packets = (int32_t)get32(buf + 32);
    h->u.submit.interval = (int32_t)get32(buf + 36);
    memcpy(h->u.submit.setup, buf + 40, 8);
    if (h->u.submit.transfer_buffer_length > USBIP_MAX_TRANSFER)
        return USBIP_E_LENGTH;
    if (!npackets_ok(h->u.submit.number_of_packets))
        return USBIP_E_NPACKETS;
    return USBIP_OK;
}

int usbip_ret_decode(const uint8_t *buf, size_t len, struct usbip_hdr *h)
{
    if (len < USBIP_HDR_SIZE)
        return USBIP_E_SHORT;
    decode_basic(buf, h);
    if (h->command == USBIP_RET_UNLINK) {
        h->u.ret_unlink.status = (int32_t)get32(buf + 20);
        return USBIP_OK;
    }
    if (h->command != USBIP_RET_SUBMIT)
        return USBIP_E_CODE;
    h->u.ret_submit.status = (int32_t)get32(buf + 20);
    h->u.ret_submit.actual_length = get32(buf + 24);
    h->u.ret_submit.start_frame = (int32_t)get32(buf + 28);
    h->u.ret_submit.number_of_packets = (int32_t)get32(buf + 32);
    h->u.ret_submit.error_count = (int32_t)get32(buf + 36);
    if (h->u.ret_submit.actual_length > USBIP_MAX_TRANSFER)
        return USBIP_E_LENGTH;
    if (!npackets_ok(h->u.ret_submit.number_of_packets))
        return USBIP_E_NPACKETS;
    return USBIP_OK;
}

int usbip_submit_payload(const struct usbip_hdr *h, bool iso, size_t *data_len, size_t *iso_len)
{
    if (h->command != USBIP_CMD_SUBMIT)
        return USBIP_E_CODE;
    uint32_t tbl = h->u.submit.transfer_buffer_length;
    int32_t np = h->u.submit.number_of_packets;

    if (tbl > USBIP_MAX_TRANSFER)
        return USBIP_E_LENGTH;
    *data_len = h->direction == USBIP_DIR_OUT ? tbl : 0;
    *iso_len = 0;
    if (iso) {
        if (np < 1 || (uint32_t)np > USBIP_MAX_ISO_PACKETS)
            return USBIP_E_NPACKETS;
        *iso_len = (size_t)np * USBIP_ISO_DESC_SIZE;
    }
    return USBIP_OK;
}

int usbip_ret_payload(const struct usbip_hdr *ret, const struct usbip_hdr *cmd, bool iso,
                      size_t *data_len, size_t *iso_len)
{
    if (ret->command != USBIP_RET_SUBMIT || cmd->command != USBIP_CMD_SUBMIT)
        return USBIP_E_CODE;
    uint32_t actual = ret->u.ret_submit.actual_length;

    if (actual > cmd->u.submit.transfer_buffer_length)
        return USBIP_E_LENGTH;
    *data_len = cmd->direction == USBIP_DIR_IN ? actual : 0;
    *iso_len = 0;
    if (iso) {
        int32_t np = cmd->u.submit.number_of_packets;
        if (np < 1 || (uint32_t)np > USBIP_MAX_ISO_PACKETS ||
            ret->u.ret_submit.number_of_packets != np)
            return USBIP_E_NPACKETS;
        *iso_len = (size_t)np * USBIP_ISO_DESC_SIZE;
    }
    return USBIP_OK;
}

void usbip_iso_encode(uint8_t *out, const struct usbip_iso_desc *d, size_t n)
{
    for (size_t i = 0; i < n; i++, out += USBIP_ISO_DESC_SIZE) {
        put32(out, d[i].offset);
        put32(out + 4, d[i].length);
        put32(out + 8, d[i].actual_length);
        put32(out + 12, (uint32_t)d[i].status);
    }
}

static int iso_decode(const uint8_t *buf, size_t len, size_t n, uint32_t buffer_length,
                      struct usbip_iso_desc *d)
{
    uint64_t sum = 0;

    if (n > USBIP_MAX_ISO_PACKETS)
        return USBIP_E_NPACKETS;
    if (len < n * USBIP_ISO_DESC_SIZE)
        return USBIP_E_SHORT;
    for (size_t i = 0; i < n; i++, buf += USBIP_ISO_DESC_SIZE) {
        d[i].offset = get32(buf);
        d[i].length = get32(buf + 4);
        d[i].actual_length = get32(buf + 8);
        d[i].status = (int32_t)get32(buf + 12);
        if ((uint64_t)d[i].offset + d[i].length > buffer_length)
            return USBIP_E_ISO;
        sum += d[i].length;
    }
    if (sum > buffer_length)
        return USBIP_E_ISO;
    return USBIP_OK;
}

int usbip_iso_decode_cmd(const uint8_t *buf, size_t len, size_t n, uint32_t buffer_length,
                         struct usbip_iso_desc *d)
{
    return iso_decode(buf, len, n, buffer_length, d);
}

int usbip_iso_decode_ret(const uint8_t *buf, size_t len, size_t n, uint32_t buffer_length,
                         uint32_t total_actual, struct usbip_iso_desc *d)
{
    int r = iso_decode(buf, len, n, buffer_length, d);
    uint64_t sum = 0;

    if (r)
        return r;
    for (size_t i = 0; i < n; i++) {
        if (d[i].actual_length > d[i].length)
            return USBIP_E_ISO;
        sum += d[i].actual_length;
    }
    return sum == total_actual ? USBIP_OK : USBIP_E_ISO;
}

void usb_setup_decode(const uint8_t raw[8], struct usb_setup *s)
{
    s->request_type = raw[0];
    s->request = raw[1];
    s->value = (uint16_t)(raw[2] | raw[3] << 8);
    s->index = (uint16_t)(raw[4] | raw[5] << 8);
    s->length = (uint16_t)(raw[6] | raw[7] << 8);
}

int usbip_check_control(const struct usbip_hdr *h, struct usb_setup *s)
{
    usb_setup_decode(h->u.submit.setup, s);
    bool in = s->request_type & 0x80;

    /* A zero-length request may be sent with either URB direction. */
    if (s->length && in != (h->direction == USBIP_DIR_IN))
        return USBIP_E_SETUP;
    if (s->length > h->u.submit.transfer_buffer_length)
        return USBIP_E_SETUP;
    return USBIP_OK;
}
