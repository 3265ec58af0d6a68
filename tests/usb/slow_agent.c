/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest USB agent that is slow on purpose, for test_usb.py's
 * test_vsock_slow_agent: it takes one connection on vsock PORT, reads the
 * attach request and answers "ok 1\n" one byte every SECONDS, then says on
 * stdout how far it got and exits. A host that drops it before the end
 * shows as "peer closed".
 *
 * usage: slow-agent PORT SECONDS
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static const char answer[] = "ok 1\n";
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY};
    char req[256];
    size_t i;

    if (argc != 3)
        return 2;
    a.svm_port = (unsigned)atoi(argv[1]);
    unsigned delay = (unsigned)atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
        printf("cannot listen: %s\n", strerror(errno));
        return 1;
    }
    int c = accept(l, NULL, NULL);
    if (c < 0 || read(c, req, sizeof(req)) <= 0) {
        printf("no request\n");
        return 1;
    }
    for (i = 0; i < sizeof(answer) - 1; i++) {
        if (write(c, answer + i, 1) != 1)
            break;
        sleep(delay);
    }
    if (i < sizeof(answer) - 1)
        printf("wrote %zu of %zu bytes, peer closed\n", i, sizeof(answer) - 1);
    else
        printf("wrote all %zu bytes\n", i);
    return 0;
}
