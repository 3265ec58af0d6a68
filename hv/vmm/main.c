/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-vmm: runs one VM on /dev/kvm (docs/vmm.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "sandbox.h"
#include "vm.h"

int main(int argc, char **argv)
{
    static struct vm_config cfg;
    static struct vm vm;
    char err[512];
    sigset_t set;

    hv_log_init("hv-vmm");
    switch (cli_parse(argc, argv, &cfg, err, sizeof(err))) {
    case CLI_EXIT:
        return 0;
    case CLI_ERROR:
        log_err("%s", err);
        return VM_EXIT_USAGE;
    case CLI_RUN:
        break;
    }
    if (cli_check_host(&cfg, "/proc/meminfo", err, sizeof(err)) < 0) {
        log_err("%s", err);
        return VM_EXIT_ERROR;
    }

    /*
     * Block the stop signals in every thread (they inherit this mask) so the
     * main loop takes them from a signalfd; SIGPIPE from a closed console
     * or control peer must not kill the VM.
     */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1); /* vCPU kicks: unblocked in the vCPU threads only */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The display's socket path, for the sandbox's check that reconnecting will work. */
    char display_socket[128] = "";
    if (cfg.display) {
        snprintf(display_socket, sizeof(display_socket), "%s", cfg.display);
        display_socket[strcspn(display_socket, ",")] = '\0';
        cfg.sandbox.reconnect = display_socket;
    }
    /* All the VM needs is open once vm_create() returns: then the sandbox, then the guest. */
    int code;
    if (vm_create(&vm, &cfg) < 0 || sandbox_enter(&cfg.sandbox) < 0)
        code = VM_EXIT_ERROR;
    else
        code = vm_run(&vm);
    vm_destroy(&vm);
    return code;
}
