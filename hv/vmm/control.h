/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The per-VM control socket (--control PATH): a unix stream socket that
 * speaks one JSON object per line (docs/vmm-control.md). Served on the
 * main loop's thread, so commands never race with the lifecycle.
 */
#ifndef HV_VMM_CONTROL_H
#define HV_VMM_CONTROL_H

struct vm;
struct json_object;

/* Bind the socket at path (replacing a stale one) and start serving. */
int control_init(struct vm *vm, const char *path);
void control_destroy(struct vm *vm);

/*
 * Answer one request object: returns the reply (caller puts it). Split out
 * for unit tests; commands act on vm through vm.h.
 */
struct json_object *control_handle(struct vm *vm, struct json_object *req);

#endif
