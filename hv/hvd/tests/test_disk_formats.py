#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Each disk's format is decided once (docs/disks.md, issue 12): hvd against
a fake hv-vmm, whose command line (/proc/PID/cmdline) is what hv-vmm would
get.

Checked: the first start of this hvd records the format of the images an
older one made; a raw image whose first sector later holds a qcow2 header (what a
guest can write) is still raw for hv-vmm (--disk ...,format=raw), for vm.get,
disk.list and a new definition; --image-dir names the image store; an image
disk.create makes (raw, qcow2) or disk.clone makes (copy, overlay) has its
format recorded, and a definition without format= gets it; a qcow2 the user
names format=raw stays raw; format=qcow2 on a raw file is refused; a host
file takes the format another definition gives it; a definition file from
before formats were kept gets them at its first start (and is rewritten),
probing a host file once (logged); disk.delete drops the record; an image put
in the store by hand shows as not decided; qemu-img is never run on an image
without -f (a logging qemu-img first in hvd's PATH); hvctl show and validate
show the format.

usage: test_disk_formats.py HVD FAKE_VMM HVCTL   (meson test, suite unit)
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

from hvdclient import Client, kill_fake_vmms, start_argv, stop_process, wait_listening

HVD, FAKE_VMM, HVCTL, HV_IMG = sys.argv[1:5]
QEMU_IMG = shutil.which("qemu-img")
failures = []


def check(cond, what):
    print(("ok:" if cond else "FAIL:"), what, flush=True)
    if not cond:
        failures.append(what)


# A qemu-img that logs each command line (one line, arguments separated by
# tabs) and runs the real one.
LOGGING_QEMU_IMG = """#!/bin/sh
(IFS='\t'; printf '%s\\n' "$*") >>"$QEMU_IMG_LOG"
exec "$REAL_QEMU_IMG" "$@"
"""


class Hvd:
    def __init__(self, top):
        self.top = top
        self.state = os.path.join(top, "state")
        self.run = os.path.join(top, "run")
        self.sock = os.path.join(self.run, "hvd.sock")
        self.images = os.path.join(self.state, "images")
        self.log = os.path.join(top, "hvd.log")
        self.qemu_log = os.path.join(top, "qemu-img.log")
        self.env = dict(os.environ)
        if QEMU_IMG:
            bindir = os.path.join(top, "bin")
            os.makedirs(bindir)
            with open(os.path.join(bindir, "qemu-img"), "w") as f:
                f.write(LOGGING_QEMU_IMG)
            os.chmod(os.path.join(bindir, "qemu-img"), 0o755)
            self.env.update(REAL_QEMU_IMG=QEMU_IMG, QEMU_IMG_LOG=self.qemu_log,
                            PATH=bindir + os.pathsep + self.env.get("PATH", ""))
        self.proc = None

    def start(self):
        log = open(self.log, "a")
        self.proc = subprocess.Popen(
            [HVD, "--state-dir", self.state, "--run-dir", self.run, "--vmm", FAKE_VMM,
             "--hv-img", HV_IMG,
             "--vsock-port", "-1", "--vmm-uid-base", "0", "--no-autostart"],
            stdout=log, stderr=log, env=self.env)
        wait_listening(self.sock)

    def stop(self):
        stop_process(self.proc)

    def records(self):
        """<state-dir>/image-formats as {name: format}."""
        try:
            with open(os.path.join(self.state, "image-formats")) as f:
                return dict(line.split() for line in f if line.strip() and line[0] != "#")
        except FileNotFoundError:
            return {}


def qcow2_header(backing):
    """The first bytes of a qcow2 v2 image whose backing file is `backing`:
    what a guest can write into its raw disk's first sector."""
    name = backing.encode()
    return struct.pack(">4sIQIIQIIQQIIQ", b"QFI\xfb", 2, 72, len(name), 16, 64 << 20, 0, 1,
                       3 << 16, 1 << 16, 1, 0, 0) + name


def wait(cond, seconds):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.05)


def write_at_start(path, data):
    with open(path, "r+b") as f:
        f.write(data)


def kernel(top):
    path = os.path.join(top, "vmlinuz")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("not a kernel")
    return path


def define(c, top, name, *disks, replace=False):
    text = f"[vm]\nname={name}\nkernel={kernel(top)}\ndisplay=false\ndisk={';'.join(disks)}\n"
    return c.call("vm.define", text=text, replace=replace)


def stored_disks(c, name):
    r = c.call("vm.get", name=name)
    return r.get("result", {}).get("definition", {}).get("disk")


def vmm_argv(c, name):
    """Starts the VM and returns hv-vmm's command line; the VM is destroyed again."""
    return start_argv(c, name, FAKE_VMM)


def option_values(argv, option):
    """The values of each `option VALUE` in argv (a refused start's reply: none)."""
    if not isinstance(argv, list):
        return []
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == option]


def disk_args(argv):
    return option_values(argv, "--disk")


def image_dirs(argv):
    return option_values(argv, "--image-dir")


def listed(c, name):
    for img in c.call("disk.list")["result"]["images"]:
        if img["name"] == name:
            return img
    return None


def test_guest_written_header(d, c, top, secret):
    """The attack: a raw image that starts with a qcow2 header naming a host file."""
    r = c.call("disk.create", name="guest.img", size="16M")
    check(r.get("result", {}).get("format") == "raw" and d.records().get("guest.img") == "raw",
          f"disk.create raw records raw ({r}, {d.records()})")
    r = define(c, top, "victim", "guest.img")
    check(stored_disks(c, "victim") == ["guest.img,format=raw"],
          f"define without format= stores format=raw from the record ({r})")
    write_at_start(os.path.join(d.images, "guest.img"), qcow2_header(secret))
    argv = vmm_argv(c, "victim")
    path = os.path.join(d.images, "guest.img")
    check(disk_args(argv) == [path + ",format=raw"],
          f"after the guest wrote a qcow2 header, hv-vmm still gets format=raw ({argv})")
    check(image_dirs(argv) == [d.images], f"hv-vmm gets --image-dir {d.images} ({argv})")
    check(stored_disks(c, "victim") == ["guest.img,format=raw"], "vm.get still says format=raw")
    img = listed(c, "guest.img")
    check(img and img["format"] == "raw" and img["backing"] is None,
          f"disk.list shows it raw, with no backing file ({img})")
    r = define(c, top, "second", "guest.img,ro")
    check(stored_disks(c, "second") == ["guest.img,ro,format=raw"],
          f"a new definition on it is raw too: the header is not read again ({r})")
    r = define(c, top, "second", "guest.img,format=qcow2", replace=True)
    check("result" in r and stored_disks(c, "second") == ["guest.img,format=qcow2"],
          f"format=qcow2 given by the user on a file with the magic is the user's choice ({r})")
    r = vmm_argv(c, "second")
    if QEMU_IMG:  # qemu-img check -f qcow2 finds the header alone is no image
        check(isinstance(r, dict) and r.get("error", {}).get("code") == "bad-image",
              f"and it is checked as a qcow2 at start: refused ({r})")
    else:
        check(disk_args(r) == [path + ",format=qcow2"], f"and hv-vmm is told so ({r})")
    check(d.records().get("guest.img") == "raw", "the record stays raw")
    c.call("vm.undefine", name="second")


def test_created_formats(d, c, top):
    if not QEMU_IMG:
        print("SKIP: qcow2 images need qemu-img (Debian qemu-utils)", flush=True)
        return
    r = c.call("disk.create", name="q.qcow2", size="32M", format="qcow2")
    check(r.get("result", {}).get("format") == "qcow2" and d.records().get("q.qcow2") == "qcow2",
          f"disk.create qcow2 records qcow2 ({r})")
    r = c.call("disk.clone", source="q.qcow2", name="ov.qcow2", mode="overlay")
    check(r.get("result", {}).get("backing") == "q.qcow2" and
          d.records().get("ov.qcow2") == "qcow2", f"an overlay is recorded qcow2 ({r})")
    r = c.call("disk.clone", source="guest.img", name="copy.img")
    check("result" in r and d.records().get("copy.img") == "raw",
          f"a copy of a raw image (with a qcow2 header inside) is recorded raw ({r})")
    r = define(c, top, "qvm", "ov.qcow2")
    check(stored_disks(c, "qvm") == ["ov.qcow2,format=qcow2"],
          f"define without format= on a qcow2 image: format=qcow2 from the record ({r})")
    argv = vmm_argv(c, "qvm")
    check(disk_args(argv) == [os.path.join(d.images, "ov.qcow2") + ",format=qcow2"],
          f"hv-vmm gets format=qcow2 ({argv})")
    r = define(c, top, "asraw", "q.qcow2,format=raw")
    check(stored_disks(c, "asraw") == ["q.qcow2,format=raw"],
          f"a qcow2 image named format=raw by the user stays raw ({r})")
    argv = vmm_argv(c, "asraw")
    check(disk_args(argv) == [os.path.join(d.images, "q.qcow2") + ",format=raw"],
          f"and hv-vmm gets format=raw ({argv})")
    r = c.call("disk.resize", name="copy.img", size="32M")
    check(r.get("result", {}).get("virtual_size") == 32 << 20, f"resize of the raw copy ({r})")
    r = c.call("disk.resize", name="q.qcow2", size="64M")
    check(r.get("result", {}).get("virtual_size") == 64 << 20, f"resize of a qcow2 ({r})")
    for vm in ("qvm", "asraw"):
        c.call("vm.undefine", name=vm)
    for img in ("ov.qcow2", "q.qcow2", "copy.img"):
        c.call("disk.delete", name=img)


def test_vhd_images(d, c, top):
    """VHD (qemu-img's vpc): made, recorded, passed as format=vhd, copied at its exact size."""
    if not QEMU_IMG:
        print("SKIP: VHD images need qemu-img (Debian qemu-utils)", flush=True)
        return
    size = (48 << 20) + 512  # not a whole CHS geometry: the footer's size is what counts
    r = c.call("disk.create", name="w.vhd", size=size, format="vhd")
    check(r.get("result", {}).get("format") == "vhd" and d.records().get("w.vhd") == "vhd" and
          r["result"].get("virtual_size") == size, f"disk.create vhd records vhd, its size ({r})")
    r = c.call("disk.create", name="odd.vhd", size=(1 << 20) + 100, format="vhd")
    check(r.get("error", {}).get("code") == "bad-params" and
          "512-byte sectors" in r["error"]["message"], f"a VHD of part sectors is refused ({r})")
    r = define(c, top, "vvm", "w.vhd")
    check(stored_disks(c, "vvm") == ["w.vhd,format=vhd"],
          f"define without format= on a VHD: format=vhd from the record ({r})")
    argv = vmm_argv(c, "vvm")
    check(disk_args(argv) == [os.path.join(d.images, "w.vhd") + ",format=vhd"] and
          d.images in image_dirs(argv), f"hv-vmm gets format=vhd and the image store ({argv})")
    r = define(c, top, "notvhd", "guest.img,format=vhd")
    check(r.get("error", {}).get("code") == "invalid-definition" and
          "not a VHD image" in r["error"]["message"], f"format=vhd on a raw file → refused ({r})")
    r = c.call("disk.clone", source="w.vhd", name="w2.vhd")
    check(r.get("result", {}).get("format") == "vhd" and d.records().get("w2.vhd") == "vhd" and
          r["result"].get("virtual_size") == size,
          f"a copy of a VHD is a VHD of the same size, not its geometry's ({r})")
    # An overlay on a VHD is a differencing VHD (made by hv-img), named by its parent.
    r = c.call("disk.clone", source="w.vhd", name="ov.vhd", mode="overlay")
    check(r.get("result", {}).get("format") == "vhd" and r["result"].get("backing") == "w.vhd" and
          r["result"].get("virtual_size") == size and d.records().get("ov.vhd") == "vhd",
          f"an overlay on a VHD is a differencing VHD over it ({r})")
    with open(os.path.join(d.images, "ov.vhd"), "rb") as f:
        head = f.read(1024 + 512)
    check(head[:8] == b"conectix" and int.from_bytes(head[60:64], "big") == 4 and
          head[512:520] == b"cxsparse", "ov.vhd starts as a differencing VHD does")
    r = c.call("disk.create", name="ov2.vhd", format="vhd", backing="w.vhd", size="64M")
    check(r.get("error", {}).get("code") == "bad-params" and "parent's size" in
          r["error"]["message"], f"a size for a differencing VHD is refused ({r})")
    r = c.call("disk.create", name="ov3.vhd", format="vhd", backing="guest.img")
    check(r.get("error", {}).get("code") == "bad-params" and "VHD parent" in
          r["error"]["message"], f"a differencing VHD over a raw image is refused ({r})")
    r = c.call("disk.create", name="ov4.qcow2", format="qcow2", backing="w.vhd")
    check(r.get("error", {}).get("code") == "bad-params" and "differencing VHD" in
          r["error"]["message"], f"a qcow2 over a VHD is refused, pointing to vhd ({r})")
    c.call("vm.undefine", name="vvm")
    r = c.call("disk.delete", name="w.vhd")
    check(r.get("error", {}).get("code") == "in-use" and "ov.vhd" in r["error"]["message"],
          f"the parent of a differencing VHD cannot be deleted ({r})")
    r = define(c, top, "ovm", "ov.vhd")
    argv = vmm_argv(c, "ovm")
    check(disk_args(argv) == [os.path.join(d.images, "ov.vhd") + ",format=vhd"] and
          d.images in image_dirs(argv), f"hv-vmm gets the child, format=vhd, the store ({argv})")
    c.call("vm.undefine", name="ovm")
    c.call("disk.delete", name="ov.vhd")
    r = c.call("disk.resize", name="w.vhd", size="64M")
    check(r.get("error", {}).get("code") == "bad-params" and "VHD" in r["error"]["message"],
          f"growing a VHD: not yet, said ({r})")
    for img in ("w.vhd", "w2.vhd"):
        c.call("disk.delete", name=img)


def test_nonpersistent(d, c, top):
    """A non-persistent disk: hv-vmm gets a fresh qcow2 overlay over the image at each start,
    which goes when the VM ends; the image itself is never written."""
    if not QEMU_IMG:
        print("SKIP: non-persistent disks need qemu-img (Debian qemu-utils)", flush=True)
        return
    base = os.path.join(d.images, "np-base.img")
    with open(base, "wb") as f:
        f.write(b"\xab" * (1 << 20))
    r = define(c, top, "np", "guest.img,ro", "np-base.img,nonpersistent")
    check(stored_disks(c, "np") == ["guest.img,ro,format=raw", "np-base.img,nonpersistent,format=raw"],
          f"nonpersistent is kept in the definition with the format ({r})")
    overlay = os.path.join(d.state, "scratch", "np", "disk1.qcow2")
    argv = start_argv(c, "np", FAKE_VMM, destroy=False)
    check(disk_args(argv) == [os.path.join(d.images, "guest.img") + ",ro,format=raw",
                              overlay + ",format=qcow2"] and d.images in image_dirs(argv),
          f"hv-vmm gets the overlay of the non-persistent disk, and the image's folder ({argv})")
    info = subprocess.run([QEMU_IMG, "info", "-U", "--output=json", overlay], capture_output=True,
                          text=True, timeout=30)
    meta = json.loads(info.stdout) if info.returncode == 0 else {}
    check(meta.get("backing-filename") == base and meta.get("backing-filename-format") == "raw" and
          meta.get("virtual-size") == 1 << 20, f"the overlay is a qcow2 over the image ({meta})")
    # What "the guest" writes goes to the overlay.
    w = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 0 4k", overlay],
                       capture_output=True, timeout=30)
    check(w.returncode == 0, f"a write into the overlay ({w.stderr})")
    c.call("vm.destroy", name="np")
    wait(lambda: c.call("vm.info", name="np").get("result", {}).get("state") != "running", 10)
    check(not os.path.exists(overlay), "the overlay is gone once the VM ends")
    with open(base, "rb") as f:
        check(f.read() == b"\xab" * (1 << 20), "the image itself was never written")
    start_argv(c, "np", FAKE_VMM, destroy=False)
    r = subprocess.run(["qemu-io", "-f", "qcow2", "-U", "-r", "-c", "read -P 0xab 0 4k", overlay],
                       capture_output=True, timeout=30)
    check(r.returncode == 0 and b"Pattern verification failed" not in r.stdout,
          f"the next start has a fresh overlay: the image's bytes again ({r.stdout})")
    c.call("vm.destroy", name="np")
    r = define(c, top, "np2", "np-base.img,nonpersistent,ro")
    check(r.get("error", {}).get("code") == "invalid-definition" and
          "ro and nonpersistent" in r["error"]["message"], f"ro with nonpersistent ({r})")
    wait(lambda: c.call("vm.info", name="np").get("result", {}).get("state") != "running", 10)
    r = c.call("vm.undefine", name="np")
    check("result" in r and not os.path.exists(os.path.dirname(overlay)),
          f"undefined: nothing left in scratch ({r})")
    os.unlink(base)


def test_refused_and_borrowed(d, c, top, outside):
    c.call("disk.create", name="plain.img", size="8M")
    r = define(c, top, "bad", "plain.img,format=qcow2")
    err = r.get("error", {})
    check(err.get("code") == "invalid-definition" and "plain.img' is not a qcow2 image" in
          err.get("message", ""), f"format=qcow2 on a raw file → refused, saying so ({r})")
    r = define(c, top, "bad", "plain.img,format=raw,format=raw")
    check(r.get("error", {}).get("code") == "invalid-definition" and
          "given twice" in r["error"]["message"], f"format= twice → refused ({r})")
    r = define(c, top, "bad", "plain.img,cache=none")
    check(r.get("error", {}).get("code") == "invalid-definition" and
          "unknown option 'cache=none'" in r["error"]["message"], f"an unknown option ({r})")
    check(c.call("vm.get", name="bad").get("error", {}).get("code") == "not-found",
          "nothing refused was stored")
    # A host file: the format of the definition that named it first.
    host = os.path.join(outside, "host.img")
    with open(host, "wb") as f:
        f.truncate(8 << 20)
    r = define(c, top, "h1", host + ",format=raw")
    write_at_start(host, qcow2_header("/etc/passwd"))
    r = define(c, top, "h2", host + ",ro")
    check(stored_disks(c, "h2") == [host + ",ro,format=raw"],
          f"a host file takes the format h1's definition gives it, not its header ({r})")
    r = define(c, top, "h3", "format=raw,plain.img")
    check(r.get("error", {}).get("code") == "invalid-definition", "options come after the name")
    r = define(c, top, "h3", "plain.img,format=raw,ro")
    check(stored_disks(c, "h3") == ["plain.img,ro,format=raw"], "options in any order")
    for vm in ("h1", "h2", "h3"):
        c.call("vm.undefine", name=vm)


def test_old_definition(d, top, outside):
    """A definition file written before formats were kept: format= at its first start."""
    host = os.path.join(outside, "old-host.img")
    with open(host, "wb") as f:
        f.truncate(4 << 20)
    by_hand = os.path.join(d.images, "byhand.img")
    with open(by_hand, "wb") as f:
        f.truncate(4 << 20)
    conf = os.path.join(d.state, "vms", "old.conf")
    with open(conf, "w") as f:
        f.write(f"[vm]\nname=old\nkernel={kernel(top)}\ndisplay=false\n"
                f"disk=plain.img;{host},ro;byhand.img\n")
    d.start()
    c = Client(d.sock)
    check(stored_disks(c, "old") == ["plain.img", host + ",ro", "byhand.img"],
          "an old definition loads as it is")
    img = listed(c, "byhand.img")
    check(img and img["format"] == "unknown",
          f"an image put in the store by hand shows as not decided: unknown ({img})")
    argv = vmm_argv(c, "old")
    check(disk_args(argv) == [os.path.join(d.images, "plain.img") + ",format=raw",
                              host + ",ro,format=raw", by_hand + ",format=raw"],
          f"at its first start hv-vmm gets each format ({argv})")
    want = ["plain.img,format=raw", host + ",ro,format=raw", "byhand.img,format=raw"]
    check(stored_disks(c, "old") == want, f"vm.get shows them ({stored_disks(c, 'old')})")
    with open(conf) as f:
        text = f.read()
    check("disk=plain.img,format=raw;" + host + ",ro,format=raw;byhand.img,format=raw;" in text,
          f"the definition file was rewritten ({text})")
    with open(d.log) as f:
        log = f.read()
    check(f"'{host}' has no format recorded; its first bytes say raw" in log and
          "byhand.img' has no format recorded" in log,
          "hvd logs the formats it read from a file's first bytes")
    check(d.records().get("byhand.img") == "raw" and host not in d.records(),
          f"recorded for the store image only ({d.records()})")
    write_at_start(by_hand, qcow2_header("/etc/passwd"))
    argv = vmm_argv(c, "old")
    check(disk_args(argv)[2:] == [by_hand + ",format=raw"], f"decided once: still raw ({argv})")
    c.call("vm.undefine", name="old")
    return c


def test_delete(d, c):
    r = c.call("disk.delete", name="plain.img")
    check("result" in r and "plain.img" not in d.records(),
          f"disk.delete drops the image's record ({r}, {d.records()})")
    with open(os.path.join(d.images, "plain.img"), "wb") as f:
        f.write(qcow2_header("/etc/passwd"))
    img = listed(c, "plain.img")
    check(img and img["format"] == "unknown" and img["backing"] is None,
          f"a file put there later under the name is not decided, its header not read ({img})")
    os.unlink(os.path.join(d.images, "plain.img"))
    c.call("disk.delete", name="byhand.img")


def test_hvctl(d, top):
    r = subprocess.run([HVCTL, "--socket", d.sock, "show", "victim"], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0 and "disk=guest.img,format=raw;" in r.stdout,
          f"hvctl show prints the format ({r.stdout})")
    conf = os.path.join(top, "v.conf")
    with open(conf, "w") as f:
        f.write(f"[vm]\nname=v\nkernel={kernel(top)}\ndisk=guest.img,ro;guest.img,format=raw\n")
    r = subprocess.run([HVCTL, "validate", conf, "--state-dir", d.state], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0 and "format=raw" in r.stdout and "format not given" in r.stdout,
          f"hvctl validate shows each disk's format ({r.stdout}{r.stderr})")
    r = subprocess.run([HVCTL, "--socket", d.sock, "disk", "list"], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0 and "guest.img" in r.stdout, f"hvctl disk list ({r.stdout})")


def test_qemu_img_told(d):
    if not QEMU_IMG:
        return
    with open(d.qemu_log) as f:
        runs = [line.rstrip("\n").split("\t") for line in f]
    told = [a for a in runs if a and a[0] in ("info", "check", "resize", "convert", "create")]
    check(len(told) >= 4, f"hvd ran qemu-img ({len(told)} times)")
    bad = [a for a in told if a[0] != "create" and "-f" not in a and "--image-opts" not in a]
    check(not bad, f"every qemu-img info/check/resize/convert has -f or --image-opts ({bad})")
    bad = [a for a in told if a[0] == "create" and "-b" in a and "-F" not in a]
    check(not bad, f"every qemu-img create with a backing file has -F ({bad})")


def legacy_images(d):
    """A store an hvd from before format records made."""
    os.makedirs(d.images)
    with open(os.path.join(d.images, "legacy.img"), "wb") as f:
        f.truncate(1 << 20)
    with open(os.path.join(d.images, "legacy.qcow2"), "wb") as f:
        f.write(qcow2_header("legacy.img"))


def cleanup_vms(top):
    kill_fake_vmms(FAKE_VMM, top)


def main():
    top = tempfile.mkdtemp(prefix="hvd-formats-")
    d = Hvd(top)
    outside = os.path.join(top, "outside")
    os.makedirs(outside)
    secret = os.path.join(outside, "secret")
    with open(secret, "w") as f:
        f.write("a host file no guest may read\n")
    try:
        legacy_images(d)
        d.start()
        check(d.records() == {"legacy.img": "raw", "legacy.qcow2": "qcow2"},
              f"the first start records the images an older hvd made ({d.records()})")
        for name in ("legacy.img", "legacy.qcow2"):
            os.unlink(os.path.join(d.images, name))
        c = Client(d.sock)
        test_guest_written_header(d, c, top, secret)
        test_created_formats(d, c, top)
        test_vhd_images(d, c, top)
        test_nonpersistent(d, c, top)
        test_refused_and_borrowed(d, c, top, outside)
        c.close()
        d.stop()
        c = test_old_definition(d, top, outside)
        test_delete(d, c)
        test_hvctl(d, top)
        c.close()
        test_qemu_img_told(d)
        check(d.proc.poll() is None, "hvd is still running at the end")
    finally:
        d.stop()
        cleanup_vms(top)
        if failures:
            print(open(d.log).read()[-4000:])
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
