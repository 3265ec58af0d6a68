# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-manager driven as a person drives it (AT-SPI through dogtail: mouse
clicks and typed keys under Xvfb), against a real hvd with a fake hv-vmm.

    /usr/bin/python3 -m pytest tests/uivm/test_manager.py

Finds the binaries from $HV_MANAGER, $HVD, $FAKE_VMM (meson test sets them),
else under $HV_BUILD (default build/). Screenshots of each page go to
$HV_ARTIFACTS (default build/test-artifacts/uivm/). Every wait is bounded;
Xvfb, D-Bus, the AT-SPI bus, hvd and hv-manager are stopped even on failure.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("HV_BUILD") or REPO / "build")
HV_MANAGER = Path(os.environ.get("HV_MANAGER") or BUILD / "uivm/manager/hv-manager")
HVD = Path(os.environ.get("HVD") or BUILD / "hv/hvd/hvd")
FAKE_VMM = Path(os.environ.get("FAKE_VMM") or BUILD / "hv/hvd/tests/fake-vmm")
ARTIFACTS = Path(os.environ.get("HV_ARTIFACTS") or BUILD / "test-artifacts") / "uivm"
AT_SPI_LAUNCHER = Path("/usr/libexec/at-spi-bus-launcher")
# hvd finds qemu-img through PATH; this one can hold a copy at 50 % (see the script).
SLOW_QEMU_IMG = REPO / "hv/hvd/tests/slow-qemu-img.sh"

def missing_prerequisites():
    for path, what in ((HV_MANAGER, "hv-manager"), (HVD, "hvd"), (FAKE_VMM, "hvd's fake-vmm")):
        if not path.is_file():
            return f"{what} is not built ({path} missing): build it with ninja -C build"
    for prog in ("Xvfb", "dbus-daemon"):
        if not shutil.which(prog):
            return f"{prog} is not installed (scripts/packages-test.txt)"
    if not AT_SPI_LAUNCHER.exists():
        return f"{AT_SPI_LAUNCHER} is missing (package at-spi2-core)"
    try:
        import dogtail  # noqa: F401
    except ImportError:
        return "python3-dogtail is not installed (run with Debian's /usr/bin/python3)"
    return None


def wait_until(what, pred, timeout=15.0, interval=0.2):
    """Polls pred() until it returns something true; fails after timeout seconds."""
    end = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < end:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # AT-SPI nodes vanish while the UI changes
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


class HvdClient:
    """A bare client of hvd's JSON-lines API, to check what really reached hvd."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.buf = b""

    def call(self, method, **params):
        self.sock.sendall(json.dumps({"id": 1, "method": method, "params": params}).encode()
                          + b"\n")
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("hvd closed the connection")
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if "id" in msg:
                return msg

    def close(self):
        self.sock.close()


def hvd_call(sock, method, **params):
    c = HvdClient(sock)
    try:
        return c.call(method, **params)
    finally:
        c.close()


class Desktop:
    """Xvfb + a D-Bus session + the AT-SPI bus + hvd + hv-manager."""

    def __init__(self, top):
        self.top = Path(top)
        self.procs = {}
        self.env = dict(os.environ)
        self.sock = self.top / "run" / "hvd.sock"
        self.kernel = self.top / "vmlinuz"
        self.kernel.write_text("a fake kernel: the fake vmm never reads it\n")
        self.hvd_env = dict(os.environ)
        self.bin = self.top / "bin"
        real = shutil.which("qemu-img")
        if real:
            self.bin.mkdir()
            shutil.copy(SLOW_QEMU_IMG, self.bin / "qemu-img")
            self.hvd_env["REAL_QEMU_IMG"] = real
            self.hvd_env["PATH"] = f"{self.bin}{os.pathsep}{self.hvd_env.get('PATH', '')}"

    def qemu_img_mode(self, mode):
        (self.bin / "mode").write_text(mode)
        (self.bin / "go").unlink(missing_ok=True)

    def qemu_img_go(self):
        (self.bin / "go").touch()

    def log(self, name):
        return open(self.top / f"{name}.log", "ab")

    def start_x(self):
        r, w = os.pipe()
        self.procs["xvfb"] = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(w,), stdout=self.log("xvfb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        os.close(w)
        with os.fdopen(r) as f:
            display = f.readline().strip()
        assert display, "Xvfb did not report a display"
        self.env["DISPLAY"] = f":{display}"
        # A session bus of our own (dbus-launch's daemon would hold a captured pipe open).
        r, w = os.pipe()
        self.procs["dbus"] = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", f"--print-address={w}"], pass_fds=(w,),
            env=self.env, stdout=self.log("dbus"), stderr=subprocess.STDOUT,
            start_new_session=True)
        os.close(w)
        with os.fdopen(r) as f:
            address = f.readline().strip()
        assert address, "dbus-daemon did not report its address"
        self.env["DBUS_SESSION_BUS_ADDRESS"] = address
        self.env.update({"GTK_MODULES": "gail:atk-bridge", "NO_AT_BRIDGE": "0",
                         "GDK_BACKEND": "x11", "LC_ALL": "C.UTF-8", "GSETTINGS_BACKEND": "memory"})
        self.procs["atspi"] = subprocess.Popen(
            [str(AT_SPI_LAUNCHER), "--launch-immediately"], env=self.env,
            stdout=self.log("atspi"), stderr=subprocess.STDOUT,
            start_new_session=True)
        # dogtail talks to the AT-SPI bus of this process's environment.
        os.environ.update({k: self.env[k] for k in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS",
                                                   "GTK_MODULES")})
        time.sleep(1.0)

    def start_hvd(self):
        self.procs["hvd"] = subprocess.Popen(
            [str(HVD), "--state-dir", str(self.top / "state"), "--run-dir", str(self.top / "run"),
             "--socket", str(self.sock), "--vmm", str(FAKE_VMM), "--vsock-port", "-1"],
            stdout=self.log("hvd"), stderr=subprocess.STDOUT, env=self.hvd_env,
            start_new_session=True)

        def up():
            try:
                return hvd_call(self.sock, "hello", versions=[1])["result"]["version"] == 1
            except OSError:
                return False
        wait_until("hvd to answer on its socket", up, timeout=20)

    def kill_hvd(self):
        p = self.procs.pop("hvd")
        p.kill()
        p.wait(10)

    def start_manager(self):
        self.procs["manager"] = subprocess.Popen(
            [str(HV_MANAGER), "--socket", str(self.sock)], env=self.env,
            stdout=self.log("hv-manager"), stderr=subprocess.STDOUT,
            start_new_session=True)

    def screenshot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        out = ARTIFACTS / f"{name}.png"
        if shutil.which("import"):
            subprocess.run(["import", "-window", "root", str(out)], env=self.env, timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif shutil.which("xwd"):
            with open(ARTIFACTS / f"{name}.xwd", "wb") as f:
                subprocess.run(["xwd", "-root", "-silent"], env=self.env, stdout=f, timeout=30)
        return out

    def destroy_vms(self):
        """Stops the VMs still running: hvd leaves hv-vmm processes running by design."""
        if "hvd" not in self.procs or self.procs["hvd"].poll() is not None:
            return
        try:
            for vm in hvd_call(self.sock, "vm.list")["result"]["vms"]:
                if vm["state"] not in ("shutoff", "crashed"):
                    hvd_call(self.sock, "vm.destroy", name=vm["name"])
        except (OSError, EOFError, KeyError) as e:
            print(f"cleanup: could not stop the VMs: {e}")

    def stop(self):
        self.destroy_vms()
        # GDBus raises SIGTERM in this process when its session bus goes away, unless told not to.
        try:
            from gi.repository import Gio
            Gio.bus_get_sync(Gio.BusType.SESSION, None).set_exit_on_close(False)
        except Exception as e:  # no session connection was ever made
            print(f"cleanup: {e}")
        for name in ("manager", "hvd", "atspi", "dbus", "xvfb"):
            p = self.procs.pop(name, None)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)

    def save_logs(self):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for log in self.top.glob("*.log"):
            shutil.copy(log, ARTIFACTS / log.name)


@pytest.fixture(scope="module")
def desk():
    why = missing_prerequisites()
    if why:
        pytest.skip(why)
    for old in ARTIFACTS.glob("FAILED-*.png"):
        old.unlink()
    top = tempfile.mkdtemp(prefix="hv-uivm-")
    d = Desktop(top)
    try:
        d.start_x()
        d.start_hvd()
        # A VM defined before the manager starts: the duplicate-name check needs one.
        r = hvd_call(d.sock, "vm.define", definition={"name": "taken", "kernel": str(d.kernel),
                                                      "memory": "128M", "os": "windows",
                                                      "colour": "#cc0000"})
        assert "result" in r, r
        d.start_manager()
        yield d
    finally:
        d.save_logs()
        d.stop()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def app(desk):
    from dogtail import config
    config.searchCutoffCount = 3
    config.searchBackoffDuration = 0.3
    config.actionDelay = 0.3
    config.typingDelay = 0.03
    config.defaultDelay = 0.3
    config.logDebugToFile = False
    from dogtail.tree import root

    def find():
        for a in root.applications():
            if a.name in ("hv-manager", "hv Manager"):
                return a
        return None
    return wait_until("hv-manager on the AT-SPI bus", find, timeout=30)


@pytest.fixture(autouse=True)
def screenshot_on_failure(request, desk):
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        desk.screenshot(f"FAILED-{request.node.name}")


# ---- helpers that act like a person ----

def showing(node, pred):
    """The showing descendants of node for which pred(n) holds."""
    return [n for n in node.findChildren(lambda n: pred(n), showingOnly=False) if n.showing]


# Bounds for waiting, not for speed: under load (2 cores, a laptop beside) a
# widget can take many seconds to show; each wait returns as soon as it does.
def by_name(node, name, role=None, timeout=30):
    def find():
        found = showing(node, lambda n: n.name == name and (role is None or n.roleName == role))
        return found[0] if found else None
    return wait_until(f"{role or 'widget'} '{name}'", find, timeout=timeout)


def label_containing(node, text, timeout=30):
    def find():
        found = showing(node, lambda n: n.roleName == "label" and text in (n.name or ""))
        return found[0] if found else None
    return wait_until(f"a label containing '{text}'", find, timeout=timeout)


def open_assistant(app):
    """Clicks "+"; clicks again if the first click was eaten (as happens right after a
    modal window closed under Xvfb without a window manager) — as a person would."""
    def find():
        return [w for w in app.children if w.name == "New Virtual Machine" and w.showing][0]
    for attempt in range(3):
        by_name(app, "New virtual machine", role="push button").click()
        try:
            return wait_until("the New Virtual Machine assistant", find, timeout=4)
        except AssertionError:
            if attempt == 2:
                raise


def replace_text(field, text):
    """Clicks into a field, selects all it holds, and types text (empty: deletes it)."""
    from dogtail import rawinput
    field.click()
    time.sleep(0.2)
    rawinput.keyCombo("<Control>a")
    rawinput.pressKey("BackSpace")
    if text:
        rawinput.typeText(text)
    time.sleep(0.3)


def vm_names(desk):
    return sorted(v["name"] for v in hvd_call(desk.sock, "vm.list")["result"]["vms"])


def row(app, name, state, timeout=15):
    return by_name(app, f"{name}, {state}", role="list item", timeout=timeout)


# ---- the tests ----

def test_main_window_lists_vms_and_usb_page(desk, app):
    row(app, "taken", "Off")
    by_name(app, "Machines", role="radio button")
    desk.screenshot("main-window")
    by_name(app, "USB Devices", role="radio button").click()
    label_containing(app, "USB service not available")
    desk.screenshot("usb-unavailable")
    by_name(app, "Machines", role="radio button").click()
    row(app, "taken", "Off")


def test_invalid_entries_get_a_message_and_never_reach_hvd(desk, app):
    win = open_assistant(app)
    name = by_name(win, "Name", role="text")
    nxt = by_name(win, "Next", role="push button")
    assert not nxt.sensitive, "Next must be off while the name is empty"

    replace_text(name, "my vm")
    label_containing(win, "only letters, digits")
    assert not nxt.sensitive
    replace_text(name, "taken")
    label_containing(win, "“taken” already exists")
    assert not nxt.sensitive
    desk.screenshot("assistant-duplicate-name")
    replace_text(name, "")
    label_containing(win, "Enter a name")
    assert not nxt.sensitive

    replace_text(name, "big")
    wait_until("Next to become sensitive", lambda: nxt.sensitive, timeout=15)
    nxt.click()
    memory = by_name(win, "Memory (MiB)", role="spin button")
    total = hvd_call(desk.sock, "host.info")["result"]["memory_total"]
    replace_text(memory, str(total // (1 << 20) + 1024))
    label_containing(win, "This laptop has only")
    assert not nxt.sensitive, "Next must be off while the memory is more than the laptop has"
    desk.screenshot("assistant-too-much-memory")

    by_name(win, "Cancel", role="push button").click()
    wait_until("the assistant to close",
               lambda: not [w for w in app.children if w.name == "New Virtual Machine"],
               timeout=10)
    assert vm_names(desk) == ["taken"], "an invalid VM reached hvd"
    assert hvd_call(desk.sock, "disk.list")["result"]["images"] == []


def test_create_start_stop(desk, app):
    win = open_assistant(app)
    nxt = by_name(win, "Next", role="push button")

    replace_text(by_name(win, "Name", role="text"), "demo")
    wait_until("Next after a good name", lambda: nxt.sensitive, timeout=15)
    desk.screenshot("assistant-1-name")
    nxt.click()

    replace_text(by_name(win, "Memory (MiB)", role="spin button"), "256")
    wait_until("Next after a good memory size", lambda: nxt.sensitive, timeout=15)
    desk.screenshot("assistant-2-memory")
    nxt.click()

    replace_text(by_name(win, "Size (GiB)", role="spin button"), "1")
    wait_until("Next after a good disk size", lambda: nxt.sensitive, timeout=15)
    desk.screenshot("assistant-3-storage")
    nxt.click()

    kernel = by_name(win, "Kernel", role="text")
    replace_text(kernel, "vmlinuz")
    label_containing(win, "absolute path")
    assert not nxt.sensitive
    replace_text(kernel, str(desk.kernel))
    wait_until("Next after a good kernel path", lambda: nxt.sensitive, timeout=15)
    desk.screenshot("assistant-4-boot")
    nxt.click()

    by_name(win, "Network", role="combo box")
    desk.screenshot("assistant-5-network")
    nxt.click()

    label_containing(win, "Name: demo")
    desk.screenshot("assistant-6-summary")
    by_name(win, "Apply", role="push button").click()

    # The new VM appears in the list through hvd's vm.defined event.
    r = row(app, "demo", "Off", timeout=30)
    info = hvd_call(desk.sock, "vm.get", name="demo")["result"]["definition"]
    assert info["memory"] == 256 << 20 and info["kernel"] == str(desk.kernel), info
    # hvd recorded the format when it created the image (issue 12, defect 1).
    assert info["disk"] == ["demo.img,format=qcow2"], info
    images = {i["name"]: i for i in hvd_call(desk.sock, "disk.list")["result"]["images"]}
    assert images["demo.img"]["virtual_size"] == 1 << 30, images

    r.click()
    by_name(app, "demo", role="label")
    by_name(app, "Start", role="push button").click()
    row(app, "demo", "Running")  # from the vm.state event: nobody refreshed
    label_containing(app, "has no display")
    assert hvd_call(desk.sock, "vm.info", name="demo")["result"]["state"] == "running"
    desk.screenshot("vm-running")

    by_name(app, "Shut Down", role="push button").click()
    row(app, "demo", "Off")
    assert hvd_call(desk.sock, "vm.info", name="demo")["result"]["state"] == "shutoff"
    desk.screenshot("vm-stopped")


def assistant_to_storage(app, name):
    """The assistant opened, name and 256 MiB given: on the Storage page. (window, Next)"""
    win = open_assistant(app)
    nxt = by_name(win, "Next", role="push button")
    replace_text(by_name(win, "Name", role="text"), name)
    wait_until("Next after a good name", lambda: nxt.sensitive, timeout=15)
    nxt.click()
    replace_text(by_name(win, "Memory (MiB)", role="spin button"), "256")
    wait_until("Next after a good memory size", lambda: nxt.sensitive, timeout=15)
    nxt.click()
    return win, nxt


def choose_existing_image(app, win, image):
    by_name(win, "Use an existing image", role="radio button").click()
    by_name(win, "Image", role="combo box").click()
    # The item says "golden.img (64.0 MiB)" with a no-break space (g_format_size).
    wait_until(f"the menu item {image}", lambda: showing(
        app, lambda n: n.roleName == "menu item" and (n.name or "").startswith(image + " ("))
    )[0].click()


def storage_to_summary(desk, win, nxt):
    """From the Storage page (Next on) through Boot and Network to the summary."""
    wait_until("Next once an image is chosen", lambda: nxt.sensitive, timeout=15)
    nxt.click()
    replace_text(by_name(win, "Kernel", role="text"), str(desk.kernel))
    wait_until("Next after a good kernel path", lambda: nxt.sensitive, timeout=15)
    nxt.click()
    by_name(win, "Network", role="combo box")
    nxt.click()


def test_copying_an_image_moves_the_progress_bar(desk, app):
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed (Debian qemu-utils)")
    assert "result" in hvd_call(desk.sock, "disk.create", name="golden.img", size="64M")
    desk.qemu_img_mode("gate")  # the copy waits at 50 % until qemu_img_go()
    win, nxt = assistant_to_storage(app, "copied")
    choose_existing_image(app, win, "golden.img")
    by_name(win, "Copy it for this machine", role="check box").click()
    desk.screenshot("assistant-3-storage-copy")
    storage_to_summary(desk, win, nxt)
    label_containing(win, "a copy of “golden.img” named “copied.img”")
    by_name(win, "Apply", role="push button").click()

    # hvd's disk.progress events set the bar: it holds at 50 % while the copy is held there.
    bar = by_name(win, "Progress", role="progress bar")
    label_containing(win, "Copying the disk image")
    held = wait_until("the progress bar to reach 50 %",
                      lambda: bar.value if bar.value >= 0.5 else None, timeout=30)
    assert held < 1, f"the bar is full while the copy is still held ({held})"
    desk.screenshot("assistant-7-copying")
    jobs = hvd_call(desk.sock, "disk.jobs")["result"]["jobs"]
    assert [j["name"] for j in jobs] == ["copied.img"], jobs
    desk.qemu_img_go()

    row(app, "copied", "Off", timeout=60)
    info = hvd_call(desk.sock, "vm.get", name="copied")["result"]["definition"]
    assert info["disk"] == ["copied.img,format=raw"], info  # a copy of the raw golden.img
    images = {i["name"]: i for i in hvd_call(desk.sock, "disk.list")["result"]["images"]}
    assert images["copied.img"]["virtual_size"] == 64 << 20, images
    assert hvd_call(desk.sock, "disk.jobs")["result"]["jobs"] == []
    desk.qemu_img_mode("")


def test_an_existing_image_that_forgets_its_changes(desk, app):
    """"Forget changes at each start" on an existing image: the definition
    hvd gets has it non-persistent (issue 15), and the summary says so."""
    assert "result" in hvd_call(desk.sock, "disk.create", name="kiosk.img", size="16M")
    win, nxt = assistant_to_storage(app, "kiosk")
    forget = by_name(win, "Forget changes at each start (non-persistent)", role="check box")
    assert not forget.sensitive  # only for an existing image
    choose_existing_image(app, win, "kiosk.img")
    wait_until("the check box to be on", lambda: forget.sensitive, timeout=15)
    forget.click()
    desk.screenshot("assistant-3-storage-forget")
    storage_to_summary(desk, win, nxt)
    label_containing(win, "existing image “kiosk.img”")
    label_containing(win, "forgotten at each start")
    by_name(win, "Apply", role="push button").click()
    row(app, "kiosk", "Off", timeout=30)
    info = hvd_call(desk.sock, "vm.get", name="kiosk")["result"]["definition"]
    assert info["disk"] == ["kiosk.img,nonpersistent,format=raw"], info


def test_save_then_start_restores(desk, app):
    """Save stops the VM into hvd's save file (row and details say Saved);
    Start on a saved VM is vm.start, which restores it (issue 13)."""
    r = hvd_call(desk.sock, "vm.define", definition={"name": "saver", "kernel": str(desk.kernel),
                                                      "memory": "64M"})
    assert "result" in r, r
    assert "result" in hvd_call(desk.sock, "vm.start", name="saver")
    row(app, "saver", "Running").click()
    by_name(app, "saver", role="label")
    by_name(app, "Save", role="push button").click()
    row(app, "saver", "Saved", timeout=30)
    label_containing(app, "State: Saved")
    saved = desk.top / "state" / "saved" / "saver.hvsave"
    assert hvd_call(desk.sock, "vm.info", name="saver")["result"]["state"] == "saved"
    assert saved.is_file()
    assert not by_name(app, "Force Off", role="push button").sensitive
    desk.screenshot("vm-saved")

    by_name(app, "Start", role="push button").click()
    row(app, "saver", "Running", timeout=30)
    wait_until("the save file to go once the VM runs", lambda: not saved.exists(), timeout=15)
    console = hvd_call(desk.sock, "vm.console", name="saver")["result"]["data"]
    assert "fake-vmm: restored from" in console, console
    hvd_call(desk.sock, "vm.destroy", name="saver")
    row(app, "saver", "Off")


def test_details_show_the_balloon(desk, app):
    """A running VM asked to keep less memory (vm.memory, issue 19): the details
    say what the guest keeps now and the target, from the vm.memory event."""
    r = hvd_call(desk.sock, "vm.define", definition={"name": "balloon", "kernel": str(desk.kernel),
                                                      "memory": "1G"})
    assert "result" in r, r
    assert "result" in hvd_call(desk.sock, "vm.start", name="balloon")
    row(app, "balloon", "Running").click()
    by_name(app, "balloon", role="label")
    label_containing(app, "Memory: 1.0")  # GLib puts a no-break space before the unit
    r = hvd_call(desk.sock, "vm.memory", name="balloon", size="384M")
    assert r.get("result", {}).get("actual") == 384 << 20, r
    label_containing(app, "Memory: 1.0\u00a0GiB (now 384.0\u00a0MiB, target 384.0\u00a0MiB)")
    desk.screenshot("vm-ballooned")
    hvd_call(desk.sock, "vm.destroy", name="balloon")
    row(app, "balloon", "Off")


def test_a_quiet_hvd_keeps_its_connection(desk, app):
    """Nothing happens for longer than the 5 s connect timeout: the manager's
    connection must not time out (GIO kept that timeout on the socket and
    every read ended after 5 quiet seconds, so the manager kept reconnecting
    and lost the replies it waited for)."""
    time.sleep(12)
    log = (desk.top / "hv-manager.log").read_text(errors="replace")
    assert "the connection to hvd failed" not in log, log[-2000:]
    assert "hvd closed the connection" not in log, log[-2000:]


def test_hvd_going_away_shows_reconnecting_then_reconnects(desk, app):
    desk.kill_hvd()
    bar = label_containing(app, "Reconnecting to hvd", timeout=15)
    assert not by_name(app, "New virtual machine", role="push button").sensitive
    desk.screenshot("reconnecting")
    assert desk.procs["manager"].poll() is None, "hv-manager died when hvd went away"

    desk.start_hvd()
    wait_until("the Reconnecting bar to go away", lambda: not bar.showing, timeout=20)
    row(app, "demo", "Off")
    row(app, "taken", "Off")
    if shutil.which("qemu-img"):
        row(app, "copied", "Off")
    assert by_name(app, "New virtual machine", role="push button").sensitive
    desk.screenshot("reconnected")
