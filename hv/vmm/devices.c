/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The platform devices every VM gets, in the order they are set up. */
#include "devices.h"

#include "util.h"

const struct platform_device platform_devices[] = {
    {.name = "serial8250", .init = serial8250_init, .destroy = serial8250_destroy},
    {.name = "rtc", .init = rtc_init},
    {.name = "i8042", .init = i8042_init},
    {.name = "acpi-pm", .init = pm_init, .reset = pm_reset},
    {.name = "legacy-ports", .init = legacy_ports_init},
    /* Its reset runs before guest RAM is wiped, from vm.c. */
    {.name = "vfio-pci", .init = vfio_init, .destroy = vfio_destroy},
};

const unsigned nr_platform_devices = ARRAY_SIZE(platform_devices);
