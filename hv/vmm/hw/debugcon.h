/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The firmware's debug console: bytes written to port 0x402 (SeaBIOS's and
 * OVMF's debug output) go to --firmware-log FILE, or to the debug log (-v).
 */
#ifndef HV_VMM_HW_DEBUGCON_H
#define HV_VMM_HW_DEBUGCON_H

#define DEBUGCON_PORT 0x402

struct vm;

/* path NULL: lines go to log_debug. Opens the file now (truncated, size-capped). 0 or -1. */
int debugcon_attach(struct vm *vm, const char *path);

#endif
