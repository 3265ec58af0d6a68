/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The devices of a VM. Platform devices (the legacy PC parts every guest
 * gets) are listed in one plain table, each in its own file under hw/. The
 * virtio devices are created from the command line by the functions below,
 * which hv/vmm/virtio/ implements.
 */
#ifndef HV_VMM_DEVICES_H
#define HV_VMM_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct aml;
struct state_in;
struct state_out;

struct platform_device {
    const char *name;
    int (*init)(struct vm *vm);     /* register ports, start threads; 0 or -errno */
    void (*reset)(struct vm *vm);   /* optional: the guest rebooted (vCPUs are paused) */
    void (*destroy)(struct vm *vm); /* optional: vCPUs are stopped */
    /* optional: as device_ops.save / .load (device.h) */
    int (*save)(struct vm *vm, struct state_out *out);
    int (*load)(struct vm *vm, struct state_in *in);
    void (*aml)(struct vm *vm, struct aml *dsdt); /* optional: as device_ops.aml */
    /* optional: as device_ops.quiesce / .resume (a device with a thread or timer) */
    void (*quiesce)(struct vm *vm);
    void (*resume)(struct vm *vm);
};

/* Defined in devices.c, in initialisation order. */
extern const struct platform_device platform_devices[];
extern const unsigned nr_platform_devices;

/* Set up each platform device and put it on the VM's device list. 0 or -1 (logged). */
int platform_devices_init(struct vm *vm);

/* hw/: one file each. save/load: what each keeps is in docs/device-model.md. */
int serial8250_init(struct vm *vm);
void serial8250_reset(struct vm *vm);
void serial8250_destroy(struct vm *vm);
int serial8250_save(struct vm *vm, struct state_out *out);
int serial8250_load(struct vm *vm, struct state_in *in);
void serial8250_aml(struct vm *vm, struct aml *dsdt);
int rtc_init(struct vm *vm);
void rtc_destroy(struct vm *vm);
int rtc_save(struct vm *vm, struct state_out *out);
int rtc_load(struct vm *vm, struct state_in *in);
void rtc_aml(struct vm *vm, struct aml *dsdt);
int i8042_init(struct vm *vm);
void i8042_destroy(struct vm *vm);
void i8042_reset(struct vm *vm);
int i8042_save(struct vm *vm, struct state_out *out);
int i8042_load(struct vm *vm, struct state_in *in);
void i8042_quiesce(struct vm *vm);
void i8042_resume(struct vm *vm);
int pm_init(struct vm *vm);
void pm_destroy(struct vm *vm);
void pm_reset(struct vm *vm);
int pm_save(struct vm *vm, struct state_out *out);
int pm_load(struct vm *vm, struct state_in *in);
void pm_aml(struct vm *vm, struct aml *dsdt);
int legacy_ports_init(struct vm *vm);
/* vfio/device.c: the --pci devices (none: nothing to do). */
int vfio_init(struct vm *vm);
void vfio_reset(struct vm *vm);
void vfio_destroy(struct vm *vm);
/* devices.c: a VM with --pci functions cannot be saved (their state is in the hardware). */
int vfio_save(struct vm *vm, struct state_out *out);

/* The ACPI power button (hw/pm.c): SIGTERM and the control socket's "stop". */
void pm_press_power_button(struct vm *vm);

/*
 * The ACPI fixed hardware (hw/pm.c) and its interrupt, described to the guest
 * by x86/acpi.c.
 */
#define PM_IO_BASE     0x600 /* PM1a event block: status (2), enable (2) */
#define PM1_EVT_LEN    4
#define PM1_CNT_PORT   (PM_IO_BASE + 4) /* PM1a control (2) */
#define PM1_CNT_LEN    2
#define PM_TMR_PORT    (PM_IO_BASE + 8) /* ACPI PM timer (4) */
#define PM_TMR_LEN     4
#define PM_IO_LEN      12
#define PM_SCI_IRQ     9
#define PM_RESET_PORT  0xcf9 /* reset control register (also the FADT's RESET_REG) */
#define PM_RESET_VALUE 0x06
#define PM_S5_TYP      5 /* SLP_TYP of S5 in our DSDT's \_S5 */

/*
 * The virtio devices (hv/vmm/virtio/). Each returns 0 or -errno after logging
 * why. Declared weak so that hv-vmm links while a device is not yet written:
 * main.c says so clearly when one is missing.
 */
#define HV_WEAK __attribute__((weak))
struct vm_disk;
HV_WEAK int virtio_blk_create(struct vm *vm, const struct vm_disk *disk);
/* --disk ...,bus=nvme: an NVMe controller (hw/nvme.c). */
HV_WEAK int nvme_create(struct vm *vm, const struct vm_disk *disk);
/* --disk ...,bus=ahci and --cdrom: one AHCI controller with them all (hw/ahci.c). */
HV_WEAK int ahci_create(struct vm *vm);
HV_WEAK int virtio_net_create(struct vm *vm, const char *tap_ifname);
/*
 * The same on a descriptor that carries packets as a TAP with IFF_VNET_HDR
 * does (taken over, closed on failure): the fuzzers give it one end of a
 * socketpair. With vhost-net unless HV_VMM_NET_USERSPACE=1.
 */
HV_WEAK int virtio_net_create_fd(struct vm *vm, int tap_fd, const char *tap_ifname);
HV_WEAK int virtio_vsock_create(struct vm *vm, uint64_t guest_cid);
HV_WEAK int virtio_rng_create(struct vm *vm);
HV_WEAK int virtio_console_create(struct vm *vm, const char *spec);
HV_WEAK int virtio_balloon_create(struct vm *vm);
/* --display: virtio-gpu, keyboard and tablet, connected to hv-switch (display.c). */
HV_WEAK int virtio_display_create(struct vm *vm, const char *spec);

#endif
