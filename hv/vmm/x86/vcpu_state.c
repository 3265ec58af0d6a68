// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Saving and loading a vCPU (vcpu_state.h). KVM's own structures are kept
 * as bytes with their size in front: the file is read by the same hv-vmm
 * on the same kind of host, and KVM checks what it is given on load.
 */
#include "vcpu_state.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../kvm.h"
#include "../state.h"
#include "../vcpu.h"
#include "../vm.h"
#include "log.h"

#define MSR_IA32_TSC          0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define VCPU_MAX_MSRS         1024u
#define XSAVE_MAX_SIZE        (1u << 20)

/* The MSRs KVM says a VMM should save (KVM_GET_MSR_INDEX_LIST). */
static struct kvm_msr_list *msr_index_list(int kvm_fd)
{
    struct kvm_msr_list probe = {.nmsrs = 0};
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
        return NULL;
    if (probe.nmsrs > VCPU_MAX_MSRS)
        probe.nmsrs = VCPU_MAX_MSRS;
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
    if (!l)
        return NULL;
    l->nmsrs = probe.nmsrs;
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        free(l);
        return NULL;
    }
    return l;
}

int vcpu_state_probe(struct vm *vm)
{
    vm->save_msrs = msr_index_list(vm->kvm_fd);
    if (!vm->save_msrs) {
        log_err("KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
        return -1;
    }
    /* This host's XSAVE area for KVM: larger than 4 KiB with AMX. */
    int n = kvm_check_cap(vm->vm_fd, KVM_CAP_XSAVE2);
    vm->xsave_size = n > (int)sizeof(struct kvm_xsave) && n <= (int)XSAVE_MAX_SIZE
                         ? (uint32_t)n
                         : (uint32_t)sizeof(struct kvm_xsave);
    vm->has_xcrs = kvm_check_cap(vm->vm_fd, KVM_CAP_XCRS) > 0;
    return 0;
}

static struct kvm_msrs *msrs_alloc(unsigned n)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
    if (m)
        m->nmsrs = n;
    return m;
}

static size_t xsave_size(struct vcpu *v)
{
    return v->vm->xsave_size;
}

static int get(struct vcpu *v, unsigned long req, void *arg, const char *what,
               struct state_out *out)
{
    if (ioctl(v->fd, req, arg) < 0)
        return state_fail(out, "vCPU %u: %s: %s", v->id, what, strerror(errno));
    return 0;
}

static void put_blob(struct state_out *out, const void *p, uint32_t len)
{
    state_put_u32(out, len);
    state_put_bytes(out, p, len);
}

/* Read MSRs one batch at a time: KVM stops at the first it cannot read. */
static int save_msrs(struct vcpu *v, struct state_out *out)
{
    const struct kvm_msr_list *list = v->vm->save_msrs;
    struct kvm_msrs *m = msrs_alloc(list->nmsrs);
    if (!m)
        return state_fail(out, "out of memory");
    unsigned kept = 0;
    for (unsigned i = 0; i < list->nmsrs;) {
        struct kvm_msrs *batch = msrs_alloc(list->nmsrs - i);
        if (!batch)
            break;
        for (unsigned k = 0; k < batch->nmsrs; k++)
            batch->entries[k].index = list->indices[i + k];
        int n = ioctl(v->fd, KVM_GET_MSRS, batch);
        if (n < 0)
            n = 0;
        for (int k = 0; k < n; k++)
            m->entries[kept++] = batch->entries[k];
        if ((unsigned)n < batch->nmsrs)
            log_debug("vCPU %u: MSR %#x not saved", v->id, list->indices[i + (unsigned)n]);
        free(batch);
        i += (unsigned)n + 1; /* skip the one KVM could not read */
    }
    state_put_u32(out, kept);
    for (unsigned k = 0; k < kept; k++) {
        state_put_u32(out, m->entries[k].index);
        state_put_u64(out, m->entries[k].data);
    }
    free(m);
    return 0;
}

int vcpu_state_save(struct vcpu *v, struct state_out *out)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp;
    struct kvm_debugregs dregs;
    size_t xsz = xsave_size(v);
    void *xsave = calloc(1, xsz);

    if (!xsave)
        return state_fail(out, "out of memory");
    memset(&xcrs, 0, sizeof(xcrs));
    int r = get(v, KVM_GET_REGS, &regs, "KVM_GET_REGS", out);
    if (!r)
        r = get(v, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS", out);
    if (!r)
        r = get(v, xsz > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave,
                "KVM_GET_XSAVE", out);
    if (!r && v->vm->has_xcrs)
        r = get(v, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS", out);
    if (!r)
        r = get(v, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC", out);
    if (!r)
        r = get(v, KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS", out);
    if (!r)
        r = get(v, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE", out);
    if (!r)
        r = get(v, KVM_GET_DEBUGREGS, &dregs, "KVM_GET_DEBUGREGS", out);
    if (!r) {
        put_blob(out, &regs, sizeof(regs));
        put_blob(out, &sregs, sizeof(sregs));
        put_blob(out, xsave, (uint32_t)xsz);
        put_blob(out, &xcrs, sizeof(xcrs));
        put_blob(out, &lapic, sizeof(lapic));
        put_blob(out, &events, sizeof(events));
        put_blob(out, &mp, sizeof(mp));
        put_blob(out, &dregs, sizeof(dregs));
        r = save_msrs(v, out);
    }
    free(xsave);
    return r;
}

/* A structure of exactly `len` bytes, as this hv-vmm's KVM headers define it. */
static void get_blob(struct state_in *in, void *p, uint32_t len, const char *what)
{
    uint32_t n = state_get_u32(in);
    if (state_in_ok(in) && n != len) {
        state_in_fail(in, "the saved %s is %u bytes, this hv-vmm's is %u", what, n, len);
        memset(p, 0, len);
        return;
    }
    state_get_bytes(in, p, len);
}

static int set(struct vcpu *v, unsigned long req, void *arg, const char *what, struct state_in *in)
{
    if (ioctl(v->fd, req, arg) < 0)
        return state_in_fail(in, "vCPU %u: KVM refused the saved %s: %s", v->id, what,
                             strerror(errno));
    return 0;
}

static int load_msrs(struct vcpu *v, struct state_in *in, uint64_t tsc_advance,
                     uint64_t *tsc_deadline)
{
    uint32_t n = state_get_u32(in);
    if (n > VCPU_MAX_MSRS)
        return state_in_fail(in, "vCPU %u: %u MSRs saved, more than KVM lists", v->id, n);
    struct kvm_msrs *m = msrs_alloc(n);
    if (!m)
        return state_in_fail(in, "out of memory");
    for (uint32_t k = 0; k < n; k++) {
        m->entries[k].index = state_get_u32(in);
        m->entries[k].data = state_get_u64(in);
        if (m->entries[k].index == MSR_IA32_TSC)
            m->entries[k].data += tsc_advance;
        if (m->entries[k].index == MSR_IA32_TSC_DEADLINE)
            *tsc_deadline = m->entries[k].data;
    }
    if (!state_in_ok(in)) {
        free(m);
        return -1;
    }
    /* KVM stops at the first MSR it refuses: note it and go on with the rest. */
    for (uint32_t i = 0; i < n;) {
        struct kvm_msrs *batch = msrs_alloc(n - i);
        if (!batch)
            break;
        memcpy(batch->entries, &m->entries[i], (n - i) * sizeof(struct kvm_msr_entry));
        int done = ioctl(v->fd, KVM_SET_MSRS, batch);
        free(batch);
        if (done < 0)
            done = 0;
        i += (unsigned)done;
        if (i < n) {
            log_debug("vCPU %u: KVM refused the saved MSR %#x", v->id, m->entries[i].index);
            i++;
        }
    }
    free(m);
    return 0;
}

int vcpu_state_load(struct vcpu *v, struct state_in *in, uint64_t tsc_advance)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp;
    struct kvm_debugregs dregs;
    size_t xsz = xsave_size(v);
    void *xsave = calloc(1, xsz);

    if (!xsave)
        return state_in_fail(in, "out of memory");
    get_blob(in, &regs, sizeof(regs), "registers");
    get_blob(in, &sregs, sizeof(sregs), "special registers");
    get_blob(in, xsave, (uint32_t)xsz, "XSAVE area");
    get_blob(in, &xcrs, sizeof(xcrs), "XCRs");
    get_blob(in, &lapic, sizeof(lapic), "LAPIC");
    get_blob(in, &events, sizeof(events), "vCPU events");
    get_blob(in, &mp, sizeof(mp), "MP state");
    get_blob(in, &dregs, sizeof(dregs), "debug registers");
    if (!state_in_ok(in)) {
        free(xsave);
        return -1;
    }
    if (xcrs.nr_xcrs > KVM_MAX_XCRS) {
        free(xsave);
        return state_in_fail(in, "vCPU %u: %u XCRs saved, at most %d exist", v->id, xcrs.nr_xcrs,
                             KVM_MAX_XCRS);
    }
    /* sregs first: the APIC base decides how KVM reads the LAPIC state. */
    int r = set(v, KVM_SET_SREGS, &sregs, "special registers", in);
    if (!r)
        r = set(v, KVM_SET_REGS, &regs, "registers", in);
    if (!r)
        r = set(v, KVM_SET_XSAVE, xsave, "XSAVE area", in);
    if (!r && xcrs.nr_xcrs)
        r = set(v, KVM_SET_XCRS, &xcrs, "XCRs", in);
    uint64_t deadline = 0;
    if (!r)
        r = load_msrs(v, in, tsc_advance, &deadline);
    if (!r)
        r = set(v, KVM_SET_VCPU_EVENTS, &events, "vCPU events", in);
    if (!r)
        r = set(v, KVM_SET_MP_STATE, &mp, "MP state", in);
    if (!r)
        r = set(v, KVM_SET_LAPIC, &lapic, "LAPIC", in);
    /*
     * Setting the LAPIC clears its TSC deadline: write it again, or the
     * vCPU's next timer interrupt never comes. It is in guest TSC cycles,
     * so a deadline passed while the VM was saved fires at once.
     */
    if (!r && deadline) {
        struct kvm_msrs *m = msrs_alloc(1);
        if (m) {
            m->entries[0].index = MSR_IA32_TSC_DEADLINE;
            m->entries[0].data = deadline;
        }
        if (!m || ioctl(v->fd, KVM_SET_MSRS, m) != 1)
            r = state_in_fail(in, "vCPU %u: KVM refused the saved TSC deadline", v->id);
        free(m);
    }
    if (!r)
        r = set(v, KVM_SET_DEBUGREGS, &dregs, "debug registers", in);
    free(xsave);
    return r;
}
