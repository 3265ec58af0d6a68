/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The 8042 controller with its PS/2 keyboard and mouse (hw/i8042.c,
 * hw/ps2_keymap.c), driven through ports 0x60/0x64 as Linux's i8042,
 * atkbd and psmouse drivers and SeaBIOS do, on a VM without KVM: the
 * controller's commands and self tests, the interrupt lines, the keyboard's
 * commands, keys fed as the display connection feeds them coming out in set
 * 2 and translated to set 1, the mouse's commands, its packets and wheel
 * modes, typematic repeat, bounded queues under a guest that never reads,
 * garbage from a hostile guest, save/load and its refusals, and the DSDT.
 */
#include <linux/input-event-codes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "device.h"
#include "devices.h"
#include "fake_vm.h"
#include "hw/i8042.h"
#include "hw/ps2_keymap.h"
#include "pci.h"
#include "state.h"
#include "vm.h"
#include "x86/acpi.h"
#include "x86/aml.h"

/* vm.c is not linked. */
void vm_request(struct vm *vm, enum vm_request req)
{
    atomic_fetch_or(&vm->requests, (unsigned)req);
}

static const struct vm_config cfg = {.name = "test", .console = "none"};

static void make_vm(struct vm *vm)
{
    fake_vm_init(vm, &cfg, false);
}

static void drop_vm(struct vm *vm)
{
    fake_vm_drop(vm);
}

static uint8_t in8(struct vm *vm, uint16_t port)
{
    uint8_t v = 0;
    io_bus_access(&vm->pio, port, &v, 1, false);
    return v;
}

static void out8(struct vm *vm, uint16_t port, uint8_t v)
{
    io_bus_access(&vm->pio, port, &v, 1, true);
}

static uint8_t status(struct vm *vm)
{
    return in8(vm, 0x64);
}

/* Everything waiting, as a driver's flush reads it; aux[i] tells the source. */
static unsigned drain(struct vm *vm, uint8_t *buf, bool *aux, unsigned max)
{
    unsigned n = 0;
    while ((status(vm) & 0x01) && n < 1000) {
        bool a = status(vm) & 0x20;
        uint8_t v = in8(vm, 0x60);
        if (n < max) {
            buf[n] = v;
            if (aux)
                aux[n] = a;
        }
        n++;
    }
    return n;
}

static bool got(struct vm *vm, const uint8_t *want, unsigned n)
{
    uint8_t buf[256];
    unsigned len = drain(vm, buf, NULL, sizeof(buf));
    if (len != n || memcmp(buf, want, n) != 0) {
        fprintf(stderr, "  got %u bytes:", len);
        for (unsigned i = 0; i < len && i < sizeof(buf); i++)
            fprintf(stderr, " %02x", buf[i]);
        fprintf(stderr, "; wanted %u:", n);
        for (unsigned i = 0; i < n; i++)
            fprintf(stderr, " %02x", want[i]);
        fprintf(stderr, "\n");
        return false;
    }
    return true;
}

#define GOT(vm, ...) got(vm, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

static void ctl_cmd(struct vm *vm, uint8_t cmd)
{
    out8(vm, 0x64, cmd);
}

static void ctl_write(struct vm *vm, uint8_t cmd, uint8_t data)
{
    out8(vm, 0x64, cmd);
    out8(vm, 0x60, data);
}

static uint8_t read_ctr(struct vm *vm)
{
    ctl_cmd(vm, 0x20);
    return in8(vm, 0x60);
}

static void kbd(struct vm *vm, uint8_t v)
{
    out8(vm, 0x60, v);
}

static void aux(struct vm *vm, uint8_t v)
{
    ctl_write(vm, 0xd4, v);
}

static void lines(struct vm *vm, bool *k, bool *a)
{
    i8042_irq_lines(vm->i8042, k, a);
}

static void test_controller(void)
{
    struct vm vm;
    make_vm(&vm);
    bool k, a;

    /* Power on: nothing to read, system flag set, keyboard not inhibited. */
    CHECK((status(&vm) & 0x35) == 0x14);
    CHECK(read_ctr(&vm) == 0x45);
    CHECK(status(&vm) & 0x08); /* the last write was a command */

    ctl_cmd(&vm, 0xaa);
    CHECK(status(&vm) & 0x01);
    CHECK(GOT(&vm, 0x55));
    ctl_cmd(&vm, 0xab);
    CHECK(GOT(&vm, 0x00));
    ctl_cmd(&vm, 0xa9);
    CHECK(GOT(&vm, 0x00));
    ctl_cmd(&vm, 0xa4);
    CHECK(GOT(&vm, 0xf1));

    /* Port disables show in the command byte, as Linux's check of the AUX port reads them. */
    ctl_cmd(&vm, 0xa7);
    CHECK(read_ctr(&vm) & 0x20);
    ctl_cmd(&vm, 0xa8);
    CHECK(!(read_ctr(&vm) & 0x20));
    ctl_cmd(&vm, 0xad);
    CHECK(read_ctr(&vm) & 0x10);
    ctl_cmd(&vm, 0xae);
    CHECK(!(read_ctr(&vm) & 0x10));

    /* The system flag follows the command byte. */
    ctl_write(&vm, 0x60, 0x00);
    CHECK(!(status(&vm) & 0x04));
    CHECK(!(status(&vm) & 0x08)); /* the last write (0x60's data) was data */
    CHECK(read_ctr(&vm) == 0x00);

    /* AUX loopback (Linux's probe): the byte comes back from the mouse, with IRQ 12. */
    ctl_write(&vm, 0x60, 0x47); /* both interrupts, translation */
    ctl_write(&vm, 0xd3, 0x5a);
    lines(&vm, &k, &a);
    CHECK(!k && a);
    CHECK((status(&vm) & 0x21) == 0x21);
    CHECK(in8(&vm, 0x60) == 0x5a);
    lines(&vm, &k, &a);
    CHECK(!k && !a);
    /* The keyboard's loopback: IRQ 1, no AUXB. */
    ctl_write(&vm, 0xd2, 0x12);
    lines(&vm, &k, &a);
    CHECK(k && !a);
    CHECK((status(&vm) & 0x21) == 0x01);
    CHECK(GOT(&vm, 0x12));
    /* No interrupt while its enable bit is clear; the byte still waits. */
    ctl_write(&vm, 0x60, 0x44);
    ctl_write(&vm, 0xd3, 0x77);
    lines(&vm, &k, &a);
    CHECK(!k && !a && (status(&vm) & 0x21) == 0x21);
    ctl_write(&vm, 0x60, 0x46); /* enabling it with the byte there raises the line */
    lines(&vm, &k, &a);
    CHECK(a);
    CHECK(GOT(&vm, 0x77));

    /* The output port: reset line and A20 high; the OBF bits follow the buffer. */
    ctl_cmd(&vm, 0xd0);
    CHECK((in8(&vm, 0x60) & 0x03) == 0x03);

    /* An empty buffer reads its last byte again and raises nothing. */
    CHECK(in8(&vm, 0x60) == in8(&vm, 0x60));
    CHECK(!(status(&vm) & 0x01));

    /* A controller answer waits behind an unread byte rather than overwrite it. */
    ctl_write(&vm, 0xd2, 0x99);
    ctl_cmd(&vm, 0xaa);
    CHECK(GOT(&vm, 0x99, 0x55));

    /* The reset line: 0xFE and the other pulses of bit 0, and the output port. */
    CHECK(atomic_load(&vm.requests) == 0);
    ctl_cmd(&vm, 0xff); /* pulses nothing */
    CHECK(atomic_load(&vm.requests) == 0);
    ctl_cmd(&vm, 0xfe);
    CHECK(atomic_load(&vm.requests) == VM_REQ_RESET);
    atomic_store(&vm.requests, 0);
    ctl_write(&vm, 0xd1, 0x03);
    CHECK(atomic_load(&vm.requests) == 0);
    ctl_write(&vm, 0xd1, 0x02);
    CHECK(atomic_load(&vm.requests) == VM_REQ_RESET);
    drop_vm(&vm);
}

static void test_keyboard_commands(void)
{
    struct vm vm;
    make_vm(&vm);

    /* Translated (the power-on command byte), as Linux's atkbd and SeaBIOS see it. */
    kbd(&vm, 0xff);
    CHECK(GOT(&vm, 0xfa, 0xaa));
    kbd(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0xab, 0x41));
    kbd(&vm, 0xf0);
    kbd(&vm, 0x00);
    CHECK(GOT(&vm, 0xfa, 0xfa, 0x41)); /* "set 2", translated */
    /* Untranslated: what the keyboard itself sends. */
    ctl_write(&vm, 0x60, 0x07);
    kbd(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0xab, 0x83));
    kbd(&vm, 0xf0);
    kbd(&vm, 0x00);
    CHECK(GOT(&vm, 0xfa, 0xfa, 0x02));
    /* LEDs, typematic, echo, set 1, set 3 refused by staying in set 1, a bad set. */
    kbd(&vm, 0xed);
    kbd(&vm, 0x07);
    CHECK(GOT(&vm, 0xfa, 0xfa));
    kbd(&vm, 0xf3);
    kbd(&vm, 0x20);
    CHECK(GOT(&vm, 0xfa, 0xfa));
    kbd(&vm, 0xee);
    CHECK(GOT(&vm, 0xee));
    kbd(&vm, 0xf0);
    kbd(&vm, 0x01);
    CHECK(GOT(&vm, 0xfa, 0xfa));
    kbd(&vm, 0xf0);
    kbd(&vm, 0x03);
    CHECK(GOT(&vm, 0xfa, 0xfa));
    kbd(&vm, 0xf0);
    kbd(&vm, 0x00);
    CHECK(GOT(&vm, 0xfa, 0xfa, 0x01));
    kbd(&vm, 0xf0);
    kbd(&vm, 0x09);
    CHECK(GOT(&vm, 0xfa, 0xfe));
    /* A command while a parameter is awaited is a command. */
    kbd(&vm, 0xed);
    kbd(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0xfa, 0xab, 0x83));
    /* Unknown command: resend; resend repeats the last byte sent. */
    kbd(&vm, 0x42);
    CHECK(GOT(&vm, 0xfe));
    kbd(&vm, 0xfe);
    CHECK(GOT(&vm, 0xfe));
    kbd(&vm, 0xee);
    CHECK(GOT(&vm, 0xee));
    kbd(&vm, 0xfe);
    CHECK(GOT(&vm, 0xee));

    /* Scanning off (F5): keys are not sent; on again (F4). Set 1 is still selected. */
    kbd(&vm, 0xf5);
    CHECK(GOT(&vm, 0xfa));
    i8042_key(vm.i8042, KEY_A, true);
    i8042_key(vm.i8042, KEY_A, false);
    CHECK(GOT(&vm));
    kbd(&vm, 0xf4);
    CHECK(GOT(&vm, 0xfa));
    i8042_key(vm.i8042, KEY_A, true);
    i8042_key(vm.i8042, KEY_A, false);
    CHECK(GOT(&vm, 0x1e, 0x9e)); /* native set 1 */
    /* A disabled keyboard port holds the keyboard's bytes until it is enabled. */
    ctl_cmd(&vm, 0xad);
    i8042_key(vm.i8042, KEY_B, true);
    CHECK(GOT(&vm));
    ctl_cmd(&vm, 0xae);
    CHECK(GOT(&vm, 0x30));
    i8042_key(vm.i8042, KEY_B, false);
    CHECK(GOT(&vm, 0xb0));
    /* Reset: set 2 again. */
    kbd(&vm, 0xff);
    CHECK(GOT(&vm, 0xfa, 0xaa));
    i8042_key(vm.i8042, KEY_A, true);
    CHECK(GOT(&vm, 0x1c));
    drop_vm(&vm);
}

/* Feed a key, read what comes out. */
static unsigned key_bytes(struct vm *vm, uint32_t code, bool pressed, uint8_t *buf)
{
    i8042_key(vm->i8042, code, pressed);
    return drain(vm, buf, NULL, 64);
}

static void test_keys(void)
{
    struct vm vm;
    make_vm(&vm);
    uint8_t b[64];

    /* Translated set 1 (Linux, SeaBIOS, Windows): Linux's key codes are set 1's codes. */
    unsigned n = key_bytes(&vm, KEY_A, true, b);
    CHECK(n == 1 && b[0] == 0x1e);
    n = key_bytes(&vm, KEY_A, false, b);
    CHECK(n == 1 && b[0] == 0x9e);
    n = key_bytes(&vm, KEY_RIGHTCTRL, true, b);
    CHECK(n == 2 && b[0] == 0xe0 && b[1] == 0x1d);
    n = key_bytes(&vm, KEY_RIGHTCTRL, false, b);
    CHECK(n == 2 && b[0] == 0xe0 && b[1] == 0x9d);
    n = key_bytes(&vm, KEY_PAUSE, true, b);
    CHECK(n == 6 && !memcmp(b, "\xe1\x1d\x45\xe1\x9d\xc5", 6));
    CHECK(key_bytes(&vm, KEY_PAUSE, false, b) == 0);
    n = key_bytes(&vm, KEY_SYSRQ, true, b);
    CHECK(n == 4 && !memcmp(b, "\xe0\x2a\xe0\x37", 4));
    n = key_bytes(&vm, KEY_SYSRQ, false, b);
    CHECK(n == 4 && !memcmp(b, "\xe0\xb7\xe0\xaa", 4));
    /* A release whose press never went out, a key the keyboard lacks, a huge code. */
    CHECK(key_bytes(&vm, KEY_B, false, b) == 0);
    CHECK(key_bytes(&vm, KEY_PROG1, true, b) == 0);
    CHECK(key_bytes(&vm, 0xffffffffu, true, b) == 0);
    CHECK(key_bytes(&vm, 300, true, b) == 0);

    /* Untranslated set 2 (command byte bit 6 clear). */
    ctl_write(&vm, 0x60, 0x05);
    n = key_bytes(&vm, KEY_A, true, b);
    CHECK(n == 1 && b[0] == 0x1c);
    n = key_bytes(&vm, KEY_A, false, b);
    CHECK(n == 2 && b[0] == 0xf0 && b[1] == 0x1c);
    n = key_bytes(&vm, KEY_UP, true, b);
    CHECK(n == 2 && b[0] == 0xe0 && b[1] == 0x75);
    n = key_bytes(&vm, KEY_UP, false, b);
    CHECK(n == 3 && !memcmp(b, "\xe0\xf0\x75", 3));
    n = key_bytes(&vm, KEY_PAUSE, true, b);
    CHECK(n == 8 && !memcmp(b, "\xe1\x14\x77\xe1\xf0\x14\xf0\x77", 8));
    n = key_bytes(&vm, KEY_SYSRQ, true, b);
    CHECK(n == 4 && !memcmp(b, "\xe0\x12\xe0\x7c", 4));
    n = key_bytes(&vm, KEY_SYSRQ, false, b);
    CHECK(n == 6 && !memcmp(b, "\xe0\xf0\x7c\xe0\xf0\x12", 6));
    drop_vm(&vm);

    /*
     * The whole table: translating each key's set 2 sequence gives its set 1
     * sequence, make and break; for the keys of the PC keyboard (1..88) set 1
     * is Linux's key code.
     */
    unsigned known = 0;
    for (uint32_t code = 0; code < 256; code++) {
        if (!ps2_key_known(code))
            continue;
        known++;
        for (int p = 0; p < 2; p++) {
            uint8_t s1[PS2_SEQ_MAX], s2[PS2_SEQ_MAX], t[PS2_SEQ_MAX];
            unsigned n1 = ps2_key_sequence(code, p, 1, s1), n2 = ps2_key_sequence(code, p, 2, s2);
            unsigned nt = 0;
            bool brk = false;
            for (unsigned i = 0; i < n2; i++) {
                if (s2[i] == 0xf0) {
                    brk = true;
                    continue;
                }
                t[nt++] = (uint8_t)(ps2_translate(s2[i]) | (brk ? 0x80 : 0));
                brk = false;
            }
            CHECK(nt == n1 && !memcmp(t, s1, n1));
            if (nt != n1 || memcmp(t, s1, n1))
                fprintf(stderr, "  key %u %s\n", code, p ? "make" : "break");
        }
        if (code >= 1 && code <= 88 && code != KEY_SYSRQ) {
            uint8_t s1[PS2_SEQ_MAX];
            CHECK(ps2_key_sequence(code, true, 1, s1) == 1 && s1[0] == code);
        }
    }
    CHECK(known > 120);
    for (uint32_t code = 1; code <= 88; code++)
        if (code != 84 && code != 85)
            CHECK(ps2_key_known(code));
}

static void test_typematic(void)
{
    struct vm vm;
    make_vm(&vm);
    uint8_t b[64];

    kbd(&vm, 0xf3);
    kbd(&vm, 0x00); /* 250 ms, then 30 a second */
    CHECK(GOT(&vm, 0xfa, 0xfa));
    i8042_key(vm.i8042, KEY_X, true);
    unsigned makes = 0;
    struct timespec t = {0, 50 * 1000000L};
    for (int i = 0; i < 12; i++) { /* 600 ms */
        nanosleep(&t, NULL);
        unsigned n = drain(&vm, b, NULL, sizeof(b));
        for (unsigned j = 0; j < n && j < sizeof(b); j++) {
            CHECK(b[j] == 0x2d);
            makes++;
        }
    }
    CHECK(makes >= 5 && makes <= 14); /* the press, then about 10 repeats */
    i8042_key(vm.i8042, KEY_X, false);
    nanosleep(&t, NULL);
    unsigned n = drain(&vm, b, NULL, sizeof(b));
    CHECK(n >= 1 && b[n - 1] == 0xad);
    nanosleep(&t, NULL);
    CHECK(GOT(&vm)); /* the release stops it */
    /* Pause does not repeat. */
    i8042_key(vm.i8042, KEY_PAUSE, true);
    struct timespec t2 = {0, 400 * 1000000L};
    nanosleep(&t2, NULL);
    CHECK(drain(&vm, b, NULL, sizeof(b)) == 6);
    drop_vm(&vm);
}

static void test_mouse(void)
{
    struct vm vm;
    make_vm(&vm);
    uint8_t b[64];
    bool a[64], kl, al;

    ctl_write(&vm, 0x60, 0x47);
    aux(&vm, 0xff);
    unsigned n = drain(&vm, b, a, 64);
    CHECK(n == 3 && !memcmp(b, "\xfa\xaa\x00", 3) && a[0] && a[1] && a[2]);
    aux(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0x00));
    /* Not enabled yet: motion is followed, nothing sent. */
    i8042_pointer(vm.i8042, 16384, 16384, 0, 1280, 800, true);
    i8042_pointer(vm.i8042, 17000, 16000, 0, 1280, 800, true);
    CHECK(GOT(&vm));
    aux(&vm, 0xf4);
    CHECK(GOT(&vm, 0xfa));
    /* 32768 across 1280 pixels: +512 in x is +20 pixels; -2048 in y (up) is +50. */
    i8042_pointer(vm.i8042, 17512, 13952, 0, 1280, 800, true);
    lines(&vm, &kl, &al);
    CHECK(!kl && al);
    CHECK(GOT(&vm, 0x08, 20, 50));
    /* Left and down-left with the left button: negative, sign bits. */
    i8042_pointer(vm.i8042, 17000, 14000, 1, 1280, 800, true);
    CHECK(GOT(&vm, 0x39, 0xec, 0xff));
    /* A big jump is split into packets of at most 255. */
    i8042_pointer(vm.i8042, 32767, 14000, 1, 1280, 800, true);
    n = drain(&vm, b, NULL, 64);
    CHECK(n == 9 && b[0] == 0x09 && b[1] == 255 && b[4] == 255 && b[7] == 1279 - 664 - 510);
    /* Same place, same buttons: nothing. Buttons only: a packet. */
    i8042_pointer(vm.i8042, 32767, 14000, 1, 1280, 800, true);
    CHECK(GOT(&vm));
    i8042_pointer(vm.i8042, 32767, 14000, 6, 1280, 800, true);
    CHECK(GOT(&vm, 0x0e, 0, 0));
    /* The guest reads the tablet: no motion, but the release of held buttons. */
    i8042_pointer(vm.i8042, 30000, 10000, 2, 1280, 800, false);
    CHECK(GOT(&vm, 0x0a, 0, 0));
    i8042_pointer(vm.i8042, 30000, 12000, 3, 1280, 800, false);
    CHECK(GOT(&vm));
    i8042_pointer(vm.i8042, 30000, 12000, 0, 1280, 800, false);
    CHECK(GOT(&vm, 0x08, 0, 0));
    /* No wheel on a plain mouse. */
    i8042_wheel(vm.i8042, 0, 1);
    CHECK(GOT(&vm));

    /* IntelliMouse: 200, 100, 80; then 4-byte packets with the wheel. */
    const uint8_t rates[] = {200, 100, 80};
    for (unsigned i = 0; i < 3; i++) {
        aux(&vm, 0xf3);
        aux(&vm, rates[i]);
        CHECK(GOT(&vm, 0xfa, 0xfa));
    }
    aux(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0x03));
    aux(&vm, 0xf4);
    CHECK(GOT(&vm, 0xfa));
    i8042_wheel(vm.i8042, 0, 1); /* up */
    CHECK(GOT(&vm, 0x08, 0, 0, 0xff));
    i8042_pointer(vm.i8042, 30000 + 26, 12000, 0, 1280, 800, true);
    CHECK(GOT(&vm, 0x08, 1, 0, 0));
    /* Explorer: 200, 200, 80; the wheel in 4 bits. */
    const uint8_t rates2[] = {200, 200, 80};
    for (unsigned i = 0; i < 3; i++) {
        aux(&vm, 0xf3);
        aux(&vm, rates2[i]);
        CHECK(GOT(&vm, 0xfa, 0xfa));
    }
    aux(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0x04));
    i8042_wheel(vm.i8042, 0, -3);
    CHECK(GOT(&vm, 0x08, 0, 0, 0x03));
    i8042_wheel(vm.i8042, 0, 100);
    CHECK(GOT(&vm, 0x08, 0, 0, 0x08)); /* clamped to -8 */

    /* Status, resolution, scaling. */
    aux(&vm, 0xe8);
    aux(&vm, 0x03);
    CHECK(GOT(&vm, 0xfa, 0xfa));
    aux(&vm, 0xe7);
    CHECK(GOT(&vm, 0xfa));
    aux(&vm, 0xe9);
    CHECK(GOT(&vm, 0xfa, 0x30, 0x03, 80));
    /* Remote mode: motion is kept for Read Data. */
    aux(&vm, 0xf0);
    CHECK(GOT(&vm, 0xfa));
    i8042_pointer(vm.i8042, 30000 + 26 + 52, 12000, 1, 1280, 800, true);
    CHECK(GOT(&vm));
    aux(&vm, 0xeb);
    CHECK(GOT(&vm, 0xfa, 0x09, 2, 0, 0));
    aux(&vm, 0xeb);
    CHECK(GOT(&vm, 0xfa, 0x09, 0, 0, 0));
    aux(&vm, 0xea);
    CHECK(GOT(&vm, 0xfa));
    /* Wrap mode echoes until EC. */
    aux(&vm, 0xee);
    CHECK(GOT(&vm, 0xfa));
    aux(&vm, 0x42);
    aux(&vm, 0xf2);
    CHECK(GOT(&vm, 0x42, 0xf2));
    aux(&vm, 0xec);
    CHECK(GOT(&vm, 0xfa));
    /* Unknown: resend. Defaults keep the wheel mode; reset drops it. */
    aux(&vm, 0x10);
    CHECK(GOT(&vm, 0xfe));
    aux(&vm, 0xf6);
    CHECK(GOT(&vm, 0xfa));
    aux(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0x04));
    aux(&vm, 0xff);
    CHECK(GOT(&vm, 0xfa, 0xaa, 0x00));
    aux(&vm, 0xf2);
    CHECK(GOT(&vm, 0xfa, 0x00));
    /* A disabled AUX port holds the mouse's bytes. */
    aux(&vm, 0xf4);
    CHECK(GOT(&vm, 0xfa));
    ctl_cmd(&vm, 0xa7);
    i8042_pointer(vm.i8042, 30000 + 26 + 52 + 26, 12000, 0, 1280, 800, true);
    CHECK(GOT(&vm));
    ctl_cmd(&vm, 0xa8);
    CHECK(GOT(&vm, 0x08, 1, 0));
    drop_vm(&vm);
}

/* A guest that never reads: old records go, whole; memory stays bounded. */
static void test_never_read(void)
{
    struct vm vm;
    make_vm(&vm);
    uint8_t b[256];

    ctl_write(&vm, 0x60, 0x05); /* untranslated, so every byte is the keyboard's own */
    for (int i = 0; i < 200; i++) {
        i8042_key(vm.i8042, KEY_UP, true);
        i8042_key(vm.i8042, KEY_UP, false);
    }
    i8042_key(vm.i8042, KEY_Z, true);
    unsigned n = drain(&vm, b, NULL, sizeof(b));
    CHECK(n <= 17);
    /*
     * The first record, which the buffer's byte began, whole; then whole
     * records, the newest one last.
     */
    CHECK(n >= 3 && b[0] == 0xe0 && b[1] == 0x75 && b[n - 1] == 0x1a);
    for (unsigned i = 2; i + 1 < n;) {
        if (b[i] == 0xe0 && b[i + 1] == 0x75)
            i += 2;
        else if (b[i] == 0xe0 && i + 2 < n && b[i + 1] == 0xf0 && b[i + 2] == 0x75)
            i += 3;
        else {
            CHECK(!"a broken record");
            break;
        }
    }
    /* The mouse likewise. */
    aux(&vm, 0xf4);
    CHECK(GOT(&vm, 0xfa));
    for (int i = 0; i < 500; i++)
        i8042_pointer(vm.i8042, (uint32_t)(i % 2 ? 1000 : 2000), 1000, 0, 1280, 800, true);
    n = drain(&vm, b, NULL, sizeof(b));
    CHECK(n <= 49 && n % 3 == 0);
    /* Garbage from a hostile guest: every byte to every port, random sequences. */
    unsigned seed = 1;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint8_t v = (uint8_t)(seed >> 16);
        switch ((seed >> 28) & 7) {
        case 0:
            out8(&vm, 0x64, v);
            break;
        case 1:
        case 2:
            out8(&vm, 0x60, v);
            break;
        case 3:
            in8(&vm, 0x60);
            break;
        case 4:
            in8(&vm, 0x64);
            break;
        case 5:
            i8042_key(vm.i8042, v, seed & 1);
            break;
        default:
            i8042_pointer(vm.i8042, seed & 0x7fff, (seed >> 3) & 0xffff, v, v, 800, seed & 2);
            i8042_wheel(vm.i8042, 0, (int8_t)v);
            break;
        }
        CHECK((atomic_load(&vm.requests) & ~(unsigned)VM_REQ_RESET) == 0);
        if (check_failures)
            break;
    }
    n = drain(&vm, b, NULL, sizeof(b));
    CHECK(n <= 1 + 4 + 16 + 48);
    /* It still works: a reset of the controller's devices answers. */
    ctl_write(&vm, 0x60, 0x45);
    drain(&vm, b, NULL, sizeof(b));
    kbd(&vm, 0xff);
    CHECK(GOT(&vm, 0xfa, 0xaa));
    drop_vm(&vm);
}

static int save(struct vm *vm, struct state_out *out)
{
    struct device *d = device_find(vm, "i8042");
    state_out_clear(out);
    return d->ops->save(d, out);
}

static int load(struct vm *vm, const void *p, size_t len, char *why)
{
    struct device *d = device_find(vm, "i8042");
    struct state_in in;
    state_in_init(&in, p, len);
    if (d->ops->load(d, &in) < 0 && state_in_ok(&in))
        state_in_fail(&in, "no reason");
    int r = state_in_end(&in);
    strcpy(why, in.why);
    return r;
}

static void test_save(void)
{
    struct vm a, b;
    struct state_out out;
    char why[STATE_WHY_MAX];
    state_out_init(&out);
    make_vm(&a);
    make_vm(&b);

    /* Set 1 untranslated, LEDs, an IntelliMouse enabled, keys and a packet waiting. */
    ctl_write(&a, 0x60, 0x07);
    kbd(&a, 0xf0);
    kbd(&a, 0x01);
    kbd(&a, 0xed);
    kbd(&a, 0x02);
    const uint8_t rates[] = {200, 100, 80};
    for (unsigned i = 0; i < 3; i++) {
        aux(&a, 0xf3);
        aux(&a, rates[i]);
    }
    aux(&a, 0xf4);
    uint8_t junk[64];
    drain(&a, junk, NULL, sizeof(junk));
    i8042_key(a.i8042, KEY_LEFTSHIFT, true);
    i8042_key(a.i8042, KEY_HOME, true);
    i8042_pointer(a.i8042, 100, 100, 0, 1280, 800, true);
    i8042_wheel(a.i8042, 0, 1);
    CHECK(in8(&a, 0x60) == 0x2a); /* the shift read, E0 47 waiting */
    CHECK(save(&a, &out) == 0);
    CHECK(load(&b, out.buf, out.len, why) == 0);
    CHECK(GOT(&b, 0xe0, 0x47, 0x08, 0, 0, 0xff));
    i8042_key(b.i8042, KEY_LEFTSHIFT, false); /* the press is remembered */
    CHECK(GOT(&b, 0xaa));
    aux(&b, 0xf2);
    CHECK(GOT(&b, 0xfa, 0x03));
    CHECK(read_ctr(&b) == 0x07);
    /* Loaded, then saved: the same bytes. */
    struct state_out out2;
    state_out_init(&out2);
    CHECK(load(&b, out.buf, out.len, why) == 0);
    CHECK(save(&b, &out2) == 0);
    CHECK(out2.len == out.len && !memcmp(out2.buf, out.buf, out.len));
    state_out_free(&out2);

    /* A section from before the keyboard existed: the devices power on. */
    const uint8_t v1[] = {0x45, 0x00, 0x08, 1, 0x55};
    CHECK(load(&b, v1, sizeof(v1), why) == 0);
    CHECK(GOT(&b, 0x55));
    kbd(&b, 0xf2);
    CHECK(GOT(&b, 0xfa, 0xab, 0x41));

    /* Damage is refused, naming it, and changes nothing. */
    uint8_t bad[512];
    CHECK(out.len < sizeof(bad));
    memcpy(bad, out.buf, out.len);
    bad[0] = 0xc5;
    CHECK(load(&b, bad, out.len, why) < 0 && strstr(why, "reserved bit"));
    memcpy(bad, out.buf, out.len);
    bad[1] = 0xd7;
    CHECK(load(&b, bad, out.len, why) < 0 && strstr(why, "command 0xd7"));
    memcpy(bad, out.buf, out.len);
    bad[8] = 5; /* answers waiting */
    CHECK(load(&b, bad, out.len, why) < 0 && strstr(why, "answers waiting"));
    memcpy(bad, out.buf, out.len);
    bad[9] = 200; /* the keyboard's queue length */
    CHECK(load(&b, bad, out.len, why) < 0 && strstr(why, "keyboard's queue"));
    CHECK(load(&b, out.buf, out.len - 3, why) < 0);
    CHECK(load(&b, out.buf, 7, why) < 0);
    /* The keyboard's set: find it after its queue (len, bytes, flags, pending, scanning). */
    size_t kq = 9, set_at = kq + 1 + 2u * out.buf[kq] + 2;
    CHECK(out.buf[set_at] == 1);
    memcpy(bad, out.buf, out.len);
    bad[set_at] = 3;
    CHECK(load(&b, bad, out.len, why) < 0 && strstr(why, "set 3"));
    kbd(&b, 0xf2); /* b is as the v1 load left it */
    CHECK(GOT(&b, 0xfa, 0xab, 0x41));
    state_out_free(&out);
    drop_vm(&a);
    drop_vm(&b);
}

/* The DSDT's devices: names, IDs, resources, and AML that fits in its scope. */
static void test_aml(void)
{
    struct aml a;
    aml_init(&a);
    i8042_aml(&a);
    CHECK(!a.failed);
    static const uint8_t pnp0303[] = {0x0c, 0x41, 0xd0, 0x03, 0x03};
    static const uint8_t pnp0f13[] = {0x0c, 0x41, 0xd0, 0x0f, 0x13};
    static const uint8_t io60[] = {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01};
    static const uint8_t io64[] = {0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01};
    static const uint8_t irq1[] = {0x22, 0x02, 0x00}, irq12[] = {0x22, 0x00, 0x10};
    const struct {
        const uint8_t *p;
        size_t n;
    } want[] = {{(const uint8_t *)"KBD_", 4},
                {(const uint8_t *)"MOU_", 4},
                {pnp0303, 5},
                {pnp0f13, 5},
                {io60, 8},
                {io64, 8},
                {irq1, 3},
                {irq12, 3}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool found = false;
        for (size_t j = 0; j + want[i].n <= a.len && !found; j++)
            found = !memcmp(a.buf + j, want[i].p, want[i].n);
        CHECK(found);
    }
    CHECK(a.buf[0] == 0x5b && a.buf[1] == 0x82); /* DeviceOp */
    aml_free(&a);
}

/* hv-vmm's tables (x86/acpi.c) carry them, and the FADT says there is an 8042. */
static void test_tables(void)
{
    static uint8_t buf[64 * 1024];
    static struct vm vm;
    make_vm(&vm); /* the DSDT is what the VM's devices write (device_ops.aml) */
    const struct acpi_config acfg = {
        .nr_cpus = 2, .devices = vm.devices, .ecam_base = MEM_PCI_ECAM_BASE};
    size_t len = acpi_build(buf, sizeof(buf), 0xe0000, &acfg);
    drop_vm(&vm);
    CHECK(len > 0);
    const uint8_t *dsdt = memmem(buf, len, "DSDT", 4), *fadt = memmem(buf, len, "FACP", 4);
    CHECK(dsdt && fadt);
    if (!dsdt || !fadt)
        return;
    uint32_t dlen = (uint32_t)(dsdt[4] | dsdt[5] << 8 | dsdt[6] << 16 | (uint32_t)dsdt[7] << 24);
    CHECK(acpi_checksum(dsdt, dlen) == 0);
    static const uint8_t pnp0303[] = {0x0c, 0x41, 0xd0, 0x03, 0x03};
    static const uint8_t pnp0f13[] = {0x0c, 0x41, 0xd0, 0x0f, 0x13};
    CHECK(memmem(dsdt, dlen, pnp0303, sizeof(pnp0303)) && memmem(dsdt, dlen, pnp0f13, 5));
    CHECK(fadt[109] & 0x02); /* IAPC_BOOT_ARCH: 8042 */
}

int main(void)
{
    test_controller();
    test_keyboard_commands();
    test_keys();
    test_typematic();
    test_mouse();
    test_never_read();
    test_save();
    test_aml();
    test_tables();
    CHECK_DONE();
}
