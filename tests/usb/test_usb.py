# SPDX-License-Identifier: GPL-2.0-or-later
"""PV USB end to end in the virtual laptop (docs/usb.md).

hv-usbd runs inside the laptop. A usb-storage device holding a known file
is hotplugged with QMP; hv-usbd serves it over USB/IP on TCP loopback and
Debian's own `usbip` client attaches it to the laptop's vhci-hcd, so the
kernel's vhci is the frontend and a client nobody here wrote speaks to
hv-usbd. Then the product path: hvd runs the desktop test guest (generic
kernel: vhci-hcd, usb-storage) with a vsock CID, a static hv-usb-agent in
an appended cpio, and `hvctl usb attach|detach|rules` move the stick into
the guest over vsock and back; unplugged while the guest reads, replugged.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from vlaptop import hvctl, newc, sd_disk, wait_for
from vlaptop import hvctl_ok as vlaptop_hvctl_ok

CTL = "/run/hv-usbd.sock"
TCP_PORT = 3240
STICK_ID = "46f4:0001"  # QEMU's usb-storage
KNOWN = os.urandom(3 * 1024 * 1024 + 123)
KNOWN_SHA = hashlib.sha256(KNOWN).hexdigest()


def make_stick(path):
    """An ext4 image holding known.bin (mke2fs -d: no root, no loop device)."""
    src = Path(tempfile.mkdtemp(prefix="usbstick."))
    try:
        (src / "known.bin").write_bytes(KNOWN)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(src), str(path), "64M"],
                       check=True)
    finally:
        shutil.rmtree(src)


def ctl(laptop, obj):
    """One request on hv-usbd's control socket; returns the parsed reply."""
    res = laptop.check(f"echo '{json.dumps(obj)}' | socat -t 5 - UNIX-CONNECT:{CTL}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def find_busid(laptop):
    for d in ctl(laptop, {"cmd": "list"})["devices"]:
        if d["id"] == STICK_ID:
            return d["busid"]
    return None


def hvctl_ok(laptop, *args, timeout=90):
    return vlaptop_hvctl_ok(laptop, *args, timeout=timeout,
                            detail=lambda: usbd_log(laptop)[-2000:])


def usbd_log(laptop):
    return laptop.run("cat /tmp/hv-usbd.log").stdout


def usbd_alive(laptop):
    return laptop.run("kill -0 $(cat /run/hv-usbd.pid)").ok


@pytest.fixture(scope="module")
def usb(laptop, tmp_path_factory):
    """hv-usbd running in the laptop with its TCP listener; the stick image."""

    def setup(lt):
        lt.check("modprobe -a vhci-hcd usb-storage sd_mod ext4 2>&1; "
                 "[ -d /sys/devices/platform/vhci_hcd.0 ]")
        # libusb's hotplug follows udev's events: the laptop's busybox init has no udevd.
        lt.check("pidof systemd-udevd >/dev/null || "
                 "/lib/systemd/systemd-udevd --daemon; udevadm trigger; udevadm settle -t 10",
                 timeout=60)
        lt.check(f"hv-usbd --control {CTL} --tcp {TCP_PORT} -v >/tmp/hv-usbd.log 2>&1 & "
                 "echo $! > /run/hv-usbd.pid; sleep 1; kill -0 $!")
    laptop.prepare(setup)
    img = tmp_path_factory.mktemp("usb") / "stick.img"
    make_stick(img)
    yield img
    if not laptop.crashed():
        laptop.run("kill $(cat /run/hv-usbd.pid)")
        print(usbd_log(laptop))


def plug(laptop, img):
    laptop.usb_add("stick", img)
    return wait_for(lambda: find_busid(laptop), 60, "hv-usbd to list the plugged stick")


def usbip_port(laptop):
    """vhci port numbers in use, from `usbip port`."""
    out = laptop.run("usbip port").stdout
    return [int(l.split()[1].rstrip(":")) for l in out.splitlines() if l.startswith("Port ")]


def test_interop_usbip_client(laptop, usb):
    """Debian's usbip lists and attaches the stick; files round-trip; host gets it back."""
    busid = plug(laptop, usb)
    dev = [d for d in ctl(laptop, {"cmd": "list"})["devices"] if d["busid"] == busid][0]
    assert dev["speed"] in ("high", "super") and 8 in dev["interface_classes"]
    assert dev["product"], "no product name from string descriptors or usb.ids"

    assert ctl(laptop, {"cmd": "attach", "busid": busid, "tcp": True})["ok"]
    listing = laptop.check("usbip list -r 127.0.0.1").stdout
    assert busid in listing and "46f4:0001" in listing, listing

    laptop.check(f"usbip attach -r 127.0.0.1 -b {busid}", timeout=60)
    sd = wait_for(lambda: sd_disk(laptop, True), 60, "a disk under vhci_hcd")
    laptop.check(f"mkdir -p /mnt/u && mount /dev/{sd} /mnt/u", timeout=60)
    out = laptop.check("sha256sum /mnt/u/known.bin", timeout=120).stdout
    assert out.split()[0] == KNOWN_SHA
    laptop.check("dd if=/dev/urandom of=/mnt/u/new.bin bs=64k count=16 2>/dev/null && "
                 "sha256sum /mnt/u/new.bin > /tmp/new.sha && umount /mnt/u", timeout=120)
    new_sha = laptop.check("cut -d' ' -f1 /tmp/new.sha").stdout.strip()

    for port in usbip_port(laptop):
        laptop.check(f"usbip detach -p {port}")
    wait_for(lambda: sd_disk(laptop, True) is None, 30, "the vhci disk to go away")
    # Back on the host's own driver: the laptop reads the new file from the device itself.
    sd = wait_for(lambda: sd_disk(laptop, False), 60, "the stick back on usb-storage")
    laptop.check(f"mount /dev/{sd} /mnt/u", timeout=60)
    out = laptop.check("sha256sum /mnt/u/new.bin", timeout=60).stdout
    laptop.run("umount /mnt/u")
    assert out.split()[0] == new_sha
    assert usbd_alive(laptop)


def hostile(laptop, data, name):
    """Sends raw bytes to hv-usbd's TCP listener; returns what came back."""
    laptop.put(data, f"/tmp/{name}.bin")
    res = laptop.run(f"socat -t 3 - TCP:127.0.0.1:{TCP_PORT} < /tmp/{name}.bin | od -An -v -tx1",
                     timeout=30)
    return res.stdout


def op_import(busid):
    return struct.pack(">HHI", 0x0111, 0x8003, 0) + busid.encode().ljust(32, b"\0")


def submit(seq, devid, direction, ep, length, npackets=0, setup=b"\0" * 8):
    return struct.pack(">IIIIIIIiii", 1, seq, devid, direction, ep, 0, length, 0, npackets,
                       0) + setup


def test_hostile_clients(laptop, usb):
    """Malformed headers, absurd lengths, unknown seqnums: connection closed, daemon serves on."""
    busid = find_busid(laptop) or plug(laptop, usb)
    ctl(laptop, {"cmd": "attach", "busid": busid, "tcp": True})
    devid = None
    reply = hostile(laptop, op_import(busid), "probe")
    # OP_REP_IMPORT with status 0: the device record gives busnum/devnum.
    raw = bytes.fromhex(reply.replace(" ", "").replace("\n", ""))
    assert raw[:8] == struct.pack(">HHI", 0x0111, 3, 0), reply
    busnum, devnum = struct.unpack(">II", raw[8 + 0x120:8 + 0x128])
    devid = busnum << 16 | devnum

    cases = {
        "bad_version": struct.pack(">HHI", 0x0100, 0x8005, 0),
        "unknown_op": struct.pack(">HHI", 0x0111, 0x8099, 0),
        "busid_unterminated": struct.pack(">HHI", 0x0111, 0x8003, 0) + b"A" * 32,
        "absurd_length": op_import(busid) + submit(1, devid, 1, 1, 0xFFFFFFF0),
        "bad_direction": op_import(busid) + submit(1, devid, 7, 1, 512),
        "bad_endpoint": op_import(busid) + submit(1, devid, 1, 99, 512),
        "absurd_packets": op_import(busid) + submit(1, devid, 1, 1, 512, 0x7FFFFFFF),
        "wrong_devid": op_import(busid) + submit(1, devid ^ 0x55, 1, 1, 512),
        "unknown_command": op_import(busid) + struct.pack(">I", 0x77) + b"\0" * 44,
        "unlink_unknown_seqnum": op_import(busid) +
        struct.pack(">IIIIII", 2, 5, devid, 0, 0, 0xDEAD) + b"\0" * 24,
        "control_setup_lies": op_import(busid) +
        submit(1, devid, 1, 0, 8, setup=bytes([0x80, 6, 0, 1, 0, 0, 0xff, 0xff])),
    }
    for name, data in cases.items():
        hostile(laptop, data, name)
        assert usbd_alive(laptop), f"hv-usbd died on {name}:\n{usbd_log(laptop)}"
    log = usbd_log(laptop)
    for reason in ("unsupported USB/IP version", "malformed busid",
                   "transfer length out of range", "direction is neither",
                   "endpoint number out of range", "number_of_packets out of range",
                   "devid does not match", "unknown or unexpected command",
                   "never submitted", "control setup inconsistent"):
        assert reason in log, f"no '{reason}' in the log:\n{log}"
    # A well-behaved client is still served, and the device is free again.
    listing = laptop.check("usbip list -r 127.0.0.1").stdout
    assert busid in listing
    assert ctl(laptop, {"cmd": "list"})["ok"]


def test_surprise_removal(laptop, usb):
    """Unplugged while read through USB/IP: vhci sees the disconnect; replug works (by rule)."""
    busid = find_busid(laptop) or plug(laptop, usb)
    # The rule offers the stick on the TCP listener whenever it is plugged in.
    assert ctl(laptop, {"cmd": "rules", "set": [{"id": STICK_ID, "target": "tcp"}]})["ok"]
    ctl(laptop, {"cmd": "attach", "busid": busid, "tcp": True})
    laptop.check(f"usbip attach -r 127.0.0.1 -b {busid}", timeout=60)
    sd = wait_for(lambda: sd_disk(laptop, True), 60, "a disk under vhci_hcd")
    laptop.check(f"(dd if=/dev/{sd} of=/dev/null bs=64k iflag=direct > /tmp/dd.log 2>&1; "
                 "echo $? > /tmp/dd.rc) & sleep 1")
    laptop.usb_del("stick")
    wait_for(lambda: not usbip_port(laptop), 60, "vhci to report the port free (disconnect)")
    wait_for(lambda: laptop.run("[ -s /tmp/dd.rc ]").ok, 60, "the reader to finish")
    assert usbd_alive(laptop)
    assert "left" in usbd_log(laptop)
    # Plugged in again: the rule offers it again and it attaches again.
    busid = plug(laptop, usb)
    wait_for(lambda: busid in laptop.run("usbip list -r 127.0.0.1").stdout, 30,
         "the rule to offer the replugged stick")
    laptop.check(f"usbip attach -r 127.0.0.1 -b {busid}", timeout=60)
    wait_for(lambda: sd_disk(laptop, True), 60, "the replugged disk under vhci_hcd")
    for port in usbip_port(laptop):
        laptop.check(f"usbip detach -p {port}")
    ctl(laptop, {"cmd": "rules", "set": []})
    laptop.usb_del("stick")


def test_isochronous_audio(laptop, usb):
    """Isochronous OUT through hv-usbd: QEMU's usb-audio (a speaker) served over TCP
    to the laptop's vhci-hcd; snd-usb-audio binds and 2 s of sound play to the end."""
    laptop.qmp("device_add", driver="usb-audio", id="snd", bus="xhci.0")
    try:
        busid = wait_for(lambda: next((d["busid"] for d in ctl(laptop, {"cmd": "list"})["devices"]
                                       if d["id"] == "46f4:0002"), None), 60,
                         "hv-usbd to list the usb-audio device")
        assert ctl(laptop, {"cmd": "attach", "busid": busid, "tcp": True})["ok"]
        laptop.check(f"usbip attach -r 127.0.0.1 -b {busid}", timeout=60)
        laptop.run("modprobe -a snd-usb-audio snd-pcm-oss", timeout=60)

        def vhci_card():
            res = laptop.run("for c in /sys/class/sound/card*; do "
                             "readlink -f $c/device | grep -q vhci_hcd && basename $c; done")
            return res.stdout.strip().replace("card", "")

        card = wait_for(vhci_card, 60, "a sound card under vhci_hcd")
        dsp = "/dev/dsp" if card == "0" else f"/dev/dsp{card}"
        wait_for(lambda: laptop.run(f"[ -e {dsp} ]").ok, 30, f"{dsp}")
        # OSS's default is 8 kHz u8 mono: 16000 bytes are 2 s of sound, sent as
        # isochronous OUT URBs at the device's rate; they must all complete.
        res = laptop.run(f"timeout 60 dd if=/dev/zero of={dsp} bs=4000 count=4 2>&1; "
                         f"echo rc=$?", timeout=90)
        assert "rc=0" in res.stdout, f"{res.stdout}\n{laptop.run('dmesg | tail -20').stdout}"
        log = usbd_log(laptop)
        assert f"{busid}: isochronous OUT" in log, log
        for port in usbip_port(laptop):
            laptop.check(f"usbip detach -p {port}")
        assert usbd_alive(laptop)
    finally:
        laptop.qmp("device_del", id="snd")


# ---- the product path: hv-usbd -> vsock -> hv-usb-agent -> the guest's vhci-hcd ----

VMM = "/usr/local/bin/hv-vmm"
CID = 23
W = "/tmp/usbvm"

# The guest's /test.sh (busybox sh), appended to the desktop test guest's
# initramfs with a static hv-usb-agent. It follows the stick through the
# phases the host drives, printing "hv-guest: WHAT VALUE" lines, every wait
# bounded: attach by hand (read known.bin, write new.bin), detach, attach by
# rule, unplug while reading, plugged in again; then it waits for the slow
# agent (tests/usb/slow_agent.c) to be done with its one connection.
GUEST_SH = r"""
say() { echo "hv-guest: $*"; }
vdisk() {
    for d in /sys/block/sd*; do
        [ -e "$d" ] || continue
        case "$(readlink -f "$d")" in *vhci_hcd*) basename "$d"; return 0 ;; esac
    done
    return 1
}
# until COND SECONDS: polls COND every half second
until_() { i=0; while [ $i -lt $(($2 * 2)) ]; do eval "$1" && return 0; sleep 0.5; i=$((i + 1)); done; return 1; }
[ -d /sys/devices/platform/vhci_hcd.0 ] || { say "fail no vhci_hcd"; exit 1; }
/hv-usb-agent > /tmp/agent.log 2>&1 &
agent=$!
/slow-agent 5311 3 > /tmp/slow.log 2>&1 &
slow=$!
mkdir -p /mnt
sleep 0.5
say "agent up"

# 1. attached by hand: read the known file, write a new one
until_ vdisk 300 || { say "fail no disk"; cat /tmp/agent.log; exit 1; }
sd=$(vdisk); say "disk $sd"
until_ "mount -t ext4 /dev/$sd /mnt 2>/dev/null" 30 || { say "fail mount"; exit 1; }
say "known $(sha256sum /mnt/known.bin | cut -d' ' -f1)"
dd if=/dev/urandom of=/mnt/new.bin bs=64k count=32 2>/dev/null
say "new $(sha256sum /mnt/new.bin | cut -d' ' -f1)"
umount /mnt && say "unmounted"
until_ "! vdisk >/dev/null" 300 || { say "fail still attached"; exit 1; }
say "detached"

# 2. attached by a rule on plug-in; unplugged while we read
until_ vdisk 300 || { say "fail no disk by rule"; exit 1; }
sd=$(vdisk); say "rule disk $sd"
( while :; do
      dd if=/dev/$sd of=/dev/null bs=64k iflag=direct 2>/tmp/dd.err || break
  done
  echo "failed: $(tail -n 1 /tmp/dd.err)" > /tmp/reader.rc ) &
sleep 1
say "reading"
until_ "! vdisk >/dev/null" 300 || { say "fail no disconnect"; exit 1; }
until_ "[ -s /tmp/reader.rc ]" 60 && say "reader $(cat /tmp/reader.rc)"
dmesg | grep -iE "usb [0-9-]+: USB disconnect|vhci" | tail -n 3 | sed 's/^/hv-guest: dmesg /'
say "disconnect seen"

# 3. plugged in again: attached again by the rule
until_ vdisk 300 || { say "fail not attached again"; exit 1; }
sd=$(vdisk); say "again disk $sd"
until_ "mount -t ext4 -o ro /dev/$sd /mnt 2>/dev/null" 30 || { say "fail mount again"; exit 1; }
say "known2 $(sha256sum /mnt/known.bin | cut -d' ' -f1)"
umount /mnt
kill -0 $agent && say "agent alive"
cat /tmp/agent.log

# 4. the host attaches to the slow agent, which answers a byte every 3 s
until_ "! kill -0 $slow 2>/dev/null" 300
say "slow agent $(cat /tmp/slow.log)"
"""


HVD, HVCTL = "/usr/local/sbin/hvd", "/usr/local/bin/hvctl"


class Guest:
    """VM 'g' run by hvd (the desktop test guest, vsock CID 23); USB through hvctl."""

    def __init__(self, laptop, initrd):
        self.lt, self.initrd = laptop, initrd

    def boot(self, laptop):
        """Starts hvd and the VM (again, on a revived laptop: Laptop.prepare)."""
        initrd = self.initrd
        laptop.check(f"mkdir -p /run/hv && setsid {HVD} --vsock-port -1 --usbd-socket {CTL} "
                     f"</dev/null >>/tmp/hvd.log 2>&1 &")
        wait_for(lambda: hvctl(laptop, "list")[0] == 0, 20, "hvd to answer")
        conf = (f"[vm]\nname=g\nmemory=512M\ncpus=2\nkernel={laptop.desktop_kernel}\n"
                f"initrd={initrd}\ncmdline=console=ttyS0 panic=-1\nvsock={CID}\n")
        laptop.put(conf.encode(), f"{W}/g.conf")
        hvctl_ok(laptop, "define", f"{W}/g.conf", "--replace")
        hvctl_ok(laptop, "start", "g")

    def console(self):
        rc, out, _ = hvctl(self.lt, "console", "g", "--bytes", "262144")
        return out["data"] if rc == 0 and isinstance(out, dict) else ""

    def running(self):
        rc, out, _ = hvctl(self.lt, "info", "g")
        return rc == 0 and out["state"] == "running"

    def line(self, prefix):
        """The value after the last 'hv-guest: PREFIX ' on the console, or None."""
        val = None
        # Complete lines only: the last one may still be being written.
        for line in self.console().replace("\r", "").split("\n")[:-1]:
            line = line.strip()
            if line.startswith(f"hv-guest: {prefix} ") or line == f"hv-guest: {prefix}":
                val = line[len(f"hv-guest: {prefix}"):].strip()
        return val

    def wait(self, prefix, timeout=240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.line(prefix)
            if v is not None:
                return v
            if self.line("fail") is not None or not self.running():
                break
            time.sleep(1)
        raise AssertionError(f"no 'hv-guest: {prefix}' on the guest's console:\n"
                             f"{self.console()[-4000:]}\n--- hvd ---\n"
                             f"{self.lt.run('tail -20 /tmp/hvd.log').stdout}")

    def kill(self):
        hvctl(self.lt, "destroy", "g")
        self.lt.run("pkill -x hvd")


@pytest.fixture(scope="module")
def guest(laptop, usb, tmp_path_factory):
    """The desktop test guest (vhci-hcd, usb-storage) with vsock CID 23 and hv-usb-agent,
    run by hvd."""
    if laptop.run(f"test -x {VMM} && test -x {HVD}").rc != 0:
        pytest.skip("hv-vmm or hvd is not installed in the laptop")
    if laptop.run(f"test -e {laptop.desktop_kernel}").rc != 0:
        pytest.skip("no desktop test guest in the laptop (its kernel has vhci-hcd)")
    laptop.check("modprobe kvm_amd")
    if not laptop.run("[ -e /dev/vhost-vsock ] || modprobe vhost_vsock").ok:
        pytest.skip("the laptop kernel has no vhost-vsock")
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler for a static hv-usb-agent")
    agent = tmp_path_factory.mktemp("agent") / "hv-usb-agent"
    slow = agent.parent / "slow-agent"
    src = Path(__file__).resolve().parents[2] / "usb" / "agent" / "hv-usb-agent.c"
    for out, c in ((agent, src), (slow, Path(__file__).with_name("slow_agent.c"))):
        subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                        "-Werror", "-o", str(out), str(c)], check=True)
    cpio = newc({"test.sh": (0o100755, GUEST_SH.encode()),
                 "hv-usb-agent": (0o100755, agent.read_bytes()),
                 "slow-agent": (0o100755, slow.read_bytes())})
    g = Guest(laptop, f"{W}/usb.initrd")

    def setup(lt):
        lt.check("modprobe kvm_amd && { [ -e /dev/vhost-vsock ] || modprobe vhost_vsock; }")
        lt.check(f"rm -rf {W}; mkdir -p {W}")
        lt.put(cpio, f"{W}/usb.cpio")
        lt.check(f"cat {lt.desktop_initrd} {W}/usb.cpio > {W}/usb.initrd")
        g.boot(lt)
        g.wait("agent up", timeout=300)
    try:
        laptop.prepare(setup)
        yield g
    finally:
        if not laptop.crashed():
            print(g.console()[-6000:])
            g.kill()


def attach_vsock(laptop, busid):
    """hvctl usb attach; the agent may need a moment to listen after it says it is up."""
    for _ in range(10):
        rc, out, err = hvctl(laptop, "usb", "attach", busid, "g")
        if rc == 0 or "connect" not in str(out):
            return rc, out, err
        time.sleep(1)
    return rc, out, err


def usb_owner(laptop, busid):
    devs = hvctl_ok(laptop, "usb", "list")["devices"]
    return next((d["owner"] for d in devs if d["busid"] == busid), "gone")


def test_vsock_guest(laptop, usb, guest):
    """Attached to a running guest over vsock: it reads the known file, writes one;
    after detach the laptop reads the new file back from the stick."""
    ctl(laptop, {"cmd": "rules", "set": []})
    if find_busid(laptop):
        laptop.usb_del("stick")
        wait_for(lambda: not find_busid(laptop), 30, "the old stick to go")
    busid = plug(laptop, usb)
    rc, out, err = attach_vsock(laptop, busid)
    assert rc == 0, f"{out} {err}\n{usbd_log(laptop)}"
    assert usb_owner(laptop, busid) == "g"
    # One VM at most: a second attach is refused with the reason.
    rc, out, err = hvctl(laptop, "usb", "attach", busid, "g")
    assert rc == 1 and "already attached" in str(out), (out, err)
    assert guest.wait("known", 300) == KNOWN_SHA
    new_sha = guest.wait("new", 120)
    guest.wait("unmounted", 60)
    hvctl_ok(laptop, "usb", "detach", busid)
    guest.wait("detached", 120)
    wait_for(lambda: usb_owner(laptop, busid) is None, 30, "hv-usbd to free the stick")
    # Back on the laptop's own usb-storage: the new file is on the stick.
    sd = wait_for(lambda: sd_disk(laptop, False), 60, "the stick back on usb-storage")
    laptop.check(f"mkdir -p /mnt/u && mount /dev/{sd} /mnt/u", timeout=60)
    out = laptop.check("sha256sum /mnt/u/new.bin", timeout=60).stdout
    laptop.run("umount /mnt/u")
    assert out.split()[0] == new_sha
    assert usbd_alive(laptop)


def test_vsock_rule_and_surprise_removal(laptop, usb, guest):
    """A rule gives the stick to the guest on plug-in; unplugged while the guest reads,
    the guest sees the disconnect and keeps running, so does hv-usbd; plugged in
    again, the rule attaches it again."""
    if guest.line("detached") is None:
        pytest.skip("the guest did not get through test_vsock_guest")
    hvctl_ok(laptop, "usb", "rules", "add", "g", "--id", STICK_ID)
    assert ctl(laptop, {"cmd": "rules"})["rules"][0]["cid"] == CID  # hvd filled in the CID
    laptop.usb_del("stick")
    wait_for(lambda: not find_busid(laptop), 30, "the stick to go")
    plug(laptop, usb)
    guest.wait("rule disk", 300)
    guest.wait("reading", 60)
    laptop.usb_del("stick")
    guest.wait("disconnect seen", 300)
    assert guest.running(), guest.console()[-3000:]
    assert usbd_alive(laptop), usbd_log(laptop)
    assert "left" in usbd_log(laptop)
    assert (guest.line("reader") or "").startswith("failed"), guest.console()[-3000:]
    con = guest.console()
    assert "USB disconnect" in con or "disconnect" in (guest.line("dmesg") or ""), con[-3000:]
    # Plugged in again: the rule attaches it again and the guest reads it.
    plug(laptop, usb)
    assert guest.wait("known2", 300) == KNOWN_SHA
    guest.wait("agent alive", 60)
    hvctl_ok(laptop, "usb", "rules", "clear")
    hvctl_ok(laptop, "usb", "detach", find_busid(laptop))
    laptop.usb_del("stick")
    assert usbd_alive(laptop)


SLOW_PORT = 5311  # the slow agent's, in GUEST_SH


def test_vsock_slow_agent(laptop, usb, guest):
    """A guest agent that answers its attach one byte every 3 s: hv-usbd (one thread
    for every VM) keeps answering others at once meanwhile, drops the agent at the
    10 s deadline of the whole handshake, and the stick stays free."""
    if guest.line("agent alive") is None:
        pytest.skip("the guest did not get through test_vsock_rule_and_surprise_removal")
    busid = find_busid(laptop) or plug(laptop, usb)
    req = json.dumps({"cmd": "attach", "busid": busid, "vm": "g", "cid": CID,
                      "port": SLOW_PORT})
    laptop.check(f"rm -f /tmp/slow-attach.out; (echo '{req}' | socat -t 40 - "
                 f"UNIX-CONNECT:{CTL} >/tmp/slow-attach.out 2>&1; "
                 "echo done >>/tmp/slow-attach.out) >/dev/null 2>&1 &")
    # Another client's requests, timed, over more than the 10 s of the handshake.
    timed = ("for i in $(seq 1 24); do s=$(date +%s%N); "
             f"echo '{{\"cmd\":\"list\"}}' | socat -t 30 - UNIX-CONNECT:{CTL} "
             "| grep -q '\"ok\":true' || echo bad; "
             "echo $(( ($(date +%s%N) - s) / 1000000 )); sleep 0.5; done")
    out = laptop.check(timed, timeout=180).stdout.split()
    assert "bad" not in out, out
    ms = [int(x) for x in out]
    print(f"list answered in {ms} ms while the slow agent answered")
    assert max(ms) < 1500, ms
    wait_for(lambda: "done" in laptop.run("cat /tmp/slow-attach.out").stdout, 30,
             "the answer to the slow attach")
    res = laptop.run("cat /tmp/slow-attach.out").stdout
    assert "did not answer in time" in res, res
    log = usbd_log(laptop)
    drop = f"dropping the USB agent of VM g (vsock cid {CID}): no whole answer within 10 s"
    assert drop in log, log[-3000:]
    assert usb_owner(laptop, busid) is None
    assert (guest.wait("slow agent", 60) or "").endswith("peer closed"), guest.console()[-2000:]
    # The stick is free again: offered on TCP and taken back.
    assert ctl(laptop, {"cmd": "attach", "busid": busid, "tcp": True})["ok"]
    assert ctl(laptop, {"cmd": "detach", "busid": busid})["ok"]
    laptop.usb_del("stick")
    assert usbd_alive(laptop)
