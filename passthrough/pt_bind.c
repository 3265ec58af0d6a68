// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Binding a PCI function to vfio-pci and giving it back (the kernel's
 * Documentation/driver-api/vfio.rst and ABI sysfs-bus-pci): driver_override
 * names the only driver that may take the device, drivers_probe asks the
 * kernel to find it one.
 */
#include "pt.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pt_internal.h"

extern char **environ;

/* Write value into a sysfs attribute (path below root). 0, or -errno. */
static int sys_write(const struct pt_sys *sys, const char *rel, const char *value)
{
    char path[4096];
    pt_path(sys, path, sizeof(path), "%s", rel);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    int ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
    close(fd);
    if (ret == 0 && sys->wrote)
        sys->wrote(sys->opaque, rel, value);
    return ret;
}

static int modprobe(const char *module, char *err, size_t errlen)
{
    char *argv[] = {"modprobe", (char *)module, NULL};
    pid_t pid;
    int status;

    int r = posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ);
    if (r != 0)
        return pt_fail(err, errlen, "cannot run modprobe %s: %s", module, strerror(r));
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return pt_fail(err, errlen, "modprobe %s: %s", module, strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return pt_fail(err, errlen, "modprobe %s failed: this kernel has no %s module", module,
                       module);
    return 0;
}

int pt_load_vfio(const struct pt_sys *sys, char *err, size_t errlen)
{
    char path[4096];
    /* vfio-pci does not pull in the type1 IOMMU backend: load both. */
    static const char *const need[][2] = {
        {"/sys/bus/pci/drivers/vfio-pci", "vfio-pci"},
        {"/sys/module/vfio_iommu_type1", "vfio_iommu_type1"},
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        pt_path(sys, path, sizeof(path), "%s", need[i][0]);
        if (access(path, F_OK) == 0)
            continue;
        if (sys->root && sys->root[0])
            return pt_fail(err, errlen, "%s is missing", path);
        if (modprobe(need[i][1], err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int set_override(const struct pt_sys *sys, const char *bdf, const char *driver)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
    /* A bare newline clears it. */
    return sys_write(sys, rel, driver[0] ? driver : "\n");
}

static int unbind(const struct pt_sys *sys, const char *bdf)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
    return sys_write(sys, rel, bdf);
}

static int probe(const struct pt_sys *sys, const char *bdf)
{
    return sys_write(sys, "/sys/bus/pci/drivers_probe", bdf);
}

int pt_bind_vfio(const struct pt_sys *sys, const char *bdf, struct pt_binding *b, char *err,
                 size_t errlen)
{
    struct pt_device dev;
    int r;

    if (pt_device_get(sys, bdf, &dev, err, errlen) < 0)
        return -1;
    memset(b, 0, sizeof(*b));
    memcpy(b->bdf, dev.bdf, PT_BDF_LEN);
    snprintf(b->driver, sizeof(b->driver), "%s", dev.driver);
    if (strcmp(dev.driver, PT_VFIO) == 0)
        return 0;
    if ((r = set_override(sys, dev.bdf, PT_VFIO)) < 0)
        return pt_fail(err, errlen, "cannot set the driver_override of %s: %s", dev.bdf,
                       strerror(-r));
    if (dev.driver[0] && (r = unbind(sys, dev.bdf)) < 0) {
        set_override(sys, dev.bdf, "");
        return pt_fail(err, errlen, "cannot unbind %s from %s: %s", dev.bdf, dev.driver,
                       strerror(-r));
    }
    r = probe(sys, dev.bdf);
    struct pt_device now;
    if (r < 0 || pt_device_get(sys, b->bdf, &now, err, errlen) < 0 ||
        strcmp(now.driver, PT_VFIO) != 0) {
        char ignored[256];
        pt_restore(sys, b, ignored, sizeof(ignored));
        return pt_fail(err, errlen, "vfio-pci did not take %s%s%s (is the vfio-pci module loaded?)",
                       dev.bdf, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
    }
    return 0;
}

int pt_restore(const struct pt_sys *sys, const struct pt_binding *b, char *err, size_t errlen)
{
    struct pt_device dev;
    int r;

    if (strcmp(b->driver, PT_VFIO) == 0)
        return 0; /* it was on vfio-pci before us: leave it there */
    if (pt_device_get(sys, b->bdf, &dev, err, errlen) < 0)
        return -1;
    if (strcmp(dev.driver, PT_VFIO) == 0 && (r = unbind(sys, dev.bdf)) < 0)
        return pt_fail(err, errlen, "cannot unbind %s from vfio-pci: %s", dev.bdf, strerror(-r));
    if ((r = set_override(sys, dev.bdf, "")) < 0)
        return pt_fail(err, errlen, "cannot clear the driver_override of %s: %s", dev.bdf,
                       strerror(-r));
    if (!b->driver[0])
        return 0; /* it had no driver: leave it unbound */
    probe(sys, b->bdf);
    if (pt_device_get(sys, b->bdf, &dev, err, errlen) < 0)
        return -1;
    if (strcmp(dev.driver, b->driver) != 0) {
        /* Another driver matched first, or none did: ask for the old one by name. */
        char rel[256];
        if (dev.driver[0])
            unbind(sys, b->bdf);
        snprintf(rel, sizeof(rel), "/sys/bus/pci/drivers/%s/bind", b->driver);
        sys_write(sys, rel, b->bdf);
        if (pt_device_get(sys, b->bdf, &dev, err, errlen) < 0)
            return -1;
        if (strcmp(dev.driver, b->driver) != 0)
            return pt_fail(err, errlen, "%s did not go back to its driver %s (it is on %s)",
                           dev.bdf, b->driver, dev.driver[0] ? dev.driver : "no driver");
    }
    return 0;
}

void pt_binding_format(const struct pt_binding *b, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s %s", b->bdf, b->driver[0] ? b->driver : "-");
}

int pt_binding_parse(const char *line, struct pt_binding *b)
{
    char bdf[32], driver[PT_DRIVER_LEN];

    memset(b, 0, sizeof(*b));
    if (sscanf(line, "%31s %63s", bdf, driver) != 2 || pt_parse_bdf(bdf, b->bdf) < 0)
        return -1;
    /* It becomes part of a sysfs path. */
    if (strchr(driver, '/') || strcmp(driver, ".") == 0 || strcmp(driver, "..") == 0)
        return -1;
    if (strcmp(driver, "-") != 0)
        snprintf(b->driver, sizeof(b->driver), "%s", driver);
    return 0;
}
