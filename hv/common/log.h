/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging shared by every hv program: one line per message on stderr. */
#ifndef HV_COMMON_LOG_H
#define HV_COMMON_LOG_H

#include <stdarg.h>

enum hv_log_level {
    HV_LOG_ERROR,
    HV_LOG_WARN,
    HV_LOG_INFO,
    HV_LOG_DEBUG,
};

/* The program name printed before each message ("hv-vmm"). */
void hv_log_init(const char *prog);
void hv_log_set_level(enum hv_log_level level);
enum hv_log_level hv_log_get_level(void);

void hv_log(enum hv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hv_vlog(enum hv_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_err(...)   hv_log(HV_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  hv_log(HV_LOG_WARN, __VA_ARGS__)
#define log_info(...)  hv_log(HV_LOG_INFO, __VA_ARGS__)
#define log_debug(...) hv_log(HV_LOG_DEBUG, __VA_ARGS__)

/*
 * Messages a guest can trigger again and again (a hostile one in a loop)
 * go through a rate limit: at most HV_RATELIMIT_BURST per
 * HV_RATELIMIT_SECONDS per call site, then one line saying how many were
 * left out once the next window starts. Thread-safe.
 */
#define HV_RATELIMIT_BURST   10
#define HV_RATELIMIT_SECONDS 60
struct hv_ratelimit {
    long long window_start; /* seconds, CLOCK_MONOTONIC */
    unsigned logged, dropped;
};
/* Whether this message may be logged now (the state is the call site's own). */
int hv_ratelimit_ok(struct hv_ratelimit *rl);

#define log_limited(level, ...)                                                                    \
    do {                                                                                           \
        static struct hv_ratelimit hv_rl_;                                                         \
        if (hv_ratelimit_ok(&hv_rl_))                                                              \
            hv_log(level, __VA_ARGS__);                                                            \
    } while (0)
#define log_warn_limited(...) log_limited(HV_LOG_WARN, __VA_ARGS__)

/* Log an error and exit(1). For start-up failures only, never on a guest's input. */
_Noreturn void hv_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
