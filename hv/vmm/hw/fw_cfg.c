/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fw_cfg: numbered items and named files for the firmware, read through the
 * data port a byte at a time or by DMA. Everything the guest hands us is
 * checked: a selector names any item or none (reads then give zeros), a
 * DMA access structure or buffer outside RAM, or a write, fails with the
 * ERROR bit; hv-vmm never trusts a length or an address.
 */
#include "fw_cfg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "device.h"
#include "log.h"
#include "state.h"
#include "util.h"
#include "vm.h"

#define KEY_WRITE_CHANNEL 0x4000 /* a legacy write flag in the selector: ignored */
#define KEY_INDEX_MASK    0x3fff
#define NR_ITEMS          (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)
#define DIR_ENTRY_LEN     64 /* BE u32 size, BE u16 key, u16 reserved, name[56] */

struct fw_cfg_item {
    uint8_t *data;
    uint32_t len;
    fw_cfg_update_fn update; /* NULL: the contents never change */
    void *opaque;
    bool fresh; /* updated since the last reset */
};

struct fw_cfg {
    struct device dev;
    const struct guest_mem *mem;
    pthread_mutex_t lock; /* registers: vCPU threads may race on the ports */
    struct fw_cfg_item items[NR_ITEMS];
    struct fw_cfg_item arch[FW_CFG_ARCH_MAX];
    char names[FW_CFG_MAX_FILES][FW_CFG_NAME_MAX];
    unsigned nr_files;
    uint16_t selector;
    uint32_t offset;   /* next byte of the selected item */
    uint32_t dma_high; /* high half of the DMA address, until the low half is written */
};

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The item a selector names, or NULL (none: reads give zeros). */
static struct fw_cfg_item *selected(struct fw_cfg *fc, uint16_t key)
{
    unsigned index = key & KEY_INDEX_MASK;

    if (key & FW_CFG_ARCH_LOCAL)
        return index < FW_CFG_ARCH_MAX ? &fc->arch[index] : NULL;
    return index < NR_ITEMS ? &fc->items[index] : NULL;
}

static int set_item(struct fw_cfg_item *it, const void *data, size_t len)
{
    if (len > UINT32_MAX)
        return -1;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    if (len)
        memcpy(copy, data, len);
    free(it->data);
    it->data = copy;
    it->len = (uint32_t)len;
    return 0;
}

int fw_cfg_add_item(struct fw_cfg *fc, uint16_t key, const void *data, size_t len)
{
    if ((key & KEY_WRITE_CHANNEL) || key == FW_CFG_FILE_DIR ||
        (!(key & FW_CFG_ARCH_LOCAL) && key >= FW_CFG_FILE_FIRST))
        return -1; /* the directory and the files are fw_cfg_add_file's */
    struct fw_cfg_item *it = selected(fc, key);
    return it ? set_item(it, data, len) : -1;
}

int fw_cfg_add_u16(struct fw_cfg *fc, uint16_t key, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return fw_cfg_add_item(fc, key, b, sizeof(b));
}

int fw_cfg_add_u32(struct fw_cfg *fc, uint16_t key, uint32_t v)
{
    uint8_t b[4];
    for (unsigned i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return fw_cfg_add_item(fc, key, b, sizeof(b));
}

int fw_cfg_add_u64(struct fw_cfg *fc, uint16_t key, uint64_t v)
{
    uint8_t b[8];
    for (unsigned i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return fw_cfg_add_item(fc, key, b, sizeof(b));
}

/* Item 0x19: a big-endian count, then one entry per file. */
static int rebuild_directory(struct fw_cfg *fc)
{
    size_t len = 4 + (size_t)fc->nr_files * DIR_ENTRY_LEN;
    uint8_t *dir = calloc(1, len);
    if (!dir)
        return -1;
    be32_put(dir, fc->nr_files);
    for (unsigned i = 0; i < fc->nr_files; i++) {
        uint8_t *e = dir + 4 + (size_t)i * DIR_ENTRY_LEN;
        uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + i);
        be32_put(e, fc->items[key].len);
        e[4] = (uint8_t)(key >> 8);
        e[5] = (uint8_t)key;
        memcpy(e + 8, fc->names[i], FW_CFG_NAME_MAX);
    }
    struct fw_cfg_item *it = &fc->items[FW_CFG_FILE_DIR];
    free(it->data);
    it->data = dir;
    it->len = (uint32_t)len;
    return 0;
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len)
{
    return fw_cfg_add_file_update(fc, name, data, len, NULL, NULL);
}

int fw_cfg_add_file_update(struct fw_cfg *fc, const char *name, const void *data, size_t len,
                           fw_cfg_update_fn update, void *opaque)
{
    size_t n = strlen(name);
    if (n == 0 || n >= FW_CFG_NAME_MAX) {
        log_err("fw_cfg: the file name \"%s\" is empty or longer than %d bytes", name,
                FW_CFG_NAME_MAX - 1);
        return -1;
    }
    for (unsigned i = 0; i < fc->nr_files; i++) {
        if (strcmp(fc->names[i], name) == 0) {
            log_err("fw_cfg: the file %s is added twice", name);
            return -1;
        }
    }
    if (fc->nr_files == FW_CFG_MAX_FILES) {
        log_err("fw_cfg: no room for the file %s (at most %d files)", name, FW_CFG_MAX_FILES);
        return -1;
    }
    struct fw_cfg_item *it = &fc->items[FW_CFG_FILE_FIRST + fc->nr_files];
    if (set_item(it, data, len) < 0)
        return -1;
    it->update = update;
    it->opaque = opaque;
    it->fresh = false;
    memset(fc->names[fc->nr_files], 0, FW_CFG_NAME_MAX);
    memcpy(fc->names[fc->nr_files], name, n);
    fc->nr_files++;
    return rebuild_directory(fc);
}

struct fw_cfg *fw_cfg_new(const struct guest_mem *mem)
{
    struct fw_cfg *fc = calloc(1, sizeof(*fc));
    if (!fc)
        return NULL;
    fc->mem = mem;
    pthread_mutex_init(&fc->lock, NULL);
    if (fw_cfg_add_item(fc, FW_CFG_SIGNATURE, "QEMU", 4) < 0 ||
        fw_cfg_add_u32(fc, FW_CFG_ID, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA) < 0 ||
        rebuild_directory(fc) < 0) {
        fw_cfg_free(fc);
        return NULL;
    }
    return fc;
}

void fw_cfg_free(struct fw_cfg *fc)
{
    if (!fc)
        return;
    for (unsigned i = 0; i < NR_ITEMS; i++)
        free(fc->items[i].data);
    for (unsigned i = 0; i < FW_CFG_ARCH_MAX; i++)
        free(fc->arch[i].data);
    pthread_mutex_destroy(&fc->lock);
    free(fc);
}

static void select_item(struct fw_cfg *fc, uint16_t key)
{
    fc->selector = key;
    fc->offset = 0;
    struct fw_cfg_item *it = selected(fc, key);
    if (it && it->update && !it->fresh) {
        it->update(it->opaque, it->data, it->len);
        it->fresh = true;
    }
}

/* The next byte of the selected item, 0 past its end. */
static uint8_t read_byte(struct fw_cfg *fc)
{
    struct fw_cfg_item *it = selected(fc, fc->selector);
    if (!it || fc->offset >= it->len)
        return 0;
    return it->data[fc->offset++];
}

/* DMA read of len bytes into guest memory at gpa: the item's bytes, then zeros. */
static bool dma_read(struct fw_cfg *fc, uint64_t gpa, uint32_t len)
{
    uint8_t *dst = guest_mem_ptr(fc->mem, gpa, len);
    if (!dst)
        return false;
    struct fw_cfg_item *it = selected(fc, fc->selector);
    uint32_t avail = it && fc->offset < it->len ? it->len - fc->offset : 0;
    uint32_t n = MIN(avail, len);
    if (n)
        memcpy(dst, it->data + fc->offset, n);
    memset(dst + n, 0, len - n);
    fc->offset += n;
    return true;
}

static void dma_skip(struct fw_cfg *fc, uint32_t len)
{
    struct fw_cfg_item *it = selected(fc, fc->selector);
    uint32_t avail = it && fc->offset < it->len ? it->len - fc->offset : 0;
    fc->offset += MIN(avail, len);
}

/* One DMA access: the structure at gpa says what; its control word says how it went. */
static void dma_run(struct fw_cfg *fc, uint64_t gpa)
{
    uint8_t acc[FW_CFG_DMA_ACCESS_LEN];

    if (guest_mem_read(fc->mem, gpa, acc, sizeof(acc)) < 0) {
        log_warn_limited("fw_cfg: the guest's DMA access at 0x%llx is not in RAM: ignored",
                         (unsigned long long)gpa);
        return;
    }
    uint32_t control = be32_get(acc), len = be32_get(acc + 4);
    uint64_t addr = (uint64_t)be32_get(acc + 8) << 32 | be32_get(acc + 12);
    bool ok = true;

    if (control & FW_CFG_DMA_SELECT)
        select_item(fc, (uint16_t)(control >> 16));
    if (control & FW_CFG_DMA_READ)
        ok = dma_read(fc, addr, len);
    else if (control & FW_CFG_DMA_WRITE)
        ok = false; /* every item is read-only */
    else if (control & FW_CFG_DMA_SKIP)
        dma_skip(fc, len);
    if (!ok)
        log_warn_limited("fw_cfg: DMA of %u bytes at 0x%llx (control 0x%x) failed", len,
                         (unsigned long long)addr, control);
    uint8_t done[4];
    be32_put(done, ok ? 0 : FW_CFG_DMA_ERROR);
    guest_mem_write(fc->mem, gpa, done, sizeof(done));
}

void fw_cfg_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct fw_cfg *fc = opaque;

    pthread_mutex_lock(&fc->lock);
    if (off == 0 && len == 2 && is_write) {
        select_item(fc, (uint16_t)(data[0] | data[1] << 8));
    } else if (off == FW_CFG_DATA_OFF && !is_write) {
        for (uint32_t i = 0; i < len; i++)
            data[i] = read_byte(fc);
    } else if (off >= FW_CFG_DMA_OFF && !is_write) {
        /* The register reads as the signature, byte by byte from the most significant. */
        for (uint32_t i = 0; i < len; i++) {
            uint64_t pos = off - FW_CFG_DMA_OFF + i;
            data[i] = pos < 8 ? (uint8_t)(FW_CFG_DMA_SIGNATURE >> (56 - 8 * pos)) : 0xff;
        }
    } else if (off == FW_CFG_DMA_OFF && len == 4 && is_write) {
        fc->dma_high = be32_get(data);
    } else if (off == FW_CFG_DMA_OFF + 4 && len == 4 && is_write) {
        uint64_t gpa = (uint64_t)fc->dma_high << 32 | be32_get(data);
        fc->dma_high = 0; /* a 32-bit address needs only the low half next time */
        dma_run(fc, gpa);
    } else if (!is_write) {
        memset(data, 0, len); /* the selector reads as 0 */
    }
    /* Writes to the data port are ignored, as on QEMU since 2.4. */
    pthread_mutex_unlock(&fc->lock);
}

void fw_cfg_reset(struct fw_cfg *fc)
{
    pthread_mutex_lock(&fc->lock);
    for (unsigned i = 0; i < NR_ITEMS; i++)
        fc->items[i].fresh = false;
    select_item(fc, FW_CFG_SIGNATURE);
    fc->dma_high = 0;
    pthread_mutex_unlock(&fc->lock);
}

void fw_cfg_save(struct fw_cfg *fc, struct state_out *out)
{
    pthread_mutex_lock(&fc->lock);
    state_put_u16(out, fc->selector);
    state_put_u32(out, fc->offset);
    state_put_u32(out, fc->dma_high);
    pthread_mutex_unlock(&fc->lock);
}

int fw_cfg_load(struct fw_cfg *fc, struct state_in *in)
{
    uint16_t selector = state_get_u16(in);
    uint32_t offset = state_get_u32(in);
    uint32_t dma_high = state_get_u32(in);
    if (!state_in_ok(in))
        return -1;
    struct fw_cfg_item *it = selected(fc, selector);
    uint32_t len = it ? it->len : 0;
    if (offset > len)
        return state_in_fail(in, "the offset %u is past the end of item 0x%x (%u bytes)", offset,
                             selector, len);
    pthread_mutex_lock(&fc->lock);
    select_item(fc, selector); /* an item built on selection is built again */
    fc->offset = offset;
    fc->dma_high = dma_high;
    pthread_mutex_unlock(&fc->lock);
    return 0;
}

/* ---- the device on the VM's list ---- */

static struct fw_cfg *of(struct device *d)
{
    return d->priv;
}

static void dev_reset(struct device *d)
{
    fw_cfg_reset(of(d));
}

static int dev_save(struct device *d, struct state_out *out)
{
    fw_cfg_save(of(d), out);
    return 0;
}

static int dev_load(struct device *d, struct state_in *in)
{
    return fw_cfg_load(of(d), in);
}

/* vCPUs are stopped: nothing reaches the ports any more. */
static void dev_destroy(struct device *d)
{
    struct fw_cfg *fc = of(d);
    io_bus_unregister(&d->vm->pio, FW_CFG_PORT);
    fw_cfg_free(fc);
}

/* DMA happens on the vCPU thread inside a port write: paused vCPUs make it quiet. */
static const struct device_ops fw_cfg_ops = {
    .reset = dev_reset,
    .destroy = dev_destroy,
    .save = dev_save,
    .load = dev_load,
};

int fw_cfg_attach(struct vm *vm, struct fw_cfg *fc)
{
    int ret = io_bus_register(&vm->pio, FW_CFG_PORT, FW_CFG_PORT_LEN, fw_cfg_io, fc);
    if (ret < 0) {
        log_err("cannot register the fw_cfg ports: %s", strerror(-ret));
        fw_cfg_free(fc);
        return -1;
    }
    device_add(vm, &fc->dev, &fw_cfg_ops, "fw-cfg", -1, fc);
    return 0;
}
