// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: hv-vmm's end of the display connection (display.c).
 * The connection is real (a SOCK_SEQPACKET socket that display.c connects
 * to, accepted here as hv-switch would), its thread is not: each operation
 * runs on the fuzzer's thread. Operations, from byte 0 of each:
 *   0  a message from hv-switch (raw, or of a valid type and size) into the
 *      receive path, whose key and pointer events reach virtio-input's queue
 *   1  a new scanout (a sealed memfd), 2 damage inside it, 3 blank: what the
 *      GPU sends, within the GPU's own limits
 *   4  hv-switch reads what it got; 5 hv-switch goes away and comes back;
 *   6  hv-switch stops reading (a small socket buffer)
 *   7  a --display spec (display_parse)
 *
 * Checked besides ASan/UBSan: hv-switch's own parser (switch/proto.c)
 * accepts every message display.c sends, in order; the input events queued
 * are within the device's limits; at most a few log lines per operation.
 */
#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../display.c"
#include "virtio/fuzz/vmfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int listener = -1;
static struct display_config cfg;
static struct input_state kbd, tablet;

struct peer { /* hv-switch's side */
    int fd;
    struct disp_conn conn;
    uint32_t width, height; /* the current scanout, 0: none */
};

static void key(void *ctx, uint32_t code, bool pressed)
{
    input_key(ctx, code, pressed);
}

static void pointer(void *ctx, uint32_t x, uint32_t y, uint32_t buttons)
{
    input_pointer(ctx, x, y, buttons);
}

static void wheel(void *ctx, int32_t dx, int32_t dy)
{
    input_wheel(ctx, dx, dy);
}

static void cleanup(void)
{
    unlink(cfg.socket);
    *strrchr(cfg.socket, '/') = '\0';
    rmdir(cfg.socket);
}

static void setup(void)
{
    char dir[] = "/tmp/hv-fuzz-display-XXXXXX";
    hv_log_init("fuzz");
    if (!mkdtemp(dir))
        __builtin_trap();
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/switch.sock", dir);
    listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof(a)) || listen(listener, 4))
        __builtin_trap();
    char err[256];
    char spec[160];
    snprintf(spec, sizeof(spec), "%s,name=fuzz,colour=3366ff,slot=3", a.sun_path);
    if (display_parse(spec, NULL, &cfg, err, sizeof(err)))
        __builtin_trap();
    input_state_init(&kbd, INPUT_KEYBOARD, "kbd");
    input_state_init(&tablet, INPUT_TABLET, "tablet");
    atexit(cleanup);
}

/* hv-switch takes the connection display.c just made. */
static void accept_peer(struct display *d, struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    try_connect(d);
    if (d->sock >= 0)
        p->fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (d->sock >= 0 && p->fd < 0)
        __builtin_trap();
}

/* hv-switch reads and checks everything queued, as its server.c does. */
static void peer_read(struct peer *p)
{
    uint8_t buf[DISP_MAX_MSG];
    int fds[1], nfds;
    bool trunc;
    ssize_t n;
    char err[256];
    while (p->fd >= 0 && (n = dgram_recv(p->fd, buf, sizeof(buf), fds, 1, &nfds, &trunc)) > 0) {
        struct disp_msg m;
        if (trunc || disp_parse(buf, (size_t)n, nfds, &m, err, sizeof(err)) < 0) {
            fprintf(stderr, "hv-switch refuses a message: %s\n", err);
            __builtin_trap();
        }
        if (m.type == DISP_SCANOUT) {
            struct stat st;
            int seals = fcntl(fds[0], F_GET_SEALS);
            struct disp_fdinfo info = {.regular = fstat(fds[0], &st) == 0 && S_ISREG(st.st_mode),
                                       .size = (uint64_t)st.st_size,
                                       .seal_shrink = seals >= 0 && (seals & F_SEAL_SHRINK)};
            if (disp_check_scanout(&m.u.scanout, &info, err, sizeof(err)) < 0) {
                fprintf(stderr, "hv-switch refuses a scanout: %s\n", err);
                __builtin_trap();
            }
        }
        if (disp_conn_apply(&p->conn, &m, err, sizeof(err)) < 0) {
            fprintf(stderr, "hv-switch refuses the order: %s\n", err);
            __builtin_trap();
        }
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
    }
}

static void check_queue(const struct input_state *s)
{
    if (s->count > INPUT_QUEUE_EVENTS)
        __builtin_trap();
    for (unsigned i = 0; i < s->count; i++) {
        const struct virtio_input_event *e = &s->ev[(s->head + i) % INPUT_QUEUE_EVENTS];
        if (e->type == EV_ABS && e->value > INPUT_ABS_MAX)
            __builtin_trap(); /* the tablet said it never goes beyond INPUT_ABS_MAX */
    }
}

/* An input message of a type the receive path knows, its fields from the input. */
static size_t valid_message(uint8_t *buf, struct fz *f)
{
    static const struct {
        uint32_t type;
        size_t len;
    } kinds[] = {
        {DISP_WELCOME, sizeof(struct disp_welcome)}, {DISP_KEY, sizeof(struct disp_key)},
        {DISP_POINTER, sizeof(struct disp_pointer)}, {DISP_WHEEL, sizeof(struct disp_wheel)},
        {DISP_FOCUS, sizeof(struct disp_focus)},
    };
    unsigned k = fz_u8(f) % ARRAY_SIZE(kinds);
    for (size_t i = 4; i < kinds[k].len; i++)
        buf[i] = fz_u8(f);
    memcpy(buf, &kinds[k].type, 4);
    return kinds[k].len;
}

static void scanout(struct display *d, struct peer *p, struct fz *f)
{
    uint32_t w = 1 + fz_u16(f) % 2048, h = 1 + fz_u16(f) % 2048;
    uint32_t stride = w * 4 + (fz_u8(f) % 4) * 4;
    int fd = memfd_create("fuzz-scanout", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)stride * h) || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK))
        __builtin_trap();
    display_scanout(d, fd, w, h, stride);
    close(fd);
    p->width = w, p->height = h;
}

static void damage(struct display *d, struct peer *p, struct fz *f)
{
    if (!p->width)
        return; /* the GPU sends damage only for its scanout */
    uint32_t x = fz_u16(f) % p->width, y = fz_u16(f) % p->height;
    uint32_t w = 1 + fz_u16(f) % (p->width - x), h = 1 + fz_u16(f) % (p->height - y);
    display_damage(d, x, y, w, h);
}

static void spec(struct fz *f)
{
    char s[600], err[256];
    size_t n = fz_u16(f); /* (MIN evaluates its arguments twice) */
    n = MIN(n, sizeof(s) - 1);
    n = MIN(n, f->n);
    memcpy(s, f->p, n);
    s[n] = '\0';
    f->p += n, f->n -= n;
    struct display_config c;
    if (display_parse(s, n % 2 ? "default" : NULL, &c, err, sizeof(err)) < 0)
        return;
    if (!disp_name_valid(c.name) || c.slot > 9 || c.colour > 0xffffff || c.width < 64 ||
        c.height < 64 || c.width > 4096 || c.height > 4096 || !c.socket[0])
        __builtin_trap(); /* accepted a spec that hv-switch or the GPU cannot take */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (listener < 0)
        setup();
    struct display *d = calloc(1, sizeof(*d));
    d->cfg = cfg;
    d->in = (struct display_input){&kbd, key, pointer, wheel, &tablet};
    d->sock = d->surface_fd = d->stop_fd = -1;
    pthread_mutex_init(&d->lock, NULL);
    input_flush(&kbd);
    input_flush(&tablet);
    struct peer p = {.fd = -1};
    struct fz f = {data, size};
    fz_log_begin();
    accept_peer(d, &p);
    unsigned ops = 0;
    while (f.n && ops < 1024) {
        uint8_t op = fz_u8(&f);
        ops++;
        switch (op % 8) {
        case 0: {
            uint8_t buf[DISP_MAX_MSG] = {0};
            size_t len;
            if (op & 0x80) {
                len = valid_message(buf, &f);
            } else {
                len = fz_u16(&f) % (sizeof(buf) + 1);
                size_t k = MIN(len, f.n);
                memcpy(buf, f.p, k);
                f.p += k, f.n -= k;
            }
            if (len >= 4) /* the thread hands on nothing shorter */
                handle(d, buf, len);
            break;
        }
        case 1:
            scanout(d, &p, &f);
            break;
        case 2:
            damage(d, &p, &f);
            break;
        case 3:
            display_blank(d);
            break;
        case 4:
            peer_read(&p);
            break;
        case 5:
            peer_read(&p);
            pthread_mutex_lock(&d->lock);
            disconnect(d, "hv-switch closed it");
            pthread_mutex_unlock(&d->lock);
            accept_peer(d, &p);
            break;
        case 6: {
            int small = 1;
            if (d->sock >= 0)
                setsockopt(d->sock, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
            break;
        }
        default:
            spec(&f);
            break;
        }
        check_queue(&kbd);
        check_queue(&tablet);
        if (kbd.count > INPUT_QUEUE_EVENTS / 2)
            input_flush(&kbd); /* the guest read them */
        if (tablet.count > INPUT_QUEUE_EVENTS / 2)
            input_flush(&tablet);
    }
    peer_read(&p);
    if (fz_log_end() > 2 * ops + 2)
        __builtin_trap(); /* hv-switch or the GPU can make us log without bound */
    if (p.fd >= 0)
        close(p.fd);
    if (d->sock >= 0)
        close(d->sock);
    if (d->surface_fd >= 0)
        close(d->surface_fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
    return 0;
}
