/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The platform devices every VM gets, in the order they are set up. */
#include "devices.h"

#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "log.h"
#include "util.h"
#include "vm.h"

const struct platform_device platform_devices[] = {
    {.name = "serial8250",
     .init = serial8250_init,
     .reset = serial8250_reset,
     .destroy = serial8250_destroy},
    {.name = "rtc", .init = rtc_init},
    {.name = "i8042", .init = i8042_init, .reset = i8042_reset},
    {.name = "acpi-pm", .init = pm_init, .reset = pm_reset},
    {.name = "legacy-ports", .init = legacy_ports_init},
    /* The --pci functions: reset (FLR) like every device, before guest RAM is wiped. */
    {.name = "vfio-pci", .init = vfio_init, .reset = vfio_reset, .destroy = vfio_destroy},
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

/* Platform devices have no DMA and no threads that touch guest RAM: nothing to quiesce. */
static const struct device_ops platform_ops = {
    .reset = platform_reset,
    .destroy = platform_destroy,
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
