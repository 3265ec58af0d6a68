// SPDX-License-Identifier: GPL-2.0-or-later
/* Reading sysfs: a PCI function's IDs, driver and IOMMU group, and the group checks. */
#include "pt.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt_internal.h"

int pt_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void pt_path(const struct pt_sys *sys, char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(out, outlen, "%s", sys->root ? sys->root : "");

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < outlen)
        vsnprintf(out + n, outlen - (size_t)n, fmt, ap);
    va_end(ap);
}

int pt_parse_bdf(const char *s, char out[PT_BDF_LEN])
{
    unsigned dom = 0, bus, dev, fn;
    char tail;

    if (!s)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
            return -1;
    size_t len = strlen(s);
    /* Fixed widths: 0000:00:02.0 or 00:02.0, nothing more, nothing less. */
    if (len == 12) {
        if (s[4] != ':' || s[7] != ':' || s[10] != '.' ||
            sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) != 4)
            return -1;
    } else if (len == 7) {
        if (s[2] != ':' || s[5] != '.' || sscanf(s, "%2x:%2x.%1x%c", &bus, &dev, &fn, &tail) != 3)
            return -1;
    } else {
        return -1;
    }
    if (dev > 31 || fn > 7)
        return -1;
    snprintf(out, PT_BDF_LEN, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    return 0;
}

/* The first line of a small sysfs file, without its newline. 0 or -1. */
int pt_read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int read_hex(const char *path, unsigned long *v)
{
    char buf[64], *end;

    if (pt_read_line(path, buf, sizeof(buf)) < 0)
        return -1;
    errno = 0;
    *v = strtoul(buf, &end, 16);
    return errno || end == buf ? -1 : 0;
}

/* The last component of a symlink's target, "" when there is no link. */
static void link_name(const char *path, char *out, size_t outlen)
{
    char target[4096];
    ssize_t n = readlink(path, target, sizeof(target) - 1);

    out[0] = '\0';
    if (n <= 0)
        return;
    target[n] = '\0';
    const char *slash = strrchr(target, '/');
    const char *name = slash ? slash + 1 : target;
    if (strlen(name) < outlen)
        memcpy(out, name, strlen(name) + 1);
}

bool pt_iommu_enabled(const struct pt_sys *sys)
{
    char path[4096];
    pt_path(sys, path, sizeof(path), "/sys/kernel/iommu_groups");
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool any = false;
    struct dirent *e;
    while (!any && (e = readdir(d)))
        any = e->d_name[0] != '.';
    closedir(d);
    return any;
}

int pt_device_get(const struct pt_sys *sys, const char *bdf, struct pt_device *dev, char *err,
                  size_t errlen)
{
    char dir[4096], path[4200], name[PT_DRIVER_LEN];
    unsigned long vendor, device, cls;

    memset(dev, 0, sizeof(*dev));
    if (pt_parse_bdf(bdf, dev->bdf) < 0)
        return pt_fail(err, errlen, "'%s' is not a PCI address: write it as 0000:00:02.0", bdf);
    pt_path(sys, dir, sizeof(dir), "/sys/bus/pci/devices/%s", dev->bdf);
    if (access(dir, F_OK) < 0)
        return pt_fail(err, errlen, "there is no PCI device %s on this machine (see hv-pci list)",
                       dev->bdf);
    snprintf(path, sizeof(path), "%s/vendor", dir);
    if (read_hex(path, &vendor) < 0)
        return pt_fail(err, errlen, "cannot read the vendor ID of %s", dev->bdf);
    snprintf(path, sizeof(path), "%s/device", dir);
    if (read_hex(path, &device) < 0)
        return pt_fail(err, errlen, "cannot read the device ID of %s", dev->bdf);
    snprintf(path, sizeof(path), "%s/class", dir);
    if (read_hex(path, &cls) < 0)
        return pt_fail(err, errlen, "cannot read the class of %s", dev->bdf);
    dev->vendor = (uint16_t)vendor;
    dev->device = (uint16_t)device;
    dev->class_code = (uint32_t)cls & 0xffffff;
    snprintf(path, sizeof(path), "%s/driver", dir);
    link_name(path, dev->driver, sizeof(dev->driver));
    snprintf(path, sizeof(path), "%s/iommu_group", dir);
    link_name(path, name, sizeof(name));
    char *end;
    long g = name[0] ? strtol(name, &end, 10) : -1;
    dev->group = (name[0] && *end == '\0' && g >= 0 && g < 1000000) ? (int)g : -1;
    return 0;
}

static int cmp_bdf(const void *a, const void *b)
{
    return strcmp(a, b);
}

int pt_group_members(const struct pt_sys *sys, int group, char (**bdfs)[PT_BDF_LEN], size_t *n,
                     char *err, size_t errlen)
{
    char path[4096];
    pt_path(sys, path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", group);
    DIR *d = opendir(path);
    if (!d)
        return pt_fail(err, errlen, "cannot list IOMMU group %d: %s", group, strerror(errno));
    char(*list)[PT_BDF_LEN] = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char bdf[PT_BDF_LEN];
        if (pt_parse_bdf(e->d_name, bdf) < 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            char(*grown)[PT_BDF_LEN] = realloc(list, cap * sizeof(*list));
            if (!grown) {
                free(list);
                closedir(d);
                return pt_fail(err, errlen, "out of memory");
            }
            list = grown;
        }
        memcpy(list[count++], bdf, PT_BDF_LEN);
    }
    closedir(d);
    if (count)
        qsort(list, count, sizeof(*list), cmp_bdf);
    *bdfs = list;
    *n = count;
    return 0;
}

bool pt_is_bridge(uint32_t class_code)
{
    unsigned cls = class_code >> 8;
    return cls == 0x0604 || cls == 0x0609;
}

int pt_check_assignable(const struct pt_sys *sys, const char *bdf, char *err, size_t errlen)
{
    struct pt_device dev;

    if (!pt_iommu_enabled(sys))
        return pt_fail(err, errlen,
                       "the IOMMU is off, so no device can be passed through: turn on VT-d or "
                       "AMD-Vi in the firmware and boot with intel_iommu=on (Intel)");
    if (pt_device_get(sys, bdf, &dev, err, errlen) < 0)
        return -1;
    if (dev.class_code >> 16 == 0x06) /* host, ISA, PCI... bridges: the platform's */
        return pt_fail(err, errlen,
                       "%s is a bridge (class %06x): give a VM the device behind it, not the "
                       "bridge",
                       dev.bdf, dev.class_code);
    if (dev.group < 0)
        return pt_fail(err, errlen, "%s has no IOMMU group: the IOMMU does not cover it", dev.bdf);
    char(*members)[PT_BDF_LEN] = NULL;
    size_t n = 0;
    if (pt_group_members(sys, dev.group, &members, &n, err, errlen) < 0)
        return -1;
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct pt_device o;
        if (strcmp(members[i], dev.bdf) == 0)
            continue;
        char oerr[256];
        if (pt_device_get(sys, members[i], &o, oerr, sizeof(oerr)) < 0) {
            ret = pt_fail(err, errlen, "%s shares IOMMU group %d with %s, which cannot be read: %s",
                          dev.bdf, dev.group, members[i], oerr);
            break;
        }
        if (!o.driver[0] || strcmp(o.driver, PT_VFIO) == 0 || pt_is_bridge(o.class_code))
            continue;
        ret = pt_fail(err, errlen,
                      "%s shares IOMMU group %d with %s (%s), which is in use: every device of "
                      "the group must be unbound or on vfio-pci before any of them can be given "
                      "to a VM",
                      dev.bdf, dev.group, o.bdf, o.driver);
    }
    free(members);
    return ret;
}
