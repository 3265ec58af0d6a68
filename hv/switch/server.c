/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The producers' socket: accepts connections, receives and checks their messages. */
#include "app.h"
#include "dgram.h"
#include "log.h"
#include "producer.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The group that may connect to the producer socket (hv.sysusers). */
#define DISPLAY_GROUP "hv-display"

int server_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("socket path %s is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("socket: %s", strerror(errno));
        return -1;
    }
    unlink(path); /* a stale socket from an earlier run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
        listen(fd, 16) < 0) {
        log_err("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* hvd runs each hv-vmm as a user of its own and gives it this group, so
     * that it can connect again after hv-switch restarts; root can anyway. */
    struct group *g = getgrnam(DISPLAY_GROUP);
    if (!g)
        log_info("no group %s: only root can connect to %s (VMs running as their own users "
                 "cannot reconnect after a restart)",
                 DISPLAY_GROUP, path);
    else if (chown(path, (uid_t)-1, g->gr_gid) < 0)
        log_warn("cannot give %s to group %s: %s", path, DISPLAY_GROUP, strerror(errno));
    return fd;
}

struct client *client_of(struct app *a, int vm_id)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (a->clients[i].used && a->clients[i].vm_id == vm_id && vm_id)
            return &a->clients[i];
    }
    return NULL;
}

static void unmap_surface(struct client *c)
{
    if (c->map)
        munmap((void *)c->map, c->map_len);
    c->map = NULL;
    c->map_len = 0;
    c->tex_stale = true;
    c->dirty = false;
}

static void client_close(struct app *a, struct client *c)
{
    struct focus_out out;

    if (c->vm_id) {
        focus_vm_removing(&a->focus, &a->reg, c->vm_id, &out);
        reg_remove(&a->reg, c->vm_id);
        input_apply(a, &out, false, 0);
        a->redraw = true;
    }
    unmap_surface(c);
    comp_drop_texture(c);
    close(c->fd);
    memset(c, 0, sizeof(*c));
}

static const char *client_name(struct app *a, struct client *c)
{
    struct vm *v = reg_by_id(&a->reg, c->vm_id);

    return v ? v->name : "(no hello yet)";
}

static void refuse(struct app *a, struct client *c, const char *why)
{
    log_err("vm '%s' refused: %s; closing it", client_name(a, c), why);
    client_close(a, c);
}

void client_send(struct app *a, int vm_id, const void *msg, size_t len)
{
    struct client *c = client_of(a, vm_id);

    if (!c)
        return;
    if (send(c->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len)
        return;
    if (!c->drop_logged)
        log_warn("vm '%s' does not read its input (%s): dropping events", client_name(a, c),
                 strerror(errno));
    c->drop_logged = true;
}

static void add_damage(struct client *c, const struct disp_rect *r)
{
    uint32_t x0, y0, x1, y1;

    if (!c->dirty) {
        c->damage = *r;
        c->dirty = true;
        return;
    }
    x0 = MIN(c->damage.x, r->x);
    y0 = MIN(c->damage.y, r->y);
    x1 = MAX(c->damage.x + c->damage.w, r->x + r->w);
    y1 = MAX(c->damage.y + c->damage.h, r->y + r->h);
    c->damage = (struct disp_rect){x0, y0, x1 - x0, y1 - y0};
}

static bool visible(struct app *a, struct client *c)
{
    return a->focus.overlay || a->focus.focused == c->vm_id;
}

static int map_scanout(struct client *c, const struct disp_scanout *s, int fd, char *err,
                       size_t errlen)
{
    size_t len = (size_t)s->stride * (s->height - 1) + (size_t)s->width * 4;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)s->offset);

    if (p == MAP_FAILED) {
        snprintf(err, errlen, "scanout: cannot map the memfd: %s", strerror(errno));
        return -1;
    }
    unmap_surface(c);
    c->map = p;
    c->map_len = len;
    c->width = s->width;
    c->height = s->height;
    c->stride = s->stride;
    c->tex_failed = false;
    add_damage(c, &(struct disp_rect){0, 0, s->width, s->height});
    return 0;
}

static int fd_info(int fd, struct disp_fdinfo *info)
{
    struct stat st;
    int seals;

    if (fstat(fd, &st) < 0)
        return -1;
    seals = fcntl(fd, F_GET_SEALS);
    info->regular = S_ISREG(st.st_mode);
    info->size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    info->seal_shrink = seals >= 0 && (seals & F_SEAL_SHRINK);
    return 0;
}

/*
 * Who the producer on c is (producer.h): its HELLO when it runs as root or
 * as hv-switch's user, else hvd's record for its user, which must be a
 * regular file of root's (or hv-switch's user's) that no one else may write.
 */
static int identify(struct app *a, struct client *c, const struct disp_hello *h,
                    struct disp_hello *who, char *err, size_t errlen)
{
    struct ucred cr;
    socklen_t crlen = sizeof(cr);
    char path[512], text[PRODUCER_RECORD_MAX + 1], why[160];
    struct stat st;

    *who = *h;
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
        snprintf(err, errlen, "cannot tell which user it runs as: %s", strerror(errno));
        return -1;
    }
    if (cr.uid == 0 || cr.uid == geteuid())
        return 0;
    snprintf(path, sizeof(path), "%s/%u", a->records_dir, (unsigned)cr.uid);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen,
                 "it says it is '%s' but runs as user %u, for whom hvd left no record (%.80s: "
                 "%s); only VMs that hvd started may show their screen",
                 h->name, (unsigned)cr.uid, path, strerror(errno));
        return -1;
    }
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_uid == 0 || st.st_uid == geteuid()) &&
        !(st.st_mode & 022))
        n = read(fd, text, sizeof(text));
    close(fd);
    if (n < 0) {
        snprintf(err, errlen,
                 "it says it is '%s'; hvd's record %.80s is not a regular file of root's that "
                 "only root may write: refusing it",
                 h->name, path);
        return -1;
    }
    if (producer_record_parse(text, (size_t)n, who, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "it says it is '%s'; hvd's record for user %u: %.100s", h->name,
                 (unsigned)cr.uid, why);
        return -1;
    }
    if (strcmp(who->name, h->name) || who->colour != h->colour || who->slot != h->slot ||
        who->flags != h->flags)
        log_warn_limited("the producer of user %u said it is '%s' (slot %u%s); hvd's record says "
                         "'%s' (slot %u%s): the record is what counts",
                         (unsigned)cr.uid, h->name, h->slot,
                         (h->flags & DISP_HELLO_UIVM) ? ", UIVM" : "", who->name, who->slot,
                         (who->flags & DISP_HELLO_UIVM) ? ", UIVM" : "");
    return 0;
}

static int hello(struct app *a, struct client *c, const struct disp_hello *h, char *err,
                 size_t errlen)
{
    struct disp_hello who;
    if (identify(a, c, h, &who, err, errlen) < 0)
        return -1;
    struct vm *v = reg_add(&a->reg, &who, err, errlen);
    struct disp_welcome w = {DISP_WELCOME, DISP_VERSION, DISP_NO_SLOT};
    struct focus_out out;

    if (!v)
        return -1;
    v->priv = c;
    c->vm_id = v->id;
    if (v->slot != REG_NO_SLOT)
        w.slot = (uint32_t)v->slot;
    log_info("vm '%s' connected (slot %d%s)", v->name, v->slot, v->uivm ? ", UIVM" : "");
    client_send(a, c->vm_id, &w, sizeof(w));
    focus_vm_added(&a->focus, &a->reg, c->vm_id, &out);
    input_apply(a, &out, false, 0);
    a->redraw = true;
    return 0;
}

static void stats_reply(struct app *a, struct client *c)
{
    struct disp_stats s = {.type = DISP_STATS, .switches = a->lat.switches};

    s.nsamples = lat_samples(&a->lat, s.sample_us, DISP_STATS_SAMPLES);
    if (send(c->fd, &s, sizeof(s), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_warn("stats reply: %s", strerror(errno));
}

/* Handles one datagram; returns -1 when the client was closed. */
static int handle(struct app *a, struct client *c, const void *buf, size_t len, int *fds, int nfds)
{
    struct disp_msg m;
    struct disp_fdinfo info;
    char err[256];
    int rc = -1;

    if (disp_parse(buf, len, nfds, &m, err, sizeof(err)) < 0)
        goto out;
    if (m.type == DISP_SCANOUT) {
        if (fd_info(fds[0], &info) < 0) {
            snprintf(err, sizeof(err), "scanout: fstat: %s", strerror(errno));
            goto out;
        }
        if (disp_check_scanout(&m.u.scanout, &info, err, sizeof(err)) < 0)
            goto out;
    }
    if (disp_conn_apply(&c->conn, &m, err, sizeof(err)) < 0)
        goto out;

    switch (m.type) {
    case DISP_HELLO:
        rc = hello(a, c, &m.u.hello, err, sizeof(err));
        break;
    case DISP_SCANOUT:
        rc = map_scanout(c, &m.u.scanout, fds[0], err, sizeof(err));
        if (rc == 0 && visible(a, c))
            a->redraw = true;
        break;
    case DISP_DAMAGE:
        add_damage(c, &m.u.damage.rect);
        if (visible(a, c))
            a->redraw = true;
        rc = 0;
        break;
    case DISP_BLANK:
        unmap_surface(c);
        a->redraw = a->redraw || visible(a, c);
        rc = 0;
        break;
    case DISP_STATS_REQ:
        stats_reply(a, c);
        client_close(a, c);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return -1;
    }
out:
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (rc < 0) {
        refuse(a, c, err);
        return -1;
    }
    return 0;
}

/* Reads every pending datagram of a client. */
static void client_read(struct app *a, struct client *c)
{
    uint8_t buf[DISP_MAX_MSG + 1];

    /* Bounded, so that one chatty producer cannot starve the others. */
    for (int budget = 64; budget > 0; budget--) {
        int fds[4], nfds;
        bool truncated;
        ssize_t n = dgram_recv(c->fd, buf, sizeof(buf), fds, 4, &nfds, &truncated);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            if (c->vm_id)
                log_info("vm '%s' disconnected", client_name(a, c));
            client_close(a, c);
            return;
        }
        if (truncated) {
            refuse(a, c, "message or its descriptors truncated (too long)");
            return;
        }
        if (handle(a, c, buf, (size_t)n, fds, nfds) < 0)
            return;
    }
}

static void accept_all(struct app *a)
{
    for (;;) {
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int i;

        if (fd < 0)
            return;
        for (i = 0; i < MAX_CLIENTS && a->clients[i].used; i++)
            ;
        if (i == MAX_CLIENTS) {
            log_err("too many connections: refusing one");
            close(fd);
            continue;
        }
        a->clients[i] = (struct client){.used = true, .fd = fd, .accepted_ns = now_ns()};
    }
}

/* Close connections that said no hello in time. */
static void expire_silent(struct app *a)
{
    uint64_t now = now_ns();
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &a->clients[i];
        if (c->used && !c->vm_id && now - c->accepted_ns > HELLO_TIMEOUT_NS) {
            log_warn_limited("a producer said no hello within %llu s: closing it",
                             HELLO_TIMEOUT_NS / 1000000000u);
            client_close(a, c);
        }
    }
}

bool server_waiting_hello(const struct app *a)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (a->clients[i].used && !a->clients[i].vm_id)
            return true;
    return false;
}

void server_service(struct app *a)
{
    accept_all(a);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (a->clients[i].used)
            client_read(a, &a->clients[i]);
    }
    expire_silent(a);
}

void server_close_all(struct app *a)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (a->clients[i].used)
            client_close(a, &a->clients[i]);
    }
}
