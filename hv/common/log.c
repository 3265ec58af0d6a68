/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *log_prog = "hv";
static enum hv_log_level log_level = HV_LOG_INFO;

void hv_log_init(const char *prog)
{
    log_prog = prog;
}

void hv_log_set_level(enum hv_log_level level)
{
    log_level = level;
}

enum hv_log_level hv_log_get_level(void)
{
    return log_level;
}

void hv_vlog(enum hv_log_level level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[1024];

    if (level > log_level)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    /* One fprintf per message so lines from several threads do not interleave. */
    if (level == HV_LOG_INFO)
        fprintf(stderr, "%s: %s\n", log_prog, line);
    else
        fprintf(stderr, "%s: %s: %s\n", log_prog, names[level], line);
}

void hv_log(enum hv_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    hv_vlog(level, fmt, ap);
    va_end(ap);
}

void hv_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    hv_vlog(HV_LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

int hv_ratelimit_ok(struct hv_ratelimit *rl)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned dropped = 0;
    int ok;

    pthread_mutex_lock(&lock);
    if (!rl->logged || ts.tv_sec - rl->window_start >= HV_RATELIMIT_SECONDS) {
        dropped = rl->dropped;
        rl->window_start = ts.tv_sec;
        rl->logged = rl->dropped = 0;
    }
    ok = rl->logged < HV_RATELIMIT_BURST;
    if (ok)
        rl->logged++;
    else
        rl->dropped++;
    pthread_mutex_unlock(&lock);
    if (dropped)
        hv_log(HV_LOG_WARN, "(%u more messages like the next one were left out in %d s)", dropped,
               HV_RATELIMIT_SECONDS);
    return ok;
}
