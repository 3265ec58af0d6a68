/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Detecting hardware virtualisation from /proc/cpuinfo text. */
#include "check.h"
#include "kvm.h"

int main(void)
{
    CHECK(kvm_cpuinfo_has_virt("processor\t: 0\nflags\t\t: fpu vme svm lm\n"));
    CHECK(kvm_cpuinfo_has_virt("flags\t\t: fpu vmx\nbogomips: 1\n"));
    CHECK(!kvm_cpuinfo_has_virt("flags\t\t: fpu vme lm hypervisor\n"));
    /* Words that merely contain the letters do not count. */
    CHECK(!kvm_cpuinfo_has_virt("flags\t\t: svm_lock vmxx\n"));
    CHECK(!kvm_cpuinfo_has_virt("model name\t: svm vmx\nflags\t\t: fpu\n"));
    CHECK(!kvm_cpuinfo_has_virt(""));
    CHECK_DONE();
}
