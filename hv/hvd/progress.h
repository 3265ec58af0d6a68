/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The progress that `qemu-img convert -p` prints ("    (12.34/100%)\r"),
 * read from a pipe in chunks that may split a record anywhere. The text is
 * treated as untrusted: anything that is not exactly a record is skipped,
 * and the fraction never goes backwards or outside [0, 1].
 */
#ifndef HV_HVD_PROGRESS_H
#define HV_HVD_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

#define PROGRESS_RECORD_MAX 48 /* longer records are garbage */

struct progress {
    char rec[PROGRESS_RECORD_MAX];
    size_t len;
    bool overlong;   /* the current record is too long: skip it up to its end */
    double fraction; /* best so far, -1 before the first record */
};

void progress_init(struct progress *p);

/* Feeds bytes; returns true when the fraction grew. */
bool progress_feed(struct progress *p, const char *data, size_t n);

/* One record without its '\r' or '\n': the percentage / 100, or -1 if it is not one. */
double progress_parse_record(const char *rec, size_t len);

#endif
