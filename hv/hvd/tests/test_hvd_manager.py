#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The UIVM's narrower API (docs/hvd-api.md, "Privilege levels"), against a
fake hv-vmm. hvd runs with --manager-socket, a unix socket whose clients get
the level vsock clients (the UIVM) get, so this runs where vsock does not.

Checked, as the UIVM: a disk as a host path, /dev/null, '../', a link out of
the image store, a link to a device, a kernel outside the kernels folder or
reached through a link, PCI off the allow list, role=uivm, the UIVM's CID,
replacing or undefining the UIVM's definition, rewriting a root-defined
VM's paths, disk.* on a link out of the store: each refused with a clear
error. Allowed: a definition from the stores, a PCI device on the list, a
replace of a root-defined VM that keeps its paths, start and destroy. For
every client: the UIVM's CID is reserved, and a VM whose CID a running VM
has does not start. Limits: 16 UIVM clients; the 17th is closed while a
local client and hvctl are still answered.

usage: test_hvd_manager.py HVD FAKE_VMM HVCTL   (meson test, suite unit)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from hvdclient import Client, stop_process, wait_listening

HVD, FAKE_VMM, HVCTL = sys.argv[1:4]
MANAGER_CLIENTS = 16
UIVM_CID = 3
failures = []


def check(cond, what):
    print(("ok:" if cond else "FAIL:"), what, flush=True)
    if not cond:
        failures.append(what)


class Setup:
    def __init__(self, top):
        self.top = top
        self.state = os.path.join(top, "state")
        self.run = os.path.join(top, "run")
        self.sock = os.path.join(self.run, "hvd.sock")
        self.msock = os.path.join(self.run, "manager.sock")
        self.images = os.path.join(self.state, "images")
        self.kernels = os.path.join(self.state, "kernels")
        self.proc = None

    def start(self):
        log = open(os.path.join(self.top, "hvd.log"), "a")
        self.proc = subprocess.Popen(
            [HVD, "--state-dir", self.state, "--run-dir", self.run, "--vmm", FAKE_VMM,
             "--vsock-port", "-1", "--uivm-cid", str(UIVM_CID), "--manager-socket", self.msock],
            stdout=log, stderr=log)
        wait_listening(self.sock, self.msock)

    def stop(self):
        stop_process(self.proc)


def make_stores(s):
    """Kernels and images in hvd's stores, links out of them, files outside;
    a definition from before the UIVM's CID was reserved."""
    for folder in (s.images, s.kernels, os.path.join(s.state, "vms")):
        os.makedirs(folder)
    with open(os.path.join(s.state, "vms", "stale.conf"), "w") as f:
        f.write(f"[vm]\nname=stale\nkernel={s.kernels}/vmlinuz\nvsock={UIVM_CID}\n"
                "display=false\n")
    outside = os.path.join(s.top, "outside")
    os.makedirs(outside)
    for name in ("vmlinuz", "disk.img"):
        with open(os.path.join(outside, name), "wb") as f:
            f.write(b"host file\n")
    with open(os.path.join(s.kernels, "vmlinuz"), "wb") as f:
        f.write(b"not a kernel")
    with open(os.path.join(s.kernels, "initrd.img"), "wb") as f:
        f.write(b"not an initrd")
    os.symlink(os.path.join(outside, "vmlinuz"), os.path.join(s.kernels, "escape"))
    with open(os.path.join(s.images, "good.img"), "wb") as f:
        f.truncate(16 << 20)
    os.symlink("good.img", os.path.join(s.images, "alias.img"))           # stays inside
    os.symlink(os.path.join(outside, "disk.img"), os.path.join(s.images, "escape.img"))
    os.symlink("/dev/null", os.path.join(s.images, "null.img"))
    with open(os.path.join(s.state, "uivm-pci"), "w") as f:
        f.write("# PCI devices the UIVM may give\n00:05.0   # the NIC\n\n")
    return outside


def vm(name, s, **fields):
    d = {"name": name, "memory": 256 << 20, "kernel": os.path.join(s.kernels, "vmlinuz"),
         "display": False}
    d.update(fields)
    return d


def expect_refused(c, what, definition, code=None, words=(), **params):
    r = c.call("vm.define", definition=definition, **params)
    err = r.get("error") or {}
    ok = "error" in r and (code is None or err.get("code") == code) and all(
        w in err.get("message", "") for w in words)
    check(ok, f"UIVM: {what} → {code or 'an error'} {err}")


def test_definitions(s, outside):
    m = Client(s.msock)
    k = os.path.join(s.kernels, "vmlinuz")
    cases = [
        ("a disk as an absolute host path", {"disk": [os.path.join(outside, "disk.img")]},
         "not-allowed", ["Not allowed from the UIVM", "host path"]),
        ("disk=/dev/null (a device)", {"disk": ["/dev/null"]}, "not-allowed", ["host path"]),
        ("disk=/dev/vda (absent here)", {"disk": ["/dev/vda"]}, "not-allowed", ["host path"]),
        ("disk=../outside/disk.img", {"disk": ["../outside/disk.img"]}, None, ["disk"]),
        ("a link out of the image store", {"disk": ["escape.img"]}, "not-allowed",
         ["leads outside"]),
        ("a link to /dev/null in the store", {"disk": ["null.img"]}, "not-allowed", []),
        ("a kernel outside the kernels folder", {"kernel": os.path.join(outside, "vmlinuz")},
         "not-allowed", ["kernels folder"]),
        ("a kernel that is a link out of it", {"kernel": os.path.join(s.kernels, "escape")},
         "not-allowed", ["kernels folder"]),
        ("a kernel path with ..", {"kernel": s.kernels + "/../../outside/vmlinuz"},
         "not-allowed", ["kernels folder"]),
        ("an initrd outside", {"initrd": "/etc/hostname"}, "not-allowed", ["initrd"]),
        ("a relative kernel", {"kernel": "vmlinuz"}, "not-allowed", ["absolute"]),
        ("a host file that does not exist says no more than one that does",
         {"kernel": "/nonexistent/vmlinuz"}, "not-allowed", ["kernels folder"]),
        ("PCI not on the allow list", {"pci": ["0000:00:06.0"]}, "not-allowed", ["allow", "pci"]),
        ("role=uivm", {"role": "uivm", "vsock": 40}, "not-allowed", ["role"]),
        ("the UIVM's CID", {"vsock": UIVM_CID}, "invalid-definition", ["reserved"]),
    ]
    for what, fields, code, words in cases:
        expect_refused(m, what, vm("bad", s, **fields), code, words)
    r = m.call("vm.define", text=f"[vm]\nname=bad\nkernel={k}\ndisk=/dev/null\n")
    check(r.get("error", {}).get("code") == "not-allowed", f"UIVM: INI text with /dev/null → {r}")
    check(m.call("vm.get", name="bad").get("error", {}).get("code") == "not-found",
          "nothing refused was stored")

    r = m.call("vm.define", definition=vm(
        "mine", s, initrd=os.path.join(s.kernels, "initrd.img"), disk=["good.img", "alias.img,ro"],
        pci=["0000:00:05.0"], vsock=41, net="none", colour="#3465a4", autostart=False))
    check("result" in r, f"UIVM: a definition from hvd's stores, PCI on the list → defined {r}")
    r = m.call("vm.define", definition=vm("mine", s, disk=["good.img"], vsock=41), replace=True)
    check("result" in r, f"UIVM: replace its own VM → ok {r}")
    r = m.call("vm.define", definition=vm("mine", s, disk=["format=raw,good.img"], vsock=41),
               replace=True)
    check(r.get("error", {}).get("code") == "invalid-definition" and
          "unknown option" in r["error"]["message"], f"UIVM: options before the name → {r}")
    expect_refused(m, "a host path with format=", vm("bad", s, disk=["/dev/null,format=raw"]),
                   "not-allowed", ["host path"])
    r = m.call("vm.define", definition=vm("mine", s, disk=["good.img,format=raw,ro"], vsock=41),
               replace=True)
    check(r.get("result", {}).get("definition", {}).get("disk") == ["good.img,ro,format=raw"],
          f"UIVM: a store image with format= and ro in any order → defined {r}")
    m.close()


def test_root_defined(s, outside):
    local, m = Client(s.sock), Client(s.msock)
    host_disk = os.path.join(outside, "disk.img")
    root_def = vm("rootvm", s, kernel=os.path.join(outside, "vmlinuz"),
                  disk=[host_disk + ",ro", "good.img"], pci=["0000:00:07.0"])
    r = local.call("vm.define", definition=root_def)
    check("result" in r, f"root defines a VM with host paths and any PCI {r}")
    kept = dict(root_def, memory=512 << 20, colour="#ff0000")
    r = m.call("vm.define", definition=kept, replace=True)
    check("result" in r and r["result"]["definition"]["memory"] == 512 << 20,
          f"UIVM: settings of a root-defined VM, its paths kept → ok {r}")
    for what, change in (("its disk made writable", {"disk": [host_disk, "good.img"]}),
                         ("a host disk added", {"disk": [host_disk + ",ro", "/dev/null"]}),
                         ("its host disk's format changed",
                          {"disk": [host_disk + ",ro,format=qcow2", "good.img"]}),
                         ("its kernel changed", {"kernel": "/etc/hostname"}),
                         ("another PCI device", {"pci": ["0000:00:08.0"]})):
        expect_refused(m, f"replace of a root-defined VM, {what}", dict(kept, **change),
                       "not-allowed", [], replace=True)
    r = local.call("vm.get", name="rootvm")["result"]["definition"]
    check(r["disk"] == [host_disk + ",ro,format=raw", "good.img,format=raw"]
          and r["pci"] == ["0000:00:07.0"], f"root's paths are unchanged (formats kept) {r}")

    r = local.call("vm.start", name="stale")
    check(r.get("error", {}).get("code") == "in-use" and "reserved" in r["error"]["message"],
          f"a stored VM with the UIVM's CID does not start → {r}")
    uivm = vm("uivm", s, role="uivm", vsock=UIVM_CID)
    r = local.call("vm.define", definition=uivm)
    check(r.get("error", {}).get("code") == "invalid-definition" and "stale" in r["error"]["message"],
          f"root: the UIVM with a CID another VM's definition has → {r}")
    local.call("vm.undefine", name="stale")
    check("result" in local.call("vm.define", definition=uivm), "root defines the UIVM")
    expect_refused(m, "replace of the UIVM's definition", dict(uivm, memory=1 << 30),
                   "not-allowed", ["UIVM"], replace=True)
    r = m.call("vm.undefine", name="uivm")
    check(r.get("error", {}).get("code") == "not-allowed", f"UIVM: undefine the UIVM → {r}")
    for params in ({"name": "escape.img", "size": "32M"},):
        r = m.call("disk.resize", **params)
        check(r.get("error", {}).get("code") == "not-allowed", f"UIVM: disk.resize of a link out "
              f"of the store → {r}")
    r = m.call("disk.clone", source="escape.img", name="copy.img")
    check(r.get("error", {}).get("code") == "not-allowed",
          f"UIVM: disk.clone of a link out of the store → {r}")
    check(os.path.getsize(os.path.join(outside, "disk.img")) == 10, "the outside file is intact")
    r = m.call("disk.create", name="new.img", size="16M")
    check("result" in r, f"UIVM: disk.create in the store → ok {r}")
    local.close()
    m.close()


def test_cids(s):
    local, m = Client(s.sock), Client(s.msock)
    r = local.call("vm.define", definition=vm("taker", s, vsock=UIVM_CID))
    check(r.get("error", {}).get("code") == "invalid-definition" and
          "reserved" in r["error"]["message"], f"root: a normal VM with the UIVM's CID → {r}")
    r = local.call("vm.define", definition=vm("uivm2", s, role="uivm", vsock=41))
    check(r.get("error", {}).get("code") == "invalid-definition",
          f"root: a UIVM with the CID of VM 'mine' → {r}")
    check("result" in local.call("vm.define", definition=vm("twin", s, vsock=41)),
          "two shut-off VMs may share a CID")
    r = m.call("vm.start", name="mine")
    check("result" in r, f"UIVM: start its VM → running {r}")
    r = local.call("vm.start", name="twin")
    check(r.get("error", {}).get("code") == "in-use" and "mine" in r["error"]["message"],
          f"a VM whose CID a running VM has does not start → {r}")
    # Save and restore are the UIVM's as start is; the host's sleep hooks are not.
    r = m.call("vm.save", name="mine")
    check(r.get("result", {}).get("state") == "saved", f"UIVM: save its VM → saved {r}")
    r = m.call("vm.start", name="mine")
    check(r.get("result", {}).get("restored") is True, f"UIVM: start restores it {r}")
    for method in ("host.suspend", "host.resume"):
        r = m.call(method)
        check(r.get("error", {}).get("code") == "not-allowed", f"UIVM: {method} → {r}")
    r = m.call("vm.destroy", name="mine")
    check("result" in r, f"UIVM: destroy its VM {r}")
    local.close()
    m.close()


def test_limits(s):
    held = [Client(s.msock) for _ in range(MANAGER_CLIENTS)]
    for c in held:
        c.call("hello", versions=[1])
    extra = Client(s.msock)
    try:
        extra.call("vm.list")
        refused = False
    except (EOFError, ConnectionResetError, BrokenPipeError):
        refused = True
    check(refused, f"the UIVM's client {MANAGER_CLIENTS + 1} is closed")
    local = Client(s.sock)
    check("result" in local.call("vm.list"), "a local client is answered meanwhile")
    r = subprocess.run([HVCTL, "--socket", s.sock, "list"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and "mine" in r.stdout, f"hvctl list is answered meanwhile {r}")
    held.pop().close()
    c = answered(s.msock)
    check("result" in c.call("vm.list"), "a UIVM client gets in again once one left")
    for c in held + [c, local, extra]:
        c.close()


def answered(path):
    """A client hvd answers: the slots of clients that just left free up soon."""
    for _ in range(100):
        try:
            c = Client(path)
            c.call("hello", versions=[1])
            return c
        except (EOFError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"hvd answers no client on {path}")


def unread_replies(path, nbytes):
    """Sends enough vm.list requests for nbytes of replies, reads none until
    all are sent, then counts the replies that come before the end."""
    c = answered(path)
    one = len(json.dumps(c.call("vm.list"))) + 1
    n = nbytes // one + 1
    c.sock.sendall(b"".join(json.dumps({"id": i, "method": "vm.list"}).encode() + b"\n"
                            for i in range(n)))
    time.sleep(1)  # hvd reads them all and queues the replies
    got, buf = 0, b""
    try:
        while got < n:
            data = c.sock.recv(1 << 20)
            if not data:
                break
            buf += data
            got += buf.count(b"\n")
            buf = buf[buf.rfind(b"\n") + 1:]
    except (ConnectionResetError, socket.timeout):
        pass
    c.close()
    return got, n


def test_buffers(s):
    got, n = unread_replies(s.msock, 3 << 20)
    check(got < n, f"a UIVM client with 3 MiB of unread replies is closed ({got} of {n} came)")
    got, n = unread_replies(s.sock, 3 << 20)
    check(got == n, f"a local client may leave 3 MiB unread ({got} of {n} came)")


def main():
    top = tempfile.mkdtemp(prefix="hvd-manager-")
    s = Setup(top)
    try:
        outside = make_stores(s)
        s.start()
        test_definitions(s, outside)
        test_root_defined(s, outside)
        test_cids(s)
        test_limits(s)
        test_buffers(s)
        check(s.proc.poll() is None, "hvd is still running at the end")
    finally:
        s.stop()
        if failures:
            print(open(os.path.join(top, "hvd.log")).read()[-4000:])
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
