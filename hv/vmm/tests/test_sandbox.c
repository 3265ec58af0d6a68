/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-vmm's sandbox without KVM: each case forks a child that installs the
 * real filter (or drops its user) and then does one thing; the parent
 * checks whether the child lived or was killed by SIGSYS.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "sandbox.h"

#define LIVED  0
#define KILLED (-SIGSYS)

typedef int (*child_fn)(void);

/* Run fn in a child under the filter: its exit status (0 = all it checked was right), or -signal.
 */
static int in_child(enum sandbox_mode mode, child_fn fn)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char err[256];
        if (sandbox_install_filter(mode, err, sizeof(err)) < 0) {
            fprintf(stderr, "filter: %s\n", err);
            _exit(100);
        }
        _exit(fn());
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1000;
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

static void *thread_main(void *arg)
{
    return arg;
}

/* What a running hv-vmm does: all of it must pass. */
static int allowed_things(void)
{
    int fails = 0;
    char c = 'x';
    uint64_t one = 1;
    int e = eventfd(0, EFD_CLOEXEC);
    if (e < 0 || write(e, &one, 8) != 8 || read(e, &one, 8) != 8 || close(e) < 0)
        fails++;
    void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || munmap(m, 8192) < 0)
        fails++;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        fails++;
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, NULL, thread_main, &c) != 0 || pthread_join(t, &ret) != 0 || ret != &c)
        fails++;
    /* clone3 is refused softly (glibc then uses clone), unlink too. */
    if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
        fails++;
    if (unlink("/nonexistent/hv-sandbox-test") != -1 || errno != EACCES)
        fails++;
    return fails;
}

static int fd_null = -1;

/* An allowed ioctl request on an fd that does not know it: the kernel answers, no kill. */
static int kvm_run_ioctl(void)
{
    return ioctl(fd_null, KVM_RUN, 0) == -1 && errno == ENOTTY ? 0 : 1;
}

static int tiocsti_ioctl(void)
{
    char c = 'x';
    ioctl(fd_null, TIOCSTI, &c); /* pushing input into a terminal: the classic escape */
    return 0;
}

static int open_file(void)
{
    open("/etc/passwd", O_RDONLY);
    return 0;
}

static int inet_socket(void)
{
    socket(AF_INET, SOCK_STREAM, 0);
    return 0;
}

static int exec_shell(void)
{
    char *argv[] = {"/bin/sh", "-c", "true", NULL};
    execv(argv[0], argv);
    return 0;
}

static int new_process(void)
{
    pid_t p = fork(); /* clone without CLONE_THREAD */
    if (p == 0)
        _exit(0);
    return 0;
}

static int exec_memory(void)
{
    mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return 0;
}

static pid_t parent; /* getppid() itself is not in the filter */

static int signal_other(void)
{
    syscall(SYS_tgkill, parent, parent, 0);
    return 0;
}

static int become_root(void)
{
    syscall(SYS_setresuid, 0, 0, 0);
    return 0;
}

static void test_filter(void)
{
    fd_null = open("/dev/null", O_RDWR | O_CLOEXEC);
    parent = getpid();
    CHECK(fd_null >= 0);
    CHECK(in_child(SANDBOX_ON, allowed_things) == LIVED);
    CHECK(in_child(SANDBOX_ON, kvm_run_ioctl) == LIVED);
    CHECK(in_child(SANDBOX_ON, tiocsti_ioctl) == KILLED);
    CHECK(in_child(SANDBOX_ON, open_file) == KILLED);
    CHECK(in_child(SANDBOX_ON, inet_socket) == KILLED);
    CHECK(in_child(SANDBOX_ON, exec_shell) == KILLED);
    CHECK(in_child(SANDBOX_ON, new_process) == KILLED);
    CHECK(in_child(SANDBOX_ON, exec_memory) == KILLED);
    CHECK(in_child(SANDBOX_ON, signal_other) == KILLED);
    CHECK(in_child(SANDBOX_ON, become_root) == KILLED);
    /* Log mode lets everything through (the kernel logs it). */
    CHECK(in_child(SANDBOX_LOG, inet_socket) == LIVED);
    CHECK(in_child(SANDBOX_LOG, open_file) == LIVED);
    /* Off: no filter at all. */
    CHECK(in_child(SANDBOX_OFF, exec_memory) == LIVED);
    close(fd_null);
}

/* The user switch: only root can do it; then root must be out of reach. */
static void test_drop_user(void)
{
    struct sandbox_config cfg = {.drop_user = true, .uid = 65534, .gid = 65534};
    char err[256] = "";

    if (geteuid() != 0) {
        CHECK(sandbox_drop_user(&cfg, err, sizeof(err)) < 0);
        CHECK(strstr(err, "needs hv-vmm to be started as root"));
        fprintf(stderr, "test_drop_user: not root, only the refusal was checked\n");
        return;
    }
    cfg.groups[0] = 65533;
    cfg.nr_groups = 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fails = sandbox_drop_user(&cfg, err, sizeof(err)) < 0;
        gid_t g[4];
        fails += getuid() != 65534 || geteuid() != 65534 || getgid() != 65534;
        fails += getgroups(4, g) != 1 || g[0] != 65533;
        fails += setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0;
        fails += open("/proc/1/environ", O_RDONLY) >= 0; /* root's files are out of reach */
        if (fails)
            fprintf(stderr, "drop: %s\n", err);
        _exit(fails);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The whole step as hv-vmm runs it, in a process with threads already running. */
static int whole_enter(void)
{
    struct sandbox_config cfg = {.mode = SANDBOX_ON};
    if (geteuid() == 0) {
        cfg.drop_user = true;
        cfg.uid = cfg.gid = 65534;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || sandbox_enter(&cfg) < 0)
        return 1;
    pthread_join(t, NULL);
    open("/etc/passwd", O_RDONLY); /* must die here */
    return 2;
}

static void test_enter(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(whole_enter());
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS);
}

int main(void)
{
    test_filter();
    test_drop_user();
    test_enter();
    CHECK_DONE();
}
