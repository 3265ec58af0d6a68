# SPDX-License-Identifier: GPL-2.0-or-later
"""The PS/2 keyboard and mouse behind hv-vmm's i8042 (issue 14), on the
virtual laptop, through the guest's own drivers.

hv-switch runs on the laptop's panel as in tests/switch/test_vm_display.py;
hv-vmm runs two guests with --display:

- "ps2": the desktop test guest (Debian's generic kernel: i8042 and atkbd
  built in, psmouse a module) with virtio_input refused by the kernel
  (module_blacklist=virtio_input), as an OS without virtio drivers is. Linux
  binds i8042 through the DSDT's PNP0303/PNP0F13; atkbd and psmouse find the
  keyboard and the mouse.
- "virt": the cloud test guest, which has both the virtio keyboard and,
  built in, atkbd: keys go to the virtio keyboard only, never twice.

Each runs tests/guest/tests/ps2.sh: hv-desk --all logs every input event of
every input device on the console with the device it came from. Keys and
the pointer come from the laptop's QMP (send-key into its PS/2 keyboard,
input-send-event into its usb-tablet), which hv-switch reads.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_ps2.py -v
"""

import re
import time

import pytest
from panel import SOCK, VMM, start_switch, start_vm
from vlaptop import wait_for

pytestmark = pytest.mark.vlaptop

KEY_Q, KEY_A, KEY_B, KEY_UP, KEY_DELETE, BTN_LEFT = 16, 30, 48, 103, 111, 272


def console(laptop, name):
    return laptop.run(f"cat /tmp/{name}.con").stdout


def devices(laptop, name):
    """{eventN: device name} as hv-desk opened them."""
    return dict(re.findall(r'^hv-desk: input (event\d+) "([^"]*)"', console(laptop, name), re.M))


def node(laptop, name, pattern):
    for ev, dev in devices(laptop, name).items():
        if re.search(pattern, dev):
            return ev
    return None


def keys_on(laptop, name, ev):
    """[(code, value)] of the EV_KEY events of input device ev, in order."""
    return [(int(c), int(v)) for c, v, e in
            re.findall(r"^hv-desk: key (\d+) (-?\d+) (event\d+)", console(laptop, name), re.M)
            if e == ev]


def rel_on(laptop, name, ev):
    return [(int(x), int(y)) for x, y, e in
            re.findall(r"^hv-desk: rel (-?\d+) (-?\d+) (event\d+)", console(laptop, name), re.M)
            if e == ev]


def logs(laptop):
    return (f"\n--- hv-switch ---\n{laptop.run('tail -20 /tmp/switch.log').stdout}"
            f"\n--- hv-vmm ps2 ---\n{laptop.run('tail -5 /tmp/ps2.vmm').stdout}"
            f"\n--- hv-vmm virt ---\n{laptop.run('tail -5 /tmp/virt.vmm').stdout}"
            f"\n--- ps2 console: the kernel's input lines ---\n"
            + "\n".join(ln for ln in console(laptop, "ps2").splitlines()
                        if re.search(r"i8042|serio|psmouse|atkbd|input:|PNP", ln))
            + f"\n--- ps2 console ---\n{console(laptop, 'ps2')[-1500:]}")


def focus(laptop, name, slot):
    """Ctrl+Alt+slot, and wait until hv-switch has moved the focus: keys and
    the tablet are different devices, and a pointer event sent at once may
    overtake the hotkey and land on the VM that had the focus."""
    laptop.send_key("ctrl", "alt", str(slot))
    wait_for(lambda: re.findall(r"focus: (\S+)", laptop.run("cat /tmp/switch.log").stdout)[-1:]
             == [name], 30, f"hv-switch's focus on {name}")


def start_guest(lt, name, kernel, initrd, slot, extra_cmdline=""):
    start_vm(lt, name, kernel, initrd, f"hv.test=ps2 hv.name={name} {extra_cmdline}",
             f"slot={slot}")


@pytest.fixture(scope="module")
def ps2(laptop):
    for path in (VMM, "/usr/local/bin/hv-switch", laptop.desktop_kernel, laptop.guest_kernel):
        if laptop.run(f"test -e {path}").rc != 0:
            pytest.fail(f"{path} is not in the laptop image")

    def setup(lt):
        start_switch(lt)
        start_guest(lt, "ps2", lt.desktop_kernel, lt.desktop_initrd, 1,
                    "module_blacklist=virtio_input hv.colour=208040")
        start_guest(lt, "virt", lt.guest_kernel, lt.guest_initrd, 2)
        for name in ("ps2", "virt"):
            wait_for(lambda: "hv-desk: input" in console(lt, name)
                     or "hv-guest: test" in console(lt, name), 240,
                     lambda: f"guest {name}'s hv-desk" + logs(lt))
        wait_for(lambda: lt.run("grep -c connected /tmp/switch.log").stdout.strip() == "2",
                 30, lambda: "both VMs connected to hv-switch" + logs(lt))
    laptop.prepare(setup)
    yield laptop
    if not laptop.crashed():
        laptop.run("pkill -x hv-vmm; pkill -x hv-switch", timeout=30)


def test_the_guest_binds_its_ps2_keyboard_and_mouse(ps2):
    """The DSDT's PNP0303/PNP0F13: Linux's i8042 binds them, atkbd finds a
    translated MF2 keyboard and psmouse an IntelliMouse Explorer."""
    con = console(ps2, "ps2")
    assert re.search(r"i8042: PNP: PS/2 Controller \[PNP0303:\w+,PNP0f13:\w+\] "
                     r"at 0x60,0x64 irq 1,12", con, re.I), con[-3000:]
    assert node(ps2, "ps2", r"^AT Translated Set 2 keyboard$"), con[-3000:]
    assert node(ps2, "ps2", r"PS/2.*Explorer Mouse"), con[-3000:]
    assert not node(ps2, "ps2", r"^hv keyboard$"), con[-3000:]  # virtio_input refused
    # The cloud guest has both; hv-desk lists both.
    assert node(ps2, "virt", r"^AT Translated Set 2 keyboard$"), console(ps2, "virt")[-3000:]
    assert node(ps2, "virt", r"^hv keyboard$"), console(ps2, "virt")[-3000:]


def test_keys_typed_on_the_laptop_reach_the_ps2_keyboard(ps2):
    kbd = node(ps2, "ps2", r"^AT Translated Set 2 keyboard$")
    focus(ps2, "ps2", 1)
    for key in ("a", "up", "delete"):
        ps2.send_key(key)
    want = [(KEY_A, 1), (KEY_A, 0), (KEY_UP, 1), (KEY_UP, 0), (KEY_DELETE, 1), (KEY_DELETE, 0)]
    wait_for(lambda: all(k in keys_on(ps2, "ps2", kbd) for k in want), 30,
             lambda: "a, up and delete on the guest's AT keyboard" + logs(ps2))
    # In order, each pressed and released once (E0 keys included). A key whose
    # release came later than the typematic delay (250 ms: the laptop is slow)
    # may repeat in between, as a real keyboard's does: repeats (2) are left out.
    seen = [k for k in keys_on(ps2, "ps2", kbd) if k[0] in (KEY_A, KEY_UP, KEY_DELETE) and k[1] != 2]
    assert seen == want, seen


def test_a_held_key_repeats_on_the_ps2_keyboard(ps2):
    """hv-switch sends no repeats; the PS/2 keyboard repeats by itself (typematic)."""
    kbd = node(ps2, "ps2", r"^AT Translated Set 2 keyboard$")
    focus(ps2, "ps2", 1)
    ps2.send_key("b", hold_time=1500)
    wait_for(lambda: (KEY_B, 0) in keys_on(ps2, "ps2", kbd), 30, lambda: "b released" + logs(ps2))
    b = [v for c, v in keys_on(ps2, "ps2", kbd) if c == KEY_B]
    assert b[0] == 1 and b[-1] == 0 and b.count(2) >= 3, b


def test_the_mouse_follows_the_laptops_pointer(ps2):
    """Absolute positions become relative packets: right is +x, down is +y."""
    mouse = node(ps2, "ps2", r"PS/2.*Mouse")
    focus(ps2, "ps2", 1)
    # The first position the mouse gets has nothing to move by (the laptop may
    # merge two quick moves into one): give it time, then move from there.
    ps2.mouse_move(8000, 16000)
    time.sleep(2)
    before = len(rel_on(ps2, "ps2", mouse))
    ps2.mouse_move(24000, 16000)
    wait_for(lambda: sum(x for x, _ in rel_on(ps2, "ps2", mouse)[before:]) > 200, 30,
             lambda: "the guest's mouse to move right" + logs(ps2))
    moved = rel_on(ps2, "ps2", mouse)[before:]
    assert abs(sum(y for _, y in moved)) < 10, moved
    before = len(rel_on(ps2, "ps2", mouse))
    ps2.mouse_move(24000, 26000)
    wait_for(lambda: sum(y for _, y in rel_on(ps2, "ps2", mouse)[before:]) > 100, 30,
             lambda: "the guest's mouse to move down" + logs(ps2))
    ps2.mouse_click("left")
    wait_for(lambda: [(BTN_LEFT, 1), (BTN_LEFT, 0)] ==
             [k for k in keys_on(ps2, "ps2", mouse) if k[0] == BTN_LEFT], 30,
             lambda: "a left click on the guest's mouse" + logs(ps2))


def test_keys_reach_a_virtio_guest_once(ps2):
    """A guest with both drivers gets each key from its virtio keyboard only."""
    at = node(ps2, "virt", r"^AT Translated Set 2 keyboard$")
    hv = node(ps2, "virt", r"^hv keyboard$")
    focus(ps2, "virt", 2)
    ps2.send_key("q")
    wait_for(lambda: (KEY_Q, 0) in keys_on(ps2, "virt", hv), 30,
             lambda: "q on the virt guest's virtio keyboard" + logs(ps2))
    assert [k for k in keys_on(ps2, "virt", hv) if k[0] == KEY_Q] == [(KEY_Q, 1), (KEY_Q, 0)]
    assert keys_on(ps2, "virt", at) == [], keys_on(ps2, "virt", at)
    # And nothing of it went to the ps2 guest, which is not focused.
    assert KEY_Q not in [c for c, _ in keys_on(ps2, "ps2",
                                               node(ps2, "ps2", r"^AT Translated"))]


def wheel_up(laptop):
    laptop.qmp("input-send-event", events=[{"type": "btn", "data": {"down": d, "button": "wheel-up"}}
                                           for d in (True, False)])


def wheels(laptop, name):
    return [int(v) for v in re.findall(r"^hv-desk: wheel 0 (-?\d+)", console(laptop, name), re.M)]


def test_the_wheel_scrolls_the_ps2_mouse(ps2):
    """A notch up on the laptop's tablet: REL_WHEEL +1 from the IntelliMouse
    Explorer. The virtio guest's tablet is asked first, so that a failure
    says whether the wheel reached hv-vmm at all."""
    focus(ps2, "virt", 2)
    wheel_up(ps2)
    try:
        wait_for(lambda: wheels(ps2, "virt"), 20, "a wheel notch on the virtio tablet")
    except AssertionError:
        virt = "the virtio guest saw no wheel either: it did not reach hv-vmm"
    else:
        virt = f"the virtio guest saw {wheels(ps2, 'virt')}"
    focus(ps2, "ps2", 1)
    wheel_up(ps2)
    wait_for(lambda: wheels(ps2, "ps2"), 30, lambda: f"a wheel notch ({virt})" + logs(ps2))
    assert wheels(ps2, "ps2") == [1], (wheels(ps2, "ps2"), virt)


def test_seabios_finds_the_ps2_keyboard(ps2):
    """Firmware: SeaBIOS initializes the keyboard behind the i8042 (it timed
    out in ps2_recvbyte when the i8042 was only a reset line)."""
    res = ps2.run(f"timeout 20 {VMM} --firmware /usr/share/seabios/bios.bin --memory 128M "
                  "--console file:/tmp/sb.con --firmware-log /tmp/sb.log --on-reboot exit "
                  ">/tmp/sb.vmm 2>&1; cat /tmp/sb.log", timeout=60)
    assert "PS2 keyboard initialized" in res.stdout, res.stdout[-3000:]
    assert "ps2_recvbyte" not in res.stdout, res.stdout[-3000:]
