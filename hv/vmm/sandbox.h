/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-vmm's sandbox (docs/vmm.md, "Sandbox"): once every file, device and
 * socket of the VM is open, and before a vCPU runs guest code, hv-vmm drops
 * to its own unprivileged user and installs a seccomp allow-list, so that a
 * guest that takes over hv-vmm gets neither root nor new files, processes
 * or sockets beyond what the VM already had.
 */
#ifndef HV_VMM_SANDBOX_H
#define HV_VMM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_MAX_GROUPS 8

enum sandbox_mode {
    SANDBOX_ON,  /* the filter kills the process on any other system call */
    SANDBOX_LOG, /* development: other system calls are allowed and logged by the kernel */
    SANDBOX_OFF, /* no filter, no NO_NEW_PRIVS, dumpable kept: for gdb/strace */
};

struct sandbox_config {
    enum sandbox_mode mode;
    bool drop_user; /* --user given */
    uid_t uid;
    gid_t gid;
    gid_t groups[SANDBOX_MAX_GROUPS]; /* supplementary groups; none by default */
    unsigned nr_groups;
    const char *reconnect; /* a unix socket connected to again later (--display), or NULL */
    /* sandbox_unshare() made the namespaces; the two network namespaces until the root swap */
    bool namespaces;
    int host_net_fd, own_net_fd;
};

/* "on", "log" or "off"; 0, or -1 with a sentence in err. */
int sandbox_parse_mode(const char *arg, enum sandbox_mode *mode, char *err, size_t errlen);

/* "UID:GID" or "UID:GID:GROUP,GROUP..." (numbers only, no NSS lookups); 0 or -1 + err. */
int sandbox_parse_user(const char *arg, struct sandbox_config *cfg, char *err, size_t errlen);

/*
 * Drop to cfg's user (all threads), check that root cannot be regained,
 * then, unless the mode is off, set NO_NEW_PRIVS and install the filter on
 * every thread. 0, or -1 after logging why: the VM must not start then.
 */
int sandbox_enter(struct sandbox_config *cfg);

/*
 * As root and unless the mode is off: a mount namespace (a private copy of
 * the host's mounts) and an empty network namespace, for the whole process.
 * Must run while hv-vmm has one thread (sandbox_ns.c says why). 0 (also when
 * nothing was done), or -1 + err.
 */
int sandbox_unshare(struct sandbox_config *cfg, char *err, size_t errlen);

/*
 * The calling thread into the host's network namespace (true) or back into
 * its own (false), around the open of a device that belongs to the host's
 * network (the TAP, vhost-vsock). Threads inherit it: start none in between.
 * Nothing to do without namespaces (or cfg NULL). 0, or -1 after logging.
 */
int sandbox_net_host(const struct sandbox_config *cfg, bool host);

/*
 * The root swapped for an empty read-only tmpfs holding only the directory
 * of cfg->reconnect (bound read-only at its own path); the host's network
 * namespace let go. Needs root; part of sandbox_enter(). 0 or -1 + err.
 */
int sandbox_empty_root(struct sandbox_config *cfg, char *err, size_t errlen);

/* The steps of sandbox_enter(), for the unit tests. 0 or -1 + err. */
int sandbox_drop_user(const struct sandbox_config *cfg, char *err, size_t errlen);
int sandbox_install_filter(enum sandbox_mode mode, char *err, size_t errlen);

#endif
