// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The display connection against a fake hv-switch: every message hv-vmm
 * sends is checked by hv-switch's own parser (hv/switch/proto.c); input
 * comes back to the callbacks; hv-switch restarting is survived.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "display.h"
#include "log.h"
#include "util.h"

static char dir[] = "/tmp/hv-test-display-XXXXXX";
static char path[100];
static struct disp_conn conn;

static struct {
    uint32_t code, pressed, x, y, buttons;
    int32_t dy;
    unsigned keys, pointers, wheels;
} got;

static void on_key(void *ctx, uint32_t code, bool pressed)
{
    (void)ctx;
    got.code = code, got.pressed = pressed, got.keys++;
}

static void on_pointer(void *ctx, uint32_t x, uint32_t y, uint32_t buttons)
{
    (void)ctx;
    got.x = x, got.y = y, got.buttons = buttons, got.pointers++;
}

static void on_wheel(void *ctx, int32_t dx, int32_t dy)
{
    (void)ctx, (void)dx;
    got.dy = dy, got.wheels++;
}

static int listen_at(void)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    unlink(path);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s, 4) == 0);
    return s;
}

static int accept_within(int l, int ms)
{
    struct pollfd p = {l, POLLIN, 0};
    if (poll(&p, 1, ms) != 1)
        return -1;
    return accept4(l, NULL, NULL, SOCK_CLOEXEC);
}

/* Receive one message as hv-switch does; returns its type (0 on timeout or refusal). */
static uint32_t expect(int c, struct disp_msg *m, int *fd)
{
    struct pollfd p = {c, POLLIN, 0};
    if (poll(&p, 1, 3000) != 1)
        return 0;
    uint8_t buf[DISP_MAX_MSG];
    union {
        char b[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr h = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
    ssize_t r = recvmsg(c, &h, MSG_CMSG_CLOEXEC);
    if (r <= 0)
        return 0;
    int nfds = 0;
    *fd = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&h); cm; cm = CMSG_NXTHDR(&h, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fd, CMSG_DATA(cm), sizeof(int));
        }
    }
    char err[256];
    if (disp_parse(buf, (size_t)r, nfds, m, err, sizeof(err)) < 0) {
        fprintf(stderr, "hv-switch would refuse: %s\n", err);
        return 0;
    }
    if (m->type == DISP_SCANOUT) {
        struct stat st;
        int seals = fcntl(*fd, F_GET_SEALS);
        CHECK(fstat(*fd, &st) == 0);
        struct disp_fdinfo fi = {S_ISREG(st.st_mode), (uint64_t)st.st_size,
                                 seals >= 0 && (seals & F_SEAL_SHRINK)};
        if (disp_check_scanout(&m->u.scanout, &fi, err, sizeof(err)) < 0) {
            fprintf(stderr, "hv-switch would refuse the scanout: %s\n", err);
            return 0;
        }
    }
    if (disp_conn_apply(&conn, m, err, sizeof(err)) < 0) {
        fprintf(stderr, "hv-switch would refuse: %s\n", err);
        return 0;
    }
    return m->type;
}

static void send_to(int c, const void *m, size_t len)
{
    CHECK(send(c, m, len, 0) == (ssize_t)len);
}

static bool wait_for(unsigned *counter, unsigned want)
{
    for (int i = 0; i < 300 && *counter < want; i++)
        usleep(10000);
    return *counter >= want;
}

static void test_parse(void)
{
    struct display_config c;
    char err[256];
    CHECK(display_parse("/run/s.sock", "work", &c, err, sizeof(err)) == 0);
    CHECK(!strcmp(c.socket, "/run/s.sock") && !strcmp(c.name, "work") && c.width == 1280 &&
          c.height == 800 && !c.uivm && c.slot == 0);
    CHECK(display_parse("/s,name=red vm,colour=ff0000,slot=3,uivm,size=1920x1080", NULL, &c, err,
                        sizeof(err)) == 0);
    CHECK(!strcmp(c.name, "red vm") && c.colour == 0xff0000 && c.slot == 3 && c.uivm &&
          c.width == 1920 && c.height == 1080);
    CHECK(display_parse("/s", NULL, &c, err, sizeof(err)) == 0 && !strcmp(c.name, "vm"));
    CHECK(c.gpu == DISPLAY_GPU_VIRTIO);
    CHECK(display_parse("/s,gpu=bochs", NULL, &c, err, sizeof(err)) == 0 &&
          c.gpu == DISPLAY_GPU_BOCHS);
    CHECK(display_parse("/s,gpu=bochs,gpu=virtio", NULL, &c, err, sizeof(err)) == 0 &&
          c.gpu == DISPLAY_GPU_VIRTIO);
    CHECK(display_parse("/s,gpu=vga", NULL, &c, err, sizeof(err)) < 0 &&
          strstr(err, "give virtio or bochs"));
    const char *bad[] = {"",
                         "/s,gpu=",
                         "/s,gpu",
                         ",name=x",
                         "/s,colour=red",
                         "/s,colour=1234567",
                         "/s,slot=10",
                         "/s,size=10x10",
                         "/s,size=5000x800",
                         "/s,size=800",
                         "/s,name= x",
                         "/s,name=",
                         "/s,bogus",
                         "/s,uivm=1",
                         "/s,name=0123456789012345678901234567890123"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err[0] = 0;
        CHECK(display_parse(bad[i], NULL, &c, err, sizeof(err)) < 0 && err[0]);
    }
}

static int make_surface(uint32_t w, uint32_t h)
{
    int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(ftruncate(fd, (off_t)w * h * 4) == 0);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    return fd;
}

static void test_connection(void)
{
    int l = listen_at();
    struct display_config cfg;
    char err[256];
    snprintf(err, sizeof(err), "%s,name=blue,colour=0000ff,slot=2", path);
    CHECK(display_parse(err, NULL, &cfg, err, sizeof(err)) == 0);
    struct display_input in = {NULL, on_key, on_pointer, on_wheel, NULL};
    struct display *d = display_start(&cfg, &in);
    CHECK(d != NULL);

    int c = accept_within(l, 3000), fd;
    struct disp_msg m;
    CHECK(c >= 0 && expect(c, &m, &fd) == DISP_HELLO);
    CHECK(!strcmp(m.u.hello.name, "blue") && m.u.hello.colour == 0xff && m.u.hello.slot == 2 &&
          m.u.hello.version == DISP_VERSION && m.u.hello.flags == 0);
    struct disp_welcome w = {DISP_WELCOME, DISP_VERSION, 2};
    send_to(c, &w, sizeof(w));
    for (int i = 0; i < 300 && !display_connected(d); i++)
        usleep(10000);
    CHECK(display_connected(d));

    /* The scanout and its fd, then damage. */
    int sfd = make_surface(64, 48);
    display_scanout(d, sfd, 64, 48, 256);
    CHECK(expect(c, &m, &fd) == DISP_SCANOUT && m.u.scanout.width == 64 && fd >= 0);
    close(fd);
    display_damage(d, 1, 2, 3, 4);
    CHECK(expect(c, &m, &fd) == DISP_DAMAGE && m.u.damage.rect.x == 1 && m.u.damage.rect.h == 4);
    /* A picture further into its memfd (the Bochs display panned): the offset goes along. */
    int big = make_surface(64, 48 + 64);
    display_scanout_at(d, big, 8192, 64, 48, 256);
    CHECK(expect(c, &m, &fd) == DISP_SCANOUT && m.u.scanout.offset == 8192 && fd >= 0);
    close(fd);
    close(big);
    display_scanout(d, sfd, 64, 48, 256);
    CHECK(expect(c, &m, &fd) == DISP_SCANOUT && m.u.scanout.offset == 0 && fd >= 0);
    close(fd);

    /* Input comes back. */
    struct disp_key k = {DISP_KEY, 30, 1};
    struct disp_pointer p = {DISP_POINTER, 100, 200, 1};
    struct disp_wheel wh = {DISP_WHEEL, 0, -2};
    struct disp_focus f = {DISP_FOCUS, 1};
    send_to(c, &f, sizeof(f));
    send_to(c, &k, sizeof(k));
    send_to(c, &p, sizeof(p));
    send_to(c, &wh, sizeof(wh));
    CHECK(wait_for(&got.wheels, 1) && got.keys == 1 && got.code == 30 && got.pressed == 1);
    CHECK(got.pointers == 1 && got.x == 100 && got.y == 200 && got.buttons == 1 && got.dy == -2);
    uint8_t junk[7] = {0x82};
    send_to(c, junk, sizeof(junk)); /* wrong length: ignored */

    /* Blank, then drawing again brings the surface back (never DAMAGE without one). */
    display_blank(d);
    CHECK(expect(c, &m, &fd) == DISP_BLANK);
    display_damage(d, 0, 0, 1, 1);
    CHECK(expect(c, &m, &fd) == DISP_SCANOUT);
    close(fd);

    /* hv-switch restarts: hv-vmm says HELLO and SCANOUT again. */
    close(c);
    close(l);
    l = listen_at();
    memset(&conn, 0, sizeof(conn));
    c = accept_within(l, 3000);
    CHECK(c >= 0 && expect(c, &m, &fd) == DISP_HELLO);
    CHECK(expect(c, &m, &fd) == DISP_SCANOUT && m.u.scanout.height == 48);
    close(fd);
    display_damage(d, 0, 0, 64, 48);
    CHECK(expect(c, &m, &fd) == DISP_DAMAGE);

    display_stop(d);
    close(sfd);
    close(c);
    close(l);
    unlink(path);
}

int main(void)
{
    hv_log_init("test");
    hv_log_set_level(HV_LOG_ERROR);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/switch.sock", dir);
    test_parse();
    test_connection();
    rmdir(dir);
    CHECK_DONE();
}
