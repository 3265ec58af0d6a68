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

/* Log an error and exit(1). For start-up failures only, never on a guest's input. */
_Noreturn void hv_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
