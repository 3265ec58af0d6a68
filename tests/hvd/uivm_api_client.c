/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hvd's API as a hostile UIVM sees it, for tests/hvd/test_hvd_uivm_api.py:
 * runs inside a test guest that hvd knows as the UIVM and talks to hvd over
 * vsock. Built static on the build host, put into the guest's initramfs.
 *
 *   uivm_api_client CID PORT FILE
 *       sends each line of FILE as a request, and prints each answer as
 *       "uivm-api: reply JSON" (or "uivm-api: closed" if hvd hung up)
 *   uivm_api_client CID PORT hold N SECONDS
 *       opens N connections, says hello on each, prints
 *       "uivm-api: hold answered A closed C", then "uivm-api: holding",
 *       keeps them SECONDS and prints "uivm-api: released"
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REPLY (2 * 1024 * 1024)
#define HELLO     "{\"id\":0,\"method\":\"hello\",\"params\":{\"versions\":[1]}}\n"

static int connect_vsock(unsigned cid, unsigned port)
{
    for (int attempt = 0; attempt < 30; attempt++) {
        int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
        struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
        if (fd < 0) {
            perror("uivm-api: socket");
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        fprintf(stderr, "uivm-api: connect: %s\n", strerror(errno));
        close(fd);
        sleep(1);
    }
    return -1;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One line from fd into buf (NUL-terminated, no '\n'); -1 when hvd closed or 10 s passed. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            return -1;
        ssize_t r = recv(fd, buf + len, 1, 0);
        if (r <= 0)
            return -1;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return 0;
        }
        len++;
    }
    return -1;
}

static int requests(unsigned cid, unsigned port, const char *file)
{
    FILE *f = fopen(file, "r");
    char *line = NULL, *reply = malloc(MAX_REPLY);
    size_t cap = 0;
    int fd = connect_vsock(cid, port);
    if (!f || !reply || fd < 0) {
        fprintf(stderr, "uivm-api: cannot start (%s)\n", f ? "no connection" : file);
        return 1;
    }
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '\n')
            continue;
        if (send_all(fd, line, strlen(line)) < 0 || read_line(fd, reply, MAX_REPLY) < 0) {
            printf("uivm-api: closed\n");
            fflush(stdout);
            close(fd);
            fd = connect_vsock(cid, port);
            if (fd < 0)
                return 1;
            continue;
        }
        printf("uivm-api: reply %s\n", reply);
        fflush(stdout);
    }
    free(line);
    free(reply);
    fclose(f);
    close(fd);
    return 0;
}

static int hold(unsigned cid, unsigned port, int n, int seconds)
{
    int *fds = calloc((size_t)n, sizeof(int)), answered = 0, closed = 0;
    char reply[4096];
    if (!fds)
        return 1;
    for (int i = 0; i < n; i++) {
        fds[i] = connect_vsock(cid, port);
        if (fds[i] >= 0 && send_all(fds[i], HELLO, strlen(HELLO)) == 0 &&
            read_line(fds[i], reply, sizeof(reply)) == 0 && strstr(reply, "\"result\"")) {
            answered++;
        } else {
            closed++;
        }
    }
    printf("uivm-api: hold answered %d closed %d\nuivm-api: holding\n", answered, closed);
    fflush(stdout);
    sleep((unsigned)seconds);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    printf("uivm-api: released\n");
    fflush(stdout);
    free(fds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4)
        return requests((unsigned)atoi(argv[1]), (unsigned)atoi(argv[2]), argv[3]);
    if (argc == 6 && strcmp(argv[3], "hold") == 0)
        return hold((unsigned)atoi(argv[1]), (unsigned)atoi(argv[2]), atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: uivm_api_client CID PORT FILE | CID PORT hold N SECONDS\n");
    return 2;
}
