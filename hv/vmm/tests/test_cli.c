/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-vmm's command line: what is accepted, and the sentences for what is not. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"

static struct vm_config cfg;
static char err[512];

/* Parse a NULL-terminated list of arguments. */
static enum cli_result parse(const char *first, ...)
{
    static char store[32][256];
    char *argv[33];
    int argc = 0;
    va_list ap;

    argv[argc++] = strcpy(store[0], "hv-vmm");
    va_start(ap, first);
    for (const char *a = first; a && argc < 32; a = va_arg(ap, const char *)) {
        snprintf(store[argc], sizeof(store[argc]), "%s", a);
        argv[argc] = store[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return cli_parse(argc, argv, &cfg, err, sizeof(err));
}

static void test_ok(void)
{
    CHECK(parse("--kernel", "/k", NULL) == CLI_RUN);
    CHECK(cfg.ram_size == 512ull << 20 && cfg.nr_cpus == 1 && !cfg.initrd);
    CHECK(strcmp(cfg.console, "stdio") == 0 && !cfg.reboot_exits);

    CHECK(parse("--kernel", "/k", "--initrd", "/i", "--memory", "2G", "--cpus", "4", "--disk",
                "/a.img,ro", "--disk", "/b.img", "--net", "tap=tap0", "--vsock", "42", "--control",
                "/run/c.sock", "--console", "file:/tmp/c.log", "--on-reboot", "exit", "--name",
                "vm1", "--cmdline", "console=ttyS0 quiet", NULL) == CLI_RUN);
    CHECK(cfg.ram_size == 2ull << 30 && cfg.nr_cpus == 4);
    CHECK(cfg.nr_disks == 2 && cfg.disks[0].readonly && strcmp(cfg.disks[0].path, "/a.img") == 0);
    CHECK(!cfg.disks[1].readonly && strcmp(cfg.disks[1].path, "/b.img") == 0);
    CHECK(strcmp(cfg.net_tap, "tap0") == 0 && cfg.vsock_cid == 42);
    CHECK(cfg.reboot_exits && strcmp(cfg.name, "vm1") == 0);
    CHECK(strcmp(cfg.cmdline, "console=ttyS0 quiet") == 0);

    CHECK(parse("--kernel", "/k", "--net", "tap=tap0", "--mac", "52:54:00:ab:CD:0f", NULL) ==
          CLI_RUN);
    CHECK(memcmp(cfg.net_mac, "\x52\x54\x00\xab\xcd\x0f", 6) == 0);
}

static void test_disk_options(void)
{
    CHECK(parse("--kernel", "/k", "--disk", "/a.img", "--disk", "/b.img,ro,format=qcow2", "--disk",
                "/c.img,format=raw,ro", "--disk", "/d,e.img,format=raw", "--image-dir",
                "/var/lib/hv/images", "--image-dir", "/srv/golden", NULL) == CLI_RUN);
    CHECK(cfg.nr_disks == 4 && !cfg.disks[0].format && !cfg.disks[0].readonly);
    CHECK(cfg.disks[1].readonly && strcmp(cfg.disks[1].format, "qcow2") == 0 &&
          strcmp(cfg.disks[1].path, "/b.img") == 0);
    CHECK(cfg.disks[2].readonly && strcmp(cfg.disks[2].format, "raw") == 0 &&
          strcmp(cfg.disks[2].path, "/c.img") == 0);
    CHECK(strcmp(cfg.disks[3].path, "/d,e.img") == 0 && !cfg.disks[3].readonly);
    CHECK(cfg.nr_image_dirs == 2 && strcmp(cfg.image_dirs[1], "/srv/golden") == 0 &&
          !cfg.image_dirs[2]);

    CHECK(parse("--kernel", "/k", "--disk", "/a.img,format=vmdk", NULL) == CLI_ERROR &&
          strstr(err, "raw, qcow2 or vhd, not 'vmdk'"));
    CHECK(parse("--kernel", "/k", "--disk", "/a.vhd,format=vhd", NULL) == CLI_RUN &&
          strcmp(cfg.disks[0].format, "vhd") == 0);
    CHECK(parse("--kernel", "/k", "--disk", "/a.img,format=raw,format=qcow2", NULL) == CLI_ERROR &&
          strstr(err, "given twice"));
    CHECK(parse("--kernel", "/k", "--disk", "/a.img,ro,rw", NULL) == CLI_ERROR &&
          strstr(err, "given twice"));
    CHECK(parse("--kernel", "/k", "--disk", ",format=raw", NULL) == CLI_ERROR &&
          strstr(err, "needs a file name"));
    CHECK(parse("--kernel", "/k", "--image-dir", "", NULL) == CLI_ERROR);

    /* bus=: virtio by default, or NVMe; anywhere among the options. */
    CHECK(parse("--kernel", "/k", "--disk", "/a.img,bus=nvme", "--disk",
                "/b.img,ro,bus=nvme,format=qcow2", "--disk", "/c.img,bus=virtio", "--disk",
                "/d.img", NULL) == CLI_RUN);
    CHECK(cfg.nr_disks == 4 && cfg.disks[0].bus == VM_DISK_NVME &&
          strcmp(cfg.disks[0].path, "/a.img") == 0);
    CHECK(cfg.disks[1].bus == VM_DISK_NVME && cfg.disks[1].readonly &&
          strcmp(cfg.disks[1].format, "qcow2") == 0 && strcmp(cfg.disks[1].path, "/b.img") == 0);
    CHECK(cfg.disks[2].bus == VM_DISK_VIRTIO && cfg.disks[3].bus == VM_DISK_VIRTIO);
    CHECK(parse("--kernel", "/k", "--disk", "/a.img,bus=sata", NULL) == CLI_ERROR &&
          strstr(err, "the bus is virtio, nvme or ahci, not 'sata'"));
    CHECK(parse("--kernel", "/k", "--disk", "/a.img,bus=nvme,bus=nvme", NULL) == CLI_ERROR &&
          strstr(err, "given twice"));

    /* bus=ahci and --cdrom: an ISO, read-only, its format given or probed. */
    CHECK(parse("--kernel", "/k", "--disk", "/a.img,format=raw,bus=ahci", "--cdrom",
                "/x,y.iso,format=raw", NULL) == CLI_RUN);
    CHECK(cfg.nr_disks == 1 && cfg.disks[0].bus == VM_DISK_AHCI && !cfg.disks[0].readonly);
    CHECK(cfg.cdrom.path && strcmp(cfg.cdrom.path, "/x,y.iso") == 0 && cfg.cdrom.readonly &&
          strcmp(cfg.cdrom.format, "raw") == 0 && cfg.cdrom.bus == VM_DISK_AHCI);
    CHECK(parse("--kernel", "/k", "--cdrom", "/x.iso", NULL) == CLI_RUN && !cfg.cdrom.format &&
          cfg.nr_disks == 0 && cfg.cdrom.readonly);
    CHECK(parse("--kernel", "/k", NULL) == CLI_RUN && !cfg.cdrom.path);
    CHECK(parse("--kernel", "/k", "--cdrom", "/x.iso,rw", NULL) == CLI_ERROR &&
          strstr(err, "a CD-ROM is read-only"));
    CHECK(parse("--kernel", "/k", "--cdrom", "/x.iso,bus=nvme", NULL) == CLI_ERROR &&
          strstr(err, "does not apply"));
    CHECK(parse("--kernel", "/k", "--cdrom", "/x.iso,format=vmdk", NULL) == CLI_ERROR &&
          strstr(err, "--cdrom /x.iso,format=vmdk: the format is raw, qcow2 or vhd"));
    CHECK(parse("--kernel", "/k", "--cdrom", "/x.iso", "--cdrom", "/y.iso", NULL) == CLI_ERROR &&
          strstr(err, "given twice"));
    CHECK(parse("--kernel", "/k", "--cdrom", ",format=raw", NULL) == CLI_ERROR &&
          strstr(err, "--cdrom needs a file name"));
}

static void test_firmware_options(void)
{
    CHECK(parse("--firmware", "/bios.bin", "--firmware-log", "/tmp/fw.log", NULL) == CLI_RUN);
    CHECK(cfg.firmware && strcmp(cfg.firmware, "/bios.bin") == 0 && !cfg.kernel);
    CHECK(cfg.firmware_log && strcmp(cfg.firmware_log, "/tmp/fw.log") == 0);
    CHECK(!cfg.linuxboot_rom);
    /* The firmware boots the kernel: with its Linux loader, by default Debian's. */
    unsetenv("HV_VMM_LINUXBOOT_ROM");
    CHECK(parse("--firmware", "/b", "--kernel", "/k", "--initrd", "/i", "--cmdline", "x", NULL) ==
          CLI_RUN);
    CHECK(cfg.linuxboot_rom && strcmp(cfg.linuxboot_rom, "/usr/share/qemu/linuxboot_dma.bin") == 0);
    setenv("HV_VMM_LINUXBOOT_ROM", "/elsewhere.bin", 1);
    CHECK(parse("--firmware", "/b", "--kernel", "/k", NULL) == CLI_RUN &&
          strcmp(cfg.linuxboot_rom, "/elsewhere.bin") == 0);
    unsetenv("HV_VMM_LINUXBOOT_ROM");
    CHECK(parse("--firmware", "/b", "--initrd", "/i", NULL) == CLI_ERROR &&
          strstr(err, "go with --kernel"));
    CHECK(parse("--kernel", "/k", "--firmware-log", "/l", NULL) == CLI_ERROR &&
          strstr(err, "--firmware-log goes with --firmware"));
}

static void test_pci_slot_options(void)
{
    CHECK(parse("--kernel", "/k", "--pci-slot", "virtio-blk0=3", "--pci-slot", "0000:01:00.0=0x1f",
                NULL) == CLI_ERROR); /* decimal only */
    CHECK(parse("--kernel", "/k", "--pci-slot", "virtio-blk0=3", "--pci-slot", "0000:01:00.0=31",
                NULL) == CLI_RUN);
    CHECK(cfg.nr_pci_slots == 2 && strcmp(cfg.pci_slots[0].name, "virtio-blk0") == 0 &&
          cfg.pci_slots[0].slot == 3 && strcmp(cfg.pci_slots[1].name, "0000:01:00.0") == 0 &&
          cfg.pci_slots[1].slot == 31);
    CHECK(parse("--kernel", "/k", "--pci-slot", "virtio-net", NULL) == CLI_ERROR &&
          strstr(err, "--pci-slot virtio-net: give NAME=SLOT"));
    CHECK(parse("--kernel", "/k", "--pci-slot", "=4", NULL) == CLI_ERROR &&
          strstr(err, "give NAME=SLOT"));
    CHECK(parse("--kernel", "/k", "--pci-slot", "virtio-net=0", NULL) == CLI_ERROR &&
          strstr(err, "a number from 1 to 31 (0 is the host bridge)"));
    CHECK(parse("--kernel", "/k", "--pci-slot", "virtio-net=32", NULL) == CLI_ERROR);
    CHECK(parse("--kernel", "/k", "--pci-slot", "virtio-net=4", "--pci-slot", "virtio-rng=4",
                NULL) == CLI_ERROR &&
          strstr(err, "--pci-slot virtio-rng=4: that slot is given twice"));
    CHECK(parse("--kernel", "/k", "--pci-slot", "virtio-net=4", "--pci-slot", "virtio-net=5",
                NULL) == CLI_ERROR &&
          strstr(err, "--pci-slot virtio-net=5: that device is given twice"));
}

/* Guest RAM's backing and KSM (docs/memory.md): private and mergeable unless told. */
static void test_memory_options(void)
{
    CHECK(parse("--kernel", "/k", NULL) == CLI_RUN && !cfg.ram_shared && !cfg.ram_nomerge);
    CHECK(parse("--kernel", "/k", "--mem-backing", "memfd", "--ksm", "off", NULL) == CLI_RUN);
    CHECK(cfg.ram_shared && cfg.ram_nomerge);
    CHECK(parse("--kernel", "/k", "--mem-backing", "anon", "--ksm", "on", NULL) == CLI_RUN);
    CHECK(!cfg.ram_shared && !cfg.ram_nomerge);
    CHECK(parse("--kernel", "/k", "--mem-backing", "shm", NULL) == CLI_ERROR &&
          strstr(err, "--mem-backing shm: give anon or memfd"));
    CHECK(parse("--kernel", "/k", "--ksm", "yes", NULL) == CLI_ERROR &&
          strstr(err, "--ksm yes: give on or off"));
}

static void test_errors(void)
{
    CHECK(parse("--kernel", "/k", "--mac", "01:00:5e:00:00:01", NULL) == CLI_ERROR &&
          strstr(err, "--mac 01:00:5e:00:00:01: write a unicast MAC"));
    CHECK(parse("--kernel", "/k", "--mac", "52:54:00:12:34", NULL) == CLI_ERROR &&
          strstr(err, "--mac"));
    CHECK(parse("--kernel", "/k", "--mac", "52:54:00:12:34:567", NULL) == CLI_ERROR);
    CHECK(parse(NULL) == CLI_ERROR && strstr(err, "no kernel given"));
    CHECK(parse("--kernel", "/k", "--memory", "lots", NULL) == CLI_ERROR &&
          strstr(err, "--memory lots"));
    CHECK(parse("--kernel", "/k", "--memory", "16M", NULL) == CLI_ERROR &&
          strstr(err, "too small"));
    CHECK(parse("--kernel", "/k", "--cpus", "0", NULL) == CLI_ERROR && strstr(err, "--cpus 0"));
    CHECK(parse("--kernel", "/k", "--cpus", "999", NULL) == CLI_ERROR);
    CHECK(parse("--kernel", "/k", "--net", "eth0", NULL) == CLI_ERROR && strstr(err, "tap=IFNAME"));
    CHECK(parse("--kernel", "/k", "--vsock", "2", NULL) == CLI_ERROR && strstr(err, "reserved"));
    CHECK(parse("--kernel", "/k", "--console", "tty", NULL) == CLI_ERROR);
    CHECK(parse("--kernel", "/k", "--on-reboot", "maybe", NULL) == CLI_ERROR);
    CHECK(parse("--kernel", "/k", "--pci", "00:02", NULL) == CLI_ERROR &&
          strstr(err, "--pci 00:02: give a PCI address such as 0000:00:02.0"));
    CHECK(parse("--kernel", "/k", "--pci", "00:02.0", "--pci", "0000:00:02.0", NULL) == CLI_ERROR &&
          strstr(err, "--pci 0000:00:02.0 is given twice"));
    CHECK(parse("--kernel", "/k", "--pci", "00:02.0", "--pci", "0000:01:00.1", NULL) == CLI_RUN &&
          cfg.nr_pci == 2 && strcmp(cfg.pci[1], "0000:01:00.1") == 0);
    CHECK(parse("--kernel", "/k", "--bogus", NULL) == CLI_ERROR &&
          strstr(err, "unknown option --bogus"));
    CHECK(parse("--kernel", NULL) == CLI_ERROR && strstr(err, "needs a value"));
    CHECK(parse("--kernel", "/k", "extra", NULL) == CLI_ERROR && strstr(err, "extra"));
    CHECK(parse("--kernel", "/k", "--disk", ",ro", NULL) == CLI_ERROR);
}

/* Just enough of a bzImage header to pass the kernel check. */
static const uint8_t *fake_bzimage(void)
{
    static uint8_t img[8192];
    img[0x1f1] = 4;
    img[0x1fe] = 0x55;
    img[0x1ff] = 0xaa;
    img[0x201] = 0x6a;
    memcpy(img + 0x202, "HdrS", 4);
    img[0x206] = 0x0f;
    img[0x207] = 0x02;
    img[0x211] = 1;
    img[0x236] = 1;
    return img;
}

static void test_sandbox_options(void)
{
    CHECK(parse("--kernel", "/k", NULL) == CLI_RUN);
    CHECK(cfg.sandbox.mode == SANDBOX_ON && !cfg.sandbox.drop_user);
    CHECK(parse("--kernel", "/k", "--sandbox", "log", "--user", "1900000001:1900000002", NULL) ==
          CLI_RUN);
    CHECK(cfg.sandbox.mode == SANDBOX_LOG && cfg.sandbox.drop_user);
    CHECK(cfg.sandbox.uid == 1900000001u && cfg.sandbox.gid == 1900000002u);
    CHECK(cfg.sandbox.nr_groups == 0);
    CHECK(parse("--kernel", "/k", "--sandbox", "off", "--user", "5:6:7,8", NULL) == CLI_RUN);
    CHECK(cfg.sandbox.mode == SANDBOX_OFF && cfg.sandbox.nr_groups == 2);
    CHECK(cfg.sandbox.groups[0] == 7 && cfg.sandbox.groups[1] == 8);

    CHECK(parse("--kernel", "/k", "--sandbox", "yes", NULL) == CLI_ERROR &&
          strstr(err, "--sandbox yes: give on, log or off"));
    const char *bad[] = {"",       "1000",  "1000:",        ":1000", "a:b",    "1:2:",
                         "1:2:3,", "1:2:x", "4294967295:1", "1:-1",  "1:2:3:4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(parse("--kernel", "/k", "--user", bad[i], NULL) == CLI_ERROR);
        CHECK(strstr(err, "write --user UID:GID"));
    }
    CHECK(parse("--kernel", "/k", "--user", "0:0", NULL) == CLI_ERROR &&
          strstr(err, "a user other than root"));
    CHECK(parse("--kernel", "/k", "--user", "5:0", NULL) == CLI_ERROR);
    CHECK(parse("--kernel", "/k", "--user", "5:5:6,0", NULL) == CLI_ERROR &&
          strstr(err, "group 0 (root) is not given"));
    CHECK(parse("--kernel", "/k", "--user", "5:5:1,2,3,4,5,6,7,8,9", NULL) == CLI_ERROR &&
          strstr(err, "at most 8 supplementary groups"));
}

static void test_host(void)
{
    char meminfo[] = "/tmp/hv-test-meminfo-XXXXXX";
    int fd = mkstemp(meminfo);
    CHECK(fd >= 0);
    dprintf(fd, "MemTotal:        1048576 kB\nMemFree: 1 kB\n");
    close(fd);
    char kernel[] = "/tmp/hv-test-kernel-XXXXXX";
    fd = mkstemp(kernel);
    CHECK(fd >= 0);
    CHECK(write(fd, fake_bzimage(), 8192) == 8192);
    close(fd);

    CHECK(parse("--kernel", "/nonexistent/vmlinuz", NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 && strstr(err, "does not exist"));

    /* A file that is not a kernel is refused before KVM is touched. */
    CHECK(parse("--kernel", meminfo, NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 &&
          strstr(err, "not a Linux bzImage"));

    CHECK(parse("--kernel", kernel, "--memory", "2G", NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 &&
          strstr(err, "more than this host has"));
    CHECK(parse("--kernel", kernel, "--memory", "512M", NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) == 0);

    CHECK(parse("--kernel", kernel, "--disk", "/nonexistent.img", NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 && strstr(err, "disk"));
    CHECK(parse("--kernel", "/tmp", NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 && strstr(err, "directory"));
    CHECK(parse("--kernel", kernel, "--image-dir", "/nonexistent-images", NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 &&
          strstr(err, "image directory /nonexistent-images does not exist"));
    CHECK(parse("--kernel", kernel, "--image-dir", meminfo, NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 && strstr(err, "not a directory"));

    /* --firmware with --kernel: the Linux loader ROM must be there, and be an option ROM. */
    char bios[] = "/tmp/hv-test-bios-XXXXXX", rom[] = "/tmp/hv-test-rom-XXXXXX";
    static uint8_t img[64 << 10];
    fd = mkstemp(bios);
    CHECK(fd >= 0 && write(fd, img, sizeof(img)) == (ssize_t)sizeof(img));
    close(fd);
    setenv("HV_VMM_LINUXBOOT_ROM", "/nonexistent/linuxboot_dma.bin", 1);
    CHECK(parse("--firmware", bios, "--kernel", kernel, NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 &&
          strstr(err, "/nonexistent/linuxboot_dma.bin does not exist") &&
          strstr(err, "qemu-system-data"));
    fd = mkstemp(rom);
    CHECK(fd >= 0 && write(fd, "\x55\xaa\x03", 3) == 3);
    close(fd);
    setenv("HV_VMM_LINUXBOOT_ROM", rom, 1);
    CHECK(parse("--firmware", bios, "--kernel", kernel, NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) == 0);
    setenv("HV_VMM_LINUXBOOT_ROM", meminfo, 1); /* not an option ROM */
    CHECK(parse("--firmware", bios, "--kernel", kernel, NULL) == CLI_RUN);
    CHECK(cli_check_host(&cfg, meminfo, err, sizeof(err)) < 0 && strstr(err, "not an option ROM"));
    unsetenv("HV_VMM_LINUXBOOT_ROM");
    unlink(bios);
    unlink(rom);
    unlink(meminfo);
    unlink(kernel);
}

int main(void)
{
    test_ok();
    test_firmware_options();
    test_disk_options();
    test_errors();
    test_pci_slot_options();
    test_memory_options();
    test_sandbox_options();
    test_host();
    CHECK_DONE();
}
