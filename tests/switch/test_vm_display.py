# SPDX-License-Identifier: GPL-2.0-or-later
"""Real guests' virtio-gpu pictures on the virtual laptop's panel (issue 5).

hv-switch runs on the laptop's panel (SDL2 on KMSDRM, virtio-vga in the
laptop, captured with QMP screendump); hv-vmm runs two desktop test guests
(Debian's generic kernel with virtio-gpu and virtio-input, see
tests/guest/build_guest.py) with --display. Each guest runs
tests/guest/tests/desk.sh: hv-desk paints its colour and name on /dev/fb0
(DRM fbdev emulation -> virtio-gpu -> hv-vmm -> SCANOUT + DAMAGE -> hv-switch)
and logs every keyboard and tablet event it gets on its console.

The keys and the mouse go through QMP into the laptop's PS/2 keyboard and
usb-tablet, which hv-switch reads (SDL's evdev, and absptr.c for the tablet),
and reach the guests' virtio-input devices.

Run alone:  /usr/bin/python3 -m pytest tests/switch/test_vm_display.py -v
One laptop boot for the module; the tests run in order and share the guests.
"""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from panel import SOCK, VMM, start_switch, start_vm
from vlaptop import wait_for

pytestmark = pytest.mark.vlaptop

REPO = Path(__file__).resolve().parents[2]
RED, BLUE = (0xC0, 0x20, 0x20), (0x20, 0x40, 0xC0)  # what the guests paint
# name: (slot, what the guest paints, the VM's colour in hv-switch's bar). They
# differ so that counting a guest's colour counts its picture, not the bar.
GUESTS = {"red": (1, RED, "c03030"), "blue": (2, BLUE, "3050c0")}
# evdev codes of the hotkeys' last keys: no guest may ever see them.
KEY_1, KEY_2, KEY_3, KEY_TAB, KEY_Q, KEY_W = 2, 3, 4, 15, 16, 17


def hexcol(c):
    return "%02x%02x%02x" % c


def console(laptop, name):
    return laptop.run(f"cat /tmp/{name}.con").stdout


def keys_seen(laptop, name):
    """[(code, value)] of the guest's EV_KEY events, in order."""
    return [(int(c), int(v)) for c, v in
            re.findall(r"^hv-desk: key (\d+) (-?\d+)", console(laptop, name), re.M)]


def abs_seen(laptop, name):
    return [(int(x), int(y)) for x, y in
            re.findall(r"^hv-desk: abs (-?\d+) (-?\d+)", console(laptop, name), re.M)]


def share(shot, colour):
    return shot.count(colour) / (shot.width * shot.height)


def logs(laptop):
    return (f"\n--- hv-switch ---\n{laptop.run('tail -20 /tmp/switch.log').stdout}"
            f"\n--- hv-vmm red ---\n{laptop.run('tail -5 /tmp/red.vmm').stdout}"
            f"\n--- hv-vmm blue ---\n{laptop.run('tail -5 /tmp/blue.vmm').stdout}")


def shows(laptop, colour, other, timeout=30):
    """Waits until colour fills most of the panel and other is absent."""
    def check():
        shot = laptop.screendump()
        return shot if share(shot, colour) > 0.5 and shot.count(other) == 0 else None
    return wait_for(check, timeout, lambda: f"the panel to show {hexcol(colour)} only" + logs(laptop))


def start_guest(lt, name, extra=""):
    """One of GUESTS in the background, with its control socket /tmp/NAME.ctl."""
    slot, colour, bar = GUESTS[name]
    start_vm(lt, name, lt.desktop_kernel, lt.desktop_initrd,
             f"quiet hv.test=desk hv.colour={hexcol(colour)} hv.name={name}",
             f"colour={bar},slot={slot}", f"--control /tmp/{name}.ctl {extra}")


@pytest.fixture(scope="module")
def desk(laptop):
    for path in (VMM, "/usr/local/bin/hv-switch", laptop.desktop_kernel, laptop.desktop_initrd):
        if laptop.run(f"test -e {path}").rc != 0:
            pytest.fail(f"{path} is not in the laptop image")

    def setup(lt):
        start_switch(lt)
        for name in GUESTS:
            start_guest(lt, name)
        for name in GUESTS:
            wait_for(lambda: "hv-desk: painted" in console(lt, name)
                     or "hv-guest: test" in console(lt, name), 240,
                     f"guest {name} to paint{logs(lt)}\n--- console ---\n"
                     f"{console(lt, name)[-2000:]}")
            assert "hv-desk: painted" in console(lt, name), console(lt, name)[-2000:]
        wait_for(lambda: lt.run("grep -c connected /tmp/switch.log").stdout.strip() == "2",
                 30, lambda: "both VMs connected to hv-switch" + logs(lt))
    laptop.prepare(setup)
    yield laptop
    if not laptop.crashed():
        laptop.run("pkill -x hv-vmm; pkill -x hv-switch", timeout=30)


@pytest.fixture(autouse=True)
def _dump_on_failure(request, laptop):
    """Keeps the panel and the logs of a failed test in $HV_ARTIFACTS/switch/."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed:
        return
    out = Path(os.environ.get("HV_ARTIFACTS") or Path(__file__).resolve().parents[2] /
               "build" / "test-artifacts") / "switch" / request.node.name
    out.mkdir(parents=True, exist_ok=True)
    try:
        laptop.screendump(out / "panel.png")
        for f in ("switch.log", "red.con", "blue.con", "evil.con", "red.vmm", "blue.vmm",
                  "evil.vmm"):
            (out / f).write_text(laptop.run(f"cat /tmp/{f} 2>/dev/null").stdout)
    except Exception as e:  # the laptop may be gone
        (out / "error.txt").write_text(str(e))


def test_panel_shows_guest_a(desk):
    desk.send_key("ctrl", "alt", "1")
    shot = shows(desk, RED, BLUE)
    assert share(shot, RED) > 0.7
    assert "hv-guest: fb0 1280,800" in console(desk, "red")  # EDID/display info size


def test_hotkey_shows_guest_b(desk):
    desk.send_key("ctrl", "alt", "2")
    shows(desk, BLUE, RED)
    assert "focus: blue" in desk.run("tail -3 /tmp/switch.log").stdout


def test_overlay_shows_both(desk):
    desk.send_key("ctrl", "alt", "tab")

    def both():
        shot = desk.screendump()
        return share(shot, RED) > 0.05 and share(shot, BLUE) > 0.05
    wait_for(both, 30, lambda: "the overlay with both guests" + logs(desk))
    desk.send_key("esc")
    shows(desk, BLUE, RED)


def test_keys_reach_only_the_focused_guest(desk):
    desk.send_key("ctrl", "alt", "1")
    shows(desk, RED, BLUE)
    desk.send_key("q")
    wait_for(lambda: (KEY_Q, 0) in keys_seen(desk, "red"), 30, "red to get Q")
    desk.send_key("ctrl", "alt", "2")
    shows(desk, BLUE, RED)
    desk.send_key("w")
    wait_for(lambda: (KEY_W, 0) in keys_seen(desk, "blue"), 30, "blue to get W")
    time.sleep(1)
    red, blue = keys_seen(desk, "red"), keys_seen(desk, "blue")
    assert (KEY_Q, 1) in red and KEY_W not in {c for c, _ in red}, red
    assert (KEY_W, 1) in blue and KEY_Q not in {c for c, _ in blue}, blue


def picture_box(shot, colour):
    """(x0, y0, x1, y1) of the pixels of colour (every 4th pixel looked at)."""
    want = bytes(colour)
    xs, ys = [], []
    for y in range(0, shot.height, 4):
        row = shot.rgb[y * shot.width * 3:(y + 1) * shot.width * 3]
        for x in range(0, shot.width, 4):
            if row[x * 3:x * 3 + 3] == want:
                xs.append(x)
                ys.append(y)
    return min(xs), min(ys), max(xs), max(ys)


def test_tablet_lands_on_the_guests_coordinates(desk):
    desk.send_key("ctrl", "alt", "2")
    shot = shows(desk, BLUE, RED)
    x0, y0, x1, y1 = picture_box(shot, BLUE)
    for fx, fy in ((0.25, 0.75), (0.8, 0.2), (0.5, 0.5)):
        px, py = x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)
        desk.mouse_move(round(px * 32767 / (shot.width - 1)), round(py * 32767 / (shot.height - 1)))
        want = (fx * 32767, fy * 32767)

        def landed():
            seen = abs_seen(desk, "blue")
            return seen and all(abs(g - w) < 0.02 * 32767 for g, w in zip(seen[-1], want))
        wait_for(landed, 30, lambda: f"blue's tablet near {want} (seen {abs_seen(desk, 'blue')[-3:]})")
    assert abs_seen(desk, "red") == [], "the unfocused guest got pointer events"


def clicks_seen(laptop, name):
    """[(button, value, x, y)] of the guest's button changes and where they were."""
    return [tuple(int(v) for v in m) for m in
            re.findall(r"^hv-desk: click (\d+) (-?\d+) (-?\d+) (-?\d+)", console(laptop, name),
                       re.M)]


def test_a_click_lands_where_it_was_made_while_the_switcher_is_busy(desk):
    """hv-switch reads the tablet itself and SDL reads it too: a click made
    while hv-switch cannot keep up (here: stopped, so that everything waits
    in both readers' queues) still reaches the guest where it was made, not
    at the position before it or after it, nor at SDL's unscaled one.
    (The release may come with the next position: the laptop's QEMU tablet
    merges a button's release with a move that follows before the laptop's
    USB driver polls it, as a real tablet may.)"""
    desk.send_key("ctrl", "alt", "2")
    shot = shows(desk, BLUE, RED)
    x0, y0, x1, y1 = picture_box(shot, BLUE)
    before = len(clicks_seen(desk, "blue"))

    def to(fx, fy):
        px, py = x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)
        desk.mouse_move(round(px * 32767 / (shot.width - 1)), round(py * 32767 / (shot.height - 1)))
    to(0.3, 0.3)
    wait_for(lambda: abs_seen(desk, "blue") and abs(abs_seen(desk, "blue")[-1][0] - 0.3 * 32767)
             < 0.02 * 32767, 30, lambda: "blue's tablet at the start" + logs(desk))
    pid = desk.run("pgrep -x hv-switch").stdout.split()[0]
    desk.check(f"kill -STOP {pid}")
    try:
        to(0.7, 0.6)
        desk.mouse_click()
        time.sleep(0.5)  # a person's pause: usually lets the release go alone
        to(0.2, 0.9)
    finally:
        desk.check(f"kill -CONT {pid}")

    def clicked():
        new = clicks_seen(desk, "blue")[before:]
        return new if len(new) >= 2 else None
    press, release = wait_for(clicked, 30, lambda: "blue's click" + logs(desk))[:2]
    assert (press[:2], release[:2]) == ((272, 1), (272, 0)), (press, release)

    def near(got, fx, fy):
        return abs(got[0] - fx * 32767) < 0.02 * 32767 and abs(got[1] - fy * 32767) < 0.02 * 32767
    assert near(press[2:], 0.7, 0.6), \
        f"the click landed at {press[2:]}, made at {(0.7 * 32767, 0.6 * 32767)}"
    assert near(release[2:], 0.7, 0.6) or near(release[2:], 0.2, 0.9), \
        f"the button was released at {release[2:]}"
    wait_for(lambda: abs(abs_seen(desk, "blue")[-1][1] - 0.9 * 32767) < 0.02 * 32767, 30,
             lambda: "blue's tablet where it went after the click" + logs(desk))
    assert clicks_seen(desk, "red") == [], "the unfocused guest got a click"


def test_hostile_producers_are_refused_on_the_panel(desk):
    """From a producer on the laptop (hv-fake-display): a real guest's kernel
    driver never sends such requests; hv-vmm's own refusals of a guest's bad
    virtio-gpu requests are covered by test_gpu and fuzz_gpu."""
    for i, kind in enumerate(("absurd-size", "bad-stride", "small-memfd", "unsealed",
                              "damage-outside", "garbage")):
        desk.run(f"timeout 20 hv-fake-display --socket {SOCK} --name bad{i} --hostile {kind} "
                 f">/tmp/bad{i}.log 2>&1", timeout=40)
        wait_for(lambda: f"'bad{i}' refused" in desk.run("cat /tmp/switch.log").stdout,
                 20, lambda: f"hv-switch to refuse {kind}" + logs(desk))
    assert desk.run("pgrep -x hv-switch").rc == 0, logs(desk)
    assert desk.run("pgrep -x hv-vmm | wc -l").stdout.strip() == "2", logs(desk)
    shows(desk, BLUE, RED)


GREEN = (0x20, 0xC0, 0x40)
HOSTILE_GPU = {  # request: the answer wanted (virtio-gpu response types)
    "create-ok": 0x1100, "create-huge": 0x1205, "backing-outside": 0x1205,
    "backing-ok": 0x1100, "scanout-absurd": 0x1205, "transfer-outside": 0x1205,
    "scanout-ok": 0x1100, "transfer-ok": 0x1100, "flush-ok": 0x1100,
}


def test_hostile_guest_gpu_driver_is_refused(desk):
    """A third guest unbinds Linux's virtio-gpu driver and drives the device
    itself (tests/guest/tools/hv-hostile-gpu.c): a 65536x65536 resource,
    backing outside guest RAM, a 9000x9000 scanout, a transfer whose rows
    run past the backing are refused; the same device then shows a picture;
    every hv-vmm and hv-switch keep running and the others keep showing."""
    desk.check(
        f"setsid {VMM} --name evil --kernel {desk.desktop_kernel} "
        f"--initrd {desk.desktop_initrd} --memory 256M "
        f"--cmdline 'console=ttyS0 panic=-1 quiet hv.test=hostile-gpu "
        f"hv.colour={hexcol(GREEN)} hv.hold=600' --console file:/tmp/evil.con "
        f"--display {SOCK},name=evil,colour=40a060,slot=3 </dev/null >/tmp/evil.vmm 2>&1 &")
    wait_for(lambda: "hostile-gpu: flush-ok" in console(desk, "evil")
             or "hv-guest: test" in console(desk, "evil"), 240,
             lambda: "the hostile guest's requests" + logs(desk) + console(desk, "evil")[-1500:])
    got = dict(re.findall(r"^hostile-gpu: (\S+) resp (0x[0-9a-f]+)", console(desk, "evil"), re.M))
    assert {k: int(v, 16) for k, v in got.items()} == HOSTILE_GPU, (got, console(desk, "evil"))
    assert desk.run("pgrep -x hv-vmm | wc -l").stdout.strip() == "3", logs(desk)
    assert desk.run("pgrep -x hv-switch").rc == 0, logs(desk)
    print(desk.run("cat /tmp/evil.vmm").stdout)
    desk.send_key("ctrl", "alt", "3")  # its 64x64 picture, scaled to the panel
    shows(desk, GREEN, BLUE)
    desk.send_key("ctrl", "alt", "2")
    shows(desk, BLUE, GREEN)


SAVE_CLIENT = "/tmp/save_client"
KEY_E, KEY_R = 18, 19


def key_typed(laptop, name, code):
    return wait_for(lambda: (code, 1) in keys_seen(laptop, name) and
                    (code, 0) in keys_seen(laptop, name), 30,
                    lambda: f"key {code} on {name}'s console" + logs(laptop))


def test_a_saved_guest_comes_back_with_its_picture_and_keys(desk, tmp_path):
    """Issue 13: red is saved (hvd's way: the file passed over the control
    socket) while it is on the panel and being typed at; its hv-vmm exits and
    its picture goes. A new hv-vmm restores it: the panel shows red again
    (the scanout is handed to hv-switch at load) and keys typed now reach the
    same guest program, which never started again."""
    exe = tmp_path / "save_client"
    subprocess.run(["gcc", "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                    "-Werror", "-o", str(exe), str(REPO / "tests" / "vmm" / "save_client.c")],
                   check=True)
    desk.put(exe, SAVE_CLIENT, mode=0o755)
    desk.send_key("ctrl", "alt", "1")
    shows(desk, RED, BLUE)
    desk.send_key("e")
    key_typed(desk, "red", KEY_E)
    boots = console(desk, "red").count("hv-guest: hello")

    res = desk.run(f"{SAVE_CLIENT} /tmp/red.ctl /tmp/red.hvsave exit", timeout=180)
    assert res.rc == 0, (res.stdout, res.stderr, logs(desk))
    wait_for(lambda: desk.run("kill -0 $(cat /tmp/red.pid)").rc != 0, 60,
             lambda: "red's hv-vmm to exit after the save" + logs(desk))
    wait_for(lambda: share(desk.screendump(), RED) < 0.01, 30,
             lambda: "red's picture to leave the panel" + logs(desk))
    assert desk.run("test -s /tmp/red.hvsave").rc == 0

    start_guest(desk, "red", "--restore /tmp/red.hvsave")
    wait_for(lambda: desk.run("grep -c \"vm 'red' connected\" /tmp/switch.log").stdout.strip()
             == "2", 120,
             lambda: "the restored red to connect to hv-switch" + logs(desk))
    desk.send_key("ctrl", "alt", "1")
    shows(desk, RED, BLUE, timeout=60)
    desk.send_key("r")
    key_typed(desk, "red", KEY_R)
    con = console(desk, "red")
    assert con.count("hv-guest: hello") == boots, con[-2000:]   # the same boot, continued
    assert "the VM was saved" in desk.run("cat /tmp/red.vmm").stdout, logs(desk)


def test_no_guest_ever_saw_a_switching_hotkey(desk):
    for name in GUESTS:
        codes = {c for c, _ in keys_seen(desk, name)}
        assert not codes & {KEY_1, KEY_2, KEY_3, KEY_TAB}, (name, keys_seen(desk, name))
        vmm = desk.run(f"cat /tmp/{name}.vmm").stdout
        assert "error" not in vmm.lower(), vmm
