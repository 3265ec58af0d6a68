/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Draws the focused VM, its label bar and the switcher overlay with SDL2. */
#include "app.h"
#include "font.h"
#include "log.h"

#include <stdio.h>

#define BAR_SCALE 2
#define BAR_PAD   4
#define BAR_H     (FONT_H * BAR_SCALE + 2 * BAR_PAD)

static const uint32_t grey = 0x303030;

int comp_init(struct app *a, int w, int h, bool fullscreen, bool vsync, const char *renderer)
{
    Uint32 flags = SDL_WINDOW_SHOWN | (fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
    SDL_RendererInfo info;

    if (renderer)
        SDL_SetHint(SDL_HINT_RENDER_DRIVER, renderer);
    a->win = SDL_CreateWindow("hv-switch", 0, 0, w, h, flags);
    if (!a->win) {
        log_err("cannot create the window: %s", SDL_GetError());
        return -1;
    }
    a->ren = SDL_CreateRenderer(a->win, -1, vsync ? SDL_RENDERER_PRESENTVSYNC : 0);
    if (!a->ren) {
        log_err("cannot create the renderer: %s", SDL_GetError());
        return -1;
    }
    SDL_GetRendererInfo(a->ren, &info);
    SDL_GetRendererOutputSize(a->ren, &w, &h);
    log_info("video driver %s, renderer %s, %dx%d%s", SDL_GetCurrentVideoDriver(), info.name, w, h,
             (info.flags & SDL_RENDERER_PRESENTVSYNC) ? ", vsync" : "");
    SDL_SetRenderDrawBlendMode(a->ren, SDL_BLENDMODE_BLEND);
    SDL_ShowCursor(SDL_DISABLE);
    return 0;
}

void comp_drop_texture(struct client *c)
{
    if (c->tex)
        SDL_DestroyTexture(c->tex);
    c->tex = NULL;
}

static void set_colour(SDL_Renderer *ren, uint32_t rgb, uint8_t alpha)
{
    SDL_SetRenderDrawColor(ren, (rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff, alpha);
}

static void fill(SDL_Renderer *ren, struct lrect r, uint32_t rgb, uint8_t alpha)
{
    SDL_Rect s = {r.x, r.y, r.w, r.h};

    set_colour(ren, rgb, alpha);
    SDL_RenderFillRect(ren, &s);
}

static uint32_t text_colour(uint32_t bg)
{
    unsigned lum = ((bg >> 16) & 0xff) * 299 + ((bg >> 8) & 0xff) * 587 + (bg & 0xff) * 114;

    return lum > 140000 ? 0x000000 : 0xffffff;
}

/* Text of one line, clipped to max_w pixels. */
static void text(SDL_Renderer *ren, int x, int y, int scale, const char *s, uint32_t rgb, int max_w)
{
    SDL_Rect px[FONT_W * FONT_H];

    set_colour(ren, rgb, 255);
    for (; *s && (max_w -= FONT_ADVANCE * scale) >= -scale; s++, x += FONT_ADVANCE * scale) {
        int n = 0;
        for (int gy = 0; gy < FONT_H; gy++) {
            for (int gx = 0; gx < FONT_W; gx++) {
                if (font_pixel(*s, gx, gy))
                    px[n++] = (SDL_Rect){x + gx * scale, y + gy * scale, scale, scale};
            }
        }
        SDL_RenderFillRects(ren, px, n);
    }
}

static void text_centred(SDL_Renderer *ren, struct lrect r, int y, int scale, const char *s,
                         uint32_t rgb)
{
    int w = font_text_width(s) * scale;

    while (scale > 1 && w > r.w) {
        scale--;
        w = font_text_width(s) * scale;
    }
    text(ren, r.x + (r.w - w) / 2, y, scale, s, rgb, r.w);
}

static void label(const struct vm *v, char *buf, size_t len)
{
    if (v->uivm)
        snprintf(buf, len, "0 UIVM: %s", v->name);
    else if (v->slot == REG_NO_SLOT)
        snprintf(buf, len, "%s", v->name);
    else
        snprintf(buf, len, "%d: %s", v->slot, v->name);
}

static void bar(SDL_Renderer *ren, struct lrect r, const struct vm *v, int scale)
{
    char buf[64];
    uint32_t bg = v ? v->colour : grey;

    fill(ren, r, bg, 255);
    if (v)
        label(v, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "hv-switch: no VM connected");
    text(ren, r.x + BAR_PAD, r.y + (r.h - FONT_H * scale) / 2, scale, buf, text_colour(bg),
         r.w - 2 * BAR_PAD);
}

/* Brings the client's texture up to date; false when there is nothing to show. */
static bool upload(struct app *a, struct client *c)
{
    if (!c->map)
        return false;
    if (c->tex_stale) {
        comp_drop_texture(c);
        c->tex_stale = false;
    }
    if (!c->tex && !c->tex_failed) {
        c->tex = SDL_CreateTexture(a->ren, SDL_PIXELFORMAT_XRGB8888, SDL_TEXTUREACCESS_STREAMING,
                                   (int)c->width, (int)c->height);
        if (!c->tex) {
            log_err("vm %d: no %ux%u texture: %s", c->vm_id, c->width, c->height, SDL_GetError());
            c->tex_failed = true;
        }
        c->damage = (struct disp_rect){0, 0, c->width, c->height};
        c->dirty = true;
    }
    if (!c->tex)
        return false;
    if (c->dirty) {
        SDL_Rect r = {(int)c->damage.x, (int)c->damage.y, (int)c->damage.w, (int)c->damage.h};
        const uint8_t *src = c->map + (size_t)c->damage.y * c->stride + (size_t)c->damage.x * 4;
        SDL_UpdateTexture(c->tex, &r, src, (int)c->stride);
        c->dirty = false;
    }
    return true;
}

/* The VM's picture fitted into area, or its placeholder. */
static void picture(struct app *a, const struct vm *v, struct lrect area, int scale)
{
    struct client *c = client_of(a, v->id);
    struct lrect r;

    if (c && upload(a, c)) {
        r = layout_fit(area, c->width, c->height);
        SDL_RenderCopy(a->ren, c->tex, NULL, &(SDL_Rect){r.x, r.y, r.w, r.h});
        return;
    }
    fill(a->ren, area, 0x202020, 255);
    text_centred(a->ren, area, area.y + area.h / 2 - FONT_H * scale * 2, scale * 2, v->name,
                 0xffffff);
    text_centred(a->ren, area, area.y + area.h / 2 + FONT_H * scale, scale,
                 c && c->tex_failed ? "picture too large" : "no display", 0xa0a0a0);
}

static struct lrect screen(struct app *a)
{
    int w, h;

    SDL_GetRendererOutputSize(a->ren, &w, &h);
    return (struct lrect){0, 0, w, h};
}

static struct lrect guest_area(struct lrect s)
{
    return (struct lrect){s.x, s.y + BAR_H, s.w, s.h - BAR_H};
}

bool comp_focused_rect(struct app *a, struct lrect *out)
{
    struct client *c = client_of(a, a->focus.focused);

    if (!c || !c->map || a->focus.overlay)
        return false;
    *out = layout_fit(guest_area(screen(a)), c->width, c->height);
    return true;
}

static void overlay(struct app *a, struct lrect s)
{
    struct lrect area = {s.x, s.y + BAR_H * 2, s.w, s.h - BAR_H * 2};
    int n = a->reg.count;

    fill(a->ren, s, 0x000000, 200);
    text_centred(a->ren, (struct lrect){s.x, s.y + BAR_H, s.w, BAR_H}, s.y + BAR_H + BAR_PAD,
                 BAR_SCALE, "switch to: arrows, enter - esc to go back", 0xffffff);
    for (int i = 0; i < n; i++) {
        const struct vm *v = &a->reg.vms[i];
        struct lrect t = layout_tile(area, n, i, 24);
        struct lrect lb = {t.x, t.y, t.w, BAR_H};
        struct lrect pic = {t.x, t.y + BAR_H, t.w, t.h - BAR_H};

        if (i == a->focus.sel)
            fill(a->ren, (struct lrect){t.x - 6, t.y - 6, t.w + 12, t.h + 12}, 0xffffff, 255);
        fill(a->ren, t, 0x000000, 255);
        bar(a->ren, lb, v, t.w > 200 ? BAR_SCALE : 1);
        picture(a, v, pic, 1);
    }
}

void comp_render(struct app *a)
{
    struct lrect s = screen(a);
    const struct vm *v = reg_by_id(&a->reg, a->focus.focused);

    set_colour(a->ren, 0x000000, 255);
    SDL_RenderClear(a->ren);
    bar(a->ren, (struct lrect){s.x, s.y, s.w, BAR_H}, v, BAR_SCALE);
    if (v)
        picture(a, v, guest_area(s), BAR_SCALE);
    if (a->focus.overlay)
        overlay(a, s);
    SDL_RenderPresent(a->ren);
    a->redraw = false;
}
