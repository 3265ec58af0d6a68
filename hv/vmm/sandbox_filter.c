/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The seccomp allow-list of a running hv-vmm: what the main loop, the vCPU
 * threads and the device threads call once the VM is built. Everything is
 * opened before (files, /dev/kvm, TAP, vhost, sockets); so open, exec, fork,
 * ptrace, mount, bind and the id calls are all out. Found by running guests
 * with every device under --sandbox log and strace (docs/vmm.md, "Sandbox").
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <linux/vhost.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"

/* Allowed whatever their arguments. */
static const int plain[] = {
    /* memory: malloc, thread stacks, guest RAM given back (balloon, reboot) */
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(madvise),
    SCMP_SYS(mremap),
    /* file descriptors hv-vmm already has */
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),
    SCMP_SYS(lseek),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(fallocate), /* punching RAM and discarded disk blocks */
    SCMP_SYS(ftruncate), /* a scanout's memfd, a growing qcow2 */
    SCMP_SYS(close),
    SCMP_SYS(dup),
    SCMP_SYS(fcntl),
    SCMP_SYS(memfd_create), /* virtio-gpu scanouts handed to hv-switch */
    /* the main loop and the device threads */
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(eventfd2),
    /* sockets already open: control clients, hv-switch, virtio-console */
    SCMP_SYS(accept),
    SCMP_SYS(accept4),
    SCMP_SYS(connect), /* reconnecting to hv-switch: a socket(AF_UNIX) below */
    SCMP_SYS(recvfrom),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),
    SCMP_SYS(sendmsg),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt),
    /* threads, time, signals */
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(getuid),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack), /* ASan/UBSan builds set one in each new thread */
    SCMP_SYS(restart_syscall),
    SCMP_SYS(getrandom), /* virtio-rng */
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
};

/*
 * ioctl requests, on fds hv-vmm holds: the VM and vCPUs, vhost-net,
 * vhost-vsock, the TAP, and the terminal of --console stdio. None that
 * creates a VM or changes a network interface.
 */
static const unsigned long ioctls[] = {
    KVM_RUN,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_FPU,
    KVM_SET_FPU,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_SET_MSRS,
    /* save and restore (vm_save.c, x86/vcpu_state.c) */
    KVM_GET_MSRS,
    KVM_GET_XSAVE,
    KVM_GET_XSAVE2,
    KVM_SET_XSAVE,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    KVM_GET_VCPU_EVENTS,
    KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    KVM_GET_TSC_KHZ,
    KVM_KVMCLOCK_CTRL,
    KVM_SET_CPUID2,
    KVM_SET_VCPU_EVENTS,
    KVM_SET_GUEST_DEBUG, /* HV_VMM_TRACE */
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_GET_PIT2,
    KVM_SET_PIT2,
    KVM_IRQ_LINE,
    KVM_IRQFD,
    KVM_IOEVENTFD,
    KVM_SET_GSI_ROUTING,
    KVM_SET_USER_MEMORY_REGION, /* a BAR the guest moves (vfio/bar.c, hw/bochs_vbe.c) */
    KVM_GET_DIRTY_LOG,          /* the Bochs display's damage (hw/bochs_vbe.c) */
    VFIO_DEVICE_SET_IRQS,       /* --pci: MSI-X enabled or disabled by the guest */
    VFIO_DEVICE_RESET,          /* --pci: guest reboot, VM end */
    VHOST_SET_OWNER,
    VHOST_GET_FEATURES,
    VHOST_SET_FEATURES,
    VHOST_SET_MEM_TABLE,
    VHOST_SET_VRING_NUM,
    VHOST_SET_VRING_ADDR,
    VHOST_SET_VRING_BASE,
    VHOST_GET_VRING_BASE,
    VHOST_SET_VRING_KICK,
    VHOST_SET_VRING_CALL,
    VHOST_NET_SET_BACKEND,
    VHOST_VSOCK_SET_RUNNING,
    TUNSETOFFLOAD,
    TUNSETVNETHDRSZ,
    TCGETS,
    TCSETS,
};

/* A rule with conditions, or the reason it could not be added. */
static int rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
                const struct scmp_arg_cmp *cmp, char *err, size_t errlen)
{
    int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (r < 0) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        snprintf(err, errlen, "cannot add the rule for %s: %s", name ? name : "?", strerror(-r));
        free(name);
    }
    return r;
}

static int add_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
        if (rule(ctx, SCMP_ACT_ALLOW, plain[i], 0, NULL, err, errlen) < 0)
            return -1;
    /* The kernel reads an ioctl request as 32 bits: compare those. */
    for (size_t i = 0; i < ARRAY_SIZE(ioctls); i++) {
        struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]);
        if (rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &c, err, errlen) < 0)
            return -1;
    }
    /* EQ compares datum_a; datum_b is given as 0 (clang wants every field set). */
    struct {
        int nr;
        struct scmp_arg_cmp cmp;
    } conditional[] = {
        /* No executable memory: the guest's code never runs in our address space. */
        {SCMP_SYS(mmap), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)},
        {SCMP_SYS(mprotect), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)},
        /* Threads (vCPUs, devices), never a new process. */
        {SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)},
        /* Signals to ourselves only: vCPU kicks, abort(). */
        {SCMP_SYS(tgkill), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0)},
        /* hv-switch's socket is reconnected; no network sockets. */
        {SCMP_SYS(socket), SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0)},
        /* fstat() (glibc calls newfstatat with an empty path); no looking up paths. */
        {SCMP_SYS(newfstatat), SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH)},
        /* Naming a thread from inside it. */
        {SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0)},
    };
    for (size_t i = 0; i < ARRAY_SIZE(conditional); i++)
        if (rule(ctx, SCMP_ACT_ALLOW, conditional[i].nr, 1, &conditional[i].cmp, err, errlen) < 0)
            return -1;
    /*
     * Refused, not fatal: glibc tries clone3 first and falls back to clone,
     * whose flags the filter can see; the control socket's file is removed
     * at exit, which the VM's user may not do anyway (hvd cleans up).
     */
    if (rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL, err, errlen) < 0 ||
        rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(unlink), 0, NULL, err, errlen) < 0 ||
        rule(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(unlinkat), 0, NULL, err, errlen) < 0)
        return -1;
    return 0;
}

int sandbox_install_filter(enum sandbox_mode mode, char *err, size_t errlen)
{
    if (mode == SANDBOX_OFF)
        return 0;
    /* Kill the whole process, not only the thread: a VM without a vCPU must not go on. */
    scmp_filter_ctx ctx = seccomp_init(mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        snprintf(err, errlen, "cannot create the system call filter");
        return -1;
    }
    int r;
    /* TSYNC: the threads already running (devices, display) get the filter too. */
    if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
        snprintf(err, errlen, "cannot ask for the filter on every thread: %s", strerror(-r));
    else if ((r = add_rules(ctx, err, errlen)) == 0 && (r = seccomp_load(ctx)) < 0)
        snprintf(err, errlen, "the kernel refused the system call filter: %s", strerror(-r));
    seccomp_release(ctx);
    return r < 0 ? -1 : 0;
}
