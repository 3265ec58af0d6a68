/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Legacy ports that Linux touches on a PC and that need no device behind
 * them: the POST/delay port 0x80 and 0xED. Registered so they are answered
 * on purpose (and logged at debug level) rather than by the bus's default.
 * Port 0x61 comes from KVM's PIT (KVM_PIT_SPEAKER_DUMMY), the PIC's ELCR at
 * 0x4D0 from KVM's PIC.
 */
#include <string.h>

#include "devices.h"
#include "log.h"
#include "vm.h"

static void post_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    (void)opaque;
    (void)off;
    if (!is_write)
        memset(data, 0, len);
}

int legacy_ports_init(struct vm *vm)
{
    int ret = io_bus_register(&vm->pio, 0x80, 1, post_io, NULL);
    if (ret == 0)
        ret = io_bus_register(&vm->pio, 0xed, 1, post_io, NULL);
    return ret;
}
