/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-usbd's shared state: devices (libusb), USB/IP connections, policy. */
#ifndef HV_USB_USBD_H
#define HV_USB_USBD_H

#include "io.h"
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
    struct attach *pending;      /* a vsock attach waiting for the guest agent */
};

/*
 * Deadlines and caps for every peer (docs/usb.md, "Slow peers"). A request
 * (the OP request on TCP, a control line, the guest agent's reply) must
 * arrive whole within USBD_REQUEST_MS; a queued reply must leave within
 * the drain time or the peer is dropped.
 */
#define USBD_REQUEST_MS       10000
#define USBD_CONTROL_DRAIN_MS 10000
#define USBD_URB_DRAIN_MS     30000

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
    size_t cost; /* what it counts in its connection's inflight */
};

enum conn_phase { CONN_OP, CONN_URB };

struct conn {
    struct conn *next;
    int fd;
    char name[96]; /* the peer, for the log */
    enum conn_phase phase;
    bool dead;
    bool closing;          /* closed once the queue is out (a reply that ends the connection) */
    const char *close_why; /* ... with this reason */
    struct outq out;
    int64_t in_deadline; /* the OP request must be in by then; 0 in the URB phase */
    size_t inflight;     /* transfer buffers submitted and their replies, in bytes */
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
struct conn *conn_new(int fd, enum conn_phase phase, struct usbd_dev *d, const char *name);
void conn_accept_tcp(int lfd);
int conn_start_urb(struct conn *c, struct usbd_dev *d);
short conn_events(const struct conn *c);
void conn_on_event(struct conn *c, short revents);
void conn_kill(struct conn *c, const char *why);
void conn_reap(void);
int64_t conn_next_deadline(void);
void conn_check_deadlines(int64_t now);

/* control.c */
struct pollfd;
int control_listen(const char *path);
void control_accept(int lfd);
/* The control clients' and pending attaches' fds: fills pfd and ids, returns the count. */
int control_poll(struct pollfd *pfd, int *ids, int max);
void control_on_event(int id, short revents);
int64_t control_next_deadline(void);
void control_check_deadlines(int64_t now);
int control_load_rules(const char *path);
void usbd_detach(struct usbd_dev *d);
/* The device is going away: an attach waiting for the guest agent gives up. */
void control_cancel_attach(struct usbd_dev *d, const char *why);

#endif
