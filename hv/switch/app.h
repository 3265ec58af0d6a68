/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hv-switch's state, shared by its SDL-side modules (main thread only). */
#ifndef HV_SWITCH_APP_H
#define HV_SWITCH_APP_H

#include "focus.h"
#include "layout.h"
#include "proto.h"
#include "registry.h"

#include <SDL.h>
#include <linux/input.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_CLIENTS (REG_MAX_VMS + 8) /* VMs plus connections still saying hello */
/* A connection that has not said hello by then is closed: silent ones cannot fill the slots. */
#define HELLO_TIMEOUT_NS (5ull * 1000000000u)
#define ABSPTR_MAX       4 /* tablets read directly on KMSDRM (absptr.c) */
#define CTL_CLIENTS      8 /* control connections (control.c) */

/* A tablet read by hv-switch itself (absptr.c). */
struct absptr {
    int fd;
    char path[32]; /* /dev/input/eventN: how SDL's events from it are told apart */
    struct input_absinfo ax, ay;
    int x, y;     /* raw */
    bool dropped; /* SYN_DROPPED seen: events skipped until the next SYN_REPORT */
};

/* One producer connection; its address is stable (registry entries point here). */
struct client {
    bool used;
    int fd;
    int vm_id;            /* 0 before hello */
    uint64_t accepted_ns; /* a client with no hello by HELLO_TIMEOUT_NS after this is closed */
    struct disp_conn conn;
    bool drop_logged;
    /* The current scanout. */
    const uint8_t *map;
    size_t map_len;
    uint32_t width, height, stride;
    SDL_Texture *tex;
    bool tex_stale; /* size changed: recreate before the next upload */
    bool tex_failed;
    bool dirty;
    struct disp_rect damage; /* union of damage not yet uploaded */
};

/* A connection on the control socket (hvd). */
struct ctl_client {
    bool used;
    int fd;
};

struct app {
    struct registry reg;
    struct focus focus;
    struct client clients[MAX_CLIENTS];
    int listen_fd;
    char records_dir[256]; /* hvd's records of who each VM user is (producer.h) */
    int ctl_fd;            /* the control socket, -1 without one */
    struct ctl_client ctl[CTL_CLIENTS];
    SDL_Window *win;
    SDL_Renderer *ren;
    bool redraw;
    bool quit;
    /* Switch latency: from the hotkey's arrival to the new VM's frame presented. */
    bool switch_pending;
    uint64_t switch_t0;
    struct lat_stats lat;
    /* Tablets read directly (KMSDRM only) and the pointer's window position. */
    struct absptr abs[ABSPTR_MAX];
    int nabs;
    int ptr_x, ptr_y;
    uint32_t buttons; /* DISP_BTN_* held, from the events themselves (SDL's and the tablets') */
};

uint64_t now_ns(void);

/* server.c */
int server_listen(const char *path);
/* Whether a connection is still to say hello (the poller then wakes the loop each second). */
bool server_waiting_hello(const struct app *a);
void server_service(struct app *a);
void server_close_all(struct app *a);
void client_send(struct app *a, int vm_id, const void *msg, size_t len);
struct client *client_of(struct app *a, int vm_id);

/* control.c: the control socket (focus, list, thumbnails) */
int control_listen(const char *path);
void control_service(struct app *a);
void control_close_all(struct app *a);

/* compositor.c */
int comp_init(struct app *a, int w, int h, bool fullscreen, bool vsync, const char *renderer);
void comp_render(struct app *a);
void comp_drop_texture(struct client *c);
/* Where the focused VM's picture is drawn; false when nothing is. */
bool comp_focused_rect(struct app *a, struct lrect *out);

/* input.c */
void input_event(struct app *a, const SDL_Event *ev);
/* Sends what a focus change says (releases, FOCUS messages) and schedules a redraw. */
void input_apply(struct app *a, const struct focus_out *out, bool from_user, uint64_t t0);
uint32_t keymap_evdev(SDL_Scancode sc); /* 0 when unmapped */
/* The pointer is at window pixel (x, y): tell the focused VM. */
void input_pointer_at(struct app *a, int x, int y);

/* absptr.c: tablets on KMSDRM, where SDL 2.26 does not scale them. */
void absptr_open(struct app *a);
void absptr_read(struct app *a);
/* Whether an SDL mouse event from `which` is ignored: a tablet's (ours are read) or SDL's own. */
bool absptr_ignores_sdl_mouse(const struct app *a, uint32_t which);

#endif
