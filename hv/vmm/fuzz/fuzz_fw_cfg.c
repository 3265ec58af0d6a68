// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the fw_cfg device (hw/fw_cfg.c) as a hostile guest
 * drives it: selector writes, data port reads, any access to any of its 12
 * ports, and DMA accesses whose structure (control, length, address) the
 * input writes into guest RAM, a 64 KiB buffer at guest-physical 0x10000
 * (so addresses below, inside, across and above RAM all occur).
 *
 * Input: a list of operations. Byte 0 of each: the operation (low 3 bits),
 * then its operands, as parsed below. Checked besides ASan/UBSan: a DMA
 * whose structure lies in RAM always completes with control 0 or ERROR,
 * and reading an item never gives bytes it does not hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hw/fw_cfg.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_GPA  0x10000u
#define RAM_SIZE 0x10000u

static uint8_t ram[RAM_SIZE];
static struct guest_mem mem = {
    .memfd = -1,
    .base = ram,
    .size = RAM_SIZE,
    .nr_regions = 1,
    .regions = {{.gpa = RAM_GPA, .size = RAM_SIZE, .hva = ram}},
};

struct input {
    const uint8_t *p;
    size_t len;
};

static uint8_t take8(struct input *in)
{
    if (!in->len)
        return 0;
    in->len--;
    return *in->p++;
}

static uint32_t take32(struct input *in)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v = v << 8 | take8(in);
    return v;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A file built when selected (as etc/acpi/tables is): it keeps its size. */
static void rebuild(void *opaque, uint8_t *data, size_t len)
{
    (void)opaque;
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(data[i] + i + 1);
}

static struct fw_cfg *create(void)
{
    static const char e820[20] = {0}, built[64] = {0};
    struct fw_cfg *fc = fw_cfg_new(&mem);
    if (!fc || fw_cfg_add_u16(fc, FW_CFG_NB_CPUS, 2) || fw_cfg_add_u64(fc, FW_CFG_RAM_SIZE, 1) ||
        fw_cfg_add_u16(fc, FW_CFG_IRQ0_OVERRIDE, 1) ||
        fw_cfg_add_file(fc, "etc/e820", e820, sizeof(e820)) ||
        fw_cfg_add_file(fc, "etc/empty", "", 0) ||
        fw_cfg_add_file(fc, "bootorder", "/pci@i0cf8/*@3\n", 15) ||
        fw_cfg_add_file_update(fc, "etc/built", built, sizeof(built), rebuild, NULL))
        __builtin_trap();
    return fc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct fw_cfg *fc = create();
    uint32_t high = 0; /* what the device holds as the DMA address's high half */
    memset(ram, 0, sizeof(ram));

    while (in.len) {
        uint8_t op = take8(&in);
        uint8_t d[4] = {0};
        switch (op & 7) {
        case 0: /* select */
            d[0] = take8(&in);
            d[1] = take8(&in);
            fw_cfg_io(fc, 0, d, 2, true);
            break;
        case 1: { /* read n data bytes: each is an item's byte or 0 */
            unsigned n = take8(&in);
            for (unsigned i = 0; i < n; i++)
                fw_cfg_io(fc, FW_CFG_DATA_OFF, d, 1, false);
            break;
        }
        case 2: { /* any access to any port */
            unsigned off = take8(&in) % FW_CFG_PORT_LEN;
            uint32_t len = 1u << (op >> 3 & 3);
            if (len > 4)
                len = 4;
            bool is_write = op & 0x20;
            uint32_t v = take32(&in);
            memcpy(d, &v, 4);
            if (off + len > FW_CFG_PORT_LEN)
                break;
            fw_cfg_io(fc, off, d, len, is_write);
            if (is_write && len == 4 && off == FW_CFG_DMA_OFF)
                high = be32(d);
            else if (is_write && len == 4 && off == FW_CFG_DMA_OFF + 4)
                high = 0;
            break;
        }
        case 3: { /* a DMA access: structure at a guest address, then the trigger */
            uint32_t gpa = take32(&in);
            uint8_t acc[FW_CFG_DMA_ACCESS_LEN];
            for (unsigned i = 0; i < sizeof(acc); i++)
                acc[i] = take8(&in);
            bool in_ram = gpa >= RAM_GPA && gpa - RAM_GPA <= RAM_SIZE - sizeof(acc);
            if (in_ram)
                memcpy(ram + (gpa - RAM_GPA), acc, sizeof(acc));
            uint8_t lo[4] = {(uint8_t)(gpa >> 24), (uint8_t)(gpa >> 16), (uint8_t)(gpa >> 8),
                             (uint8_t)gpa};
            if (op & 0x08) { /* with a high half first */
                high = take32(&in) & 1;
                uint8_t h[4] = {0, 0, 0, (uint8_t)high};
                fw_cfg_io(fc, FW_CFG_DMA_OFF, h, 4, true);
            }
            in_ram = in_ram && !high;
            fw_cfg_io(fc, FW_CFG_DMA_OFF + 4, lo, 4, true);
            high = 0;
            if (in_ram) {
                uint32_t c = be32(ram + (gpa - RAM_GPA));
                if (c != 0 && c != FW_CFG_DMA_ERROR)
                    __builtin_trap();
            }
            break;
        }
        case 4: /* the guest scribbles over RAM */
            ram[(take8(&in) << 8 | take8(&in)) % RAM_SIZE] = take8(&in);
            break;
        case 5:
            fw_cfg_reset(fc);
            high = 0;
            break;
        default:
            break;
        }
    }
    fw_cfg_free(fc);
    return 0;
}
