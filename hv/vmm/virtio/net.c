// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-net (virtio 1.2 §5.1) on a host TAP interface. With /dev/vhost-net
 * the kernel moves the packets between the rings and the TAP; without it the
 * device thread does, one packet per chain (no merged RX buffers, no guest
 * TSO, so every packet fits one MTU-sized buffer). The TAP carries the
 * 12-byte virtio_net_hdr itself (IFF_VNET_HDR), so checksum and TSO offloads
 * pass through untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../devices.h"
#include "../vm.h"
#include "log.h"
#include "sandbox.h"
#include "state.h"
#include "vhost.h"
#include "virtio.h"

#define NET_RX         0
#define NET_TX         1
#define NET_QUEUE_SIZE 256
#define NET_HDR_LEN    12 /* virtio_net_hdr_v1: num_buffers included (VERSION_1) */
#define NET_CONFIG_LEN 12
#define BIT(n)         (1ull << (n))

struct net {
    struct virtio_dev vd;
    int tap_fd;
    int vhost_fd; /* -1: userspace path */
    bool vhost_running;
    bool rx_waiting; /* TAP has data but the guest posted no RX buffer */
    char ifname[IFNAMSIZ];
};

static const unsigned net_rings[] = {NET_RX, NET_TX};

static int tap_open(const char *ifname)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        log_err("cannot open /dev/net/tun: %s", strerror(err));
        return -err;
    }
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    int hdr = NET_HDR_LEN;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        int err = errno;
        log_err("cannot attach to TAP interface %s: %s%s", ifname, strerror(err),
                err == EPERM ? " (create it with `ip tuntap add mode tap user USER`)" : "");
        close(fd);
        return -err;
    }
    return fd;
}

/* Tell the TAP which offloads the guest accepts on receive. */
static void tap_set_offload(struct net *n)
{
    unsigned off = 0;
    if (virtio_has_feature(&n->vd, VIRTIO_NET_F_GUEST_CSUM)) {
        off |= TUN_F_CSUM;
        if (virtio_has_feature(&n->vd, VIRTIO_NET_F_GUEST_TSO4))
            off |= TUN_F_TSO4;
        if (virtio_has_feature(&n->vd, VIRTIO_NET_F_GUEST_TSO6))
            off |= TUN_F_TSO6;
        if (virtio_has_feature(&n->vd, VIRTIO_NET_F_GUEST_ECN))
            off |= TUN_F_TSO_ECN;
    }
    if (ioctl(n->tap_fd, TUNSETOFFLOAD, off) < 0)
        log_warn("%s: TUNSETOFFLOAD failed: %s", n->vd.name, strerror(errno));
}

/* ---- userspace path ---- */

static int64_t net_tx_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    struct net *n = arg;
    /* The kernel checks the vnet header; a dropped packet is what a NIC does too. */
    if (c->nr_out && writev(n->tap_fd, c->iov, (int)c->nr_out) < 0 && errno != EAGAIN)
        log_debug("%s: TAP write failed: %s", vd->name, strerror(errno));
    return 0;
}

static int64_t net_rx_chain(struct virtio_dev *vd, struct vq_chain *c, void *arg)
{
    struct net *n = arg;
    if (c->in_len < NET_HDR_LEN) {
        virtio_fail(vd, "receive buffer smaller than the packet header");
        return 0;
    }
    ssize_t r = readv(n->tap_fd, vq_chain_in(c), (int)c->nr_in);
    if (r <= 0)
        return VIRTIO_CHAIN_RETRY; /* nothing to read: keep the buffer */
    /* One buffer per packet: num_buffers is 1 (the TAP leaves it alone). */
    uint8_t one[2] = {1, 0};
    iov_from_buf(vq_chain_in(c), c->nr_in, 10, one, 2);
    return r;
}

static void net_rx(struct net *n)
{
    struct virtio_queue *q = &n->vd.queues[NET_RX];
    if (!virtio_ready(&n->vd) || !q->enabled)
        return;
    virtio_serve_queue(&n->vd, NET_RX, net_rx_chain, n);
    /* Out of buffers with packets waiting: sleep until the driver posts more. */
    bool starved = !vq_has_avail(&q->vq);
    if (starved != n->rx_waiting) {
        n->rx_waiting = starved;
        virtio_mod_fd(&n->vd, n->tap_fd, starved ? 0 : EPOLLIN);
    }
}

static void net_tap_event(struct virtio_dev *vd, int fd, uint32_t events, void *arg)
{
    (void)vd;
    (void)fd;
    (void)events;
    struct net *n = arg;
    if (!virtio_ready(&n->vd)) {
        /* Nobody to give packets to: stop polling until DRIVER_OK kicks RX. */
        n->rx_waiting = true;
        virtio_mod_fd(&n->vd, n->tap_fd, 0);
        return;
    }
    net_rx(n);
}

static void net_notify(struct virtio_dev *vd, unsigned q)
{
    struct net *n = vd->priv;
    if (q == NET_TX) {
        virtio_serve_queue(vd, q, net_tx_chain, n);
    } else if (q == NET_RX && n->rx_waiting) {
        n->rx_waiting = false;
        virtio_mod_fd(vd, n->tap_fd, EPOLLIN);
    }
}

/* ---- lifecycle ---- */

static int net_start(struct virtio_dev *vd)
{
    struct net *n = vd->priv;
    tap_set_offload(n);
    if (n->vhost_fd < 0)
        return 0;
    int ret = vhost_start_rings(vd, n->vhost_fd, net_rings, 2);
    for (unsigned i = 0; ret == 0 && i < 2; i++) {
        struct vhost_vring_file b = {.index = net_rings[i], .fd = n->tap_fd};
        if (ioctl(n->vhost_fd, VHOST_NET_SET_BACKEND, &b) < 0) {
            ret = -errno;
            log_err("%s: VHOST_NET_SET_BACKEND failed: %s", vd->name, strerror(errno));
        }
    }
    n->vhost_running = ret == 0;
    return ret;
}

static void net_reset(struct virtio_dev *vd)
{
    struct net *n = vd->priv;
    if (n->vhost_fd >= 0 && n->vhost_running) {
        for (unsigned i = 0; i < 2; i++) {
            struct vhost_vring_file b = {.index = net_rings[i], .fd = -1};
            ioctl(n->vhost_fd, VHOST_NET_SET_BACKEND, &b);
        }
        vhost_stop_rings(n->vhost_fd, net_rings, 2);
        n->vhost_running = false;
    }
}

/* vhost-net keeps each ring's position while it has no backend: pausing is detaching the TAP. */
static void net_set_backend(struct net *n, int fd)
{
    for (unsigned i = 0; i < 2; i++) {
        struct vhost_vring_file b = {.index = net_rings[i], .fd = fd};
        if (ioctl(n->vhost_fd, VHOST_NET_SET_BACKEND, &b) < 0)
            log_warn("%s: VHOST_NET_SET_BACKEND: %s", n->vd.name, strerror(errno));
    }
}

static void net_quiesce(struct virtio_dev *vd)
{
    struct net *n = vd->priv;
    if (n->vhost_fd >= 0 && n->vhost_running) {
        net_set_backend(n, -1);
        vhost_sync_rings(vd, n->vhost_fd, net_rings, 2); /* what a save keeps */
    }
}

static void net_resume(struct virtio_dev *vd)
{
    struct net *n = vd->priv;
    if (n->vhost_fd >= 0 && n->vhost_running)
        net_set_backend(n, n->tap_fd);
}

/*
 * Restored (quiesced, the transport loaded the rings at their saved
 * positions): the TAP offloads follow the negotiated features again, and
 * vhost-net is programmed at those positions; resume attaches the TAP.
 * Nothing of its own is saved: the packets in flight are the TAP's.
 */
static int net_load(struct virtio_dev *vd, struct state_in *in)
{
    struct net *n = vd->priv;
    if (!virtio_ready(vd))
        return 0;
    tap_set_offload(n);
    if (n->vhost_fd < 0)
        return 0;
    int ret = vhost_start_rings(vd, n->vhost_fd, net_rings, 2);
    if (ret < 0)
        return state_in_fail(in, "cannot start vhost-net at the saved ring positions: %s",
                             strerror(-ret));
    n->vhost_running = true;
    return 0;
}

static const struct virtio_ops net_ops = {
    .load = net_load,
    .queue_notify = net_notify,
    .start = net_start,
    .reset = net_reset,
    .quiesce = net_quiesce,
    .resume = net_resume,
};

/* A stable, locally administered MAC derived from the interface name. */
static void make_mac(const char *ifname, uint8_t *mac)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = ifname; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    mac[0] = 0x02;
    mac[1] = 0x68; /* 'h' */
    mac[2] = 0x76; /* 'v' */
    mac[3] = (h >> 16) & 0xff;
    mac[4] = (h >> 8) & 0xff;
    mac[5] = h & 0xff;
}

int virtio_net_create(struct vm *vm, const char *tap_ifname)
{
    if (!tap_ifname || !*tap_ifname || strlen(tap_ifname) >= IFNAMSIZ) {
        log_err("--net tap=IFNAME needs an interface name of 1 to %d characters", IFNAMSIZ - 1);
        return -EINVAL;
    }
    /*
     * A TAP is an interface of the network namespace it is opened in: the
     * host's, entered by this thread for the open alone (sandbox_ns.c); the
     * device thread started below is then in hv-vmm's own.
     */
    const struct sandbox_config *sb = vm->cfg ? &vm->cfg->sandbox : NULL;
    if (sandbox_net_host(sb, true) < 0)
        return -EPERM;
    int fd = tap_open(tap_ifname);
    if (sandbox_net_host(sb, false) < 0) {
        if (fd >= 0)
            close(fd);
        return -EPERM;
    }
    return fd < 0 ? fd : virtio_net_create_fd(vm, fd, tap_ifname);
}

int virtio_net_create_fd(struct vm *vm, int tap_fd, const char *tap_ifname)
{
    struct net *n = calloc(1, sizeof(*n));
    if (!n) {
        close(tap_fd);
        return -ENOMEM;
    }
    snprintf(n->ifname, sizeof(n->ifname), "%s", tap_ifname);
    n->vhost_fd = -1;
    n->tap_fd = tap_fd;

    uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_CSUM) |
                 BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4) |
                 BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN);
    /* HV_VMM_NET_USERSPACE=1 keeps the packets in hv-vmm even where vhost-net exists
     * (tests of the userspace path, benchmarks). */
    const char *us = getenv("HV_VMM_NET_USERSPACE");
    int vfd = us && *us && strcmp(us, "0") ? -1 : vhost_open("/dev/vhost-net");
    uint64_t vf = vfd >= 0 ? vhost_features(vfd) : 0;
    if (vfd >= 0 && (vf & BIT(VIRTIO_F_VERSION_1))) {
        n->vhost_fd = vfd;
        /* vhost merges RX buffers itself, so large receive offloads are fine. */
        f |= BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |
             BIT(VIRTIO_NET_F_GUEST_ECN);
        if (vf & BIT(VIRTIO_NET_F_MRG_RXBUF))
            f |= BIT(VIRTIO_NET_F_MRG_RXBUF);
    } else if (vfd >= 0) {
        close(vfd);
    }

    int ret = virtio_dev_init(&n->vd, vm, "virtio-net", VIRTIO_ID_NET, 2, NET_QUEUE_SIZE, f,
                              NET_CONFIG_LEN, &net_ops, n);
    if (ret)
        goto err;
    n->vd.pci.class_code = 0x020000; /* network controller, Ethernet */
    uint8_t *c = n->vd.config;
    static const uint8_t no_mac[6];
    if (memcmp(vm->cfg->net_mac, no_mac, 6) != 0)
        memcpy(c, vm->cfg->net_mac, 6); /* --mac */
    else
        make_mac(tap_ifname, c);
    le16_put(c + 6, VIRTIO_NET_S_LINK_UP);
    le16_put(c + 8, 1); /* max_virtqueue_pairs */
    if (n->vhost_fd >= 0) {
        /* Ring features beyond what vhost serves must not be offered. */
        n->vd.host_features &= vf | (f & ~BIT(VIRTIO_NET_F_MRG_RXBUF));
        n->vd.queues[NET_RX].kernel_kick = true;
        n->vd.queues[NET_TX].kernel_kick = true;
    } else if ((ret = virtio_add_fd(&n->vd, n->tap_fd, EPOLLIN, net_tap_event, n))) {
        goto err;
    }
    if ((ret = virtio_dev_start(&n->vd)))
        return ret;
    log_info("virtio-net: TAP %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, %s", tap_ifname, c[0], c[1],
             c[2], c[3], c[4], c[5], n->vhost_fd >= 0 ? "vhost-net" : "userspace");
    return 0;
err:
    if (n->vhost_fd >= 0)
        close(n->vhost_fd);
    close(n->tap_fd);
    free(n);
    return ret;
}
