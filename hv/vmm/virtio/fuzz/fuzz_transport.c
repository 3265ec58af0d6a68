// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: a guest driving the virtio PCI transport of two real
 * devices, virtio-blk on a 1 MiB memfd and virtio-rng, on a VM without KVM:
 * config cycles through CF8/CFC and ECAM, BAR 0 (common config, notify, ISR,
 * device config), the MSI-X table in BAR 2, BAR moves, queue set-up with
 * rings and buffers the input writes into guest RAM, kicks, resets in the
 * middle of a request and whole-VM resets. The operations are vmfuzz.c's.
 *
 * Checked besides ASan/UBSan: a handful of log lines per guest access at
 * most, and after the reboot that ends each input, PCI config space is back
 * to power-on and no device writes guest RAM any more.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../devices.h"
#include "log.h"
#include "util.h"
#include "vmfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm vm;
static struct virtio_dev *devs[FZ_MAX_DEVS];
static unsigned ndev;

static void setup(void)
{
    /*
     * A file unlinked as soon as the disk has it open: a memfd's /proc path
     * is a magic link, which the confined open of block/ rightly refuses.
     */
    char path[] = "/tmp/hv-fuzz-transport-XXXXXX";
    hv_log_init("fuzz");
    fz_vm_init(&vm);
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, 1 * MiB) < 0)
        __builtin_trap();
    if (virtio_blk_create(&vm, &(struct vm_disk){.path = path, .format = "raw"}) ||
        virtio_rng_create(&vm))
        __builtin_trap();
    unlink(path);
    close(fd);
    fz_vm_freeze(&vm);
    ndev = fz_virtio_devs(&vm, devs, FZ_MAX_DEVS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ndev)
        setup();
    struct fz f = {data, size};
    fz_log_begin();
    unsigned ops = fz_run_driver(&vm, &f, 512, NULL);
    fz_vm_restart(&vm);
    for (unsigned i = 0; i < ndev; i++)
        fz_pump(devs[i]); /* kicks that were still pending at the reset */
    unsigned lines = fz_log_end();
    if (lines > 4 * ops + 4)
        __builtin_trap(); /* the guest can make us log without bound */
    if (!fz_ram_is_zero(&vm))
        __builtin_trap(); /* a device wrote guest RAM after the reset */
    for (unsigned i = 0; i < ndev; i++)
        if (memcmp(devs[i]->pci.cfg, devs[i]->pci.cfg_poweron, 0x100) || devs[i]->status ||
            devs[i]->msix.enabled)
            __builtin_trap(); /* reset did not bring the function back to power-on */
    return 0;
}
