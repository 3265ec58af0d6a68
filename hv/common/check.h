/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Assertions for hv's C unit tests: failures are counted, the exit status says. */
#ifndef HV_TESTS_CHECK_H
#define HV_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_DONE()                                                                               \
    do {                                                                                           \
        if (check_failures)                                                                        \
            fprintf(stderr, "%d check(s) failed\n", check_failures);                               \
        return check_failures ? EXIT_FAILURE : EXIT_SUCCESS;                                       \
    } while (0)

#endif
