/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Bounded non-blocking output queues and the slow-peer log (io.h). */
#include "io.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

struct outbuf {
    struct outbuf *next;
    size_t len, off;
    int64_t due; /* this message must be out by then */
    uint8_t data[];
};

int64_t io_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int io_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int64_t io_earliest(int64_t a, int64_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    return a < b ? a : b;
}

void outq_init(struct outq *q, size_t cap, int timeout_ms)
{
    memset(q, 0, sizeof(*q));
    q->cap = cap;
    q->timeout_ms = timeout_ms;
}

void outq_free(struct outq *q)
{
    while (q->head) {
        struct outbuf *b = q->head;
        q->head = b->next;
        free(b);
    }
    q->tail = NULL;
    q->bytes = 0;
    q->deadline = 0;
}

/* One non-blocking send of up to two pieces; bytes sent, 0 when full, -1 on error. */
static ssize_t send2(int fd, const void *a, size_t alen, const void *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};

    for (;;) {
        ssize_t n = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Queue bytes [skip, alen + blen) of the message a + b. */
static int enqueue(struct outq *q, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                   size_t skip)
{
    size_t len = alen + blen - skip;
    struct outbuf *o = malloc(sizeof(*o) + len);

    if (!o)
        return IO_FULL;
    o->next = NULL;
    o->len = len;
    o->off = 0;
    o->due = io_now_ms() + q->timeout_ms;
    if (skip < alen) {
        memcpy(o->data, a + skip, alen - skip);
        if (blen)
            memcpy(o->data + alen - skip, b, blen);
    } else {
        memcpy(o->data, b + (skip - alen), len);
    }
    if (q->tail)
        q->tail->next = o;
    else
        q->head = o;
    q->tail = o;
    q->bytes += len;
    q->deadline = q->head->due;
    return IO_OK;
}

int outq_put(struct outq *q, int fd, const void *a, size_t alen, const void *b, size_t blen)
{
    size_t total = alen + (b ? blen : 0);
    ssize_t n = 0;

    if (!b)
        blen = 0;
    /* Checked before anything is sent: a message is never cut in the middle. */
    if (q->bytes + total > q->cap)
        return IO_FULL;
    if (!q->head) {
        n = send2(fd, a, alen, b, blen);
        if (n < 0)
            return IO_ERROR;
        q->sent += (size_t)n;
        if ((size_t)n == total)
            return IO_OK;
    }
    return enqueue(q, a, alen, b, blen, (size_t)n);
}

int outq_flush(struct outq *q, int fd)
{
    while (q->head) {
        struct outbuf *o = q->head;
        ssize_t n = send2(fd, o->data + o->off, o->len - o->off, NULL, 0);
        if (n < 0)
            return IO_ERROR;
        if (n == 0)
            break;
        o->off += (size_t)n;
        q->bytes -= (size_t)n;
        q->sent += (size_t)n;
        if (o->off < o->len)
            break; /* the socket is full again */
        q->head = o->next;
        free(o);
    }
    if (!q->head)
        q->tail = NULL;
    q->deadline = q->head ? q->head->due : 0;
    return IO_OK;
}

bool outq_expired(const struct outq *q, int64_t now)
{
    return q->deadline && now >= q->deadline;
}

#define SLOW_LOG_WINDOW_MS 10000
#define SLOW_LOG_BURST     5

static int64_t slow_window;
static unsigned slow_logged, slow_suppressed;

/* Opens a new window when the last one is over, saying what it kept quiet. */
static void slow_roll(int64_t now)
{
    if (slow_window && now - slow_window < SLOW_LOG_WINDOW_MS)
        return;
    if (slow_suppressed)
        log_warn("%u more slow peer(s) dropped in the last %d s (not logged)", slow_suppressed,
                 SLOW_LOG_WINDOW_MS / 1000);
    slow_window = now;
    slow_logged = slow_suppressed = 0;
}

void io_slow_tick(void)
{
    if (slow_suppressed)
        slow_roll(io_now_ms());
}

void io_log_slow(const char *fmt, ...)
{
    va_list ap;

    slow_roll(io_now_ms());
    if (slow_logged >= SLOW_LOG_BURST) {
        slow_suppressed++;
        return;
    }
    slow_logged++;
    va_start(ap, fmt);
    hv_vlog(HV_LOG_WARN, fmt, ap);
    va_end(ap);
}
