/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-usbd's bounded output queue (usbd/io.c) over a socketpair. */
#include "check.h"
#include "io.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void pair(int sv[2])
{
    int small = 4096;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
}

/* Reads whatever is there without waiting; returns the count. */
static size_t drain(int fd, uint8_t *out, size_t max)
{
    size_t n = 0;

    while (n < max) {
        ssize_t r = recv(fd, out + n, max - n, MSG_DONTWAIT);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    return n;
}

/* A message the socket takes at once is not queued. */
static void test_direct(void)
{
    struct outq q;
    uint8_t got[16];
    int sv[2];

    pair(sv);
    outq_init(&q, 1 << 20, 1000);
    CHECK(outq_put(&q, sv[0], "head", 4, "body", 4) == IO_OK);
    CHECK(q.bytes == 0 && q.deadline == 0 && q.sent == 8);
    CHECK(drain(sv[1], got, sizeof(got)) == 8 && memcmp(got, "headbody", 8) == 0);
    outq_free(&q);
    close(sv[0]);
    close(sv[1]);
}

/*
 * A peer that does not read: the rest waits in the queue in order, a put
 * past the cap fails whole, the head message has a deadline, and once the
 * peer reads everything arrives in order.
 */
static void test_queue_cap_order(void)
{
    enum { MSG = 1000, CAP = 64 * 1024 };
    static uint8_t sent[CAP * 2], got[CAP * 2];
    struct outq q;
    size_t total = 0, n = 0;
    int sv[2], i = 0, r;

    pair(sv);
    outq_init(&q, CAP, 5000);
    int64_t before = io_now_ms();
    for (;;) {
        for (size_t k = 0; k < MSG; k++)
            sent[total + k] = (uint8_t)(i * 7 + (int)k);
        if ((r = outq_put(&q, sv[0], sent + total, MSG, NULL, 0)) != IO_OK)
            break;
        total += MSG;
        i++;
    }
    CHECK(r == IO_FULL);
    CHECK(q.bytes > 0 && q.bytes <= CAP && q.bytes + MSG > CAP);
    CHECK(q.deadline >= before + 5000 && q.deadline <= io_now_ms() + 5000);
    CHECK(!outq_expired(&q, io_now_ms()));
    CHECK(outq_expired(&q, q.deadline));
    /* The refused message left no trace: draining gives exactly what was accepted. */
    while (q.bytes) {
        n += drain(sv[1], got + n, sizeof(got) - n);
        CHECK(outq_flush(&q, sv[0]) == IO_OK);
    }
    n += drain(sv[1], got + n, sizeof(got) - n);
    CHECK(n == total && memcmp(got, sent, total) == 0);
    CHECK(q.deadline == 0 && q.sent == total);
    outq_free(&q);
    close(sv[0]);
    close(sv[1]);
}

/* Content: what leaves the queue is byte for byte what was put, pieces joined. */
static void test_content(void)
{
    static uint8_t a[3000], b[5000], got[80000];
    struct outq q;
    size_t n = 0;
    int sv[2];

    pair(sv);
    outq_init(&q, 1 << 20, 1000);
    for (size_t k = 0; k < sizeof(a); k++)
        a[k] = (uint8_t)k;
    for (size_t k = 0; k < sizeof(b); k++)
        b[k] = (uint8_t)(k * 3 + 1);
    for (int m = 0; m < 10; m++)
        CHECK(outq_put(&q, sv[0], a, sizeof(a), b, sizeof(b)) == IO_OK);
    CHECK(q.bytes > 0);
    while (n < 10 * (sizeof(a) + sizeof(b))) {
        size_t before = n;
        n += drain(sv[1], got + n, sizeof(got) - n);
        CHECK(outq_flush(&q, sv[0]) == IO_OK);
        if (n == before && !q.bytes)
            break;
    }
    CHECK(n == 10 * (sizeof(a) + sizeof(b)));
    for (int m = 0; m < 10; m++) {
        const uint8_t *p = got + (size_t)m * (sizeof(a) + sizeof(b));
        CHECK(memcmp(p, a, sizeof(a)) == 0 && memcmp(p + sizeof(a), b, sizeof(b)) == 0);
    }
    outq_free(&q);
    close(sv[0]);
    close(sv[1]);
}

/* A peer that has gone: an error, not a block or a signal. */
static void test_peer_gone(void)
{
    static uint8_t big[200000];
    struct outq q;
    int sv[2];

    pair(sv);
    outq_init(&q, 1 << 20, 1000);
    CHECK(outq_put(&q, sv[0], big, sizeof(big), NULL, 0) == IO_OK && q.bytes > 0);
    close(sv[1]);
    CHECK(outq_flush(&q, sv[0]) == IO_ERROR && errno == EPIPE);
    CHECK(outq_put(&q, sv[0], "x", 1, NULL, 0) == IO_OK); /* queued behind: flush reports */
    outq_free(&q);
    outq_init(&q, 1 << 20, 1000);
    CHECK(outq_put(&q, sv[0], "x", 1, NULL, 0) == IO_ERROR && errno == EPIPE);
    outq_free(&q);
    close(sv[0]);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* MSG_NOSIGNAL must hold: a SIGPIPE would end the test */
    test_direct();
    test_queue_cap_order();
    test_content();
    test_peer_gone();
    CHECK_DONE();
}
