/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-usbd's shared state: devices (libusb), USB/IP connections, policy. */
#ifndef HV_USB_USBD_H
#define HV_USB_USBD_H

#include "policy.h"
#include "usbip.h"

#include <libusb.h>
#include <stdbool.h>
#include <stdint.h>

struct conn;

struct usbd_dev {
    struct usbd_dev *next;
    libusb_device *dev; /* referenced */
    struct usbip_dev_info info;
    struct usbip_intf_info intf[USBIP_MAX_INTERFACES];
    struct usb_dev_props props;
    char vendor_name[128], product_name[128];
    bool exported;               /* offered to TCP clients (like usbip bind) */
    char owner[POLICY_NAME_MAX]; /* VM the device is in, "" when on the host */
    struct conn *conn;           /* the USB/IP connection serving it */
    bool gone;                   /* unplugged; freed once the connection is gone */
};

struct xfer {
    struct xfer *next;
    struct conn *c;
    struct libusb_transfer *t;
    uint32_t seqnum, direction;
    uint32_t unlink_seqnum; /* non-zero: a CMD_UNLINK is waiting for this one */
    bool control;
    bool short_not_ok;
    struct usbip_iso_desc *iso; /* isochronous: the request's packets (offset, length) */
    uint32_t niso;
};

enum conn_phase { CONN_OP, CONN_URB };

struct conn {
    struct conn *next;
    int fd;
    enum conn_phase phase;
    bool dead;
    struct usbd_dev *dev;
    libusb_device_handle *h;
    uint32_t devid;
    uint32_t max_seqnum;
    bool iso_seen; /* logged the first isochronous URB */
    struct xfer *xfers;
    size_t nxfers;
    uint32_t claimed;  /* bitmap of claimed interface numbers */
    uint32_t detached; /* interfaces whose kernel driver we detached */
    /* receive state: header, then payload */
    uint8_t hdr[USBIP_HDR_SIZE];
    size_t hdr_want, hdr_have;
    struct usbip_hdr cur;
    uint8_t *payload;
    size_t payload_len, payload_have;
};

extern libusb_context *usbd_ctx;
extern struct usbd_dev *usbd_devs;
extern struct conn *usbd_conns;
extern struct usb_rule *usbd_rules;
extern size_t usbd_nrules;

/* device.c */
int dev_init(void);
void dev_process_hotplug(void);
struct usbd_dev *dev_find(const char *busid);
void dev_free_gone(void);

/* conn.c */
struct conn *conn_new(int fd, enum conn_phase phase, struct usbd_dev *d);
int conn_start_urb(struct conn *c, struct usbd_dev *d);
void conn_on_readable(struct conn *c);
void conn_kill(struct conn *c, const char *why);
void conn_reap(void);

/* control.c */
int control_listen(const char *path);
void control_accept(int lfd);
void control_on_readable(int fd);
int control_fds(int *fds, int max);
int control_load_rules(const char *path);
int usbd_attach_vsock(struct usbd_dev *d, const char *vm, unsigned cid, unsigned port,
                      const char **why);
void usbd_detach(struct usbd_dev *d);

#endif
