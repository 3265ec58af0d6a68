/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "check.h"
#include "font.h"
#include "layout.h"

static void test_fit(void)
{
    struct lrect area = {0, 22, 1280, 778};
    struct lrect r = layout_fit(area, 800, 600);

    /* 4:3 in a wider area: pillarbox, full height. */
    CHECK(r.h == 778 && r.y == 22);
    CHECK(r.w == 1037 && r.x == (1280 - 1037) / 2);
    r = layout_fit((struct lrect){0, 0, 1000, 1000}, 1920, 1080);
    CHECK(r.w == 1000 && r.h == 562 && r.y == 219);
    r = layout_fit((struct lrect){0, 0, 10, 10}, 8192, 1);
    CHECK(r.h == 1 && r.w == 10);
    r = layout_fit((struct lrect){0, 0, 0, 0}, 8192, 8192);
    CHECK(r.w == 1 && r.h == 1);
}

static void test_abs(void)
{
    struct lrect pic = {100, 50, 1001, 501};
    uint32_t x, y;

    layout_to_abs(pic, 100, 50, &x, &y);
    CHECK(x == 0 && y == 0);
    layout_to_abs(pic, 1100, 550, &x, &y);
    CHECK(x == 32767 && y == 32767);
    layout_to_abs(pic, 600, 300, &x, &y);
    CHECK(x == 16384 && y == 16384); /* the middle, rounded */
    layout_to_abs(pic, -5, 9999, &x, &y);
    CHECK(x == 0 && y == 32767);
}

static void test_tiles(void)
{
    struct lrect area = {0, 0, 1000, 500};
    struct lrect t0 = layout_tile(area, 2, 0, 10), t1 = layout_tile(area, 2, 1, 10);

    CHECK(t0.x == 10 && t1.x == t0.x + t0.w + 10 && t0.y == t1.y);
    CHECK(t1.x + t1.w <= 1000);
    struct lrect t4 = layout_tile(area, 5, 4, 10);
    CHECK(t4.y > t0.y && t4.y + t4.h <= 500);
}

static void test_stats(void)
{
    struct lat_stats s = {0};
    uint32_t out[64];

    CHECK(lat_samples(&s, out, 64) == 0);
    for (uint32_t i = 0; i < 100; i++)
        lat_add(&s, i);
    CHECK(lat_samples(&s, out, 64) == 64 && out[0] == 36 && out[63] == 99);
    CHECK(lat_samples(&s, out, 2) == 2 && out[0] == 98 && out[1] == 99);
}

static void test_font(void)
{
    CHECK(font_pixel('I', 2, 3) && !font_pixel('I', 0, 3));
    CHECK(font_pixel('a', 0, 3) == font_pixel('A', 0, 3));
    CHECK(!font_pixel(' ', 2, 3));
    CHECK(font_pixel('\x7f', 0, 0)); /* no glyph: a box */
    CHECK(!font_pixel('A', 5, 0) && !font_pixel('A', 0, -1));
    CHECK(font_text_width("ab") == 11 && font_text_width("") == 0);
}

int main(void)
{
    test_fit();
    test_abs();
    test_tiles();
    test_stats();
    test_font();
    CHECK_DONE();
}
