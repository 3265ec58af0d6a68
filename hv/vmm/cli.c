/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "log.h"
#include "pci.h"
#include "pt.h"
#include "sandbox.h"
#include "util.h"
#include "x86/boot_firmware.h"
#include "x86/boot_linux.h"
#include "x86/firmware_linux.h"

void cli_usage(FILE *f)
{
    fputs("Usage: hv-vmm --kernel PATH [options]\n"
          "       hv-vmm --firmware PATH [options]\n"
          "Run one virtual machine on /dev/kvm.\n"
          "\n"
          "  --kernel PATH          Linux bzImage, or a vmlinux ELF with a PVH entry\n"
          "  --firmware PATH        boot a BIOS image first (SeaBIOS's bios.bin); with\n"
          "                         --kernel, the firmware boots that kernel\n"
          "  --firmware-log FILE    write the firmware's debug port (0x402) to FILE\n"
          "  --initrd PATH          initial ramdisk\n"
          "  --cmdline STR          kernel command line (default \"" VM_DEFAULT_CMDLINE "\")\n"
          "  --memory SIZE          guest RAM, e.g. 512M, 2G (default 512M, at least 64M)\n"
          "  --mem-backing anon|memfd\n"
          "                         guest RAM as private memory (default; KSM can share\n"
          "                         it) or a shared memfd (KSM cannot)\n"
          "  --ksm on|off           offer guest RAM to KSM page sharing (default on)\n"
          "  --cpus N               number of vCPUs (default 1)\n"
          "  --disk PATH[,ro][,format=raw|qcow2|vhd][,bus=virtio|nvme|ahci]\n"
          "                         a disk (virtio by default, NVMe, or a SATA disk on\n"
          "                         the AHCI controller); repeat for more. Give the\n"
          "                         format: without it the image is probed (with a warning)\n"
          "  --cdrom PATH[,format=raw|qcow2|vhd]\n"
          "                         an ISO image in a CD/DVD-ROM drive on the AHCI\n"
          "                         controller, read-only\n"
          "  --image-dir DIR        qcow2 backing files must be in DIR (repeat for more;\n"
          "                         default: each image's own directory)\n"
          "  --net tap=IFNAME       a virtio network card on a tap interface\n"
          "  --mac MAC              its MAC address, e.g. 52:54:00:12:34:56\n"
          "  --vsock CID            a virtio vsock device with this guest CID (>= 3)\n"
          "  --control SOCKET       serve the control protocol on this unix socket\n"
          "  --console SPEC         serial console: stdio (default), file:PATH or none\n"
          "  --virtio-console SPEC  a virtio console (hvc0): socket:PATH or file:PATH\n"
          "  --on-reboot ACTION     restart (default) or exit (exit code 3)\n"
          "  --restore FILE         continue the VM saved in FILE (control \"save\");\n"
          "                         the rest of the command line as when it was saved\n"
          "  --instant-on           with --restore: map the saved memory instead of\n"
          "                         reading it first (its checksum is not checked)\n"
          "  --stop-timeout SEC     power button to forced stop on SIGTERM (default 30)\n"
          "  --name NAME            the VM's name, for messages and queries\n"
          "  --display SOCKET[,name=N,colour=RRGGBB,slot=K,uivm,size=WxH]\n"
          "                         virtio-gpu, keyboard and tablet shown by hv-switch\n"
          "  --user UID:GID[:GROUP,...]\n"
          "                         run the VM as this user once it is built (needs root)\n"
          "  --pci BDF              give the VM this host PCI device (on vfio-pci);\n"
          "                         repeat for more\n"
          "  --pci-slot NAME=SLOT   put the PCI device NAME (as \"devices\" names it:\n"
          "                         virtio-blk0, virtio-net, ...) at 00:SLOT.0; the\n"
          "                         others skip that slot (repeat for more)\n"
          "  --sandbox on|log|off   system call filter: on (default), log (development:\n"
          "                         the kernel logs what is not allowed), off (debugging)\n"
          "  -v, --verbose          log debugging details\n"
          "  -h, --help             show this help\n"
          "\n"
          "Exit codes: 0 guest powered off, 1 error, 2 bad command line,\n"
          "3 guest rebooted (--on-reboot exit), 4 stopped by force, 5 guest crashed,\n"
          "6 saved to a file and stopped.\n",
          f);
}

static enum cli_result fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum cli_result fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return CLI_ERROR;
}

enum {
    OPT_KERNEL = 256,
    OPT_INITRD,
    OPT_CMDLINE,
    OPT_MEMORY,
    OPT_CPUS,
    OPT_DISK,
    OPT_NET,
    OPT_MAC,
    OPT_VSOCK,
    OPT_CONTROL,
    OPT_CONSOLE,
    OPT_ON_REBOOT,
    OPT_STOP_TIMEOUT,
    OPT_NAME,
    OPT_DISPLAY,
    OPT_VIRTIO_CONSOLE,
    OPT_USER,
    OPT_SANDBOX,
    OPT_PCI,
    OPT_IMAGE_DIR,
    OPT_RESTORE,
    OPT_INSTANT_ON,
    OPT_FIRMWARE,
    OPT_FIRMWARE_LOG,
    OPT_PCI_SLOT,
    OPT_MEM_BACKING,
    OPT_KSM,
    OPT_CDROM,
};

static const struct option options[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"disk", required_argument, NULL, OPT_DISK},
    {"cdrom", required_argument, NULL, OPT_CDROM},
    {"net", required_argument, NULL, OPT_NET},
    {"mac", required_argument, NULL, OPT_MAC},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"on-reboot", required_argument, NULL, OPT_ON_REBOOT},
    {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
    {"name", required_argument, NULL, OPT_NAME},
    {"display", required_argument, NULL, OPT_DISPLAY},
    {"virtio-console", required_argument, NULL, OPT_VIRTIO_CONSOLE},
    {"user", required_argument, NULL, OPT_USER},
    {"sandbox", required_argument, NULL, OPT_SANDBOX},
    {"pci", required_argument, NULL, OPT_PCI},
    {"image-dir", required_argument, NULL, OPT_IMAGE_DIR},
    {"restore", required_argument, NULL, OPT_RESTORE},
    {"instant-on", no_argument, NULL, OPT_INSTANT_ON},
    {"firmware", required_argument, NULL, OPT_FIRMWARE},
    {"firmware-log", required_argument, NULL, OPT_FIRMWARE_LOG},
    {"pci-slot", required_argument, NULL, OPT_PCI_SLOT},
    {"mem-backing", required_argument, NULL, OPT_MEM_BACKING},
    {"ksm", required_argument, NULL, OPT_KSM},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* NAME=SLOT: the PCI function NAME (a device id from "devices") at 00:SLOT.0. */
static enum cli_result parse_pci_slot(char *arg, struct vm_config *cfg, char *err, size_t errlen)
{
    char *eq = strrchr(arg, '=');
    uint64_t v;

    if (!eq || eq == arg || (size_t)(eq - arg) >= PCI_NAME_MAX)
        return fail(err, errlen,
                    "--pci-slot %s: give NAME=SLOT, NAME a device as the control socket's "
                    "\"devices\" lists it (virtio-blk0, virtio-net, ...)",
                    arg);
    if (parse_uint(eq + 1, 1, PCI_MAX_SLOTS - 1, &v) < 0)
        return fail(err, errlen,
                    "--pci-slot %s: the slot is a number from 1 to %d (0 is the host "
                    "bridge)",
                    arg, PCI_MAX_SLOTS - 1);
    *eq = '\0';
    for (unsigned i = 0; i < cfg->nr_pci_slots; i++) {
        if (strcmp(cfg->pci_slots[i].name, arg) == 0 || cfg->pci_slots[i].slot == v) {
            *eq = '=';
            return fail(err, errlen, "--pci-slot %s: that %s is given twice", arg,
                        cfg->pci_slots[i].slot == v ? "slot" : "device");
        }
    }
    if (cfg->nr_pci_slots == VM_MAX_PCI_SLOTS)
        return fail(err, errlen, "at most %d --pci-slot options are allowed", VM_MAX_PCI_SLOTS);
    cfg->pci_slots[cfg->nr_pci_slots].name = arg;
    cfg->pci_slots[cfg->nr_pci_slots++].slot = (unsigned)v;
    return CLI_RUN;
}

/*
 * PATH[,ro|,rw][,format=F][,bus=B]: options are taken off the end, so a path
 * may hold commas. A CD-ROM (--cdrom) takes only format=: it is read-only.
 */
static enum cli_result parse_image(char *arg, struct vm_disk *d, bool cdrom, char *err,
                                   size_t errlen)
{
    const char *opt_name = cdrom ? "--cdrom" : "--disk";
    *d = (struct vm_disk){.readonly = cdrom, .bus = cdrom ? VM_DISK_AHCI : VM_DISK_VIRTIO};
    bool seen_mode = false, seen_format = false, seen_bus = false;
    for (char *comma; (comma = strrchr(arg, ','));) {
        const char *opt = comma + 1;
        bool is_format = strncmp(opt, "format=", 7) == 0;
        if (!cdrom && strncmp(opt, "bus=", 4) == 0) {
            if (seen_bus)
                return fail(err, errlen, "--disk %s: '%s' is given twice", arg, opt);
            if (strcmp(opt + 4, "virtio") != 0 && strcmp(opt + 4, "nvme") != 0 &&
                strcmp(opt + 4, "ahci") != 0)
                return fail(err, errlen, "--disk %s: the bus is virtio, nvme or ahci, not '%s'",
                            arg, opt + 4);
            d->bus = strcmp(opt + 4, "nvme") == 0   ? VM_DISK_NVME
                     : strcmp(opt + 4, "ahci") == 0 ? VM_DISK_AHCI
                                                    : VM_DISK_VIRTIO;
            seen_bus = true;
            *comma = '\0';
            continue;
        }
        if (cdrom && (strcmp(opt, "rw") == 0 || strncmp(opt, "bus=", 4) == 0))
            return fail(err, errlen,
                        "--cdrom %s: '%s' does not apply: a CD-ROM is read-only, on AHCI", arg,
                        opt);
        if (!is_format && strcmp(opt, "ro") != 0 && strcmp(opt, "rw") != 0)
            break; /* not an option: the rest is the path */
        if (is_format ? seen_format : seen_mode)
            return fail(err, errlen, "%s %s: '%s' is given twice", opt_name, arg, opt);
        if (is_format) {
            enum bdev_format fmt;
            if (bdev_format_parse(opt + 7, &fmt) < 0)
                return fail(err, errlen, "%s %s: the format is raw, qcow2 or vhd, not '%s'",
                            opt_name, arg, opt + 7);
            d->format = opt + 7;
            seen_format = true;
        } else {
            d->readonly = opt[1] == 'o';
            seen_mode = true;
        }
        *comma = '\0';
    }
    if (!*arg)
        return fail(err, errlen,
                    cdrom ? "--cdrom needs a file name, as in --cdrom disc.iso,format=raw"
                          : "--disk needs a file name, as in --disk disk.img,format=raw or "
                            "--disk disk.img,ro,format=qcow2");
    d->path = arg;
    return CLI_RUN;
}

static enum cli_result parse_disk(char *arg, struct vm_config *cfg, char *err, size_t errlen)
{
    if (cfg->nr_disks == VM_MAX_DISKS)
        return fail(err, errlen, "at most %d --disk options are allowed", VM_MAX_DISKS);
    if (parse_image(arg, &cfg->disks[cfg->nr_disks], false, err, errlen) != CLI_RUN)
        return CLI_ERROR;
    cfg->nr_disks++;
    return CLI_RUN;
}

enum cli_result cli_parse(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
    uint64_t v;
    const char *why;

    memset(cfg, 0, sizeof(*cfg));
    cfg->ram_size = VMM_DEFAULT_MEMORY;
    cfg->nr_cpus = 1;
    cfg->console = "stdio";
    cfg->stop_timeout = VMM_DEFAULT_STOP_TIMEOUT;
    optind = 0; /* full reset of getopt, so the tests can parse several times */
    opterr = 0;

    for (;;) {
        int c = getopt_long(argc, argv, ":vh", options, NULL);
        if (c == -1)
            break;
        switch (c) {
        case OPT_KERNEL:
            cfg->kernel = optarg;
            break;
        case OPT_FIRMWARE:
            cfg->firmware = optarg;
            break;
        case OPT_FIRMWARE_LOG:
            cfg->firmware_log = optarg;
            break;
        case OPT_INITRD:
            cfg->initrd = optarg;
            break;
        case OPT_CMDLINE:
            cfg->cmdline = optarg;
            break;
        case OPT_MEMORY:
            if (parse_size(optarg, &v, &why) < 0)
                return fail(err, errlen, "--memory %s: %s", optarg, why);
            if (v < VMM_MIN_MEMORY)
                return fail(err, errlen, "--memory %s is too small: a VM needs at least %llu MiB",
                            optarg, (unsigned long long)(VMM_MIN_MEMORY >> 20));
            if (v % (2 * MiB))
                return fail(err, errlen, "--memory %s is not a whole number of 2 MiB", optarg);
            cfg->ram_size = v;
            break;
        case OPT_CPUS:
            if (parse_uint(optarg, 1, VM_MAX_VCPUS, &v) < 0)
                return fail(err, errlen, "--cpus %s: give a number of vCPUs from 1 to %d", optarg,
                            VM_MAX_VCPUS);
            cfg->nr_cpus = (unsigned)v;
            break;
        case OPT_DISK:
            if (parse_disk(optarg, cfg, err, errlen) != CLI_RUN)
                return CLI_ERROR;
            break;
        case OPT_CDROM:
            if (cfg->cdrom.path)
                return fail(err, errlen, "--cdrom is given twice: the VM has one CD-ROM drive");
            if (parse_image(optarg, &cfg->cdrom, true, err, errlen) != CLI_RUN)
                return CLI_ERROR;
            break;
        case OPT_IMAGE_DIR:
            if (cfg->nr_image_dirs == VM_MAX_IMAGE_DIRS)
                return fail(err, errlen, "at most %d --image-dir options are allowed",
                            VM_MAX_IMAGE_DIRS);
            if (!*optarg)
                return fail(err, errlen, "--image-dir needs a directory");
            cfg->image_dirs[cfg->nr_image_dirs++] = optarg;
            break;
        case OPT_NET:
            if (strncmp(optarg, "tap=", 4) != 0 || !optarg[4] || strlen(optarg + 4) >= 16)
                return fail(err, errlen,
                            "--net %s: write --net tap=IFNAME with a tap interface name of at "
                            "most 15 characters",
                            optarg);
            cfg->net_tap = optarg + 4;
            break;
        case OPT_MAC: {
            unsigned m[6];
            char end;
            if (sscanf(optarg, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4],
                       &m[5], &end) != 6 ||
                strlen(optarg) != 17 || (m[0] & 1) || !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
                return fail(err, errlen,
                            "--mac %s: write a unicast MAC address such as 52:54:00:12:34:56",
                            optarg);
            for (int i = 0; i < 6; i++)
                cfg->net_mac[i] = (uint8_t)m[i];
            break;
        }
        case OPT_VSOCK:
            if (parse_uint(optarg, 3, UINT32_MAX - 1, &v) < 0)
                return fail(err, errlen,
                            "--vsock %s: the guest CID is a number from 3 to 4294967294 (0-2 "
                            "are reserved)",
                            optarg);
            cfg->vsock_cid = v;
            break;
        case OPT_CONTROL:
            cfg->control = optarg;
            break;
        case OPT_CONSOLE:
            if (strcmp(optarg, "stdio") != 0 && strcmp(optarg, "none") != 0 &&
                !(strncmp(optarg, "file:", 5) == 0 && optarg[5]))
                return fail(err, errlen, "--console %s: give stdio, file:PATH or none", optarg);
            cfg->console = optarg;
            break;
        case OPT_ON_REBOOT:
            if (strcmp(optarg, "restart") == 0)
                cfg->reboot_exits = false;
            else if (strcmp(optarg, "exit") == 0)
                cfg->reboot_exits = true;
            else
                return fail(err, errlen, "--on-reboot %s: give restart or exit", optarg);
            break;
        case OPT_RESTORE:
            cfg->restore = optarg;
            break;
        case OPT_INSTANT_ON:
            cfg->instant_on = true;
            break;
        case OPT_MEM_BACKING:
            if (strcmp(optarg, "anon") == 0)
                cfg->ram_shared = false;
            else if (strcmp(optarg, "memfd") == 0)
                cfg->ram_shared = true;
            else
                return fail(err, errlen, "--mem-backing %s: give anon or memfd", optarg);
            break;
        case OPT_KSM:
            if (strcmp(optarg, "on") == 0)
                cfg->ram_nomerge = false;
            else if (strcmp(optarg, "off") == 0)
                cfg->ram_nomerge = true;
            else
                return fail(err, errlen, "--ksm %s: give on or off", optarg);
            break;
        case OPT_STOP_TIMEOUT:
            if (parse_uint(optarg, 1, 3600, &v) < 0)
                return fail(err, errlen, "--stop-timeout %s: give seconds from 1 to 3600", optarg);
            cfg->stop_timeout = (unsigned)v;
            break;
        case OPT_NAME:
            cfg->name = optarg;
            break;
        case OPT_VIRTIO_CONSOLE:
            if (!((strncmp(optarg, "socket:", 7) == 0 && optarg[7]) ||
                  (strncmp(optarg, "file:", 5) == 0 && optarg[5])))
                return fail(err, errlen, "--virtio-console %s: give socket:PATH or file:PATH",
                            optarg);
            cfg->virtio_console = optarg;
            break;
        case OPT_USER:
            if (sandbox_parse_user(optarg, &cfg->sandbox, err, errlen) < 0)
                return CLI_ERROR;
            break;
        case OPT_PCI_SLOT:
            if (parse_pci_slot(optarg, cfg, err, errlen) != CLI_RUN)
                return CLI_ERROR;
            break;
        case OPT_PCI: {
            char bdf[PT_BDF_LEN], other[PT_BDF_LEN];
            if (pt_parse_bdf(optarg, bdf) < 0)
                return fail(err, errlen,
                            "--pci %s: give a PCI address such as 0000:00:02.0 (hv-pci list "
                            "shows them)",
                            optarg);
            for (unsigned i = 0; i < cfg->nr_pci; i++)
                if (pt_parse_bdf(cfg->pci[i], other) == 0 && strcmp(other, bdf) == 0)
                    return fail(err, errlen, "--pci %s is given twice", optarg);
            if (cfg->nr_pci == VM_MAX_PCI)
                return fail(err, errlen, "at most %d --pci options are allowed", VM_MAX_PCI);
            cfg->pci[cfg->nr_pci++] = optarg;
            break;
        }
        case OPT_SANDBOX:
            if (sandbox_parse_mode(optarg, &cfg->sandbox.mode, err, errlen) < 0)
                return CLI_ERROR;
            break;
        case OPT_DISPLAY: /* checked by display.c when the VM is created */
            cfg->display = optarg;
            break;
        case 'v':
            hv_log_set_level(HV_LOG_DEBUG);
            break;
        case 'h':
            cli_usage(stdout);
            return CLI_EXIT;
        case ':':
            return fail(err, errlen, "%s needs a value (see hv-vmm --help)", argv[optind - 1]);
        default:
            return fail(err, errlen, "unknown option %s (see hv-vmm --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail(err, errlen, "unexpected argument \"%s\" (see hv-vmm --help)", argv[optind]);
    if (!cfg->kernel && !cfg->firmware)
        return fail(err, errlen,
                    "no kernel given: hv-vmm needs --kernel PATH (or --firmware PATH)");
    if (!cfg->kernel && (cfg->initrd || cfg->cmdline))
        return fail(err, errlen, "--initrd and --cmdline go with --kernel");
    if (cfg->kernel && cfg->firmware) {
        /* The firmware boots the kernel through fw_cfg (x86/firmware_linux.c). */
        const char *rom = getenv("HV_VMM_LINUXBOOT_ROM");
        cfg->linuxboot_rom = rom && *rom ? rom : FIRMWARE_LINUXBOOT_ROM;
    }
    if (cfg->firmware_log && !cfg->firmware)
        return fail(err, errlen, "--firmware-log goes with --firmware PATH");
    if (cfg->instant_on && !cfg->restore)
        return fail(err, errlen, "--instant-on goes with --restore FILE");
    return CLI_RUN;
}

/* MemTotal from a /proc/meminfo-style file, in bytes; 0 if unknown. */
static uint64_t mem_total(const char *path)
{
    FILE *f = fopen(path, "re");
    char line[256];
    unsigned long long kb = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

static int check_file(const char *what, const char *path, bool need_write, char *err, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "the %s %s %s", what, path,
                 errno == ENOENT ? "does not exist" : strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "the %s %s is a directory, not a file", what, path);
        return -1;
    }
    if (access(path, need_write ? R_OK | W_OK : R_OK) < 0) {
        snprintf(err, errlen, "the %s %s cannot be %s: %s", what, path,
                 need_write ? "read and written" : "read", strerror(errno));
        return -1;
    }
    return 0;
}

int cli_check_host(const struct vm_config *cfg, const char *meminfo_path, char *err, size_t errlen)
{
    if (cfg->firmware && firmware_check(cfg->firmware, err, errlen) < 0)
        return -1;
    if (cfg->kernel && (check_file("kernel", cfg->kernel, false, err, errlen) < 0 ||
                        boot_kernel_check(cfg->kernel, err, errlen) < 0))
        return -1;
    if (cfg->kernel && cfg->firmware &&
        firmware_linux_check(cfg->kernel, cfg->linuxboot_rom, err, errlen) < 0)
        return -1;
    if (cfg->initrd && check_file("initrd", cfg->initrd, false, err, errlen) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        if (check_file("disk", cfg->disks[i].path, !cfg->disks[i].readonly, err, errlen) < 0)
            return -1;
    if (cfg->cdrom.path && check_file("CD-ROM image", cfg->cdrom.path, false, err, errlen) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->nr_image_dirs; i++) {
        struct stat st;
        const char *why = NULL;
        if (stat(cfg->image_dirs[i], &st) < 0)
            why = errno == ENOENT ? "does not exist" : strerror(errno);
        else if (!S_ISDIR(st.st_mode))
            why = "is not a directory";
        if (why) {
            snprintf(err, errlen, "the image directory %s %s", cfg->image_dirs[i], why);
            return -1;
        }
    }
    uint64_t total = mem_total(meminfo_path);
    if (total && cfg->ram_size > total) {
        snprintf(err, errlen,
                 "--memory %llu MiB is more than this host has (%llu MiB): give the VM less",
                 (unsigned long long)(cfg->ram_size >> 20), (unsigned long long)(total >> 20));
        return -1;
    }
    return 0;
}
