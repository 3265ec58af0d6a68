/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-usbd: serves the host's USB devices to VMs over USB/IP (docs/usb.md).
 * One thread, one poll loop: libusb's fds, the control socket, the TCP
 * listener and every USB/IP connection.
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

    while (!stop) {
        struct pollfd pfd[MAX_POLL];
        struct conn *pconn[MAX_POLL] = {0};
        int kind[MAX_POLL]; /* 0 libusb, 1 control listen, 2 control client, 3 tcp, 4 conn */
        int n = 0;

        dev_process_hotplug();
        conn_reap();
        dev_free_gone();

        const struct libusb_pollfd **lp = libusb_get_pollfds(usbd_ctx);
        for (int i = 0; lp && lp[i] && n < MAX_POLL; i++, n++) {
            pfd[n] = (struct pollfd){.fd = lp[i]->fd, .events = lp[i]->events};
            kind[n] = 0;
        }
        libusb_free_pollfds(lp);
        if (cfd >= 0 && n < MAX_POLL) {
            pfd[n] = (struct pollfd){.fd = cfd, .events = POLLIN};
            kind[n++] = 1;
        }
        int cl[16];
        int ncl = control_fds(cl, 16);
        for (int i = 0; i < ncl && n < MAX_POLL; i++) {
            pfd[n] = (struct pollfd){.fd = cl[i], .events = POLLIN};
            kind[n++] = 2;
        }
        if (tfd >= 0 && n < MAX_POLL) {
            pfd[n] = (struct pollfd){.fd = tfd, .events = POLLIN};
            kind[n++] = 3;
        }
        for (struct conn *c = usbd_conns; c && n < MAX_POLL; c = c->next) {
            if (c->dead)
                continue;
            pfd[n] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            pconn[n] = c;
            kind[n++] = 4;
        }

        struct timeval tv;
        int timeout = 1000;
        if (libusb_get_next_timeout(usbd_ctx, &tv) == 1)
            timeout = (int)MIN(timeout, tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1);
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            hv_die("poll: %s", strerror(errno));

        struct timeval zero = {0};
        libusb_handle_events_timeout_completed(usbd_ctx, &zero, NULL);
        for (int i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (kind[i] == 1) {
                control_accept(cfd);
            } else if (kind[i] == 2) {
                control_on_readable(pfd[i].fd);
            } else if (kind[i] == 3) {
                int fd = accept4(tfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0 && !conn_new(fd, CONN_OP, NULL))
                    close(fd);
            } else if (kind[i] == 4 && !pconn[i]->dead) {
                conn_on_readable(pconn[i]);
            }
        }
    }
    log_info("stopping");
    shutdown_all();
    if (control)
        unlink(control);
    return 0;
}
