/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Absolute pointers (tablets) on the bare panel.
 *
 * SDL 2.26's evdev backend (KMSDRM) passes a tablet's raw ABS_X/ABS_Y
 * values as window coordinates, without scaling them from the device's
 * range, and then clamps them to the window: a tablet at its middle
 * (16384 of 0..32767) becomes the bottom-right corner. So on KMSDRM
 * hv-switch reads absolute pointers itself (read-only, not grabbed: SDL
 * still gets their buttons), scales them to the window, and ignores SDL's
 * motion events while a tablet is moving. Touchpads (INPUT_PROP_POINTER,
 * BTN_TOOL_FINGER) and touchscreens (INPUT_PROP_DIRECT) are left to SDL.
 */
#include "app.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BITS_LONG      (8 * sizeof(unsigned long))
#define NLONGS(n)      (((n) + BITS_LONG - 1) / BITS_LONG)
#define TEST_BIT(b, a) (((a)[(b) / BITS_LONG] >> ((b) % BITS_LONG)) & 1)
#define ABS_QUIET_NS   (100 * 1000 * 1000ull)

static bool is_tablet(int fd, struct input_absinfo *ax, struct input_absinfo *ay)
{
    unsigned long ev[NLONGS(EV_CNT)] = {0}, abs[NLONGS(ABS_CNT)] = {0};
    unsigned long key[NLONGS(KEY_CNT)] = {0}, prop[NLONGS(INPUT_PROP_CNT)] = {0};

    if (ioctl(fd, EVIOCGBIT(0, sizeof(ev)), ev) < 0 || !TEST_BIT(EV_ABS, ev))
        return false;
    if (ioctl(fd, EVIOCGBIT(EV_ABS, sizeof(abs)), abs) < 0 || !TEST_BIT(ABS_X, abs) ||
        !TEST_BIT(ABS_Y, abs))
        return false;
    ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(key)), key);
    ioctl(fd, EVIOCGPROP(sizeof(prop)), prop);
    if (TEST_BIT(INPUT_PROP_DIRECT, prop) || TEST_BIT(INPUT_PROP_POINTER, prop) ||
        TEST_BIT(BTN_TOOL_FINGER, key) || !TEST_BIT(BTN_LEFT, key))
        return false;
    if (ioctl(fd, EVIOCGABS(ABS_X), ax) < 0 || ioctl(fd, EVIOCGABS(ABS_Y), ay) < 0)
        return false;
    return ax->maximum > ax->minimum && ay->maximum > ay->minimum;
}

void absptr_open(struct app *a)
{
    DIR *d = opendir("/dev/input");
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) && a->nabs < ABSPTR_MAX) {
        char path[300], name[64] = "";
        struct absptr *p = &a->abs[a->nabs];
        int fd;

        if (strncmp(e->d_name, "event", 5) != 0)
            continue;
        snprintf(path, sizeof(path), "/dev/input/%s", e->d_name);
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (!is_tablet(fd, &p->ax, &p->ay)) {
            close(fd);
            continue;
        }
        ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name);
        p->fd = fd;
        p->x = p->ax.value;
        p->y = p->ay.value;
        a->nabs++;
        log_info("absolute pointer %s \"%s\": x %d..%d, y %d..%d", e->d_name, name, p->ax.minimum,
                 p->ax.maximum, p->ay.minimum, p->ay.maximum);
    }
    closedir(d);
}

static int scale(int v, const struct input_absinfo *i, int size)
{
    long long range = (long long)i->maximum - i->minimum;
    long long s = ((long long)v - i->minimum) * (size - 1) / range;

    return (int)(s < 0 ? 0 : s > size - 1 ? size - 1 : s);
}

void absptr_read(struct app *a)
{
    for (int i = 0; i < a->nabs; i++) {
        struct absptr *p = &a->abs[i];
        struct input_event ev[64];
        ssize_t n;
        bool moved = false;

        while ((n = read(p->fd, ev, sizeof(ev))) > 0) {
            for (size_t k = 0; k < (size_t)n / sizeof(ev[0]); k++) {
                if (ev[k].type == EV_ABS && ev[k].code == ABS_X)
                    p->x = ev[k].value, moved = true;
                else if (ev[k].type == EV_ABS && ev[k].code == ABS_Y)
                    p->y = ev[k].value, moved = true;
            }
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            log_warn("absolute pointer: %s; no longer read", strerror(errno));
            close(p->fd);
            a->abs[i--] = a->abs[--a->nabs];
            continue;
        }
        if (moved) {
            int w = 0, h = 0;

            SDL_GetWindowSize(a->win, &w, &h);
            a->abs_last_ns = now_ns();
            if (w > 0 && h > 0)
                input_pointer_at(a, scale(p->x, &p->ax, w), scale(p->y, &p->ay, h));
        }
    }
}

bool absptr_owns_motion(struct app *a)
{
    if (!a->nabs)
        return false;
    if (now_ns() - a->abs_last_ns < ABS_QUIET_NS)
        return true;
    /* SDL read the tablet's event before we did: ours is still waiting. */
    for (int i = 0; i < a->nabs; i++) {
        struct pollfd p = {.fd = a->abs[i].fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
            return true;
    }
    return false;
}
