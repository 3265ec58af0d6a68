# SPDX-License-Identifier: GPL-2.0-or-later
"""The Bochs VBE display (hv-vmm --display ...,gpu=bochs) on the laptop's panel.

hv-switch runs on the laptop's panel (SDL2 on KMSDRM, captured with QMP
screendump) as in tests/switch/test_vm_display.py. Guests (Debian's generic
kernel, the desktop test guest) get the Bochs display instead of virtio-gpu:

- "vbe": Linux's bochs DRM driver binds it, reads the EDID, and
  tests/guest/tests/desk.sh paints /dev/fb0 (bochs fbdev -> the VRAM memfd,
  a KVM slot -> dirty log -> DAMAGE -> hv-switch) in RED.
- "evil": tests/guest/tests/hostile-vbe.sh unbinds the driver and pokes the
  DISPI registers with absurd values through the ports and BAR 2
  (tests/guest/tools/hv-hostile-vbe.c): the panel shows its good modes, is
  blank for the impossible ones, and hv-vmm survives. Then it is saved and
  restored (tests/vmm/save_client.c) while it draws nothing: its picture is
  on the panel again, from the saved registers and video memory alone.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_bochs_display.py -v
One laptop boot for the module; the tests run in order and share the guests.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from panel import SOCK, VMM, start_switch, start_vm
from vlaptop import wait_for

pytestmark = pytest.mark.vlaptop

RED = (0xC0, 0x20, 0x20)
GOOD_A, GOOD_B = (0x20, 0xC0, 0x40), (0xC0, 0x80, 0x20)  # the hostile guest's good modes
HOLD = 25  # seconds the hostile guest keeps each state
SAVE_CLIENT = "/tmp/save_client"


def hexcol(c):
    return "%02x%02x%02x" % c


def console(laptop, name):
    return laptop.run(f"cat /tmp/{name}.con").stdout


def share(shot, colour):
    return shot.count(colour) / (shot.width * shot.height)


def logs(laptop, *names):
    out = f"\n--- hv-switch ---\n{laptop.run('tail -20 /tmp/switch.log').stdout}"
    for n in names:
        out += (f"\n--- hv-vmm {n} ---\n{laptop.run(f'tail -15 /tmp/{n}.vmm').stdout}"
                f"\n--- console {n} ---\n{console(laptop, n)[-1500:]}")
    return out


def keep(laptop, name):
    """The panel and logs of a failed test, in $HV_ARTIFACTS/bochs/NAME/."""
    out = Path(os.environ.get("HV_ARTIFACTS") or Path(__file__).resolve().parents[2] /
               "build" / "test-artifacts") / "bochs" / name
    out.mkdir(parents=True, exist_ok=True)
    try:
        laptop.screendump(out / "panel.png")
        for f in ("switch.log", "vbe.con", "vbe.vmm", "evil.con", "evil.vmm"):
            (out / f).write_text(laptop.run(f"cat /tmp/{f} 2>/dev/null").stdout)
    except Exception as e:  # the laptop may be gone
        (out / "error.txt").write_text(str(e))


def start_guest(lt, name, slot, bar, cmdline, extra=""):
    start_vm(lt, name, lt.desktop_kernel, lt.desktop_initrd, f"quiet {cmdline}",
             f"colour={bar},slot={slot},gpu=bochs", extra)


@pytest.fixture(scope="module")
def vbe(laptop):
    for path in (VMM, "/usr/local/bin/hv-switch", laptop.desktop_kernel, laptop.desktop_initrd):
        if laptop.run(f"test -e {path}").rc != 0:
            pytest.fail(f"{path} is not in the laptop image")

    cc = shutil.which("gcc") or shutil.which("cc")
    exe = Path(os.environ.get("TMPDIR", "/tmp")) / f"bochs-save-client-{os.getpid()}"
    subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                    "-Werror", "-o", str(exe), str(Path(__file__).with_name("save_client.c"))],
                   check=True)

    def setup(lt):
        lt.put(exe, SAVE_CLIENT, mode=0o755)
        start_switch(lt)
        start_guest(lt, "vbe", 1, "c03030",
                    f"hv.test=desk hv.colour={hexcol(RED)} hv.name=vbe")
        wait_for(lambda: "hv-desk: painted" in console(lt, "vbe")
                 or "hv-guest: test" in console(lt, "vbe"), 300,
                 lambda: "guest vbe to paint" + logs(lt, "vbe"))
        assert "hv-desk: painted" in console(lt, "vbe"), logs(lt, "vbe")
    laptop.prepare(setup)
    yield laptop
    exe.unlink()
    if not laptop.crashed():
        laptop.run("pkill -x hv-vmm; pkill -x hv-switch", timeout=30)


def panel_shows(laptop, colour, timeout, what, least=0.5, others=()):
    def check():
        shot = laptop.screendump()
        ok = share(shot, colour) > least and all(shot.count(o) == 0 for o in others)
        return shot if ok else None
    return wait_for(check, timeout, what)


def test_bochs_guest_paints_the_panel(vbe):
    try:
        con = console(vbe, "vbe")
        # The bochs DRM driver read the EDID: fb0 is the panel size hv-vmm offers.
        assert "hv-guest: fb0 1280,800" in con, con[-2000:]
        vbe.send_key("ctrl", "alt", "1")
        shot = panel_shows(vbe, RED, 60, lambda: "the panel to show the bochs guest's red"
                           + logs(vbe, "vbe"))
        assert share(shot, RED) > 0.7
        assert vbe.run("grep -c \"vm 'vbe' connected\" /tmp/switch.log").stdout.strip() == "1"
    except BaseException:
        keep(vbe, "paints")
        raise


EVIL = (2, "40a060", f"hv.test=hostile-vbe hv.colour={hexcol(GOOD_A)} "
        f"hv.colour2={hexcol(GOOD_B)} hv.hold={HOLD} hv.lasthold=900",
        "--control /tmp/evil.sock ")


def test_hostile_vbe_driver(vbe):
    """Absurd DISPI values blank the display, good ones show, hv-vmm lives."""
    try:
        start_guest(vbe, "evil", *EVIL)
        wait_for(lambda: "hostile-vbe: good-a" in console(vbe, "evil")
                 or "hv-guest: test" in console(vbe, "evil"), 300,
                 lambda: "the hostile guest's first mode" + logs(vbe, "evil"))
        vbe.send_key("ctrl", "alt", "2")
        panel_shows(vbe, GOOD_A, HOLD, lambda: "its 640x480 picture" + logs(vbe, "evil"), least=0.3)
        wait_for(lambda: "hostile-vbe: huge" in console(vbe, "evil"), 60,
                 lambda: "the 65535x65535 mode" + logs(vbe, "evil"))
        # hv-switch's placeholder: none of the old picture is left on the panel.
        wait_for(lambda: vbe.screendump().count(GOOD_A) == 0, HOLD,
                 lambda: "the panel to go blank" + logs(vbe, "evil"))
        wait_for(lambda: "hostile-vbe: good-b" in console(vbe, "evil"), 120,
                 lambda: "the hostile guest's last mode" + logs(vbe, "evil"))
        panel_shows(vbe, GOOD_B, HOLD, lambda: "its 800x600 picture" + logs(vbe, "evil"), least=0.3)
        con = console(vbe, "evil")
        assert re.search(r"hostile-vbe: id 0xb0c5 mem 256 edid 00ffffffffffff00", con), con
        assert vbe.run("pgrep -x hv-vmm | wc -l").stdout.strip() == "2", logs(vbe, "evil")
        assert vbe.run("pgrep -x hv-switch").rc == 0, logs(vbe)
        vmm = vbe.run("cat /tmp/evil.vmm").stdout
        assert "the display is blank" in vmm, vmm
        assert "refused" not in vbe.run("cat /tmp/switch.log").stdout, logs(vbe)
        # The first guest is still there, unharmed.
        vbe.send_key("ctrl", "alt", "1")
        panel_shows(vbe, RED, 60, lambda: "the bochs guest again" + logs(vbe, "vbe"))
    except BaseException:
        keep(vbe, "hostile")
        raise


def test_save_and_restore_keep_the_picture(vbe):
    """The hostile guest sleeps after drawing its last picture: after a save
    (hv-vmm exits 6) and --restore, the panel shows that picture again, which
    only the saved DISPI registers and video memory can give."""
    try:
        assert "hostile-vbe: good-b" in console(vbe, "evil"), logs(vbe, "evil")
        res = vbe.run(f"{SAVE_CLIENT} /tmp/evil.sock /tmp/evil.hvsave exit", timeout=180)
        assert res.rc == 0, res.stdout + res.stderr + logs(vbe, "evil")
        wait_for(lambda: vbe.run("pgrep -x hv-vmm | wc -l").stdout.strip() == "1", 60,
                 lambda: "the saved hv-vmm to exit" + logs(vbe, "evil"))
        size = int(vbe.run("stat -c %s /tmp/evil.hvsave").stdout)
        vbe.send_key("ctrl", "alt", "1")
        panel_shows(vbe, RED, 60, lambda: "the first guest" + logs(vbe, "vbe"))
        start_guest(vbe, "evil", *EVIL[:3], EVIL[3] + "--restore /tmp/evil.hvsave ")
        wait_for(lambda: vbe.run("grep -c \"vm 'evil' connected\" /tmp/switch.log")
                 .stdout.strip() == "2", 120, lambda: "the restored VM" + logs(vbe, "evil"))
        vbe.send_key("ctrl", "alt", "2")
        panel_shows(vbe, GOOD_B, 60, lambda: f"the restored picture (save file {size} bytes)"
                    + logs(vbe, "evil"), least=0.3)
        assert vbe.run("pgrep -x hv-vmm | wc -l").stdout.strip() == "2", logs(vbe, "evil")
    except BaseException:
        keep(vbe, "save")
        raise
