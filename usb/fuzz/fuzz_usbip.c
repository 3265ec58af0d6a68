/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the USB/IP parser. The first byte picks what the
 * rest is parsed as: a server's view (an OP request then a stream of
 * CMD_SUBMIT/CMD_UNLINK with payloads, as hv-usbd frames them) or a
 * client's view (OP replies, RET_SUBMIT with ISO descriptors).
 */
#include "usbip.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int devlist_cb(void *opaque, const struct usbip_dev_info *d,
                      const struct usbip_intf_info *intf, size_t n)
{
    size_t *sum = opaque;
    *sum += strlen(d->busid) + strlen(d->path) + n;
    for (size_t i = 0; i < n; i++)
        *sum += intf[i].cls;
    return 0;
}

/* Server side: header, then OUT data and ISO descriptors, message after message. */
static void server_stream(const uint8_t *p, size_t n)
{
    static struct usbip_iso_desc iso[USBIP_MAX_ISO_PACKETS];
    struct usbip_hdr h;
    struct usb_setup s;
    size_t dl, il;

    while (n >= USBIP_HDR_SIZE) {
        if (usbip_cmd_decode(p, n, &h))
            return;
        p += USBIP_HDR_SIZE;
        n -= USBIP_HDR_SIZE;
        if (h.command == USBIP_CMD_UNLINK)
            continue;
        /* Let the endpoint number decide the type, as a device's descriptors would. */
        bool iso_ep = (h.ep & 3) == 1;
        if (h.ep == 0 && usbip_check_control(&h, &s))
            return;
        if (usbip_submit_payload(&h, iso_ep, &dl, &il))
            return;
        if (dl > n)
            return;
        p += dl;
        n -= dl;
        if (iso_ep) {
            if (usbip_iso_decode_cmd(p, n, il / USBIP_ISO_DESC_SIZE,
                                     h.u.submit.transfer_buffer_length, iso))
                return;
            p += il;
            n -= il;
        }
    }
}

static void client_ret(const uint8_t *p, size_t n)
{
    static struct usbip_iso_desc descs[USBIP_MAX_ISO_PACKETS];
    struct usbip_hdr cmd = {.command = USBIP_CMD_SUBMIT, .direction = USBIP_DIR_IN};
    struct usbip_hdr r;
    size_t dl, il;

    if (n < 8)
        return;
    /* The request this reply answers comes from the input too. */
    cmd.u.submit.transfer_buffer_length = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    cmd.u.submit.number_of_packets = p[3] | (p[4] & 3) << 8;
    bool iso = p[5] & 1;
    p += 8;
    n -= 8;
    if (usbip_ret_decode(p, n, &r) || r.command != USBIP_RET_SUBMIT)
        return;
    if (usbip_ret_payload(&r, &cmd, iso, &dl, &il))
        return;
    p += USBIP_HDR_SIZE;
    n -= USBIP_HDR_SIZE;
    if (dl > n)
        return;
    if (iso)
        usbip_iso_decode_ret(p + dl, n - dl, il / USBIP_ISO_DESC_SIZE,
                             cmd.u.submit.transfer_buffer_length, r.u.ret_submit.actual_length,
                             descs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char busid[USBIP_BUSID_SIZE];
    struct usbip_dev_info d;
    struct usbip_op_hdr oh;
    size_t sum = 0;

    if (size < 1)
        return 0;
    /* Copy so that reads past the end are caught exactly at the input's size. */
    uint8_t *buf = malloc(size - 1 ? size - 1 : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    size_t n = size - 1;

    switch (data[0] & 3) {
    case 0:
        if (usbip_op_hdr_decode(buf, n, &oh) == USBIP_OK && oh.code == USBIP_OP_REQ_IMPORT &&
            usbip_req_import_decode(buf, n, busid) == USBIP_OK) {
            if (n > USBIP_REQ_IMPORT_SIZE)
                server_stream(buf + USBIP_REQ_IMPORT_SIZE, n - USBIP_REQ_IMPORT_SIZE);
        }
        break;
    case 1:
        server_stream(buf, n);
        break;
    case 2:
        usbip_rep_devlist_decode(buf, n, devlist_cb, &sum);
        usbip_rep_import_decode(buf, n, &d);
        break;
    case 3:
        client_ret(buf, n);
        break;
    }
    free(buf);
    return (int)(sum & 0);
}
