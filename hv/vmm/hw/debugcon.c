/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Port 0x402 as a write-only byte sink. Reads give 0xE9, the value Bochs
 * and QEMU's debug port return, which firmware may probe for.
 */
#include "debugcon.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "device.h"
#include "log.h"
#include "logfile.h"
#include "vm.h"

#define LINE_MAX_BYTES 160

struct debugcon {
    struct device dev;
    pthread_mutex_t lock;
    int fd; /* -1: lines go to log_debug */
    struct logfile file;
    char line[LINE_MAX_BYTES + 1];
    unsigned len;
};

static void put_byte(struct debugcon *d, uint8_t c)
{
    if (d->fd >= 0) {
        logfile_write(&d->file, &c, 1);
        return;
    }
    if (c != '\n' && c != '\r' && d->len < LINE_MAX_BYTES)
        d->line[d->len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '.';
    if (c == '\n' || d->len == LINE_MAX_BYTES) {
        d->line[d->len] = 0;
        log_debug("firmware: %s", d->line);
        d->len = 0;
    }
}

static void debugcon_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct debugcon *d = opaque;
    (void)off;

    if (!is_write) {
        memset(data, 0xe9, len);
        return;
    }
    pthread_mutex_lock(&d->lock);
    put_byte(d, data[0]); /* a wider write carries one character in its low byte */
    pthread_mutex_unlock(&d->lock);
}

static void debugcon_destroy(struct device *dev)
{
    struct debugcon *d = dev->priv;
    io_bus_unregister(&dev->vm->pio, DEBUGCON_PORT);
    if (d->fd >= 0)
        close(d->fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Host-side output only: nothing to reset or save. */
static const struct device_ops debugcon_ops = {.destroy = debugcon_destroy};

int debugcon_attach(struct vm *vm, const char *path)
{
    struct debugcon *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    d->fd = -1;
    if (path) {
        d->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (d->fd < 0) {
            log_err("cannot open the firmware log %s: %s", path, strerror(errno));
            free(d);
            return -1;
        }
        logfile_init(&d->file, d->fd, 0);
    }
    pthread_mutex_init(&d->lock, NULL);
    int ret = io_bus_register(&vm->pio, DEBUGCON_PORT, 1, debugcon_io, d);
    if (ret < 0) {
        log_err("cannot register the firmware debug port: %s", strerror(-ret));
        if (d->fd >= 0)
            close(d->fd);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return -1;
    }
    device_add(vm, &d->dev, &debugcon_ops, "debugcon", -1, d);
    return 0;
}
