/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk jobs (job.h): each step is a child process in its own process group,
 * its stdout (progress) and stderr (the error text) read through
 * non-blocking pipes, its end seen through a pidfd, all on hvd's sd-event
 * loop. The jobs are a list private to this file: hvd has one loop and one
 * images directory.
 */
#include "job.h"

#include "log.h"
#include "progress.h"
#include "vmdef.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STEPS_MAX     4
#define ERR_MAX       2048 /* stderr kept for the error message */
#define MESSAGE_ERR   300  /* of which the message shows at most this much */
#define STOP_WAIT_MS  3000 /* at shutdown: SIGTERM, then SIGKILL after this */
#define PROGRESS_STEP 0.01 /* smallest change worth an event */

struct step {
    char **argv;
    bool progress;
    char *code, *prefix, *suffix;
};

struct job {
    struct job *next;
    struct hvd *d;
    char *op, *name, *path, *tmp, *source_path, *source;
    struct step steps[STEPS_MAX];
    unsigned nsteps, cur;
    pid_t pid;
    int pidfd, out_fd, err_fd;
    sd_event_source *exit_src, *out_src, *err_src;
    struct progress prog;
    double emitted; /* last fraction in an event, -1 before the first */
    char err[ERR_MAX];
    size_t err_len;
    struct deferred *reply;
    job_done_fn done;
    double started; /* CLOCK_REALTIME seconds */
    bool cancelled;
};

static struct job *jobs;
static bool exit_hook;

static double now_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct job *job_new(struct hvd *d, const char *op, const char *name, const char *path,
                    const char *source_path)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->d = d;
    j->op = g_strdup(op);
    j->name = g_strdup(name);
    j->path = g_strdup(path);
    char *dir = g_path_get_dirname(path), *base = g_path_get_basename(path);
    j->tmp = g_strdup_printf("%s/.%s.part", dir, base);
    g_free(dir);
    g_free(base);
    j->source_path = g_strdup(source_path);
    j->source = source_path ? g_path_get_basename(source_path) : NULL;
    j->pid = -1;
    j->pidfd = j->out_fd = j->err_fd = -1;
    progress_init(&j->prog);
    j->emitted = -1;
    return j;
}

void job_add_step(struct job *j, const char *const *argv, bool progress, const char *code,
                  const char *prefix, const char *suffix)
{
    if (j->nsteps >= STEPS_MAX) {
        log_err("disk job %s: too many steps", j->name);
        return;
    }
    struct step *s = &j->steps[j->nsteps++];
    s->argv = g_strdupv((char **)argv);
    s->progress = progress;
    s->code = g_strdup(code);
    s->prefix = g_strdup(prefix);
    s->suffix = g_strdup(suffix);
}

const char *job_tmp_path(const struct job *j)
{
    return j->tmp;
}

/* Closes the pipes and the pidfd of the current step. */
static void close_step(struct job *j)
{
    j->exit_src = sd_event_source_disable_unref(j->exit_src);
    j->out_src = sd_event_source_disable_unref(j->out_src);
    j->err_src = sd_event_source_disable_unref(j->err_src);
    if (j->pidfd >= 0)
        close(j->pidfd);
    if (j->out_fd >= 0)
        close(j->out_fd);
    if (j->err_fd >= 0)
        close(j->err_fd);
    j->pidfd = j->out_fd = j->err_fd = -1;
    j->pid = -1;
}

void job_free(struct job *j)
{
    if (!j)
        return;
    close_step(j);
    for (unsigned i = 0; i < j->nsteps; i++) {
        g_strfreev(j->steps[i].argv);
        g_free(j->steps[i].code);
        g_free(j->steps[i].prefix);
        g_free(j->steps[i].suffix);
    }
    g_free(j->op);
    g_free(j->name);
    g_free(j->path);
    g_free(j->tmp);
    g_free(j->source_path);
    g_free(j->source);
    free(j);
}

static void unlink_job(struct job *j)
{
    for (struct job **p = &jobs; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            return;
        }
    }
}

static void emit_progress(struct job *j, double fraction, const char *state)
{
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(j->name));
    json_object_object_add(p, "op", json_object_new_string(j->op));
    json_object_object_add(p, "fraction", fraction >= 0 ? json_object_new_double(fraction) : NULL);
    json_object_object_add(p, "state", json_object_new_string(state));
    server_emit(j->d, "disk.progress", p);
    if (fraction >= 0)
        j->emitted = fraction;
}

/* ---- reading the pipes ---- */

static void read_out(struct job *j)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(j->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN)
                sd_event_source_set_enabled(j->out_src, SD_EVENT_OFF);
            return;
        }
        if (!j->steps[j->cur].progress)
            continue;
        if (progress_feed(&j->prog, buf, (size_t)n) &&
            (j->prog.fraction - j->emitted >= PROGRESS_STEP || j->prog.fraction >= 1))
            emit_progress(j, j->prog.fraction, "running");
    }
}

static void read_err(struct job *j)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(j->err_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN)
                sd_event_source_set_enabled(j->err_src, SD_EVENT_OFF);
            return;
        }
        size_t keep = MIN((size_t)n, sizeof(j->err) - 1 - j->err_len);
        memcpy(j->err + j->err_len, buf, keep);
        j->err_len += keep;
        j->err[j->err_len] = '\0';
    }
}

static int on_out(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)fd;
    (void)revents;
    read_out(userdata);
    return 0;
}

static int on_err(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)fd;
    (void)revents;
    read_err(userdata);
    return 0;
}

/* The child's stderr as one printable line of at most MESSAGE_ERR bytes. */
static void err_text(const struct job *j, char *out, size_t n)
{
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < j->err_len && o + 1 < n && o < MESSAGE_ERR; i++) {
        unsigned char ch = (unsigned char)j->err[i];
        if (ch < 0x20 || ch == 0x7f) {
            space = o > 0;
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
            if (o + 1 >= n)
                break;
        }
        out[o++] = (char)ch;
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '.'))
        o--;
    out[o] = '\0';
}

/* ---- running the steps ---- */

static _Noreturn void child_exec(char **argv, int out, int err, pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    /* A killed hvd takes its jobs along; the next one removes their files. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    execvp(argv[0], argv);
    dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
    _exit(127);
}

static void kill_job(struct job *j, int sig)
{
    if (j->pid > 0 && kill(-j->pid, sig) < 0)
        kill(j->pid, sig); /* not yet its own group */
}

static int on_exit_step(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int spawn_step(struct job *j)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        goto fail;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(j->steps[j->cur].argv, out[1], err[1], parent);
    if (pid < 0)
        goto fail;
    setpgid(pid, pid); /* also in the child: whichever runs first */
    close(out[1]);
    close(err[1]);
    j->pid = pid;
    j->out_fd = out[0];
    j->err_fd = err[0];
    fcntl(j->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(j->err_fd, F_SETFL, O_NONBLOCK);
    j->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    sd_event *loop = j->d->loop;
    if (j->pidfd < 0 ||
        sd_event_add_io(loop, &j->exit_src, j->pidfd, EPOLLIN, on_exit_step, j) < 0 ||
        sd_event_add_io(loop, &j->out_src, j->out_fd, EPOLLIN, on_out, j) < 0 ||
        sd_event_add_io(loop, &j->err_src, j->err_fd, EPOLLIN, on_err, j) < 0) {
        int saved = errno;
        kill_job(j, SIGKILL);
        waitpid(pid, NULL, 0);
        close_step(j);
        errno = saved;
        return -1;
    }
    log_debug("disk job %s: step %u is pid %d (%s)", j->name, j->cur, (int)pid,
              j->steps[j->cur].argv[0]);
    return 0;
fail:;
    int saved = errno;
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    errno = saved;
    return -1;
}

/* The end of a job: reply, tell everyone, forget it. */
static void finish(struct job *j, struct json_object *result, struct api_error *e)
{
    unlink_job(j); /* the image is no longer busy for whoever reacts to the reply */
    if (!result) {
        unlink(j->tmp);
        bool cancelled = strcmp(e->code, "cancelled") == 0;
        log_info("disk job %s (%s) %s: %s", j->name, j->op, cancelled ? "cancelled" : "failed",
                 e->message);
        emit_progress(j, j->emitted, cancelled ? "cancelled" : "failed");
    } else {
        log_info("disk job %s (%s) done in %.1f s", j->name, j->op, now_realtime() - j->started);
    }
    server_reply(j->reply, result, e);
    j->reply = NULL;
    job_free(j);
}

static void succeed(struct job *j)
{
    struct api_error e = {0};
    if (renameat2(AT_FDCWD, j->tmp, AT_FDCWD, j->path, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST)
            api_fail(&e, "exists", "An image named '%s' appeared while it was being made.",
                     j->name);
        else
            api_fail(&e, "internal", "Cannot rename the new image '%s' into place: %s.", j->name,
                     strerror(errno));
        finish(j, NULL, &e);
        return;
    }
    unlink_job(j);
    emit_progress(j, 1, "done");
    struct json_object *r = j->done(j->d, j->name, &e);
    finish(j, r, &e);
}

static int on_exit_step(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)fd;
    (void)revents;
    struct job *j = userdata;
    int status = 0;
    while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
        ;
    read_out(j); /* what the child wrote before it ended */
    read_err(j);
    close_step(j);
    struct step *st = &j->steps[j->cur];
    struct api_error e = {0};
    char text[MESSAGE_ERR + 1];
    err_text(j, text, sizeof(text));
    if (j->cancelled) {
        api_fail(&e, "cancelled", "The %s of '%s' was cancelled; its partial file was removed.",
                 j->op, j->name);
    } else if (WIFSIGNALED(status)) {
        api_fail(&e, "internal", "%s was killed by signal %d.", st->argv[0], WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 0) {
        api_fail(&e, st->code, "%s%s%s", st->prefix, *text ? text : "no message", st->suffix);
    } else if (++j->cur < j->nsteps) {
        j->err_len = 0;
        if (spawn_step(j) == 0)
            return 0;
        api_fail(&e, "internal", "Cannot run %s: %s.", j->steps[j->cur].argv[0], strerror(errno));
    } else {
        succeed(j);
        return 0;
    }
    finish(j, NULL, &e);
    return 0;
}

/* ---- shutdown ---- */

static bool wait_exit(struct job *j, int ms)
{
    struct pollfd p = {.fd = j->pidfd, .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

/* hvd is stopping: stop every job and remove its partial file, never leave it. */
static int on_loop_exit(sd_event_source *s, void *userdata)
{
    (void)s;
    (void)userdata;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (struct job *j = jobs; j; j = j->next) {
        j->cancelled = true;
        kill_job(j, SIGTERM);
    }
    while (jobs) {
        struct job *j = jobs;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (j->pidfd >= 0 && !wait_exit(j, (int)MAX(0, STOP_WAIT_MS - spent))) {
            log_warn("disk job %s: pid %d ignores SIGTERM; killing it", j->name, (int)j->pid);
            kill_job(j, SIGKILL);
        }
        if (j->pid > 0)
            waitpid(j->pid, NULL, 0);
        close_step(j);
        struct api_error e = {0};
        api_fail(&e, "cancelled",
                 "hvd is stopping: the %s of '%s' was stopped and its partial "
                 "file removed.",
                 j->op, j->name);
        finish(j, NULL, &e);
    }
    return 0;
}

/* ---- the API's view ---- */

int job_start(struct job *j, struct client *c, job_done_fn done, struct api_error *e)
{
    unsigned n = 0;
    for (struct job *o = jobs; o; o = o->next)
        n++;
    if (n >= JOB_MAX) {
        api_fail(e, "busy", "hvd is already running %d disk jobs; try again when one ends.",
                 JOB_MAX);
        job_free(j);
        return -1;
    }
    hvd_exit_hook_once(j->d->loop, &exit_hook, on_loop_exit);
    unlink(j->tmp); /* a stale one: job_check_free() said nobody owns it */
    j->done = done;
    j->started = now_realtime();
    if (spawn_step(j) < 0) {
        api_fail(e, "internal", "Cannot run %s: %s.", j->steps[0].argv[0], strerror(errno));
        job_free(j);
        return -1;
    }
    j->reply = server_defer(c);
    j->next = jobs;
    jobs = j;
    log_info("disk job %s (%s%s%s) started", j->name, j->op, j->source ? " of " : "",
             j->source ? j->source : "");
    api_defer(e);
    return 0;
}

int job_check_free(const char *path, bool reading_ok, struct api_error *e)
{
    for (struct job *j = jobs; j; j = j->next) {
        char pct[32] = "";
        if (j->prog.fraction >= 0)
            snprintf(pct, sizeof(pct), ", %d%% done", (int)(j->prog.fraction * 100));
        if (strcmp(j->path, path) == 0)
            return api_fail(e, "busy", "Image '%s' is being made (%s%s); wait for it to finish.",
                            j->name, j->op, pct);
        if (!reading_ok && j->source_path && strcmp(j->source_path, path) == 0)
            return api_fail(e, "busy",
                            "Image '%s' is being read by a disk job (%s to '%s'%s); wait for it "
                            "to finish.",
                            j->source, j->op, j->name, pct);
    }
    return 0;
}

struct json_object *job_list(void)
{
    struct json_object *a = json_object_new_array();
    for (struct job *j = jobs; j; j = j->next) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(j->name));
        json_object_object_add(o, "op", json_object_new_string(j->op));
        json_object_object_add(o, "source", j->source ? json_object_new_string(j->source) : NULL);
        json_object_object_add(
            o, "fraction", j->prog.fraction >= 0 ? json_object_new_double(j->prog.fraction) : NULL);
        json_object_object_add(o, "started", json_object_new_double(j->started));
        json_object_array_add(a, o);
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "jobs", a);
    return r;
}

int job_cancel(const char *name, struct api_error *e)
{
    for (struct job *j = jobs; j; j = j->next) {
        if (strcmp(j->name, name) == 0) {
            j->cancelled = true;
            kill_job(j, SIGTERM);
            return 0;
        }
    }
    return api_fail(e, "not-found", "No disk job is making an image named '%s'.", name);
}

void job_sweep_stale(const char *images_dir)
{
    GDir *dir = g_dir_open(images_dir, 0, NULL);
    const char *n;
    while (dir && (n = g_dir_read_name(dir))) {
        size_t len = strlen(n);
        if (n[0] != '.' || len < 7 || strcmp(n + len - 5, ".part") != 0)
            continue;
        char *inner = g_strndup(n + 1, len - 6);
        char *path = g_strdup_printf("%s/%s", images_dir, n);
        bool owned = false;
        for (struct job *j = jobs; j; j = j->next)
            owned |= strcmp(j->tmp, path) == 0;
        if (vmdef_name_ok(inner) && !owned) {
            log_info("removing %s, left by an unfinished disk job", path);
            unlink(path);
        }
        g_free(inner);
        g_free(path);
    }
    if (dir)
        g_dir_close(dir);
}
