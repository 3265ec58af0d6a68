/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A stand-in for hv-vmm in hvd's tests: takes hv-vmm's options, writes
 * "hv-guest: hello" to the console file and answers the control socket
 * (query, devices, pause, resume, stop → exit 0, kill → exit 4). With --cmdline
 * containing "fake-reboot" it exits 3 (a guest reboot) once after 1 s, and
 * with "fake-ignore-stop" it ignores the power button.
 *
 * "balloon" takes a target between hv-vmm's floor and --memory and "query"
 * reports it (memory, memory_target, memory_actual, balloon_driver): the
 * fake guest's actual follows the target at once, or never with --cmdline
 * "fake-balloon-stuck" (a guest whose driver ignores the balloon).
 *
 * "save" (docs/vmm-control.md) writes a small file with the fake's magic into
 * the file passed with the request (SCM_RIGHTS) or path.part renamed to
 * path, replies and, with then=exit, exits 6. --cmdline "fake-save-fail"
 * makes it refuse, "fake-save-slow" write 4 MiB over about a second.
 * --restore PATH reads that file: without the magic it exits 1 with
 * "cannot restore from PATH: ..." on stderr, else writes "fake-vmm:
 * restored from PATH" to the console and runs on.
 *
 * With --display SOCKET,name=N,colour=RRGGBB[,slot=K][,uivm] it is a display
 * producer like hv-vmm (docs/display-protocol.md): a 640x400 picture of its
 * colour on hv-switch, connecting again every 200 ms while hv-switch is not
 * there, and the focus and keys it receives written to the console file
 * ("display: focus 1", "display: key 30 press").
 */
#include "jsonproto.h"
#include "memfloor.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
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

#define MAX(a, b)  ((a) > (b) ? (a) : (b))
#define FAKE_MAGIC "FAKEVMM-SAVE1\n"
#define FAKE_W     640
#define FAKE_H     400

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct display {
    char socket[108];
    struct disp_hello hello;
    int fd; /* -1 while not connected */
    FILE *console;
};

static void console_line(struct display *dp, const char *line)
{
    if (dp->console) {
        fprintf(dp->console, "display: %s\n", line);
        fflush(dp->console);
    }
}

/* SOCKET,name=N,colour=RRGGBB,slot=K,uivm → dp; false when it is not that. */
static bool parse_display(const char *arg, struct display *dp)
{
    char *copy = strdup(arg), *save = NULL;
    char *tok = strtok_r(copy, ",", &save);

    dp->hello = (struct disp_hello){DISP_HELLO, DISP_VERSION, 0, 0, 0x808080, "fake"};
    snprintf(dp->socket, sizeof(dp->socket), "%s", tok ? tok : "");
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strncmp(tok, "name=", 5))
            snprintf(dp->hello.name, sizeof(dp->hello.name), "%s", tok + 5);
        else if (!strncmp(tok, "colour=", 7))
            dp->hello.colour = (uint32_t)strtoul(tok + 7, NULL, 16) & 0xffffff;
        else if (!strncmp(tok, "slot=", 5))
            dp->hello.slot = (uint32_t)atoi(tok + 5);
        else if (!strcmp(tok, "uivm"))
            dp->hello.flags |= DISP_HELLO_UIVM;
    }
    free(copy);
    dp->fd = -1;
    return dp->socket[0] != '\0';
}

/* Connects, says hello and hands over a picture of the VM's colour. */
static void display_connect(struct display *dp)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct disp_scanout so = {DISP_SCANOUT, FAKE_W, FAKE_H, FAKE_W * 4, DISP_FORMAT_XRGB8888, 0, 0};
    size_t size = (size_t)FAKE_W * 4 * FAKE_H;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    int mfd = memfd_create("fake-vmm-display", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    uint32_t *px;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", dp->socket);
    if (s < 0 || mfd < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        ftruncate(mfd, (off_t)size) < 0 || fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
        goto fail;
    px = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (px == MAP_FAILED)
        goto fail;
    for (size_t i = 0; i < size / 4; i++)
        px[i] = dp->hello.colour;
    munmap(px, size);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl = {0};
    struct iovec iov = {&so, sizeof(so)};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
    if (send(s, &dp->hello, sizeof(dp->hello), MSG_NOSIGNAL) != sizeof(dp->hello) ||
        sendmsg(s, &mh, MSG_NOSIGNAL) != sizeof(so))
        goto fail;
    close(mfd);
    dp->fd = s;
    console_line(dp, "connected");
    return;
fail:
    if (s >= 0)
        close(s);
    if (mfd >= 0)
        close(mfd);
}

/* Logs what hv-switch sends; reconnects later when it goes away. */
static void display_read(struct display *dp)
{
    uint8_t buf[DISP_MAX_MSG];
    char line[64];
    ssize_t n = recv(dp->fd, buf, sizeof(buf), MSG_DONTWAIT);
    uint32_t type;

    if (n < 0 && errno == EAGAIN)
        return;
    if (n < 4) {
        close(dp->fd);
        dp->fd = -1;
        console_line(dp, "disconnected");
        return;
    }
    memcpy(&type, buf, 4);
    if (type == DISP_FOCUS && n == sizeof(struct disp_focus))
        snprintf(line, sizeof(line), "focus %u", ((struct disp_focus *)buf)->focused);
    else if (type == DISP_KEY && n == sizeof(struct disp_key))
        snprintf(line, sizeof(line), "key %u %s", ((struct disp_key *)buf)->code,
                 ((struct disp_key *)buf)->pressed ? "press" : "release");
    else if (type == DISP_WELCOME && n == sizeof(struct disp_welcome))
        snprintf(line, sizeof(line), "welcome slot %d", (int)((struct disp_welcome *)buf)->slot);
    else
        return;
    console_line(dp, line);
}

/* One request line, and a file passed with it (*passed, else left as it was). */
static int recv_request(int fd, struct jp_reader *rd, struct json_object **req, int *passed)
{
    for (;;) {
        char *line;
        size_t len;
        const char *why;
        enum jp_next next = jp_reader_next(rd, &line, &len);
        if (next == JP_LINE) {
            *req = jp_parse_object(line, len, &why);
            if (*req)
                return 1;
            continue;
        }
        if (next != JP_NONE)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        char buf[4096];
        union {
            struct cmsghdr h;
            char bytes[CMSG_SPACE(sizeof(int))];
        } cbuf;
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf.bytes,
                            .msg_controllen = sizeof(cbuf.bytes)};
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n <= 0)
            return 0;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            memcpy(passed, CMSG_DATA(cm), sizeof(int));
        if (jp_reader_feed(rd, buf, (size_t)n) < 0)
            return -1;
    }
}

/* "save": the fake's state into the passed file or path; bytes written, or -1 with why. */
static long long fake_save(struct json_object *req, int *passed, const char *name, bool slow,
                           const char **why)
{
    struct json_object *o;
    const char *path =
        json_object_object_get_ex(req, "path", &o) ? json_object_get_string(o) : NULL;
    char part[4096];
    int fd = *passed;
    if (fd < 0 && !path) {
        *why = "give \"path\", or pass an open file with the request (SCM_RIGHTS)";
        return -1;
    }
    if (fd < 0) {
        snprintf(part, sizeof(part), "%s.part", path);
        fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            *why = "cannot create the part file";
            return -1;
        }
    }
    long long bytes = 0;
    char head[256];
    int n = snprintf(head, sizeof(head), FAKE_MAGIC "name=%s\n", name);
    bool ok = write(fd, head, (size_t)n) == n;
    bytes += n;
    static char chunk[256 * 1024];
    memset(chunk, 0x5a, sizeof(chunk));
    for (int i = 0; ok && slow && i < 16; i++) { /* 4 MiB, 16 steps over ~1 s */
        ok = write(fd, chunk, sizeof(chunk)) == (ssize_t)sizeof(chunk);
        bytes += (long long)sizeof(chunk);
        usleep(60 * 1000);
    }
    ok = ok && fsync(fd) == 0;
    close(fd);
    *passed = -1;
    if (path && (!ok || rename(part, path) < 0)) {
        unlink(part);
        ok = false;
    }
    if (!ok) {
        *why = "cannot write the save file";
        return -1;
    }
    return bytes;
}

/* --restore PATH: 0 when it is a fake save file, else -1 with the reason on stderr. */
static int fake_restore(const char *path, const char *console)
{
    char buf[sizeof(FAKE_MAGIC)] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "fake-vmm: cannot restore from %s: %s\n", path, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n != (ssize_t)sizeof(buf) - 1 || memcmp(buf, FAKE_MAGIC, sizeof(buf) - 1) != 0) {
        fprintf(stderr, "fake-vmm: cannot restore from %s: not a save file (bad magic)\n", path);
        return -1;
    }
    if (console && strncmp(console, "file:", 5) == 0) {
        FILE *f = fopen(console + 5, "a");
        if (f) {
            fprintf(f, "fake-vmm: restored from %s\n", path);
            fclose(f);
        }
    }
    return 0;
}

/*
 * "devices": one PCI device per --disk (virtio-blkN) and for --net
 * (virtio-net), placed as hv-vmm places them: a --pci-slot NAME=SLOT where
 * it says, the others in the lowest slot that is neither used nor kept.
 */
#define FAKE_MAX_DEVS 32
static char dev_names[FAKE_MAX_DEVS][32];
static int dev_slots[FAKE_MAX_DEVS];
static int nr_devs;

static void add_device(const char *name)
{
    if (nr_devs < FAKE_MAX_DEVS)
        snprintf(dev_names[nr_devs++], sizeof(dev_names[0]), "%s", name);
}

static void place_devices(char **slot_args, int nr_slot_args)
{
    bool used[32] = {true}; /* slot 0: the host bridge */
    for (int i = 0; i < nr_slot_args; i++) {
        const char *eq = strrchr(slot_args[i], '=');
        if (eq)
            used[atoi(eq + 1) & 31] = true;
    }
    for (int d = 0; d < nr_devs; d++) {
        dev_slots[d] = -1;
        for (int i = 0; i < nr_slot_args; i++) {
            const char *eq = strrchr(slot_args[i], '=');
            if (eq && strncmp(slot_args[i], dev_names[d], (size_t)(eq - slot_args[i])) == 0 &&
                strlen(dev_names[d]) == (size_t)(eq - slot_args[i]))
                dev_slots[d] = atoi(eq + 1);
        }
        for (int s = 1; dev_slots[d] < 0 && s < 32; s++)
            if (!used[s]) {
                used[s] = true;
                dev_slots[d] = s;
            }
    }
}

static void devices_reply(struct json_object *reply)
{
    struct json_object *list = json_object_new_array();
    for (int d = 0; d < nr_devs; d++) {
        struct json_object *o = json_object_new_object();
        char pci[16];
        snprintf(pci, sizeof(pci), "00:%02x.0", (unsigned)dev_slots[d]);
        json_object_object_add(o, "id", json_object_new_string(dev_names[d]));
        json_object_object_add(o, "pci", json_object_new_string(pci));
        json_object_object_add(o, "quiesced", json_object_new_boolean(false));
        json_object_array_add(list, o);
    }
    json_object_object_add(reply, "devices", list);
}

int main(int argc, char **argv)
{
    char *slot_args[FAKE_MAX_DEVS];
    int nr_slot_args = 0, nr_disks = 0;
    bool net = false;
    const char *control = NULL, *console = NULL, *cmdline = "", *restore = NULL, *name = "";
    unsigned long long memory = 512ull << 20, target, actual;
    struct display dp = {.fd = -1};
    bool display = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--instant-on") == 0) { /* the one option without a value */
            i--;
            continue;
        }
        if (strcmp(argv[i], "--control") == 0)
            control = argv[i + 1];
        else if (strcmp(argv[i], "--display") == 0)
            display = parse_display(argv[i + 1], &dp);
        else if (strcmp(argv[i], "--console") == 0)
            console = argv[i + 1];
        else if (strcmp(argv[i], "--cmdline") == 0)
            cmdline = argv[i + 1];
        else if (strcmp(argv[i], "--restore") == 0)
            restore = argv[i + 1];
        else if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "--memory") == 0)
            memory = strtoull(argv[i + 1], NULL, 10) << 20; /* hvd passes NM */
        else if (strcmp(argv[i], "--disk") == 0) {
            char id[32];
            snprintf(id, sizeof(id), "virtio-blk%d", nr_disks++);
            add_device(id);
        } else if (strcmp(argv[i], "--net") == 0)
            net = true;
        else if (strcmp(argv[i], "--pci-slot") == 0 && nr_slot_args < FAKE_MAX_DEVS)
            slot_args[nr_slot_args++] = argv[i + 1];
    }
    if (net)
        add_device("virtio-net");
    place_devices(slot_args, nr_slot_args);
    if (!control) {
        fprintf(stderr, "fake-vmm: --control is required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* as hv-vmm: a client gone before its reply does not end the VM */
    if (restore && fake_restore(restore, console) < 0)
        return 1;
    if (!restore && console && strncmp(console, "file:", 5) == 0) {
        FILE *f = fopen(console + 5, "a");
        if (f) {
            fprintf(f, "fake kernel booting\nhv-guest: hello\n");
            fclose(f);
        }
    }
    if (display && console && strncmp(console, "file:", 5) == 0)
        dp.console = fopen(console + 5, "a");
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control);
    unlink(control);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0) {
        fprintf(stderr, "fake-vmm: cannot listen on %s: %s\n", control, strerror(errno));
        return 1;
    }
    bool paused = false, ignore_stop = strstr(cmdline, "fake-ignore-stop") != NULL;
    bool balloon_stuck = strstr(cmdline, "fake-balloon-stuck") != NULL;
    target = actual = memory;
    int reboot_ms = strstr(cmdline, "fake-reboot") ? 1000 : -1;
    if (reboot_ms > 0 && getenv("FAKE_VMM_REBOOTED_FLAG") &&
        access(getenv("FAKE_VMM_REBOOTED_FLAG"), F_OK) == 0)
        reboot_ms = -1;
    for (;;) {
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = dp.fd, .events = POLLIN}};
        if (display && dp.fd < 0)
            display_connect(&dp);
        p[1].fd = dp.fd;
        int timeout = reboot_ms;
        if (display && dp.fd < 0 && (timeout < 0 || timeout > 200))
            timeout = 200;
        long long t0 = now_ms();
        int r = poll(p, display ? 2 : 1, timeout);
        if (reboot_ms >= 0)
            reboot_ms = (int)MAX(0, reboot_ms - (now_ms() - t0));
        if (display && p[1].revents)
            display_read(&dp);
        if (reboot_ms == 0) {
            if (getenv("FAKE_VMM_REBOOTED_FLAG"))
                fclose(fopen(getenv("FAKE_VMM_REBOOTED_FLAG"), "w"));
            _exit(3);
        }
        if (r <= 0 || !(p[0].revents & POLLIN))
            continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct jp_reader rd;
        jp_reader_init(&rd, JP_MAX_MESSAGE);
        struct json_object *req;
        int exit_code = -1, passed = -1;
        while (recv_request(fd, &rd, &req, &passed) == 1) {
            struct json_object *c, *reply = json_object_new_object();
            const char *cmd =
                json_object_object_get_ex(req, "cmd", &c) ? json_object_get_string(c) : "";
            bool ok = true;
            if (strcmp(cmd, "query") == 0) {
                json_object_object_add(reply, "state",
                                       json_object_new_string(paused ? "paused" : "running"));
                json_object_object_add(reply, "vcpus", json_object_new_int(1));
                json_object_object_add(reply, "memory", json_object_new_int64((int64_t)memory));
                json_object_object_add(reply, "memory_target",
                                       json_object_new_int64((int64_t)target));
                json_object_object_add(reply, "memory_actual",
                                       json_object_new_int64((int64_t)actual));
                json_object_object_add(reply, "balloon", json_object_new_boolean(true));
                json_object_object_add(reply, "balloon_driver", json_object_new_boolean(true));
            } else if (strcmp(cmd, "balloon") == 0) {
                struct json_object *t;
                long long want = json_object_object_get_ex(req, "target", &t) &&
                                         json_object_is_type(t, json_type_int)
                                     ? json_object_get_int64(t)
                                     : -1;
                ok = want >= (long long)hv_memory_floor(memory) && want <= (long long)memory;
                if (ok) {
                    target = (unsigned long long)want & ~4095ull;
                    if (!balloon_stuck)
                        actual = target;
                    json_object_object_add(reply, "memory_target",
                                           json_object_new_int64((int64_t)target));
                    json_object_object_add(reply, "memory_actual",
                                           json_object_new_int64((int64_t)actual));
                    json_object_object_add(reply, "balloon_driver", json_object_new_boolean(true));
                } else {
                    json_object_object_add(reply, "error",
                                           json_object_new_string("target out of range (fake)"));
                }
            } else if (strcmp(cmd, "devices") == 0) {
                devices_reply(reply);
            } else if (strcmp(cmd, "pause") == 0) {
                paused = true;
            } else if (strcmp(cmd, "resume") == 0) {
                paused = false;
            } else if (strcmp(cmd, "stop") == 0) {
                if (!ignore_stop)
                    exit_code = 0;
            } else if (strcmp(cmd, "kill") == 0) {
                exit_code = 4;
            } else if (strcmp(cmd, "save") == 0) {
                const char *err = "the device fake0 cannot be saved (fake-save-fail)";
                long long bytes = strstr(cmdline, "fake-save-fail")
                                      ? -1
                                      : fake_save(req, &passed, name,
                                                  strstr(cmdline, "fake-save-slow") != NULL, &err);
                struct json_object *then;
                ok = bytes >= 0;
                if (ok) {
                    json_object_object_add(reply, "bytes", json_object_new_int64(bytes));
                    json_object_object_add(reply, "ms", json_object_new_int(1));
                    if (!json_object_object_get_ex(req, "then", &then) ||
                        strcmp(json_object_get_string(then), "exit") == 0)
                        exit_code = 6;
                } else {
                    json_object_object_add(reply, "error", json_object_new_string(err));
                }
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
        if (passed >= 0)
            close(passed);
        close(fd);
    }
}
