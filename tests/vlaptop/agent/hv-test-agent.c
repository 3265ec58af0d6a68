/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-test-agent: runs inside the virtual laptop and serves the test
 * harness (tests/vlaptop/vlaptop.py) over a virtio-serial port.
 *
 * Framing (all integers little endian):
 *
 *   header:  u32 magic "HVTA" | u32 type | u32 payload length
 *   payload: length bytes, by type:
 *
 *   HELLO   (agent -> host)  version text; sent each time the port opens
 *   PING    (host -> agent)  empty; answered by PONG
 *   EXEC    (host -> agent)  u32 timeout_ms | u32 stdin_len | stdin | command
 *   RESULT  (agent -> host)  i32 status | u32 flags | u32 out_len | out | err
 *                            status >= 0: exit code; < 0: killed by -status
 *                            flags: 1 timed out, 2 output truncated
 *   PUT     (host -> agent)  u32 mode | u32 path_len | path | data
 *   GET     (host -> agent)  path
 *   OK      (agent -> host)  data (the file for GET, empty otherwise)
 *   ERROR   (agent -> host)  message text
 *
 * One request is served at a time. Commands run as "/bin/sh -c COMMAND" in
 * their own session; on timeout the whole session is killed.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "hv-test-agent 1"
#define FRAME_MAGIC   0x41545648u /* "HVTA" */
#define MAX_PAYLOAD   (512u << 20)
#define MAX_OUTPUT    (64u << 20)
#define DRAIN_MS      300

enum frame_type {
    T_HELLO = 1,
    T_PING = 2,
    T_PONG = 3,
    T_EXEC = 4,
    T_RESULT = 5,
    T_PUT = 6,
    T_GET = 7,
    T_OK = 8,
    T_ERROR = 9,
};

enum result_flags {
    F_TIMED_OUT = 1,
    F_TRUNCATED = 2,
};

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

struct frame {
    uint32_t type;
    struct buf payload;
};

/* ---- small helpers ---------------------------------------------------- */

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logmsg(const char *fmt, ...)
{
    va_list ap;

    fputs("hv-test-agent: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool buf_reserve(struct buf *b, size_t extra)
{
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 4096;
    uint8_t *p;

    if (want <= b->cap)
        return true;
    while (cap < want)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static bool buf_append(struct buf *b, const void *data, size_t len)
{
    if (!buf_reserve(b, len))
        return false;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return true;
}

static bool buf_put_u32(struct buf *b, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    return buf_append(b, le, sizeof(le));
}

static void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A cursor over a received payload: every read is bounds-checked. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static bool cur_u32(struct cursor *c, uint32_t *v)
{
    if (c->left < 4)
        return false;
    *v = get_u32(c->p);
    c->p += 4;
    c->left -= 4;
    return true;
}

static bool cur_bytes(struct cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n)
        return false;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

/* Copies n bytes into a fresh NUL-terminated string; NULL if they hold a NUL. */
static char *dup_text(const uint8_t *p, size_t n)
{
    char *s;

    if (memchr(p, '\0', n))
        return NULL;
    s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- the channel ------------------------------------------------------ */

static bool read_full(int fd, void *data, size_t len)
{
    uint8_t *p = data;

    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_full(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};

            poll(&pfd, 1, 100);
            continue;
        }
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_frame(int fd, uint32_t type, const void *payload, size_t len)
{
    struct buf hdr = {0};
    bool ok;

    ok = buf_put_u32(&hdr, FRAME_MAGIC) && buf_put_u32(&hdr, type) &&
         buf_put_u32(&hdr, (uint32_t)len) && write_full(fd, hdr.data, hdr.len) &&
         write_full(fd, payload, len);
    buf_free(&hdr);
    return ok;
}

static bool send_text(int fd, uint32_t type, const char *text)
{
    return send_frame(fd, type, text, strlen(text));
}

static bool send_error(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool send_error(int fd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return send_text(fd, T_ERROR, msg);
}

/* Reads one frame. Returns false on EOF, I/O error or a malformed header. */
static bool recv_frame(int fd, struct frame *f)
{
    uint8_t hdr[12];
    uint32_t len;

    if (!read_full(fd, hdr, sizeof(hdr)))
        return false;
    if (get_u32(hdr) != FRAME_MAGIC) {
        logmsg("bad frame magic, resynchronising");
        return false;
    }
    f->type = get_u32(hdr + 4);
    len = get_u32(hdr + 8);
    if (len > MAX_PAYLOAD) {
        logmsg("frame of %u bytes is too large", len);
        return false;
    }
    f->payload.len = 0;
    if (!buf_reserve(&f->payload, len))
        return false;
    if (!read_full(fd, f->payload.data, len))
        return false;
    f->payload.len = len;
    return true;
}

/* ---- EXEC ------------------------------------------------------------- */

struct child {
    pid_t pid;
    int in_fd;
    int out_fd;
    int err_fd;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void child_exec(const char *cmd, int in[2], int out[2], int err[2])
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

static bool spawn(const char *cmd, struct child *c)
{
    int in[2], out[2], err[2];

    if (pipe2(in, O_CLOEXEC) < 0)
        return false;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return false;
    }
    c->pid = fork();
    if (c->pid == 0)
        child_exec(cmd, in, out, err);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    c->in_fd = in[1];
    c->out_fd = out[0];
    c->err_fd = err[0];
    if (c->pid < 0) {
        close_fd(&c->in_fd);
        close_fd(&c->out_fd);
        close_fd(&c->err_fd);
        return false;
    }
    fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
    return true;
}

/* Reads what is available on *fd into b (up to MAX_OUTPUT); closes it on EOF. */
static void pump_out(int *fd, struct buf *b, uint32_t *flags)
{
    uint8_t chunk[65536];
    ssize_t n = read(*fd, chunk, sizeof(chunk));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    if (b->len + (size_t)n > MAX_OUTPUT) {
        *flags |= F_TRUNCATED;
        return;
    }
    if (!buf_append(b, chunk, (size_t)n))
        *flags |= F_TRUNCATED;
}

static void pump_in(int *fd, struct cursor *in)
{
    ssize_t n = write(*fd, in->p, in->left);

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    in->p += n;
    in->left -= (size_t)n;
    if (in->left == 0)
        close_fd(fd);
}

static int status_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return -WTERMSIG(wstatus);
    return -1;
}

struct run_state {
    struct child c;
    struct cursor in;
    struct buf out;
    struct buf err;
    uint32_t flags;
    bool exited;
    int wstatus;
    int64_t deadline;
    int64_t drain_until;
};

/* Waits for I/O on the child's pipes for at most timeout_ms. */
static void poll_child(struct run_state *s, int timeout_ms)
{
    struct pollfd pfd[3];
    int n = 0;

    if (s->c.in_fd >= 0)
        pfd[n++] = (struct pollfd){.fd = s->c.in_fd, .events = POLLOUT};
    if (s->c.out_fd >= 0)
        pfd[n++] = (struct pollfd){.fd = s->c.out_fd, .events = POLLIN};
    if (s->c.err_fd >= 0)
        pfd[n++] = (struct pollfd){.fd = s->c.err_fd, .events = POLLIN};
    if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
        return;
    for (int i = 0; i < n; i++) {
        if (!pfd[i].revents)
            continue;
        if (pfd[i].fd == s->c.in_fd)
            pump_in(&s->c.in_fd, &s->in);
        else if (pfd[i].fd == s->c.out_fd)
            pump_out(&s->c.out_fd, &s->out, &s->flags);
        else
            pump_out(&s->c.err_fd, &s->err, &s->flags);
    }
}

static void check_exit(struct run_state *s)
{
    if (s->exited || waitpid(s->c.pid, &s->wstatus, WNOHANG) != s->c.pid)
        return;
    s->exited = true;
    /* Background processes may hold the pipes open: read on only briefly. */
    s->drain_until = now_ms() + DRAIN_MS;
}

static void check_timeout(struct run_state *s)
{
    if (s->exited || now_ms() < s->deadline)
        return;
    s->flags |= F_TIMED_OUT;
    kill(-s->c.pid, SIGKILL);
    kill(s->c.pid, SIGKILL);
    while (waitpid(s->c.pid, &s->wstatus, 0) < 0 && errno == EINTR)
        ;
    s->exited = true;
    s->drain_until = now_ms() + DRAIN_MS;
}

static bool run_done(const struct run_state *s)
{
    if (!s->exited)
        return false;
    if (s->c.out_fd < 0 && s->c.err_fd < 0)
        return true;
    return now_ms() >= s->drain_until;
}

static void run_command(uint32_t timeout_ms, struct cursor stdin_data, struct run_state *s)
{
    s->in = stdin_data;
    s->deadline = now_ms() + timeout_ms;
    if (s->in.left == 0)
        close_fd(&s->c.in_fd);
    while (!run_done(s)) {
        poll_child(s, 50);
        check_exit(s);
        check_timeout(s);
    }
    close_fd(&s->c.in_fd);
    close_fd(&s->c.out_fd);
    close_fd(&s->c.err_fd);
}

static bool send_result(int fd, struct run_state *s)
{
    struct buf p = {0};
    bool ok;

    ok = buf_put_u32(&p, (uint32_t)status_code(s->wstatus)) && buf_put_u32(&p, s->flags) &&
         buf_put_u32(&p, (uint32_t)s->out.len) && buf_append(&p, s->out.data, s->out.len) &&
         buf_append(&p, s->err.data, s->err.len);
    ok = ok ? send_frame(fd, T_RESULT, p.data, p.len) : send_error(fd, "out of memory");
    buf_free(&p);
    return ok;
}

static bool handle_exec(int fd, const struct buf *payload)
{
    struct cursor c = {payload->data, payload->len};
    struct run_state s = {.c = {-1, -1, -1, -1}};
    const uint8_t *stdin_bytes;
    uint32_t timeout_ms, stdin_len;
    char *cmd;
    bool ok;

    if (!cur_u32(&c, &timeout_ms) || !cur_u32(&c, &stdin_len) ||
        !cur_bytes(&c, stdin_len, &stdin_bytes))
        return send_error(fd, "malformed EXEC request");
    cmd = dup_text(c.p, c.left);
    if (!cmd)
        return send_error(fd, "command contains a NUL byte");
    if (!spawn(cmd, &s.c)) {
        free(cmd);
        return send_error(fd, "cannot start /bin/sh: %s", strerror(errno));
    }
    free(cmd);
    run_command(timeout_ms, (struct cursor){stdin_bytes, stdin_len}, &s);
    ok = send_result(fd, &s);
    buf_free(&s.out);
    buf_free(&s.err);
    return ok;
}

/* ---- PUT / GET -------------------------------------------------------- */

/* mkdir -p of the directory part of path. */
static void make_parents(const char *path)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);

    if (len >= sizeof(tmp))
        return;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(tmp, 0755);
        *p = '/';
    }
}

static int write_file(const char *path, uint32_t mode, const uint8_t *data, size_t len)
{
    int fd, saved;

    make_parents(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)(mode & 07777));
    if (fd < 0)
        return -errno;
    if (!write_full(fd, data, len)) {
        saved = errno ? errno : EIO;
        close(fd);
        return -saved;
    }
    fchmod(fd, (mode_t)(mode & 07777)); /* may fail on device nodes: fine */
    if (close(fd) < 0)
        return -errno;
    return 0;
}

static bool handle_put(int fd, const struct buf *payload)
{
    struct cursor c = {payload->data, payload->len};
    const uint8_t *path_bytes;
    uint32_t mode, path_len;
    char *path;
    int rc;

    if (!cur_u32(&c, &mode) || !cur_u32(&c, &path_len) || !cur_bytes(&c, path_len, &path_bytes))
        return send_error(fd, "malformed PUT request");
    path = dup_text(path_bytes, path_len);
    if (!path || path[0] != '/') {
        free(path);
        return send_error(fd, "PUT needs an absolute path");
    }
    rc = write_file(path, mode, c.p, c.left);
    if (rc < 0) {
        bool ok = send_error(fd, "cannot write %s: %s", path, strerror(-rc));

        free(path);
        return ok;
    }
    free(path);
    return send_frame(fd, T_OK, NULL, 0);
}

static int read_file(const char *path, struct buf *b)
{
    uint8_t chunk[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || b->len + (size_t)n > MAX_PAYLOAD || !buf_append(b, chunk, (size_t)n)) {
            int saved = n < 0 ? errno : EFBIG;

            close(fd);
            return -saved;
        }
    }
    close(fd);
    return 0;
}

static bool handle_get(int fd, const struct buf *payload)
{
    struct buf data = {0};
    char *path = dup_text(payload->data, payload->len);
    bool ok;
    int rc;

    if (!path || path[0] != '/') {
        free(path);
        return send_error(fd, "GET needs an absolute path");
    }
    rc = read_file(path, &data);
    if (rc < 0)
        ok = send_error(fd, "cannot read %s: %s", path, strerror(-rc));
    else
        ok = send_frame(fd, T_OK, data.data, data.len);
    free(path);
    buf_free(&data);
    return ok;
}

/* ---- the port --------------------------------------------------------- */

/* Finds /dev/vportNpM whose /sys/class/virtio-ports name is `name`. */
static bool find_port(const char *name, char *dev, size_t devlen)
{
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *e;
    bool found = false;

    if (!d)
        return false;
    while (!found && (e = readdir(d))) {
        char path[512], got[256] = "";
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
        f = fopen(path, "re");
        if (!f)
            continue;
        if (fgets(got, sizeof(got), f))
            got[strcspn(got, "\n")] = '\0';
        fclose(f);
        if (strcmp(got, name) == 0) {
            snprintf(dev, devlen, "/dev/%s", e->d_name);
            found = true;
        }
    }
    closedir(d);
    return found;
}

static int open_port(const char *device, const char *name)
{
    char dev[300];
    bool warned = false;

    for (;;) {
        int fd;

        if (device)
            snprintf(dev, sizeof(dev), "%s", device);
        else if (!find_port(name, dev, sizeof(dev)))
            dev[0] = '\0';
        fd = dev[0] ? open(dev, O_RDWR | O_CLOEXEC) : -1;
        if (fd >= 0)
            return fd;
        if (!warned)
            logmsg("waiting for port %s", device ? device : name);
        warned = true;
        sleep_ms(200);
    }
}

static bool dispatch(int fd, const struct frame *f)
{
    switch (f->type) {
    case T_PING:
        return send_frame(fd, T_PONG, NULL, 0);
    case T_EXEC:
        return handle_exec(fd, &f->payload);
    case T_PUT:
        return handle_put(fd, &f->payload);
    case T_GET:
        return handle_get(fd, &f->payload);
    default:
        return send_error(fd, "unknown request type %u", f->type);
    }
}

static void serve(int fd)
{
    struct frame f = {0};

    if (!send_text(fd, T_HELLO, AGENT_VERSION))
        return;
    while (recv_frame(fd, &f)) {
        if (!dispatch(fd, &f))
            break;
    }
    buf_free(&f.payload);
}

static void usage(void)
{
    fprintf(stderr, "usage: hv-test-agent [--port NAME | --device PATH]\n"
                    "Serves the hv test harness on a virtio-serial port "
                    "(default name org.hv.agent).\n");
}

int main(int argc, char **argv)
{
    const char *name = "org.hv.agent";
    const char *device = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            device = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = open_port(device, name);

        logmsg("serving on %s", device ? device : name);
        serve(fd);
        close(fd);
        /* The host went away (or sent garbage): start over on a fresh open. */
        sleep_ms(200);
    }
}
