// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the chain handlers and config writes of virtio-net
 * (userspace path, on a socketpair standing for the TAP), virtio-console
 * (its socket backend, with a client), virtio-balloon, virtio-input
 * (keyboard and tablet) and virtio-vsock (config space and event queue:
 * vhost-vsock serves the rest), driven through the transport by vmfuzz.c's
 * guest driver. Op 14 plays the host side of the device it picks: packets
 * and hang-ups from the TAP or the console client, a balloon target, key
 * and pointer events.
 *
 * Checked besides ASan/UBSan: a handful of log lines per guest access at
 * most, and no device writes guest RAM after the reboot that ends each input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../devices.h"
#include "../balloon.h"
#include "../input.h"
#include "log.h"
#include "util.h"
#include "vmfuzz.h"

/*
 * vsock.c, compiled in: virtio_vsock_create() needs /dev/vhost-vsock; here
 * the device gets no vhost fd and its ring start-up is left out, so that the
 * driver reaches DRIVER_OK and the event queue.
 */
#include "../vsock.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm vm;
static struct vm_config cfg = {.name = "fuzz"};
static struct virtio_dev *devs[FZ_MAX_DEVS];
static unsigned ndev;
static int tap_host = -1;   /* the TAP's other end */
static int con_client = -1; /* the console's client */
static struct sockaddr_un con_addr = {.sun_family = AF_UNIX};
static struct virtio_input *kbd, *tablet;

static const struct virtio_ops fuzz_vsock_ops = {.queue_notify = vsock_notify};

static void add_vsock(void)
{
    struct vsock *v = calloc(1, sizeof(*v));
    if (!v || virtio_dev_init(&v->vd, &vm, "virtio-vsock", VIRTIO_ID_VSOCK, 3, 128,
                              1ull << VIRTIO_VSOCK_F_SEQPACKET, 8, &fuzz_vsock_ops, v))
        __builtin_trap();
    v->vhost_fd = -1;
    v->vd.queues[VSOCK_RX].kernel_kick = true;
    v->vd.queues[VSOCK_TX].kernel_kick = true;
    le64_put(v->vd.config, 3);
    if (virtio_dev_start(&v->vd))
        __builtin_trap();
}

static void connect_console(void)
{
    if (con_client >= 0)
        close(con_client);
    con_client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (con_client < 0 || connect(con_client, (struct sockaddr *)&con_addr, sizeof(con_addr)))
        __builtin_trap();
}

static char con_dir[64];

static void cleanup(void)
{
    unlink(con_addr.sun_path);
    rmdir(con_dir);
}

static void setup(void)
{
    int sv[2];
    char dir[] = "/tmp/hv-fuzz-devices-XXXXXX", spec[128];
    hv_log_init("fuzz");
    setenv("HV_VMM_NET_USERSPACE", "1", 1);
    fz_vm_init(&vm);
    vm.cfg = &cfg;
    if (!mkdtemp(dir) || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        __builtin_trap();
    tap_host = sv[1];
    snprintf(con_addr.sun_path, sizeof(con_addr.sun_path), "%s/console", dir);
    snprintf(spec, sizeof(spec), "socket:%s", con_addr.sun_path);
    if (virtio_net_create_fd(&vm, sv[0], "fuzz0") || virtio_console_create(&vm, spec) ||
        virtio_balloon_create(&vm) || !(kbd = virtio_input_create(&vm, INPUT_KEYBOARD)) ||
        !(tablet = virtio_input_create(&vm, INPUT_TABLET)))
        __builtin_trap();
    add_vsock();
    fz_vm_freeze(&vm);
    ndev = fz_virtio_devs(&vm, devs, FZ_MAX_DEVS);
    if (ndev != 6)
        __builtin_trap();
    snprintf(con_dir, sizeof(con_dir), "%s", dir);
    atexit(cleanup);
}

static void drain(int fd)
{
    uint8_t buf[2048];
    while (fd >= 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

/* The host's side of each device (devs[] is in creation order). */
static void host(struct vm *v, struct virtio_dev *vd, struct fz *f)
{
    (void)v;
    uint8_t what = fz_u8(f);
    uint8_t buf[2048];
    size_t len;

    if (vd == devs[0] || vd == devs[1]) { /* net, console: bytes from the other end */
        int fd = vd == devs[0] ? tap_host : con_client;
        switch (what & 3) {
        case 0:
        case 1:
            len = what & 1 ? fz_u16(f) % sizeof(buf) : fz_u8(f);
            memset(buf, 0, len);
            memcpy(buf, f->p, MIN(len, f->n));
            f->p += MIN(len, f->n), f->n -= MIN(len, f->n);
            if (fd >= 0 && send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN)
                log_debug("fuzz: host send: %s", strerror(errno));
            break;
        case 2:
            if (vd == devs[1] && con_client >= 0) { /* the client hangs up */
                close(con_client);
                con_client = -1;
            } else {
                drain(fd);
            }
            break;
        default:
            if (vd == devs[1])
                connect_console(); /* a new client replaces the old one */
            break;
        }
        fz_pump(vd);
    } else if (vd == devs[2]) {
        virtio_balloon_set_target(v, (uint64_t)fz_u32(f) * 4096);
        uint64_t actual;
        virtio_balloon_get_actual(v, &actual);
    } else if (vd == devs[3] || vd == devs[4]) {
        struct virtio_input *in = vd == devs[3] ? kbd : tablet;
        uint32_t a = fz_u32(f);
        if (what % 3 == 0) {
            virtio_input_key(in, a, fz_u8(f) & 1);
        } else if (what % 3 == 1) {
            uint32_t y = fz_u32(f);
            virtio_input_pointer(in, a, y, fz_u32(f));
        } else {
            virtio_input_wheel(in, (int32_t)a, (int32_t)fz_u32(f));
        }
        if (what & 0x80)
            fz_pump(vd);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ndev)
        setup();
    /* The host side starts afresh too: an empty TAP, a console client just connected. */
    drain(tap_host);
    connect_console();
    fz_pump(devs[1]);
    struct fz f = {data, size};
    fz_log_begin();
    unsigned ops = fz_run_driver(&vm, &f, 512, host);
    fz_vm_restart(&vm);
    drain(tap_host);
    drain(con_client);
    for (unsigned i = 0; i < ndev; i++)
        fz_pump(devs[i]); /* kicks still pending at the reset, input events queued */
    unsigned lines = fz_log_end();
    if (lines > 4 * ops + 8)
        __builtin_trap(); /* the guest can make us log without bound */
    if (!fz_ram_is_zero(&vm))
        __builtin_trap(); /* a device wrote guest RAM after the reset */
    return 0;
}
