/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A VM's life: creation in the order KVM wants (api.rst, "6.1 bring-up"),
 * then a main loop on an epoll set that reacts to the guest (poweroff,
 * reboot, crash), to signals (SIGTERM presses the power button) and to the
 * control socket. vCPU threads never end the VM themselves: they post a
 * request and wait for this loop.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "device.h"
#include "devices.h"
#include "hw/debugcon.h"
#include "hw/fw_cfg.h"
#include "hw/host_bridge.h"
#include "kvm.h"
#include "log.h"
#include "pci.h"
#include "util.h"
#include "vcpu.h"
#include "x86/acpi.h"
#include "x86/acpi_loader.h"
#include "x86/boot_firmware.h"
#include "x86/boot_linux.h"
#include "x86/cpuid.h"
#include "x86/firmware_linux.h"
#include "x86/vcpu_state.h"

/* Intel needs 3 pages for a TSS and one for the real-mode identity map, below 4 GiB. */
#define VM_IDENTITY_MAP_ADDR UINT64_C(0xfffbc000)
#define VM_TSS_ADDR          UINT64_C(0xfffbd000)

struct vm_saved {
    struct kvm_irqchip chips[3]; /* PIC master, PIC slave, IOAPIC */
    struct kvm_pit_state2 pit;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *vm_state_name(enum vm_state s)
{
    switch (s) {
    case VM_STATE_CREATED:
        return "created";
    case VM_STATE_RUNNING:
        return "running";
    case VM_STATE_PAUSED:
        return "paused";
    case VM_STATE_STOPPING:
        return "stopping";
    case VM_STATE_STOPPED:
        return "stopped";
    }
    return "unknown";
}

int vm_watch_add(struct vm *vm, struct vm_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};

    if (epoll_ctl(vm->epoll_fd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
        return -errno;
    return 0;
}

void vm_watch_del(struct vm *vm, struct vm_watch *w)
{
    epoll_ctl(vm->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
}

void vm_request(struct vm *vm, enum vm_request req)
{
    uint64_t one = 1;

    atomic_fetch_or(&vm->requests, (unsigned)req);
    if (write(vm->event_fd, &one, sizeof(one)) < 0)
        log_debug("cannot wake the main loop: %s", strerror(errno));
}

static int vm_ioctl(struct vm *vm, unsigned long req, unsigned long arg, const char *what)
{
    if (ioctl(vm->vm_fd, req, arg) < 0) {
        int err = errno;
        log_err("%s: %s", what, strerror(err));
        return -err;
    }
    return 0;
}

static int create_kvm_vm(struct vm *vm)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

    vm->kvm_fd = kvm_open();
    if (vm->kvm_fd < 0)
        return -1;
    do
        vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    while (vm->vm_fd < 0 && errno == EINTR);
    if (vm->vm_fd < 0) {
        log_err("KVM_CREATE_VM: %s", strerror(errno));
        return -1;
    }
    uint64_t idmap = VM_IDENTITY_MAP_ADDR;
    if (vm_ioctl(vm, KVM_SET_TSS_ADDR, VM_TSS_ADDR, "KVM_SET_TSS_ADDR") < 0 ||
        vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)&idmap,
                 "KVM_SET_IDENTITY_MAP_ADDR") < 0 ||
        vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP") < 0 ||
        vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2") < 0)
        return -1;
    int max = kvm_check_cap(vm->vm_fd, KVM_CAP_MAX_VCPUS);
    if (max <= 0)
        max = kvm_check_cap(vm->vm_fd, KVM_CAP_NR_VCPUS);
    if (max > 0 && vm->cfg->nr_cpus > (unsigned)max) {
        log_err("this KVM runs at most %d vCPUs per VM, %u were asked for", max, vm->cfg->nr_cpus);
        return -1;
    }
    return 0;
}

/* The power-on state of the in-kernel PICs, IOAPIC and PIT, put back on reboot. */
static int save_chip_state(struct vm *vm)
{
    vm->saved = calloc(1, sizeof(*vm->saved));
    if (!vm->saved)
        return -ENOMEM;
    for (unsigned i = 0; i < 3; i++) {
        vm->saved->chips[i].chip_id = i;
        if (vm_ioctl(vm, KVM_GET_IRQCHIP, (unsigned long)&vm->saved->chips[i], "KVM_GET_IRQCHIP") <
            0)
            return -1;
    }
    return vm_ioctl(vm, KVM_GET_PIT2, (unsigned long)&vm->saved->pit, "KVM_GET_PIT2");
}

static int restore_chip_state(struct vm *vm)
{
    for (unsigned i = 0; i < 3; i++)
        if (vm_ioctl(vm, KVM_SET_IRQCHIP, (unsigned long)&vm->saved->chips[i], "KVM_SET_IRQCHIP") <
            0)
            return -1;
    return vm_ioctl(vm, KVM_SET_PIT2, (unsigned long)&vm->saved->pit, "KVM_SET_PIT2");
}

static int reserve_pci_slots(struct vm *vm)
{
    for (unsigned i = 0; i < vm->cfg->nr_pci_slots; i++) {
        const struct vm_pci_slot *s = &vm->cfg->pci_slots[i];
        if (pci_bus_reserve(vm->pci, s->name, s->slot) < 0) {
            log_err("--pci-slot %s=%u: that slot cannot be given", s->name, s->slot);
            return -1;
        }
    }
    return 0;
}

/*
 * A --pci-slot for a device this VM does not have keeps its slot empty (hvd
 * passes its whole record, a device taken out included); said, in case it
 * is a typo.
 */
static void warn_pci_slots_unused(struct vm *vm)
{
    unsigned pos = 0, slot;
    const char *name;
    while ((name = pci_bus_unused_reservation(vm->pci, &pos, &slot)))
        log_warn("--pci-slot %s=%u: this VM has no PCI device %s; slot %u stays empty", name, slot,
                 name, slot);
}

static int create_virtio_devices(struct vm *vm)
{
    const struct vm_config *cfg = vm->cfg;

    for (unsigned i = 0; i < cfg->nr_disks; i++) {
        const struct vm_disk *d = &cfg->disks[i];
        if (d->bus == VM_DISK_NVME) {
            if (!nvme_create) {
                log_err("this hv-vmm was built without NVMe: bus=nvme cannot be used");
                return -1;
            }
            if (nvme_create(vm, d) < 0)
                return -1;
            continue;
        }
        if (d->bus == VM_DISK_AHCI)
            continue; /* on the AHCI controller, below */
        if (!virtio_blk_create) {
            log_err("this hv-vmm was built without virtio-blk: --disk cannot be used");
            return -1;
        }
        if (virtio_blk_create(vm, d) < 0)
            return -1;
    }
    bool any_ahci = cfg->cdrom.path != NULL;
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        any_ahci |= cfg->disks[i].bus == VM_DISK_AHCI;
    if (any_ahci) {
        if (!ahci_create) {
            log_err("this hv-vmm was built without AHCI: bus=ahci and --cdrom cannot be used");
            return -1;
        }
        if (ahci_create(vm) < 0)
            return -1;
    }
    if (cfg->net_tap) {
        if (!virtio_net_create) {
            log_err("this hv-vmm was built without virtio-net: --net cannot be used");
            return -1;
        }
        if (virtio_net_create(vm, cfg->net_tap) < 0)
            return -1;
    }
    if (cfg->vsock_cid) {
        if (!virtio_vsock_create) {
            log_err("this hv-vmm was built without virtio-vsock: --vsock cannot be used");
            return -1;
        }
        if (virtio_vsock_create(vm, cfg->vsock_cid) < 0)
            return -1;
    }
    if (cfg->virtio_console) {
        if (!virtio_console_create) {
            log_err("this hv-vmm was built without virtio-console: --virtio-console cannot be "
                    "used");
            return -1;
        }
        if (virtio_console_create(vm, cfg->virtio_console) < 0)
            return -1;
    }
    if (cfg->display) {
        if (!virtio_display_create) {
            log_err("this hv-vmm was built without virtio-gpu: --display cannot be used");
            return -1;
        }
        if (virtio_display_create(vm, cfg->display) < 0)
            return -1;
    }
    /*
     * Every guest gets entropy and a balloon when this build has them; not a
     * balloon with --pci: RAM pinned for device DMA must not be punched out.
     */
    if (virtio_rng_create && virtio_rng_create(vm) < 0)
        return -1;
    if (!vm->vfio && virtio_balloon_create && virtio_balloon_create(vm) < 0)
        return -1;
    return 0;
}

/*
 * --firmware: the image below 4 GiB, the host bridge's registers and the
 * firmware's devices (fw_cfg with this VM's contents and ACPI tables, the
 * debug port); with --kernel, the kernel for the firmware's Linux loader.
 */
static int create_firmware(struct vm *vm)
{
    const struct vm_config *cfg = vm->cfg;
    struct fw_cfg *fc = fw_cfg_new(&vm->mem);
    char bootorder[VM_MAX_DISKS * 24 + sizeof(FIRMWARE_LINUXBOOT_BOOTORDER)] = "";

    /* The kernel first, then the disks in --disk order, as firmware names them (docs/hvm.md). */
    if (cfg->kernel)
        snprintf(bootorder, sizeof(bootorder), "%s", FIRMWARE_LINUXBOOT_BOOTORDER);
    for (struct device *d = vm->devices; d; d = d->next) {
        size_t n = strlen(bootorder);
        bool disk = strncmp(d->id, "virtio-blk", 10) == 0 || strncmp(d->id, "nvme", 4) == 0;
        if (disk && d->pci_slot > 0)
            snprintf(bootorder + n, sizeof(bootorder) - n, "/pci@i0cf8/*@%x\n", d->pci_slot);
    }
    if (!fc || firmware_fw_cfg(fc, &vm->mem, vm->nr_vcpus, bootorder) < 0 ||
        acpi_fw_cfg(fc, vm) < 0 ||
        (cfg->kernel && firmware_linux_fw_cfg(fc, &vm->mem, vm->files,
                                              cfg->cmdline ? cfg->cmdline : VM_DEFAULT_CMDLINE,
                                              cfg->linuxboot_rom) < 0)) {
        fw_cfg_free(fc);
        return -1;
    }
    if (fw_cfg_attach(vm, fc) < 0 || debugcon_attach(vm, cfg->firmware_log) < 0)
        return -1;
    return firmware_map(vm->fw, vm->vm_fd, MEM_KVM_SLOT_FIRMWARE) < 0 ? -1 : 0;
}

/* Firmware: its top below 1 MiB. Linux: ACPI tables, kernel, initrd and command line. */
static int load_guest(struct vm *vm)
{
    const struct vm_config *cfg = vm->cfg;

    if (vm->fw)
        return firmware_load(vm->fw, &vm->mem);
    const struct acpi_config acpi = {
        .nr_cpus = vm->nr_vcpus, .devices = vm->devices, .ecam_base = MEM_PCI_ECAM_BASE};
    if (acpi_install(&vm->mem, BOOT_ACPI_GPA, BOOT_ACPI_MAX, &acpi) < 0)
        return -1;
    vm->rsdp_gpa = BOOT_ACPI_GPA;
    return boot_linux_load(&vm->mem, vm->files, cfg->cmdline ? cfg->cmdline : VM_DEFAULT_CMDLINE,
                           vm->rsdp_gpa, vm->boot);
}

static int create_loop(struct vm *vm)
{
    sigset_t set;

    vm->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    vm->stop_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    /* main.c blocked these in every thread; they arrive here instead. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (vm->epoll_fd < 0 || vm->event_fd < 0 || vm->stop_timer_fd < 0 || vm->signal_fd < 0) {
        log_err("cannot set up the main loop: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = cfg;
    vm->kvm_fd = vm->vm_fd = vm->epoll_fd = vm->event_fd = -1;
    vm->stop_timer_fd = vm->signal_fd = -1;
    vm->mem.memfd = -1;
    vm->nr_vcpus = cfg->nr_cpus;
    vm->state = VM_STATE_CREATED;
    pthread_mutex_init(&vm->run_lock, NULL);
    pthread_cond_init(&vm->run_cond, NULL);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    vm->boot = calloc(1, sizeof(*vm->boot));
    vm->files = calloc(1, sizeof(*vm->files));
    if (!vm->boot || !vm->files)
        return -1;
    vm->files->kernel_fd = vm->files->initrd_fd = -1;
    if (cfg->firmware) {
        vm->fw = calloc(1, sizeof(*vm->fw));
        if (!vm->fw || firmware_open(vm->fw, cfg->firmware) < 0)
            return -1;
    }
    if (cfg->kernel && boot_files_open(vm->files, cfg->kernel, cfg->initrd) < 0)
        return -1;
    if (create_loop(vm) < 0 || create_kvm_vm(vm) < 0)
        return -1;

    uint64_t low_max = vm->fw ? FIRMWARE_LOW_RAM_MAX : MEM_LOW_RAM_MAX;
    unsigned mem_flags =
        (cfg->ram_shared ? GUEST_MEM_SHARED : 0) | (cfg->ram_nomerge ? GUEST_MEM_NOMERGE : 0);
    if (guest_mem_init_flags(&vm->mem, cfg->ram_size, low_max, mem_flags) < 0 ||
        guest_mem_map_kvm(&vm->mem, vm->vm_fd) < 0)
        return -1;
    if (irq_router_init(&vm->irq, vm->vm_fd) < 0)
        return -1;
    /* The host bridge first: it opens the DSDT with \_SB.PCI0 (device_ops.aml). */
    if (pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) < 0 || host_bridge_attach(vm) < 0 ||
        reserve_pci_slots(vm) < 0)
        return -1;
    if (platform_devices_init(vm) < 0)
        return -1;
    if (create_virtio_devices(vm) < 0)
        return -1;
    if (vm->fw && create_firmware(vm) < 0)
        return -1;
    warn_pci_slots_unused(vm);
    /* A restored guest's RAM comes from the save file (vm_save.c), which needs it zero. */
    if (!cfg->restore && load_guest(vm) < 0)
        return -1;

    struct kvm_cpuid2 *supported = cpuid_get_supported(vm->kvm_fd);
    if (!supported)
        return -1;
    bool tsc_deadline = kvm_check_cap(vm->kvm_fd, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct kvm_cpuid2 *c = cpuid_for_vcpu(supported, i, vm->nr_vcpus, tsc_deadline);
        int ret = c ? vcpu_create(vm, i, c, &vm->vcpus[i]) : -ENOMEM;
        free(c);
        if (ret < 0) {
            free(supported);
            return -1;
        }
    }
    free(supported);
    /* Firmware starts where KVM creates the vCPU: the reset vector, f000:fff0. */
    if (!cfg->restore && !vm->fw && boot_linux_setup_vcpu(vm->vcpus[0]->fd, vm->boot) < 0) {
        log_err("cannot set the boot vCPU's registers");
        return -1;
    }
    if (save_chip_state(vm) < 0 || vcpu_state_probe(vm) < 0)
        return -1;
    if (cfg->control && control_init(vm, cfg->control) < 0)
        return -1;
    return 0;
}

/* ---- pausing and stopping the vCPU threads ---- */

static void pause_vcpus(struct vm *vm)
{
    pthread_mutex_lock(&vm->run_lock);
    vm->pause_wanted = true;
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(vm->vcpus[i]);
    pthread_cond_broadcast(&vm->run_cond);
    while (vm->nr_paused < vm->nr_running_threads)
        pthread_cond_wait(&vm->run_cond, &vm->run_lock);
    pthread_mutex_unlock(&vm->run_lock);
}

static void resume_vcpus(struct vm *vm)
{
    pthread_mutex_lock(&vm->run_lock);
    vm->pause_wanted = false;
    pthread_cond_broadcast(&vm->run_cond);
    pthread_mutex_unlock(&vm->run_lock);
}

static void stop_vcpus(struct vm *vm)
{
    pthread_mutex_lock(&vm->run_lock);
    vm->quit_wanted = true;
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        if (vm->vcpus[i])
            vcpu_kick(vm->vcpus[i]);
    pthread_cond_broadcast(&vm->run_cond);
    pthread_mutex_unlock(&vm->run_lock);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        if (vm->vcpus[i])
            vcpu_join(vm->vcpus[i]);
}

static void finish(struct vm *vm, int code)
{
    if (vm->done)
        return;
    vm->done = true;
    vm->exit_code = code;
    vm->state = VM_STATE_STOPPED;
}

/* A paused VM is still: no vCPU runs and no device touches its memory. */
int vm_pause(struct vm *vm)
{
    if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_STOPPING)
        return -EINVAL;
    pause_vcpus(vm);
    devices_quiesce(vm);
    vm->state = VM_STATE_PAUSED;
    return 0;
}

int vm_resume(struct vm *vm)
{
    if (vm->state != VM_STATE_PAUSED)
        return -EINVAL;
    vm->state = VM_STATE_RUNNING;
    devices_resume(vm);
    resume_vcpus(vm);
    return 0;
}

int vm_stop(struct vm *vm)
{
    if (vm->state == VM_STATE_PAUSED)
        vm_resume(vm); /* a paused guest cannot hear the button */
    if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_STOPPING)
        return -EINVAL;
    log_info("pressing the power button; forced stop in %u s", vm->cfg->stop_timeout);
    pm_press_power_button(vm);
    if (vm->state == VM_STATE_RUNNING) {
        struct itimerspec it = {.it_value = {.tv_sec = vm->cfg->stop_timeout}};
        timerfd_settime(vm->stop_timer_fd, 0, &it, NULL);
        vm->state = VM_STATE_STOPPING;
    }
    return 0;
}

void vm_kill(struct vm *vm)
{
    finish(vm, VM_EXIT_KILLED);
}

void vm_end_saved(struct vm *vm)
{
    finish(vm, VM_EXIT_SAVED);
}

/*
 * Reboot in place: every device reset, fresh RAM, chips and vCPUs, the
 * kernel loaded again. A paused VM's devices are already quiesced.
 */
static int reset_in_place(struct vm *vm)
{
    pause_vcpus(vm);
    devices_quiesce(vm);
    vm->nr_reboots++;
    log_info("the guest rebooted (%u so far): restarting it", vm->nr_reboots);
    /*
     * Devices first, RAM after: no queue, vhost worker or passed-through
     * device may complete an old request into the fresh RAM. Discarding all
     * of RAM gives zeroed RAM and returns the pages to the host; not with
     * --pci, whose DMA mapping holds the old pages (vfio/).
     */
    devices_reset(vm);
    if (guest_mem_drop_file_maps(&vm->mem) < 0) /* RAM that mapped a save file (--instant-on) */
        return -1;
    if (vm->vfio || guest_mem_discard(&vm->mem, 0, vm->mem.size) < 0)
        memset(vm->mem.base, 0, vm->mem.size);
    if (restore_chip_state(vm) < 0)
        return -1;
    if (load_guest(vm) < 0)
        return -1;
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        if (vcpu_reset(vm->vcpus[i]) < 0)
            return -1;
    if (!vm->fw && boot_linux_setup_vcpu(vm->vcpus[0]->fd, vm->boot) < 0)
        return -1;
    atomic_store(&vm->requests, 0);
    vm->started_ns = now_ns();
    devices_resume(vm);
    resume_vcpus(vm);
    return 0;
}

/* Is the guest stuck faulting right after each start? Counts this fault. */
static bool fault_loop(struct vm *vm)
{
    if (now_ns() - vm->started_ns < (uint64_t)VM_FAULT_LOOP_SECONDS * 1000000000u)
        vm->nr_quick_faults++;
    else
        vm->nr_quick_faults = 1;
    return vm->nr_quick_faults >= VM_FAULT_LOOP_COUNT;
}

static void handle_requests(struct vm *vm)
{
    uint64_t n;
    if (read(vm->event_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_debug("event fd: %s", strerror(errno));
    unsigned req = atomic_exchange(&vm->requests, 0);

    if (req & VM_REQ_CRASH) {
        log_err("the guest crashed: stopping the VM");
        finish(vm, VM_EXIT_CRASHED);
    } else if (req & VM_REQ_POWEROFF) {
        log_info("the guest powered off");
        finish(vm, VM_EXIT_POWEROFF);
    } else if (req & (VM_REQ_RESET | VM_REQ_TRIPLE_FAULT)) {
        if (req & VM_REQ_TRIPLE_FAULT && fault_loop(vm)) {
            log_err("the guest triple-faulted %u times in a row within %u s of its start: "
                    "giving up (is the kernel right for this VM?)",
                    vm->nr_quick_faults, VM_FAULT_LOOP_SECONDS);
            finish(vm, VM_EXIT_CRASHED);
        } else if (vm->cfg->reboot_exits) {
            log_info("the guest rebooted: exiting (--on-reboot exit)");
            finish(vm, VM_EXIT_REBOOT);
        } else if (reset_in_place(vm) < 0) {
            log_err("cannot restart the guest after its reboot");
            finish(vm, VM_EXIT_ERROR);
        }
        /* A pending stop (power button + timer) stays in force across the reboot. */
    }
}

static void handle_signal(struct vm *vm)
{
    struct signalfd_siginfo si;

    while (read(vm->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        if (vm->state == VM_STATE_STOPPING) {
            log_info("second stop signal: killing the VM");
            vm_kill(vm);
        } else if (si.ssi_signo == SIGHUP && vm->state != VM_STATE_PAUSED) {
            continue; /* a closed terminal should not end the guest */
        } else {
            vm_stop(vm);
        }
    }
}

static void handle_stop_timer(struct vm *vm)
{
    uint64_t n;

    if (read(vm->stop_timer_fd, &n, sizeof(n)) == sizeof(n)) {
        log_warn("the guest did not power off within %u s: stopping it by force",
                 vm->cfg->stop_timeout);
        vm_kill(vm);
    }
}

int vm_run(struct vm *vm)
{
    /* The loop's own fds are told apart by pointer identity. */
    struct vm_watch events = {.fd = vm->event_fd}, sigs = {.fd = vm->signal_fd},
                    timer = {.fd = vm->stop_timer_fd};
    if (vm_watch_add(vm, &events, EPOLLIN) < 0 || vm_watch_add(vm, &sigs, EPOLLIN) < 0 ||
        vm_watch_add(vm, &timer, EPOLLIN) < 0) {
        log_err("cannot set up the main loop: %s", strerror(errno));
        return VM_EXIT_ERROR;
    }
    vcpu_signals_init();
    vm->state = VM_STATE_RUNNING;
    vm->started_ns = now_ns();
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        if (vcpu_start(vm->vcpus[i]) < 0) {
            finish(vm, VM_EXIT_ERROR);
            break;
        }
    }
    while (!vm->done) {
        struct epoll_event ev[16];
        int n = epoll_wait(vm->epoll_fd, ev, 16, -1);
        if (n < 0 && errno != EINTR) {
            log_err("epoll_wait: %s", strerror(errno));
            finish(vm, VM_EXIT_ERROR);
        }
        for (int i = 0; i < n && !vm->done; i++) {
            struct vm_watch *w = ev[i].data.ptr;
            if (w == &events)
                handle_requests(vm);
            else if (w == &sigs)
                handle_signal(vm);
            else if (w == &timer)
                handle_stop_timer(vm);
            else
                w->fn(vm, w, ev[i].events);
        }
    }
    stop_vcpus(vm);
    return vm->exit_code;
}

void vm_destroy(struct vm *vm)
{
    if (vm->control)
        control_destroy(vm);
    stop_vcpus(vm);
    devices_destroy(vm);
    free(vm->platform);
    vm->platform = NULL;
    /* Buses and guest RAM are left to the process exit, which frees them at once. */
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        vcpu_destroy(vm->vcpus[i]);
        vm->vcpus[i] = NULL;
    }
    if (vm->files)
        boot_files_close(vm->files);
    free(vm->files);
    free(vm->saved);
    free(vm->save_msrs);
    vm->save_msrs = NULL;
    free(vm->boot);
    if (vm->fw)
        firmware_close(vm->fw);
    free(vm->fw);
    vm->fw = NULL;
    vm->saved = NULL;
    vm->boot = NULL;
    vm->files = NULL;
}
