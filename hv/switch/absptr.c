/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Absolute pointers (tablets) on the bare panel.
 *
 * SDL 2.26's evdev backend (KMSDRM) passes a tablet's raw ABS_X/ABS_Y
 * values as window coordinates, without scaling them from the device's
 * range, and then clamps them to the window: a tablet at its middle
 * (16384 of 0..32767) becomes the bottom-right corner. So on KMSDRM
 * hv-switch reads absolute pointers itself (read-only, not grabbed),
 * positions and buttons together, in the order the kernel gave them, and
 * scales them to the window. SDL reads the same device; its events from it
 * are ignored. They are told apart by SDL's mouse id, which in its evdev
 * backend is the file descriptor it opened the device with (and 0 for the
 * moves SDL makes up itself, ignored too): a click is
 * then never sent at a position older or newer than its own, however late
 * either reader gets to its events. Touchpads (INPUT_PROP_POINTER,
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
        snprintf(p->path, sizeof(p->path), "/dev/input/%.20s", e->d_name);
        p->dropped = false;
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

static uint32_t button_bit(unsigned code)
{
    return code == BTN_LEFT     ? DISP_BTN_LEFT
           : code == BTN_RIGHT  ? DISP_BTN_RIGHT
           : code == BTN_MIDDLE ? DISP_BTN_MIDDLE
                                : 0;
}

/* After SYN_DROPPED: the device's state now, as the kernel holds it. */
static void resync(struct app *a, struct absptr *p)
{
    struct input_absinfo i;
    unsigned long keys[NLONGS(KEY_CNT)] = {0};
    static const unsigned codes[] = {BTN_LEFT, BTN_RIGHT, BTN_MIDDLE};

    if (ioctl(p->fd, EVIOCGABS(ABS_X), &i) == 0)
        p->x = i.value;
    if (ioctl(p->fd, EVIOCGABS(ABS_Y), &i) == 0)
        p->y = i.value;
    if (ioctl(p->fd, EVIOCGKEY(sizeof(keys)), keys) >= 0)
        for (size_t k = 0; k < sizeof(codes) / sizeof(codes[0]); k++)
            a->buttons = TEST_BIT(codes[k], keys) ? a->buttons | button_bit(codes[k])
                                                  : a->buttons & ~button_bit(codes[k]);
}

/* One event of tablet p; true when a report is complete and the pointer is to be sent. */
static bool tablet_event(struct app *a, struct absptr *p, const struct input_event *ev)
{
    if (ev->type == EV_SYN && ev->code == SYN_DROPPED) {
        p->dropped = true;
        return false;
    }
    if (ev->type == EV_SYN && ev->code == SYN_REPORT) {
        if (p->dropped) {
            p->dropped = false;
            resync(a, p);
        }
        return true;
    }
    if (p->dropped)
        return false;
    if (ev->type == EV_ABS && ev->code == ABS_X)
        p->x = ev->value;
    else if (ev->type == EV_ABS && ev->code == ABS_Y)
        p->y = ev->value;
    else if (ev->type == EV_KEY && button_bit(ev->code))
        a->buttons =
            ev->value ? a->buttons | button_bit(ev->code) : a->buttons & ~button_bit(ev->code);
    return false;
}

void absptr_read(struct app *a)
{
    for (int i = 0; i < a->nabs; i++) {
        struct absptr *p = &a->abs[i];
        struct input_event ev[64];
        ssize_t n;

        while ((n = read(p->fd, ev, sizeof(ev))) > 0) {
            for (size_t k = 0; k < (size_t)n / sizeof(ev[0]); k++) {
                int w = 0, h = 0;

                if (!tablet_event(a, p, &ev[k]))
                    continue;
                /* Each report on its own, so a click goes where it was made. */
                SDL_GetWindowSize(a->win, &w, &h);
                if (w > 0 && h > 0)
                    input_pointer_at(a, scale(p->x, &p->ax, w), scale(p->y, &p->ay, h));
            }
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            log_warn("absolute pointer: %s; no longer read", strerror(errno));
            close(p->fd);
            a->abs[i--] = a->abs[--a->nabs];
        }
    }
}

bool absptr_ignores_sdl_mouse(const struct app *a, uint32_t which)
{
    char link[64], target[64];
    ssize_t n;

    if (!a->nabs)
        return false;
    /*
     * Id 0: SDL's own moves (when it thinks the pointer entered or left the
     * window, which a tablet's unscaled values make it think all the time);
     * they repeat its wrong idea of where the pointer is.
     */
    if (which == 0)
        return true;
    if (which == SDL_TOUCH_MOUSEID || which > INT32_MAX)
        return false;
    snprintf(link, sizeof(link), "/proc/self/fd/%u", (unsigned)which);
    n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    for (int i = 0; i < a->nabs; i++)
        if ((int)which != a->abs[i].fd && strcmp(target, a->abs[i].path) == 0)
            return true;
    return false;
}
