/* SPDX-License-Identifier: GPL-2.0-or-later */
/* USB/IP codec on crafted byte strings: round trips and hostile inputs. */
#include "check.h"
#include "usbip.h"

#include <string.h>

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_op(void)
{
    uint8_t b[USBIP_REQ_IMPORT_SIZE];
    char busid[USBIP_BUSID_SIZE];
    struct usbip_op_hdr h;

    /* Exact bytes of a devlist request as usbip(8) sends it. */
    const uint8_t devlist[8] = {0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0};
    CHECK(usbip_op_hdr_decode(devlist, 8, &h) == USBIP_OK);
    CHECK(h.code == USBIP_OP_REQ_DEVLIST && h.status == 0);
    CHECK(usbip_op_hdr_decode(devlist, 7, &h) == USBIP_E_SHORT);
    const uint8_t badver[8] = {0x01, 0x10, 0x80, 0x05, 0, 0, 0, 0};
    CHECK(usbip_op_hdr_decode(badver, 8, &h) == USBIP_E_VERSION);

    usbip_req_import_encode(b, "3-2.1");
    CHECK(b[0] == 0x01 && b[1] == 0x11 && b[2] == 0x80 && b[3] == 0x03);
    CHECK(usbip_req_import_decode(b, sizeof(b), busid) == USBIP_OK);
    CHECK(strcmp(busid, "3-2.1") == 0);
    CHECK(usbip_req_import_decode(b, sizeof(b) - 1, busid) == USBIP_E_SHORT);
    /* busid filling all 32 bytes: no terminator. */
    memset(b + 8, 'a', 32);
    CHECK(usbip_req_import_decode(b, sizeof(b), busid) == USBIP_E_BUSID);
    usbip_req_import_encode(b, "1-1/../x");
    CHECK(usbip_req_import_decode(b, sizeof(b), busid) == USBIP_E_BUSID);
    usbip_req_import_encode(b, "");
    CHECK(usbip_req_import_decode(b, sizeof(b), busid) == USBIP_E_BUSID);
    usbip_req_import_encode(b, "1-1");
    b[7] = 1; /* non-zero status in a request */
    CHECK(usbip_req_import_decode(b, sizeof(b), busid) == USBIP_E_STATUS);
    b[7] = 0;
    b[3] = 0x05;
    CHECK(usbip_req_import_decode(b, sizeof(b), busid) == USBIP_E_CODE);
}

static int count_cb(void *opaque, const struct usbip_dev_info *d,
                    const struct usbip_intf_info *intf, size_t n)
{
    int *seen = opaque;
    (*seen)++;
    if (strcmp(d->busid, "1-1") == 0 && n == 2 && intf[1].cls == 8 && intf[1].protocol == 0x50)
        (*seen) += 100;
    return 0;
}

static void test_dev(void)
{
    struct usbip_dev_info d = {.busnum = 1,
                               .devnum = 5,
                               .speed = 5,
                               .id_vendor = 0x46f4,
                               .id_product = 0x0001,
                               .num_interfaces = 2,
                               .configuration_value = 1,
                               .num_configurations = 1};
    struct usbip_intf_info intf[2] = {{3, 1, 1}, {8, 6, 0x50}};
    const struct usbip_intf_info *intfs[1] = {intf};
    uint8_t buf[1024], rep[USBIP_REP_IMPORT_SIZE];
    struct usbip_dev_info out;
    int seen = 0;

    strcpy(d.busid, "1-1");
    strcpy(d.path, "/sys/bus/usb/devices/1-1");
    size_t n = usbip_rep_devlist_encode(buf, sizeof(buf), 1, &d, intfs);
    CHECK(n == 12 + USBIP_DEV_SIZE + 8);
    CHECK(buf[0x0c + 0x128 + 3] == 5); /* speed at message offset 0x134 */
    CHECK(usbip_rep_devlist_decode(buf, n, count_cb, &seen) == 1);
    CHECK(seen == 101);
    CHECK(usbip_rep_devlist_decode(buf, n - 1, NULL, NULL) == USBIP_E_SHORT);
    CHECK(usbip_rep_devlist_encode(buf, n - 1, 1, &d, intfs) == 0);
    be32(buf + 8, 0xffffffff);
    CHECK(usbip_rep_devlist_decode(buf, n, NULL, NULL) == USBIP_E_COUNT);
    be32(buf + 8, 2); /* claims two devices, holds one */
    CHECK(usbip_rep_devlist_decode(buf, n, NULL, NULL) == USBIP_E_SHORT);

    CHECK(usbip_rep_import_encode(rep, 0, &d) == USBIP_REP_IMPORT_SIZE);
    CHECK(usbip_rep_import_decode(rep, sizeof(rep), &out) == 0);
    CHECK(out.devnum == 5 && out.id_vendor == 0x46f4 && strcmp(out.busid, "1-1") == 0);
    CHECK(usbip_rep_import_encode(rep, USBIP_ST_NODEV, NULL) == USBIP_OP_HDR_SIZE);
    CHECK(usbip_rep_import_decode(rep, 8, &out) == USBIP_ST_NODEV);
}

static void submit_bytes(uint8_t *b, uint32_t dir, uint32_t ep, uint32_t len, uint32_t np)
{
    memset(b, 0, USBIP_HDR_SIZE);
    be32(b, USBIP_CMD_SUBMIT);
    be32(b + 4, 7);
    be32(b + 8, 0x10005);
    be32(b + 12, dir);
    be32(b + 16, ep);
    be32(b + 24, len);
    be32(b + 32, np);
}

static void test_urb(void)
{
    uint8_t b[USBIP_HDR_SIZE];
    struct usbip_hdr h, r;
    size_t dl, il;

    submit_bytes(b, USBIP_DIR_OUT, 2, 512, 0);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_OK);
    CHECK(h.seqnum == 7 && h.devid == 0x10005 && h.u.submit.transfer_buffer_length == 512);
    CHECK(usbip_submit_payload(&h, false, &dl, &il) == USBIP_OK && dl == 512 && il == 0);
    CHECK(usbip_submit_payload(&h, true, &dl, &il) == USBIP_E_NPACKETS);
    CHECK(usbip_cmd_decode(b, 47, &h) == USBIP_E_SHORT);

    submit_bytes(b, 2, 1, 0, 0);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_DIR);
    submit_bytes(b, 1, 16, 0, 0);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_EP);
    submit_bytes(b, 1, 1, 0xffffffff, 0);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_LENGTH);
    submit_bytes(b, 1, 1, USBIP_MAX_TRANSFER + 1, 0);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_LENGTH);
    submit_bytes(b, 1, 1, 64, 0xffffffff); /* -1: non-ISO marker */
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_OK);
    submit_bytes(b, 1, 1, 64, 0x80000000);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_NPACKETS);
    submit_bytes(b, 1, 1, 64, USBIP_MAX_ISO_PACKETS + 1);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_NPACKETS);
    be32(b, 9);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_CODE);
    be32(b, USBIP_RET_SUBMIT); /* a server never accepts a RET */
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_E_CODE);

    /* ISO IN with 3 packets: only descriptors follow. */
    submit_bytes(b, 1, 3, 3 * 192, 3);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_OK);
    CHECK(usbip_submit_payload(&h, true, &dl, &il) == USBIP_OK && dl == 0 && il == 48);

    /* Round trip a RET_SUBMIT and check it against the request. */
    memset(&r, 0, sizeof(r));
    r.command = USBIP_RET_SUBMIT;
    r.seqnum = 7;
    r.u.ret_submit.status = -32;
    r.u.ret_submit.actual_length = 300;
    r.u.ret_submit.number_of_packets = 3;
    usbip_hdr_encode(b, &r);
    CHECK(usbip_ret_decode(b, sizeof(b), &r) == USBIP_OK);
    CHECK(r.u.ret_submit.status == -32 && r.u.ret_submit.actual_length == 300);
    CHECK(usbip_ret_payload(&r, &h, true, &dl, &il) == USBIP_OK && dl == 300 && il == 48);
    r.u.ret_submit.actual_length = 3 * 192 + 1;
    CHECK(usbip_ret_payload(&r, &h, true, &dl, &il) == USBIP_E_LENGTH);
    r.u.ret_submit.actual_length = 10;
    r.u.ret_submit.number_of_packets = 2;
    CHECK(usbip_ret_payload(&r, &h, true, &dl, &il) == USBIP_E_NPACKETS);

    /* UNLINK round trip. */
    memset(&r, 0, sizeof(r));
    r.command = USBIP_CMD_UNLINK;
    r.seqnum = 9;
    r.u.unlink.unlink_seqnum = 7;
    usbip_hdr_encode(b, &r);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_OK);
    CHECK(h.command == USBIP_CMD_UNLINK && h.u.unlink.unlink_seqnum == 7);
}

static void test_iso(void)
{
    struct usbip_iso_desc d[3] = {{0, 100, 100, 0}, {100, 100, 50, 0}, {200, 100, 0, -18}};
    struct usbip_iso_desc o[3];
    uint8_t b[48];

    usbip_iso_encode(b, d, 3);
    CHECK(usbip_iso_decode_ret(b, sizeof(b), 3, 300, 150, o) == USBIP_OK);
    CHECK(o[2].status == -18 && o[1].actual_length == 50);
    CHECK(usbip_iso_decode_ret(b, sizeof(b), 3, 300, 151, o) == USBIP_E_ISO);
    CHECK(usbip_iso_decode_ret(b, sizeof(b), 3, 299, 150, o) == USBIP_E_ISO);
    CHECK(usbip_iso_decode_cmd(b, 47, 3, 300, o) == USBIP_E_SHORT);
    CHECK(usbip_iso_decode_cmd(b, sizeof(b), 3, 300, o) == USBIP_OK);
    /* offset + length wrapping around 32 bits */
    d[0].offset = 0xffffff00;
    usbip_iso_encode(b, d, 3);
    CHECK(usbip_iso_decode_cmd(b, sizeof(b), 3, 300, o) == USBIP_E_ISO);
    /* overlapping packets whose lengths sum past the buffer */
    struct usbip_iso_desc ov[3] = {{0, 300, 0, 0}, {0, 300, 0, 0}, {0, 300, 0, 0}};
    usbip_iso_encode(b, ov, 3);
    CHECK(usbip_iso_decode_cmd(b, sizeof(b), 3, 300, o) == USBIP_E_ISO);
    /* actual larger than expected */
    struct usbip_iso_desc big[1] = {{0, 10, 11, 0}};
    usbip_iso_encode(b, big, 1);
    CHECK(usbip_iso_decode_ret(b, 16, 1, 300, 11, o) == USBIP_E_ISO);
}

static void test_control(void)
{
    uint8_t b[USBIP_HDR_SIZE];
    struct usbip_hdr h;
    struct usb_setup s;
    /* GET_DESCRIPTOR(device), 18 bytes */
    const uint8_t setup[8] = {0x80, 6, 0, 1, 0, 0, 18, 0};

    submit_bytes(b, USBIP_DIR_IN, 0, 18, 0);
    memcpy(b + 40, setup, 8);
    CHECK(usbip_cmd_decode(b, sizeof(b), &h) == USBIP_OK);
    CHECK(usbip_check_control(&h, &s) == USBIP_OK);
    CHECK(s.request == 6 && s.value == 0x100 && s.length == 18);
    h.direction = USBIP_DIR_OUT;
    CHECK(usbip_check_control(&h, &s) == USBIP_E_SETUP);
    h.direction = USBIP_DIR_IN;
    h.u.submit.transfer_buffer_length = 17;
    CHECK(usbip_check_control(&h, &s) == USBIP_E_SETUP);
    for (int e = 0; e >= -13; e--)
        CHECK(usbip_strerror(e)[0] != '\0');
}

int main(void)
{
    test_op();
    test_dev();
    test_urb();
    test_iso();
    test_control();
    CHECK_DONE();
}
