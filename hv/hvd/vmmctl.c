/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A blocking client for hv-vmm's control socket: one request, one reply. */
#include "hvd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct json_object *vmmctl_call(const char *socket_path, const char *cmd, int timeout_ms, char *err,
                                size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control socket path too long");
        return NULL;
    }
    strcpy(sa.sun_path, socket_path);
    /* Right after a start, hv-vmm may not listen yet: retry within the timeout. */
    int fd = -1;
    for (int waited = 0;; waited += 20) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        int saved = errno;
        close(fd);
        fd = -1;
        if ((saved != ENOENT && saved != ECONNREFUSED) || waited >= timeout_ms) {
            errno = saved;
            break;
        }
        usleep(20 * 1000);
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to hv-vmm's control socket %s: %s", socket_path,
                 strerror(errno));
        return NULL;
    }
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string(cmd));
    int rc = jp_send(fd, req);
    json_object_put(req);
    struct json_object *reply = NULL;
    if (rc < 0) {
        snprintf(err, errlen, "cannot send to hv-vmm: %s", strerror(errno));
    } else {
        struct jp_reader r;
        const char *why = NULL;
        jp_reader_init(&r, JP_MAX_MESSAGE);
        int got = jp_recv(fd, &r, timeout_ms, &reply, &why);
        if (got == 0)
            snprintf(err, errlen, "hv-vmm closed its control socket without a reply");
        else if (got < 0)
            snprintf(err, errlen, "hv-vmm's reply: %s", why);
        jp_reader_free(&r);
    }
    close(fd);
    if (!reply)
        return NULL;
    struct json_object *ok;
    if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok)) {
        struct json_object *e;
        snprintf(err, errlen, "hv-vmm refused '%s': %s", cmd,
                 json_object_object_get_ex(reply, "error", &e) ? json_object_get_string(e)
                                                               : "no reason given");
        json_object_put(reply);
        return NULL;
    }
    return reply;
}
