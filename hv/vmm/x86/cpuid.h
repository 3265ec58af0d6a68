/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CPUID a vCPU sees: what KVM supports, with our topology and the hypervisor bit. */
#ifndef HV_VMM_X86_CPUID_H
#define HV_VMM_X86_CPUID_H

#include <stdbool.h>

struct kvm_cpuid2;

/* KVM_GET_SUPPORTED_CPUID; NULL after logging on failure. free() the result. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd);

/*
 * A copy of base for the vCPU with this APIC ID among nr_cpus: APIC IDs,
 * core counts (one package, one thread per core), the hypervisor bit, and
 * the TSC deadline timer when KVM can emulate it. free() the result.
 */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *base, unsigned apic_id, unsigned nr_cpus,
                                  bool tsc_deadline);

#endif
