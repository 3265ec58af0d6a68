/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One virtual machine: the KVM VM, its memory, buses, interrupts and vCPUs. */
#ifndef HV_VMM_VM_H
#define HV_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "mem.h"
#include "sandbox.h"

struct boot_files;
struct boot_info;
struct firmware;
struct control;
struct i8042_dev;
struct pci_bus;
struct rtc_dev;
struct vcpu;
struct vfio_vm;
struct vm_saved;
struct kvm_msr_list;

#define VM_MAX_VCPUS     64
#define VM_MAX_DISKS     16
#define VM_MAX_PCI       8  /* --pci devices (vfio/) */
#define VM_MAX_PCI_SLOTS 31 /* --pci-slot NAME=SLOT */

/* hv-vmm's exit codes: the contract with hvd and the tests (docs/vmm.md). */
enum vm_exit_code {
    VM_EXIT_POWEROFF = 0, /* the guest powered off (ACPI S5) */
    VM_EXIT_ERROR = 1,    /* hv-vmm could not start or hit a fatal error */
    VM_EXIT_USAGE = 2,    /* bad command line */
    VM_EXIT_REBOOT = 3,   /* the guest rebooted and --on-reboot exit was given */
    VM_EXIT_KILLED = 4,   /* stopped by force: "kill", or the power button timed out */
    VM_EXIT_CRASHED = 5,  /* the guest's vCPU could not go on (KVM internal error...) */
    VM_EXIT_SAVED = 6,    /* the VM was saved to a file ("save") and stopped */
};

enum vm_disk_bus {
    VM_DISK_VIRTIO, /* virtio-blk (the default) */
    VM_DISK_NVME,   /* an NVMe controller with one namespace (hw/nvme.c) */
    VM_DISK_AHCI,   /* a SATA disk on the AHCI controller (hw/ahci.c) */
};

struct vm_disk {
    const char *path;
    bool readonly;
    const char *format; /* "raw" or "qcow2"; NULL: probed (interactive use only) */
    enum vm_disk_bus bus;
};

#define VM_MAX_IMAGE_DIRS 8

/* What the command line asked for; read-only once the VM exists. */
struct vm_config {
    const char *name;
    const char *kernel;
    const char *initrd;  /* NULL: none */
    const char *cmdline; /* NULL: the default below */
    uint64_t ram_size;
    bool ram_shared;  /* --mem-backing memfd: RAM in a shared memfd (KSM cannot merge it) */
    bool ram_nomerge; /* --ksm off: RAM not marked mergeable */
    unsigned nr_cpus;
    struct vm_disk disks[VM_MAX_DISKS];
    unsigned nr_disks;
    struct vm_disk
        cdrom; /* --cdrom: an ISO on the AHCI controller's ATAPI drive; path NULL: none */
    /* --image-dir: where qcow2 backing files may be (NULL-terminated; none: each image's own) */
    const char *image_dirs[VM_MAX_IMAGE_DIRS + 1];
    unsigned nr_image_dirs;
    const char *net_tap;        /* NULL: no network */
    uint8_t net_mac[6];         /* --mac; all zero: derived from the TAP name */
    uint64_t vsock_cid;         /* 0: no vsock */
    const char *control;        /* control socket path, NULL: none */
    const char *console;        /* "stdio" or "file:PATH" (the serial port) */
    const char *display;        /* --display spec (display.c), NULL: none */
    const char *virtio_console; /* --virtio-console spec (virtio/console.c), NULL: none */
    bool reboot_exits;          /* --on-reboot exit */
    const char *restore;        /* --restore PATH: continue a saved VM, NULL: boot */
    bool instant_on;            /* --instant-on: map the saved RAM instead of reading it */
    unsigned stop_timeout;      /* seconds between the power button and a forced stop */

    /* --firmware: a BIOS image booted first (with kernel: the firmware boots it, docs/hvm.md) */
    const char *firmware;
    const char *firmware_log; /* --firmware-log: port 0x402 to this file, NULL: debug log */
    /* --firmware with --kernel: the firmware's Linux loader ROM (x86/firmware_linux.h) */
    const char *linuxboot_rom;

    /* --pci: host PCI functions on vfio-pci (vfio/) */
    const char *pci[VM_MAX_PCI];
    unsigned nr_pci;

    /* --pci-slot: explicit places on PCI bus 0 (pci_bus_reserve) */
    struct vm_pci_slot {
        const char *name;
        unsigned slot;
    } pci_slots[VM_MAX_PCI_SLOTS];
    unsigned nr_pci_slots;

    /* --sandbox, --user */
    struct sandbox_config sandbox;
};

#define VM_DEFAULT_CMDLINE "console=ttyS0 panic=-1"

enum vm_state {
    VM_STATE_CREATED,
    VM_STATE_RUNNING,
    VM_STATE_PAUSED,
    VM_STATE_STOPPING, /* power button pressed, waiting for the guest */
    VM_STATE_STOPPED,
};

/* Requests from vCPU or device threads to the main loop (bit mask). */
enum vm_request {
    VM_REQ_POWEROFF = 1 << 0,
    VM_REQ_RESET = 1 << 1,
    VM_REQ_CRASH = 1 << 2,
    VM_REQ_TRIPLE_FAULT = 1 << 3, /* a reset the guest did not ask for */
};

/* Triple faults this soon after a (re)start, this many times in a row: a crash. */
#define VM_FAULT_LOOP_SECONDS 5
#define VM_FAULT_LOOP_COUNT   3

struct vm {
    int kvm_fd;
    int vm_fd;
    struct guest_mem mem;
    struct io_bus pio;
    struct io_bus mmio;
    struct pci_bus *pci;
    struct irq_router irq;

    const struct vm_config *cfg;
    unsigned nr_vcpus;
    struct vcpu *vcpus[VM_MAX_VCPUS];
    uint64_t rsdp_gpa; /* where the ACPI tables start, for the boot loader */

    /* Lifecycle: see vm.c. state is changed by the main thread only. */
    _Atomic enum vm_state state;
    atomic_uint requests; /* enum vm_request bits */
    int event_fd;         /* wakes the main loop when requests change */

    /* Pausing the vCPUs (vcpu.c). */
    pthread_mutex_t run_lock;
    pthread_cond_t run_cond;
    bool pause_wanted;
    bool quit_wanted;
    unsigned nr_paused;
    unsigned nr_running_threads;

    /* Every device, in creation order (device.h, docs/device-model.md). */
    struct device *devices;
    struct device *platform; /* the platform devices' entries on that list */

    /* Platform devices that the lifecycle talks to. */
    struct pm_dev *pm;
    struct serial_dev *serial;
    struct i8042_dev *i8042;
    struct rtc_dev *rtc;
    struct control *control;
    struct vfio_vm *vfio; /* --pci devices; NULL without (vfio/) */
    unsigned nr_reboots;
    unsigned nr_quick_faults; /* consecutive triple faults soon after a start */
    uint64_t started_ns;      /* CLOCK_MONOTONIC of the last (re)start */

    /* The main loop (vm.c): an epoll set of watches, and how the VM ended. */
    int epoll_fd;
    int signal_fd;
    int stop_timer_fd;
    bool done;
    int exit_code;
    struct vm_saved *saved; /* irqchip and PIT power-on state, for reboots */
    struct boot_info *boot;
    struct boot_files *files; /* kernel and initrd, open for reboots */
    struct firmware *fw;      /* --firmware: the image, mapped below 4 GiB; NULL: Linux boot */

    /* Saving and restoring (vm_save.c, x86/vcpu_state.c). */
    struct kvm_msr_list *save_msrs; /* the MSRs a vCPU's state holds */
    uint32_t xsave_size;
    bool has_xcrs;
};

/* A file descriptor the main loop watches; fn runs on the main thread. */
struct vm_watch;
typedef void (*vm_watch_fn)(struct vm *vm, struct vm_watch *w, uint32_t events);
struct vm_watch {
    int fd;
    vm_watch_fn fn;
    void *opaque;
};
int vm_watch_add(struct vm *vm, struct vm_watch *w, uint32_t events);
void vm_watch_del(struct vm *vm, struct vm_watch *w);

/* Create everything (KVM VM, memory, devices, vCPUs) and load the guest. */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* Start the vCPUs and run the main loop until the VM ends; returns the exit code. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Thread-safe: ask the main loop to power off / reset the VM / give up. */
void vm_request(struct vm *vm, enum vm_request req);

/* Main-thread operations, also used by the control socket. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
/* Press the ACPI power button; forced stop after cfg->stop_timeout seconds. */
int vm_stop(struct vm *vm);
/* End the VM now with exit code VM_EXIT_KILLED. */
void vm_kill(struct vm *vm);
/* End the VM after a save that asked to stop it: exit code VM_EXIT_SAVED. */
void vm_end_saved(struct vm *vm);
const char *vm_state_name(enum vm_state s);

#endif
