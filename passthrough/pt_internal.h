/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the passthrough library's files. */
#ifndef HV_PASSTHROUGH_PT_INTERNAL_H
#define HV_PASSTHROUGH_PT_INTERNAL_H

#include <stddef.h>

#include "pt.h"

/* Format a sentence into err; returns -1. */
int pt_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* sys->root followed by the formatted path. */
void pt_path(const struct pt_sys *sys, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int pt_read_line(const char *path, char *buf, size_t len);

#endif
