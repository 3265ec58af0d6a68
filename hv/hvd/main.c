/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hvd: the toolstack daemon. Options, directories, the event loop. */
#include "hvd.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hvd [OPTIONS]\n"
            "  --socket PATH      API unix socket (default RUN-DIR/hvd.sock)\n"
            "  --state-dir DIR    definitions and images (default /var/lib/hv)\n"
            "  --run-dir DIR      runtime state of running VMs (default /run/hv)\n"
            "  --vmm PATH         the VMM to run for each VM (default %s)\n"
            "  --hv-img PATH      hv-img, which makes differencing VHDs (default %s)\n"
            "  --bios PATH        the BIOS image for firmware=bios VMs\n"
            "                     (default " HVD_BIOS_DEFAULT ", Debian's seabios)\n"
            "  --vsock-port PORT  API on vsock for the UIVM (default 5140; -1: off)\n"
            "  --uivm-cid CID     also accept vsock clients from this CID\n"
            "  --uivm-pci FILE    PCI devices the UIVM may give to VMs, one a line\n"
            "                     (default STATE-DIR/uivm-pci; absent: none)\n"
            "  --no-autostart     do not start autostart=true VMs\n"
            "  --usbd-socket PATH hv-usbd's control socket (default " HVD_USBD_SOCKET_DEFAULT ")\n"
            "  --switch-socket PATH  hv-switch's display socket for VMs with display=true\n"
            "                     (default RUN-DIR/switch.sock)\n"
            "  --switch-control PATH  hv-switch's control socket, for vm.switch and\n"
            "                     vm.screenshot (default RUN-DIR/switch-control.sock)\n"
            "  --vmm-uid-base N   each hv-vmm runs as user and group N + its VM's slot\n"
            "                     (default %u; 0: as hvd's user; see docs/hvd.md)\n"
            "  --save-on-shutdown host.suspend {\"reason\": \"shutdown\"} saves the running\n"
            "                     VMs (the host's shutdown unit calls it); default: they are\n"
            "                     shut down with the host\n"
            "  --verbose          debug logging\n"
            "See docs/hvd.md and docs/hvd-api.md.\n",
            HV_VMM_PATH, HV_IMG_PATH, HVD_VMM_UID_BASE);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
    (void)userdata;
    log_info("signal %u: exiting; running VMs keep running", si->ssi_signo);
    sd_event_exit(sd_event_source_get_event(s), 0);
    return 0;
}

static int make_dir(const char *path, mode_t mode)
{
    if (g_mkdir_with_parents(path, (int)mode) < 0) {
        log_err("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        O_SOCKET = 256,
        O_STATE,
        O_RUN,
        O_VMM,
        O_BIOS,
        O_VPORT,
        O_CID,
        O_NOAUTO,
        O_VERBOSE,
        O_USBD,
        O_SWITCH,
        O_SWITCHCTL,
        O_UIDBASE,
        O_UIVMPCI,
        O_MANAGER,
        O_SAVESHUT,
        O_IMG
    };
    static const struct option opts[] = {
        {"socket", required_argument, NULL, O_SOCKET},
        {"state-dir", required_argument, NULL, O_STATE},
        {"run-dir", required_argument, NULL, O_RUN},
        {"vmm", required_argument, NULL, O_VMM},
        {"hv-img", required_argument, NULL, O_IMG},
        {"bios", required_argument, NULL, O_BIOS},
        {"vsock-port", required_argument, NULL, O_VPORT},
        {"uivm-cid", required_argument, NULL, O_CID},
        {"no-autostart", no_argument, NULL, O_NOAUTO},
        {"usbd-socket", required_argument, NULL, O_USBD},
        {"switch-socket", required_argument, NULL, O_SWITCH},
        {"switch-control", required_argument, NULL, O_SWITCHCTL},
        {"vmm-uid-base", required_argument, NULL, O_UIDBASE},
        {"uivm-pci", required_argument, NULL, O_UIVMPCI},
        /* Tests only (docs/hvd.md): a unix socket whose clients get the UIVM's level. */
        {"manager-socket", required_argument, NULL, O_MANAGER},
        {"save-on-shutdown", no_argument, NULL, O_SAVESHUT},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct hvd d = {.vsock_port = 5140, .autostart = true, .vmm_uid_base = HVD_VMM_UID_BASE};
    const char *state = "/var/lib/hv", *run = "/run/hv", *sock = NULL, *vmm = HV_VMM_PATH,
               *img = HV_IMG_PATH;
    const char *bios = HVD_BIOS_DEFAULT;
    const char *switch_sock = NULL, *switch_ctl = NULL, *uivm_pci = NULL, *manager = NULL;
    int c;

    hv_log_init("hvd");
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_SOCKET:
            sock = optarg;
            break;
        case O_STATE:
            state = optarg;
            break;
        case O_RUN:
            run = optarg;
            break;
        case O_VMM:
            vmm = optarg;
            break;
        case O_IMG:
            img = optarg;
            break;
        case O_BIOS:
            bios = optarg;
            break;
        case O_VPORT:
            d.vsock_port = atoi(optarg);
            break;
        case O_CID:
            d.uivm_cid = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_NOAUTO:
            d.autostart = false;
            break;
        case O_USBD:
            usb_set_socket(optarg);
            break;
        case O_SWITCH:
            switch_sock = optarg;
            break;
        case O_SWITCHCTL:
            switch_ctl = optarg;
            break;
        case O_UIDBASE: {
            uint64_t v;
            /* Room for 65535 slots below (uid_t)-1, and never root. */
            if (parse_uint(optarg, 0, UINT32_MAX - 65536, &v) < 0 || (v > 0 && v < 1000)) {
                fprintf(stderr, "hvd: --vmm-uid-base %s: give 0 or a number from 1000 to %u\n",
                        optarg, UINT32_MAX - 65536);
                return 2;
            }
            d.vmm_uid_base = (unsigned)v;
            break;
        }
        case O_UIVMPCI:
            uivm_pci = optarg;
            break;
        case O_MANAGER:
            manager = optarg;
            break;
        case O_SAVESHUT:
            d.save_on_shutdown = true;
            break;
        case O_VERBOSE:
            hv_log_set_level(HV_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    d.state_dir = g_strdup(state);
    d.run_dir = g_strdup(run);
    d.vms_dir = g_strdup_printf("%s/vms", state);
    d.images_dir = g_strdup_printf("%s/images", state);
    d.kernels_dir = g_strdup_printf("%s/kernels", state);
    d.saved_dir = g_strdup_printf("%s/saved", state);
    d.uivm_pci_allow = uivm_pci ? g_strdup(uivm_pci) : g_strdup_printf("%s/uivm-pci", state);
    d.socket_path = sock ? g_strdup(sock) : g_strdup_printf("%s/hvd.sock", run);
    d.manager_socket = g_strdup(manager);
    d.vmm_path = g_strdup(vmm);
    d.img_path = g_strdup(img);
    d.bios_path = g_strdup(bios);
    d.switch_socket = switch_sock ? g_strdup(switch_sock) : g_strdup_printf("%s/switch.sock", run);
    d.switch_control =
        switch_ctl ? g_strdup(switch_ctl) : g_strdup_printf("%s/switch-control.sock", run);
    if (make_dir(d.vms_dir, 0750) < 0 || make_dir(d.images_dir, 0750) < 0 ||
        make_dir(d.kernels_dir, 0755) < 0 || make_dir(d.run_dir, 0755) < 0 ||
        save_prepare_dir(&d) < 0)
        return 1;
    char *sockdir = g_path_get_dirname(d.socket_path);
    make_dir(sockdir, 0755);
    g_free(sockdir);

    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    if (sd_event_default(&d.loop) < 0)
        hv_die("cannot create the event loop");
    sd_event_add_signal(d.loop, NULL, SIGTERM, on_signal, NULL);
    sd_event_add_signal(d.loop, NULL, SIGINT, on_signal, NULL);

    diskfmt_first_start(&d);
    store_load_all(&d);
    hvd_vm_reattach_all(&d);
    if (server_listen_unix(&d) < 0 || server_listen_manager(&d) < 0)
        return 1;
    server_listen_vsock(&d);
    if (d.autostart)
        hvd_vm_autostart_all(&d);
    log_info("ready: %s, state in %s", d.socket_path, d.state_dir);

    int rc = sd_event_loop(d.loop);

    server_close_all(&d);
    while (d.vms)
        hvd_remove_vm(&d, d.vms);
    unlink(d.socket_path);
    if (d.manager_socket)
        unlink(d.manager_socket);
    sd_event_unref(d.loop);
    g_free(d.state_dir);
    g_free(d.run_dir);
    g_free(d.vms_dir);
    g_free(d.saved_dir);
    g_free(d.images_dir);
    g_free(d.socket_path);
    g_free(d.manager_socket);
    g_free(d.kernels_dir);
    g_free(d.uivm_pci_allow);
    g_free(d.vmm_path);
    g_free(d.img_path);
    g_free(d.bios_path);
    g_free(d.switch_socket);
    g_free(d.switch_control);
    return rc < 0 ? 1 : 0;
}
