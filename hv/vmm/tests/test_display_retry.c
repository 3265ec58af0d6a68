// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * display.c when hv-switch reads slowly: damage that does not fit in the
 * socket is sent (as the whole surface) once there is room again, with no
 * new drawing from the guest. A guest that drew its last rows while the
 * socket was full would otherwise keep them off the panel for good (seen
 * in the laptop: the bottom fifth of a Bochs guest's picture stayed black).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "dgram.h"
#include "display.h"

/* The next message within ms, its type (and the damage if it is one); 0 when none came. */
static uint32_t next_msg(int c, int ms, struct disp_rect *damage)
{
    struct pollfd p = {c, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    uint8_t buf[DISP_MAX_MSG];
    int fds[4], nfds = 0;
    bool truncated = false;
    ssize_t n = dgram_recv(c, buf, sizeof(buf), fds, 4, &nfds, &truncated);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (n < 4)
        return 0;
    uint32_t type;
    memcpy(&type, buf, 4);
    if (type == DISP_DAMAGE && (size_t)n >= sizeof(struct disp_damage))
        memcpy(damage, buf + 4, sizeof(*damage));
    return type;
}

int main(void)
{
    char dir[] = "/tmp/hv-display-XXXXXX", path[64], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/switch.sock", dir);
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0);

    struct display_config cfg;
    CHECK(display_parse(path, "slow", &cfg, err, sizeof(err)) == 0);
    struct display *d = display_start(&cfg, NULL); /* connects at once */
    CHECK(d != NULL);
    int c = accept(l, NULL, NULL);
    CHECK(c >= 0);
    if (!d || c < 0)
        return EXIT_FAILURE;

    int fd = memfd_create("surface", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0 && ftruncate(fd, 64 * 64 * 4) == 0);
    display_scanout(d, fd, 64, 64, 256);
    /* A guest drawing row after row while nobody reads: the socket fills up. */
    for (unsigned i = 0; i < 20000; i++)
        display_damage(d, 0, i % 64, 64, 1);

    /* Now hv-switch reads everything: after the small damages, the whole surface comes. */
    struct disp_rect last = {0}, r;
    uint32_t type, seen = 0;
    while ((type = next_msg(c, 2000, &r))) {
        seen++;
        if (type == DISP_DAMAGE)
            last = r;
    }
    CHECK(seen > 100); /* the socket did fill up */
    CHECK(last.x == 0 && last.y == 0 && last.w == 64 && last.h == 64);
    if (last.h != 64)
        fprintf(stderr, "  the last damage: %ux%u+%u+%u\n", last.w, last.h, last.x, last.y);

    /* And with room, a damage goes as it is. */
    display_damage(d, 0, 7, 64, 2);
    CHECK(next_msg(c, 2000, &r) == DISP_DAMAGE && r.y == 7 && r.h == 2);

    display_stop(d);
    close(fd);
    close(c);
    close(l);
    unlink(path);
    rmdir(dir);
    CHECK_DONE();
}
