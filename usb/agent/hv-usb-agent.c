/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-usb-agent: runs in a Linux guest. Listens on a vsock port; hv-usbd
 * connects and sends one line "attach DEVID SPEED BUSID\n". The agent picks
 * a free vhci-hcd port on the hub matching the speed, answers
 * "ok PORT\n" (or "err REASON\n"), and hands the very same socket to the
 * kernel through vhci's `attach` file: from then on the guest kernel
 * speaks USB/IP with hv-usbd directly. When hv-usbd closes the socket the
 * kernel disconnects the port by itself; "detach PORT\n" on a new
 * connection detaches explicitly.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define VHCI_DIR_DEFAULT "/sys/devices/platform/vhci_hcd.0"
#define PORT_DEFAULT     5310
#define VDEV_ST_NULL     4 /* free port (uapi/linux/usbip.h) */

static const char *vhci_dir = VHCI_DIR_DEFAULT;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hv-usb-agent: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A free port on the hs hub (speed < SUPER) or the ss hub, or -1. */
static int find_port(unsigned speed)
{
    char path[256], line[256], hub[8];
    const char *want = speed >= 5 ? "ss" : "hs";
    int port = -1;

    snprintf(path, sizeof(path), "%s/status", vhci_dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned p, sta;
        if (sscanf(line, "%7s %u %u", hub, &p, &sta) != 3)
            continue; /* the header line */
        if (strcmp(hub, want) == 0 && sta == VDEV_ST_NULL) {
            port = (int)p;
            break;
        }
    }
    fclose(f);
    return port;
}

static int write_sysfs(const char *attr, const char *text)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", vhci_dir, attr);
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    int r = fputs(text, f) < 0 ? -EIO : 0;
    if (fclose(f) && !r)
        r = -errno;
    return r;
}

/* Read one short line without consuming anything past its newline. */
static int read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;

    while (n < size - 1) {
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    return -1;
}

static void reply(int fd, const char *text)
{
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n)
        logmsg("reply lost: %s", strerror(errno));
}

static void handle(int fd)
{
    char line[128], busid[33], text[96];
    unsigned devid, speed, port;
    struct timeval tv = {.tv_sec = 5};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (read_line(fd, line, sizeof(line))) {
        logmsg("no request line");
        return;
    }
    if (sscanf(line, "detach %u", &port) == 1) {
        snprintf(text, sizeof(text), "%u", port);
        int r = write_sysfs("detach", text);
        if (r)
            snprintf(line, sizeof(line), "err %s\n", strerror(-r));
        else
            snprintf(line, sizeof(line), "ok %u\n", port);
        reply(fd, line);
        return;
    }
    if (sscanf(line, "attach %u %u %32s", &devid, &speed, busid) != 3 || speed < 1 || speed > 6) {
        reply(fd, "err bad request\n");
        return;
    }
    int p = find_port(speed);
    if (p < 0) {
        reply(fd, "err no free vhci port (is vhci-hcd loaded?)\n");
        return;
    }
    tv.tv_sec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    /* Before attach: once the kernel owns the socket we must not write to it. */
    snprintf(line, sizeof(line), "ok %d\n", p);
    reply(fd, line);
    snprintf(text, sizeof(text), "%d %d %u %u", p, fd, devid, speed);
    int r = write_sysfs("attach", text);
    if (r)
        logmsg("attach %s on port %d failed: %s", busid, p, strerror(-r));
    else
        logmsg("%s (devid %u, speed %u) attached on vhci port %d", busid, devid, speed, p);
}

int main(int argc, char **argv)
{
    unsigned long port = PORT_DEFAULT;
    int o;

    while ((o = getopt(argc, argv, "p:d:h")) != -1) {
        if (o == 'p')
            port = strtoul(optarg, NULL, 10);
        else if (o == 'd')
            vhci_dir = optarg;
        else {
            fprintf(stderr, "usage: hv-usb-agent [-p VSOCK_PORT] [-d VHCI_SYSFS_DIR]\n");
            return o == 'h' ? 0 : 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_vm a = {
        .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = (unsigned)port};
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 8)) {
        logmsg("cannot listen on vsock port %lu: %s", port, strerror(errno));
        return 1;
    }
    logmsg("listening on vsock port %lu", port);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR)
                logmsg("accept: %s", strerror(errno));
            continue;
        }
        /* The same buffer raise as hv-usbd's end (specs §1.6). */
        unsigned long long sz = 8ull << 20;
        setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &sz, sizeof(sz));
        setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &sz, sizeof(sz));
        handle(fd);
        close(fd); /* the kernel keeps its own reference after attach */
    }
}
