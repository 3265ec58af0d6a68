// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-console (virtio 1.2 §5.3), one port (hvc0 in a Linux guest). Its
 * bytes go to a backend chosen by the spec string:
 *   socket:PATH  a unix stream socket listening at PATH; one client at a time
 *                (a new client replaces the old one); what the guest writes
 *                while nobody is connected is dropped.
 *   file:PATH    guest output is written to PATH (truncated); no input.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../devices.h"
#include "../vm.h"
#include "log.h"
#include "logfile.h"
#include "util.h"
#include "virtio.h"

#define CON_RX         0
#define CON_TX         1
#define CON_CONFIG_LEN 12

struct console {
    struct virtio_dev vd;
    int listen_fd; /* socket backend */
    int client_fd;
    int out_fd;         /* file backend */
    struct logfile out; /* out_fd under a size cap */
    bool rx_waiting;
    bool logged_drop;
};

static void drop_client(struct console *c)
{
    if (c->client_fd < 0)
        return;
    virtio_del_fd(&c->vd, c->client_fd);
    close(c->client_fd);
    c->client_fd = -1;
}

static void con_output(struct console *c, const struct iovec *iov, unsigned n)
{
    int fd = c->client_fd >= 0 ? c->client_fd : c->out_fd;
    if (fd < 0 || !n)
        return;
    if (fd == c->out_fd) {
        for (unsigned i = 0; i < n; i++)
            logfile_write(&c->out, iov[i].iov_base, iov[i].iov_len);
        return;
    }
    /* A stalled client must not stall the guest: drop what does not fit. */
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
    if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        if (errno == EAGAIN) {
            if (!c->logged_drop)
                log_warn("%s: console client is not reading; output dropped", c->vd.name);
            c->logged_drop = true;
        } else {
            drop_client(c);
        }
    }
}

static int64_t con_tx_chain(struct virtio_dev *vd, struct vq_chain *ch, void *arg)
{
    (void)vd;
    con_output(arg, ch->iov, ch->nr_out);
    return 0;
}

static int64_t con_rx_chain(struct virtio_dev *vd, struct vq_chain *ch, void *arg)
{
    (void)vd;
    struct console *c = arg;
    ssize_t r = readv(c->client_fd, vq_chain_in(ch), (int)ch->nr_in);
    if (r > 0)
        return r;
    if (r == 0 || (errno != EAGAIN && errno != EINTR))
        drop_client(c); /* hang-up or error */
    return VIRTIO_CHAIN_RETRY;
}

static void con_rx(struct console *c)
{
    if (c->client_fd < 0)
        return;
    struct virtio_queue *q = &c->vd.queues[CON_RX];
    bool can = virtio_ready(&c->vd) && q->enabled;
    if (can)
        virtio_serve_queue(&c->vd, CON_RX, con_rx_chain, c);
    if (c->client_fd < 0)
        return;
    bool starved = !can || !vq_has_avail(&q->vq);
    if (starved != c->rx_waiting) {
        c->rx_waiting = starved;
        virtio_mod_fd(&c->vd, c->client_fd, starved ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP);
    }
}

static void client_event(struct virtio_dev *vd, int fd, uint32_t events, void *arg)
{
    (void)vd;
    (void)fd;
    struct console *c = arg;
    if ((events & (EPOLLHUP | EPOLLERR)) || ((events & EPOLLRDHUP) && !(events & EPOLLIN))) {
        drop_client(c);
        return;
    }
    con_rx(c);
}

static void listen_event(struct virtio_dev *vd, int fd, uint32_t events, void *arg)
{
    (void)events;
    struct console *c = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    drop_client(c);
    if (virtio_add_fd(vd, cfd, EPOLLIN | EPOLLRDHUP, client_event, c) < 0) {
        close(cfd);
        return;
    }
    c->client_fd = cfd;
    c->rx_waiting = false;
    c->logged_drop = false;
}

static void con_notify(struct virtio_dev *vd, unsigned q)
{
    struct console *c = vd->priv;
    if (q == CON_TX)
        virtio_serve_queue(vd, q, con_tx_chain, c);
    else if (q == CON_RX)
        con_rx(c);
}

/*
 * Emergency write (VIRTIO_CONSOLE_F_EMERG_WRITE): one byte at offset 8, on a
 * vCPU thread. qlock (after lock, the transport's order) keeps it apart from
 * the device thread, which writes and drops the same client.
 */
static void con_config_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len)
{
    if (off == 8 && len >= 1) {
        struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = 1};
        pthread_mutex_lock(&vd->qlock);
        con_output(vd->priv, &iov, 1);
        pthread_mutex_unlock(&vd->qlock);
    }
}

static const struct virtio_ops con_ops = {
    .queue_notify = con_notify,
    .config_write = con_config_write,
};

static int open_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("console socket path %s is too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    /* A socket left by an earlier run is stale: replace it, but nothing else. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        int err = errno;
        log_err("cannot listen on console socket %s: %s", path, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

int virtio_console_create(struct vm *vm, const char *spec)
{
    struct console *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->listen_fd = c->client_fd = c->out_fd = -1;
    int ret;

    if (spec && !strncmp(spec, "socket:", 7) && spec[7]) {
        ret = c->listen_fd = open_socket(spec + 7);
    } else if (spec && !strncmp(spec, "file:", 5) && spec[5]) {
        c->out_fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        ret = c->out_fd < 0 ? -errno : 0;
        logfile_init(&c->out, c->out_fd, 0);
        if (ret)
            log_err("cannot open console file %s: %s", spec + 5, strerror(-ret));
    } else {
        log_err("virtio console \"%s\" is not understood: use socket:PATH or file:PATH",
                spec ? spec : "");
        ret = -EINVAL;
    }
    if (ret < 0) {
        free(c);
        return ret;
    }
    ret = virtio_dev_init(&c->vd, vm, "virtio-console", VIRTIO_ID_CONSOLE, 2, 128,
                          1ull << VIRTIO_CONSOLE_F_EMERG_WRITE, CON_CONFIG_LEN, &con_ops, c);
    if (ret == 0)
        le32_put(c->vd.config + 4, 1); /* max_nr_ports */
    if (ret == 0 && c->listen_fd >= 0)
        ret = virtio_add_fd(&c->vd, c->listen_fd, EPOLLIN, listen_event, c);
    if (ret == 0)
        ret = virtio_dev_start(&c->vd);
    if (ret == 0)
        log_info("virtio-console: %s", spec);
    return ret; /* on failure hv-vmm exits; the fds go with it */
}
