# SPDX-License-Identifier: GPL-2.0-or-later
"""The UIVM in the virtual laptop (issue 7): it boots, Ctrl+Alt+0 shows the manager.

The product path, end to end: hvd starts the UIVM from its definition
(role=uivm, vsock, display) with hv-vmm on the laptop's KVM; the UIVM's
kernel brings up virtio-gpu, systemd starts cage with hv-manager full screen;
hv-manager reaches hvd over vsock; hv-vmm hands the picture to hv-switch,
which shows it on the laptop's panel (captured with QMP screendump) under
the label "0 UIVM: uivm". A second VM started through hvd appears on its
own hotkey and in the manager's list; clicks on Switch To and, once that VM
is saved, on Start do what they say.

The UIVM image (tests/uivm/uivm_image.py, uivm/image/build-uivm.sh) is
plugged into the laptop as a second virtio disk (snapshot: the cached file
never changes); its kernel and initrd are copied in. Booting it under the
laptop's software-emulated KVM takes about two and a half minutes.

    /usr/bin/python3 -m pytest tests/uivm/test_uivm_laptop.py -v
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest
from vlaptop import wait_for

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import imagelib  # noqa: E402  (tests/vlaptop, put on the path by conftest)
import uivm_image  # noqa: E402
import uivm_laptop  # noqa: E402
from uivm_laptop import hexcol  # noqa: E402

pytestmark = pytest.mark.vlaptop

HVCTL = uivm_laptop.HVCTL
UIVM_COLOUR = uivm_laptop.UIVM_COLOUR
RED = (0xC0, 0x20, 0x20)          # what the second VM paints on its screen
RED_LABEL = "c03030"              # its colour: its label bar and its row in the manager
ADWAITA_BG = (0xF6, 0xF5, 0xF4)   # GTK 3 Adwaita's window background
WHITE = (0xFF, 0xFF, 0xFF)        # Adwaita's list background
LABEL_BAR = 22                    # hv-switch's label bar, in panel pixels
BOOT_TIMEOUT = float(os.environ.get("HV_UIVM_BOOT_TIMEOUT", 600))


def artifacts():
    out = Path(os.environ.get("HV_ARTIFACTS") or HERE.parents[1] / "build" / "test-artifacts")
    out = out / "uivm-laptop"
    out.mkdir(parents=True, exist_ok=True)
    return out


def share(shot, colour):
    return shot.count(colour) / (shot.width * shot.height)


def hvctl(laptop, *args, timeout=60):
    return laptop.run(" ".join([HVCTL, *args]), timeout=timeout)


def hvctl_ok(laptop, *args, timeout=60):
    res = hvctl(laptop, *args, timeout=timeout)
    assert res.rc == 0, f"hvctl {' '.join(args)}: rc {res.rc}: {res.stdout} {res.stderr}"
    return res.stdout


def vm_state(laptop, name):
    return json.loads(hvctl_ok(laptop, "--json", "info", name))["state"]


def logs(laptop):
    return uivm_laptop.logs(laptop)


@pytest.fixture(scope="module")
def uivm_files(tmp_path_factory, timed):
    with timed("UIVM image ready in") as t:
        try:
            out, built = uivm_image.make_uivm(tmp_path_factory.mktemp("uivm"))
        except imagelib.BuildError as e:
            pytest.fail(f"cannot build the UIVM image: {e}", pytrace=False)
    print(f"\nuivm: image ready in {t.seconds:.1f} s (base {'built' if built else 'cached'})")
    return out


@pytest.fixture(scope="module")
def laptop_options(uivm_files):
    return {"extra_args": uivm_laptop.laptop_args(uivm_files)}


@pytest.fixture(scope="module")
def hv(laptop, uivm_files, timed):
    """hv-switch on the panel, hvd, and the UIVM defined (autostart) and started."""
    def bring_up(lt):
        seconds = uivm_laptop.bring_up(lt, uivm_files, BOOT_TIMEOUT)
        print(f"\nuivm: booted to hv-manager in {seconds:.0f} s")
    # prepare(): a laptop revived after a crash (conftest.py) gets its UIVM again.
    with timed("UIVM boot to hv-manager connected to hvd"):
        try:
            laptop.prepare(bring_up)
        except uivm_laptop.UivmError as e:
            pytest.fail(str(e), pytrace=False)
    yield laptop
    if not laptop.crashed():
        uivm_laptop.stop(laptop)


def manager_on_panel(shot):
    """The manager fills the panel: Adwaita's background and a white list,
    under hv-switch's label bar in the UIVM's colour."""
    return (share(shot, ADWAITA_BG) > 0.3 and share(shot, WHITE) > 0.1
            and shot.count(UIVM_COLOUR) > 1000)


def test_ctrl_alt_0_shows_the_manager_on_the_panel(hv):
    assert "vm 'uivm' connected (slot 0, UIVM)" in hv.run("cat /tmp/switch.log").stdout
    state = hvctl_ok(hv, "info", "uivm")
    assert "running" in state

    def shown():
        hv.send_key("ctrl", "alt", "0")
        time.sleep(1)
        shot = hv.screendump()
        return shot if manager_on_panel(shot) else None
    shot = wait_for(shown, 120, lambda: "the manager on the panel after Ctrl+Alt+0" + logs(hv))
    shot.save_png(artifacts() / "uivm-panel.png")
    # The label bar is hv-switch's, at the top, in the UIVM's colour.
    assert shot.pixel(shot.width // 2, 2) == UIVM_COLOUR or \
        shot.pixel(shot.width - 3, 2) == UIVM_COLOUR
    # Kiosk mode: the header bar (new-VM button, page switcher) is the first
    # row of the window, not hidden with the title bar: below the label bar
    # there is a band that is neither the list's white nor the background.
    top = [shot.pixel(shot.width // 2, y) for y in range(30, 80)]
    assert any(p not in (WHITE, ADWAITA_BG, UIVM_COLOUR) for p in top), top


def test_a_vm_started_by_hvd_gets_its_hotkey_and_a_row_in_the_manager(hv):
    desk_kernel, desk_initrd = hv.desktop_kernel, hv.desktop_initrd
    conf = (f"[vm]\nname=red\nmemory=256M\nkernel={desk_kernel}\ninitrd={desk_initrd}\n"
            f"cmdline=console=ttyS0 panic=-1 quiet hv.test=desk hv.colour={hexcol(RED)} "
            f"hv.name=red\ncolour=#{RED_LABEL}\nslot=1\n")
    hv.put(conf.encode(), "/tmp/red.conf")
    hvctl_ok(hv, "define", "/tmp/red.conf")
    hvctl_ok(hv, "start", "red")
    wait_for(lambda: "hv-desk: painted" in hvctl(hv, "console", "red").stdout, 240,
             lambda: "the red VM to paint its screen" + logs(hv))
    wait_for(lambda: "vm 'red' connected (slot 1" in hv.run("cat /tmp/switch.log").stdout, 30,
             lambda: "red on hv-switch" + logs(hv))

    def red_shown():
        hv.send_key("ctrl", "alt", "1")
        time.sleep(1)
        shot = hv.screendump()
        return shot if share(shot, RED) > 0.5 else None
    wait_for(red_shown, 60, lambda: "Ctrl+Alt+1 to show the red VM" + logs(hv))

    # Back in the manager, the list has a row for red with its colour chip,
    # which the manager learned from hvd's events over vsock.
    label = tuple(int(RED_LABEL[i:i + 2], 16) for i in (0, 2, 4))

    # Its live thumbnail (vm.screenshot: hvd asks hv-switch, over vsock to
    # the manager) shows what red paints, in the row and the details pane.
    def row_shown():
        hv.send_key("ctrl", "alt", "0")
        time.sleep(1)
        shot = hv.screendump()
        return shot if (manager_on_panel(shot) and shot.count(label) > 20
                        and shot.count(RED) > 20000) else None
    shot = wait_for(row_shown, 90, lambda: "red's row and thumbnail in the manager" + logs(hv))
    shot.save_png(artifacts() / "uivm-with-red.png")
    assert share(shot, RED) < 0.1  # the manager with a thumbnail, not red's own screen
    # The UIVM itself is not one of the machines listed: its colour is on
    # hv-switch's label bar only.
    below_bar = sum(1 for y in range(LABEL_BAR + 4, shot.height, 2)
                    for x in range(0, shot.width, 2) if shot.pixel(x, y) == UIVM_COLOUR)
    assert below_bar == 0, f"{below_bar} pixels of the UIVM's colour below the label bar"


# Where the manager draws "Switch To" for the selected VM on the 1280×800
# panel (docs/screenshots/uivm-panel.png): the details pane's buttons are a
# grid, Switch To the first of the second row. If the layout changes, the
# failure's panel picture in $HV_ARTIFACTS/uivm-laptop shows where it went.
SWITCH_TO = (564, 491)


def test_switch_to_clicked_in_the_manager_shows_the_vm(hv):
    """A person's click inside the UIVM: the tablet through hv-switch into
    the UIVM, GTK's button, vm.switch over vsock, hvd, hv-switch's control
    socket: the panel shows red."""
    def manager_with_red():
        hv.send_key("ctrl", "alt", "0")
        time.sleep(1)
        shot = hv.screendump()
        return shot if manager_on_panel(shot) and shot.count(RED) > 20000 else None
    shot = wait_for(manager_with_red, 90, lambda: "the manager with red selected" + logs(hv))
    focus_before = hv.run("grep -c 'focus: red' /tmp/switch.log").stdout.strip()
    x, y = SWITCH_TO
    hv.mouse_move(round(x * 32767 / (shot.width - 1)), round(y * 32767 / (shot.height - 1)))
    time.sleep(1)
    hv.mouse_click()

    def red_shown():
        shot = hv.screendump()
        return shot if share(shot, RED) > 0.5 else None
    try:
        wait_for(red_shown, 60, lambda: "the panel to show red after a click on Switch To" + logs(hv))
    except AssertionError:
        hv.screendump(artifacts() / "switch-to-not-shown.png")
        shot.save_png(artifacts() / "switch-to-before-click.png")
        raise
    # hv-switch moved the focus once more, to red (from the UIVM).
    assert hv.run("grep -c 'focus: red' /tmp/switch.log").stdout.strip() != focus_before


START = (564, 446)  # the details pane's first button (docs/screenshots/uivm-panel.png)


def dark_pixels(shot, centre, half=(80, 14)):
    """Pixels of dark text around centre: a sensitive GTK button's label (an
    insensitive one is drawn in light grey)."""
    (cx, cy), (hx, hy) = centre, half
    return sum(1 for y in range(cy - hy, cy + hy) for x in range(cx - hx, cx + hx)
               if max(shot.pixel(x, y)) < 0x70)


def accent_pixels(shot, centre, half=(80, 14)):
    """Pixels of Adwaita's blue fill around centre: a sensitive button of the
    suggested-action class (Start is one; insensitive, it is grey)."""
    (cx, cy), (hx, hy) = centre, half
    return sum(1 for y in range(cy - hy, cy + hy) for x in range(cx - hx, cx + hx)
               if (lambda r, g, b: b > 0xb0 and b - r > 0x60)(*shot.pixel(x, y)))


def button_on(shot, centre):
    return dark_pixels(shot, centre) > 30 or accent_pixels(shot, centre) > 1000


def test_start_clicked_on_a_saved_vm_restores_it(hv):
    """A VM saved through hvd (hvctl save) shows as saved in the manager with
    Start enabled; a person's click on Start restores it (hvd restores it
    from its save file, it does not boot afresh) and its screen comes back
    on the panel with its hotkey."""
    hvctl_ok(hv, "save", "red", timeout=180)
    wait_for(lambda: vm_state(hv, "red") == "saved", 60,
             lambda: "red to be saved" + logs(hv))
    restored_before = hv.run("grep -c 'VM red restored' /tmp/hvd.log").stdout.strip()

    def start_enabled():
        hv.send_key("ctrl", "alt", "0")
        time.sleep(1)
        shot = hv.screendump()
        return shot if manager_on_panel(shot) and button_on(shot, START) else None
    try:
        shot = wait_for(start_enabled, 90,
                        lambda: "Start enabled for the saved red in the manager" + logs(hv))
    except AssertionError:
        hv.screendump(artifacts() / "start-not-enabled.png")
        raise
    x, y = START
    hv.mouse_move(round(x * 32767 / (shot.width - 1)), round(y * 32767 / (shot.height - 1)))
    time.sleep(1)
    hv.mouse_click()
    try:
        wait_for(lambda: hv.run("grep -c 'VM red restored' /tmp/hvd.log").stdout.strip()
                 != restored_before, 120, lambda: "hvd to restore red after a click on Start" + logs(hv))
    except AssertionError:
        hv.screendump(artifacts() / "start-not-restored.png")
        shot.save_png(artifacts() / "start-before-click.png")
        raise
    assert vm_state(hv, "red") == "running"

    def red_shown():
        hv.send_key("ctrl", "alt", "1")
        time.sleep(1)
        shot = hv.screendump()
        return shot if share(shot, RED) > 0.5 else None
    wait_for(red_shown, 90, lambda: "red's screen on the panel after its restore" + logs(hv) +
             "\n--- red's vmm.log ---\n" + hv.run("tail -30 /run/hv/vms/red/vmm.log").stdout)
