/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The MC146818 CMOS RTC at 0x70/0x71: the host's time (UTC) plus an offset
 * the guest sets by writing the time registers, in BCD or binary, 24-hour
 * mode, and 128 bytes of CMOS RAM. No alarm or periodic interrupts: Linux
 * only reads the time at boot and from hwclock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"
#include "state.h"
#include "util.h"
#include "vm.h"
#include "x86/aml.h"

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
#define REG_B_SET    0x80 /* the guest is setting the time: the clock is frozen */

/*
 * Memory size: KiB below 640 KiB, KiB above 1 MiB (2 bytes, at two places),
 * 64 KiB units above 16 MiB (2 bytes) and above 4 GiB (3 bytes).
 */
#define CMOS_BASE_MEM     0x15
#define CMOS_EXT_MEM      0x17
#define CMOS_EXT_MEM2     0x30
#define CMOS_MEM_OVER_16M 0x34
#define CMOS_MEM_OVER_4G  0x5b
#define CMOS_NR_CPUS      0x5f /* vCPUs - 1 */

/* The guest may run its clock up to 10000 years away from the host's. */
#define RTC_MAX_OFFSET (10000ll * 366 * 86400)

struct rtc_dev {
    pthread_mutex_t lock;
    uint8_t index;
    /*
     * CMOS RAM. The time registers (0-9 and the century) hold what the guest
     * sees only while REG_B_SET is on; otherwise they are computed.
     */
    uint8_t cmos[128];
    int64_t offset; /* guest time - host time, seconds */
};

static bool is_time_reg(uint8_t reg)
{
    return reg <= REG_YEAR || reg == REG_CENTURY;
}

static uint8_t to_bcd(const struct rtc_dev *r, int v)
{
    if (v < 0)
        v = 0; /* a guest clock set before year 0 */
    if (r->cmos[REG_B] & REG_B_BINARY)
        return (uint8_t)v;
    return (uint8_t)((v / 10) << 4 | (v % 10));
}

static int from_bcd(const struct rtc_dev *r, uint8_t v)
{
    if (r->cmos[REG_B] & REG_B_BINARY)
        return v;
    return (v >> 4) * 10 + (v & 0x0f);
}

/* The guest's time into its registers (gmtime_r fails only for absurd offsets, refused on load). */
static void fill_time(struct rtc_dev *r)
{
    struct tm tm;
    time_t now = time(NULL) + (time_t)r->offset;

    if (!gmtime_r(&now, &tm))
        memset(&tm, 0, sizeof(tm));
    r->cmos[REG_SEC] = to_bcd(r, tm.tm_sec);
    r->cmos[REG_MIN] = to_bcd(r, tm.tm_min);
    r->cmos[REG_HOUR] = to_bcd(r, tm.tm_hour);
    r->cmos[REG_WDAY] = to_bcd(r, tm.tm_wday + 1);
    r->cmos[REG_MDAY] = to_bcd(r, tm.tm_mday);
    r->cmos[REG_MON] = to_bcd(r, tm.tm_mon + 1);
    r->cmos[REG_YEAR] = to_bcd(r, tm.tm_year % 100);
    r->cmos[REG_CENTURY] = to_bcd(r, (tm.tm_year + 1900) / 100);
}

/* The time registers as the guest wrote them become the new offset (timegm normalises). */
static void commit_time(struct rtc_dev *r)
{
    struct tm tm = {
        .tm_sec = from_bcd(r, r->cmos[REG_SEC]),
        .tm_min = from_bcd(r, r->cmos[REG_MIN]),
        .tm_hour = from_bcd(r, r->cmos[REG_HOUR]),
        .tm_mday = from_bcd(r, r->cmos[REG_MDAY]),
        .tm_mon = from_bcd(r, r->cmos[REG_MON]) - 1,
        .tm_year = from_bcd(r, r->cmos[REG_CENTURY]) * 100 + from_bcd(r, r->cmos[REG_YEAR]) - 1900,
    };
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return;
    int64_t off = (int64_t)t - (int64_t)time(NULL);
    if (off > -RTC_MAX_OFFSET && off < RTC_MAX_OFFSET)
        r->offset = off;
}

static uint8_t rtc_reg(struct rtc_dev *r, uint8_t reg)
{
    if (is_time_reg(reg)) {
        if (!(r->cmos[REG_B] & REG_B_SET))
            fill_time(r);
        return r->cmos[reg];
    }
    switch (reg) {
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

static void rtc_write(struct rtc_dev *r, uint8_t reg, uint8_t v)
{
    if (is_time_reg(reg)) {
        /* Outside SET, one field changes and the clock runs on from there. */
        bool frozen = r->cmos[REG_B] & REG_B_SET;
        if (!frozen)
            fill_time(r);
        r->cmos[reg] = v;
        if (!frozen)
            commit_time(r);
    } else if (reg == REG_B) {
        bool was = r->cmos[REG_B] & REG_B_SET, now = v & REG_B_SET;
        if (was && !now)
            commit_time(r); /* in the encoding the fields were written in */
        r->cmos[REG_B] = v;
        if (!was && now)
            fill_time(r); /* frozen at this second, in the new encoding */
    } else if (reg != REG_C && reg != REG_D) {
        r->cmos[reg] = v;
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
        rtc_write(r, r->index, data[0]); /* the host's clock is never moved */
    } else {
        data[0] = rtc_reg(r, r->index);
    }
    pthread_mutex_unlock(&r->lock);
}

/*
 * The offset, not the time: a restored guest reads the host's time now plus
 * the offset it had set, never the time it was saved at.
 */
int rtc_save(struct vm *vm, struct state_out *out)
{
    struct rtc_dev *r = vm->rtc;

    pthread_mutex_lock(&r->lock);
    state_put_u8(out, r->index);
    state_put_bytes(out, r->cmos, sizeof(r->cmos));
    state_put_u64(out, (uint64_t)r->offset);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int rtc_load(struct vm *vm, struct state_in *in)
{
    struct rtc_dev *r = vm->rtc;
    uint8_t cmos[128];

    uint8_t index = state_get_u8(in);
    state_get_bytes(in, cmos, sizeof(cmos));
    int64_t offset = (int64_t)state_get_u64(in);
    if (!state_in_ok(in))
        return -1;
    if (index > 0x7f)
        return state_in_fail(in, "the CMOS index is %u, past the 128 bytes", index);
    if (offset <= -RTC_MAX_OFFSET || offset >= RTC_MAX_OFFSET)
        return state_in_fail(in, "the guest's clock is %lld s away from the host's: too far",
                             (long long)offset);
    pthread_mutex_lock(&r->lock);
    r->index = index;
    memcpy(r->cmos, cmos, sizeof(cmos));
    r->offset = offset;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/*
 * The memory-size bytes a PC BIOS leaves in CMOS, which SeaBIOS reads for
 * the RAM below 4 GiB before it reads fw_cfg's etc/e820, and the CPU count.
 */
static void fill_memory_size(struct rtc_dev *r, const struct vm *vm)
{
    uint64_t low = vm->mem.nr_regions ? vm->mem.regions[0].size : 0;
    uint64_t high = vm->mem.nr_regions > 1 ? vm->mem.regions[1].size : 0;
    uint64_t ext_kb = low > (1u << 20) ? MIN((low - (1u << 20)) >> 10, 0xffff) : 0;
    uint64_t over16m = low > (16u << 20) ? MIN((low - (16u << 20)) >> 16, 0xffff) : 0;
    uint64_t over4g = MIN(high >> 16, 0xffffff);

    r->cmos[CMOS_BASE_MEM] = 640 & 0xff; /* KiB below 640 KiB */
    r->cmos[CMOS_BASE_MEM + 1] = 640 >> 8;
    r->cmos[CMOS_EXT_MEM] = r->cmos[CMOS_EXT_MEM2] = (uint8_t)ext_kb;
    r->cmos[CMOS_EXT_MEM + 1] = r->cmos[CMOS_EXT_MEM2 + 1] = (uint8_t)(ext_kb >> 8);
    r->cmos[CMOS_MEM_OVER_16M] = (uint8_t)over16m;
    r->cmos[CMOS_MEM_OVER_16M + 1] = (uint8_t)(over16m >> 8);
    r->cmos[CMOS_MEM_OVER_4G] = (uint8_t)over4g;
    r->cmos[CMOS_MEM_OVER_4G + 1] = (uint8_t)(over4g >> 8);
    r->cmos[CMOS_MEM_OVER_4G + 2] = (uint8_t)(over4g >> 16);
    r->cmos[CMOS_NR_CPUS] = vm->nr_vcpus ? (uint8_t)(vm->nr_vcpus - 1) : 0;
}

int rtc_init(struct vm *vm)
{
    struct rtc_dev *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    r->cmos[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
    r->cmos[REG_B] = REG_B_24H;
    fill_memory_size(r, vm);
    vm->rtc = r;
    /* Lives as long as the process: vCPUs may still touch it while exiting. */
    return io_bus_register(&vm->pio, RTC_PORT, 2, rtc_io, r);
}

/* vCPUs are stopped: nothing reaches the ports any more. */
void rtc_destroy(struct vm *vm)
{
    struct rtc_dev *d = vm->rtc;
    if (!d)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d);
    vm->rtc = NULL;
}

/* \_SB.RTC (PNP0B00), with IRQ 8 as on a PC (this RTC raises no interrupt yet). */
void rtc_aml(struct vm *vm, struct aml *a)
{
    (void)vm;
    static const struct aml_io io = {RTC_PORT, 2};
    static const uint8_t irq = 8;
    aml_isa_device(a, "RTC", "PNP0B00", -1, &io, 1, &irq, 1);
}
