/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cpuid.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)
#define CPUID_1_EDX_HTT          (1u << 28)
#define CPUID_7_ECX_LA57         (1u << 16)

struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd)
{
    /* Grow until KVM stops saying E2BIG. */
    for (unsigned nent = 64; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            return NULL;
        c->nent = nent;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        int err = errno;
        free(c);
        if (err != E2BIG) {
            log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(err));
            return NULL;
        }
    }
    log_err("KVM_GET_SUPPORTED_CPUID: too many entries");
    return NULL;
}

/* Bits needed to number n things (ceil(log2 n)). */
static unsigned id_bits(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *base, unsigned apic_id, unsigned nr_cpus,
                                  bool tsc_deadline)
{
    size_t size = sizeof(*base) + base->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(size);
    if (!c)
        return NULL;
    memcpy(c, base, size);
    unsigned core_bits = id_bits(nr_cpus);

    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x0000ffff) | (apic_id << 24) | ((nr_cpus & 0xff) << 16);
            e->ecx |= CPUID_1_ECX_HYPERVISOR;
            if (tsc_deadline)
                e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
            if (nr_cpus > 1)
                e->edx |= CPUID_1_EDX_HTT;
            else
                e->edx &= ~CPUID_1_EDX_HTT;
            break;
        case 4:
            /* Intel: cores per package - 1 in EAX[31:26]; one thread per cache. */
            if (e->eax & 0x1f)
                e->eax = (e->eax & 0x3fff) | ((nr_cpus - 1) << 26);
            break;
        case 7:
            /*
             * No 5-level paging: Linux would leave long mode through a
             * trampoline under 1 MiB to turn it on, for address space no
             * desktop guest needs.
             */
            if (e->index == 0)
                e->ecx &= ~CPUID_7_ECX_LA57;
            break;
        case 0xb:
        case 0x1f:
            /* x2APIC topology: level 0 threads (1 each), level 1 cores. */
            if (e->index == 0) {
                e->eax = 0;
                e->ebx = 1;
                e->ecx = 1 << 8;
            } else if (e->index == 1) {
                e->eax = core_bits;
                e->ebx = nr_cpus;
                e->ecx = 2 << 8 | 1;
            } else {
                e->eax = e->ebx = 0;
                e->ecx = e->index;
            }
            e->edx = apic_id;
            break;
        case 0x8000001f:
            /* No SEV/SME for our guests: an SEV bit makes Linux read SEV MSRs early. */
            e->eax = e->ebx = e->ecx = e->edx = 0;
            break;
        case 0x8000001e:
            /* AMD topology extensions: extended APIC ID, core ID, node 0. */
            e->eax = apic_id;
            e->ebx = apic_id & 0xff;
            e->ecx = 0;
            break;
        case 0x80000008:
            /* AMD: cores per package - 1 and the APIC ID bits they take. */
            e->ecx = (e->ecx & ~0xf0ffu) | (core_bits << 12) | (nr_cpus - 1);
            break;
        default:
            break;
        }
    }
    return c;
}
