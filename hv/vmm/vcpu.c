/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus.h"
#include "kvm.h"
#include "log.h"
#include "vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

/* LAPIC register offsets and LVT delivery modes (Intel SDM vol. 3, 10.5.1). */
#define APIC_LVT0        0x350
#define APIC_LVT1        0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

/* KVM's paravirtual MSRs (Documentation/virt/kvm/x86/msr.rst) and the TSC deadline. */
#define MSR_KVM_SYSTEM_TIME     0x12
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_KVM_ASYNC_PF_EN     0x4b564d02
#define MSR_KVM_STEAL_TIME      0x4b564d03
#define MSR_KVM_PV_EOI_EN       0x4b564d04
#define MSR_IA32_TSC_DEADLINE   0x6e0

#define MSR_IA32_MISC_ENABLE    0x1a0
#define MISC_ENABLE_FAST_STRING (1u << 0)

static void kick_handler(int sig)
{
    (void)sig;
}

void vcpu_signals_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the signal must make KVM_RUN return with EINTR. */
    sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static int vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *what)
{
    if (ioctl(v->fd, req, arg) < 0) {
        int err = errno;
        log_err("vCPU %u: %s: %s", v->id, what, strerror(err));
        return -err;
    }
    return 0;
}

/*
 * LINT0 is the 8259's ExtINT input and LINT1 the NMI line, as firmware
 * leaves them on a PC; Linux relies on it for the through-8259 paths.
 */
static int setup_lapic(struct vcpu *v)
{
    struct kvm_lapic_state lapic;
    uint32_t lvt;

    if (vcpu_ioctl(v, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC") < 0)
        return -1;
    memcpy(&lvt, &lapic.regs[APIC_LVT0], 4);
    lvt = (lvt & ~0x700u) | (APIC_MODE_EXTINT << 8);
    memcpy(&lapic.regs[APIC_LVT0], &lvt, 4);
    memcpy(&lvt, &lapic.regs[APIC_LVT1], 4);
    lvt = (lvt & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(&lapic.regs[APIC_LVT1], &lvt, 4);
    return vcpu_ioctl(v, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
}

/* KVM_SET_MSRS of a few MSRs (struct kvm_msrs ends in a flexible array). */
static int set_msrs(struct vcpu *v, const uint32_t *index, const uint64_t *data, unsigned n)
{
    union {
        struct kvm_msrs hdr;
        uint8_t bytes[sizeof(struct kvm_msrs) + 8 * sizeof(struct kvm_msr_entry)];
    } m;

    if (n > 8)
        return -1;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = n;
    for (unsigned i = 0; i < n; i++) {
        m.hdr.entries[i].index = index[i];
        m.hdr.entries[i].data = data[i];
    }
    return ioctl(v->fd, KVM_SET_MSRS, &m.hdr) == (int)n ? 0 : -1;
}

static int setup_msrs_fpu(struct vcpu *v)
{
    static const uint32_t index[] = {MSR_IA32_MISC_ENABLE};
    static const uint64_t data[] = {MISC_ENABLE_FAST_STRING};
    struct kvm_fpu fpu;

    if (set_msrs(v, index, data, 1) < 0)
        log_debug("vCPU %u: MISC_ENABLE not set", v->id);

    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;    /* x87 power-on control word */
    fpu.mxcsr = 0x1f80; /* SSE: all exceptions masked */
    return vcpu_ioctl(v, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

int vcpu_create(struct vm *vm, unsigned id, const struct kvm_cpuid2 *cpuid, struct vcpu **out)
{
    struct vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->vm = vm;
    v->id = id;
    v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (v->fd < 0) {
        int err = errno;
        log_err("cannot create vCPU %u: %s", id, strerror(err));
        free(v);
        return -err;
    }
    v->run_size = kvm_vcpu_mmap_size(vm->kvm_fd);
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        int err = errno;
        log_err("cannot map vCPU %u's run area: %s", id, strerror(err));
        close(v->fd);
        free(v);
        return -err;
    }
    if (vcpu_ioctl(v, KVM_SET_CPUID2, (void *)cpuid, "KVM_SET_CPUID2") < 0 || setup_lapic(v) < 0 ||
        setup_msrs_fpu(v) < 0 || vcpu_ioctl(v, KVM_GET_REGS, &v->reset_regs, "KVM_GET_REGS") < 0 ||
        vcpu_ioctl(v, KVM_GET_SREGS, &v->reset_sregs, "KVM_GET_SREGS") < 0 ||
        vcpu_ioctl(v, KVM_GET_FPU, &v->reset_fpu, "KVM_GET_FPU") < 0 ||
        vcpu_ioctl(v, KVM_GET_LAPIC, &v->reset_lapic, "KVM_GET_LAPIC") < 0 ||
        vcpu_ioctl(v, KVM_GET_MP_STATE, &v->reset_mp, "KVM_GET_MP_STATE") < 0) {
        vcpu_destroy(v);
        return -EIO;
    }
    *out = v;
    return 0;
}

void vcpu_destroy(struct vcpu *v)
{
    if (!v)
        return;
    munmap(v->run, v->run_size);
    close(v->fd);
    free(v);
}

int vcpu_reset(struct vcpu *v)
{
    /* sregs first: it carries the APIC base, which decides how the LAPIC state reads. */
    if (vcpu_ioctl(v, KVM_SET_SREGS, &v->reset_sregs, "KVM_SET_SREGS") < 0 ||
        vcpu_ioctl(v, KVM_SET_REGS, &v->reset_regs, "KVM_SET_REGS") < 0 ||
        vcpu_ioctl(v, KVM_SET_FPU, &v->reset_fpu, "KVM_SET_FPU") < 0 ||
        vcpu_ioctl(v, KVM_SET_LAPIC, &v->reset_lapic, "KVM_SET_LAPIC") < 0 ||
        vcpu_ioctl(v, KVM_SET_MP_STATE, &v->reset_mp, "KVM_SET_MP_STATE") < 0)
        return -EIO;
    /*
     * The paravirtual MSRs point KVM at guest memory (kvmclock, steal time...):
     * left set, KVM would keep writing into the next kernel's pages.
     */
    static const uint32_t pv_index[] = {MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_SYSTEM_TIME,
                                        MSR_KVM_ASYNC_PF_EN,     MSR_KVM_STEAL_TIME,
                                        MSR_KVM_PV_EOI_EN,       MSR_IA32_TSC_DEADLINE};
    static const uint64_t zero = 0;
    for (size_t i = 0; i < sizeof(pv_index) / sizeof(pv_index[0]); i++)
        set_msrs(v, &pv_index[i], &zero, 1); /* one at a time: some may not exist */
    setup_msrs_fpu(v);

    struct kvm_vcpu_events ev;
    memset(&ev, 0, sizeof(ev)); /* drop pending exceptions, interrupts, NMIs */
    ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
    ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev);
    return 0;
}

int vcpu_get_regs(struct vcpu *v, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
    if (vcpu_ioctl(v, KVM_GET_REGS, regs, "KVM_GET_REGS") < 0 ||
        vcpu_ioctl(v, KVM_GET_SREGS, sregs, "KVM_GET_SREGS") < 0)
        return -1;
    return 0;
}

/*
 * Block while the main thread wants the vCPUs paused. Returns true when the
 * thread must end. Takes vm->run_lock.
 */
static bool wait_while_paused(struct vcpu *v)
{
    struct vm *vm = v->vm;
    bool quit;

    pthread_mutex_lock(&vm->run_lock);
    if (vm->pause_wanted && !vm->quit_wanted) {
        vm->nr_paused++;
        pthread_cond_broadcast(&vm->run_cond);
        while (vm->pause_wanted && !vm->quit_wanted)
            pthread_cond_wait(&vm->run_cond, &vm->run_lock);
        vm->nr_paused--;
    }
    quit = vm->quit_wanted;
    /* Only cleared under the lock, so a kick sent with the lock held is never lost. */
    if (!quit)
        v->run->immediate_exit = 0;
    pthread_mutex_unlock(&vm->run_lock);
    return quit;
}

/* The VM is ending or resetting because of this vCPU: wait for the main thread. */
static void wait_for_main(struct vcpu *v)
{
    struct vm *vm = v->vm;

    pthread_mutex_lock(&vm->run_lock);
    while (!vm->pause_wanted && !vm->quit_wanted)
        pthread_cond_wait(&vm->run_cond, &vm->run_lock);
    pthread_mutex_unlock(&vm->run_lock);
}

static void handle_io(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;

    /* String instructions (rep outsb...) give count > 1. */
    for (uint32_t i = 0; i < run->io.count; i++)
        io_bus_access(&v->vm->pio, run->io.port, data + (size_t)i * run->io.size, run->io.size,
                      out);
}

static void handle_mmio(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint32_t len = run->mmio.len;

    if (len == 0 || len > sizeof(run->mmio.data))
        return;
    io_bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

/*
 * Developer aid: HV_VMM_TRACE=1 single-steps the boot vCPU and keeps the
 * last RIPs, printed when the guest dies (a triple fault loses the state).
 */
#define TRACE_RING 32
static uint64_t trace_rip[TRACE_RING];
static uint64_t trace_count;

static void trace_step(struct vcpu *v)
{
    trace_rip[trace_count++ % TRACE_RING] = v->run->debug.arch.pc;
}

static void trace_dump(void)
{
    for (uint64_t i = trace_count > TRACE_RING ? trace_count - TRACE_RING : 0; i < trace_count; i++)
        log_warn("trace: step %llu rip 0x%llx", (unsigned long long)i,
                 (unsigned long long)trace_rip[i % TRACE_RING]);
}

static void trace_enable(struct vcpu *v)
{
    const char *t = getenv("HV_VMM_TRACE");
    if (v->id != 0 || !t || strcmp(t, "1") != 0)
        return;
    struct kvm_guest_debug dbg = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP};
    if (ioctl(v->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
        log_warn("KVM_SET_GUEST_DEBUG: %s", strerror(errno));
}

/* Where the vCPU was, for the log of a guest that died. */
static void dump_state(struct vcpu *v, const char *what)
{
    struct kvm_regs r;
    struct kvm_sregs s;

    if (trace_count)
        trace_dump();
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return;
    log_warn("vCPU %u %s: rip 0x%llx rsp 0x%llx cr0 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx",
             v->id, what, (unsigned long long)r.rip, (unsigned long long)r.rsp,
             (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
             (unsigned long long)s.efer);
}

/*
 * The access just handled asked for a reset or power-off (0xCF9, ACPI
 * sleep): a CPU executes nothing after that. Running on, firmware reaches
 * code that is only there for a reset that did not happen (SeaBIOS's int3
 * after its 0xCF9 write, which KVM then failed to emulate: a crash instead
 * of the reboot).
 */
static bool reset_or_off_asked(struct vm *vm)
{
    return atomic_load(&vm->requests) & (VM_REQ_RESET | VM_REQ_POWEROFF);
}

/* Handle one exit; returns false when the vCPU must stop and wait for the main thread. */
static bool handle_exit(struct vcpu *v)
{
    struct kvm_run *run = v->run;

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(v);
        return !reset_or_off_asked(v->vm);
    case KVM_EXIT_MMIO:
        handle_mmio(v);
        return !reset_or_off_asked(v->vm);
    case KVM_EXIT_DEBUG:
        trace_step(v);
        return true;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT: /* not with an in-kernel LAPIC; harmless */
        return true;
    case KVM_EXIT_SHUTDOWN:
        /* A triple fault: what a PC does then is reset. */
        dump_state(v, "triple fault");
        vm_request(v->vm, VM_REQ_TRIPLE_FAULT);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
            vm_request(v->vm, VM_REQ_POWEROFF);
            break;
        case KVM_SYSTEM_EVENT_RESET:
            vm_request(v->vm, VM_REQ_RESET);
            break;
        default:
            log_err("vCPU %u: system event %u", v->id, run->system_event.type);
            vm_request(v->vm, VM_REQ_CRASH);
            break;
        }
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        log_err("vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)", v->id,
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        log_err("vCPU %u: KVM internal error, suberror %u", v->id, run->internal.suberror);
        break;
    default:
        log_err("vCPU %u: unexpected KVM exit %u", v->id, run->exit_reason);
        break;
    }
    dump_state(v, "stopped");
    vm_request(v->vm, VM_REQ_CRASH);
    return false;
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    /* Named from inside: naming another thread opens a /proc file, which the sandbox forbids. */
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", v->id);
    pthread_setname_np(pthread_self(), name);

    trace_enable(v);
    while (!wait_while_paused(v)) {
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            int err = errno;
            if (err == EINTR || err == EAGAIN)
                continue;
            log_err("vCPU %u: KVM_RUN: %s", v->id, strerror(err));
            vm_request(v->vm, VM_REQ_CRASH);
            wait_for_main(v);
            continue;
        }
        if (!handle_exit(v))
            wait_for_main(v);
    }

    pthread_mutex_lock(&v->vm->run_lock);
    v->vm->nr_running_threads--;
    pthread_cond_broadcast(&v->vm->run_cond);
    pthread_mutex_unlock(&v->vm->run_lock);
    return NULL;
}

int vcpu_start(struct vcpu *v)
{
    pthread_mutex_lock(&v->vm->run_lock);
    v->vm->nr_running_threads++;
    pthread_mutex_unlock(&v->vm->run_lock);
    int err = pthread_create(&v->thread, NULL, vcpu_thread, v);
    if (err) {
        log_err("cannot start the thread of vCPU %u: %s", v->id, strerror(err));
        pthread_mutex_lock(&v->vm->run_lock);
        v->vm->nr_running_threads--;
        pthread_mutex_unlock(&v->vm->run_lock);
        return -err;
    }
    v->thread_started = true;
    return 0;
}

void vcpu_kick(struct vcpu *v)
{
    v->run->immediate_exit = 1;
    if (v->thread_started)
        pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
    if (v->thread_started) {
        pthread_join(v->thread, NULL);
        v->thread_started = false;
    }
}
