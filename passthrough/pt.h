/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PCI passthrough on the host side (docs/passthrough.md): what sysfs says
 * about a PCI function (IDs, driver, IOMMU group), whether it can be given
 * to a VM, binding it to vfio-pci and giving it back to its own driver.
 *
 * Everything goes through a struct pt_sys, whose root is "" on a real host
 * and a temporary folder holding a fake /sys in the unit tests. No logging:
 * each failure is a sentence in err, for hvd, hv-pci and hv-vmm to show.
 */
#ifndef HV_PASSTHROUGH_PT_H
#define HV_PASSTHROUGH_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PT_BDF_LEN    13 /* "0000:00:02.0" and its NUL */
#define PT_DRIVER_LEN 64
#define PT_VFIO       "vfio-pci"

struct pt_sys {
    const char *root; /* "" for the real system */
    /*
     * Tests only: called after each write to a sysfs file (path without
     * root), so a test can play the kernel (bind, unbind). NULL normally.
     */
    void (*wrote)(void *opaque, const char *path, const char *value);
    void *opaque;
};

struct pt_device {
    char bdf[PT_BDF_LEN];
    uint16_t vendor, device;
    uint32_t class_code;        /* class << 16 | subclass << 8 | prog-if */
    char driver[PT_DRIVER_LEN]; /* "" when no driver is bound */
    int group;                  /* IOMMU group, -1 when the device has none */
};

/* What pt_bind_vfio() changed, for pt_restore(). */
struct pt_binding {
    char bdf[PT_BDF_LEN];
    char driver[PT_DRIVER_LEN]; /* the driver before: "" none, PT_VFIO already vfio-pci */
};

/*
 * "0000:00:02.0" or "00:02.0" (domain 0), hex digits either case, into the
 * kernel's canonical lower-case form. 0, or -1 when it is not a BDF.
 */
int pt_parse_bdf(const char *s, char out[PT_BDF_LEN]);

/* Whether the IOMMU is on: the kernel made at least one IOMMU group. */
bool pt_iommu_enabled(const struct pt_sys *sys);

/* Read what sysfs says about bdf (canonical form). 0, or -1 + err. */
int pt_device_get(const struct pt_sys *sys, const char *bdf, struct pt_device *dev, char *err,
                  size_t errlen);

/* The devices of IOMMU group `group` (malloc'd, sorted). 0, or -1 + err. */
int pt_group_members(const struct pt_sys *sys, int group, char (**bdfs)[PT_BDF_LEN], size_t *n,
                     char *err, size_t errlen);

/* True for PCI-to-PCI bridges (class 06.04 and 06.09). */
bool pt_is_bridge(uint32_t class_code);

/*
 * Can bdf be given to a VM? The IOMMU is on, the device exists, is not a
 * bridge (class 06), has an IOMMU group, and every other device of that group is
 * unbound, on vfio-pci or a PCI bridge. 0, or -1 with the reason in err.
 */
int pt_check_assignable(const struct pt_sys *sys, const char *bdf, char *err, size_t errlen);

/*
 * Load vfio-pci and vfio_iommu_type1 when they are not there yet (modprobe;
 * real system only). 0, or -1 + err.
 */
int pt_load_vfio(const struct pt_sys *sys, char *err, size_t errlen);

/*
 * Bind bdf to vfio-pci (driver_override, unbind, drivers_probe) and say in
 * *b what it was bound to. Checks that vfio-pci took it; on failure the
 * device is given back. 0, or -1 + err.
 */
int pt_bind_vfio(const struct pt_sys *sys, const char *bdf, struct pt_binding *b, char *err,
                 size_t errlen);

/*
 * Undo pt_bind_vfio(): unbind from vfio-pci, clear driver_override and, if
 * it had one, probe the device's own driver again and check it took it.
 * 0, or -1 + err.
 */
int pt_restore(const struct pt_sys *sys, const struct pt_binding *b, char *err, size_t errlen);

/* A binding as one line of text "BDF DRIVER" ("-" for none), and back. */
void pt_binding_format(const struct pt_binding *b, char *out, size_t outlen);
int pt_binding_parse(const char *line, struct pt_binding *b);

#endif
