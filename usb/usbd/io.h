/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounded, non-blocking output for hv-usbd's peers (USB/IP connections and
 * control clients): what the socket does not take at once waits in a queue
 * with a cap, and the message at the head of the queue has a deadline.
 * Nothing here ever blocks the single thread.
 */
#ifndef HV_USB_IO_H
#define HV_USB_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outbuf;

struct outq {
    struct outbuf *head, *tail;
    size_t bytes;     /* queued, not yet sent */
    size_t cap;       /* a put that would queue more than this fails */
    int timeout_ms;   /* time the head message gets to leave */
    int64_t deadline; /* monotonic ms; 0 while the queue is empty */
    uint64_t sent;    /* bytes that went out, for the log */
};

enum { IO_OK = 0, IO_ERROR = -1, IO_FULL = -2 };

int64_t io_now_ms(void);

/* Make fd non-blocking. Returns 0 or -1. */
int io_set_nonblock(int fd);

void outq_init(struct outq *q, size_t cap, int timeout_ms);
void outq_free(struct outq *q);

/*
 * Send a message made of a and b (b may be NULL) or queue what the socket
 * does not take now. IO_OK, IO_ERROR (the socket failed: errno) or IO_FULL
 * (queueing it would pass the cap; nothing was sent or queued).
 */
int outq_put(struct outq *q, int fd, const void *a, size_t alen, const void *b, size_t blen);

/* Send what the socket takes of the queue. IO_OK or IO_ERROR. */
int outq_flush(struct outq *q, int fd);

/* True when the head message missed its deadline. */
bool outq_expired(const struct outq *q, int64_t now);

/* The earlier of two deadlines, 0 meaning none. */
int64_t io_earliest(int64_t a, int64_t b);

/*
 * Log that a peer is dropped for being slow: at most a few lines per ten
 * seconds, then one line with how many were not logged, so that a crowd of
 * slow peers cannot flood the log either.
 */
void io_log_slow(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Called from the loop: logs the count of a finished window's quiet drops. */
void io_slow_tick(void);

#endif
