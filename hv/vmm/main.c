/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-vmm: runs one VM on /dev/kvm (docs/vmm.md). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "sandbox.h"
#include "vm.h"
#include "vm_save.h"

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
    /*
     * A save file is opened as the caller, and read only inside the
     * sandbox: it was written by a process that a guest may have taken over.
     */
    int restore_fd = -1;
    if (cfg.restore && (restore_fd = open(cfg.restore, O_RDONLY | O_CLOEXEC)) < 0) {
        log_err("cannot restore from %s: %s", cfg.restore, strerror(errno));
        return VM_EXIT_ERROR;
    }
    /*
     * The namespaces now, while hv-vmm has one thread: every thread that
     * vm_create() starts is then in them (sandbox_ns.c).
     */
    if (sandbox_unshare(&cfg.sandbox, err, sizeof(err)) < 0) {
        log_err("sandbox: %s (--sandbox off runs without namespaces)", err);
        if (restore_fd >= 0)
            close(restore_fd);
        return VM_EXIT_ERROR;
    }
    /* All the VM needs is open once vm_create() returns: then the sandbox, then the guest. */
    int code = VM_EXIT_ERROR;
    if (vm_create(&vm, &cfg) == 0 && sandbox_enter(&cfg.sandbox) == 0) {
        char why[512] = "";
        if (restore_fd >= 0 && vm_restore(&vm, restore_fd, why, sizeof(why)) < 0)
            log_err("cannot restore from %s: %s", cfg.restore, why);
        else
            code = vm_run(&vm);
    }
    if (restore_fd >= 0)
        close(restore_fd);
    vm_destroy(&vm);
    return code;
}
