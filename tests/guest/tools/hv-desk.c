/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-desk: the desktop test guest's "desktop" (static, busybox initramfs).
 *
 *   hv-desk [--colour RRGGBB] [--name NAME] [--seconds N] [--repaint MS] [--all 1]
 *
 * Paints the whole of /dev/fb0 (virtio-gpu's fbdev emulation) in the colour
 * with the name written large in white in the middle, then reports every
 * event of the virtio-input devices on stdout (the console), one line each:
 *
 *   hv-desk: fb WxH stride S
 *   hv-desk: input event2 "hv keyboard"
 *   hv-desk: key CODE VALUE          EV_KEY (1 press, 0 release, 2 repeat)
 *   hv-desk: abs X Y                 the tablet's ABS_X/ABS_Y at each EV_SYN
 *   hv-desk: click CODE VALUE X Y    a button's change and where the tablet was
 *                                    at the end of that report (its EV_SYN)
 *   hv-desk: wheel DX DY
 *
 * With --all 1 it reads every input device, not only the "hv ..." ones (the
 * PS/2 keyboard and mouse too), and says which one each event came from:
 *
 *   hv-desk: key CODE VALUE eventN
 *   hv-desk: rel DX DY eventN        REL_X/REL_Y summed up to each EV_SYN
 *
 * It repaints every --repaint ms (default 3000) so a console cursor or a
 * mode change cannot leave the picture stale, and exits after --seconds
 * (default: never).
 */
#define _GNU_SOURCE
#include "font.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/input.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_INPUTS 8

static uint32_t colour = 0x808080;
static const char *name = "guest";
static int all_inputs;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int paint(void)
{
    int fd = open("/dev/fb0", O_RDWR);
    if (fd < 0) {
        printf("hv-desk: no /dev/fb0: %s\n", strerror(errno));
        return -1;
    }
    struct fb_var_screeninfo var;
    struct fb_fix_screeninfo fix;
    if (ioctl(fd, FBIOGET_VSCREENINFO, &var) < 0 || ioctl(fd, FBIOGET_FSCREENINFO, &fix) < 0 ||
        var.bits_per_pixel != 32 || var.xres == 0 || var.yres == 0 ||
        fix.line_length < var.xres * 4) {
        printf("hv-desk: unusable fb0 (%u bpp)\n", var.bits_per_pixel);
        close(fd);
        return -1;
    }
    static int said;
    if (!said) {
        said = 1;
        printf("hv-desk: fb %ux%u stride %u\n", var.xres, var.yres, fix.line_length);
    }
    size_t len = (size_t)fix.line_length * var.yres;
    uint32_t *px = malloc(len);
    if (!px) {
        close(fd);
        return -1;
    }
    unsigned w = var.xres, h = var.yres, stride = fix.line_length / 4;
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < stride; x++)
            px[y * stride + x] = colour;
    int tw = font_text_width(name);
    int scale = tw > 0 ? (int)(w / 2) / tw : 1;
    if (scale > (int)h / 4 / FONT_H)
        scale = (int)h / 4 / FONT_H;
    if (scale < 1)
        scale = 1;
    int x0 = ((int)w - tw * scale) / 2, y0 = ((int)h - FONT_H * scale) / 2;
    for (int i = 0; name[i]; i++)
        for (int fy = 0; fy < FONT_H; fy++)
            for (int fx = 0; fx < FONT_W; fx++) {
                if (!font_pixel(name[i], fx, fy))
                    continue;
                for (int sy = 0; sy < scale; sy++)
                    for (int sx = 0; sx < scale; sx++) {
                        int x = x0 + (i * FONT_ADVANCE + fx) * scale + sx;
                        int y = y0 + fy * scale + sy;
                        if (x >= 0 && y >= 0 && x < (int)w && y < (int)h)
                            px[(size_t)y * stride + x] = 0xffffff;
                    }
            }
    /* write() (not mmap): the fbdev emulation flushes the written range. */
    ssize_t n = pwrite(fd, px, len, 0);
    free(px);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

struct input {
    int fd;
    int x, y, moved;
    int dx, dy, rel;
    int button, pressed, clicked; /* a button's change in the current report */
    char node[16];
};

static int open_inputs(struct input *in)
{
    int n = 0;
    DIR *d = opendir("/dev/input");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_INPUTS) {
        if (strncmp(e->d_name, "event", 5) != 0)
            continue;
        char path[300], devname[128] = "";
        snprintf(path, sizeof(path), "/dev/input/%s", e->d_name);
        int fd = open(path, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
            continue;
        ioctl(fd, EVIOCGNAME(sizeof(devname) - 1), devname);
        if (!all_inputs && strncmp(devname, "hv ", 3) != 0) {
            close(fd);
            continue;
        }
        printf("hv-desk: input %s \"%s\"\n", e->d_name, devname);
        in[n] = (struct input){.fd = fd, .x = -1, .y = -1};
        snprintf(in[n].node, sizeof(in[n].node), "%.15s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void read_input(struct input *in)
{
    struct input_event ev[64];
    ssize_t n;
    while ((n = read(in->fd, ev, sizeof(ev))) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++) {
            if (ev[i].type == EV_KEY && ev[i].code >= BTN_LEFT && ev[i].code <= BTN_MIDDLE)
                in->button = ev[i].code, in->pressed = ev[i].value, in->clicked = 1;
            if (ev[i].type == EV_KEY && all_inputs)
                printf("hv-desk: key %u %d %s\n", ev[i].code, ev[i].value, in->node);
            else if (ev[i].type == EV_KEY)
                printf("hv-desk: key %u %d\n", ev[i].code, ev[i].value);
            else if (ev[i].type == EV_REL && ev[i].code == REL_X)
                in->dx += ev[i].value, in->rel = 1;
            else if (ev[i].type == EV_REL && ev[i].code == REL_Y)
                in->dy += ev[i].value, in->rel = 1;
            else if (ev[i].type == EV_ABS && ev[i].code == ABS_X)
                in->x = ev[i].value, in->moved = 1;
            else if (ev[i].type == EV_ABS && ev[i].code == ABS_Y)
                in->y = ev[i].value, in->moved = 1;
            else if (ev[i].type == EV_REL && ev[i].code == REL_WHEEL)
                printf("hv-desk: wheel 0 %d\n", ev[i].value);
            else if (ev[i].type == EV_REL && ev[i].code == REL_HWHEEL)
                printf("hv-desk: wheel %d 0\n", ev[i].value);
            if (ev[i].type == EV_SYN && in->clicked) {
                printf("hv-desk: click %d %d %d %d\n", in->button, in->pressed, in->x, in->y);
                in->clicked = 0;
            }
            if (ev[i].type == EV_SYN && in->moved) {
                printf("hv-desk: abs %d %d\n", in->x, in->y);
                in->moved = 0;
            } else if (ev[i].type == EV_SYN && in->rel) {
                printf("hv-desk: rel %d %d %s\n", in->dx, in->dy, in->node);
                in->dx = in->dy = in->rel = 0;
            }
        }
    }
}

int main(int argc, char **argv)
{
    long seconds = -1, repaint = 3000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--colour"))
            colour = (uint32_t)strtoul(argv[i + 1], NULL, 16) & 0xffffff;
        else if (!strcmp(argv[i], "--name"))
            name = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds"))
            seconds = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--repaint"))
            repaint = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--all"))
            all_inputs = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "hv-desk: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct input in[MAX_INPUTS];
    int nin = open_inputs(in);
    int painted = paint() == 0;
    if (painted)
        printf("hv-desk: painted %06x %s\n", colour, name);
    long long end = seconds >= 0 ? now_ms() + seconds * 1000 : -1, next = now_ms() + repaint;
    for (;;) {
        struct pollfd p[MAX_INPUTS];
        for (int i = 0; i < nin; i++)
            p[i] = (struct pollfd){.fd = in[i].fd, .events = POLLIN};
        long long t = now_ms();
        if (end >= 0 && t >= end)
            break;
        int wait = (int)(next - t);
        if (wait < 0)
            wait = 0;
        if (poll(p, (nfds_t)nin, wait) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < nin; i++)
            if (p[i].revents & POLLIN)
                read_input(&in[i]);
        if (now_ms() >= next) {
            if (paint() == 0 && !painted) {
                painted = 1;
                printf("hv-desk: painted %06x %s\n", colour, name);
            }
            next = now_ms() + repaint;
        }
    }
    return 0;
}
