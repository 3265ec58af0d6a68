/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ACPI fixed hardware in I/O space (the FADT points here): the PM1a event
 * block (status/enable: the power button), the PM1a control block
 * (SLP_TYP + SLP_EN = S5 powers off), the PM timer, and the reset register
 * at 0xCF9. The SCI is ISA IRQ 9, level-triggered.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "vm.h"
#include "x86/aml.h"

#define PM1_STS 0 /* offsets in the block */
#define PM1_EN  2
#define PM1_CNT 4
#define PM_TMR  8

#define PWRBTN     (1u << 8) /* in PM1_STS and PM1_EN */
#define SCI_EN     (1u << 0) /* in PM1_CNT */
#define SLP_TYP(c) (((c) >> 10) & 7)
#define SLP_EN     (1u << 13)
#define STS_W1C    0x8731 /* status bits the guest clears by writing 1 */
#define EN_MASK    0x0721

#define PM_TMR_HZ   3579545
#define CF9_RST_CPU 0x04

struct pm_dev {
    struct vm *vm;
    pthread_mutex_t lock;
    uint16_t sts, en, cnt;
    uint8_t cf9;
    bool sci;
    uint32_t tmr_offset; /* added to the host's count: the timer goes on after a restore */
};

/* Caller holds the lock. */
static void update_sci(struct pm_dev *pm)
{
    bool level = (pm->sts & pm->en & PWRBTN) != 0;
    if (level != pm->sci) {
        pm->sci = level;
        irq_line(&pm->vm->irq, PM_SCI_IRQ, level);
    }
}

static uint32_t ticks(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * PM_TMR_HZ +
                      (uint64_t)ts.tv_nsec * PM_TMR_HZ / 1000000000u);
}

static uint32_t pm_timer(const struct pm_dev *pm)
{
    return ticks(CLOCK_MONOTONIC) + pm->tmr_offset; /* the 32-bit counter wraps */
}

static void write_cnt(struct pm_dev *pm, uint16_t v)
{
    pm->cnt = (uint16_t)((v & ~SLP_EN) | SCI_EN);
    if (!(v & SLP_EN))
        return;
    if (SLP_TYP(v) == PM_S5_TYP)
        vm_request(pm->vm, VM_REQ_POWEROFF);
    else
        log_warn_limited("the guest asked for sleep state type %u, which this VM does not have",
                         SLP_TYP(v));
}

static void pm_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct pm_dev *pm = opaque;
    uint8_t regs[PM_IO_LEN];

    pthread_mutex_lock(&pm->lock);
    uint32_t tmr = pm_timer(pm);
    const uint16_t words[3] = {pm->sts, pm->en, pm->cnt};
    for (int i = 0; i < 3; i++) {
        regs[2 * i] = (uint8_t)words[i];
        regs[2 * i + 1] = (uint8_t)(words[i] >> 8);
    }
    regs[6] = regs[7] = 0;
    memcpy(regs + PM_TMR, &tmr, 4);

    if (!is_write) {
        for (uint32_t i = 0; i < len; i++)
            data[i] = off + i < PM_IO_LEN ? regs[off + i] : 0xff;
    } else {
        /* Apply byte by byte into the 16-bit registers, then act on each once. */
        uint8_t w[PM_IO_LEN], mask[PM_IO_LEN] = {0};
        memcpy(w, regs, sizeof(w));
        for (uint32_t i = 0; i < len && off + i < PM_IO_LEN; i++) {
            w[off + i] = data[i];
            mask[off + i] = 0xff;
        }
        uint16_t sts_w = (uint16_t)((w[0] & mask[0]) | (w[1] & mask[1]) << 8);
        pm->sts &= (uint16_t) ~(sts_w & STS_W1C);
        if (mask[2] | mask[3])
            pm->en = (uint16_t)((w[2] | w[3] << 8) & EN_MASK);
        if (mask[4] | mask[5])
            write_cnt(pm, (uint16_t)(w[4] | w[5] << 8));
    }
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

/* 0xCF9, the reset control register (inside the PCI host bridge's CF8-CFF). */
static void cf9_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct pm_dev *pm = opaque;

    (void)off;
    (void)len;
    pthread_mutex_lock(&pm->lock);
    if (!is_write) {
        data[0] = pm->cf9;
    } else {
        pm->cf9 = data[0] & 0x0e;
        if (data[0] & CF9_RST_CPU)
            vm_request(pm->vm, VM_REQ_RESET);
    }
    pthread_mutex_unlock(&pm->lock);
}

void pm_press_power_button(struct vm *vm)
{
    struct pm_dev *pm = vm->pm;

    if (!pm)
        return;
    pthread_mutex_lock(&pm->lock);
    pm->sts |= PWRBTN;
    update_sci(pm);
    bool listening = pm->en & PWRBTN;
    pthread_mutex_unlock(&pm->lock);
    if (!listening)
        log_warn("power button pressed, but the guest has not enabled it (no ACPI?)");
}

void pm_reset(struct vm *vm)
{
    struct pm_dev *pm = vm->pm;

    pthread_mutex_lock(&pm->lock);
    pm->sts = pm->en = 0;
    pm->cnt = SCI_EN;
    pm->cf9 = 0;
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The PM timer is saved with the wall-clock time of the save. On load it
 * goes on from the saved count plus the wall-clock time that passed,
 * because that is what vm_save.c adds to kvmclock and the TSC: the guest's
 * clocks all jump by the same amount and agree with each other. (Counting
 * from the saved value alone would make the PM timer lag the TSC by the
 * time the VM was saved, which a guest calibrating one against the other
 * would see as a broken clock.)
 */
int pm_save(struct vm *vm, struct state_out *out)
{
    struct pm_dev *pm = vm->pm;

    pthread_mutex_lock(&pm->lock);
    state_put_u16(out, pm->sts);
    state_put_u16(out, pm->en);
    state_put_u16(out, pm->cnt);
    state_put_u8(out, pm->cf9);
    state_put_u32(out, pm_timer(pm));
    state_put_u64(out, realtime_ns());
    pthread_mutex_unlock(&pm->lock);
    return 0;
}

int pm_load(struct vm *vm, struct state_in *in)
{
    struct pm_dev *pm = vm->pm;

    uint16_t sts = state_get_u16(in), en = state_get_u16(in), cnt = state_get_u16(in);
    uint8_t cf9 = state_get_u8(in);
    uint32_t tmr = state_get_u32(in);
    uint64_t saved_ns = state_get_u64(in);
    if (!state_in_ok(in))
        return -1;
    if (sts & ~STS_W1C)
        return state_in_fail(in, "PM1 status holds %#x, bits this device has not", sts);
    if (en & ~EN_MASK)
        return state_in_fail(in, "PM1 enable holds %#x, bits this device has not", en);
    if (!(cnt & SCI_EN) || (cnt & SLP_EN))
        return state_in_fail(in, "PM1 control holds %#x: SCI_EN off or a sleep under way", cnt);
    if (cf9 & ~0x0e)
        return state_in_fail(in, "the reset control register holds %#x", cf9);

    uint64_t now = realtime_ns();
    /* A clock set back since the save: the timer goes on from the saved count. */
    uint64_t elapsed = now > saved_ns ? now - saved_ns : 0;
    uint64_t advance =
        (elapsed / 1000000000u) * PM_TMR_HZ + (elapsed % 1000000000u) * PM_TMR_HZ / 1000000000u;
    pthread_mutex_lock(&pm->lock);
    pm->sts = sts;
    pm->en = en;
    pm->cnt = cnt;
    pm->cf9 = cf9;
    pm->tmr_offset = (uint32_t)(tmr + advance) - ticks(CLOCK_MONOTONIC);
    /* The SCI's level follows from sts & en; KVM's line state is new: drive it again. */
    pm->sci = false;
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    return 0;
}

int pm_init(struct vm *vm)
{
    struct pm_dev *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return -ENOMEM;
    pm->vm = vm;
    pm->cnt = SCI_EN; /* no SMM: always in ACPI mode */
    pthread_mutex_init(&pm->lock, NULL);
    vm->pm = pm;
    int ret = io_bus_register(&vm->pio, PM_IO_BASE, PM_IO_LEN, pm_io, pm);
    if (ret < 0)
        return ret;
    if (vm->pci)
        pci_bus_set_cf9_handler(vm->pci, cf9_io, pm);
    else
        ret = io_bus_register(&vm->pio, PM_RESET_PORT, 1, cf9_io, pm);
    return ret;
}

/* vCPUs are stopped: nothing reaches the ports any more. */
void pm_destroy(struct vm *vm)
{
    struct pm_dev *d = vm->pm;
    if (!d)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d);
    vm->pm = NULL;
}

/* \_S5: the SLP_TYP values for soft-off that write_cnt acts upon. */
void pm_aml(struct vm *vm, struct aml *a)
{
    (void)vm;
    aml_name(a, "\\_S5_");
    size_t s5 = aml_package_open(a, 4);
    aml_integer(a, PM_S5_TYP);
    aml_integer(a, PM_S5_TYP);
    aml_integer(a, 0);
    aml_integer(a, 0);
    aml_close(a, s5);
}
