/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-vmm's namespaces without KVM (sandbox_ns.c): a child does what hv-vmm
 * does at start (sandbox_unshare(), then sandbox_empty_root()) and checks
 * what it can still reach; the parent holds a unix socket in a directory
 * (hv-switch's) and an abstract one (the host's). As root, or as root of a
 * user namespace of its own where the kernel allows one; skipped (77)
 * otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "sandbox.h"

#define SKIP 77

static char dir[64], sock_path[128], abstract_name[64];
static ino_t host_net;

/* A listening AF_UNIX socket: at path, or abstract (name without the leading NUL). */
static int listen_on(const char *name, bool abstract)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + abstract, sizeof(a.sun_path) - 1, "%s", name);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + strlen(name));
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, len) < 0 || listen(s, 4) < 0)
        return -1;
    return s;
}

/* connect() to it: 0, or the errno. */
static int connect_to(const char *name, bool abstract)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + abstract, sizeof(a.sun_path) - 1, "%s", name);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + strlen(name));
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ret = s < 0 || connect(s, (struct sockaddr *)&a, len) < 0 ? errno : 0;
    if (s >= 0)
        close(s);
    return ret;
}

static ino_t net_ns(void)
{
    struct stat st;
    return stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

/* Not root: become root of a user namespace (uid 0 = ours), as far as the kernel lets us. */
static bool real_root;

static bool become_root(void)
{
    real_root = geteuid() == 0;
    if (real_root)
        return true;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER) < 0)
        return false;
    char map[64];
    int fd, n;
    bool ok = true;
    const char *files[] = {"/proc/self/setgroups", "/proc/self/uid_map", "/proc/self/gid_map"};
    for (int i = 0; i < 3; i++) {
        n = i == 0 ? snprintf(map, sizeof(map), "deny")
                   : snprintf(map, sizeof(map), "0 %u 1", i == 1 ? (unsigned)uid : (unsigned)gid);
        fd = open(files[i], O_WRONLY);
        ok = ok && fd >= 0 && write(fd, map, (size_t)n) == n;
        if (fd >= 0)
            close(fd);
    }
    return ok;
}

/* The names in a directory other than . and ..; -1 if it cannot be read. */
static int entries(const char *path, char *first, size_t len)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n++ == 0)
            snprintf(first, len, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

/* In the child: hv-vmm's start-up, then what a compromised hv-vmm could reach. */
static int confined(const char *reconnect)
{
    if (!become_root())
        return SKIP;
    struct sandbox_config cfg = {.mode = SANDBOX_ON, .reconnect = reconnect};
    char err[256];
    if (sandbox_unshare(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "unshare: %s\n", err);
        return errno == EPERM ? SKIP : 1;
    }
    CHECK(cfg.namespaces);
    /* Its own network: the host's abstract socket is not there... */
    CHECK(net_ns() != 0 && net_ns() != host_net);
    CHECK(connect_to(abstract_name, true) == ECONNREFUSED);
    /* ...and the host's network is entered for a TAP's open alone (by real root only: the
     * root of a user namespace has no say over the host's network). */
    if (real_root) {
        CHECK(sandbox_net_host(&cfg, true) == 0 && net_ns() == host_net);
        CHECK(connect_to(abstract_name, true) == 0);
        CHECK(sandbox_net_host(&cfg, false) == 0 && net_ns() != host_net);
    }
    int kept = open("/etc/passwd", O_RDONLY | O_CLOEXEC); /* as a disk image would be */
    CHECK(kept >= 0);

    if (sandbox_empty_root(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "empty root: %s\n", err);
        return 1;
    }
    CHECK(cfg.host_net_fd == -1 && cfg.own_net_fd == -1);
    /* Nothing of the host by path: no files, no devices, no /proc, no system sockets. */
    const char *gone[] = {"/etc/passwd", "/dev/null", "/proc/self", "/run", "/usr/bin"};
    for (unsigned i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        struct stat st;
        CHECK(stat(gone[i], &st) < 0 && errno == ENOENT);
    }
    CHECK(open("/etc/passwd", O_RDONLY) < 0 && errno == ENOENT);
    CHECK(mkdir("/x", 0700) < 0 && errno == EROFS);
    char first[256] = "";
    int n = entries("/", first, sizeof(first));
    if (reconnect) {
        /* Only the way to hv-switch's directory, read-only, and its socket answers. */
        CHECK(n == 1 && strcmp(first, "tmp") == 0);
        CHECK(connect_to(reconnect, false) == 0);
        char f[160];
        snprintf(f, sizeof(f), "%s/new", dir);
        CHECK(open(f, O_WRONLY | O_CREAT, 0600) < 0 && errno == EROFS);
        CHECK(entries("/tmp", first, sizeof(first)) == 1);
    } else {
        CHECK(n == 0);
    }
    /* What was open before is still usable, and the abstract socket still out of reach. */
    char c;
    CHECK(kept >= 0 && read(kept, &c, 1) == 1);
    CHECK(connect_to(abstract_name, true) == ECONNREFUSED);
    /* The fds of the two networks are closed: the host's cannot be entered again. */
    CHECK(sandbox_net_host(&cfg, true) < 0);
    return check_failures ? 1 : 0;
}

/* A socket connected to again must not be in / itself: binding / gives the host back. */
static int socket_in_root_refused(void)
{
    if (!become_root())
        return SKIP;
    struct sandbox_config cfg = {.mode = SANDBOX_ON, .reconnect = "/switch.sock"};
    char err[256];
    if (sandbox_unshare(&cfg, err, sizeof(err)) < 0)
        return errno == EPERM ? SKIP : 1;
    CHECK(sandbox_empty_root(&cfg, err, sizeof(err)) < 0 && strstr(err, "must not be in /"));
    return check_failures ? 1 : 0;
}

/* --sandbox off: nothing is made, nothing changes. */
static int off_changes_nothing(void)
{
    struct sandbox_config cfg = {.mode = SANDBOX_OFF};
    char err[256];
    CHECK(sandbox_unshare(&cfg, err, sizeof(err)) == 0 && !cfg.namespaces);
    CHECK(net_ns() == host_net);
    CHECK(sandbox_empty_root(&cfg, err, sizeof(err)) == 0);
    CHECK(access("/proc/self", F_OK) == 0);
    return check_failures ? 1 : 0;
}

static int in_child(int (*fn)(const char *), const char *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        check_failures = 0; /* the child's own */
        _exit(fn(arg));
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int no_arg_refused(const char *unused)
{
    (void)unused;
    return socket_in_root_refused();
}

static int no_arg_off(const char *unused)
{
    (void)unused;
    return off_changes_nothing();
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/hv-test-ns-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/switch.sock", dir);
    snprintf(abstract_name, sizeof(abstract_name), "hv-test-ns-%d", (int)getpid());
    host_net = net_ns();
    int s1 = listen_on(sock_path, false), s2 = listen_on(abstract_name, true);
    CHECK(s1 >= 0 && s2 >= 0 && host_net != 0);

    int r = in_child(confined, sock_path);
    if (r == SKIP) {
        printf("no namespaces here (neither root nor a user namespace): skipped\n");
        unlink(sock_path);
        rmdir(dir);
        return SKIP;
    }
    CHECK(r == 0);
    CHECK(in_child(confined, NULL) == 0);
    CHECK(in_child(no_arg_refused, NULL) == 0);
    CHECK(in_child(no_arg_off, NULL) == 0);
    /* The parent's world is as it was. */
    CHECK(net_ns() == host_net && access("/etc/passwd", F_OK) == 0);
    CHECK(connect_to(sock_path, false) == 0);
    close(s1);
    close(s2);
    unlink(sock_path);
    rmdir(dir);
    CHECK_DONE();
}
