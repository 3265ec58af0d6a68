/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A vCPU's architectural state for the save file (docs/save-format.md,
 * section vcpuN): registers, special registers, XSAVE, XCRs, MSRs, LAPIC,
 * events, MP state and debug registers, as KVM reports them.
 */
#ifndef HV_VMM_X86_VCPU_STATE_H
#define HV_VMM_X86_VCPU_STATE_H

#include <stdint.h>

struct vcpu;
struct vm;
struct state_in;
struct state_out;

/*
 * What saving needs to know of KVM, asked once before the sandbox (which
 * allows no KVM_CHECK_EXTENSION): the MSR list, the XSAVE size, XCRs.
 */
int vcpu_state_probe(struct vm *vm);

/* A paused vCPU's state. 0, or -1 after state_fail(). */
int vcpu_state_save(struct vcpu *v, struct state_out *out);
/*
 * Put a saved state on a vCPU that has not run. tsc_advance is added to
 * the saved TSC: the guest cycles that passed while it was saved. 0 or -1
 * after state_in_fail().
 */
int vcpu_state_load(struct vcpu *v, struct state_in *in, uint64_t tsc_advance);

#endif
