/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vCPUs: one thread each running KVM_RUN and dispatching its exits to the
 * buses. The loop knows nothing of the devices (kvmtool's split).
 */
#ifndef HV_VMM_VCPU_H
#define HV_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct vm;

struct vcpu {
    struct vm *vm;
    unsigned id; /* also its APIC ID */
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;

    /* The state KVM gave the vCPU, restored when the guest reboots. */
    struct kvm_regs reset_regs;
    struct kvm_sregs reset_sregs;
    struct kvm_fpu reset_fpu;
    struct kvm_lapic_state reset_lapic;
    struct kvm_mp_state reset_mp;
};

/* Create vCPU id: CPUID, LAPIC lines, MSRs, FPU. */
int vcpu_create(struct vm *vm, unsigned id, const struct kvm_cpuid2 *cpuid, struct vcpu **out);
void vcpu_destroy(struct vcpu *v);

/* Put the vCPU back in its power-on state (paused vCPUs only). */
int vcpu_reset(struct vcpu *v);

/* Registers of a vCPU that is not in KVM_RUN (paused). */
int vcpu_get_regs(struct vcpu *v, struct kvm_regs *regs, struct kvm_sregs *sregs);

int vcpu_start(struct vcpu *v);
/* Kick the vCPU out of KVM_RUN (vm->run_lock held, pause_wanted or quit_wanted set). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

/* Install the (empty) signal handler used by vcpu_kick(). Once per process. */
void vcpu_signals_init(void);

#endif
