#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""hvd's usb.* methods and `hvctl usb ...` against a fake hv-usbd control
socket (a thread here that records each request and answers like hv-usbd).

What is checked: hvd maps a VM name to the vsock CID of its definition and
never shows CIDs to clients; refusals for unknown VMs, VMs without vsock,
shut-off VMs, bad bus ids and bad rules come back with the right code before
hv-usbd is asked; hv-usbd's refusals and absence come back as errors
(code `usb`, `not-found`), never a hang; a fake hv-usbd that answers garbage
or nothing is survived.

usage: test_hvd_usb.py HVD FAKE_VMM HVCTL   (run by meson test, suite unit)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from hvdclient import Client

HVD, FAKE_VMM, HVCTL = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


class FakeUsbd:
    """One JSON line in, one out, like hv-usbd --control."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.mode = "normal"  # or "garbage", "silent"
        self.rules = []
        self.devices = [
            {"busid": "1-1", "id": "46f4:0001", "vendor": "QEMU", "product": "QEMU USB HARDDRIVE",
             "speed": "high", "class": 0, "interface_classes": [8], "input": False,
             "exported": False, "attached": False, "owner": None},
            {"busid": "1-2", "id": "0627:0001", "vendor": "QEMU", "product": "QEMU USB Tablet",
             "speed": "full", "class": 0, "interface_classes": [3], "input": True,
             "exported": False, "attached": False, "owner": None}]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def answer(self, req):
        cmd = req.get("cmd")
        if cmd == "list":
            return {"ok": True, "devices": self.devices}
        if cmd == "rules":
            if "set" in req:
                for r in req["set"]:
                    if "id" in r and ":" not in r["id"]:
                        return {"ok": False, "error": "rule \"id\" must be vendor:product in hex"}
                self.rules = req["set"]
            return {"ok": True, "rules": self.rules}
        dev = [d for d in self.devices if d["busid"] == req.get("busid")]
        if not dev:
            return {"ok": False, "error": "no such device (see \"list\" for bus ids)"}
        if cmd == "attach":
            if dev[0]["input"]:
                return {"ok": False, "error": "keyboards and mice need a rule naming that VM"}
            dev[0]["owner"], dev[0]["attached"] = req["vm"], True
            return {"ok": True}
        if cmd == "detach":
            dev[0]["owner"], dev[0]["attached"] = None, False
            return {"ok": True}
        return {"ok": False, "error": "unknown command"}

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while b"\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                if b"\n" not in buf:
                    continue
                req = json.loads(buf.split(b"\n", 1)[0])
                self.requests.append(req)
                if self.mode == "garbage":
                    conn.sendall(b"this is not json\n")
                elif self.mode == "silent":
                    time.sleep(0.2)  # then close without a reply
                else:
                    conn.sendall(json.dumps(self.answer(req)).encode() + b"\n")

    def close(self):
        self.stop = True
        self.sock.close()


def code(reply):
    return reply.get("error", {}).get("code")


def main():
    top = tempfile.mkdtemp(prefix="hvd-usb.")
    state, run = os.path.join(top, "state"), os.path.join(top, "run")
    sock, usock = os.path.join(run, "hvd.sock"), os.path.join(top, "usbd.sock")
    os.makedirs(run)
    kernel = os.path.join(top, "vmlinuz")
    open(kernel, "w").write("not a kernel")
    hvd = None
    try:
        log = open(os.path.join(top, "hvd.log"), "a")
        hvd = subprocess.Popen([HVD, "--state-dir", state, "--run-dir", run, "--vmm", FAKE_VMM,
                                "--vsock-port", "-1", "--usbd-socket", usock],
                               stdout=log, stderr=log)
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        c = Client(sock)

        def hvctl(*args):
            return subprocess.run([HVCTL, "--socket", sock, *args], capture_output=True,
                                  text=True, timeout=60)

        # No hv-usbd yet: a clear error, at once.
        r = c.call("usb.list")
        check(code(r) == "usb" and "hv-usbd is not running" in r["error"]["message"],
              f"usb.list without hv-usbd → code usb ({r})")
        r = hvctl("usb", "list")
        check(r.returncode == 1 and "hv-usbd" in r.stderr, "hvctl usb list without hv-usbd: exit 1")

        fake = FakeUsbd(usock)
        for name, extra in (("work", "vsock=7\n"), ("novsock", "")):
            text = f"[vm]\nname={name}\nmemory=256M\nkernel={kernel}\n{extra}"
            r = c.call("vm.define", text=text)
            check("result" in r, f"define {name}")

        r = c.call("usb.list")
        check([d["busid"] for d in r["result"]["devices"]] == ["1-1", "1-2"], "usb.list devices")
        r = hvctl("usb", "list")
        check(r.returncode == 0 and "46f4:0001" in r.stdout and "(host)" in r.stdout,
              f"hvctl usb list table ({r.stdout!r})")

        # Refusals hvd makes itself, before asking hv-usbd.
        n0 = len(fake.requests)
        cases = [
            ({}, "bad-params", "no busid"),
            ({"busid": "1-1"}, "bad-params", "no vm"),
            ({"busid": "../../x", "vm": "work"}, "bad-params", "path-like busid"),
            ({"busid": 5, "vm": "work"}, "bad-params", "busid not a string"),
            ({"busid": "1-1", "vm": "nope"}, "not-found", "unknown VM"),
            ({"busid": "1-1", "vm": "novsock"}, "bad-params", "VM without vsock"),
            ({"busid": "1-1", "vm": "work"}, "bad-state", "VM shut off"),
        ]
        for params, want, what in cases:
            r = c.call("usb.attach", **params)
            check(code(r) == want, f"usb.attach {what} → {want} ({r.get('error')})")
        check(len(fake.requests) == n0, "hv-usbd not asked for refused attaches")

        r = c.call("vm.start", name="work")
        check("result" in r, "start work (fake hv-vmm)")
        r = hvctl("usb", "attach", "1-1", "work")
        check(r.returncode == 0 and "attached to work" in r.stdout, f"hvctl usb attach ({r})")
        req = fake.requests[-1]
        check(req == {"cmd": "attach", "busid": "1-1", "vm": "work", "cid": 7},
              f"hv-usbd asked with the VM's CID ({req})")
        r = c.call("usb.list")
        check(r["result"]["devices"][0]["owner"] == "work", "owner shows in usb.list")
        r = c.call("usb.attach", busid="1-2", vm="work")
        check(code(r) == "usb" and "keyboards and mice" in r["error"]["message"],
              f"hv-usbd's refusal passed on ({r.get('error')})")
        r = c.call("usb.attach", busid="9-9", vm="work")
        check(code(r) == "not-found", "unknown device → not-found")
        r = hvctl("usb", "detach", "1-1")
        check(r.returncode == 0 and fake.requests[-1] == {"cmd": "detach", "busid": "1-1"},
              "hvctl usb detach")

        # Rules: clients name VMs; hvd adds the CID and hides it again.
        r = hvctl("usb", "rules", "add", "work", "--id", "46f4:0001")
        check(r.returncode == 0 and "46f4:0001" in r.stdout, f"hvctl usb rules add ({r})")
        check(fake.rules == [{"target": "work", "cid": 7, "id": "46f4:0001"}],
              f"hv-usbd got the rule with the CID ({fake.rules})")
        r = c.call("usb.rules")
        check(r["result"]["rules"] == [{"target": "work", "id": "46f4:0001"}],
              f"usb.rules hides the CID ({r})")
        r = hvctl("usb", "rules", "add", "host", "--class", "3")
        check(r.returncode == 0 and len(fake.rules) == 2 and fake.rules[1] == {
            "target": "host", "class": 3}, f"second rule kept the first ({fake.rules})")
        # The UI sends rules back as it got them.
        r = c.call("usb.rules", set=c.call("usb.rules")["result"]["rules"])
        check("result" in r and fake.rules[0]["cid"] == 7, "rules round-trip through a client")
        r = hvctl("usb", "rules", "remove", "0")
        check(r.returncode == 0 and fake.rules == [{"target": "host", "class": 3}],
              "hvctl usb rules remove 0")
        r = hvctl("usb", "rules", "remove", "5")
        check(r.returncode == 1, "removing a rule that is not there: exit 1")
        bad_rules = [
            ([{"id": "46f4:0001"}], "bad-params", "no target"),
            ([{"target": "nope"}], "not-found", "unknown VM"),
            ([{"target": "novsock"}], "bad-params", "VM without vsock"),
            ([{"target": "work", "class": "eight"}], "bad-params", "class not a number"),
            ([{"target": "work", "id": "x" * 100}], "bad-params", "long id"),
            ([{"target": "work", "id": "nonsense"}], "bad-params", "id hv-usbd refuses"),
            (["a string"], "bad-params", "rule not an object"),
            ("notalist", "bad-params", "set not a list"),
            ([{"target": "host"}] * 300, "bad-params", "too many rules"),
        ]
        for rules, want, what in bad_rules:
            r = c.call("usb.rules", set=rules)
            check(code(r) == want, f"usb.rules {what} → {want} ({r.get('error')})")
        check(fake.rules == [{"target": "host", "class": 3}], "bad rules changed nothing")
        r = hvctl("usb", "rules", "clear")
        check(r.returncode == 0 and fake.rules == [], "hvctl usb rules clear")

        # A broken hv-usbd: garbage, then silence. hvd answers with an error and lives.
        fake.mode = "garbage"
        r = c.call("usb.list")
        check(code(r) == "usb", f"garbage from hv-usbd → code usb ({r.get('error')})")
        fake.mode = "silent"
        r = c.call("usb.list")
        check(code(r) == "usb", f"hv-usbd hangs up → code usb ({r.get('error')})")
        fake.mode = "normal"
        check("result" in c.call("usb.list"), "hvd serves usb.list again")
        check(hvd.poll() is None, "hvd still running")
        c.call("vm.destroy", name="work")
        fake.close()
    finally:
        if hvd and hvd.poll() is None:
            hvd.send_signal(signal.SIGTERM)
            hvd.wait(10)
        if failures:
            print(open(os.path.join(top, "hvd.log")).read())
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
