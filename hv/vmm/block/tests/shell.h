/* SPDX-License-Identifier: GPL-2.0-or-later */
/* For the image tests: shell commands (qemu-img, qemu-io) run in the test's folder. */
#ifndef HV_VMM_BLOCK_TESTS_SHELL_H
#define HV_VMM_BLOCK_TESTS_SHELL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Run a command in dir, its output discarded; returns its exit status (said when not 0). */
static int sh_in(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh_in(const char *dir, const char *fmt, ...)
{
    char cmd[1024], full[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "cd %s && %s >/dev/null 2>&1", dir, cmd);
    int st = system(full);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (rc)
        fprintf(stderr, "  (exit %d) %s\n", rc, cmd);
    return rc;
}

/* dir/name in one of four rotating buffers (enough for one call's arguments). */
static const char *path_in(const char *dir, const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

#endif
