// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hv-pci: the host's PCI devices as passthrough sees them (libpci for the
 * list and the names, sysfs for drivers and IOMMU groups), and the steps hvd
 * takes by hand: check, bind to vfio-pci, restore. See docs/passthrough.md.
 */
#include <getopt.h>
#include <pci/pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt.h"

static void usage(FILE *f)
{
    fputs("Usage: hv-pci [--sysfs ROOT] COMMAND\n"
          "PCI devices and their passthrough state.\n"
          "\n"
          "  list                 every PCI device: address, IOMMU group, driver, class,\n"
          "                       name, and whether it can be given to a VM\n"
          "  check BDF            can BDF be given to a VM? (exit 1 with the reason if not)\n"
          "  bind BDF             bind BDF to vfio-pci; prints \"BDF DRIVER\" for restore\n"
          "  restore BDF DRIVER   give BDF back to DRIVER (\"-\": leave it unbound)\n"
          "\n"
          "  --sysfs ROOT         read ROOT/sys instead of /sys (tests)\n",
          f);
}

static int list(const struct pt_sys *sys)
{
    struct pci_access *pacc = pci_alloc();
    char path[4096];

    if (sys->root[0]) {
        snprintf(path, sizeof(path), "%s/sys/bus/pci", sys->root);
        pci_set_param(pacc, "sysfs.path", path);
    }
    pci_init(pacc);
    pci_scan_bus(pacc);
    if (!pt_iommu_enabled(sys))
        printf("# the IOMMU is off: no device can be passed through\n");
    printf("%-12s %5s %-16s %-7s %s\n", "ADDRESS", "GROUP", "DRIVER", "CLASS", "DEVICE");
    for (struct pci_dev *d = pacc->devices; d; d = d->next) {
        char bdf[32], name[256], err[512];
        struct pt_device info;

        pci_fill_info(d, PCI_FILL_IDENT);
        snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%x", d->domain, d->bus, d->dev, d->func);
        if (pt_device_get(sys, bdf, &info, err, sizeof(err)) < 0)
            continue;
        pci_lookup_name(pacc, name, sizeof(name), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE,
                        d->vendor_id, d->device_id);
        char group[16] = "-";
        if (info.group >= 0)
            snprintf(group, sizeof(group), "%d", info.group);
        bool ok = pt_check_assignable(sys, bdf, err, sizeof(err)) == 0;
        printf("%-12s %5s %-16s %06x  %s [%04x:%04x]%s\n", bdf, group,
               info.driver[0] ? info.driver : "-", info.class_code, name, d->vendor_id,
               d->device_id, ok ? " (assignable)" : "");
    }
    pci_cleanup(pacc);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sysfs", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pt_sys sys = {.root = ""};
    char err[1024], bdf[PT_BDF_LEN];
    int c;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 's') {
            sys.root = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    int nargs = argc - optind - 1;
    if (cmd && strcmp(cmd, "list") == 0 && nargs == 0)
        return list(&sys);
    bool known = cmd && (strcmp(cmd, "check") == 0 || strcmp(cmd, "bind") == 0 ||
                         strcmp(cmd, "restore") == 0);
    if (!known || nargs != (strcmp(cmd, "restore") == 0 ? 2 : 1)) {
        usage(stderr);
        return 2;
    }
    if (pt_parse_bdf(argv[optind + 1], bdf) < 0) {
        fprintf(stderr, "hv-pci: error: '%s' is not a PCI address: write it as 0000:00:02.0\n",
                argv[optind + 1]);
        return 2;
    }
    if (strcmp(cmd, "check") == 0) {
        if (pt_check_assignable(&sys, bdf, err, sizeof(err)) < 0) {
            fprintf(stderr, "hv-pci: %s\n", err);
            return 1;
        }
        printf("%s can be given to a VM\n", bdf);
        return 0;
    }
    if (strcmp(cmd, "bind") == 0) {
        struct pt_binding b;
        if (pt_check_assignable(&sys, bdf, err, sizeof(err)) < 0 ||
            pt_load_vfio(&sys, err, sizeof(err)) < 0 ||
            pt_bind_vfio(&sys, bdf, &b, err, sizeof(err)) < 0) {
            fprintf(stderr, "hv-pci: error: %s\n", err);
            return 1;
        }
        char line[128];
        pt_binding_format(&b, line, sizeof(line));
        printf("%s\n", line);
        return 0;
    }
    char line[128];
    struct pt_binding b;
    snprintf(line, sizeof(line), "%s %s", bdf, argv[optind + 2]);
    if (pt_binding_parse(line, &b) < 0) {
        fprintf(stderr, "hv-pci: error: '%s' is not a driver name\n", argv[optind + 2]);
        return 2;
    }
    if (pt_restore(&sys, &b, err, sizeof(err)) < 0) {
        fprintf(stderr, "hv-pci: error: %s\n", err);
        return 1;
    }
    return 0;
}
