// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The passthrough library against a fake /sys in a temporary folder: BDF
 * parsing, device info, the IOMMU group rules and their sentences, binding
 * to vfio-pci and restoring, with a small stand-in for the kernel's driver
 * core (bind, unbind, driver_override, drivers_probe).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "pt.h"

static char root[256];

static void put(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", root, rel);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
}

static void add_driver(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "/sys/bus/pci/drivers/%s", name);
    mkdirs(rel);
    snprintf(rel, sizeof(rel), "/sys/bus/pci/drivers/%s/bind", name);
    put(rel, "");
    snprintf(rel, sizeof(rel), "/sys/bus/pci/drivers/%s/unbind", name);
    put(rel, "");
}

static void set_driver(const char *bdf, const char *driver)
{
    char link[1024], target[1024];
    snprintf(link, sizeof(link), "%s/sys/bus/pci/devices/%s/driver", root, bdf);
    unlink(link);
    if (!driver)
        return;
    snprintf(target, sizeof(target), "%s/sys/bus/pci/drivers/%s", root, driver);
    if (symlink(target, link) < 0)
        perror(link);
}

/* A device: IDs, class, its driver (NULL: none), the driver its IDs match, its group. */
static void add_device(const char *bdf, unsigned cls, const char *driver, const char *native,
                       int group)
{
    char rel[256], text[64], link[1024], target[1024];
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s", bdf);
    mkdirs(rel);
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/vendor", bdf);
    put(rel, "0x8086\n");
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/device", bdf);
    put(rel, "0x10d3\n");
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/class", bdf);
    snprintf(text, sizeof(text), "0x%06x\n", cls);
    put(rel, text);
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
    put(rel, "(null)\n");
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/native", bdf); /* test only */
    put(rel, native ? native : "");
    set_driver(bdf, driver);
    if (group >= 0) {
        snprintf(rel, sizeof(rel), "/sys/kernel/iommu_groups/%d/devices", group);
        mkdirs(rel);
        snprintf(link, sizeof(link), "%s/sys/bus/pci/devices/%s/iommu_group", root, bdf);
        snprintf(target, sizeof(target), "%s/sys/kernel/iommu_groups/%d", root, group);
        symlink(target, link);
        snprintf(link, sizeof(link), "%s/sys/kernel/iommu_groups/%d/devices/%s", root, group, bdf);
        snprintf(target, sizeof(target), "%s/sys/bus/pci/devices/%s", root, bdf);
        symlink(target, link);
    }
}

static void read_rel(const char *rel, char *buf, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", root, rel);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (!fgets(buf, (int)len, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

static int nr_writes;

/* The kernel's driver core, as far as the library relies on it. */
static void kernel(void *opaque, const char *path, const char *value)
{
    (void)opaque;
    char bdf[PT_BDF_LEN], rel[1024], override[64], native[64];
    nr_writes++;
    size_t len = strlen(path);
    if (len > 14 && strcmp(path + len - 14, "/driver/unbind") == 0 &&
        sscanf(path, "/sys/bus/pci/devices/%12[^/]", bdf) == 1) {
        set_driver(bdf, NULL);
    } else if (strcmp(path, "/sys/bus/pci/drivers_probe") == 0) {
        snprintf(bdf, sizeof(bdf), "%s", value);
        snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
        read_rel(rel, override, sizeof(override));
        snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/native", bdf);
        read_rel(rel, native, sizeof(native));
        if (override[0] && strcmp(override, "(null)") != 0) {
            snprintf(rel, sizeof(rel), "%s/sys/bus/pci/drivers/%s", root, override);
            if (access(rel, F_OK) == 0)
                set_driver(bdf, override);
        } else if (native[0]) {
            set_driver(bdf, native);
        }
    } else if (strstr(path, "/driver_override") && strcmp(value, "\n") == 0) {
        snprintf(rel, sizeof(rel), "%s", path);
        put(rel, "(null)\n");
    }
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void test_parse(void)
{
    char b[PT_BDF_LEN];
    CHECK(pt_parse_bdf("0000:00:02.0", b) == 0 && strcmp(b, "0000:00:02.0") == 0);
    CHECK(pt_parse_bdf("00:1F.3", b) == 0 && strcmp(b, "0000:00:1f.3") == 0);
    CHECK(pt_parse_bdf("0001:3a:00.1", b) == 0 && strcmp(b, "0001:3a:00.1") == 0);
    CHECK(pt_parse_bdf("00:20.0", b) < 0); /* device 32 */
    CHECK(pt_parse_bdf("00:02.8", b) < 0); /* function 8 */
    CHECK(pt_parse_bdf("0:2.0", b) < 0);
    CHECK(pt_parse_bdf("00:02.0 ", b) < 0);
    CHECK(pt_parse_bdf("00:02.0;", b) < 0);
    CHECK(pt_parse_bdf("../../x", b) < 0);
    CHECK(pt_parse_bdf("", b) < 0);
    CHECK(pt_parse_bdf(NULL, b) < 0);
    CHECK(pt_parse_bdf("0000:00:02.00", b) < 0);

    struct pt_binding bd;
    char line[128];
    CHECK(pt_binding_parse("0000:00:02.0 e1000e", &bd) == 0 && strcmp(bd.driver, "e1000e") == 0);
    pt_binding_format(&bd, line, sizeof(line));
    CHECK(strcmp(line, "0000:00:02.0 e1000e") == 0);
    CHECK(pt_binding_parse("0000:00:02.0 -", &bd) == 0 && bd.driver[0] == '\0');
    pt_binding_format(&bd, line, sizeof(line));
    CHECK(strcmp(line, "0000:00:02.0 -") == 0);
    CHECK(pt_binding_parse("0000:00:02.0 ../x", &bd) < 0);
    CHECK(pt_binding_parse("0000:00:02.0 ..", &bd) < 0);
    CHECK(pt_binding_parse("garbage", &bd) < 0);
}

int main(void)
{
    char err[512];
    snprintf(root, sizeof(root), "/tmp/hv-pt-test-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    struct pt_sys sys = {.root = root, .wrote = kernel};

    test_parse();

    /* No IOMMU groups yet: the IOMMU is off. */
    mkdirs("/sys/kernel");
    add_driver("e1000e");
    put("/sys/bus/pci/drivers_probe", "");
    add_driver("snd_hda_intel");
    add_driver("pcieport");
    add_device("0000:00:05.0", 0x020000, "e1000e", "e1000e", -1);
    CHECK(!pt_iommu_enabled(&sys));
    CHECK(pt_check_assignable(&sys, "0000:00:05.0", err, sizeof(err)) < 0);
    CHECK(strstr(err, "IOMMU is off") != NULL);

    /* Group 1: a NIC alone. Group 2: display + its audio. Group 3: bridge + NIC + unbound. */
    add_device("0000:00:02.0", 0x020000, "e1000e", "e1000e", 1);
    add_device("0000:00:03.0", 0x030000, NULL, NULL, 2);
    add_device("0000:00:03.1", 0x040300, "snd_hda_intel", "snd_hda_intel", 2);
    add_device("0000:00:1c.0", 0x060400, "pcieport", "pcieport", 3);
    add_device("0000:01:00.0", 0x020000, "e1000e", "e1000e", 3);
    add_device("0000:01:00.1", 0x020000, NULL, NULL, 3);
    CHECK(pt_iommu_enabled(&sys));

    struct pt_device d;
    CHECK(pt_device_get(&sys, "00:03.1", &d, err, sizeof(err)) == 0);
    CHECK(strcmp(d.bdf, "0000:00:03.1") == 0 && d.vendor == 0x8086 && d.device == 0x10d3);
    CHECK(d.class_code == 0x040300 && strcmp(d.driver, "snd_hda_intel") == 0 && d.group == 2);
    CHECK(pt_device_get(&sys, "0000:00:03.0", &d, err, sizeof(err)) == 0 && d.driver[0] == 0);
    CHECK(pt_device_get(&sys, "0000:00:09.0", &d, err, sizeof(err)) < 0);
    CHECK(strstr(err, "there is no PCI device 0000:00:09.0") != NULL);
    CHECK(pt_device_get(&sys, "nonsense", &d, err, sizeof(err)) < 0);
    CHECK(strstr(err, "not a PCI address") != NULL);

    char(*members)[PT_BDF_LEN];
    size_t n;
    CHECK(pt_group_members(&sys, 3, &members, &n, err, sizeof(err)) == 0 && n == 3);
    CHECK(n == 3 && strcmp(members[0], "0000:00:1c.0") == 0 &&
          strcmp(members[2], "0000:01:00.1") == 0);
    free(members);

    CHECK(pt_check_assignable(&sys, "0000:00:02.0", err, sizeof(err)) == 0);
    CHECK(pt_check_assignable(&sys, "0000:00:05.0", err, sizeof(err)) < 0);
    CHECK(strstr(err, "has no IOMMU group") != NULL);
    /* The display shares its group with a bound audio function. */
    CHECK(pt_check_assignable(&sys, "0000:00:03.0", err, sizeof(err)) < 0);
    CHECK(strstr(err, "0000:00:03.0 shares IOMMU group 2 with 0000:00:03.1 (snd_hda_intel), "
                      "which is in use") != NULL);
    /* Bridges and unbound functions do not count. */
    CHECK(pt_check_assignable(&sys, "0000:01:00.0", err, sizeof(err)) == 0);
    CHECK(pt_check_assignable(&sys, "0000:00:1c.0", err, sizeof(err)) < 0);
    CHECK(strstr(err, "0000:00:1c.0 is a bridge (class 060400)") != NULL);
    add_device("0000:00:00.0", 0x060000, NULL, NULL, 0); /* the host bridge */
    CHECK(pt_check_assignable(&sys, "0000:00:00.0", err, sizeof(err)) < 0);
    CHECK(strstr(err, "is a bridge (class 060000)") != NULL);

    /* Bind the NIC, then give it back to e1000e. */
    struct pt_binding b;
    add_driver("vfio-pci");
    CHECK(pt_bind_vfio(&sys, "0000:00:02.0", &b, err, sizeof(err)) == 0);
    CHECK(strcmp(b.bdf, "0000:00:02.0") == 0 && strcmp(b.driver, "e1000e") == 0);
    CHECK(pt_device_get(&sys, "0000:00:02.0", &d, err, sizeof(err)) == 0);
    CHECK(strcmp(d.driver, "vfio-pci") == 0);
    char text[64];
    read_rel("/sys/bus/pci/devices/0000:00:02.0/driver_override", text, sizeof(text));
    CHECK(strcmp(text, "vfio-pci") == 0);
    CHECK(pt_restore(&sys, &b, err, sizeof(err)) == 0);
    CHECK(pt_device_get(&sys, "0000:00:02.0", &d, err, sizeof(err)) == 0);
    CHECK(strcmp(d.driver, "e1000e") == 0);
    read_rel("/sys/bus/pci/devices/0000:00:02.0/driver_override", text, sizeof(text));
    CHECK(strcmp(text, "(null)") == 0);

    /* Now group 2's audio is on vfio-pci: the display may go; restore leaves it unbound. */
    CHECK(pt_bind_vfio(&sys, "0000:00:03.1", &b, err, sizeof(err)) == 0);
    CHECK(pt_check_assignable(&sys, "0000:00:03.0", err, sizeof(err)) == 0);
    struct pt_binding b2;
    CHECK(pt_bind_vfio(&sys, "0000:00:03.0", &b2, err, sizeof(err)) == 0 && b2.driver[0] == 0);
    CHECK(pt_restore(&sys, &b2, err, sizeof(err)) == 0);
    CHECK(pt_device_get(&sys, "0000:00:03.0", &d, err, sizeof(err)) == 0 && d.driver[0] == 0);
    CHECK(pt_restore(&sys, &b, err, sizeof(err)) == 0);
    CHECK(pt_device_get(&sys, "0000:00:03.1", &d, err, sizeof(err)) == 0);
    CHECK(strcmp(d.driver, "snd_hda_intel") == 0);

    /* Already on vfio-pci: nothing written now, nothing undone later. */
    set_driver("0000:01:00.1", "vfio-pci");
    nr_writes = 0;
    CHECK(pt_bind_vfio(&sys, "0000:01:00.1", &b, err, sizeof(err)) == 0);
    CHECK(strcmp(b.driver, "vfio-pci") == 0 && nr_writes == 0);
    CHECK(pt_restore(&sys, &b, err, sizeof(err)) == 0 && nr_writes == 0);

    /* vfio-pci missing: the bind fails with a sentence and the device is back. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/sys/bus/pci/drivers/vfio-pci", root);
    nftw(path, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    CHECK(pt_bind_vfio(&sys, "0000:00:02.0", &b, err, sizeof(err)) < 0);
    CHECK(strstr(err, "vfio-pci did not take 0000:00:02.0") != NULL);
    CHECK(pt_device_get(&sys, "0000:00:02.0", &d, err, sizeof(err)) == 0);
    CHECK(strcmp(d.driver, "e1000e") == 0);
    CHECK(pt_load_vfio(&sys, err, sizeof(err)) < 0 && strstr(err, "vfio-pci is missing"));

    if (!getenv("KEEP"))
        nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    CHECK_DONE();
}
