/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-vmm's namespaces (docs/vmm.md, "Sandbox"): a mount namespace whose
 * root ends up an empty read-only tmpfs, and a network namespace of its
 * own, so that a compromised hv-vmm finds no path to open or connect to
 * and no abstract unix socket of the host.
 *
 * The order is forced by the kernel: unshare(CLONE_NEWNS) fails with EINVAL
 * once threads share the fs struct, and a network namespace is inherited
 * by the threads created after it; so both are made first, while hv-vmm has
 * one thread. Everything is then opened as usual in the copy of the host's
 * mounts; the TAP alone is opened back in the host's network namespace
 * (an interface lives where it is created). Once the VM is built the root
 * is swapped for an empty tmpfs (pivot_root moves every thread's root).
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* Any directory will do to build the new root on (the namespace is ours): one that never holds a
 * socket, so it cannot hide the directory bound into the new root. */
#define NEW_ROOT "/proc"

int sandbox_unshare(struct sandbox_config *cfg, char *err, size_t errlen)
{
    cfg->namespaces = false;
    if (cfg->mode == SANDBOX_OFF || geteuid() != 0)
        return 0;
    int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host < 0) {
        snprintf(err, errlen, "cannot open /proc/self/ns/net: %s", strerror(errno));
        return -1;
    }
    if (unshare(CLONE_NEWNS | CLONE_NEWNET) < 0) {
        snprintf(err, errlen, "cannot make a mount and network namespace: %s", strerror(errno));
        close(host);
        return -1;
    }
    /* Nothing we mount goes back to the host, nothing the host mounts comes in. */
    int own = -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        (own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot set up the mount namespace: %s", strerror(errno));
        close(host);
        return -1;
    }
    cfg->host_net_fd = host;
    cfg->own_net_fd = own;
    cfg->namespaces = true;
    return 0;
}

int sandbox_net_host(const struct sandbox_config *cfg, bool host)
{
    if (!cfg || !cfg->namespaces)
        return 0;
    if (setns(host ? cfg->host_net_fd : cfg->own_net_fd, CLONE_NEWNET) < 0) {
        log_err("sandbox: cannot enter %s network namespace: %s", host ? "the host's" : "its own",
                strerror(errno));
        return -1;
    }
    return 0;
}

/* mkdir -p of an absolute path under the new root (root/path). */
static int make_dirs(const char *root, const char *path)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s%s", root, path) >= (int)sizeof(p))
        return -1;
    for (char *s = p + strlen(root) + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -1;
            *s = c;
            if (c == '\0')
                return 0;
        }
    }
}

/*
 * The directory of the socket connected to again later, bound read-only at
 * its own path: the directory, not the socket, since a restarted hv-switch
 * makes a new socket there. connect() needs no writable mount.
 */
static int bind_socket_dir(const char *sock, char *err, size_t errlen)
{
    char abs[PATH_MAX], cwd[PATH_MAX], target[PATH_MAX + 8];
    if (sock[0] == '/')
        snprintf(abs, sizeof(abs), "%s", sock);
    else if (!getcwd(cwd, sizeof(cwd)) ||
             snprintf(abs, sizeof(abs), "%s/%s", cwd, sock) >= (int)sizeof(abs))
        goto fail;
    char *slash = strrchr(abs, '/');
    if (slash == abs) {
        /* Binding / would give the whole host back. */
        snprintf(err, errlen, "%s: a socket connected to again must not be in / itself", sock);
        return -1;
    }
    *slash = '\0';
    struct stat st;
    if (stat(abs, &st) < 0 && errno == ENOENT) {
        /* Nothing to bind: hv-switch has not made its directory yet, and cannot be reached. */
        log_warn("sandbox: %s does not exist: the display cannot reach hv-switch there (start "
                 "hv-switch first)",
                 abs);
        return 0;
    }
    if (make_dirs(NEW_ROOT, abs) < 0)
        goto fail;
    snprintf(target, sizeof(target), "%s%s", NEW_ROOT, abs);
    if (mount(abs, target, NULL, MS_BIND, NULL) < 0 ||
        mount(NULL, target, NULL,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot give the new root the directory of %s: %s", sock,
             strerror(errno));
    return -1;
}

int sandbox_empty_root(struct sandbox_config *cfg, char *err, size_t errlen)
{
    if (!cfg->namespaces)
        return 0;
    char cwd[PATH_MAX];
    bool have_cwd = getcwd(cwd, sizeof(cwd)) != NULL;
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("hv-vmm", NEW_ROOT, "tmpfs", flags, "mode=0755,size=64k,nr_inodes=64") < 0) {
        snprintf(err, errlen, "cannot mount the new root's tmpfs: %s", strerror(errno));
        return -1;
    }
    if (cfg->reconnect && bind_socket_dir(cfg->reconnect, err, errlen) < 0)
        return -1;
    if (mount(NULL, NEW_ROOT, NULL, MS_REMOUNT | MS_RDONLY | flags, NULL) < 0 ||
        chdir(NEW_ROOT) < 0) {
        snprintf(err, errlen, "cannot make the new root read-only: %s", strerror(errno));
        return -1;
    }
    /* The old root is stacked under the new one and detached: nothing of it stays reachable. */
    if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
        snprintf(err, errlen, "cannot swap the root for an empty one (pivot_root): %s",
                 strerror(errno));
        return -1;
    }
    /* A relative socket path still works where its directory was bound (docs/vmm.md). */
    if (have_cwd && chdir(cwd) < 0 && chdir("/") < 0) {
        snprintf(err, errlen, "cannot enter the new root: %s", strerror(errno));
        return -1;
    }
    /* No way back to the host's network: a compromised hv-vmm has no CAP_SYS_ADMIN, nor the fd. */
    close(cfg->host_net_fd);
    close(cfg->own_net_fd);
    cfg->host_net_fd = cfg->own_net_fd = -1;
    return 0;
}
