# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-switch end to end in a window: Xvfb, the SDL x11 driver, fake VMs, pixels.

Run with Debian's Python: /usr/bin/python3 -m pytest tests/switch
Needs a build (HV_BUILD_DIR, default build/) and scripts/deps.sh test.
"""

import os
import re
import socket
import time
from pathlib import Path

import pytest

from switchenv import REPO, SwitchEnv, wait_for

RED, RED_HEX = (0xCC, 0x20, 0x20), "cc2020"
BLUE, BLUE_HEX = (0x20, 0x40, 0xCC), "2040cc"
GUEST = (0, 40, 1280, 760)  # below the label bar
SCREEN_PIXELS = GUEST[2] * GUEST[3]

KEY_ESC, KEY_1, KEY_2, KEY_TAB = 1, 2, 3, 15
KEY_A, KEY_B, KEY_C, KEY_X, KEY_Y, KEY_Z = 30, 48, 46, 45, 21, 44
HOTKEYS = {KEY_1, KEY_2, KEY_TAB, KEY_ESC}


def shows(colour, share=0.3):
    """The guest area is mostly colour (the focused VM's own picture)."""
    return lambda s: s.count(colour, GUEST) > share * SCREEN_PIXELS


@pytest.fixture
def env(request):
    e = SwitchEnv()
    yield e
    failed = any(getattr(request.node, "rep_" + w, None) and getattr(request.node, "rep_" + w).failed
                 for w in ("setup", "call"))
    art = None
    if failed:
        root = Path(os.environ.get("HV_ARTIFACTS", REPO / "build" / "test-artifacts"))
        art = root / "switch" / re.sub(r"[^\w.-]", "_", request.node.name)
    alive = e.switch.poll() is None
    e.close(art)
    assert alive, "hv-switch died during the test"


@pytest.fixture
def two_vms(env):
    a = env.vm("red", RED_HEX)
    env.wait_screen(shows(RED), "red on the screen")
    b = env.vm("blue", BLUE_HEX, "--size", "1024x768")
    a.wait_line(lambda l: l == "welcome slot 1", what="its slot")
    b.wait_line(lambda l: l == "welcome slot 2", what="its slot")
    return env, a, b


def test_hotkey_switches_and_overlay_shows_both(two_vms):
    env, a, b = two_vms
    env.wait_screen(shows(RED), "red still on the screen after blue connected")

    env.key("ctrl+alt+2")
    s = env.wait_screen(shows(BLUE), "blue after Ctrl+Alt+2")
    assert s.count(RED, GUEST) == 0, "red is still visible beside blue"
    # The label bar is drawn in the focused VM's colour.
    assert s.count(BLUE, (0, 0, 1280, 20)) > 1280 * 10

    env.key("ctrl+alt+Tab")
    env.wait_screen(lambda s: s.count(RED, GUEST) > 50000 and s.count(BLUE, GUEST) > 50000,
                    "the overlay with both VMs")
    env.key("Escape")
    env.wait_screen(shows(BLUE), "blue again after Esc")

    env.key("ctrl+alt+1")
    env.wait_screen(shows(RED), "red after Ctrl+Alt+1")
    wait_for(lambda: env.stats()["switches"] >= 2, 10, "two switches in the stats")
    stats = env.stats()
    assert len(stats["samples_us"]) == stats["switches"]


def test_overlay_enter_focuses_selection(two_vms):
    env, a, b = two_vms
    env.key("ctrl+alt+Tab")
    env.wait_screen(lambda s: s.count(BLUE, GUEST) > 50000, "the overlay")
    env.key("Right", "Return")
    env.wait_screen(shows(BLUE), "blue after Right, Enter in the overlay")


def test_keys_reach_only_the_focused_vm(two_vms):
    env, a, b = two_vms
    env.type("abc")
    a.wait_line(lambda l: l == f"key {KEY_C} release", what="c")
    env.key("ctrl+alt+2")
    env.wait_screen(shows(BLUE), "blue")
    env.type("xyz")
    b.wait_line(lambda l: l == f"key {KEY_Z} release", what="z")
    env.key("ctrl+alt+Tab")
    env.wait_screen(lambda s: s.count(RED, GUEST) > 50000, "the overlay")
    env.key("Escape")
    env.key("ctrl+alt+1")
    env.wait_screen(shows(RED), "red")
    time.sleep(0.5)  # let any stray event arrive before checking that none did

    assert {KEY_A, KEY_B, KEY_C} <= set(a.keys()) and not {KEY_X, KEY_Y, KEY_Z} & set(a.keys())
    assert {KEY_X, KEY_Y, KEY_Z} <= set(b.keys()) and not {KEY_A, KEY_B, KEY_C} & set(b.keys())
    for vm in (a, b):
        seen = set(vm.keys()) | set(vm.keys(pressed=False))
        assert not seen & HOTKEYS, f"{vm.name} saw hotkey keys {seen & HOTKEYS}"
        # Every key it saw pressed was released (nothing stuck across switches).
        assert sorted(vm.keys()) == sorted(vm.keys(pressed=False))


def picture_rect(shot, colour, aspect):
    """The focused VM's picture, found on the screen: its colour's extent on a row, and its
    bottom edge (its top touches the label bar, drawn in the same colour)."""
    y = GUEST[1] + GUEST[3] // 2 - 200  # a row above the big name
    xs = [x for x in range(shot.width) if shot.count(colour, (x, y, 1, 1)) == 1]
    x = xs[0] + 2
    bottom = max(yy for yy in range(GUEST[1], shot.height) if shot.count(colour, (x, yy, 1, 1)))
    w = xs[-1] - xs[0] + 1
    h = round(w / aspect)
    return xs[0], bottom - h + 1, w, h


def test_pointer_lands_on_the_right_guest_pixel(two_vms):
    env, a, b = two_vms
    env.key("ctrl+alt+2")
    shot = env.wait_screen(shows(BLUE), "blue")
    px, py, pw, ph = picture_rect(shot, BLUE, 1024 / 768)
    assert pw < 1280 and ph > 700, "a 4:3 picture is pillarboxed on a 16:10 screen"
    a.log.write_text("")  # from now on red must see no pointer

    for fx, fy in ((0.25, 0.5), (0.75, 0.2)):
        sx, sy = px + int(fx * (pw - 1)), py + int(fy * (ph - 1))
        env.click(sx, sy)
        line = b.wait_line(lambda l: l.startswith("pointer") and " buttons 1 " in l,
                           what="a click")
        gx, gy = map(int, line.split()[-2:])
        # The guest is 1024x768: the click lands on the same fraction of it.
        assert abs(gx - fx * 1023) <= 2 and abs(gy - fy * 767) <= 2, line
        b.log.write_text("")  # next click's line only
    assert not any(l.startswith("pointer") for l in a.lines())


@pytest.mark.parametrize("kind", ["absurd-size", "bad-stride", "small-memfd", "unsealed",
                                  "damage-outside", "garbage"])
def test_hostile_producer_is_refused(env, kind):
    a = env.vm("red", RED_HEX)
    env.wait_screen(shows(RED), "red on the screen")
    evil = env.vm("evil", "00ff00", "--hostile", kind)
    wait_for(lambda: evil.proc.poll() is not None, 10, "hv-switch to close the hostile producer")
    assert "closed by hv-switch" in evil.lines()
    assert re.search(r"error: vm 'evil' refused: .*; closing it", env.log())
    assert env.switch.poll() is None
    env.wait_screen(shows(RED), "red still on the screen")

    # The others carry on: a new VM still connects and can be switched to.
    b = env.vm("blue", BLUE_HEX)
    b.wait_line(lambda l: l.startswith("welcome"), what="welcome")
    env.key("ctrl+alt+2")
    env.wait_screen(shows(BLUE), "blue after the hostile one")


def test_silent_connections_cannot_fill_the_slots(env):
    """Issue 12, defect 6: connections that never say hello are closed after 5 s,
    so that a flood of them cannot keep a VM from connecting."""
    a = env.vm("red", RED_HEX)
    env.wait_screen(shows(RED), "red on the screen")
    silent = []
    for _ in range(40):  # more than there are slots (16 VMs + 8 saying hello)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(env.sock)
        silent.append(s)
    t0 = time.monotonic()
    for s in silent:
        s.settimeout(20)
        try:
            assert s.recv(64) == b""  # closed by hv-switch, or never taken
        except ConnectionResetError:
            pass
    closed_after = time.monotonic() - t0
    assert closed_after < 20, closed_after
    assert "said no hello within 5 s" in env.log()
    b = env.vm("blue", BLUE_HEX)
    b.wait_line(lambda l: l.startswith("welcome"), what="welcome after the silent ones")
    env.key("ctrl+alt+2")
    env.wait_screen(shows(BLUE), "blue")
    assert env.switch.poll() is None


def test_vms_come_and_go(env):
    a = env.vm("red", RED_HEX)
    env.wait_screen(shows(RED), "red")
    ghost = env.vm("ghost", "20c020", "--no-frame")
    ghost.wait_line(lambda l: l == "welcome slot 2", what="its slot")
    env.key("ctrl+alt+2")
    # A VM without a frame: a placeholder, with its own colour in the bar.
    s = env.wait_screen(lambda s: s.count((0x20, 0x20, 0x20), GUEST, tol=4) > 0.5 * SCREEN_PIXELS,
                        "ghost's placeholder")
    assert s.count((0x20, 0xC0, 0x20), (0, 0, 1280, 20)) > 1280 * 10

    b = env.vm("blue", BLUE_HEX)
    b.wait_line(lambda l: l == "welcome slot 3", what="its slot")
    env.key("ctrl+alt+3")
    env.wait_screen(shows(BLUE), "blue")
    b.proc.terminate()
    # The focused VM went away: another takes the screen, hv-switch carries on.
    env.wait_screen(lambda s: shows(RED)(s) or s.count((0x20, 0x20, 0x20), GUEST, tol=4) > 0,
                    "another VM after blue stopped")
    env.key("ctrl+alt+1")
    env.wait_screen(shows(RED), "red after blue stopped")


VM_UID = 1900000042  # a user like hvd's VM users (hv/hvd/vmuser.c)


def test_producer_is_who_hvds_record_says(env):
    """Issue 12: a producer that runs as a VM's user, not as root, is what
    hvd's record for that user says (name, colour, slot, UIVM or not),
    whatever its HELLO claims; with no record, or a record anyone may
    write, it is refused."""
    from switchctl import SwitchCtl
    from switchenv import tool
    os.chmod(env.dir, 0o755)      # the VM's user must reach the socket
    os.chmod(env.sock, 0o666)

    def as_vm_user(name):
        return env.spawn(["setpriv", f"--reuid={VM_UID}", f"--regid={VM_UID}", "--clear-groups",
                          tool("hv-fake-display"), "--socket", env.sock, "--name", name,
                          "--uivm", "--colour", "00ff00"], env.dir / f"producer-{name}.log")

    def refused(name, why):
        p = as_vm_user(name)
        wait_for(lambda: p.poll() is not None, 10, f"hv-switch to close {name}")
        assert re.search(rf"refused: it says it is '{name}'.*{why}", env.log()), env.log()[-2000:]

    refused("impostor", f"runs as user {VM_UID}, for whom hvd left no record")
    records = env.dir / "displays"
    records.mkdir(mode=0o755)
    record = records / str(VM_UID)
    record.write_text("name work\ncolour 2020cc\nslot 3\nuivm no\n")
    os.chmod(record, 0o666)
    refused("impostor2", "is not a regular file of root's that only root may write")
    record.write_text("name work\ncolour 2020cc\nslot 3\nuivm maybe\n")
    os.chmod(record, 0o644)
    refused("impostor3", "uivm: yes or no")

    record.write_text("name work\ncolour 2020cc\nslot 3\nuivm no\n")
    p = as_vm_user("impostor4")
    ctl = SwitchCtl(env.control)
    try:
        vms = wait_for(lambda: ctl.list(), 10, "the producer to be listed")
        assert [(v["slot"], v["name"], v["colour"]) for v in vms] == [(3, "work", 0x2020CC)]
    finally:
        ctl.close()
    assert p.poll() is None
    assert "hvd's record says 'work' (slot 3): the record is what counts" in env.log()
