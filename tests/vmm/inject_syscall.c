/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inject_syscall PID NR: make the running process PID (its main thread)
 * execute system call NR with zero arguments, as shellcode in a compromised
 * hv-vmm would: ptrace stops it at its next system call entry and changes
 * the number. The kernel applies seccomp after that stop, so the filter sees
 * NR. Prints how the process ended ("killed by signal 31") or "survived".
 * Built static by tests/vmm/test_vmm_sandbox.py and run in the virtual laptop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "inject_syscall: %s: %s\n", what, strerror(errno));
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: inject_syscall PID NR\n");
        return 2;
    }
    pid_t pid = atoi(argv[1]);
    long nr = atol(argv[2]);
    int status;

    if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD) < 0)
        return fail("PTRACE_SEIZE");
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 || waitpid(pid, &status, __WALL) != pid)
        return fail("PTRACE_INTERRUPT");
    /* Run to the next system call entry (the main loop's epoll_wait, restarted). */
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0 || waitpid(pid, &status, __WALL) != pid)
            return fail("PTRACE_SYSCALL");
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            printf("inject_syscall: the process ended before the injection\n");
            return 1;
        }
        if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
            break;
    }
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0)
        return fail("PTRACE_GETREGS");
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
