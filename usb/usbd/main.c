/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-usbd: serves the host's USB devices to VMs over USB/IP (docs/usb.md).
 * One thread, one poll loop: libusb's fds, the control socket, the TCP
 * listener and every USB/IP connection. Every peer socket is non-blocking
 * with its own bounded queue and deadlines (io.h), so no peer can hold the
 * loop: the loop's only waits are in poll.
 */
#include "log.h"
#include "usbd.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_POLL 256

enum { K_LIBUSB, K_CONTROL_LISTEN, K_CONTROL, K_TCP_LISTEN, K_CONN };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hv-usbd [--control PATH] [--rules FILE] [--tcp PORT] [--tcp-addr ADDR] [-v]\n"
            "  --control PATH   JSON control socket (list, attach, detach, rules)\n"
            "  --rules FILE     keep the rules in FILE (loaded at start, saved on change)\n"
            "  --tcp PORT       also serve USB/IP over TCP (usbipd-compatible), for tests\n"
            "  --tcp-addr ADDR  address for --tcp (default 127.0.0.1)\n");
}

static int tcp_listen(const char *addr, unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd;

    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void shutdown_all(void)
{
    for (struct conn *c = usbd_conns; c; c = c->next)
        conn_kill(c, "hv-usbd stopping");
    /* Let cancellations complete so devices go back to their drivers. */
    for (int i = 0; i < 50 && usbd_conns; i++) {
        struct timeval tv = {.tv_usec = 20000};
        libusb_handle_events_timeout_completed(usbd_ctx, &tv, NULL);
        conn_reap();
    }
}

/* Fills pfd with the fds that have something to wait for; loop_once() dispatches. */
static int gather(struct pollfd *pfd, int *kind, int *id, struct conn **pconn, int cfd, int tfd)
{
    int n = 0;
    const struct libusb_pollfd **lp = libusb_get_pollfds(usbd_ctx);

    for (int i = 0; lp && lp[i] && n < MAX_POLL; i++, n++) {
        pfd[n] = (struct pollfd){.fd = lp[i]->fd, .events = lp[i]->events};
        kind[n] = K_LIBUSB;
    }
    libusb_free_pollfds(lp);
    if (cfd >= 0 && n < MAX_POLL) {
        pfd[n] = (struct pollfd){.fd = cfd, .events = POLLIN};
        kind[n++] = K_CONTROL_LISTEN;
    }
    int m = control_poll(pfd + n, id + n, MAX_POLL - n);
    for (int i = 0; i < m; i++)
        kind[n++] = K_CONTROL;
    if (tfd >= 0 && n < MAX_POLL) {
        pfd[n] = (struct pollfd){.fd = tfd, .events = POLLIN};
        kind[n++] = K_TCP_LISTEN;
    }
    for (struct conn *c = usbd_conns; c && n < MAX_POLL; c = c->next) {
        short ev = conn_events(c);
        if (!ev)
            continue;
        pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
        pconn[n] = c;
        kind[n++] = K_CONN;
    }
    return n;
}

/* Milliseconds until the next libusb timeout or peer deadline, at most a second. */
static int poll_timeout(void)
{
    struct timeval tv;
    int64_t timeout = 1000;
    int64_t next = io_earliest(conn_next_deadline(), control_next_deadline());

    if (libusb_get_next_timeout(usbd_ctx, &tv) == 1)
        timeout = MIN(timeout, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1);
    if (next)
        timeout = MAX(0, MIN(timeout, next - io_now_ms()));
    return (int)timeout;
}

static void loop_once(int cfd, int tfd)
{
    struct pollfd pfd[MAX_POLL];
    struct conn *pconn[MAX_POLL] = {0};
    int kind[MAX_POLL], id[MAX_POLL];

    dev_process_hotplug();
    conn_reap();
    dev_free_gone();
    int n = gather(pfd, kind, id, pconn, cfd, tfd);
    if (poll(pfd, (nfds_t)n, poll_timeout()) < 0 && errno != EINTR)
        hv_die("poll: %s", strerror(errno));

    struct timeval zero = {0};
    libusb_handle_events_timeout_completed(usbd_ctx, &zero, NULL);
    for (int i = 0; i < n; i++) {
        if (!pfd[i].revents)
            continue;
        if (kind[i] == K_CONTROL_LISTEN)
            control_accept(cfd);
        else if (kind[i] == K_CONTROL)
            control_on_event(id[i], pfd[i].revents);
        else if (kind[i] == K_TCP_LISTEN)
            conn_accept_tcp(tfd);
        else if (kind[i] == K_CONN)
            conn_on_event(pconn[i], pfd[i].revents);
    }
    int64_t now = io_now_ms();
    conn_check_deadlines(now);
    control_check_deadlines(now);
    io_slow_tick();
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"control", required_argument, NULL, 'c'},
                                         {"tcp", required_argument, NULL, 't'},
                                         {"tcp-addr", required_argument, NULL, 'a'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"rules", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    const char *control = NULL, *tcp_addr = "127.0.0.1", *rules = NULL;
    uint64_t tcp_port = 0;
    int o;

    hv_log_init("hv-usbd");
    while ((o = getopt_long(argc, argv, "c:r:t:a:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            control = optarg;
            break;
        case 't':
            if (parse_uint(optarg, 1, 65535, &tcp_port))
                hv_die("--tcp wants a port number 1..65535, not '%s'", optarg);
            break;
        case 'a':
            tcp_addr = optarg;
            break;
        case 'r':
            rules = optarg;
            break;
        case 'v':
            hv_log_set_level(HV_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int cfd = -1, tfd = -1;
    if (control && (cfd = control_listen(control)) < 0)
        hv_die("cannot listen on control socket %s: %s", control, strerror(errno));
    if (tcp_port && (tfd = tcp_listen(tcp_addr, (unsigned)tcp_port)) < 0)
        hv_die("cannot listen on %s:%u: %s", tcp_addr, (unsigned)tcp_port, strerror(errno));
    if (rules)
        control_load_rules(rules); /* before the devices: plugged-in ones get the rules */
    if (dev_init())
        return 1;
    if (access("/run/udev/control", F_OK) != 0)
        log_warn("udevd does not seem to run: libusb will not see devices plugged in later");
    log_info("ready%s%s", control ? ", control " : "", control ? control : "");

    while (!stop)
        loop_once(cfd, tfd);
    log_info("stopping");
    shutdown_all();
    if (control)
        unlink(control);
    return 0;
}
