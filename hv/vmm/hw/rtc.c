/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The MC146818 CMOS RTC at 0x70/0x71: the host's time (UTC) in BCD, 24-hour
 * mode, and 128 bytes of CMOS RAM. No alarm or periodic interrupts: Linux
 * only reads the time at boot and from hwclock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"
#include "vm.h"

#define RTC_PORT     0x70
#define REG_SEC      0x00
#define REG_MIN      0x02
#define REG_HOUR     0x04
#define REG_WDAY     0x06
#define REG_MDAY     0x07
#define REG_MON      0x08
#define REG_YEAR     0x09
#define REG_A        0x0a
#define REG_B        0x0b
#define REG_C        0x0c
#define REG_D        0x0d
#define REG_CENTURY  0x32
#define REG_B_24H    0x02
#define REG_B_BINARY 0x04

struct rtc_dev {
    pthread_mutex_t lock;
    uint8_t index;
    uint8_t cmos[128];
};

static uint8_t to_bcd(const struct rtc_dev *r, int v)
{
    if (r->cmos[REG_B] & REG_B_BINARY)
        return (uint8_t)v;
    return (uint8_t)((v / 10) << 4 | (v % 10));
}

static uint8_t rtc_reg(struct rtc_dev *r, uint8_t reg)
{
    struct tm tm;
    time_t now = time(NULL);

    gmtime_r(&now, &tm);
    switch (reg) {
    case REG_SEC:
        return to_bcd(r, tm.tm_sec);
    case REG_MIN:
        return to_bcd(r, tm.tm_min);
    case REG_HOUR:
        return to_bcd(r, tm.tm_hour);
    case REG_WDAY:
        return to_bcd(r, tm.tm_wday + 1);
    case REG_MDAY:
        return to_bcd(r, tm.tm_mday);
    case REG_MON:
        return to_bcd(r, tm.tm_mon + 1);
    case REG_YEAR:
        return to_bcd(r, tm.tm_year % 100);
    case REG_CENTURY:
        return to_bcd(r, (tm.tm_year + 1900) / 100);
    case REG_A:
        return r->cmos[REG_A] & 0x7f; /* never "update in progress" */
    case REG_C:
        return 0; /* no interrupt flags */
    case REG_D:
        return 0x80; /* valid RAM and time */
    default:
        return r->cmos[reg];
    }
}

static void rtc_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct rtc_dev *r = opaque;

    if (len != 1) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    pthread_mutex_lock(&r->lock);
    if (off == 0) {
        if (is_write)
            r->index = data[0] & 0x7f; /* bit 7 masks NMIs: ignored */
        else
            data[0] = 0xff;
    } else if (is_write) {
        /* Time writes are dropped (the guest cannot move the host's clock). */
        if (r->index >= REG_A && r->index != REG_C && r->index != REG_D)
            r->cmos[r->index] = data[0];
    } else {
        data[0] = rtc_reg(r, r->index);
    }
    pthread_mutex_unlock(&r->lock);
}

int rtc_init(struct vm *vm)
{
    struct rtc_dev *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    r->cmos[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
    r->cmos[REG_B] = REG_B_24H;
    /* Lives as long as the process: vCPUs may still touch it while exiting. */
    return io_bus_register(&vm->pio, RTC_PORT, 2, rtc_io, r);
}
