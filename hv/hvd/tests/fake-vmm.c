/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A stand-in for hv-vmm in hvd's tests: takes hv-vmm's options, writes
 * "hv-guest: hello" to the console file and answers the control socket
 * (query, pause, resume, stop → exit 0, kill → exit 4). With --cmdline
 * containing "fake-reboot" it exits 3 (a guest reboot) once after 1 s, and
 * with "fake-ignore-stop" it ignores the power button.
 */
#include "jsonproto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *control = NULL, *console = NULL, *cmdline = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--control") == 0)
            control = argv[i + 1];
        else if (strcmp(argv[i], "--console") == 0)
            console = argv[i + 1];
        else if (strcmp(argv[i], "--cmdline") == 0)
            cmdline = argv[i + 1];
    }
    if (!control) {
        fprintf(stderr, "fake-vmm: --control is required\n");
        return 2;
    }
    if (console && strncmp(console, "file:", 5) == 0) {
        FILE *f = fopen(console + 5, "a");
        if (f) {
            fprintf(f, "fake kernel booting\nhv-guest: hello\n");
            fclose(f);
        }
    }
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control);
    unlink(control);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0) {
        fprintf(stderr, "fake-vmm: cannot listen on %s: %s\n", control, strerror(errno));
        return 1;
    }
    bool paused = false, ignore_stop = strstr(cmdline, "fake-ignore-stop") != NULL;
    int reboot_ms = strstr(cmdline, "fake-reboot") ? 1000 : -1;
    if (reboot_ms > 0 && getenv("FAKE_VMM_REBOOTED_FLAG") &&
        access(getenv("FAKE_VMM_REBOOTED_FLAG"), F_OK) == 0)
        reboot_ms = -1;
    for (;;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int r = poll(&p, 1, reboot_ms);
        if (r == 0) {
            if (getenv("FAKE_VMM_REBOOTED_FLAG"))
                fclose(fopen(getenv("FAKE_VMM_REBOOTED_FLAG"), "w"));
            _exit(3);
        }
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct jp_reader rd;
        jp_reader_init(&rd, JP_MAX_MESSAGE);
        struct json_object *req;
        const char *why;
        int exit_code = -1;
        while (jp_recv(fd, &rd, 5000, &req, &why) == 1) {
            struct json_object *c, *reply = json_object_new_object();
            const char *cmd =
                json_object_object_get_ex(req, "cmd", &c) ? json_object_get_string(c) : "";
            bool ok = true;
            if (strcmp(cmd, "query") == 0) {
                json_object_object_add(reply, "state",
                                       json_object_new_string(paused ? "paused" : "running"));
                json_object_object_add(reply, "vcpus", json_object_new_int(1));
            } else if (strcmp(cmd, "pause") == 0) {
                paused = true;
            } else if (strcmp(cmd, "resume") == 0) {
                paused = false;
            } else if (strcmp(cmd, "stop") == 0) {
                if (!ignore_stop)
                    exit_code = 0;
            } else if (strcmp(cmd, "kill") == 0) {
                exit_code = 4;
            } else {
                ok = false;
                json_object_object_add(reply, "error", json_object_new_string("unknown command"));
            }
            json_object_object_add(reply, "ok", json_object_new_boolean(ok));
            jp_send(fd, reply);
            json_object_put(reply);
            json_object_put(req);
            if (exit_code >= 0) {
                usleep(100 * 1000);
                unlink(control);
                _exit(exit_code); /* like a VMM's end: no leak report under ASan */
            }
        }
        jp_reader_free(&rd);
        close(fd);
    }
}
