/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "check.h"
#include "focus.h"

#include <linux/input-event-codes.h>
#include <string.h>

static struct registry reg;
static struct focus foc;
static struct focus_out out;
static char err[128];

static int add(const char *name, uint32_t slot, bool uivm)
{
    struct disp_hello h = {DISP_HELLO, DISP_VERSION, uivm ? DISP_HELLO_UIVM : 0, slot, 0, ""};
    struct vm *v;

    strncpy(h.name, name, sizeof(h.name) - 1);
    v = reg_add(&reg, &h, err, sizeof(err));
    if (!v)
        return 0;
    int id = v->id;
    focus_vm_added(&foc, &reg, id, &out);
    return id;
}

static void key(uint32_t code, bool pressed)
{
    focus_key(&foc, &reg, code, pressed, &out);
}

/* Presses Ctrl+Alt+code and releases all; returns the events the VMs got, counted. */
static int combo(uint32_t code, int *focus_changes)
{
    int n = 0;

    *focus_changes = 0;
    uint32_t seq[][2] = {{KEY_LEFTCTRL, 1}, {KEY_LEFTALT, 1}, {code, 1},
                         {code, 0},         {KEY_LEFTALT, 0}, {KEY_LEFTCTRL, 0}};
    for (unsigned i = 0; i < 6; i++) {
        key(seq[i][0], seq[i][1]);
        for (int j = 0; j < out.n; j++) {
            CHECK(out.ev[j].code != code); /* the hotkey itself never reaches a VM */
            n++;
        }
        if (out.new_focus != out.old_focus)
            (*focus_changes)++;
    }
    return n;
}

static void test_registry(void)
{
    reg_init(&reg);
    focus_init(&foc);
    int a = add("a", 0, false);
    int b = add("b", 0, false);
    int u = add("ui", 0, true);
    int c = add("c", 5, false);

    CHECK(a && b && u && c);
    CHECK(reg_by_slot(&reg, 1)->id == a);
    CHECK(reg_by_slot(&reg, 2)->id == b);
    CHECK(reg_by_slot(&reg, 0)->id == u);
    CHECK(reg_by_slot(&reg, 5)->id == c);
    CHECK(reg.vms[0].id == u && reg.vms[1].id == a && reg.vms[3].id == c);
    CHECK(add("d", 5, false) == 0 && strstr(err, "taken"));
    CHECK(add("u2", 0, true) == 0 && strstr(err, "UIVM"));
    CHECK(foc.focused == a); /* the first VM to connect */

    for (int i = 0; i < 6; i++) /* slots 3, 4, 6, 7, 8, 9 */
        CHECK(add("more", 0, false));
    CHECK(reg_by_slot(&reg, 9) != NULL);
    int extra = add("extra", 0, false);
    CHECK(extra && reg_by_id(&reg, extra)->slot == REG_NO_SLOT);
    CHECK(reg.vms[reg.count - 1].id == extra);
    reg_remove(&reg, extra);
    CHECK(!reg_by_id(&reg, extra));
}

static void test_hotkeys(void)
{
    int changes, n;

    reg_init(&reg);
    focus_init(&foc);
    int a = add("a", 0, false);
    int b = add("b", 0, false);

    key(KEY_Q, true);
    CHECK(out.n == 1 && out.ev[0].vm == a && out.ev[0].code == KEY_Q && out.ev[0].pressed);
    key(KEY_Q, false);
    CHECK(out.n == 1 && out.ev[0].vm == a && !out.ev[0].pressed);

    /* Ctrl+Alt+2: a sees ctrl, alt pressed, then released when it loses focus. */
    n = combo(KEY_2, &changes);
    CHECK(changes == 1 && foc.focused == b);
    CHECK(n == 4);
    key(KEY_W, true);
    CHECK(out.n == 1 && out.ev[0].vm == b);
    key(KEY_W, false);

    /* A slot with no VM: nothing happens. */
    combo(KEY_7, &changes);
    CHECK(changes == 0 && foc.focused == b);
    /* No UIVM: Ctrl+Alt+0 does nothing. */
    combo(KEY_0, &changes);
    CHECK(changes == 0);

    /* A key held across a switch is released in the old VM, not sent to the new one. */
    key(KEY_E, true);
    combo(KEY_1, &changes);
    CHECK(foc.focused == a);
    key(KEY_E, false);
    CHECK(out.n == 0);

    /* Ctrl+Alt without a hotkey reaches the VM (e.g. Ctrl+Alt+Del). */
    key(KEY_LEFTCTRL, true);
    key(KEY_RIGHTALT, true);
    key(KEY_DELETE, true);
    CHECK(out.n == 1 && out.ev[0].code == KEY_DELETE && out.ev[0].vm == a);
    key(KEY_DELETE, false);
    key(KEY_RIGHTALT, false);
    key(KEY_LEFTCTRL, false);
}

static void test_overlay(void)
{
    int changes;

    reg_init(&reg);
    focus_init(&foc);
    int a = add("a", 0, false);
    int b = add("b", 0, false);
    int u = add("ui", 0, true);

    combo(KEY_TAB, &changes);
    CHECK(foc.overlay && changes == 0);
    CHECK(reg.vms[foc.sel].id == a);
    key(KEY_X, true); /* swallowed while the overlay is open */
    CHECK(out.n == 0);
    key(KEY_X, false);
    CHECK(out.n == 0);
    key(KEY_RIGHT, true);
    key(KEY_RIGHT, false);
    CHECK(reg.vms[foc.sel].id == b);
    key(KEY_RIGHT, true);
    key(KEY_RIGHT, false);
    CHECK(reg.vms[foc.sel].id == b); /* stays at the end */
    key(KEY_ENTER, true);
    CHECK(!foc.overlay && foc.focused == b && out.new_focus == b);
    key(KEY_ENTER, false);
    CHECK(out.n == 0);

    combo(KEY_TAB, &changes);
    key(KEY_LEFT, true);
    key(KEY_ESC, true);
    CHECK(!foc.overlay && foc.focused == b);
    key(KEY_ESC, false);
    key(KEY_LEFT, false);
    CHECK(out.n == 0);

    combo(KEY_0, &changes);
    CHECK(foc.focused == u);

    /* The focused VM goes away: the UIVM, else the first VM, takes the focus. */
    combo(KEY_2, &changes);
    focus_vm_removing(&foc, &reg, b, &out);
    reg_remove(&reg, b);
    CHECK(foc.focused == u && out.new_focus == u);
    focus_vm_removing(&foc, &reg, u, &out);
    reg_remove(&reg, u);
    CHECK(foc.focused == a);
    focus_vm_removing(&foc, &reg, a, &out);
    reg_remove(&reg, a);
    CHECK(foc.focused == 0);
    key(KEY_A, true);
    CHECK(out.n == 0);
}

int main(void)
{
    test_registry();
    test_hotkeys();
    test_overlay();
    CHECK_DONE();
}
