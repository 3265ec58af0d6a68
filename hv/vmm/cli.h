/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-vmm's command line (docs/vmm.md), parsed apart from main() for the unit tests. */
#ifndef HV_VMM_CLI_H
#define HV_VMM_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vm.h"

#define VMM_MIN_MEMORY           (UINT64_C(64) << 20)
#define VMM_DEFAULT_MEMORY       (UINT64_C(512) << 20)
#define VMM_DEFAULT_STOP_TIMEOUT 30

enum cli_result {
    CLI_RUN,   /* cfg is filled: run the VM */
    CLI_EXIT,  /* --help or --version was printed */
    CLI_ERROR, /* err holds a sentence */
};

/*
 * Parse argv into cfg (strings point into argv). Checks only what needs no
 * file system or KVM; see cli_check_host() for the rest.
 */
enum cli_result cli_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen);

/*
 * Checks against this host: the kernel, initrd and disks exist, the memory
 * fits in MemTotal of meminfo_path (normally /proc/meminfo). 0 or -1 + err.
 */
int cli_check_host(const struct vm_config *cfg, const char *meminfo_path, char *err, size_t errlen);

void cli_usage(FILE *f);

#endif
