/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-switch: owns the screen, keyboard and mouse; shows the focused VM and
 * routes input to it. See docs/switch.md.
 */
#include "app.h"
#include "log.h"
#include "producer.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * SDL has no way to wait on our sockets, so a thread polls them and wakes
 * the main loop with an SDL event. It then waits until the main thread has
 * read them and handed it the new set of descriptors ("re-armed").
 */
/* Producers and their socket, tablets, the control socket and its clients. */
#define POLL_MAX (1 + MAX_CLIENTS + ABSPTR_MAX + 1 + CTL_CLIENTS)

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pollfd fds[POLL_MAX];
    int nfds;
    unsigned generation;
    bool stop;
    bool tick; /* wake the loop each second even without input (hello deadlines) */
    int wake[2];
    Uint32 event;
} poller = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *poller_main(void *arg)
{
    struct pollfd fds[POLL_MAX + 1];
    unsigned seen = 0;
    int n;

    (void)arg;
    for (;;) {
        pthread_mutex_lock(&poller.lock);
        while (poller.generation == seen && !poller.stop)
            pthread_cond_wait(&poller.cond, &poller.lock);
        if (poller.stop) {
            pthread_mutex_unlock(&poller.lock);
            return NULL;
        }
        seen = poller.generation;
        n = poller.nfds;
        int timeout = poller.tick ? 1000 : -1;
        memcpy(fds, poller.fds, sizeof(fds[0]) * (size_t)n);
        pthread_mutex_unlock(&poller.lock);

        fds[n] = (struct pollfd){.fd = poller.wake[0], .events = POLLIN};
        while (poll(fds, (nfds_t)n + 1, timeout) < 0 && errno == EINTR)
            ;
        if (fds[n].revents)
            return NULL;
        SDL_PushEvent(&(SDL_Event){.type = poller.event});
    }
}

static void poller_arm(struct app *a)
{
    pthread_mutex_lock(&poller.lock);
    poller.nfds = 0;
    poller.fds[poller.nfds++] = (struct pollfd){.fd = a->listen_fd, .events = POLLIN};
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (a->clients[i].used)
            poller.fds[poller.nfds++] = (struct pollfd){.fd = a->clients[i].fd, .events = POLLIN};
    }
    for (int i = 0; i < a->nabs; i++)
        poller.fds[poller.nfds++] = (struct pollfd){.fd = a->abs[i].fd, .events = POLLIN};
    if (a->ctl_fd >= 0)
        poller.fds[poller.nfds++] = (struct pollfd){.fd = a->ctl_fd, .events = POLLIN};
    for (int i = 0; i < CTL_CLIENTS; i++) {
        if (a->ctl[i].used)
            poller.fds[poller.nfds++] = (struct pollfd){.fd = a->ctl[i].fd, .events = POLLIN};
    }
    poller.tick = server_waiting_hello(a);
    poller.generation++;
    pthread_cond_signal(&poller.cond);
    pthread_mutex_unlock(&poller.lock);
}

static void poller_stop(pthread_t t)
{
    pthread_mutex_lock(&poller.lock);
    poller.stop = true;
    pthread_cond_signal(&poller.cond);
    pthread_mutex_unlock(&poller.lock);
    if (write(poller.wake[1], "x", 1) < 0)
        log_warn("waking the poller: %s", strerror(errno));
    pthread_join(t, NULL);
}

static void render(struct app *a)
{
    bool measure = a->switch_pending;
    uint64_t us;

    comp_render(a);
    if (!measure)
        return;
    a->switch_pending = false;
    us = (now_ns() - a->switch_t0) / 1000;
    lat_add(&a->lat, (uint32_t)MIN(us, UINT32_MAX));
    log_info("switch latency %llu us (%.2f frames at 60 Hz)", (unsigned long long)us,
             (double)us / 16666.7);
}

/* The control socket's default: switch-control.sock in --socket's directory. */
static const char *control_beside(const char *sock, char *buf, size_t len)
{
    const char *slash = strrchr(sock, '/');
    int dir = slash ? (int)(slash - sock) : 1;

    snprintf(buf, len, "%.*s/switch-control.sock", dir, slash ? sock : ".");
    return buf;
}

/* hvd's records of its producers: the "displays" folder in --socket's directory. */
static void records_beside(const char *sock, char *buf, size_t len)
{
    const char *slash = strrchr(sock, '/');
    int dir = slash ? (int)(slash - sock) : 1;

    snprintf(buf, len, "%.*s/" PRODUCER_RECORDS_DIR, dir, slash ? sock : ".");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hv-switch [--socket PATH] [--control PATH|none] [--size WxH] [--fullscreen]\n"
            "                 [--no-vsync] [--renderer NAME] [--verbose]\n"
            "Shows the focused VM's display; Ctrl+Alt+1..9 / Ctrl+Alt+0 (UIVM) switch,\n"
            "Ctrl+Alt+Tab opens the switcher. SDL_VIDEODRIVER=kmsdrm for the bare panel.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"size", required_argument, NULL, 'g'},
        {"control", required_argument, NULL, 'c'},
        {"fullscreen", no_argument, NULL, 'f'},
        {"no-vsync", no_argument, NULL, 'n'},
        {"renderer", required_argument, NULL, 'r'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    static struct app a;
    const char *sock = "/run/hv/switch.sock", *renderer = NULL, *drv;
    const char *control = NULL;
    char control_buf[4096];
    int w = 1280, h = 800, opt;
    bool fullscreen = false, vsync = true, have_ctl;
    pthread_t thread;
    SDL_Event ev;

    hv_log_init("hv-switch");
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sock = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'g':
            if (sscanf(optarg, "%dx%d", &w, &h) != 2 || w < 64 || h < 64 || w > 16384 || h > 16384)
                hv_die("--size %s: want WxH, e.g. 1280x800", optarg);
            break;
        case 'f':
            fullscreen = true;
            break;
        case 'n':
            vsync = false;
            break;
        case 'r':
            renderer = optarg;
            break;
        case 'v':
            hv_log_set_level(HV_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    drv = getenv("SDL_VIDEODRIVER");
    if (drv && !strcmp(drv, "kmsdrm")) {
        absptr_open(&a);
        fullscreen = true;
        if (!renderer)
            renderer = "opengles2"; /* the one that draws everything right there */
    }
    if (SDL_Init(SDL_INIT_VIDEO | SDL_INIT_EVENTS) < 0)
        hv_die("SDL_Init: %s", SDL_GetError());
    reg_init(&a.reg);
    focus_init(&a.focus);
    a.listen_fd = server_listen(sock);
    records_beside(sock, a.records_dir, sizeof(a.records_dir));
    control = control ? control : control_beside(sock, control_buf, sizeof(control_buf));
    a.ctl_fd = strcmp(control, "none") ? control_listen(control) : -1;
    have_ctl = a.ctl_fd >= 0;
    if (!have_ctl && strcmp(control, "none"))
        log_err("no control socket: hvd cannot switch VMs or take thumbnails");
    if (a.listen_fd < 0 || comp_init(&a, w, h, fullscreen, vsync, renderer) < 0)
        return 1;
    poller.event = SDL_RegisterEvents(1);
    if (poller.event == (Uint32)-1 || pipe2(poller.wake, O_CLOEXEC) < 0)
        hv_die("cannot set up the event loop");
    if (pthread_create(&thread, NULL, poller_main, NULL))
        hv_die("cannot start the poller thread");
    poller_arm(&a);
    log_info("listening on %s, control on %s", sock, control);

    a.redraw = true;
    while (!a.quit) {
        if (a.redraw)
            render(&a);
        if (!SDL_WaitEvent(&ev))
            continue;
        do {
            if (ev.type == SDL_QUIT) {
                a.quit = true;
            } else if (ev.type == poller.event) {
                absptr_read(&a);
                server_service(&a);
                control_service(&a);
                poller_arm(&a);
            } else if (ev.type == SDL_WINDOWEVENT) {
                a.redraw = true;
            } else {
                input_event(&a, &ev);
            }
        } while (SDL_PollEvent(&ev));
    }
    log_info("quitting");
    poller_stop(thread);
    server_close_all(&a);
    control_close_all(&a);
    unlink(sock);
    if (have_ctl)
        unlink(control);
    SDL_Quit();
    return 0;
}
