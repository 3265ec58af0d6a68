#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Each VM's own user for its hv-vmm (hv/hvd/vmuser.c), against fake-vmm.

What is checked: hvd (as root) starts each VM's hv-vmm with --user
BASE+SLOT:BASE+SLOT, a different one per VM; a VM keeps its slot across hvd
restarts and whatever the start order; an undefined VM's slot is given to
the next new VM; the images folder and a VM's writable disk lose their
"other" permission bits, a read-only disk keeps its mode; with
--vmm-uid-base 0 no --user is passed. The real drop (and the filter) is
tested in the virtual laptop: tests/hvd/test_hvd_sandbox.py.

usage: test_vmuser.py HVD FAKE_VMM   (run by meson test, suite unit; skipped unless root)
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HVD, FAKE_VMM = sys.argv[1:3]
BASE = 1900000000
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


class Hvd:
    def __init__(self, top, *extra):
        self.state, self.run = os.path.join(top, "state"), os.path.join(top, "run")
        self.sock = os.path.join(self.run, "hvd.sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        log = open(os.path.join(top, "hvd.log"), "a")
        self.proc = subprocess.Popen([HVD, "--state-dir", self.state, "--run-dir", self.run,
                                      "--vmm", FAKE_VMM, "--vsock-port", "-1", *extra],
                                     stdout=log, stderr=log)
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        self.c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.c.settimeout(30)
        self.c.connect(self.sock)
        self.buf, self.next_id = b"", 1
        self.started = set()

    def call(self, method, **params):
        i = self.next_id
        self.next_id += 1
        self.c.sendall(json.dumps({"id": i, "method": method, "params": params}).encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                data = self.c.recv(65536)
                if not data:
                    raise EOFError("hvd closed the connection")
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if msg.get("id") == i:
                return msg

    def user_of(self, name):
        """The --user that this VM's (fake) hv-vmm was started with, or None."""
        r = self.call("vm.start", name=name)
        assert "result" in r, r
        self.started.add(name)
        pid = self.call("vm.info", name=name)["result"]["pid"]
        for _ in range(100):  # the monitor's child may not have exec'd fake-vmm yet
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            if argv[0] == FAKE_VMM.encode():
                break
            time.sleep(0.05)
        return argv[argv.index(b"--user") + 1].decode() if b"--user" in argv else None

    def stop(self):
        for name in self.started:
            self.call("vm.destroy", name=name)  # an error when it is not running: fine
        self.proc.terminate()
        self.proc.wait(10)


def main():
    if os.geteuid() != 0:
        print("skipped: hvd gives VMs their own users only when it runs as root")
        return 77
    top = tempfile.mkdtemp(prefix="hvd-vmuser.")
    kernel = os.path.join(top, "vmlinuz")
    open(kernel, "w").write("not a kernel")
    os.makedirs(os.path.join(top, "state", "images"))
    os.chmod(os.path.join(top, "state", "images"), 0o755)  # as an older hvd left it
    disk, iso = os.path.join(top, "state", "images", "a.img"), os.path.join(top, "shared.iso")
    for path in (disk, iso):
        with open(path, "wb") as f:
            f.truncate(1 << 20)
        os.chmod(path, 0o644)
    d = None
    try:
        d = Hvd(top)
        for name, extra in (("a", f"disk=a.img;{iso},ro\n"), ("b", "")):
            r = d.call("vm.define", text=f"[vm]\nname={name}\nkernel={kernel}\n{extra}")
            check("result" in r, f"define {name} ({r})")
        ua, ub = d.user_of("a"), d.user_of("b")
        check(ua == f"{BASE + 1}:{BASE + 1}", f"VM a runs as {BASE + 1} ({ua})")
        check(ub == f"{BASE + 2}:{BASE + 2}", f"VM b runs as {BASE + 2} ({ub})")
        images = os.stat(os.path.join(d.state, "images")).st_mode & 0o777
        check(images & 0o007 == 0, f"images folder closed to others ({images:o})")
        check(os.stat(disk).st_mode & 0o777 == 0o640, "a's writable disk is now 0640")
        check(os.stat(iso).st_mode & 0o777 == 0o644, "a read-only disk keeps its mode")
        d.stop()

        d = Hvd(top)  # slots are kept across restarts, whatever the start order
        ub, ua = d.user_of("b"), d.user_of("a")
        check((ua, ub) == (f"{BASE + 1}:{BASE + 1}", f"{BASE + 2}:{BASE + 2}"),
              f"same users after an hvd restart ({ua}, {ub})")
        d.call("vm.destroy", name="b")
        check("result" in d.call("vm.undefine", name="b"), "undefine b")
        d.call("vm.define", text=f"[vm]\nname=c\nkernel={kernel}\n")
        uc = d.user_of("c")
        check(uc == f"{BASE + 2}:{BASE + 2}", f"c gets b's freed slot ({uc})")
        mapping = open(os.path.join(d.state, "vm-users")).read().split()
        check(mapping == ["1", "a", "2", "c"], f"vm-users lists a and c ({mapping})")
        d.stop()

        d = Hvd(top, "--vmm-uid-base", "0")
        ua = d.user_of("a")
        check(ua is None, f"--vmm-uid-base 0: no --user ({ua})")
        d.stop()
        d = None
    finally:
        if d:
            d.proc.kill()
        subprocess.run(["pkill", "-KILL", "-f", f"{FAKE_VMM} .*{top}"], check=False)
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
