/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Save and load of the platform devices (hw/, through devices.c's table) on
 * a VM without KVM: registers set through the ports come back through the
 * ports of a freshly created VM; the RTC and PM timer run on after a load;
 * corrupted sections are refused with a sentence; --pci refuses the save.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "devices.h"
#include "log.h"
#include "pci.h"
#include "state.h"
#include "vm.h"

/* vm.c is not linked. */
void vm_request(struct vm *vm, enum vm_request req)
{
    atomic_fetch_or(&vm->requests, (unsigned)req);
}

static const struct vm_config cfg = {.name = "test", .console = "none"};

static void make_vm(struct vm *vm, const struct vm_config *c)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = c;
    vm->vm_fd = vm->kvm_fd = vm->event_fd = -1;
    vm->irq.vm_fd = -1; /* no KVM: interrupts go nowhere, the registers still tell */
    pthread_mutex_init(&vm->irq.lock, NULL);
    io_bus_init(&vm->pio, "pio");
    io_bus_init(&vm->mmio, "mmio");
    CHECK(pci_bus_init(&vm->pci, &vm->pio, &vm->mmio) == 0);
    CHECK(platform_devices_init(vm) == 0);
}

/* Give back what make_vm() built (the sanitizer build checks for leaks). */
static void drop_vm(struct vm *vm)
{
    devices_destroy(vm);
    free(vm->platform);
    vm->platform = NULL;
    pci_bus_destroy(vm->pci);
    io_bus_destroy(&vm->pio);
    io_bus_destroy(&vm->mmio);
}

static uint8_t in8(struct vm *vm, uint16_t port)
{
    uint8_t v = 0;
    io_bus_access(&vm->pio, port, &v, 1, false);
    return v;
}

static uint32_t in32(struct vm *vm, uint16_t port)
{
    uint32_t v = 0;
    io_bus_access(&vm->pio, port, (uint8_t *)&v, 4, false);
    return v;
}

static void out8(struct vm *vm, uint16_t port, uint8_t v)
{
    io_bus_access(&vm->pio, port, &v, 1, true);
}

static void out16(struct vm *vm, uint16_t port, uint16_t v)
{
    io_bus_access(&vm->pio, port, (uint8_t *)&v, 2, true);
}

static uint16_t in16(struct vm *vm, uint16_t port)
{
    uint16_t v = 0;
    io_bus_access(&vm->pio, port, (uint8_t *)&v, 2, false);
    return v;
}

/* Save one device of vm into out (cleared first). */
static int save(struct vm *vm, const char *id, struct state_out *out)
{
    struct device *d = device_find(vm, id);
    CHECK(d != NULL);
    state_out_clear(out);
    return d->ops->save(d, out);
}

/* Load bytes into a device as vm_save.c does: its load, then every byte read. */
static int load(struct vm *vm, const char *id, const void *p, size_t len, char *why)
{
    struct device *d = device_find(vm, id);
    struct state_in in;
    state_in_init(&in, p, len);
    CHECK(d != NULL);
    if (d->ops->load(d, &in) < 0 && state_in_ok(&in))
        state_in_fail(&in, "no reason");
    int r = state_in_end(&in);
    if (why)
        strcpy(why, in.why);
    return r;
}

static void test_serial(void)
{
    struct vm a, b;
    struct state_out out;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    make_vm(&a, &cfg);

    out8(&a, 0x3fb, 0x80); /* DLAB: divisor 0x0c01 */
    out8(&a, 0x3f8, 0x01);
    out8(&a, 0x3f9, 0x0c);
    out8(&a, 0x3fb, 0x1b); /* 8E1 */
    out8(&a, 0x3fa, 0xc1); /* FIFO on, trigger 14 */
    out8(&a, 0x3ff, 0x5a);
    out8(&a, 0x3fc, 0x1b); /* loopback + DTR, RTS, OUT2 */
    out8(&a, 0x3f8, 'h');  /* looped into the receive FIFO */
    out8(&a, 0x3f8, 'i');
    out8(&a, 0x3f9, 0x01); /* receive interrupt */
    CHECK(save(&a, "serial8250", &out) == 0 && !out.failed);

    make_vm(&b, &cfg);
    CHECK(load(&b, "serial8250", out.buf, out.len, why) == 0);
    CHECK(in8(&b, 0x3fb) == 0x1b && in8(&b, 0x3fc) == 0x1b && in8(&b, 0x3ff) == 0x5a);
    CHECK(in8(&b, 0x3f9) == 0x01);
    CHECK((in8(&b, 0x3fa) & 0x0f) == 0x04); /* receive data interrupt pending */
    CHECK(in8(&b, 0x3fa) >> 6 == 3);        /* FIFO enabled */
    CHECK(in8(&b, 0x3fe) == 0xb0);          /* loopback MSR: CTS, DSR, DCD */
    CHECK(in8(&b, 0x3fd) & 0x01);
    CHECK(in8(&b, 0x3f8) == 'h' && in8(&b, 0x3f8) == 'i');
    CHECK(!(in8(&b, 0x3fd) & 0x01));
    CHECK((in8(&b, 0x3fa) & 0x0f) == 0x01); /* nothing pending now */
    out8(&b, 0x3fb, 0x9b);
    CHECK(in8(&b, 0x3f8) == 0x01 && in8(&b, 0x3f9) == 0x0c);

    /* A THR-empty interrupt not yet acknowledged survives too. */
    out8(&a, 0x3fc, 0x00);
    out8(&a, 0x3f9, 0x03);
    CHECK(save(&a, "serial8250", &out) == 0);
    struct vm c;
    make_vm(&c, &cfg);
    CHECK(load(&c, "serial8250", out.buf, out.len, why) == 0);
    CHECK((in8(&c, 0x3fa) & 0x0f) == 0x04); /* the FIFO's bytes first */
    in8(&c, 0x3f8);
    in8(&c, 0x3f8);
    CHECK((in8(&c, 0x3fa) & 0x0f) == 0x02);
    CHECK((in8(&c, 0x3fa) & 0x0f) == 0x01);

    /* Corrupted: a FIFO count past the FIFO, a register bit the UART has not, truncated. */
    uint8_t bad[32];
    memcpy(bad, out.buf, out.len);
    bad[8] = 0x01, bad[9] = 0x01; /* 257 bytes */
    CHECK(load(&c, "serial8250", bad, out.len, why) < 0 && strstr(why, "receive buffer"));
    memcpy(bad, out.buf, out.len);
    bad[0] = 0xf0;
    CHECK(load(&c, "serial8250", bad, out.len, why) < 0 && strstr(why, "interrupt enable"));
    CHECK(load(&c, "serial8250", out.buf, 5, why) < 0 && strstr(why, "ends early"));
    CHECK(load(&c, "serial8250", out.buf, out.len - 1, why) < 0);
    memcpy(bad, out.buf, out.len);
    bad[out.len] = 0;
    CHECK(load(&c, "serial8250", bad, out.len + 1, why) < 0 && strstr(why, "not read"));
    state_out_free(&out);
    drop_vm(&a);
    drop_vm(&b);
    drop_vm(&c);
}

static uint8_t cmos(struct vm *vm, uint8_t reg)
{
    out8(vm, 0x70, reg);
    return in8(vm, 0x71);
}

static void cmos_write(struct vm *vm, uint8_t reg, uint8_t v)
{
    out8(vm, 0x70, reg);
    out8(vm, 0x71, v);
}

static int bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 15);
}

/* The guest's RTC as seconds since 1970 (read in BCD). */
static time_t rtc_time(struct vm *vm)
{
    struct tm tm = {.tm_sec = bcd(cmos(vm, 0)),
                    .tm_min = bcd(cmos(vm, 2)),
                    .tm_hour = bcd(cmos(vm, 4)),
                    .tm_mday = bcd(cmos(vm, 7)),
                    .tm_mon = bcd(cmos(vm, 8)) - 1,
                    .tm_year = bcd(cmos(vm, 0x32)) * 100 + bcd(cmos(vm, 9)) - 1900};
    return timegm(&tm);
}

static void test_rtc(void)
{
    struct vm a, b;
    struct state_out out;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    make_vm(&a, &cfg);

    time_t host = time(NULL);
    CHECK(labs((long)(rtc_time(&a) - host)) <= 2);
    /* The guest sets 2001-02-03 04:05:06 the way Linux does: SET, the fields, SET off. */
    cmos_write(&a, 0x0b, 0x82);
    cmos_write(&a, 0x00, 0x06);
    cmos_write(&a, 0x02, 0x05);
    cmos_write(&a, 0x04, 0x04);
    cmos_write(&a, 0x07, 0x03);
    cmos_write(&a, 0x08, 0x02);
    cmos_write(&a, 0x09, 0x01);
    cmos_write(&a, 0x32, 0x20);
    CHECK(cmos(&a, 0x00) == 0x06 && cmos(&a, 0x09) == 0x01); /* frozen while SET */
    cmos_write(&a, 0x0b, 0x02);
    struct tm set = {
        .tm_sec = 6, .tm_min = 5, .tm_hour = 4, .tm_mday = 3, .tm_mon = 1, .tm_year = 101};
    time_t want = timegm(&set);
    CHECK(labs((long)(rtc_time(&a) - want)) <= 2);
    cmos_write(&a, 0x40, 0xab); /* CMOS RAM */
    cmos_write(&a, 0x0a, 0x27);
    CHECK(save(&a, "rtc", &out) == 0);

    /* Restored two seconds later (as if): the same offset from the host's clock, so later. */
    struct timespec two = {2, 100000000};
    nanosleep(&two, NULL);
    make_vm(&b, &cfg);
    CHECK(load(&b, "rtc", out.buf, out.len, why) == 0);
    time_t t = rtc_time(&b);
    CHECK(t >= want + 2 && t <= want + 5);
    CHECK(cmos(&b, 0x40) == 0xab && cmos(&b, 0x0a) == 0x27 && cmos(&b, 0x0b) == 0x02);
    CHECK(cmos(&b, 0x0d) == 0x80);

    /* An offset of a million years is refused; a truncated section too. */
    uint8_t bad[256];
    memcpy(bad, out.buf, out.len);
    memset(bad + 129, 0x7f, 8);
    CHECK(load(&b, "rtc", bad, out.len, why) < 0 && strstr(why, "too far"));
    memcpy(bad, out.buf, out.len);
    bad[0] = 0x80;
    CHECK(load(&b, "rtc", bad, out.len, why) < 0 && strstr(why, "CMOS index"));
    CHECK(load(&b, "rtc", out.buf, 100, why) < 0 && strstr(why, "ends early"));
    state_out_free(&out);
    drop_vm(&a);
    drop_vm(&b);
}

static void test_i8042(void)
{
    struct vm a, b;
    struct state_out out;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    make_vm(&a, &cfg);

    out8(&a, 0x64, 0x60); /* write the command byte */
    out8(&a, 0x60, 0x47);
    out8(&a, 0x64, 0xaa); /* self test: 0x55 waits in the output buffer */
    CHECK(save(&a, "i8042", &out) == 0);
    make_vm(&b, &cfg);
    CHECK(load(&b, "i8042", out.buf, out.len, why) == 0);
    CHECK((in8(&b, 0x64) & 0x09) == 0x09); /* output full, last write a command */
    CHECK(in8(&b, 0x60) == 0x55);
    out8(&b, 0x64, 0x20);
    CHECK(in8(&b, 0x60) == 0x47);

    /* Waiting for a data byte is kept: the next data write lands in the command byte. */
    out8(&a, 0x64, 0x60);
    CHECK(save(&a, "i8042", &out) == 0);
    CHECK(load(&b, "i8042", out.buf, out.len, why) == 0);
    out8(&b, 0x60, 0x65);
    CHECK(in8(&b, 0x60) == 0x55); /* a never read its self test's answer */
    out8(&b, 0x64, 0x20);
    CHECK(in8(&b, 0x60) == 0x65);

    uint8_t bad[256];
    CHECK(out.len <= sizeof(bad));
    memcpy(bad, out.buf, out.len);
    bad[1] = 0xaa;
    CHECK(load(&b, "i8042", bad, out.len, why) < 0 && strstr(why, "command 0xaa"));
    memcpy(bad, out.buf, out.len);
    bad[3] = 2;
    CHECK(load(&b, "i8042", bad, out.len, why) < 0 && strstr(why, "flag"));
    state_out_free(&out);
    drop_vm(&a);
    drop_vm(&b);
}

static void test_pm(void)
{
    struct vm a, b;
    struct state_out out;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    make_vm(&a, &cfg);

    out16(&a, PM_IO_BASE + 2, 0x0100); /* power button enabled */
    pm_press_power_button(&a);
    out8(&a, PM_RESET_PORT, 0x02);
    uint32_t t0 = in32(&a, PM_TMR_PORT);
    CHECK(save(&a, "acpi-pm", &out) == 0);

    struct timespec pause = {0, 300000000};
    nanosleep(&pause, NULL);
    make_vm(&b, &cfg);
    CHECK(load(&b, "acpi-pm", out.buf, out.len, why) == 0);
    CHECK(in16(&b, PM_IO_BASE) == 0x0100 && in16(&b, PM_IO_BASE + 2) == 0x0100);
    CHECK(in16(&b, PM1_CNT_PORT) & 1);
    CHECK(in8(&b, PM_RESET_PORT) == 0x02);
    /* The timer went on by the time that passed (~0.3 s = ~1.07 M ticks), not from zero. */
    uint32_t d = in32(&b, PM_TMR_PORT) - t0;
    CHECK(d >= 1000000 && d < 3579545);
    out16(&b, PM_IO_BASE, 0x0100); /* write 1 to clear */
    CHECK(in16(&b, PM_IO_BASE) == 0);

    uint8_t bad[32];
    memcpy(bad, out.buf, out.len);
    bad[2] = 0xff, bad[3] = 0xff;
    CHECK(load(&b, "acpi-pm", bad, out.len, why) < 0 && strstr(why, "PM1 enable"));
    memcpy(bad, out.buf, out.len);
    bad[5] |= 0x20; /* SLP_EN */
    CHECK(load(&b, "acpi-pm", bad, out.len, why) < 0 && strstr(why, "PM1 control"));
    state_out_free(&out);
    drop_vm(&a);
    drop_vm(&b);
}

static void test_empty_and_vfio(void)
{
    struct vm a;
    struct state_out out;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    make_vm(&a, &cfg);
    CHECK(save(&a, "legacy-ports", &out) == 0 && out.len == 0);
    CHECK(load(&a, "legacy-ports", NULL, 0, why) == 0);
    CHECK(load(&a, "legacy-ports", "x", 1, why) < 0 && strstr(why, "keeps none"));
    CHECK(save(&a, "vfio-pci", &out) == 0 && out.len == 0);

    /* With --pci: the save fails naming the function (vfio_init is not run here). */
    struct vm_config pci = cfg;
    pci.pci[0] = "0000:03:00.0";
    pci.nr_pci = 1;
    a.cfg = &pci;
    CHECK(save(&a, "vfio-pci", &out) < 0 && out.failed && strstr(out.why, "0000:03:00.0"));
    state_out_free(&out);
    drop_vm(&a);
}

/* A restored VM appends to its console file: what the saved guest wrote stays. */
static void test_console_appends(void)
{
    char path[] = "/tmp/test_hw_state-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char spec[64];
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct vm_config c = cfg;
    c.console = spec;
    struct vm a, b;
    make_vm(&a, &c);
    out8(&a, 0x3f8, 'a');
    serial8250_destroy(&a);
    c.restore = "/dev/null";
    make_vm(&b, &c);
    out8(&b, 0x3f8, 'b');
    serial8250_destroy(&b);
    char buf[8] = {0};
    fd = open(path, O_RDONLY);
    CHECK(read(fd, buf, sizeof(buf)) == 2 && strcmp(buf, "ab") == 0);
    close(fd);
    unlink(path);
    drop_vm(&a);
    drop_vm(&b);
}

int main(void)
{
    hv_log_init("test");
    hv_log_set_level(HV_LOG_ERROR);
    test_serial();
    test_rtc();
    test_i8042();
    test_pm();
    test_empty_and_vfio();
    test_console_appends();
    CHECK_DONE();
}
