/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VM definitions: the human-readable INI files of docs/hvd.md, their JSON
 * form in the API, and the validator shared by hvd and `hvctl validate`.
 */
#ifndef HV_HVD_VMDEF_H
#define HV_HVD_VMDEF_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define VMDEF_NAME_MAX   64
#define VMDEF_MIN_MEMORY (16ULL << 20)
#define VMDEF_MAX_MEMORY (1ULL << 40)
#define VMDEF_MAX_CPUS   64
#define VMDEF_MAX_DISKS  16
#define VMDEF_MAX_PCI    8
#define VMDEF_PCI_SLOTS  31 /* PCI bus 0 without the host bridge */

struct vmdef {
    char *name;
    uint64_t memory;
    unsigned cpus;
    char *kernel;   /* NULL: firmware boot (firmware=) */
    char *firmware; /* NULL: direct Linux boot of kernel=; "bios": SeaBIOS */
    char *gpu;      /* display adapter: "virtio" or "bochs" (default: bochs for os=windows) */
    char *initrd;   /* NULL: none */
    char *cmdline;  /* NULL: hv-vmm's default */
    char **disks;   /* NULL-terminated, each "PATH[,ro][,format=F]" (vmdef_disk_parse) */
    char **pci;     /* NULL-terminated host PCI addresses (0000:00:02.0); NULL: none */
    /*
     * NULL-terminated "DEVICE=SLOT": where hv-vmm puts each PCI device
     * (--pci-slot), DEVICE as hv-vmm's "devices" names it, or disk:PATH for a
     * disk; hvd records what hv-vmm chose at a VM's start (layout.c).
     */
    char **pci_slots;
    char *net;      /* "none" or "nat" */
    char *mac;      /* NULL: derived from the name */
    uint32_t vsock; /* 0: none */
    char *colour;   /* "#rrggbb" */
    char *os;       /* linux, windows, other */
    char *role;     /* normal, uivm */
    bool autostart;
    bool instant_on;   /* restore maps the save file instead of reading it (hv-vmm --instant-on) */
    bool display;      /* a screen on hv-switch (virtio-gpu + input); default true */
    bool page_sharing; /* guest RAM offered to KSM; false: hv-vmm --ksm off (default true) */
    unsigned slot;     /* preferred hotkey Ctrl+Alt+slot, 1..9; 0: the first free */
};

/* How far validation looks outside the text itself. */
struct vmdef_ctx {
    const char *images_dir; /* where relative disk names live; NULL: do not resolve them */
    bool check_files;       /* require kernel, initrd and disks to exist */
};

/* Both return the definition, or NULL with *err (malloc'd): "field 'memory': ..." */
struct vmdef *vmdef_from_text(const char *text, size_t len, const struct vmdef_ctx *ctx,
                              char **err);
struct vmdef *vmdef_from_json(struct json_object *obj, const struct vmdef_ctx *ctx, char **err);

void vmdef_free(struct vmdef *def);

char *vmdef_to_text(const struct vmdef *def);
struct json_object *vmdef_to_json(const struct vmdef *def);

/* True for [A-Za-z0-9][A-Za-z0-9._-]{0,63}: VM names and image names. */
bool vmdef_name_ok(const char *name);

/*
 * A disk entry: NAME-or-/ABS/PATH[,ro|,rw][,nonpersistent][,format=raw|qcow2|vhd], options in any
 * order, each at most once. The format is decided once (docs/disks.md) and
 * kept in the entry, so that nothing probes a guest-written image again.
 */
struct vmdef_disk {
    char *path;    /* a bare name joined to images_dir when that is given, else as written */
    bool readonly; /* ",ro" */
    /* ",nonpersistent": the VM writes to an overlay made fresh at each start and thrown away
     * when it ends (kept while it is saved); the image itself is only read. */
    bool nonpersistent;
    const char *format; /* VMDEF_FORMAT_RAW, _QCOW2, _VHD, or NULL: not given */
};
#define VMDEF_FORMAT_RAW   "raw"
#define VMDEF_FORMAT_QCOW2 "qcow2"
#define VMDEF_FORMAT_VHD   "vhd"           /* qemu-img's "vpc" */
#define VMDEF_VHD_MAX_SIZE (2040ULL << 30) /* the format's own limit */

/* 0 and *out (free it with vmdef_disk_clear), or -1 with *err: "field 'disk': ...". */
int vmdef_disk_parse(const char *entry, const char *images_dir, struct vmdef_disk *out, char **err);
void vmdef_disk_clear(struct vmdef_disk *disk);
#define VHD_COOKIE "conectix" /* a VHD footer's first bytes */
/*
 * 0 and the disk's size from its footer when the file ends with a VHD footer
 * (any VHD: fixed, dynamic or differencing; the footer is not checked
 * further: hv-vmm does that when it opens it), else -1.
 */
int vmdef_vhd_size(const char *path, uint64_t *size);
/*
 * A differencing VHD's parent as its header names it (the file name, ASCII;
 * hv-vmm looks for it beside the image), malloc'd; NULL for any other file.
 */
char *vmdef_vhd_parent(const char *path);
/* The entry in its stored form, "PATH[,ro][,nonpersistent][,format=F]" (malloc'd). */
char *vmdef_disk_text(const struct vmdef_disk *disk);
/* "raw", "qcow2" or "vhd" for a name given by a client; NULL for anything else. */
const char *vmdef_format_name(const char *s);

/*
 * The format an image's first 4 bytes say: the qcow2 magic QFI\xfb → qcow2,
 * anything else raw. -1 with *err when it cannot be read. Only for deciding
 * a format once (hvd, at define) or for checking a format=qcow2 a user gave.
 */
int vmdef_probe_format(const char *path, const char **format, char **err);

/* A stable locally administered unicast MAC from the VM name: "52:54:xx:..". */
void vmdef_mac(const struct vmdef *def, char out[18]);

#endif
