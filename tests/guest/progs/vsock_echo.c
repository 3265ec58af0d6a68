// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vsock echo for hv's end-to-end tests (tests/vmm/test_virtio.py), built
 * static on the host and appended to the test guest's initramfs.
 *
 *   vsock_echo serve PORT            accept one connection, echo it to EOF
 *   vsock_echo send CID PORT BYTES   send BYTES pseudo-random bytes, read the
 *                                    echo back and compare; prints
 *                                    "vsock_echo: ok BYTES" or fails (exit 1)
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint8_t byte_at(uint64_t i)
{
    uint64_t x = (i / 8 + 1) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> (8 * (i % 8)));
}

static int die(const char *what)
{
    fprintf(stderr, "vsock_echo: %s: %s\n", what, strerror(errno));
    return 1;
}

static int serve(unsigned port)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)
        return die("listen");
    printf("vsock_echo: listening on %u\n", port);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0)
        return die("accept");
    static char buf[65536];
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read(c, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return die("read");
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(c, buf + off, (size_t)(r - off));
            if (w < 0)
                return die("write");
            off += w;
        }
        total += (uint64_t)r;
    }
    printf("vsock_echo: echoed %llu\n", (unsigned long long)total);
    close(c);
    return 0;
}

static int send_check(unsigned cid, unsigned port, uint64_t n)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
        return die("connect");
    uint64_t sent = 0, got = 0;
    static uint8_t buf[65536];
    while (got < n) {
        struct pollfd p = {.fd = s, .events = POLLIN | (sent < n ? POLLOUT : 0)};
        if (poll(&p, 1, 20000) <= 0) {
            fprintf(stderr, "vsock_echo: stalled at %llu sent, %llu received\n",
                    (unsigned long long)sent, (unsigned long long)got);
            return 1;
        }
        if ((p.revents & POLLOUT) && sent < n) {
            size_t len = n - sent < 16384 ? (size_t)(n - sent) : 16384;
            for (size_t i = 0; i < len; i++)
                buf[i] = byte_at(sent + i);
            ssize_t w = send(s, buf, len, MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN)
                return die("send");
            if (w > 0)
                sent += (uint64_t)w;
            if (sent == n)
                shutdown(s, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t r = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
            if (r < 0 && errno != EAGAIN)
                return die("recv");
            if (r == 0)
                break;
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != byte_at(got + (uint64_t)i)) {
                    fprintf(stderr, "vsock_echo: byte %llu differs\n",
                            (unsigned long long)(got + (uint64_t)i));
                    return 1;
                }
            if (r > 0)
                got += (uint64_t)r;
        }
    }
    if (got != n) {
        fprintf(stderr, "vsock_echo: got %llu of %llu bytes back\n", (unsigned long long)got,
                (unsigned long long)n);
        return 1;
    }
    printf("vsock_echo: ok %llu\n", (unsigned long long)n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "serve"))
        return serve((unsigned)strtoul(argv[2], NULL, 0));
    if (argc == 5 && !strcmp(argv[1], "send"))
        return send_check((unsigned)strtoul(argv[2], NULL, 0), (unsigned)strtoul(argv[3], NULL, 0),
                          strtoull(argv[4], NULL, 0));
    fprintf(stderr, "usage: vsock_echo serve PORT | send CID PORT BYTES\n");
    return 2;
}
