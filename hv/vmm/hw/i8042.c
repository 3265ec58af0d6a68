/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Just enough of an 8042 keyboard controller at 0x60/0x64: its reset line
 * (command 0xFE, or the output port bit 0) reboots the VM, and a probe gets
 * sane answers without waiting. There is no keyboard behind it (input goes
 * through virtio), and the DSDT lists none, so Linux does not bind a driver.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "state.h"
#include "vm.h"

#define I8042_DATA 0x60
#define I8042_CMD  0x64

#define STS_OBF  0x01
#define STS_SYS  0x04
#define STS_CMD  0x08
#define STS_KEYL 0x10 /* keyboard not inhibited */

#define CMD_READ_CTR   0x20
#define CMD_WRITE_CTR  0x60
#define CMD_SELF_TEST  0xaa
#define CMD_KBD_TEST   0xab
#define CMD_WRITE_OUTP 0xd1
#define CMD_RESET      0xfe

struct i8042_dev {
    struct vm *vm;
    pthread_mutex_t lock;
    uint8_t ctr;     /* controller configuration byte */
    uint8_t pending; /* command waiting for its data byte */
    uint8_t status;
    bool has_out;
    uint8_t out;
};

static void reply(struct i8042_dev *k, uint8_t v)
{
    k->out = v;
    k->has_out = true;
}

static void command(struct i8042_dev *k, uint8_t cmd)
{
    switch (cmd) {
    case CMD_READ_CTR:
        reply(k, k->ctr);
        break;
    case CMD_WRITE_CTR:
    case CMD_WRITE_OUTP:
        k->pending = cmd;
        break;
    case CMD_SELF_TEST:
        reply(k, 0x55);
        break;
    case CMD_KBD_TEST:
        reply(k, 0x00);
        break;
    case CMD_RESET:
        vm_request(k->vm, VM_REQ_RESET);
        break;
    default:
        break; /* enable/disable ports and the like: nothing to do */
    }
}

static void i8042_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write,
                     bool is_cmd_port)
{
    struct i8042_dev *k = opaque;

    (void)off;
    if (len != 1) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    pthread_mutex_lock(&k->lock);
    if (is_cmd_port && is_write) {
        k->status |= STS_CMD;
        command(k, data[0]);
    } else if (is_cmd_port) {
        data[0] = (uint8_t)(k->status | STS_SYS | STS_KEYL | (k->has_out ? STS_OBF : 0));
    } else if (is_write) {
        k->status &= (uint8_t)~STS_CMD;
        if (k->pending == CMD_WRITE_CTR)
            k->ctr = data[0];
        else if (k->pending == CMD_WRITE_OUTP && !(data[0] & 1))
            vm_request(k->vm, VM_REQ_RESET); /* output port bit 0 is the CPU reset line */
        k->pending = 0;
    } else {
        data[0] = k->out;
        k->has_out = false;
    }
    pthread_mutex_unlock(&k->lock);
}

static void data_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    i8042_io(opaque, off, data, len, is_write, false);
}

static void cmd_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    i8042_io(opaque, off, data, len, is_write, true);
}

static void power_on(struct i8042_dev *k)
{
    k->ctr = 0x45; /* keyboard interrupt, system flag, translation */
    k->pending = 0;
    k->status = 0;
    k->has_out = false;
    k->out = 0;
}

void i8042_reset(struct vm *vm)
{
    struct i8042_dev *k = vm->i8042;
    if (!k)
        return;
    pthread_mutex_lock(&k->lock);
    power_on(k);
    pthread_mutex_unlock(&k->lock);
}

/*
 * All the model holds: there is no keyboard or mouse behind it (so no scan
 * set, LEDs or queue) and it raises no interrupt.
 */
int i8042_save(struct vm *vm, struct state_out *out)
{
    struct i8042_dev *k = vm->i8042;

    pthread_mutex_lock(&k->lock);
    state_put_u8(out, k->ctr);
    state_put_u8(out, k->pending);
    state_put_u8(out, k->status);
    state_put_bool(out, k->has_out);
    state_put_u8(out, k->out);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

int i8042_load(struct vm *vm, struct state_in *in)
{
    struct i8042_dev *k = vm->i8042;

    uint8_t ctr = state_get_u8(in), pending = state_get_u8(in), status = state_get_u8(in);
    bool has_out = state_get_bool(in);
    uint8_t out = state_get_u8(in);
    if (!state_in_ok(in))
        return -1;
    if (pending && pending != CMD_WRITE_CTR && pending != CMD_WRITE_OUTP)
        return state_in_fail(in, "the controller waits for the data of command %#x, which has none",
                             pending);
    if (status & ~STS_CMD)
        return state_in_fail(in, "the status register holds %#x", status);
    pthread_mutex_lock(&k->lock);
    k->ctr = ctr;
    k->pending = pending;
    k->status = status;
    k->has_out = has_out;
    k->out = out;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

int i8042_init(struct vm *vm)
{
    struct i8042_dev *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->vm = vm;
    power_on(k);
    vm->i8042 = k;
    pthread_mutex_init(&k->lock, NULL);
    int ret = io_bus_register(&vm->pio, I8042_DATA, 1, data_io, k);
    if (ret == 0)
        ret = io_bus_register(&vm->pio, I8042_CMD, 1, cmd_io, k);
    return ret;
}

/* vCPUs are stopped: nothing reaches the ports any more. */
void i8042_destroy(struct vm *vm)
{
    struct i8042_dev *d = vm->i8042;
    if (!d)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d);
    vm->i8042 = NULL;
}
