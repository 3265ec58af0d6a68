/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The platform devices every VM gets, in the order they are set up. */
#include "devices.h"

#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "hw/i8042.h"
#include "log.h"
#include "state.h"
#include "util.h"
#include "vm.h"
#include "x86/aml.h"

/*
 * A passed-through function's state lives in the hardware and in the
 * host's driver; hv-vmm cannot read it back into a file, nor put it into
 * another function. Without --pci the section is empty.
 */
int vfio_save(struct vm *vm, struct state_out *out)
{
    const struct vm_config *cfg = vm->cfg;
    if (!cfg || !cfg->nr_pci)
        return 0;
    return state_fail(out,
                      "the host PCI function %s is passed through to the guest (--pci), and "
                      "the state of a passed-through device cannot be saved",
                      cfg->pci[0]);
}

/* The 8042's keyboard and mouse (hw/i8042.c writes the two devices) under \_SB. */
static void i8042_sb_aml(struct vm *vm, struct aml *dsdt)
{
    (void)vm;
    size_t sb = aml_scope_open(dsdt, "\\_SB_");
    i8042_aml(dsdt);
    aml_close(dsdt, sb);
}

const struct platform_device platform_devices[] = {
    {.name = "serial8250",
     .init = serial8250_init,
     .reset = serial8250_reset,
     .destroy = serial8250_destroy,
     .save = serial8250_save,
     .load = serial8250_load,
     .aml = serial8250_aml},
    {.name = "rtc",
     .init = rtc_init,
     .destroy = rtc_destroy,
     .save = rtc_save,
     .load = rtc_load,
     .aml = rtc_aml},
    {.name = "i8042",
     .init = i8042_init,
     .destroy = i8042_destroy,
     .reset = i8042_reset,
     .save = i8042_save,
     .load = i8042_load,
     .quiesce = i8042_quiesce,
     .resume = i8042_resume,
     .aml = i8042_sb_aml},
    {.name = "acpi-pm",
     .init = pm_init,
     .destroy = pm_destroy,
     .reset = pm_reset,
     .save = pm_save,
     .load = pm_load,
     .aml = pm_aml},
    /* The POST ports hold nothing: an empty section. */
    {.name = "legacy-ports", .init = legacy_ports_init},
    /* The --pci functions: reset (FLR) like every device, before guest RAM is wiped. */
    {.name = "vfio-pci",
     .init = vfio_init,
     .reset = vfio_reset,
     .destroy = vfio_destroy,
     .save = vfio_save},
};

const unsigned nr_platform_devices = ARRAY_SIZE(platform_devices);

static const struct platform_device *entry(struct device *d)
{
    return d->priv;
}

static void platform_reset(struct device *d)
{
    if (entry(d)->reset)
        entry(d)->reset(d->vm);
}

static void platform_destroy(struct device *d)
{
    if (entry(d)->destroy)
        entry(d)->destroy(d->vm);
}

static void platform_quiesce(struct device *d)
{
    if (entry(d)->quiesce)
        entry(d)->quiesce(d->vm);
}

static void platform_resume(struct device *d)
{
    if (entry(d)->resume)
        entry(d)->resume(d->vm);
}

static int platform_save(struct device *d, struct state_out *out)
{
    return entry(d)->save ? entry(d)->save(d->vm, out) : 0;
}

static int platform_load(struct device *d, struct state_in *in)
{
    if (entry(d)->load)
        return entry(d)->load(d->vm, in);
    if (in->len)
        return state_in_fail(in, "the file holds state for it, but this device keeps none");
    return 0;
}

static void platform_aml(struct device *d, struct aml *dsdt)
{
    if (entry(d)->aml)
        entry(d)->aml(d->vm, dsdt);
}

/*
 * Platform devices have no DMA and no threads that touch guest RAM; the
 * i8042's typematic repeat and input raise interrupts, so it is quiesced.
 */
static const struct device_ops platform_ops = {
    .reset = platform_reset,
    .quiesce = platform_quiesce,
    .resume = platform_resume,
    .destroy = platform_destroy,
    .save = platform_save,
    .load = platform_load,
    .aml = platform_aml,
};

int platform_devices_init(struct vm *vm)
{
    vm->platform = calloc(nr_platform_devices, sizeof(*vm->platform));
    if (!vm->platform)
        return -1;
    for (unsigned i = 0; i < nr_platform_devices; i++) {
        const struct platform_device *p = &platform_devices[i];
        int ret = p->init(vm);
        if (ret < 0) {
            log_err("cannot set up the %s device: %s", p->name, strerror(-ret));
            return -1;
        }
        device_add(vm, &vm->platform[i], &platform_ops, p->name, -1, (void *)p);
    }
    return 0;
}
