/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-vmm's sandbox: the user switch and its checks (the filter is in sandbox_filter.c). */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int sandbox_parse_mode(const char *arg, enum sandbox_mode *mode, char *err, size_t errlen)
{
    if (strcmp(arg, "on") == 0)
        *mode = SANDBOX_ON;
    else if (strcmp(arg, "log") == 0)
        *mode = SANDBOX_LOG;
    else if (strcmp(arg, "off") == 0)
        *mode = SANDBOX_OFF;
    else {
        snprintf(err, errlen, "--sandbox %s: give on, log or off", arg);
        return -1;
    }
    return 0;
}

/* One id of --user: a number below 2^32 - 1 ((uid_t)-1 means "unchanged" to the kernel). */
static int parse_id(const char *s, size_t len, uint32_t *id)
{
    char buf[16];
    uint64_t v;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (parse_uint(buf, 0, UINT32_MAX - 1, &v) < 0)
        return -1;
    *id = (uint32_t)v;
    return 0;
}

int sandbox_parse_user(const char *arg, struct sandbox_config *cfg, char *err, size_t errlen)
{
    const char *colon = strchr(arg, ':');
    const char *groups = colon ? strchr(colon + 1, ':') : NULL;
    const char *gid_end = groups ? groups : colon ? colon + strlen(colon) : NULL;
    uint32_t uid, gid;

    if (!colon || parse_id(arg, (size_t)(colon - arg), &uid) < 0 ||
        parse_id(colon + 1, (size_t)(gid_end - colon - 1), &gid) < 0)
        goto bad;
    cfg->nr_groups = 0;
    for (const char *p = groups ? groups + 1 : NULL; p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        uint32_t g;
        if (cfg->nr_groups == SANDBOX_MAX_GROUPS) {
            snprintf(err, errlen, "--user %s: at most %d supplementary groups", arg,
                     SANDBOX_MAX_GROUPS);
            return -1;
        }
        if (parse_id(p, len, &g) < 0)
            goto bad;
        cfg->groups[cfg->nr_groups++] = g;
        p = comma ? comma + 1 : NULL;
    }
    if (uid == 0 || gid == 0) {
        snprintf(err, errlen, "--user %s: hv-vmm drops privileges to a user other than root", arg);
        return -1;
    }
    for (unsigned i = 0; i < cfg->nr_groups; i++) {
        if (cfg->groups[i] == 0) {
            snprintf(err, errlen, "--user %s: group 0 (root) is not given to a VM", arg);
            return -1;
        }
    }
    cfg->drop_user = true;
    cfg->uid = uid;
    cfg->gid = gid;
    return 0;
bad:
    snprintf(err, errlen,
             "--user %s: write --user UID:GID or --user UID:GID:GROUP,GROUP with numbers, e.g. "
             "--user 1900000001:1900000001",
             arg);
    return -1;
}

/* Capabilities of this thread (capget has no glibc wrapper). */
static int caps_held(bool *any)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

    if (syscall(SYS_capget, &h, d) < 0)
        return -1;
    *any = false;
    for (unsigned i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (d[i].effective || d[i].permitted)
            *any = true;
    return 0;
}

/* After the switch: the ids are ours everywhere and root is out of reach. */
static int check_dropped(const struct sandbox_config *cfg, char *err, size_t errlen)
{
    uid_t r, e, s;
    gid_t rg, eg, sg, groups[SANDBOX_MAX_GROUPS + 1];
    bool caps;

    if (getresuid(&r, &e, &s) < 0 || r != cfg->uid || e != cfg->uid || s != cfg->uid ||
        getresgid(&rg, &eg, &sg) < 0 || rg != cfg->gid || eg != cfg->gid || sg != cfg->gid) {
        snprintf(err, errlen, "the user and group ids are not %u:%u after the switch",
                 (unsigned)cfg->uid, (unsigned)cfg->gid);
        return -1;
    }
    int n = getgroups(SANDBOX_MAX_GROUPS + 1, groups);
    if (n < 0 || (unsigned)n != cfg->nr_groups) {
        snprintf(err, errlen, "the supplementary groups were not replaced");
        return -1;
    }
    if (caps_held(&caps) < 0 || caps) {
        snprintf(err, errlen, "capabilities are still held after the switch");
        return -1;
    }
    /*
     * The raw system calls (glibc's wrappers would act on every thread): if
     * one of these succeeded, the drop could be undone.
     */
    if (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0 ||
        syscall(SYS_setgroups, 0, NULL) == 0) {
        snprintf(err, errlen, "root could be regained after the switch");
        return -1;
    }
    return 0;
}

int sandbox_drop_user(const struct sandbox_config *cfg, char *err, size_t errlen)
{
    if (!cfg->drop_user)
        return 0;
    /* glibc applies these to every thread of the process. Groups first, while still root. */
    if (setgroups(cfg->nr_groups, cfg->groups) < 0 || setresgid(cfg->gid, cfg->gid, cfg->gid) < 0 ||
        setresuid(cfg->uid, cfg->uid, cfg->uid) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot switch to user %u:%u: %s%s", (unsigned)cfg->uid,
                 (unsigned)cfg->gid, strerror(e),
                 e == EPERM ? " (--user needs hv-vmm to be started as root)" : "");
        return -1;
    }
    return check_dropped(cfg, err, errlen);
}

int sandbox_enter(struct sandbox_config *cfg)
{
    char err[256];

    /* glibc reads /etc/localtime on the first gmtime_r() (the RTC's): now, not under the filter. */
    tzset();
    if (cfg->mode != SANDBOX_OFF) {
        /* No core dumps of guest memory, no ptrace by other processes of this user. */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    /* While still root: the empty root needs CAP_SYS_ADMIN. */
    if (sandbox_empty_root(cfg, err, sizeof(err)) < 0) {
        log_err("sandbox: %s (--sandbox off runs without namespaces)", err);
        return -1;
    }
    if (sandbox_drop_user(cfg, err, sizeof(err)) < 0) {
        log_err("sandbox: %s", err);
        return -1;
    }
    /* Checked now: access() is not in the filter. */
    if (cfg->drop_user && cfg->reconnect && access(cfg->reconnect, W_OK) < 0)
        log_warn("sandbox: user %u cannot connect to %s (%s): if hv-switch restarts, this VM's "
                 "display will not come back (give the socket's group: --user UID:GID:GROUP)",
                 (unsigned)cfg->uid, cfg->reconnect, strerror(errno));
    if (cfg->mode == SANDBOX_OFF) {
        log_warn("sandbox: off (--sandbox off): no system call filter");
        return 0;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
        log_err("sandbox: cannot set NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }
    if (sandbox_install_filter(cfg->mode, err, sizeof(err)) < 0) {
        log_err("sandbox: %s (--sandbox off runs without it)", err);
        return -1;
    }
    if (cfg->drop_user)
        log_info("sandbox: running as %u:%u with the system call filter%s%s", (unsigned)cfg->uid,
                 (unsigned)cfg->gid, cfg->mode == SANDBOX_LOG ? " in log mode" : "",
                 cfg->namespaces ? ", an empty root and no network" : "");
    else
        log_info("sandbox: system call filter on%s%s; the user is unchanged (%u)%s",
                 cfg->mode == SANDBOX_LOG ? " in log mode" : "",
                 cfg->namespaces ? ", an empty root and no network" : "", (unsigned)getuid(),
                 getuid() == 0 ? ": give --user UID:GID to leave root" : "");
    return 0;
}
