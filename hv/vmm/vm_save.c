// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A VM to and from a save file (vm_save.h). Each layer saves its own part:
 * this file the in-kernel chips, kvmclock and the vCPUs; each device its
 * own section through device_ops.save/load; savefile.c the bytes.
 */
#include "vm_save.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "log.h"
#include "savefile.h"
#include "state.h"
#include "vcpu.h"
#include "vm.h"
#include "x86/vcpu_state.h"

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

char *vm_layout(struct vm *vm)
{
    size_t len = 1;
    for (struct device *d = vm->devices; d; d = d->next)
        len += strlen(d->id) + 8;
    char *s = calloc(1, len), *p = s;
    if (!s)
        return NULL;
    for (struct device *d = vm->devices; d; d = d->next) {
        size_t left = len - (size_t)(p - s);
        int n = d->pci_slot >= 0 ? snprintf(p, left, "%s%s@%02x", p == s ? "" : ",", d->id,
                                            (unsigned)d->pci_slot)
                                 : snprintf(p, left, "%s%s@-", p == s ? "" : ",", d->id);
        p += n;
    }
    return s;
}

/* The in-kernel PICs and IOAPIC, the PIT, kvmclock and the TSC rate. */
static int save_vm_section(struct vm *vm, struct state_out *out)
{
    for (unsigned i = 0; i < 3; i++) {
        struct kvm_irqchip chip = {.chip_id = i};
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
            return state_fail(out, "KVM_GET_IRQCHIP: %s", strerror(errno));
        state_put_u32(out, sizeof(chip));
        state_put_bytes(out, &chip, sizeof(chip));
    }
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
    memset(&clock, 0, sizeof(clock));
    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
        return state_fail(out, "KVM_GET_PIT2: %s", strerror(errno));
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
        return state_fail(out, "KVM_GET_CLOCK: %s", strerror(errno));
    int khz = ioctl(vm->vcpus[0]->fd, KVM_GET_TSC_KHZ, 0);
    if (khz <= 0)
        return state_fail(out, "KVM_GET_TSC_KHZ: %s", strerror(errno));
    state_put_u32(out, sizeof(pit));
    state_put_bytes(out, &pit, sizeof(pit));
    state_put_u64(out, clock.clock);
    state_put_u32(out, (uint32_t)khz);
    return 0;
}

/* Put back the chips and the clock, advanced by the time the VM spent saved. */
static int load_vm_section(struct vm *vm, struct state_in *in, uint64_t elapsed_ns,
                           uint64_t *tsc_advance)
{
    struct kvm_irqchip chips[3];
    struct kvm_pit_state2 pit;

    for (unsigned i = 0; i < 3; i++) {
        if (state_get_u32(in) != sizeof(chips[i]) && state_in_ok(in))
            return state_in_fail(in, "the saved interrupt controllers have another size");
        state_get_bytes(in, &chips[i], sizeof(chips[i]));
        if (state_in_ok(in) && chips[i].chip_id != i)
            return state_in_fail(in, "interrupt controller %u is saved as number %u", i,
                                 chips[i].chip_id);
    }
    if (state_get_u32(in) != sizeof(pit) && state_in_ok(in))
        return state_in_fail(in, "the saved PIT has another size");
    state_get_bytes(in, &pit, sizeof(pit));
    uint64_t clock = state_get_u64(in);
    uint32_t khz = state_get_u32(in);
    if (state_in_end(in) < 0)
        return -1;
    int here = ioctl(vm->vcpus[0]->fd, KVM_GET_TSC_KHZ, 0);
    if (khz == 0 || khz > 100000000u)
        return state_in_fail(in, "the saved TSC rate (%u kHz) makes no sense", khz);
    if (here > 0 && (uint32_t)here != khz)
        log_warn("the VM was saved on a host whose TSC runs at %u kHz, this one at %d kHz: "
                 "its clock may drift",
                 khz, here);
    for (unsigned i = 0; i < 3; i++)
        if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
            return state_in_fail(in, "KVM refused the saved interrupt controller %u: %s", i,
                                 strerror(errno));
    if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
        return state_in_fail(in, "KVM refused the saved PIT: %s", strerror(errno));
    struct kvm_clock_data cd;
    memset(&cd, 0, sizeof(cd));
    cd.clock = clock + elapsed_ns;
    if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &cd) < 0)
        return state_in_fail(in, "KVM refused the saved clock: %s", strerror(errno));
    /* ns * kHz / 10^6, without overflow for any realistic gap */
    *tsc_advance = (uint64_t)((unsigned __int128)elapsed_ns * khz / 1000000u);
    return 0;
}

/* One section from a save function into the image (taking the bytes). */
static int add_section(struct save_image *img, const char *id, struct state_out *out, char *why,
                       size_t whylen)
{
    if (out->failed) {
        snprintf(why, whylen, "%s cannot be saved: %s", id, out->why);
        return -1;
    }
    uint8_t *data = out->buf;
    uint64_t len = out->len;
    out->buf = NULL;
    out->len = out->cap = 0;
    if (save_image_add(img, id, data, len) < 0) {
        free(data);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

static int collect(struct vm *vm, struct save_image *img, char *why, size_t whylen)
{
    struct state_out out;
    char id[SAVE_ID_LEN + 1];
    int r = 0;

    state_out_init(&out);
    save_vm_section(vm, &out);
    r = add_section(img, "vm", &out, why, whylen);
    for (unsigned i = 0; !r && i < vm->nr_vcpus; i++) {
        state_out_clear(&out);
        vcpu_state_save(vm->vcpus[i], &out);
        snprintf(id, sizeof(id), "vcpu%u", i);
        r = add_section(img, id, &out, why, whylen);
    }
    for (struct device *d = vm->devices; !r && d; d = d->next) {
        state_out_clear(&out);
        if (d->ops->save && d->ops->save(d, &out) < 0 && !out.failed)
            state_fail(&out, "its model gave no reason");
        r = add_section(img, d->id, &out, why, whylen);
    }
    state_out_free(&out);
    return r;
}

int vm_save(struct vm *vm, int fd, struct vm_save_stats *stats, char *why, size_t whylen)
{
    struct save_image img;

    memset(&img, 0, sizeof(img));
    if (vm->state != VM_STATE_PAUSED) {
        snprintf(why, whylen, "the VM must be paused to be saved");
        return -1;
    }
    img.ram_size = vm->mem.size;
    img.nr_vcpus = vm->nr_vcpus;
    img.saved_realtime_ns = realtime_ns();
    img.layout = vm_layout(vm);
    int r = -1;
    if (!img.layout)
        snprintf(why, whylen, "out of memory");
    else if (collect(vm, &img, why, whylen) == 0 &&
             save_find_runs(vm->mem.base, vm->mem.size, &img) == 0) {
        int64_t n = save_file_write(fd, &img, vm->mem.base, why, whylen);
        if (n >= 0 && fsync(fd) < 0)
            snprintf(why, whylen, "cannot flush the file to disk: %s", strerror(errno));
        else if (n >= 0) {
            stats->bytes = (uint64_t)n;
            stats->pages = img.ram_pages;
            r = 0;
        }
    } else if (!why[0]) {
        snprintf(why, whylen, "out of memory");
    }
    save_image_free(&img);
    return r;
}

/* The file was made by this VM's command line: same devices in the same slots, RAM, vCPUs. */
static int check_layout(struct vm *vm, const struct save_image *img, char *why, size_t whylen)
{
    if (img->ram_size != vm->mem.size) {
        snprintf(why, whylen, "the VM was saved with %llu MiB of memory, this one has %llu MiB",
                 (unsigned long long)(img->ram_size >> 20),
                 (unsigned long long)(vm->mem.size >> 20));
        return -1;
    }
    if (img->nr_vcpus != vm->nr_vcpus) {
        snprintf(why, whylen, "the VM was saved with %u vCPUs, this one has %u", img->nr_vcpus,
                 vm->nr_vcpus);
        return -1;
    }
    char *mine = vm_layout(vm);
    if (!mine) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    int r = 0;
    if (strcmp(mine, img->layout) != 0) {
        snprintf(why, whylen,
                 "the VM was saved with other devices: the file has %.200s; this "
                 "command line gives %.200s",
                 img->layout, mine);
        r = -1;
    }
    free(mine);
    return r;
}

static int load_section(const struct save_image *img, const char *id, struct state_in *in,
                        char *why, size_t whylen)
{
    const struct save_section *s = save_image_find(img, id);
    if (!s) {
        snprintf(why, whylen, "the file has no section %s", id);
        return -1;
    }
    state_in_init(in, s->data, s->len);
    return 0;
}

static int loaded(struct state_in *in, const char *id, char *why, size_t whylen)
{
    if (state_in_end(in) < 0) {
        snprintf(why, whylen, "%s: %s", id, in->why);
        return -1;
    }
    return 0;
}

int vm_restore(struct vm *vm, int fd, char *why, size_t whylen)
{
    struct save_image img;
    struct state_in in;
    char id[SAVE_ID_LEN + 1];
    uint64_t tsc_advance = 0;

    if (save_file_read(fd, &img, why, whylen) < 0)
        return -1;
    int r = check_layout(vm, &img, why, whylen);
    /* Every section is there and no other: a device may not keep what it cannot read. */
    unsigned expected = 1 + vm->nr_vcpus + devices_count(vm);
    if (!r && img.nr_sections != expected) {
        snprintf(why, whylen, "the file holds %u sections, this VM has %u", img.nr_sections,
                 expected);
        r = -1;
    }
    if (!r && vm->cfg->instant_on) {
        r = save_file_map_ram(fd, &img, vm->mem.base, vm->mem.size, why, whylen);
        vm->mem.file_mapped = img.nr_runs > 0;
    } else if (!r) {
        r = save_file_read_ram(fd, &img, vm->mem.base, vm->mem.size, why, whylen);
    }
    if (!r && !(r = load_section(&img, "vm", &in, why, whylen))) {
        uint64_t now = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t elapsed = now > img.saved_realtime_ns ? now - img.saved_realtime_ns : 0;
        if (load_vm_section(vm, &in, elapsed, &tsc_advance) < 0)
            r = loaded(&in, "vm", why, whylen);
        log_info("the VM was saved %.1f s ago", (double)elapsed / 1e9);
    }
    for (unsigned i = 0; !r && i < vm->nr_vcpus; i++) {
        snprintf(id, sizeof(id), "vcpu%u", i);
        if (!(r = load_section(&img, id, &in, why, whylen))) {
            vcpu_state_load(vm->vcpus[i], &in, tsc_advance);
            r = loaded(&in, id, why, whylen);
        }
    }
    devices_quiesce(vm);
    for (struct device *d = vm->devices; !r && d; d = d->next) {
        if ((r = load_section(&img, d->id, &in, why, whylen)) < 0)
            break;
        if (d->ops->load) {
            if (d->ops->load(d, &in) < 0 && state_in_ok(&in))
                state_in_fail(&in, "its model gave no reason");
        } else if (in.len) {
            state_in_fail(&in, "the file holds state for it, but this device keeps none");
        }
        r = loaded(&in, d->id, why, whylen);
    }
    save_image_free(&img);
    if (r)
        return -1;
    /* Tell the guest's kvmclock it was stopped, so its watchdogs do not bark (ignored if unused).
     */
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        ioctl(vm->vcpus[i]->fd, KVM_KVMCLOCK_CTRL, 0);
    devices_resume(vm);
    return 0;
}
