/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The producer side of the display protocol (docs/display-protocol.md): one
 * SOCK_SEQPACKET connection to hv-switch per VM. It hands over the scanout
 * memfd, sends damage, and feeds the keyboard and pointer events it gets back
 * to the virtio-input devices. If hv-switch is not there yet or restarts, it
 * reconnects every second and says HELLO and SCANOUT again.
 */
#ifndef HV_VMM_DISPLAY_H
#define HV_VMM_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../switch/proto.h"

struct vm;

/* The display adapter the guest gets. */
enum display_gpu {
    DISPLAY_GPU_VIRTIO, /* virtio-gpu (2D) */
    DISPLAY_GPU_BOCHS,  /* the Bochs VBE display (hw/bochs_vbe.c), for firmware and HVM guests */
};

/* --display SOCKET[,name=N][,colour=RRGGBB][,slot=K][,uivm][,size=WxH][,gpu=virtio|bochs] */
struct display_config {
    char socket[108]; /* sun_path */
    char name[DISP_NAME_MAX];
    uint32_t colour; /* 0xRRGGBB */
    uint32_t slot;   /* 0: first free; 1..9 */
    bool uivm;
    uint32_t width, height; /* the panel offered to the guest */
    enum display_gpu gpu;
};

/* Parse spec; default_name (the VM's name, may be NULL) is used without name=. 0 or -1 + err. */
int display_parse(const char *spec, const char *default_name, struct display_config *cfg, char *err,
                  size_t errlen);

/* Where hv-switch's input events go (virtio-input, or a test). */
struct display_input {
    void *ctx;
    void (*key)(void *ctx, uint32_t code, bool pressed);
    void (*pointer)(void *ctx, uint32_t x, uint32_t y, uint32_t buttons);
    void (*wheel)(void *ctx, int32_t dx, int32_t dy);
    void *tablet_ctx; /* given to pointer and wheel */
};

struct display;

/* Start the connection thread (it connects in the background). NULL on failure, logged. */
struct display *display_start(const struct display_config *cfg, const struct display_input *in);
void display_stop(struct display *d);
/* The picture's size now (the scanout's, else the panel offered). */
void display_size(struct display *d, uint32_t *width, uint32_t *height);
/* True while hv-switch has answered our HELLO (tests). */
bool display_connected(struct display *d);

/* Thread-safe, never block. The fd is dup()ed. */
void display_scanout(struct display *d, int fd, uint32_t width, uint32_t height, uint32_t stride);
/* The same, the picture starting at a page-aligned offset into the memfd. */
void display_scanout_at(struct display *d, int fd, uint64_t offset, uint32_t width, uint32_t height,
                        uint32_t stride);
void display_damage(struct display *d, uint32_t x, uint32_t y, uint32_t w, uint32_t h);
void display_blank(struct display *d);

/*
 * --display: the display connection, virtio-gpu (or the Bochs VBE display
 * with gpu=bochs), a keyboard and a tablet. 0 or -errno.
 */
int virtio_display_create(struct vm *vm, const char *spec);

#endif
