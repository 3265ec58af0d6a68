/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inject_syscall PID NR: make the running process PID (its main thread)
 * execute system call NR with zero arguments, as shellcode in a compromised
 * hv-vmm would: ptrace stops it at its next system call entry and changes
 * the number. The kernel applies seccomp after that stop, so the filter sees
 * NR. Prints how the process ended ("killed by signal 31") or "survived".
 *
 * inject_syscall PID open PATH: openat(AT_FDCWD, PATH, O_RDONLY) (and a
 * close of what it got); inject_syscall PID connect PATH: socket(AF_UNIX)
 * then connect() to PATH (@NAME: the abstract socket NAME), then close().
 * PATH is written into the process's stack below its red zone and the bytes
 * there put back; the interrupted system call is restarted afterwards, so a
 * process the filter lets through runs on. Prints "returned N" or
 * "returned -errno (text)" for the open or the connect.
 *
 * Built static by tests/vmm/test_vmm_sandbox.py and run in the virtual laptop.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "inject_syscall: %s: %s\n", what, strerror(errno));
    return 2;
}

static pid_t pid;
static struct user_regs_struct saved;

/* Stop at the next system call entry (the main loop's epoll_wait, restarted). 0, 1 if it ended. */
static int to_syscall_entry(void)
{
    int status;
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0 || waitpid(pid, &status, __WALL) != pid)
            return fail("PTRACE_SYSCALL");
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            printf("inject_syscall: the process ended before the injection\n");
            return 1;
        }
        if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
            return 0;
    }
}

/*
 * At a system call stop: run system call nr(a0, a1, a2) and come to its exit
 * stop. *ret gets its return value; 1 if the process died (printed), 0, or 2.
 */
static int run_syscall(long nr, unsigned long a0, unsigned long a1, unsigned long a2, long *ret,
                       bool at_entry)
{
    struct user_regs_struct r = saved;
    int status;
    if (!at_entry) {
        /* At an exit stop: back over the syscall instruction, to a new entry. */
        r.rip -= 2;
        r.rax = (unsigned long long)nr;
        if (ptrace(PTRACE_SETREGS, pid, 0, &r) < 0 || ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0 ||
            waitpid(pid, &status, __WALL) != pid)
            return fail("to the next entry");
        if (WIFSIGNALED(status)) {
            printf("inject_syscall: killed by signal %d\n", WTERMSIG(status));
            return 1;
        }
        if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
            return fail("PTRACE_GETREGS");
    }
    r.orig_rax = (unsigned long long)nr;
    r.rdi = a0;
    r.rsi = a1;
    r.rdx = a2;
    r.r10 = r.r8 = r.r9 = 0;
    if (ptrace(PTRACE_SETREGS, pid, 0, &r) < 0 || ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0 ||
        waitpid(pid, &status, __WALL) != pid)
        return fail("PTRACE_SYSCALL (injected)");
    if (WIFSIGNALED(status)) {
        printf("inject_syscall: killed by signal %d\n", WTERMSIG(status));
        return 1;
    }
    if (WIFEXITED(status)) {
        printf("inject_syscall: exited with %d\n", WEXITSTATUS(status));
        return 1;
    }
    if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
        return fail("PTRACE_GETREGS");
    *ret = (long)r.rax;
    return 0;
}

static void print_ret(const char *what, long ret)
{
    if (ret < 0)
        printf("inject_syscall: %s returned %ld (%s)\n", what, ret, strerror((int)-ret));
    else
        printf("inject_syscall: %s returned %ld\n", what, ret);
}

/* open or connect with a path written into the process's stack. */
static int inject_path_steps(const char *op, const char *path)
{
    union {
        struct sockaddr_un sun;
        char path[sizeof(struct sockaddr_un)];
        long words[(sizeof(struct sockaddr_un) + sizeof(long) - 1) / sizeof(long)];
    } buf;
    memset(&buf, 0, sizeof(buf));
    bool is_connect = strcmp(op, "connect") == 0;
    size_t len;
    if (is_connect) {
        buf.sun.sun_family = AF_UNIX;
        bool abstract = path[0] == '@';
        if (strlen(path) >= sizeof(buf.sun.sun_path)) {
            fprintf(stderr, "inject_syscall: path too long\n");
            return 2;
        }
        memcpy(buf.sun.sun_path, path, strlen(path));
        if (abstract)
            buf.sun.sun_path[0] = '\0';
        len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + !abstract;
    } else {
        if (strlen(path) >= sizeof(buf.path)) {
            fprintf(stderr, "inject_syscall: path too long\n");
            return 2;
        }
        memcpy(buf.path, path, strlen(path));
        len = strlen(path) + 1;
    }
    /* 1 KiB below the stack pointer: past the red zone, in pages the process has used. */
    unsigned long addr = (saved.rsp - 1024) & ~7ul;
    long old[sizeof(buf.words) / sizeof(long)];
    size_t nw = sizeof(buf.words) / sizeof(long);
    for (size_t i = 0; i < nw; i++) {
        errno = 0;
        old[i] = ptrace(PTRACE_PEEKDATA, pid, addr + i * sizeof(long), 0);
        if (errno || ptrace(PTRACE_POKEDATA, pid, addr + i * sizeof(long), buf.words[i]) < 0)
            return fail("writing the path");
    }
    long fd, ret;
    int r;
    if (is_connect) {
        if ((r = run_syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &fd, true)))
            return r;
        print_ret("socket", fd);
        if (fd < 0)
            return 2;
        if ((r = run_syscall(SYS_connect, (unsigned long)fd, addr, len, &ret, false)))
            return r;
        print_ret("connect", ret);
    } else {
        if ((r = run_syscall(SYS_openat, (unsigned long)AT_FDCWD, addr, O_RDONLY | O_CLOEXEC, &fd,
                             true)))
            return r;
        print_ret("open", fd);
    }
    if (fd >= 0 && (r = run_syscall(SYS_close, (unsigned long)fd, 0, 0, &ret, false)))
        return r;
    for (size_t i = 0; i < nw; i++)
        if (ptrace(PTRACE_POKEDATA, pid, addr + i * sizeof(long), old[i]) < 0)
            return fail("putting the stack back");
    /* The interrupted system call made again, as if nothing had happened. */
    struct user_regs_struct back = saved;
    back.rip -= 2;
    back.rax = saved.orig_rax;
    if (ptrace(PTRACE_SETREGS, pid, 0, &back) < 0 || ptrace(PTRACE_DETACH, pid, 0, 0) < 0)
        return fail("PTRACE_DETACH");
    printf("inject_syscall: survived\n");
    return 0;
}

/* 0 when it ran or how the process ended was printed, 2 on a failure of the injection. */
static int inject_path(const char *op, const char *path)
{
    int r = inject_path_steps(op, path);
    return r == 1 ? 0 : r;
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && (!strcmp(argv[2], "open") || !strcmp(argv[2], "connect")))) {
        fprintf(stderr, "usage: inject_syscall PID NR | PID open PATH | PID connect PATH|@NAME\n");
        return 2;
    }
    pid = atoi(argv[1]);
    int status;

    if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD) < 0)
        return fail("PTRACE_SEIZE");
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 || waitpid(pid, &status, __WALL) != pid)
        return fail("PTRACE_INTERRUPT");
    if (to_syscall_entry())
        return 1;
    if (ptrace(PTRACE_GETREGS, pid, 0, &saved) < 0)
        return fail("PTRACE_GETREGS");
    if (argc == 4) {
        printf("inject_syscall: at system call %llu: %s %s\n", saved.orig_rax, argv[2], argv[3]);
        return inject_path(argv[2], argv[3]);
    }
    long nr = atol(argv[2]);
    struct user_regs_struct regs = saved;
    printf("inject_syscall: replacing system call %llu with %ld\n", regs.orig_rax, nr);
    regs.orig_rax = (unsigned long long)nr;
    regs.rdi = regs.rsi = regs.rdx = regs.r10 = regs.r8 = regs.r9 = 0;
    if (ptrace(PTRACE_SETREGS, pid, 0, &regs) < 0)
        return fail("PTRACE_SETREGS");
    if (ptrace(PTRACE_CONT, pid, 0, 0) < 0)
        return fail("PTRACE_CONT");
    /* Either it dies now, or it comes to the system call's exit stop. */
    if (waitpid(pid, &status, __WALL) != pid)
        return fail("waitpid");
    if (WIFSIGNALED(status))
        printf("inject_syscall: killed by signal %d\n", WTERMSIG(status));
    else if (WIFEXITED(status))
        printf("inject_syscall: exited with %d\n", WEXITSTATUS(status));
    else if (ptrace(PTRACE_DETACH, pid, 0, 0) == 0)
        printf("inject_syscall: survived\n");
    else
        return fail("PTRACE_DETACH");
    return 0;
}
