/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A stand-in display producer for hv-switch (tests and the demo, until
 * hv-vmm has virtio-gpu): paints its name big on its colour into a memfd,
 * hands it over, and prints every input event it receives on stdout, one line
 * each. --hostile sends one bad message instead, to test hv-switch's checks.
 * --stats asks hv-switch for its switch-latency samples instead.
 */
#include "ctlproto.h"
#include "dgram.h"
#include "font.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct fake {
    int sock;
    uint32_t w, h, stride, colour;
    uint8_t *pix;
    const char *name;
    unsigned frame;
};

static void die(const char *what)
{
    fprintf(stderr, "hv-fake-display: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (fd < 0)
        die("socket");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die(path);
    return fd;
}

static void send_msg(int sock, const void *msg, size_t len, int fd)
{
    if (dgram_send(sock, msg, len, fd, 0) < 0)
        die("sendmsg");
}

static int make_memfd(uint64_t size, bool seal)
{
    int fd = memfd_create("hv-fake-display", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
        die("memfd");
    if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
        die("F_ADD_SEALS");
    return fd;
}

static void put(struct fake *f, uint32_t x, uint32_t y, uint32_t rgb)
{
    if (x < f->w && y < f->h)
        memcpy(f->pix + (size_t)y * f->stride + x * 4, &rgb, 4);
}

static void text(struct fake *f, const char *s, uint32_t x0, uint32_t y0, uint32_t scale,
                 uint32_t rgb)
{
    for (uint32_t i = 0; s[i]; i++) {
        for (uint32_t gy = 0; gy < FONT_H * scale; gy++) {
            for (uint32_t gx = 0; gx < FONT_W * scale; gx++) {
                if (font_pixel(s[i], (int)(gx / scale), (int)(gy / scale)))
                    put(f, x0 + i * FONT_ADVANCE * scale + gx, y0 + gy, rgb);
            }
        }
    }
}

/* The whole picture: colour, the name big in white in the middle, a frame counter. */
static void paint(struct fake *f)
{
    char counter[32];
    uint32_t scale = f->w / (uint32_t)(font_text_width(f->name) + 12);

    for (uint32_t y = 0; y < f->h; y++) {
        for (uint32_t x = 0; x < f->w; x++)
            put(f, x, y, f->colour);
    }
    scale = scale < 1 ? 1 : scale > 24 ? 24 : scale;
    text(f, f->name, (f->w - (uint32_t)font_text_width(f->name) * scale) / 2,
         (f->h - FONT_H * scale) / 2, scale, 0xffffff);
    snprintf(counter, sizeof(counter), "frame %u", f->frame);
    text(f, counter, 8, f->h - 8 * 3, 2, 0xffffff);
}

static void damage(struct fake *f, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct disp_damage d = {DISP_DAMAGE, {x, y, w, h}};

    send_msg(f->sock, &d, sizeof(d), -1);
}

/* Sends one bad message of the kind named; hv-switch must refuse it and close. */
static void hostile(struct fake *f, const char *kind)
{
    struct disp_scanout s = {DISP_SCANOUT, f->w, f->h, f->stride, DISP_FORMAT_XRGB8888, 0, 0};
    uint64_t size = (uint64_t)f->stride * f->h;
    bool seal = true;

    if (!strcmp(kind, "absurd-size")) {
        s.width = s.height = 100000;
        s.stride = 400000;
    } else if (!strcmp(kind, "bad-stride")) {
        s.stride = f->w * 4 - 4;
    } else if (!strcmp(kind, "small-memfd")) {
        size = 4096;
    } else if (!strcmp(kind, "unsealed")) {
        seal = false;
    } else if (!strcmp(kind, "damage-outside")) {
        int fd = make_memfd(size, true);
        send_msg(f->sock, &s, sizeof(s), fd);
        close(fd);
        damage(f, f->w - 10, f->h - 10, 20, 20);
        return;
    } else if (!strcmp(kind, "control-focus")) {
        /* The control socket's requests mean nothing on the producers' socket. */
        struct ctl_focus q = {CTL_FOCUS, 1};
        send_msg(f->sock, &q, sizeof(q), -1);
        return;
    } else if (!strcmp(kind, "control-thumb")) {
        struct ctl_thumb q = {CTL_THUMB, 1, 64, 64};
        send_msg(f->sock, &q, sizeof(q), -1);
        return;
    } else if (!strcmp(kind, "garbage")) {
        static const uint8_t junk[] = {0x02, 0, 0, 0, 0xff, 0xff};
        send_msg(f->sock, junk, sizeof(junk), -1);
        return;
    } else {
        fprintf(stderr, "hv-fake-display: unknown --hostile %s\n", kind);
        exit(2);
    }
    int fd = make_memfd(size, seal);
    send_msg(f->sock, &s, sizeof(s), fd);
    close(fd);
}

static void print_event(const uint8_t *buf, ssize_t n, const struct fake *f)
{
    uint32_t type;

    if (n < 4)
        return;
    memcpy(&type, buf, 4);
    if (type == DISP_KEY && n == sizeof(struct disp_key)) {
        const struct disp_key *k = (const void *)buf;
        printf("key %u %s\n", k->code, k->pressed ? "press" : "release");
    } else if (type == DISP_POINTER && n == sizeof(struct disp_pointer)) {
        const struct disp_pointer *p = (const void *)buf;
        /* The pixel a guest's tablet driver would put the pointer on. */
        printf("pointer %u %u buttons %u pixel %u %u\n", p->x, p->y, p->buttons,
               (uint32_t)(((uint64_t)p->x * (f->w - 1) + DISP_ABS_MAX / 2) / DISP_ABS_MAX),
               (uint32_t)(((uint64_t)p->y * (f->h - 1) + DISP_ABS_MAX / 2) / DISP_ABS_MAX));
    } else if (type == DISP_WHEEL && n == sizeof(struct disp_wheel)) {
        const struct disp_wheel *w = (const void *)buf;
        printf("wheel %d %d\n", w->dx, w->dy);
    } else if (type == DISP_FOCUS && n == sizeof(struct disp_focus)) {
        printf("focus %u\n", ((const struct disp_focus *)buf)->focused);
    } else if (type == DISP_WELCOME && n == sizeof(struct disp_welcome)) {
        printf("welcome slot %d\n", (int)((const struct disp_welcome *)buf)->slot);
    } else {
        printf("unknown message 0x%x of %zd bytes\n", type, n);
    }
    fflush(stdout);
}

static int stats(const char *path)
{
    struct disp_stats_req q = {DISP_STATS_REQ};
    struct disp_stats s;
    int sock = connect_to(path);

    send_msg(sock, &q, sizeof(q), -1);
    if (recv(sock, &s, sizeof(s), 0) != sizeof(s) || s.type != DISP_STATS) {
        fprintf(stderr, "hv-fake-display: no stats reply\n");
        return 1;
    }
    printf("{\"switches\": %u, \"samples_us\": [", s.switches);
    for (uint32_t i = 0; i < s.nsamples && i < DISP_STATS_SAMPLES; i++)
        printf("%s%u", i ? ", " : "", s.sample_us[i]);
    printf("]}\n");
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: hv-fake-display --socket PATH --name NAME [--colour RRGGBB] [--slot N]\n"
            "         [--uivm] [--size WxH] [--animate MS] [--no-frame] [--hostile KIND]\n"
            "       hv-fake-display --socket PATH --stats\n"
            "KIND: absurd-size bad-stride small-memfd unsealed damage-outside garbage\n"
            "      control-focus control-thumb\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"colour", required_argument, NULL, 'c'},
        {"slot", required_argument, NULL, 'l'},
        {"uivm", no_argument, NULL, 'u'},
        {"size", required_argument, NULL, 'g'},
        {"animate", required_argument, NULL, 'a'},
        {"hostile", required_argument, NULL, 'x'},
        {"stats", no_argument, NULL, 'S'},
        {"no-frame", no_argument, NULL, 'N'},
        {0},
    };
    struct disp_hello hello = {DISP_HELLO, DISP_VERSION, 0, 0, 0x336699, ""};
    struct fake f = {.w = 800, .h = 600, .colour = 0x336699, .name = "fake"};
    const char *sock = "/run/hv/switch.sock", *hostile_kind = NULL;
    int opt, animate_ms = -1;
    bool no_frame = false;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sock = optarg;
            break;
        case 'n':
            f.name = optarg;
            break;
        case 'c':
            f.colour = (uint32_t)strtoul(optarg, NULL, 16) & 0xffffff;
            break;
        case 'l':
            hello.slot = (uint32_t)atoi(optarg);
            break;
        case 'u':
            hello.flags |= DISP_HELLO_UIVM;
            break;
        case 'g':
            if (sscanf(optarg, "%ux%u", &f.w, &f.h) != 2 || !f.w || !f.h || f.w > 8192 ||
                f.h > 8192)
                usage();
            break;
        case 'a':
            animate_ms = atoi(optarg);
            break;
        case 'x':
            hostile_kind = optarg;
            break;
        case 'S':
            return stats(sock);
        case 'N':
            no_frame = true;
            break;
        default:
            usage();
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    f.stride = f.w * 4;
    hello.colour = f.colour;
    snprintf(hello.name, sizeof(hello.name), "%s", f.name);
    f.sock = connect_to(sock);
    send_msg(f.sock, &hello, sizeof(hello), -1);

    if (hostile_kind) {
        hostile(&f, hostile_kind);
    } else if (!no_frame) {
        size_t size = (size_t)f.stride * f.h;
        int fd = make_memfd(size, true);
        struct disp_scanout s = {DISP_SCANOUT, f.w, f.h, f.stride, DISP_FORMAT_XRGB8888, 0, 0};

        f.pix = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (f.pix == MAP_FAILED)
            die("mmap");
        paint(&f);
        send_msg(f.sock, &s, sizeof(s), fd);
        close(fd);
    }

    for (;;) {
        struct pollfd p = {f.sock, POLLIN, 0};
        uint8_t buf[DISP_MAX_MSG];
        int r = poll(&p, 1, animate_ms > 0 && f.pix ? animate_ms : -1);
        ssize_t n;

        if (r == 0) {
            f.frame++;
            paint(&f);
            damage(&f, 0, 0, f.w, f.h);
            continue;
        }
        n = recv(f.sock, buf, sizeof(buf), 0);
        if (n <= 0) {
            printf("closed by hv-switch\n");
            return hostile_kind ? 0 : 1;
        }
        print_event(buf, n, &f);
    }
}
