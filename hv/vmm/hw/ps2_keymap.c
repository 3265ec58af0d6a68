/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The PS/2 keyboard's scan codes for Linux key codes (ps2_keymap.h). One
 * row per key: its set 1 and set 2 code and whether an E0 prefix comes
 * first. Break codes follow from them: set 1 sets bit 7, set 2 puts F0
 * before the last byte. Print Screen and Pause are sequences of their own.
 */
#include "ps2_keymap.h"

#include <linux/input-event-codes.h>
#include <stddef.h>

#include "util.h"

struct key {
    uint16_t code;
    uint8_t set1, set2;
    bool e0;
};

static const struct key keys[] = {
    {KEY_ESC, 0x01, 0x76, false},
    {KEY_1, 0x02, 0x16, false},
    {KEY_2, 0x03, 0x1e, false},
    {KEY_3, 0x04, 0x26, false},
    {KEY_4, 0x05, 0x25, false},
    {KEY_5, 0x06, 0x2e, false},
    {KEY_6, 0x07, 0x36, false},
    {KEY_7, 0x08, 0x3d, false},
    {KEY_8, 0x09, 0x3e, false},
    {KEY_9, 0x0a, 0x46, false},
    {KEY_0, 0x0b, 0x45, false},
    {KEY_MINUS, 0x0c, 0x4e, false},
    {KEY_EQUAL, 0x0d, 0x55, false},
    {KEY_BACKSPACE, 0x0e, 0x66, false},
    {KEY_TAB, 0x0f, 0x0d, false},
    {KEY_Q, 0x10, 0x15, false},
    {KEY_W, 0x11, 0x1d, false},
    {KEY_E, 0x12, 0x24, false},
    {KEY_R, 0x13, 0x2d, false},
    {KEY_T, 0x14, 0x2c, false},
    {KEY_Y, 0x15, 0x35, false},
    {KEY_U, 0x16, 0x3c, false},
    {KEY_I, 0x17, 0x43, false},
    {KEY_O, 0x18, 0x44, false},
    {KEY_P, 0x19, 0x4d, false},
    {KEY_LEFTBRACE, 0x1a, 0x54, false},
    {KEY_RIGHTBRACE, 0x1b, 0x5b, false},
    {KEY_ENTER, 0x1c, 0x5a, false},
    {KEY_LEFTCTRL, 0x1d, 0x14, false},
    {KEY_A, 0x1e, 0x1c, false},
    {KEY_S, 0x1f, 0x1b, false},
    {KEY_D, 0x20, 0x23, false},
    {KEY_F, 0x21, 0x2b, false},
    {KEY_G, 0x22, 0x34, false},
    {KEY_H, 0x23, 0x33, false},
    {KEY_J, 0x24, 0x3b, false},
    {KEY_K, 0x25, 0x42, false},
    {KEY_L, 0x26, 0x4b, false},
    {KEY_SEMICOLON, 0x27, 0x4c, false},
    {KEY_APOSTROPHE, 0x28, 0x52, false},
    {KEY_GRAVE, 0x29, 0x0e, false},
    {KEY_LEFTSHIFT, 0x2a, 0x12, false},
    {KEY_BACKSLASH, 0x2b, 0x5d, false},
    {KEY_Z, 0x2c, 0x1a, false},
    {KEY_X, 0x2d, 0x22, false},
    {KEY_C, 0x2e, 0x21, false},
    {KEY_V, 0x2f, 0x2a, false},
    {KEY_B, 0x30, 0x32, false},
    {KEY_N, 0x31, 0x31, false},
    {KEY_M, 0x32, 0x3a, false},
    {KEY_COMMA, 0x33, 0x41, false},
    {KEY_DOT, 0x34, 0x49, false},
    {KEY_SLASH, 0x35, 0x4a, false},
    {KEY_RIGHTSHIFT, 0x36, 0x59, false},
    {KEY_KPASTERISK, 0x37, 0x7c, false},
    {KEY_LEFTALT, 0x38, 0x11, false},
    {KEY_SPACE, 0x39, 0x29, false},
    {KEY_CAPSLOCK, 0x3a, 0x58, false},
    {KEY_F1, 0x3b, 0x05, false},
    {KEY_F2, 0x3c, 0x06, false},
    {KEY_F3, 0x3d, 0x04, false},
    {KEY_F4, 0x3e, 0x0c, false},
    {KEY_F5, 0x3f, 0x03, false},
    {KEY_F6, 0x40, 0x0b, false},
    {KEY_F7, 0x41, 0x83, false},
    {KEY_F8, 0x42, 0x0a, false},
    {KEY_F9, 0x43, 0x01, false},
    {KEY_F10, 0x44, 0x09, false},
    {KEY_NUMLOCK, 0x45, 0x77, false},
    {KEY_SCROLLLOCK, 0x46, 0x7e, false},
    {KEY_KP7, 0x47, 0x6c, false},
    {KEY_KP8, 0x48, 0x75, false},
    {KEY_KP9, 0x49, 0x7d, false},
    {KEY_KPMINUS, 0x4a, 0x7b, false},
    {KEY_KP4, 0x4b, 0x6b, false},
    {KEY_KP5, 0x4c, 0x73, false},
    {KEY_KP6, 0x4d, 0x74, false},
    {KEY_KPPLUS, 0x4e, 0x79, false},
    {KEY_KP1, 0x4f, 0x69, false},
    {KEY_KP2, 0x50, 0x72, false},
    {KEY_KP3, 0x51, 0x7a, false},
    {KEY_KP0, 0x52, 0x70, false},
    {KEY_KPDOT, 0x53, 0x71, false},
    {KEY_102ND, 0x56, 0x61, false},
    {KEY_F11, 0x57, 0x78, false},
    {KEY_F12, 0x58, 0x07, false},
    {KEY_KPEQUAL, 0x59, 0x0f, false},
    /* The keys of Japanese keyboards (HID International 1-5). */
    {KEY_RO, 0x73, 0x51, false},
    {KEY_KATAKANAHIRAGANA, 0x70, 0x13, false},
    {KEY_YEN, 0x7d, 0x6a, false},
    {KEY_HENKAN, 0x79, 0x64, false},
    {KEY_MUHENKAN, 0x7b, 0x67, false},
    /* E0 keys. */
    {KEY_KPENTER, 0x1c, 0x5a, true},
    {KEY_RIGHTCTRL, 0x1d, 0x14, true},
    {KEY_KPSLASH, 0x35, 0x4a, true},
    {KEY_RIGHTALT, 0x38, 0x11, true},
    {KEY_HOME, 0x47, 0x6c, true},
    {KEY_UP, 0x48, 0x75, true},
    {KEY_PAGEUP, 0x49, 0x7d, true},
    {KEY_LEFT, 0x4b, 0x6b, true},
    {KEY_RIGHT, 0x4d, 0x74, true},
    {KEY_END, 0x4f, 0x69, true},
    {KEY_DOWN, 0x50, 0x72, true},
    {KEY_PAGEDOWN, 0x51, 0x7a, true},
    {KEY_INSERT, 0x52, 0x70, true},
    {KEY_DELETE, 0x53, 0x71, true},
    {KEY_LEFTMETA, 0x5b, 0x1f, true},
    {KEY_RIGHTMETA, 0x5c, 0x27, true},
    {KEY_COMPOSE, 0x5d, 0x2f, true},
    {KEY_POWER, 0x5e, 0x37, true},
    {KEY_SLEEP, 0x5f, 0x3f, true},
    {KEY_WAKEUP, 0x63, 0x5e, true},
    /* Consumer keys of multimedia keyboards. */
    {KEY_MUTE, 0x20, 0x23, true},
    {KEY_VOLUMEDOWN, 0x2e, 0x21, true},
    {KEY_VOLUMEUP, 0x30, 0x32, true},
    {KEY_NEXTSONG, 0x19, 0x4d, true},
    {KEY_PREVIOUSSONG, 0x10, 0x15, true},
    {KEY_STOPCD, 0x24, 0x3b, true},
    {KEY_PLAYPAUSE, 0x22, 0x34, true},
    {KEY_MEDIA, 0x6d, 0x50, true},
    {KEY_MAIL, 0x6c, 0x48, true},
    {KEY_CALC, 0x21, 0x2b, true},
    {KEY_COMPUTER, 0x6b, 0x40, true},
    {KEY_SEARCH, 0x65, 0x10, true},
    {KEY_HOMEPAGE, 0x32, 0x3a, true},
    {KEY_BACK, 0x6a, 0x38, true},
    {KEY_FORWARD, 0x69, 0x30, true},
    {KEY_STOP, 0x68, 0x28, true},
    {KEY_REFRESH, 0x67, 0x20, true},
    {KEY_BOOKMARKS, 0x66, 0x18, true},
};

static const struct key *find(uint32_t code)
{
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (keys[i].code == code)
            return &keys[i];
    return NULL;
}

bool ps2_key_known(uint32_t code)
{
    return code == KEY_SYSRQ || code == KEY_PAUSE || find(code);
}

bool ps2_key_repeats(uint32_t code)
{
    return code != KEY_PAUSE && ps2_key_known(code);
}

static unsigned copy(uint8_t *out, const uint8_t *seq, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        out[i] = seq[i];
    return n;
}

unsigned ps2_key_sequence(uint32_t code, bool pressed, unsigned set, uint8_t *out)
{
    bool one = set == 1;
    if (code == KEY_PAUSE) {
        /* Pause has no break code: its make sequence holds the release too. */
        static const uint8_t s1[] = {0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5};
        static const uint8_t s2[] = {0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77};
        if (!pressed)
            return 0;
        return one ? copy(out, s1, sizeof(s1)) : copy(out, s2, sizeof(s2));
    }
    if (code == KEY_SYSRQ) {
        /* Print Screen on its own: a fake left shift, then the key. */
        static const uint8_t m1[] = {0xe0, 0x2a, 0xe0, 0x37}, b1[] = {0xe0, 0xb7, 0xe0, 0xaa};
        static const uint8_t m2[] = {0xe0, 0x12, 0xe0, 0x7c};
        static const uint8_t b2[] = {0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12};
        if (one)
            return copy(out, pressed ? m1 : b1, 4);
        return pressed ? copy(out, m2, sizeof(m2)) : copy(out, b2, sizeof(b2));
    }
    const struct key *k = find(code);
    if (!k)
        return 0;
    unsigned n = 0;
    if (k->e0)
        out[n++] = 0xe0;
    if (one) {
        out[n++] = (uint8_t)(pressed ? k->set1 : k->set1 | 0x80);
    } else {
        if (!pressed)
            out[n++] = 0xf0;
        out[n++] = k->set2;
    }
    return n;
}

uint8_t ps2_translate(uint8_t b)
{
    /* Codes no key of ours sends, as the 8042's table has them. */
    switch (b) {
    case 0x00:
        return 0xff; /* overrun */
    case 0x02:
        return 0x41; /* the answer "set 2" to F0 00 */
    case 0x84:
        return 0x54; /* Alt+SysRq */
    default:
        break;
    }
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (keys[i].set2 == b)
            return keys[i].set1;
    return b; /* ACK, BAT, ID, E0, E1 and the others above 0x80 pass unchanged */
}
