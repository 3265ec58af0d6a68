/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * save_client SOCKET FILE [exit|resume]: asks a sandboxed hv-vmm to save its
 * VM the way hvd does (docs/vmm-control.md, "save"): FILE.part is created
 * here and passed with the request (SCM_RIGHTS), and renamed to FILE once
 * hv-vmm replied ok. Prints hv-vmm's reply line; exit 0 when it was ok.
 * Built static by tests/vmm/test_save.py and run in the virtual laptop.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: save_client SOCKET FILE [exit|resume]\n");
        return 2;
    }
    char part[4096], req[128];
    snprintf(part, sizeof(part), "%s.part", argv[2]);
    snprintf(req, sizeof(req), "{\"cmd\": \"save\", \"then\": \"%s\"}\n",
             argc > 3 ? argv[3] : "exit");
    int file = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    if (file < 0 || s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("save_client");
        return 1;
    }
    union {
        struct cmsghdr hdr;
        char bytes[CMSG_SPACE(sizeof(int))];
    } cbuf;
    memset(&cbuf, 0, sizeof(cbuf));
    struct iovec iov = {.iov_base = req, .iov_len = strlen(req)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cbuf.bytes,
                         .msg_controllen = sizeof(cbuf.bytes)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &file, sizeof(int));
    if (sendmsg(s, &msg, 0) < 0) {
        perror("sendmsg");
        return 1;
    }
    char reply[65536];
    size_t len = 0;
    while (len < sizeof(reply) - 1) {
        ssize_t n = read(s, reply + len, sizeof(reply) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(reply, '\n', len))
            break;
    }
    reply[len] = '\0';
    fputs(reply, stdout);
    if (!strstr(reply, "\"ok\": true") && !strstr(reply, "\"ok\":true")) {
        unlink(part);
        return 1;
    }
    if (fsync(file) < 0 || rename(part, argv[2]) < 0) {
        perror("save_client: rename");
        return 1;
    }
    return 0;
}
