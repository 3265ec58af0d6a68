// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the load path of a saved virtio device (PCI config
 * space, MSI-X, the transport, the device's own part) on a VM without KVM.
 * The first byte picks the device (virtio-blk, -console, -rng, -balloon,
 * -keyboard, userspace -net), the rest is its section. A section that
 * loads is then served as after a restore: every queue kicked once at the
 * loaded ring positions. Then the VM is reset for the next input.
 *
 * Checked besides ASan/UBSan: a refused section says why, and after the
 * reset the functions are at power-on again.
 * Seeds: HV_SAVE_SEED_DIR=DIR tests/test_save writes real sections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../devices.h"
#include "../../state.h"
#include "../input.h"
#include "log.h"
#include "util.h"
#include "vmfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm vm;
static struct vm_config cfg = {.name = "fuzz"};
static struct virtio_dev *devs[FZ_MAX_DEVS];
static unsigned ndev;

static void setup(void)
{
    char path[] = "/tmp/hv-fuzz-load-XXXXXX";
    int sv[2];
    hv_log_init("fuzz");
    setenv("HV_VMM_NET_USERSPACE", "1", 1);
    fz_vm_init(&vm);
    vm.cfg = &cfg;
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, 1 * MiB) < 0 ||
        socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        __builtin_trap();
    if (virtio_blk_create(&vm, &(struct vm_disk){.path = path, .format = "raw"}) ||
        virtio_console_create(&vm, "file:/dev/null") || virtio_rng_create(&vm) ||
        virtio_balloon_create(&vm) || !virtio_input_create(&vm, INPUT_KEYBOARD) ||
        virtio_net_create_fd(&vm, sv[0], "fuzz0"))
        __builtin_trap();
    unlink(path);
    close(fd);
    fz_vm_freeze(&vm);
    ndev = fz_virtio_devs(&vm, devs, FZ_MAX_DEVS);
    if (ndev != 6)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ndev)
        setup();
    if (size < 1)
        return 0;
    struct virtio_dev *vd = devs[data[0] % ndev];
    struct state_in in;
    state_in_init(&in, data + 1, size - 1);
    fz_log_begin();
    int r = vd->dev.ops->load(&vd->dev, &in);
    if (r == 0)
        r = state_in_end(&in);
    if (r < 0 && !in.why[0])
        __builtin_trap(); /* refused without a reason */
    if (r == 0) {
        for (unsigned q = 0; q < vd->nr_queues; q++)
            virtio_handle_kick(vd, q);
    }
    fz_vm_restart(&vm);
    fz_log_end();
    for (unsigned i = 0; i < ndev; i++)
        if (memcmp(devs[i]->pci.cfg, devs[i]->pci.cfg_poweron, 0x100) || devs[i]->status ||
            devs[i]->msix.enabled)
            __builtin_trap(); /* reset did not bring the function back to power-on */
    return 0;
}
