/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virtio 1.x modern PCI transport shared by every virtio device of
 * hv-vmm. A device fills a virtio_ops, calls virtio_dev_init() then
 * virtio_dev_start(); the transport owns the PCI function, the common
 * configuration, feature negotiation, the queues, MSI-X and the device's
 * thread, which waits on the queue kicks (ioeventfds) and on extra fds the
 * device adds (a TAP, a socket).
 *
 * Locking: `lock` guards the registers (vCPU threads); `qlock` is held while
 * the device serves its queues (device thread). Order: cfg_lock -> lock ->
 * qlock. A reset takes both, so it waits for the request in flight.
 */
#ifndef HV_VMM_VIRTIO_VIRTIO_H
#define HV_VMM_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../device.h"
#include "../msix.h"
#include "../pci.h"
#include "le.h"
#include "queue.h"

struct vm;
struct virtio_dev;
struct state_in;
struct state_out;

/* BAR 0 layout; the MSI-X table sits alone in BAR 2. */
#define VIRTIO_BAR         0
#define VIRTIO_MSIX_BAR    2
#define VIRTIO_BAR_SIZE    0x4000
#define VIRTIO_COMMON_OFF  0x0000
#define VIRTIO_ISR_OFF     0x1000
#define VIRTIO_DEVCFG_OFF  0x2000
#define VIRTIO_NOTIFY_OFF  0x3000
#define VIRTIO_NOTIFY_MULT 4
#define VIRTIO_MAX_QUEUES  64
#define VIRTIO_CONFIG_MAX  256
#define VIRTIO_MAX_FDS     8
#define VIRTIO_NO_VECTOR   0xffff

struct virtio_ops {
    /* A queue was kicked. Device thread, qlock held, device is DRIVER_OK. */
    void (*queue_notify)(struct virtio_dev *vd, unsigned q);
    /* Optional: DRIVER_OK was just set (lock + qlock held). 0 or -errno. */
    int (*start)(struct virtio_dev *vd);
    /* Optional: the driver reset the device (lock + qlock held). */
    void (*reset)(struct virtio_dev *vd);
    /* Optional: the driver wrote device config bytes (lock held). */
    void (*config_write)(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len);
    /*
     * Optional: stop and restart work done outside the device thread (vhost
     * workers) without losing its place in the rings (lock + qlock held;
     * the device thread is stopped). docs/device-model.md.
     */
    void (*quiesce)(struct virtio_dev *vd);
    void (*resume)(struct virtio_dev *vd);
    /*
     * Optional: the device's own state after the transport's (state.h). save
     * runs quiesced (lock + qlock held); load runs quiesced after the
     * transport loaded status, features and queues (lock + qlock held),
     * and restarts vhost rings from the loaded positions on resume.
     * Returns 0, or -1 after state_fail() / state_in_fail().
     */
    int (*save)(struct virtio_dev *vd, struct state_out *out);
    int (*load)(struct virtio_dev *vd, struct state_in *in);
};

/*
 * Serve one chain: return the bytes written into its buffers, or
 * VIRTIO_CHAIN_RETRY to leave it queued for later, or VIRTIO_CHAIN_KEEP when
 * the device holds on to it and pushes it itself later. A device that keeps
 * chains saves their heads in its own part: the saved ring positions count
 * them as popped, not yet used (docs/device-model.md, "Held chains").
 */
#define VIRTIO_CHAIN_RETRY (-1)
#define VIRTIO_CHAIN_KEEP  (-2)
typedef int64_t (*virtio_chain_fn)(struct virtio_dev *vd, struct vq_chain *c, void *arg);
typedef void (*virtio_fd_fn)(struct virtio_dev *vd, int fd, uint32_t events, void *arg);

struct virtio_queue {
    struct vq vq;
    uint16_t max_size, size;
    uint16_t msix_vector;
    bool enabled;
    bool kernel_kick; /* vhost consumes kick_efd: the device thread leaves it alone */
    uint64_t desc, driver, device;
    int kick_efd;
};

struct virtio_dev {
    struct device dev; /* on the VM's device list from virtio_dev_start() */
    struct pci_device pci;
    struct msix msix;
    struct vm *vm;
    const char *name;
    const struct virtio_ops *ops;
    void *priv;

    pthread_mutex_t lock;
    pthread_mutex_t qlock;

    uint64_t host_features;
    uint64_t driver_features; /* what the driver wrote */
    uint64_t features;        /* negotiated, valid from FEATURES_OK */
    uint32_t dfsel, gfsel;
    uint8_t status;
    uint8_t config_gen;
    uint16_t config_vector;
    uint16_t queue_sel;
    bool needs_reset; /* atomic: set by any thread */
    uint8_t isr;      /* atomic */
    bool logged_fail, logged_early_kick;

    unsigned nr_queues;
    struct virtio_queue queues[VIRTIO_MAX_QUEUES];
    uint8_t config[VIRTIO_CONFIG_MAX];
    uint32_t config_len;

    uint8_t pcicfg_cap;     /* config offset of the PCI_CFG capability */
    struct vq_chain *chain; /* scratch for the device thread */
    uint64_t ioev_base;     /* BAR 0 address the ioeventfds are bound at, 0 if none */
    bool kick_after_load;   /* restored with DRIVER_OK: resume kicks the running queues */

    /* The device thread. */
    int epfd, stop_efd;
    pthread_t thread;
    bool thread_running;
    struct {
        int fd;
        virtio_fd_fn fn;
        void *arg;
    } fds[VIRTIO_MAX_FDS];
    unsigned nr_fds;
};

/*
 * Set up the PCI function (IDs, capabilities, MSI-X) and queues. type is the
 * virtio device ID; features the device-specific bits (the transport adds
 * VERSION_1, INDIRECT_DESC and EVENT_IDX). Returns 0 or -errno.
 */
int virtio_dev_init(struct virtio_dev *vd, struct vm *vm, const char *name, uint16_t type,
                    unsigned nr_queues, uint16_t queue_size, uint64_t features, uint32_t config_len,
                    const struct virtio_ops *ops, void *priv);
/* Put the function on the PCI bus and start the device thread. */
int virtio_dev_start(struct virtio_dev *vd);
/* Stop the thread and release fds (the VM is going away, or a test ends). */
void virtio_dev_destroy(struct virtio_dev *vd);
/*
 * The device's part of the VM's lifecycle (also reached through vd->dev):
 * quiesce stops the device thread (and vhost), resume starts it again,
 * reset puts transport, queues, MSI-X and PCI config back to power-on.
 */
void virtio_dev_quiesce(struct virtio_dev *vd);
void virtio_dev_resume(struct virtio_dev *vd);
void virtio_dev_reset(struct virtio_dev *vd);
/*
 * Save / restore (docs/device-model.md), also reached through vd->dev's
 * device_ops: PCI config space (pci_device_save), MSI-X (msix_save), the
 * transport (status, features, selectors, config, queues and their ring
 * positions), then ops->save. Load runs quiesced on a device realized from
 * the same command line; it checks every value, sets the rings up at the
 * saved positions (vq_setup with the negotiated EVENT_IDX / INDIRECT), then
 * calls ops->load; resume kicks the running queues. 0, or -1 with the
 * reason in out->why / in->why.
 */
int virtio_dev_save(struct virtio_dev *vd, struct state_out *out);
int virtio_dev_load(struct virtio_dev *vd, struct state_in *in);

/* Watch fd on the device thread (before virtio_dev_start). */
int virtio_add_fd(struct virtio_dev *vd, int fd, uint32_t events, virtio_fd_fn fn, void *arg);
/* Stop watching fd (device thread; the caller closes it). */
void virtio_del_fd(struct virtio_dev *vd, int fd);
/* Change the events watched on fd (device thread). */
int virtio_mod_fd(struct virtio_dev *vd, int fd, uint32_t events);

static inline bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
    return (vd->features >> bit) & 1;
}

/* DRIVER_OK set and no reset needed: queues may be served. */
bool virtio_ready(struct virtio_dev *vd);

/*
 * Pop each available chain of queue q, hand it to fn and push it back; then
 * interrupt the driver once. Stops early on VIRTIO_CHAIN_RETRY.
 */
void virtio_serve_queue(struct virtio_dev *vd, unsigned q, virtio_chain_fn fn, void *arg);

/* Interrupt the driver for queue q if the ring asks for it (after vq_push). */
void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q);

/*
 * The driver broke the protocol or the device hit a fatal error: set
 * DEVICE_NEEDS_RESET, tell the driver (config interrupt) and log once per reset.
 */
void virtio_fail(struct virtio_dev *vd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Change device config bytes and notify the driver. Not with qlock held. */
void virtio_config_update(struct virtio_dev *vd, uint32_t off, const void *data, uint32_t len);

/* The BAR 0 handler (tests drive the transport through it). */
void virtio_bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

/* Serve a kick of queue q as the device thread would (tests call it directly). */
void virtio_handle_kick(struct virtio_dev *vd, unsigned q);

#endif
