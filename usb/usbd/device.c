/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host's USB devices as libusb sees them: hotplug events are queued by
 * the callback (which may only do device-level calls) and handled in the
 * main loop, where a device is described and the plug-in policy applied.
 */
#include "log.h"
#include "usbd.h"
#include "util.h"
#include "xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

libusb_context *usbd_ctx;
struct usbd_dev *usbd_devs;

#define MAX_EVENTS 64
static struct {
    libusb_device *dev;
    libusb_hotplug_event ev;
} events[MAX_EVENTS];
static size_t nevents;

void usbd_on_plug(struct usbd_dev *d); /* control.c: applies the rules */

static int LIBUSB_CALL hotplug_cb(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event ev,
                                  void *opaque)
{
    (void)ctx;
    (void)opaque;
    if (nevents == MAX_EVENTS) {
        log_warn("hotplug: event queue full, dropping an event");
        return 0;
    }
    events[nevents].dev = libusb_ref_device(dev);
    events[nevents].ev = ev;
    nevents++;
    return 0;
}

static void read_sysfs_str(const char *busid, const char *attr, char *out, size_t size)
{
    char path[128];
    FILE *f;

    out[0] = '\0';
    snprintf(path, sizeof(path), "/sys/bus/usb/devices/%s/%s", busid, attr);
    f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, (int)size, f))
        out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
}

/* Names from usbutils' usb.ids when the device has no string descriptors. */
static void usb_ids_lookup(uint16_t vid, uint16_t pid, char *vname, size_t vsz, char *pname,
                           size_t psz)
{
    static const char *const files[] = {"/usr/share/misc/usb.ids", "/var/lib/usbutils/usb.ids",
                                        "/usr/share/hwdata/usb.ids"};
    char line[256];
    FILE *f = NULL;
    bool in_vendor = false;

    for (size_t i = 0; i < ARRAY_SIZE(files) && !f; i++)
        f = fopen(files[i], "re");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned id;
        int n = 0;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (line[0] != '\t') {
            if (in_vendor)
                break;
            if (sscanf(line, "%4x %n", &id, &n) == 1 && n > 4 && id == vid) {
                in_vendor = true;
                if (!vname[0])
                    snprintf(vname, vsz, "%s", line + n);
            }
        } else if (in_vendor && line[1] != '\t') {
            if (sscanf(line + 1, "%4x %n", &id, &n) == 1 && n > 4 && id == pid) {
                if (!pname[0])
                    snprintf(pname, psz, "%s", line + 1 + n);
                break;
            }
        }
    }
    fclose(f);
}

static void describe(struct usbd_dev *d)
{
    struct libusb_device_descriptor dd;
    struct libusb_config_descriptor *cfg;
    struct usbip_dev_info *i = &d->info;
    uint8_t ports[8];
    int np = libusb_get_port_numbers(d->dev, ports, sizeof(ports));
    int off;

    memset(i, 0, sizeof(*i));
    i->busnum = libusb_get_bus_number(d->dev);
    i->devnum = libusb_get_device_address(d->dev);
    i->speed = xlate_speed(libusb_get_device_speed(d->dev));
    off = snprintf(i->busid, sizeof(i->busid), "%u-", i->busnum);
    for (int k = 0; k < np && off < (int)sizeof(i->busid); k++)
        off += snprintf(i->busid + off, sizeof(i->busid) - (size_t)off, k ? ".%u" : "%u", ports[k]);
    snprintf(i->path, sizeof(i->path), "/sys/bus/usb/devices/%s", i->busid);
    if (libusb_get_device_descriptor(d->dev, &dd) == 0) {
        i->id_vendor = dd.idVendor;
        i->id_product = dd.idProduct;
        i->bcd_device = dd.bcdDevice;
        i->dev_class = dd.bDeviceClass;
        i->dev_subclass = dd.bDeviceSubClass;
        i->dev_protocol = dd.bDeviceProtocol;
        i->num_configurations = dd.bNumConfigurations;
    }
    if (libusb_get_active_config_descriptor(d->dev, &cfg) == 0) {
        i->configuration_value = cfg->bConfigurationValue;
        i->num_interfaces = (uint8_t)MIN(cfg->bNumInterfaces, USBIP_MAX_INTERFACES);
        for (uint8_t k = 0; k < i->num_interfaces; k++) {
            const struct libusb_interface_descriptor *alt = cfg->interface[k].altsetting;
            if (cfg->interface[k].num_altsetting < 1)
                continue;
            d->intf[k].cls = alt->bInterfaceClass;
            d->intf[k].subclass = alt->bInterfaceSubClass;
            d->intf[k].protocol = alt->bInterfaceProtocol;
        }
        libusb_free_config_descriptor(cfg);
    }
    struct usb_dev_props *p = &d->props;
    memset(p, 0, sizeof(*p));
    p->vendor = i->id_vendor;
    p->product = i->id_product;
    p->dev_class = i->dev_class;
    p->nintf = i->num_interfaces;
    for (size_t k = 0; k < p->nintf && k < POLICY_MAX_INTF; k++) {
        p->intf_class[k] = d->intf[k].cls;
        p->intf_subclass[k] = d->intf[k].subclass;
        p->intf_protocol[k] = d->intf[k].protocol;
    }
    snprintf(p->port, sizeof(p->port), "%s", i->busid);
    /* The kernel already read the string descriptors; no device I/O needed. */
    read_sysfs_str(i->busid, "manufacturer", d->vendor_name, sizeof(d->vendor_name));
    read_sysfs_str(i->busid, "product", d->product_name, sizeof(d->product_name));
    usb_ids_lookup(i->id_vendor, i->id_product, d->vendor_name, sizeof(d->vendor_name),
                   d->product_name, sizeof(d->product_name));
}

static struct usbd_dev *find_by_dev(libusb_device *dev)
{
    for (struct usbd_dev *d = usbd_devs; d; d = d->next)
        if (d->dev == dev && !d->gone)
            return d;
    return NULL;
}

struct usbd_dev *dev_find(const char *busid)
{
    for (struct usbd_dev *d = usbd_devs; d; d = d->next)
        if (!d->gone && strcmp(d->info.busid, busid) == 0)
            return d;
    return NULL;
}

static void arrived(libusb_device *dev)
{
    struct libusb_device_descriptor dd;

    if (find_by_dev(dev))
        return; /* ENUMERATE may report a device twice */
    /* Hubs are infrastructure, never handed out. */
    if (libusb_get_device_descriptor(dev, &dd) == 0 && dd.bDeviceClass == LIBUSB_CLASS_HUB)
        return;
    struct usbd_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return;
    d->dev = libusb_ref_device(dev);
    describe(d);
    d->next = usbd_devs;
    usbd_devs = d;
    log_info("device %s arrived: %04x:%04x %s %s", d->info.busid, d->info.id_vendor,
             d->info.id_product, d->vendor_name, d->product_name);
    usbd_on_plug(d);
}

static void left(libusb_device *dev)
{
    struct usbd_dev *d = find_by_dev(dev);

    if (!d)
        return;
    log_info("device %s left", d->info.busid);
    d->gone = true;
    control_cancel_attach(d, "the device was unplugged");
    if (d->conn)
        conn_kill(d->conn, "device unplugged");
}

void dev_process_hotplug(void)
{
    /* Handling may run libusb calls that queue more events: drain a copy. */
    while (nevents) {
        libusb_device *dev = events[0].dev;
        libusb_hotplug_event ev = events[0].ev;
        memmove(events, events + 1, (nevents - 1) * sizeof(events[0]));
        nevents--;
        if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
            arrived(dev);
        else
            left(dev);
        libusb_unref_device(dev);
    }
}

void dev_free_gone(void)
{
    struct usbd_dev **pp = &usbd_devs;

    while (*pp) {
        struct usbd_dev *d = *pp;
        if (d->gone && !d->conn) {
            *pp = d->next;
            libusb_unref_device(d->dev);
            free(d);
        } else {
            pp = &d->next;
        }
    }
}

int dev_init(void)
{
    libusb_hotplug_callback_handle hh;
    int r = libusb_init(&usbd_ctx);

    if (r) {
        log_err("libusb_init: %s", libusb_strerror(r));
        return -1;
    }
    if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        log_err("libusb has no hotplug support on this system");
        return -1;
    }
    r = libusb_hotplug_register_callback(
        usbd_ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
        LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
        LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb, NULL, &hh);
    if (r) {
        log_err("libusb hotplug registration: %s", libusb_strerror(r));
        return -1;
    }
    return 0;
}
