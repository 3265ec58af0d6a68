#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vm.switch and vm.screenshot through a real hv-switch (a window under Xvfb) with
fake-vmm as the display producer of each VM: the switch focuses the right VM (screen
pixels, its FOCUS message, the keys), the screenshot is a PNG of the VM's colour, and
with hv-switch gone or hung the calls fail with no-switch after hvd's 5 s while
hvd answers other clients (the hv-switch reply is awaited from hvd's event loop).

usage: test_hvd_display.py HVD FAKE_VMM HVCTL HV_SWITCH   (meson test, suite unit)
Exits 77 (skipped) without Xvfb or xdotool.
"""
import base64
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "switch"))
import xshot  # noqa: E402
from test_hvd import Client, cleanup_vms, readable, send  # noqa: E402  (argv is read there: keep ours in the same order)

HVD, FAKE_VMM, HVCTL, HV_SWITCH = sys.argv[1:5]
RED, BLUE, GREEN = (0xCC, 0x20, 0x20), (0x20, 0x40, 0xCC), (0x20, 0xC0, 0x20)
GUEST = (0, 40, 1280, 760)
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def wait_for(pred, timeout=10, poll=0.1):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(poll)


def png_pixels(data):
    """Decodes an 8-bit RGB PNG (filters None/Sub/Up, as hvd writes Up): (w, h, rgb)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2), "8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, row, prev, out = zlib.decompress(idat), 1 + w * 3, bytearray(w * 3), bytearray()
    for y in range(h):
        f, line = raw[y * row], bytearray(raw[y * row + 1:(y + 1) * row])
        for i in range(len(line)):
            if f == 1 and i >= 3:
                line[i] = (line[i] + line[i - 3]) & 0xFF
            elif f == 2:
                line[i] = (line[i] + prev[i]) & 0xFF
        assert f in (0, 1, 2), f"filter {f}"
        out += line
        prev = line
    return w, h, bytes(out)


def share(rgb, colour, tol=12):
    n = len(rgb) // 3
    return sum(all(abs(rgb[i * 3 + k] - colour[k]) <= tol for k in range(3)) for i in range(n)) / n


class Env:
    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="hvd-display-test-")
        self.run = os.path.join(self.top, "run")
        os.makedirs(self.run)
        self.state = os.path.join(self.top, "state")
        self.sock = os.path.join(self.run, "hvd.sock")
        self.control = os.path.join(self.run, "switch-control.sock")
        self.procs = {}
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24",
                                      "-nolisten", "tcp", "-noreset"], pass_fds=[w],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        os.close(w)
        ready, _, _ = select.select([r], [], [], 15)
        self.display = ":" + (os.read(r, 64).decode().strip() if ready else "")
        self.xfd = r
        self.xenv = dict(os.environ, DISPLAY=self.display, SDL_VIDEODRIVER="x11")

    def log(self, name):
        return open(os.path.join(self.top, name + ".log"), "a")

    def start_switch(self):
        self.switch = subprocess.Popen(
            [HV_SWITCH, "--socket", os.path.join(self.run, "switch.sock"), "--size", "1280x800",
             "--renderer", "software", "--no-vsync"], env=self.xenv, stdout=self.log("hv-switch"),
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: os.path.exists(self.control), 15)

    def stop_switch(self):
        self.switch.terminate()
        self.switch.wait(10)

    def start_hvd(self):
        self.hvd = subprocess.Popen([HVD, "--state-dir", self.state, "--run-dir", self.run,
                                     "--vmm", FAKE_VMM, "--vsock-port", "-1"],
                                    stdout=self.log("hvd"), stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.sock), 10)
        time.sleep(0.1)

    def hvctl(self, *args):
        return subprocess.run([HVCTL, "--socket", self.sock, *args], capture_output=True,
                              text=True, timeout=30)

    def shot(self):
        return xshot.capture(self.display)

    def close(self):
        if getattr(self, "switch", None) and self.switch.poll() is None:
            self.switch.send_signal(signal.SIGCONT)  # in case a check left it stopped
        for p in (getattr(self, "hvd", None), getattr(self, "switch", None), self.xvfb):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        os.close(self.xfd)


def define(c, top, name, extra):
    kernel = os.path.join(top, "vmlinuz")
    open(kernel, "w").write("not a kernel")
    r = c.call("vm.define", text=f"[vm]\nname={name}\nmemory=256M\ncpus=1\nkernel={kernel}\n{extra}")
    check("result" in r, f"define {name} ({r.get('error')})")


def records(env):
    """hvd's records for hv-switch, by VM name: their keys, uid and mode."""
    out = {}
    folder = os.path.join(env.run, "displays")
    for f in os.listdir(folder) if os.path.isdir(folder) else []:
        path = os.path.join(folder, f)
        rec = dict(line.split(" ", 1) for line in open(path).read().splitlines() if " " in line)
        rec.update(uid=int(f), mode=os.stat(path).st_mode & 0o777)
        out[rec.get("name", "?")] = rec
    return out


def console(c, name):
    return c.call("vm.console", name=name)["result"]["data"]


def waiting_while_stopped(env, c, method):
    """hv-switch is stopped: while c waits for method, hvd answers everyone else."""
    other = Client(env.sock)
    asyncc = Client(env.sock)
    asyncc.call("hello", versions=[1], features=["async-replies"])
    i = send(c, method, name="red")
    j = send(c, "vm.info", name="red")  # the same connection: answered after method's reply
    a = send(asyncc, method, name="blue")
    time.sleep(0.05)  # hvd has both requests in flight
    r = other.call("vm.list")
    check("result" in r and not readable(c),
          f"{method} waits on a stopped hv-switch: another client's vm.list is answered first")
    r = asyncc.call("host.info")
    check("result" in r, f"an async-replies client waiting for {method} gets host.info first")
    first, second = c.line(), c.line()
    check(first.get("id") == i and first.get("error", {}).get("code") == "no-switch",
          f"the waiting client still gets no-switch ({first})")
    check(second.get("id") == j and "result" in second,
          "the request after it on the same connection is answered after it")
    r = asyncc.line()
    check(r.get("id") == a and r.get("error", {}).get("code") == "no-switch",
          f"and so does the async-replies client, with its id ({r})")
    other.close()
    asyncc.close()


def run(env):
    env.start_switch()
    env.start_hvd()
    c = Client(env.sock)
    define(c, env.top, "red", "colour=#cc2020\nslot=1\n")
    define(c, env.top, "blue", "colour=#2040cc\nslot=2\n")
    define(c, env.top, "green", "colour=#20c020\nslot=2\n")  # slot 2 is blue's: gets another
    define(c, env.top, "plain", "display=false\n")

    r = c.call("vm.switch", name="red")
    check(r.get("error", {}).get("code") == "bad-state", f"switch to a shut-off VM → bad-state ({r})")
    r = c.call("vm.switch")
    check(r.get("error", {}).get("code") == "bad-params", "vm.switch without a name → bad-params")
    r = c.call("vm.screenshot", name="ghost")
    check(r.get("error", {}).get("code") == "not-found", "screenshot of an unknown VM → not-found")

    for n in ("red", "blue", "green", "plain"):
        check("result" in c.call("vm.start", name=n), f"start {n}")
    vms = {v["name"]: v for v in c.call("vm.list")["result"]["vms"]}
    check(vms["red"]["slot"] == 1 and vms["blue"]["slot"] == 2 and vms["green"]["slot"] == 3
          and vms["plain"]["slot"] is None, f"vm.list has the slots ({[(n, v['slot']) for n, v in vms.items()]})")
    check(c.call("vm.info", name="green")["result"]["slot"] == 3, "vm.info has the slot")
    ok = wait_for(lambda: all("display: welcome" in console(c, n) for n in ("red", "blue", "green")))
    check(ok, "the three fake VMMs are on hv-switch")
    # hv-switch's record of who each VM user's producer is (docs/switch.md).
    recs = records(env)
    check(sorted(recs) == ["blue", "green", "red"], f"a record for each display VM ({recs})")
    check(recs.get("red", {}).get("colour") == "cc2020" and recs["red"].get("slot") == "1"
          and recs["red"].get("uivm") == "no" and recs["green"].get("slot") == "3",
          f"the records say the name, colour and slot ({recs})")
    check(all(r["mode"] == 0o644 and r["uid"] >= 1900000000 for r in recs.values()),
          f"root's, read-only for others, named by the VM's user ({recs})")

    r = c.call("vm.screenshot", name="plain")
    check(r.get("error", {}).get("code") == "no-display", f"screenshot of display=false → no-display ({r})")
    r = c.call("vm.switch", name="plain")
    check(r.get("error", {}).get("code") == "no-display", "switch to display=false → no-display")

    # The first VM on hv-switch has the focus; switch to blue.
    t0 = time.monotonic()
    r = c.call("vm.switch", name="blue")
    took = time.monotonic() - t0
    check(r.get("result") == {"name": "blue", "slot": 2}, f"vm.switch blue → slot 2 ({r}, {took * 1000:.1f} ms)")
    s = wait_for(lambda: (lambda s: s if s.count(BLUE, GUEST) > 0.3 * 1280 * 760 else None)(env.shot()))
    check(s is not None and s.count(RED, GUEST) == 0, "the screen shows blue, no red")
    check(wait_for(lambda: "display: focus 1" in console(c, "blue")), "blue got FOCUS 1")
    subprocess.run(["xdotool", "key", "a"], env=env.xenv, check=True, timeout=10)
    check(wait_for(lambda: "display: key 30 release" in console(c, "blue")), "a key typed reaches blue")
    check("key 30" not in console(c, "red") + console(c, "green"), "and no other VM")

    r = env.hvctl("switch", "green")
    check(r.returncode == 0 and "Ctrl+Alt+3" in r.stdout, f"hvctl switch green ({r.stdout}{r.stderr})")
    check(wait_for(lambda: env.shot().count(GREEN, GUEST) > 0.3 * 1280 * 760), "the screen shows green")

    # Screenshots: the producer's colour, at the size asked, of a VM that is not focused.
    t0 = time.monotonic()
    r = c.call("vm.screenshot", name="red", max_width=160, max_height=100)
    took = time.monotonic() - t0
    res = r.get("result", {})
    check(res.get("format") == "png" and (res.get("width"), res.get("height")) == (160, 100),
          f"screenshot 160x100 of red ({r.get('error')}, {took * 1000:.1f} ms)")
    if res:
        w, h, rgb = png_pixels(base64.b64decode(res["data"]))
        check((w, h) == (160, 100) and share(rgb, RED) > 0.99, "its pixels are red")
    r = c.call("vm.screenshot", name="blue")
    res = r.get("result", {})
    check((res.get("width"), res.get("source_width")) == (640, 640), "default: the full picture")
    if res:
        check(share(png_pixels(base64.b64decode(res["data"]))[2], BLUE) > 0.99, "blue is blue")
    r = c.call("vm.screenshot", name="red", max_width=0)
    check(r.get("error", {}).get("code") == "bad-params", "max_width 0 → bad-params")
    r = c.call("vm.screenshot", name="red", max_width=4096)
    check(r.get("error", {}).get("code") == "bad-params", "max_width 4096 → bad-params")
    out = os.path.join(env.top, "green.png")
    r = env.hvctl("screenshot", "green", out, "--max", "64x64")
    ok = r.returncode == 0 and os.path.exists(out)
    check(ok, f"hvctl screenshot green FILE ({r.stdout}{r.stderr})")
    if ok:
        w, h, rgb = png_pixels(open(out, "rb").read())
        check((w, h) == (64, 40) and share(rgb, GREEN) > 0.99, f"the file is a 64x40 green PNG ({w}x{h})")
    check(env.shot().count(GREEN, GUEST) > 0.3 * 1280 * 760, "screenshots do not move the focus")

    # hv-switch hung: the calls give up after hvd's 5 s; hvd keeps serving.
    os.kill(env.switch.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    r = c.call("vm.switch", name="red")
    took = time.monotonic() - t0
    check(r.get("error", {}).get("code") == "no-switch" and took < 8,
          f"hv-switch stopped: vm.switch → no-switch in {took:.2f} s ({r.get('error')})")
    t0 = time.monotonic()
    r = c.call("vm.screenshot", name="red")
    took = time.monotonic() - t0
    check(r.get("error", {}).get("code") == "no-switch" and took < 8,
          f"hv-switch stopped: vm.screenshot → no-switch in {took:.2f} s")
    for method in ("vm.screenshot", "vm.switch"):
        waiting_while_stopped(env, c, method)
    os.kill(env.switch.pid, signal.SIGCONT)

    env.stop_switch()
    r = c.call("vm.switch", name="red")
    err = r.get("error", {})
    check(err.get("code") == "no-switch" and "hv-switch is not running" in err.get("message", ""),
          f"hv-switch down: vm.switch → no-switch ({err})")
    r = env.hvctl("screenshot", "red", os.path.join(env.top, "x.png"))
    check(r.returncode == 1 and "no-switch" in r.stderr, f"hvctl screenshot → exit 1, no-switch ({r.stderr.strip()})")

    # hv-switch back: the fake VMMs connect again and the calls work.
    env.start_switch()
    check(wait_for(lambda: "result" in c.call("vm.screenshot", name="red", max_width=8, max_height=8)),
          "after hv-switch restarts, screenshots work again")
    r = c.call("vm.switch", name="red")
    check(r.get("result", {}).get("slot") == 1, "and vm.switch")
    check(wait_for(lambda: env.shot().count(RED, GUEST) > 0.3 * 1280 * 760), "the screen shows red")
    for n in ("red", "blue", "green", "plain"):
        c.call("vm.destroy", name=n)
    check(wait_for(lambda: not records(env)), "the records go with the VMs")
    c.close()
    check(env.hvd.poll() is None and env.switch.poll() is None, "hvd and hv-switch still run")


def main():
    for prog in ("Xvfb", "xdotool", "xwd"):
        if not shutil.which(prog):
            print(f"SKIP: {prog} is missing (scripts/deps.sh test)")
            return 77
    env = Env()
    try:
        run(env)
    finally:
        env.close()
        cleanup_vms(env.top)
        if failures:
            for n in ("hvd", "hv-switch"):
                print(f"--- {n}.log ---\n" + open(os.path.join(env.top, n + ".log")).read()[-3000:])
        shutil.rmtree(env.top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
