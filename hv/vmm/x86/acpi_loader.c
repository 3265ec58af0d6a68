/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The firmware's ACPI: relocatable blobs and the table-loader script over fw_cfg. */
#include "acpi_loader.h"

#include <stdlib.h>
#include <string.h>

#include "hw/fw_cfg.h"
#include "log.h"
#include "pci.h"
#include "vm.h"

#define TABLES_CAP   (64u << 10)
#define TABLES_ALIGN 64 /* the FACS in it must be 64-byte aligned */
#define RSDP_ALIGN   16 /* an OS searches for the RSDP on 16-byte boundaries */

const char *acpi_blob_file(enum acpi_blob blob)
{
    return blob == ACPI_BLOB_RSDP ? ACPI_FILE_RSDP : ACPI_FILE_TABLES;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *entry(uint8_t *out, size_t cap, size_t *len, uint32_t command)
{
    if (cap - *len < ACPI_LOADER_ENTRY_LEN)
        return NULL;
    uint8_t *e = out + *len;
    memset(e, 0, ACPI_LOADER_ENTRY_LEN);
    put32(e, command);
    *len += ACPI_LOADER_ENTRY_LEN;
    return e + 4;
}

/* The names are ours and shorter than 56 bytes: the rest stays NUL. */
static void put_name(uint8_t *p, const char *name)
{
    memcpy(p, name, strlen(name));
}

size_t acpi_loader_script(const struct acpi_links *links, uint8_t *out, size_t cap)
{
    size_t len = 0;
    uint8_t *e;

    /* Every blob is allocated before anything refers to it. */
    static const struct {
        enum acpi_blob blob;
        uint32_t align;
        uint8_t zone;
    } alloc[] = {{ACPI_BLOB_TABLES, TABLES_ALIGN, ACPI_LOADER_ZONE_HIGH},
                 {ACPI_BLOB_RSDP, RSDP_ALIGN, ACPI_LOADER_ZONE_FSEG}};
    for (size_t i = 0; i < sizeof(alloc) / sizeof(alloc[0]); i++) {
        if (!(e = entry(out, cap, &len, ACPI_LOADER_ALLOCATE)))
            return 0;
        put_name(e, acpi_blob_file(alloc[i].blob));
        put32(e + ACPI_LOADER_FILE_LEN, alloc[i].align);
        e[ACPI_LOADER_FILE_LEN + 4] = alloc[i].zone;
    }
    /* Pointers first: a checksum covers the patched bytes. */
    for (unsigned i = 0; i < links->nr_ptr; i++) {
        const struct acpi_pointer *p = &links->ptr[i];
        if (!(e = entry(out, cap, &len, ACPI_LOADER_ADD_POINTER)))
            return 0;
        put_name(e, acpi_blob_file(p->blob));
        put_name(e + ACPI_LOADER_FILE_LEN, acpi_blob_file(p->target));
        put32(e + 2 * ACPI_LOADER_FILE_LEN, p->offset);
        e[2 * ACPI_LOADER_FILE_LEN + 4] = p->size;
    }
    for (unsigned i = 0; i < links->nr_sum; i++) {
        const struct acpi_sum *s = &links->sum[i];
        if (!(e = entry(out, cap, &len, ACPI_LOADER_ADD_CHECKSUM)))
            return 0;
        put_name(e, acpi_blob_file(s->blob));
        put32(e + ACPI_LOADER_FILE_LEN, s->result);
        put32(e + ACPI_LOADER_FILE_LEN + 4, s->start);
        put32(e + ACPI_LOADER_FILE_LEN + 8, s->len);
    }
    return len;
}

/* What the tables describe now: the devices, the CPUs, the ECAM where the guest put it. */
static struct acpi_config config_of(struct vm *vm)
{
    uint64_t ecam = pci_bus_ecam_base(vm->pci);
    return (struct acpi_config){
        .nr_cpus = vm->nr_vcpus,
        .devices = vm->devices,
        .ecam_base = ecam ? ecam : MEM_PCI_ECAM_BASE,
    };
}

/*
 * fw_cfg's update hook for etc/acpi/tables (vCPU thread, fw_cfg's lock
 * held). The size was given in the directory already and cannot change;
 * what changes (the ECAM's base, the DSDT's windows) has a fixed size.
 */
static void update_tables(void *opaque, uint8_t *data, size_t len)
{
    struct vm *vm = opaque;
    const struct acpi_config cfg = config_of(vm);
    uint8_t rsdp[ACPI_RSDP_LEN];
    struct acpi_links links;
    uint8_t *buf = calloc(1, TABLES_CAP);

    size_t n = buf ? acpi_build_blobs(buf, TABLES_CAP, rsdp, &cfg, &links) : 0;
    if (n == len)
        memcpy(data, buf, len);
    else
        log_warn_limited("acpi: the tables came out at %zu bytes, not %zu: the firmware gets "
                         "those built at start",
                         n, len);
    free(buf);
}

int acpi_fw_cfg(struct fw_cfg *fc, struct vm *vm)
{
    const struct acpi_config cfg = config_of(vm);
    uint8_t rsdp[ACPI_RSDP_LEN];
    struct acpi_links links;
    uint8_t *tables = calloc(1, TABLES_CAP), *script = calloc(1, ACPI_LOADER_MAX_LEN);
    int ret = -1;

    size_t n = tables && script ? acpi_build_blobs(tables, TABLES_CAP, rsdp, &cfg, &links) : 0;
    size_t script_len = n ? acpi_loader_script(&links, script, ACPI_LOADER_MAX_LEN) : 0;
    if (!script_len)
        log_err("cannot build the ACPI tables for the firmware");
    else if (fw_cfg_add_file_update(fc, ACPI_FILE_TABLES, tables, n, update_tables, vm) == 0 &&
             fw_cfg_add_file(fc, ACPI_FILE_RSDP, rsdp, sizeof(rsdp)) == 0 &&
             fw_cfg_add_file(fc, ACPI_FILE_LOADER, script, script_len) == 0)
        ret = 0;
    free(tables);
    free(script);
    return ret;
}
