/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk jobs: long disk work (qemu-img) run as child processes that the event
 * loop watches (a pidfd and two pipes), so hvd answers everyone else
 * meanwhile. A job makes one image: its steps write a hidden temporary file
 * next to it, renamed to the image's name only when every step succeeded.
 * The requester's reply is deferred until the job ends (docs/hvd-api.md).
 */
#ifndef HV_HVD_JOB_H
#define HV_HVD_JOB_H

#include "hvd.h"

#define JOB_MAX 4 /* jobs at once; more are refused with "busy" */

struct job;

/* After the last step and the rename: the reply's result, or NULL with e set. */
typedef struct json_object *(*job_done_fn)(struct hvd *d, const char *name, struct api_error *e);

/*
 * A job that makes the image `name` at `path`, reading `source_path` (NULL if
 * none). op names the work in events and listings ("create", "clone").
 */
struct job *job_new(struct hvd *d, const char *op, const char *name, const char *path,
                    const char *source_path);
/*
 * Adds a step (argv is copied). If it fails, the reply is an error with
 * `code` and the message prefix + the step's stderr + suffix. progress: its
 * stdout is `qemu-img -p` output, reported as disk.progress events.
 */
void job_add_step(struct job *j, const char *const *argv, bool progress, const char *code,
                  const char *prefix, const char *suffix);
/* The temporary file the steps write. */
const char *job_tmp_path(const struct job *j);
/* Frees a job that was not started. */
void job_free(struct job *j);
/*
 * Starts the steps and defers the current request's reply (api_defer(e),
 * returns 0), or returns -1 with e set (and frees j).
 */
int job_start(struct job *j, struct client *c, job_done_fn done, struct api_error *e);

/* -1 with code "busy" in e when a job writes path, or reads it and !reading_ok. */
int job_check_free(const char *path, bool reading_ok, struct api_error *e);
/* {"jobs": [...]} for disk.jobs. */
struct json_object *job_list(void);
/* Stops the job that makes `name`: its requester gets "cancelled". */
int job_cancel(const char *name, struct api_error *e);
/* Removes temporary files that no job owns (left by a killed hvd). */
void job_sweep_stale(const char *images_dir);

#endif
