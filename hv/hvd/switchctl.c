/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vm.switch and vm.screenshot: hvd as a client of hv-switch's control socket
 * (docs/display-protocol.md, "The control socket"). A VM is found on
 * hv-switch by the hotkey slot hvd gave it (display.c), and hv-switch's
 * answer must name that VM, so a stale or foreign producer in the slot is
 * never switched to or photographed as another VM.
 *
 * Calls are synchronous, like hvd's calls to hv-vmm, but bounded: at most
 * SWITCHCTL_TIMEOUT_MS per request, and hv-switch answers from its render
 * loop without blocking.
 */
#include "hvd.h"
#include "log.h"
#include "png.h"

#include "ctlproto.h"

#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SWITCHCTL_TIMEOUT_MS 1000
#define SHOT_DEFAULT_MAX     CTL_THUMB_MAX
/* Keeps the reply line under the API's 1 MiB: base64 is 4/3 of the PNG, plus the JSON around. */
#define SHOT_PNG_MAX (760 * 1024)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int no_switch(struct hvd *d, struct api_error *e, const char *what)
{
    return api_fail(e, "no-switch", "hv-switch is not running or does not answer (%s %s: %s).",
                    what, d->switch_control, strerror(errno));
}

/*
 * One request, one reply (len ≤ replen; *fd gets a passed descriptor or -1).
 * Returns the reply's length, or -1 with *e.
 */
static ssize_t call(struct hvd *d, const void *req, size_t len, void *rep, size_t replen, int *fd,
                    struct api_error *e)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cbuf;
    int64_t deadline = now_ms() + SWITCHCTL_TIMEOUT_MS;
    ssize_t n = -1;
    int s;

    *fd = -1;
    if (strlen(d->switch_control) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return no_switch(d, e, "cannot connect to");
    }
    strcpy(sa.sun_path, d->switch_control);
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return api_fail(e, "internal", "socket: %s.", strerror(errno));
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        no_switch(d, e, "cannot connect to");
        goto out;
    }
    if (send(s, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        no_switch(d, e, "cannot send to");
        goto out;
    }
    for (;;) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            errno = ETIMEDOUT;
            no_switch(d, e, "no reply from");
            goto out;
        }
        struct iovec iov = {rep, replen};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf.buf,
                            .msg_controllen = sizeof(cbuf.buf)};
        n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                int got;
                memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (*fd < 0)
                    *fd = got;
                else
                    close(got);
            }
        }
        if (n <= 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            if (n == 0)
                errno = ECONNRESET;
            else if (n > 0)
                errno = EMSGSIZE;
            no_switch(d, e, "a bad reply from");
            n = -1;
        }
        break;
    }
out:
    close(s);
    if (n < 0 && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return n;
}

/* Turns hv-switch's CTL_ERROR into ours; -1 always. */
static int switch_error(const struct ctl_error *er, const struct vm *vm, struct api_error *e)
{
    char msg[sizeof(er->message) + 1];

    memcpy(msg, er->message, sizeof(er->message));
    msg[sizeof(er->message)] = '\0';
    if (er->status == CTL_E_NO_VM)
        return api_fail(e, "no-display",
                        "VM '%s' is not on hv-switch (yet): its display has not connected.",
                        vm->def->name);
    if (er->status == CTL_E_NO_PICTURE)
        return api_fail(e, "no-display", "VM '%s' shows no picture (yet).", vm->def->name);
    return api_fail(e, "internal", "hv-switch refused the request: %s.", msg);
}

/* The VM's name as hv-switch has it (hv-vmm passes at most 31 characters). */
static bool same_name(const struct vm *vm, const char name[DISP_NAME_MAX])
{
    return strncmp(vm->def->name, name, DISP_NAME_MAX - 1) == 0 &&
           memchr(name, '\0', DISP_NAME_MAX) != NULL;
}

static int wrong_vm(const struct vm *vm, const char name[DISP_NAME_MAX], struct api_error *e)
{
    return api_fail(e, "no-display", "hv-switch has '%.31s' in slot %d, not VM '%s'.", name,
                    vm->slot, vm->def->name);
}

/* The running, displayed VM named in params, with a slot; NULL with *e. */
static struct vm *display_vm(struct hvd *d, struct json_object *params, struct api_error *e)
{
    struct json_object *v;
    struct vm *vm;

    if (!json_object_object_get_ex(params, "name", &v) ||
        !json_object_is_type(v, json_type_string)) {
        api_fail(e, "bad-params", "Parameter 'name' (a string) is required.");
        return NULL;
    }
    vm = hvd_find_vm(d, json_object_get_string(v));
    if (!vm) {
        api_fail(e, "not-found", "No VM named '%s' is defined.", json_object_get_string(v));
        return NULL;
    }
    if (!vm->def->display) {
        api_fail(e, "no-display", "VM '%s' has no display (display=false in its definition).",
                 vm->def->name);
        return NULL;
    }
    if (!vm_is_active(vm)) {
        api_fail(e, "bad-state", "VM '%s' is %s: it has a screen only while it runs.",
                 vm->def->name, vm_state_name(vm->state));
        return NULL;
    }
    if (vm->slot < 0) {
        api_fail(e, "no-display",
                 "VM '%s' has no hotkey slot on hv-switch (all nine are taken): use the "
                 "switcher overlay (Ctrl+Alt+Tab).",
                 vm->def->name);
        return NULL;
    }
    return vm;
}

struct json_object *switchctl_switch(struct hvd *d, struct json_object *params, struct api_error *e)
{
    struct vm *vm = display_vm(d, params, e);
    struct ctl_list lq = {CTL_LIST};
    struct ctl_focus fq = {CTL_FOCUS, 0};
    union {
        struct ctl_error err;
        struct ctl_list_reply list;
        struct ctl_focus_reply focus;
    } r;
    ssize_t n;
    int fd;

    if (!vm)
        return NULL;
    /* First make sure that the slot holds this VM: focusing is not undone. */
    n = call(d, &lq, sizeof(lq), &r, sizeof(r), &fd, e);
    if (fd >= 0)
        close(fd);
    if (n < 0)
        return NULL;
    if (r.err.type == CTL_ERROR && n == sizeof(r.err)) {
        switch_error(&r.err, vm, e);
        return NULL;
    }
    if (r.list.type != CTL_LIST_REPLY || n != sizeof(r.list) || r.list.count > CTL_LIST_MAX) {
        api_fail(e, "internal", "hv-switch sent a bad list (%zd bytes).", n);
        return NULL;
    }
    uint32_t i;
    for (i = 0; i < r.list.count && r.list.vms[i].slot != (uint32_t)vm->slot; i++)
        ;
    if (i == r.list.count) {
        api_fail(e, "no-display",
                 "VM '%s' is not on hv-switch (yet): its display has not connected.",
                 vm->def->name);
        return NULL;
    }
    if (!same_name(vm, r.list.vms[i].name)) {
        wrong_vm(vm, r.list.vms[i].name, e);
        return NULL;
    }

    fq.slot = (uint32_t)vm->slot;
    n = call(d, &fq, sizeof(fq), &r, sizeof(r), &fd, e);
    if (fd >= 0)
        close(fd);
    if (n < 0)
        return NULL;
    if (r.err.type == CTL_ERROR && n == sizeof(r.err)) {
        switch_error(&r.err, vm, e);
        return NULL;
    }
    if (r.focus.type != CTL_FOCUS_REPLY || n != sizeof(r.focus)) {
        api_fail(e, "internal", "hv-switch sent a bad reply to focus (%zd bytes).", n);
        return NULL;
    }
    log_info("VM %s: switched to (slot %d)", vm->def->name, vm->slot);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(vm->def->name));
    json_object_object_add(o, "slot", json_object_new_int(vm->slot));
    return o;
}

static int param_dim(struct json_object *params, const char *key, uint32_t *out,
                     struct api_error *e)
{
    struct json_object *v;

    *out = SHOT_DEFAULT_MAX;
    if (!json_object_object_get_ex(params, key, &v))
        return 0;
    int64_t n = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || n < 1 || n > CTL_THUMB_MAX)
        return api_fail(e, "bad-params", "Parameter '%s' must be an integer from 1 to %d.", key,
                        CTL_THUMB_MAX);
    *out = (uint32_t)n;
    return 0;
}

/* One thumbnail from hv-switch as PNG bytes (g_free), with its size; NULL with *e. */
static uint8_t *thumb_png(struct hvd *d, struct vm *vm, uint32_t mw, uint32_t mh,
                          struct ctl_thumb_reply *info, size_t *png_len, struct api_error *e)
{
    struct ctl_thumb q = {CTL_THUMB, (uint32_t)vm->slot, mw, mh};
    union {
        struct ctl_error err;
        struct ctl_thumb_reply thumb;
    } r;
    uint8_t *png = NULL;
    struct stat st;
    int fd;
    ssize_t n = call(d, &q, sizeof(q), &r, sizeof(r), &fd, e);

    if (n < 0)
        return NULL;
    if (r.err.type == CTL_ERROR && n == sizeof(r.err)) {
        switch_error(&r.err, vm, e);
        goto out;
    }
    /* hv-switch is trusted more than a guest, but its answer is still checked. */
    if (r.thumb.type != CTL_THUMB_REPLY || n != sizeof(r.thumb) || fd < 0 || r.thumb.width < 1 ||
        r.thumb.width > mw || r.thumb.height < 1 || r.thumb.height > mh ||
        r.thumb.format != DISP_FORMAT_XRGB8888 || r.thumb.stride < r.thumb.width * 4 ||
        r.thumb.stride > CTL_THUMB_MAX * 4 || fstat(fd, &st) < 0 ||
        (uint64_t)st.st_size < (uint64_t)r.thumb.stride * r.thumb.height) {
        api_fail(e, "internal", "hv-switch sent a bad thumbnail (%zd bytes).", n);
        goto out;
    }
    if (!same_name(vm, r.thumb.name)) {
        wrong_vm(vm, r.thumb.name, e);
        goto out;
    }
    size_t len = (size_t)r.thumb.stride * r.thumb.height;
    void *px = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (px == MAP_FAILED) {
        api_fail(e, "internal", "Cannot map hv-switch's thumbnail: %s.", strerror(errno));
        goto out;
    }
    png = png_from_xrgb(px, r.thumb.width, r.thumb.height, r.thumb.stride, png_len);
    munmap(px, len);
    if (!png)
        api_fail(e, "internal", "Cannot encode a %ux%u PNG.", r.thumb.width, r.thumb.height);
    *info = r.thumb;
out:
    if (fd >= 0)
        close(fd);
    return png;
}

struct json_object *switchctl_screenshot(struct hvd *d, struct json_object *params,
                                         struct api_error *e)
{
    struct vm *vm = display_vm(d, params, e);
    struct ctl_thumb_reply info;
    uint32_t mw, mh;
    size_t len = 0;
    uint8_t *png;

    if (!vm || param_dim(params, "max_width", &mw, e) < 0 ||
        param_dim(params, "max_height", &mh, e) < 0)
        return NULL;
    png = thumb_png(d, vm, mw, mh, &info, &len, e);
    if (png && len > SHOT_PNG_MAX) {
        /* Too detailed to fit one message: again at a size whose raw RGB fits. */
        free(png);
        mw = info.width;
        mh = info.height;
        while (((uint64_t)mw * 3 + 1) * mh > SHOT_PNG_MAX / 100 * 97 && mw > 1 && mh > 1) {
            mw = mw * 3 / 4;
            mh = mh * 3 / 4;
        }
        png = thumb_png(d, vm, mw, mh, &info, &len, e);
    }
    if (!png)
        return NULL;
    gchar *b64 = g_base64_encode(png, len);
    free(png);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(vm->def->name));
    json_object_object_add(o, "format", json_object_new_string("png"));
    json_object_object_add(o, "width", json_object_new_int((int)info.width));
    json_object_object_add(o, "height", json_object_new_int((int)info.height));
    json_object_object_add(o, "source_width", json_object_new_int((int)info.src_width));
    json_object_object_add(o, "source_height", json_object_new_int((int)info.src_height));
    json_object_object_add(o, "data", json_object_new_string(b64));
    g_free(b64);
    return o;
}
