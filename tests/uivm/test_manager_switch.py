# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-manager's live thumbnails and "Switch To", through the whole chain: hv-manager →
hvd → hv-switch's control socket → fake-vmm as each VM's display producer.

    /usr/bin/python3 -m pytest tests/uivm/test_manager_switch.py

hv-manager runs on one Xvfb screen; hv-switch (the "panel") in a window on a second one,
so that each can be read with xwd without the other in the way. Binaries as in
test_manager.py, plus $HV_SWITCH (default $HV_BUILD/hv/switch/hv-switch).
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from test_manager import (BUILD, Desktop, by_name, hvd_call, label_containing,
                          missing_prerequisites, row, wait_until)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "switch"))
import xshot  # noqa: E402

HV_SWITCH = Path(os.environ.get("HV_SWITCH") or BUILD / "hv/switch/hv-switch")
RED, BLUE = (0xCC, 0x20, 0x20), (0x20, 0x40, 0xCC)
PANEL_GUEST = (0, 40, 1280, 760)  # hv-switch's window below its label bar


class Panel:
    """A second Xvfb with hv-switch in a window on it."""

    def __init__(self, top, run):
        self.top, self.run = top, run
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0",
                                      "1280x800x24", "-nolisten", "tcp", "-noreset"],
                                     pass_fds=(w,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(w)
        ready, _, _ = select.select([r], [], [], 15)
        self.display = ":" + (os.read(r, 64).decode().strip() if ready else "")
        self.displayfd = r  # kept open: Xvfb dies of SIGPIPE if it writes there again
        assert self.display != ":", "the panel's Xvfb did not start"
        self.switch = None
        self.start_switch()

    def start_switch(self):
        env = dict(os.environ, DISPLAY=self.display, SDL_VIDEODRIVER="x11")
        with open(self.top / "hv-switch.log", "a") as f:
            f.write(f"panel display {self.display}\n")
        self.switch = subprocess.Popen(
            [str(HV_SWITCH), "--socket", str(self.run / "switch.sock"), "--size", "1280x800",
             "--renderer", "software", "--no-vsync"], env=env,
            stdout=open(self.top / "hv-switch.log", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_until("hv-switch's control socket",
                   lambda: (self.run / "switch-control.sock").exists(), timeout=15)

    def stop_switch(self):
        self.switch.send_signal(signal.SIGTERM)
        self.switch.wait(10)

    def shows(self, colour):
        return xshot.capture(self.display).count(colour, PANEL_GUEST) > 0.3 * 1280 * 760

    def close(self):
        for p in (self.switch, self.xvfb):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        os.close(self.displayfd)


@pytest.fixture(scope="module")
def chain():
    why = missing_prerequisites() or (None if HV_SWITCH.is_file() else
                                      f"hv-switch is not built ({HV_SWITCH} missing)")
    if why:
        pytest.skip(why)
    if not shutil.which("xwd"):
        pytest.skip("xwd is not installed (scripts/packages-test.txt)")
    top = Path(tempfile.mkdtemp(prefix="hv-uivm-switch-"))
    (top / "run").mkdir()
    d = Desktop(top)
    panel = None
    try:
        panel = Panel(top, top / "run")
        d.start_x()
        d.start_hvd()
        for name, extra in (("red", {"colour": "#cc2020"}), ("blue", {"colour": "#2040cc"}),
                            ("plain", {"colour": "#808080", "display": False})):
            r = hvd_call(d.sock, "vm.define", definition={"name": name, "kernel": str(d.kernel),
                                                          "memory": "128M", **extra})
            assert "result" in r, r
        for name in ("red", "blue", "plain"):
            assert "result" in hvd_call(d.sock, "vm.start", name=name)
        d.start_manager()
        yield d, panel
    finally:
        d.save_logs()
        d.stop()
        if panel:
            panel.close()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def app(chain):
    from dogtail import config
    config.searchCutoffCount = 3
    config.searchBackoffDuration = 0.3
    config.actionDelay = 0.3
    config.defaultDelay = 0.3
    config.logDebugToFile = False
    from dogtail.tree import root
    return wait_until("hv-manager on the AT-SPI bus",
                      lambda: next((a for a in root.applications()
                                    if a.name in ("hv-manager", "hv Manager")), None), timeout=30)


def manager_shot(desk):
    return xshot.capture(desk.env["DISPLAY"])


def test_thumbnails_show_each_vms_screen(chain, app):
    desk, panel = chain
    row(app, "red", "Running").click()
    by_name(app, "red", role="label")
    # The details pane's 320x200 thumbnail of red, and the rows' small ones of both.
    s = wait_until("red's thumbnail in the details pane",
                   lambda: (lambda s: s if s.count(RED, tol=12) > 0.8 * 320 * 200 else None)(
                       manager_shot(desk)), timeout=20)
    assert s.count(BLUE, tol=12) > 0.7 * 64 * 40, "blue's row shows its screen"
    by_name(app, "Screen of blue", role="icon")
    desk.screenshot("thumbnails")

    row(app, "blue", "Running").click()
    wait_until("blue's thumbnail in the details pane",
               lambda: manager_shot(desk).count(BLUE, tol=12) > 0.8 * 320 * 200, timeout=10)

    row(app, "plain", "Running").click()
    label_containing(app, "has no display")


def test_switch_to_moves_the_panel(chain, app):
    desk, panel = chain
    wait_until("a VM on the panel", lambda: panel.shows(RED) or panel.shows(BLUE), timeout=15)
    for name, colour in (("blue", BLUE), ("red", RED), ("blue", BLUE)):
        row(app, name, "Running").click()
        by_name(app, name, role="label")
        button = by_name(app, "Switch To", role="push button")
        wait_until("Switch To to be on", lambda: button.sensitive, timeout=10)
        button.click()
        wait_until(f"{name} on the panel", lambda c=colour: panel.shows(c), timeout=10)
    console = hvd_call(desk.sock, "vm.console", name="blue")["result"]["data"]
    assert "display: focus 1" in console, "blue's VMM was told it has the focus"


def test_switcher_gone_is_explained(chain, app):
    desk, panel = chain
    row(app, "red", "Running").click()
    panel.stop_switch()
    label_containing(app, "hv-switch) is not running", timeout=15)
    desk.screenshot("switch-not-running")
    panel.start_switch()
    wait_until("red's thumbnail again",
               lambda: manager_shot(desk).count(RED, tol=12) > 0.8 * 320 * 200, timeout=20)
