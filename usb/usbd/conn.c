/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One USB/IP connection: the OP phase (DEVLIST / IMPORT, TCP only) and the
 * URB phase, where each CMD_SUBMIT becomes an async libusb transfer and
 * each completion a RET_SUBMIT. Everything the peer sends is checked by the
 * usbip library first; a protocol error closes the connection, never the
 * daemon. The socket is non-blocking both ways: reads are incremental,
 * replies the socket does not take wait in a capped queue (io.h), so a slow
 * or hostile peer costs only its own connection, never the loop's time.
 */
#include "log.h"
#include "usbd.h"
#include "util.h"
#include "xlate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn *usbd_conns;

/* Bounds what one client can make us hold (transfers and their buffers). */
#define MAX_XFERS_PER_CONN 512
/* Transfer buffers in flight and their replies; a submit past it gets -ENOMEM. */
#define MAX_INFLIGHT (64 * MiB)
/* Above this much queued output the peer's next commands wait (backpressure). */
#define OUT_SOFT (1 * MiB)
/*
 * The queue's cap: the replies to what is in flight plus the small ones
 * read below OUT_SOFT. Not reached while those two limits hold; a guard.
 */
#define OUT_CAP (MAX_INFLIGHT + 8 * MiB)
/* TCP connections still in the OP phase (a listing or an import). */
#define MAX_OP_CONNS 32

enum { EPT_UNKNOWN = 0xff };

static void send_ret_submit(struct conn *c, uint32_t seqnum, int status, const uint8_t *data,
                            uint32_t len, bool in);
static void LIBUSB_CALL xfer_done(struct libusb_transfer *t);

static void kill_conn(struct conn *c, const char *why, bool quiet)
{
    if (c->dead)
        return;
    c->dead = true;
    if (quiet)
        ; /* the caller logged it, rate-limited */
    else if (c->dev)
        log_info("connection for %s (%s) closed: %s", c->dev->info.busid, c->name, why);
    else
        log_info("connection from %s closed: %s", c->name, why);
    /* Shut down now so the peer (vhci) sees the disconnect at once. */
    shutdown(c->fd, SHUT_RDWR);
    for (struct xfer *x = c->xfers; x; x = x->next)
        libusb_cancel_transfer(x->t);
}

void conn_kill(struct conn *c, const char *why)
{
    kill_conn(c, why, false);
}

/* Ends the connection once what is queued has gone out (a final reply). */
static void conn_finish(struct conn *c, const char *why)
{
    if (c->dead)
        return;
    if (!c->out.bytes) {
        conn_kill(c, why);
        return;
    }
    c->closing = true;
    c->close_why = why;
}

struct conn *conn_new(int fd, enum conn_phase phase, struct usbd_dev *d, const char *name)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (!c || io_set_nonblock(fd)) {
        free(c);
        return NULL;
    }
    c->fd = fd;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->phase = phase;
    c->dev = d;
    c->hdr_want = phase == CONN_OP ? USBIP_OP_HDR_SIZE : USBIP_HDR_SIZE;
    outq_init(&c->out, OUT_CAP, USBD_URB_DRAIN_MS);
    /* The whole OP request, not each byte, has USBD_REQUEST_MS from the connect. */
    if (phase == CONN_OP)
        c->in_deadline = io_now_ms() + USBD_REQUEST_MS;
    c->next = usbd_conns;
    usbd_conns = c;
    return c;
}

static size_t count_op_conns(void)
{
    size_t n = 0;

    for (struct conn *c = usbd_conns; c; c = c->next)
        n += !c->dead && c->phase == CONN_OP;
    return n;
}

void conn_accept_tcp(int lfd)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    char name[64], addr[INET_ADDRSTRLEN] = "?";
    int fd = accept4(lfd, (struct sockaddr *)&a, &alen, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    if (a.sin_family == AF_INET)
        inet_ntop(AF_INET, &a.sin_addr, addr, sizeof(addr));
    snprintf(name, sizeof(name), "TCP %s:%u", addr, ntohs(a.sin_port));
    /* Each one has its deadline; this only stops a crowd of them. */
    if (count_op_conns() >= MAX_OP_CONNS) {
        io_log_slow("refusing %s: %d connections are already waiting for their requests", name,
                    MAX_OP_CONNS);
        close(fd);
        return;
    }
    if (!conn_new(fd, CONN_OP, NULL, name))
        close(fd);
}

static void release_device(struct conn *c)
{
    if (!c->h)
        return;
    for (int i = 0; i < 32; i++) {
        if (c->claimed & (1u << i))
            libusb_release_interface(c->h, i);
        /* Give the interface back to the host's driver. */
        if (c->detached & (1u << i))
            libusb_attach_kernel_driver(c->h, i);
    }
    c->claimed = c->detached = 0;
    libusb_close(c->h);
    c->h = NULL;
}

void conn_reap(void)
{
    struct conn **pp = &usbd_conns;

    while (*pp) {
        struct conn *c = *pp;
        if (!c->dead || c->nxfers) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        release_device(c);
        if (c->dev) {
            c->dev->conn = NULL;
            c->dev->owner[0] = '\0';
        }
        close(c->fd);
        outq_free(&c->out);
        free(c->payload);
        free(c);
    }
}

/* Endpoint types of the active configuration's current alt settings. */
static uint8_t ep_type(struct conn *c, uint32_t ep, uint32_t dir)
{
    struct libusb_config_descriptor *cfg;
    uint8_t addr = (uint8_t)(ep | (dir == USBIP_DIR_IN ? 0x80 : 0));
    uint8_t type = EPT_UNKNOWN;

    if (libusb_get_active_config_descriptor(c->dev->dev, &cfg))
        return EPT_UNKNOWN;
    for (int i = 0; i < cfg->bNumInterfaces && type == EPT_UNKNOWN; i++) {
        for (int a = 0; a < cfg->interface[i].num_altsetting; a++) {
            const struct libusb_interface_descriptor *alt = &cfg->interface[i].altsetting[a];
            for (int e = 0; e < alt->bNumEndpoints; e++)
                if (alt->endpoint[e].bEndpointAddress == addr)
                    type = alt->endpoint[e].bmAttributes & 3;
        }
    }
    libusb_free_config_descriptor(cfg);
    return type;
}

static int claim_all(struct conn *c)
{
    struct libusb_config_descriptor *cfg;
    int r = libusb_get_active_config_descriptor(c->dev->dev, &cfg);

    if (r)
        return r == LIBUSB_ERROR_NOT_FOUND ? 0 : r; /* unconfigured: nothing to claim */
    for (int i = 0; i < cfg->bNumInterfaces && i < 32; i++) {
        int ifn =
            cfg->interface[i].num_altsetting ? cfg->interface[i].altsetting[0].bInterfaceNumber : i;
        if (ifn >= 32)
            continue;
        if (libusb_kernel_driver_active(c->h, ifn) == 1) {
            r = libusb_detach_kernel_driver(c->h, ifn);
            if (r == 0)
                c->detached |= 1u << ifn;
        }
        r = libusb_claim_interface(c->h, ifn);
        if (r) {
            log_warn("%s: claim interface %d: %s", c->dev->info.busid, ifn, libusb_strerror(r));
            break;
        }
        c->claimed |= 1u << ifn;
    }
    libusb_free_config_descriptor(cfg);
    return r;
}

int conn_start_urb(struct conn *c, struct usbd_dev *d)
{
    int r;

    c->dev = d;
    c->devid = d->info.busnum << 16 | d->info.devnum;
    r = libusb_open(d->dev, &c->h);
    if (r) {
        log_warn("%s: open: %s", d->info.busid, libusb_strerror(r));
        c->h = NULL;
        return -1;
    }
    r = claim_all(c);
    if (r) {
        release_device(c);
        return -1;
    }
    d->conn = c;
    c->phase = CONN_URB;
    c->hdr_want = USBIP_HDR_SIZE;
    c->hdr_have = 0;
    c->in_deadline = 0; /* in the URB phase, an idle guest is a quiet device */
    return 0;
}

/* Sends a message (two pieces, b may be NULL) or queues it; never blocks. */
static int send2(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    if (c->dead)
        return -1;
    int r = outq_put(&c->out, c->fd, a, alen, b, blen);
    if (r == IO_FULL) {
        io_log_slow("dropping %s: %zu bytes queued for it, cap %zu", c->name, c->out.bytes,
                    c->out.cap);
        kill_conn(c, "output queue full", true);
    } else if (r == IO_ERROR) {
        conn_kill(c, errno == EPIPE || errno == ECONNRESET ? "peer closed the connection"
                                                           : "send failed");
    }
    return r == IO_OK ? 0 : -1;
}

static int send_all(struct conn *c, const void *buf, size_t len)
{
    return send2(c, buf, len, NULL, 0);
}

static void send_ret_submit(struct conn *c, uint32_t seqnum, int status, const uint8_t *data,
                            uint32_t len, bool in)
{
    struct usbip_hdr r = {.command = USBIP_RET_SUBMIT, .seqnum = seqnum};
    uint8_t hdr[USBIP_HDR_SIZE];

    r.u.ret_submit.status = status;
    r.u.ret_submit.actual_length = len;
    r.u.ret_submit.start_frame = 0;
    r.u.ret_submit.number_of_packets = 0;
    usbip_hdr_encode(hdr, &r);
    send2(c, hdr, sizeof(hdr), in && len ? data : NULL, len);
}

static void send_ret_unlink(struct conn *c, uint32_t seqnum, int status)
{
    struct usbip_hdr r = {.command = USBIP_RET_UNLINK, .seqnum = seqnum};
    uint8_t hdr[USBIP_HDR_SIZE];

    r.u.ret_unlink.status = status;
    usbip_hdr_encode(hdr, &r);
    send_all(c, hdr, sizeof(hdr));
}

/*
 * An isochronous completion: RET_SUBMIT with number_of_packets and
 * error_count, for IN the packets' actual bytes back to back (vhci's
 * usbip_pad_iso moves them to their offsets), then one descriptor per
 * packet with the request's offset and length and what happened.
 */
static void send_ret_iso(struct conn *c, const struct xfer *x, const struct libusb_transfer *t)
{
    bool in = x->direction == USBIP_DIR_IN;
    struct usbip_hdr r = {.command = USBIP_RET_SUBMIT, .seqnum = x->seqnum};
    uint32_t total = 0, errors = 0, pos = 0, data_len = 0;

    for (uint32_t i = 0; i < x->niso && (int)i < t->num_iso_packets; i++) {
        const struct libusb_iso_packet_descriptor *p = &t->iso_packet_desc[i];
        x->iso[i].actual_length = MIN(p->actual_length, x->iso[i].length);
        x->iso[i].status = xlate_transfer_status(p->status, 0, 0);
        total += x->iso[i].actual_length;
        errors += x->iso[i].status != 0;
    }
    size_t size = USBIP_HDR_SIZE + (in ? total : 0) + (size_t)x->niso * USBIP_ISO_DESC_SIZE;
    uint8_t *buf = malloc(size);
    if (!buf) {
        conn_kill(c, "out of memory for an isochronous reply");
        return;
    }
    if (in) {
        for (uint32_t i = 0; i < x->niso; i++) {
            memcpy(buf + USBIP_HDR_SIZE + data_len, t->buffer + pos, x->iso[i].actual_length);
            data_len += x->iso[i].actual_length;
            pos += x->iso[i].length; /* libusb lays packets out back to back by length */
        }
    }
    r.u.ret_submit.status = xlate_transfer_status(t->status, 0, 0);
    r.u.ret_submit.actual_length = total;
    r.u.ret_submit.number_of_packets = (int32_t)x->niso;
    r.u.ret_submit.error_count = (int32_t)errors;
    usbip_hdr_encode(buf, &r);
    usbip_iso_encode(buf + USBIP_HDR_SIZE + data_len, x->iso, x->niso);
    send_all(c, buf, size);
    free(buf);
}

/*
 * What a connection has in flight is bounded: the transfer buffers and
 * the replies they become (which wait in the queue if the peer does not
 * read). A submit past the bound fails like a failed allocation would.
 */
static bool over_inflight(struct conn *c, size_t cost)
{
    if (c->inflight + cost <= MAX_INFLIGHT)
        return false;
    log_debug("%s: %zu bytes in flight, URB %u refused", c->name, c->inflight, c->cur.seqnum);
    send_ret_submit(c, c->cur.seqnum, -ENOMEM, NULL, 0, false);
    return true;
}

/*
 * CMD_SUBMIT on an isochronous endpoint: one libusb iso transfer with the
 * request's packet lengths (OUT packets gathered from their offsets).
 * The descriptors were checked by usbip_iso_decode_cmd: inside the buffer,
 * lengths summing to at most transfer_buffer_length.
 */
static void submit_iso(struct conn *c, const struct usbip_iso_desc *descs, uint32_t n)
{
    const struct usbip_hdr *h = &c->cur;
    bool in = h->direction == USBIP_DIR_IN;
    uint32_t total = 0;

    if (n == 0 || (int32_t)n != h->u.submit.number_of_packets) {
        conn_kill(c, usbip_strerror(USBIP_E_ISO));
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        total += descs[i].length;
    size_t cost = USBIP_HDR_SIZE + (size_t)total + (size_t)n * USBIP_ISO_DESC_SIZE;
    if (over_inflight(c, cost))
        return;
    if (!c->iso_seen) {
        c->iso_seen = true;
        log_info("%s: isochronous %s on endpoint %u, %u packets per URB", c->dev->info.busid,
                 in ? "IN" : "OUT", h->ep, n);
    }
    struct xfer *x = calloc(1, sizeof(*x));
    struct libusb_transfer *t = libusb_alloc_transfer((int)n);
    uint8_t *buf = malloc((size_t)total + 1);
    struct usbip_iso_desc *iso = malloc(n * sizeof(*iso));
    if (!x || !t || !buf || !iso) {
        free(x);
        free(buf);
        free(iso);
        libusb_free_transfer(t);
        send_ret_submit(c, h->seqnum, -ENOMEM, NULL, 0, false);
        return;
    }
    memcpy(iso, descs, n * sizeof(*iso));
    uint32_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!in && iso[i].length)
            memcpy(buf + pos, c->payload + iso[i].offset, iso[i].length);
        pos += iso[i].length;
    }
    x->c = c;
    x->t = t;
    x->seqnum = h->seqnum;
    x->direction = h->direction;
    x->iso = iso;
    x->niso = n;
    x->cost = cost;
    libusb_fill_iso_transfer(t, c->h, (unsigned char)(h->ep | (in ? 0x80 : 0)), buf, (int)total,
                             (int)n, xfer_done, x, 0);
    for (uint32_t i = 0; i < n; i++)
        t->iso_packet_desc[i].length = iso[i].length;
    int r = libusb_submit_transfer(t);
    if (r) {
        free(buf);
        libusb_free_transfer(t);
        free(iso);
        free(x);
        send_ret_submit(c, h->seqnum, xlate_error(r), NULL, 0, false);
        return;
    }
    x->next = c->xfers;
    c->xfers = x;
    c->nxfers++;
    c->inflight += x->cost;
}

static void LIBUSB_CALL xfer_done(struct libusb_transfer *t)
{
    struct xfer *x = t->user_data;
    struct conn *c = x->c;

    for (struct xfer **pp = &c->xfers; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    c->nxfers--;
    c->inflight -= x->cost;
    if (!c->dead) {
        if (x->iso && !x->unlink_seqnum) {
            send_ret_iso(c, x, t);
        } else if (x->unlink_seqnum) {
            /* Unlinked: RET_UNLINK only, no RET_SUBMIT (usbip_protocol.rst). */
            send_ret_unlink(c, x->unlink_seqnum, -ECONNRESET);
        } else {
            bool in = x->direction == USBIP_DIR_IN;
            uint32_t want =
                x->control ? t->length - LIBUSB_CONTROL_SETUP_SIZE : (uint32_t)t->length;
            uint32_t got = (uint32_t)t->actual_length;
            uint8_t *data = x->control ? t->buffer + LIBUSB_CONTROL_SETUP_SIZE : t->buffer;
            int st = xlate_transfer_status(t->status, x->short_not_ok, got < want);
            if (t->status == LIBUSB_TRANSFER_NO_DEVICE)
                log_info("%s: transfer failed, device gone", c->dev->info.busid);
            send_ret_submit(c, x->seqnum, st, data, MIN(got, want), in);
        }
    }
    free(t->buffer);
    libusb_free_transfer(t);
    free(x->iso);
    free(x);
}

/* Requests the host must perform itself (specs §1.5), answered at once. */
static bool intercept_control(struct conn *c, const struct usb_setup *s, int *status)
{
    int r;

    if (s->request_type == 0x00 && s->request == LIBUSB_REQUEST_SET_CONFIGURATION) {
        int cur = -1;
        libusb_get_configuration(c->h, &cur);
        if (cur == s->value) {
            r = 0; /* already so: don't disturb the claimed interfaces */
        } else {
            for (int i = 0; i < 32; i++)
                if (c->claimed & (1u << i))
                    libusb_release_interface(c->h, i);
            c->claimed = 0;
            r = libusb_set_configuration(c->h, s->value);
            if (r == 0)
                r = claim_all(c);
        }
        *status = xlate_error(r);
        return true;
    }
    if (s->request_type == 0x01 && s->request == LIBUSB_REQUEST_SET_INTERFACE) {
        *status = xlate_error(libusb_set_interface_alt_setting(c->h, s->index, s->value));
        return true;
    }
    if (s->request_type == 0x02 && s->request == LIBUSB_REQUEST_CLEAR_FEATURE && s->value == 0) {
        *status = xlate_error(libusb_clear_halt(c->h, (unsigned char)s->index));
        return true;
    }
    if (s->request_type == 0x23 && s->request == LIBUSB_REQUEST_SET_FEATURE && s->value == 4) {
        *status = xlate_error(libusb_reset_device(c->h));
        return true;
    }
    return false;
}

static struct xfer *find_xfer(struct conn *c, uint32_t seqnum)
{
    for (struct xfer *x = c->xfers; x; x = x->next)
        if (x->seqnum == seqnum)
            return x;
    return NULL;
}

static void handle_submit(struct conn *c, const struct usbip_iso_desc *descs, uint32_t ndescs)
{
    const struct usbip_hdr *h = &c->cur;
    bool in = h->direction == USBIP_DIR_IN;
    uint32_t len = h->u.submit.transfer_buffer_length;
    struct usb_setup s;
    struct libusb_transfer *t;
    struct xfer *x;
    uint8_t *buf;
    int st;

    if (find_xfer(c, h->seqnum)) {
        conn_kill(c, "CMD_SUBMIT reuses a pending seqnum");
        return;
    }
    if (c->nxfers >= MAX_XFERS_PER_CONN) {
        conn_kill(c, "too many outstanding URBs");
        return;
    }
    if (h->ep == 0) {
        if (usbip_check_control(h, &s)) {
            conn_kill(c, usbip_strerror(USBIP_E_SETUP));
            return;
        }
        if (intercept_control(c, &s, &st)) {
            send_ret_submit(c, h->seqnum, st, NULL, 0, false);
            return;
        }
        len = s.length; /* the setup's wLength is what moves */
    } else {
        uint8_t type = ep_type(c, h->ep, h->direction);
        if (type == EPT_UNKNOWN || type == LIBUSB_TRANSFER_TYPE_CONTROL) {
            send_ret_submit(c, h->seqnum, -EPIPE, NULL, 0, false);
            return;
        }
        if (type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS) {
            submit_iso(c, descs, ndescs);
            return;
        }
    }
    size_t cost = USBIP_HDR_SIZE + LIBUSB_CONTROL_SETUP_SIZE + (size_t)len;
    if (over_inflight(c, cost))
        return;
    x = calloc(1, sizeof(*x));
    t = libusb_alloc_transfer(0);
    buf = malloc((h->ep == 0 ? LIBUSB_CONTROL_SETUP_SIZE : 0) + (size_t)len + 1);
    if (!x || !t || !buf) {
        free(x);
        free(buf);
        libusb_free_transfer(t);
        send_ret_submit(c, h->seqnum, -ENOMEM, NULL, 0, false);
        return;
    }
    x->c = c;
    x->t = t;
    x->seqnum = h->seqnum;
    x->direction = h->direction;
    x->control = h->ep == 0;
    x->cost = cost;
    x->short_not_ok = in && (h->u.submit.transfer_flags & USBIP_URB_SHORT_NOT_OK);
    if (x->control) {
        memcpy(buf, h->u.submit.setup, 8);
        if (!in && len)
            memcpy(buf + 8, c->payload, len);
        libusb_fill_control_transfer(t, c->h, buf, xfer_done, x, 0);
    } else {
        uint8_t addr = (uint8_t)(h->ep | (in ? 0x80 : 0));
        if (!in && len)
            memcpy(buf, c->payload, len);
        if (ep_type(c, h->ep, h->direction) == LIBUSB_TRANSFER_TYPE_BULK)
            libusb_fill_bulk_transfer(t, c->h, addr, buf, (int)len, xfer_done, x, 0);
        else
            libusb_fill_interrupt_transfer(t, c->h, addr, buf, (int)len, xfer_done, x, 0);
        t->flags = xlate_flags(h->u.submit.transfer_flags, in);
    }
    int r = libusb_submit_transfer(t);
    if (r) {
        free(buf);
        libusb_free_transfer(t);
        free(x);
        send_ret_submit(c, h->seqnum, xlate_error(r), NULL, 0, false);
        return;
    }
    x->next = c->xfers;
    c->xfers = x;
    c->nxfers++;
    c->inflight += x->cost;
}

static void handle_unlink(struct conn *c)
{
    const struct usbip_hdr *h = &c->cur;
    uint32_t target = h->u.unlink.unlink_seqnum;
    struct xfer *x = find_xfer(c, target);

    if (x && !x->unlink_seqnum) {
        x->unlink_seqnum = h->seqnum ? h->seqnum : 1;
        libusb_cancel_transfer(x->t);
        return; /* RET_UNLINK goes out from the completion */
    }
    if (target > c->max_seqnum) {
        conn_kill(c, "CMD_UNLINK names a seqnum never submitted");
        return;
    }
    send_ret_unlink(c, h->seqnum, 0); /* already completed */
}

static void send_devlist(struct conn *c)
{
    struct usbip_dev_info infos[USBIP_MAX_DEVLIST];
    const struct usbip_intf_info *intfs[USBIP_MAX_DEVLIST];
    size_t n = 0;

    for (struct usbd_dev *d = usbd_devs; d && n < USBIP_MAX_DEVLIST; d = d->next) {
        if (d->gone || !d->exported)
            continue;
        infos[n] = d->info;
        intfs[n] = d->intf;
        n++;
    }
    size_t size = usbip_devlist_size(n, infos);
    uint8_t *buf = malloc(size);
    if (buf && usbip_rep_devlist_encode(buf, size, n, infos, intfs) == size)
        send_all(c, buf, size);
    free(buf);
}

static void handle_import(struct conn *c)
{
    uint8_t rep[USBIP_REP_IMPORT_SIZE];
    char busid[USBIP_BUSID_SIZE];
    int r = usbip_req_import_decode(c->hdr, c->hdr_have, busid);
    struct usbd_dev *d;
    uint32_t status = USBIP_ST_OK;

    if (r) {
        conn_kill(c, usbip_strerror(r));
        return;
    }
    d = dev_find(busid);
    if (!d || !d->exported)
        status = USBIP_ST_NODEV;
    else if (d->conn || d->pending)
        status = USBIP_ST_DEV_BUSY;
    else if (conn_start_urb(c, d))
        status = USBIP_ST_DEV_ERR;
    size_t n = usbip_rep_import_encode(rep, status, status ? NULL : &d->info);
    if (send_all(c, rep, n) == 0 && status == USBIP_ST_OK) {
        snprintf(d->owner, sizeof(d->owner), "tcp");
        log_info("%s imported over TCP by %s", busid, c->name);
        return;
    }
    if (status)
        conn_finish(c, "import refused");
}

static void op_header_done(struct conn *c)
{
    struct usbip_op_hdr oh;
    int r = usbip_op_hdr_decode(c->hdr, c->hdr_have, &oh);

    if (r) {
        conn_kill(c, usbip_strerror(r));
        return;
    }
    if (oh.code == USBIP_OP_REQ_DEVLIST && c->hdr_have == USBIP_OP_HDR_SIZE) {
        c->in_deadline = 0;
        send_devlist(c);
        conn_finish(c, "device list sent");
    } else if (oh.code == USBIP_OP_REQ_IMPORT && c->hdr_have == USBIP_OP_HDR_SIZE) {
        c->hdr_want = USBIP_REQ_IMPORT_SIZE; /* read the busid too */
    } else if (oh.code == USBIP_OP_REQ_IMPORT) {
        c->in_deadline = 0;
        handle_import(c);
    } else {
        conn_kill(c, usbip_strerror(USBIP_E_CODE));
    }
}

/* A URB header is complete: check it, and size the payload that follows. */
static void urb_header_done(struct conn *c)
{
    size_t dl = 0, il = 0;
    int r = usbip_cmd_decode(c->hdr, sizeof(c->hdr), &c->cur);

    c->hdr_have = 0;
    if (r) {
        conn_kill(c, usbip_strerror(r));
        return;
    }
    if (c->cur.devid != c->devid) {
        conn_kill(c, "devid does not match the attached device");
        return;
    }
    if (c->cur.command == USBIP_CMD_UNLINK) {
        handle_unlink(c);
        return;
    }
    if (c->cur.seqnum > c->max_seqnum)
        c->max_seqnum = c->cur.seqnum;
    bool iso =
        c->cur.ep && ep_type(c, c->cur.ep, c->cur.direction) == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS;
    r = usbip_submit_payload(&c->cur, iso, &dl, &il);
    if (r) {
        conn_kill(c, usbip_strerror(r));
        return;
    }
    c->payload_len = dl + il;
    c->payload_have = 0;
    if (c->payload_len == 0) {
        handle_submit(c, NULL, 0);
        return;
    }
    c->payload = malloc(c->payload_len);
    if (!c->payload)
        conn_kill(c, "out of memory for a URB");
}

static void urb_payload_done(struct conn *c)
{
    size_t dl = 0, il = 0;
    bool iso =
        c->cur.ep && ep_type(c, c->cur.ep, c->cur.direction) == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS;
    static struct usbip_iso_desc descs[USBIP_MAX_ISO_PACKETS];

    usbip_submit_payload(&c->cur, iso, &dl, &il);
    if (il) {
        int r = usbip_iso_decode_cmd(c->payload + dl, il, il / USBIP_ISO_DESC_SIZE,
                                     c->cur.u.submit.transfer_buffer_length, descs);
        if (r) {
            conn_kill(c, usbip_strerror(r));
            return;
        }
    }
    handle_submit(c, descs, (uint32_t)(il / USBIP_ISO_DESC_SIZE));
    free(c->payload);
    c->payload = NULL;
    c->payload_len = 0;
}

/* Read what is there; returns 1 when `want` bytes are in, 0 to wait, -1 closed. */
static int fill(struct conn *c, uint8_t *buf, size_t want, size_t *have)
{
    while (*have < want) {
        ssize_t n = recv(c->fd, buf + *have, want - *have, MSG_DONTWAIT);
        if (n > 0) {
            *have += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        conn_kill(c, n == 0 ? "peer closed the connection" : "receive error");
        return -1;
    }
    return 1;
}

/* Takes the peer's next commands only while its replies are leaving. */
static bool may_read(const struct conn *c)
{
    return !c->dead && !c->closing && c->out.bytes < OUT_SOFT;
}

static void conn_on_readable(struct conn *c)
{
    /* Bounded per wake-up so one busy client cannot starve the others. */
    for (int round = 0; round < 64 && may_read(c); round++) {
        int r;
        if (c->payload) {
            r = fill(c, c->payload, c->payload_len, &c->payload_have);
            if (r <= 0)
                return;
            urb_payload_done(c);
            continue;
        }
        r = fill(c, c->hdr, c->hdr_want, &c->hdr_have);
        if (r <= 0)
            return;
        if (c->phase == CONN_OP)
            op_header_done(c);
        else
            urb_header_done(c);
    }
}

short conn_events(const struct conn *c)
{
    short ev = 0;

    if (may_read(c))
        ev |= POLLIN;
    if (!c->dead && c->out.bytes)
        ev |= POLLOUT;
    return ev;
}

void conn_on_event(struct conn *c, short revents)
{
    if (c->dead)
        return;
    if (c->out.bytes && (revents & (POLLOUT | POLLERR | POLLHUP))) {
        if (outq_flush(&c->out, c->fd)) {
            conn_kill(c, "send failed");
            return;
        }
        if (c->closing && !c->out.bytes) {
            conn_kill(c, c->close_why);
            return;
        }
    }
    if (revents & (POLLIN | POLLERR | POLLHUP))
        conn_on_readable(c);
}

int64_t conn_next_deadline(void)
{
    int64_t t = 0;

    for (struct conn *c = usbd_conns; c; c = c->next)
        if (!c->dead)
            t = io_earliest(t, io_earliest(c->in_deadline, c->out.deadline));
    return t;
}

void conn_check_deadlines(int64_t now)
{
    for (struct conn *c = usbd_conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (c->in_deadline && now >= c->in_deadline) {
            io_log_slow("dropping %s: its request did not arrive within %d s (%zu of %zu bytes)",
                        c->name, USBD_REQUEST_MS / 1000, c->hdr_have, c->hdr_want);
            kill_conn(c, "request too slow", true);
        } else if (outq_expired(&c->out, now)) {
            io_log_slow("dropping %s: it did not read its replies within %d s (%zu bytes queued, "
                        "cap %zu)",
                        c->name, c->out.timeout_ms / 1000, c->out.bytes, c->out.cap);
            kill_conn(c, "not reading", true);
        }
    }
}
