/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Opening /dev/kvm and checking that it can run our guests. */
#ifndef HV_VMM_KVM_H
#define HV_VMM_KVM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Open /dev/kvm (or $HV_KVM_DEVICE), check the API version, the capabilities
 * hv-vmm needs and that the host CPU has hardware virtualisation. Returns the
 * fd, or -1 after logging a sentence a user can act on.
 */
int kvm_open(void);

/* KVM_CHECK_EXTENSION on fd (system or VM fd); 0 when absent. */
int kvm_check_cap(int fd, long cap);

/*
 * Does the cpuinfo text list "vmx" or "svm" among a processor's flags?
 * Split out of kvm_open() for the unit tests.
 */
bool kvm_cpuinfo_has_virt(const char *cpuinfo);

/* Size of the mmap'ed struct kvm_run of each vCPU. */
size_t kvm_vcpu_mmap_size(int kvm_fd);

#endif
