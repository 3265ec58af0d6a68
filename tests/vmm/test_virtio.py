# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-vmm's virtio devices with a real Linux guest, in the virtual laptop.

What a user gets: the guest's /dev/vda has the image's size and its bytes land
in the image file (raw and qcow2 overlay, also after poweroff), a read-only
disk refuses writes; TCP flows both ways through a TAP (vhost-net and the
userspace path); vsock echoes both ways through vhost-vsock; the guest's
hvc0 reaches a socket and a file; the guest uses virtio-rng and binds
virtio-balloon; a hostile driver poking a virtio-blk BAR from guest
userspace breaks only that device, which reports NEEDS_RESET and recovers
after a reset, while the other disk keeps working; bad disk images are
refused with a sentence.

The guest side is a /test.sh (and static helper programs from
tests/guest/progs/, built here with gcc -static) in a cpio appended to the
test guest's initramfs.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_virtio.py -v
"""

import hashlib
import os
import re
import shlex
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

import test_boot
from test_boot import GUEST, VMM
from vlaptop import newc

pytestmark = pytest.mark.vlaptop

PROGS = Path(__file__).resolve().parents[1] / "guest" / "progs"
W = "/tmp/vt"                 # work folder in the laptop
TAP, HOST_IP, GUEST_IP = "hvtap0", "10.77.0.1", "10.77.0.2"
CID = 42


class Run(test_boot.Run):
    def line(self, prefix):
        """As test_boot's, without a kernel message that landed on the same line."""
        v = super().line(prefix)
        return re.sub(r"\s*\[\s*\d+\.\d+\] .*$", "", v) if v is not None else None


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def vt(laptop, tmp_path_factory):
    """The laptop with KVM, vhost modules, a TAP and the guest programs."""
    if laptop.run(f"test -x {VMM}").rc != 0:
        pytest.fail(f"hv-vmm is not installed in the laptop ({VMM})")
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler to build the guest's test programs")
    out = tmp_path_factory.mktemp("progs")
    progs = {}
    for src in sorted(PROGS.glob("*.c")):
        exe = out / src.stem
        subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                        "-Werror", "-I", str(PROGS.parent / "include"), "-o", str(exe), str(src)],
                       check=True)
        progs[src.stem] = exe.read_bytes()

    def setup(lt):
        lt.check("modprobe kvm_amd")
        lt.run("modprobe vhost_net; modprobe vhost_vsock")
        lt.check(f"rm -rf {W}; mkdir -p {W}")
        lt.check(f"ip link show {TAP} >/dev/null 2>&1 || ip tuntap add dev {TAP} mode tap; "
                 f"ip addr flush dev {TAP}; ip addr add {HOST_IP}/24 dev {TAP}; "
                 f"ip link set {TAP} up")
    laptop.prepare(setup)
    laptop.progs = progs
    return laptop


def initrd(lt, name, script, progs=(), data=None):
    """The test guest's initrd plus /test.sh = script, the named programs and data files."""
    files = {"test.sh": (0o100755, script.encode())}
    for p in progs:
        files[p] = (0o100755, lt.progs[p])
    for fname, content in (data or {}).items():
        files[fname] = (0o100644, content)
    lt.put(newc(files), f"{W}/{name}.cpio")
    lt.check(f"cat {GUEST}/initrd.img {W}/{name}.cpio > {W}/{name}.initrd")
    return f"{W}/{name}.initrd"


def vm_args(rd, extra, memory="256M"):
    return f"--kernel {GUEST}/vmlinuz --initrd {rd} --memory {memory} {extra}"


def boot(lt, args, name, timeout=200, env=""):
    """Runs hv-vmm in the foreground to its end; returns a Run."""
    con, err = f"{W}/{name}.console", f"{W}/{name}.err"
    t0 = time.monotonic()
    res = lt.run(f"{env} timeout -s KILL {timeout} {VMM} {args} --console file:{con} "
                 f"</dev/null 2>{err}; echo rc=$?", timeout=timeout + 30)
    rc = int(res.stdout.strip().rsplit("rc=", 1)[-1])
    return Run(rc, lt.run(f"cat {con}").stdout, lt.run(f"cat {err}").stdout,
               time.monotonic() - t0)


class Background:
    """hv-vmm in the background; .finish() waits for its end and returns a Run."""

    def __init__(self, lt, args, name, env=""):
        self.lt, self.name, self.t0 = lt, name, time.monotonic()
        self.con, self.err, self.rcf = (f"{W}/{name}.console", f"{W}/{name}.err",
                                        f"{W}/{name}.rc")
        lt.check(f"rm -f {self.con} {self.rcf}; setsid sh -c "
                 + shlex.quote(f"{env} {VMM} {args} --console file:{self.con} </dev/null "
                               f"2>{self.err}; echo $? > {self.rcf}")
                 + f" >/dev/null 2>&1 & echo $! > {W}/{name}.pid")

    def wait(self, text, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.lt.run(f"grep -qF {shlex.quote(text)} {self.con}").rc == 0:
                return
            if self.lt.run(f"test -e {self.rcf}").rc == 0:
                break
            time.sleep(1)
        pytest.fail(f"{text!r} not on the console of {self.name}:\n{self.run_now()}")

    def run_now(self):
        rc = self.lt.run(f"cat {self.rcf} 2>/dev/null").stdout.strip()
        return Run(int(rc) if rc.isdigit() else None, self.lt.run(f"cat {self.con}").stdout,
                   self.lt.run(f"cat {self.err}").stdout, time.monotonic() - self.t0)

    def finish(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline and self.lt.run(f"test -e {self.rcf}").rc != 0:
            time.sleep(1)
        if self.lt.run(f"test -e {self.rcf}").rc != 0:
            self.kill()
            pytest.fail(f"hv-vmm {self.name} still runs after {timeout} s:\n{self.run_now()}")
        return self.run_now()

    def kill(self):
        self.lt.run(f"pkill -9 -s $(cat {W}/{self.name}.pid) 2>/dev/null")


def retry(cmd, tries=20):
    """A shell loop running cmd until it succeeds (at most tries times), failing if it never does."""
    return (f"ok=0; for i in $(seq {tries}); do {cmd} && {{ ok=1; break; }}; sleep 1; done; "
            f"test $ok = 1")


def host_sha(lt, path, skip_mib=0, count_mib=None):
    """sha256 of a byte range of a file in the laptop (the host side of hv-vmm)."""
    count = f"count={count_mib}" if count_mib is not None else ""
    return lt.check(f"dd if={path} bs=1M skip={skip_mib} {count} 2>/dev/null | sha256sum"
                    ).stdout.split()[0]


# ---- virtio-blk ----

DISK_MIB = 64
LAST_SECTOR = DISK_MIB * 2048 - 1

BLK_SH = f"""\
echo "hv-guest: size $(blockdev --getsize64 /dev/vda)"
echo "hv-guest: serial $(cat /sys/block/vda/serial 2>/dev/null)"
echo "hv-guest: getro $(blockdev --getro /dev/vda) $(blockdev --getro /dev/vdb)"
dd if=/dev/urandom of=/tmp/p bs=1M count=4 2>/dev/null
echo "hv-guest: wrote $(sha256sum < /tmp/p | cut -d' ' -f1)"
dd if=/tmp/p of=/dev/vda bs=1M seek=1 conv=fsync 2>/dev/null || echo "hv-guest: write failed"
echo 3 > /proc/sys/vm/drop_caches
echo "hv-guest: readback $(dd if=/dev/vda bs=1M skip=1 count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
# The host writes 'hv-go' into the last sector of the image while we run.
i=0
while [ $i -lt 240 ]; do
    if [ "$(dd if=/dev/vda bs=512 skip={LAST_SECTOR} count=1 iflag=direct 2>/dev/null | head -c 5)" = hv-go ]; then
        echo "hv-guest: go seen"; break
    fi
    sleep 0.5; i=$((i + 1))
done
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/tmp/err; then
    echo "hv-guest: ro write succeeded"
else
    echo "hv-guest: ro write refused: $(tr '\\n' ' ' < /tmp/err)"
fi
echo "hv-guest: ro-read $(dd if=/dev/vdb bs=1M 2>/dev/null | sha256sum | cut -d' ' -f1)"
# Written without fsync: only the sync before poweroff pushes it out.
dd if=/dev/urandom of=/tmp/q bs=64k count=16 2>/dev/null
echo "hv-guest: late $(sha256sum < /tmp/q | cut -d' ' -f1)"
dd if=/tmp/q of=/dev/vda bs=1M seek=10 2>/dev/null
"""


def test_blk_raw_bytes_reach_the_image_and_ro_disk_refuses(vt):
    rw, ro = f"{W}/rw-disk.img", f"{W}/ro-disk.img"
    vt.check(f"truncate -s {DISK_MIB}M {rw}; head -c 3M /dev/urandom > {ro}")
    ro_before = host_sha(vt, ro)
    rd = initrd(vt, "blk", BLK_SH)
    vm = Background(vt, vm_args(rd, f"--disk {rw} --disk {ro},ro"), "blk")
    try:
        vm.wait("hv-guest: readback")
        now = vm.run_now()
        # While the guest runs: what it wrote with fsync is in the file.
        assert now.line("readback") == now.line("wrote"), now
        assert host_sha(vt, rw, 1, 4) == now.line("wrote"), now
        vt.check(f"printf hv-go | dd of={rw} bs=512 seek={LAST_SECTOR} conv=notrunc 2>/dev/null")
        run = vm.finish()
    finally:
        vm.kill()
    assert run.rc == 0, run
    assert run.line("size") == str(DISK_MIB << 20), run
    assert run.line("serial") == "rw-disk.img", run      # GET_ID: the file name
    assert run.line("getro") == "0 1", run
    assert "hv-guest: go seen" in run.console, run       # host writes reach the guest
    assert "hv-guest: ro write refused" in run.console, run
    assert run.line("ro-read") == ro_before, run         # the guest reads the ro disk right
    assert host_sha(vt, ro) == ro_before                 # ... and it is unchanged
    # After sync + poweroff: both writes are in the image.
    assert host_sha(vt, rw, 1, 4) == run.line("wrote"), run
    assert host_sha(vt, rw, 10, 1) == run.line("late"), run


QCOW_SH = """\
echo "hv-guest: size $(blockdev --getsize64 /dev/vda)"
echo "hv-guest: golden-read $(dd if=/dev/vda bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
dd if=/dev/urandom of=/tmp/p bs=1M count=2 2>/dev/null
echo "hv-guest: wrote $(sha256sum < /tmp/p | cut -d' ' -f1)"
dd if=/tmp/p of=/dev/vda bs=1M seek=8 conv=fsync 2>/dev/null || echo "hv-guest: write failed"
# a partial overwrite of a cluster that lives in the golden image
dd if=/dev/urandom of=/dev/vda bs=4k seek=130 count=3 conv=fsync 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
echo "hv-guest: first-mib $(dd if=/dev/vda bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "hv-guest: readback $(dd if=/dev/vda bs=1M skip=8 count=2 2>/dev/null | sha256sum | cut -d' ' -f1)"
sync
"""


def test_blk_qcow2_overlay_on_a_golden_image(vt):
    golden, ov, raw = f"{W}/golden.qcow2", f"{W}/overlay.qcow2", f"{W}/overlay.raw"
    vt.check(f"rm -f {golden} {ov} {raw}; qemu-img create -q -f qcow2 {golden} {DISK_MIB}M && "
             f"qemu-io -f qcow2 -c 'write -P 0xab 0 1M' {golden} >/dev/null && "
             f"qemu-img create -q -f qcow2 -b {golden} -F qcow2 {ov}")
    golden_sha = host_sha(vt, golden)
    pattern = sha(b"\xab" * (1 << 20))
    rd = initrd(vt, "qcow", QCOW_SH)
    run = boot(vt, vm_args(rd, f"--disk {ov}"), "qcow")
    assert run.rc == 0, run
    assert "qcow2" in run.stderr, run
    assert run.line("size") == str(DISK_MIB << 20), run
    assert run.line("golden-read") == pattern, run       # reads fall through to the golden
    assert run.line("readback") == run.line("wrote"), run
    assert host_sha(vt, golden) == golden_sha            # writes never reach the golden
    vt.check(f"qemu-img check -q {ov}")
    vt.check(f"qemu-img convert -O raw {ov} {raw}")
    assert host_sha(vt, raw, 8, 2) == run.line("wrote"), run
    assert host_sha(vt, raw, 0, 1) == run.line("first-mib"), run
    assert run.line("first-mib") != pattern, run
    vt.run(f"rm -f {raw}")


def test_blk_vhd_written_by_the_guest_reads_the_same_in_qemu(vt):
    """A dynamic VHD made and filled by qemu-img: the guest reads qemu's bytes,
    writes new blocks and part of one qemu allocated; qemu then reads the
    guest's bytes back out of the VHD."""
    vhd, raw = f"{W}/disk.vhd", f"{W}/vhd.raw"
    vt.check(f"rm -f {vhd} {raw}; qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "
             f"{vhd} {DISK_MIB}M && qemu-io -f vpc -c 'write -P 0xab 0 1M' {vhd} >/dev/null")
    pattern = sha(b"\xab" * (1 << 20))
    rd = initrd(vt, "vhd", QCOW_SH)
    run = boot(vt, vm_args(rd, f"--disk {vhd},format=vhd"), "vhd")
    assert run.rc == 0, run
    assert run.line("size") == str(DISK_MIB << 20), run
    assert run.line("golden-read") == pattern, run       # qemu's block, read by the guest
    assert run.line("readback") == run.line("wrote"), run
    vt.check(f"qemu-img convert -f vpc -O raw {vhd} {raw}")
    assert host_sha(vt, raw, 8, 2) == run.line("wrote"), run
    assert host_sha(vt, raw, 0, 1) == run.line("first-mib"), run
    assert run.line("first-mib") != pattern, run         # the guest's 12 KiB inside qemu's block
    vt.run(f"rm -f {raw} {vhd}")


# ---- a guest that makes its raw disk look like a qcow2 image ----

def qcow2_v2_with_backing(backing, size=DISK_MIB << 20):
    """A 512-byte qcow2 v2 header naming a backing file: what a hostile guest writes."""
    name = backing.encode()
    hdr = struct.pack(">4sIQIIQIIQQIIQ", b"QFI\xfb", 2, 72, len(name), 16, size, 0, 1,
                      0x30000, 0x10000, 1, 0, 0)
    return (hdr + name).ljust(512, b"\0")


EVIL_SH = """\
if dd if=/evil.sector of=/dev/vda bs=512 count=1 conv=notrunc,fsync 2>/tmp/err; then
    echo "hv-guest: evil write done"
else
    echo "hv-guest: evil write refused: $(tr '\\n' ' ' < /tmp/err)"
fi
echo 3 > /proc/sys/vm/drop_caches
echo "hv-guest: sector0 $(dd if=/dev/vda bs=512 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
"""


def test_blk_guest_written_qcow2_header_never_opens_a_host_file(vt):
    """Issue 12, defect 1: a guest writes a qcow2 header naming a host file into sector 0.

    Probed (no format given): the write is refused. With format=raw (what hvd
    passes): the write lands, and the next start still serves the disk as raw:
    the guest reads its own sector back, never the host file. A later probe
    would see qcow2, but the backing file is outside the image's directory and
    is refused.
    """
    img = f"{W}/evil-raw.img"
    evil = qcow2_v2_with_backing("/etc/hostname")
    vt.check(f"rm -f {img}; truncate -s {DISK_MIB}M {img}")
    rd = initrd(vt, "evil", EVIL_SH, data={"evil.sector": evil})

    probed = boot(vt, vm_args(rd, f"--disk {img}"), "evil-probed")
    assert probed.rc == 0, probed
    assert "no format given, probed as raw" in probed.stderr, probed
    assert "hv-guest: evil write refused" in probed.console, probed
    assert "refused the guest's write of a qcow2 header" in probed.stderr, probed
    assert vt.check(f"head -c 4 {img} | od -An -tx1").stdout.split() == ["00"] * 4

    written = boot(vt, vm_args(rd, f"--disk {img},format=raw"), "evil-raw")
    assert written.rc == 0, written
    assert "hv-guest: evil write done" in written.console, written
    assert written.line("sector0") == sha(evil), written
    assert host_sha(vt, img, 0, 1) == sha(evil + bytes((1 << 20) - 512))

    again = boot(vt, vm_args(rd, f"--disk {img},ro,format=raw"), "evil-again")
    assert again.rc == 0, again
    assert "(raw)" in again.stderr and "probed" not in again.stderr, again
    assert again.line("sector0") == sha(evil), again   # its own bytes, not /etc/hostname

    res = vt.run(f"{VMM} --kernel {GUEST}/vmlinuz --memory 128M --console none --disk {img},ro "
                 f"</dev/null", timeout=60)
    assert res.rc == 1, (res.rc, res.stderr)
    assert "/etc/hostname" in res.stderr and "outside the directories" in res.stderr, res.stderr


# ---- virtio-net ----

NET_SH = f"""\
ip link set eth0 up && ip addr add {GUEST_IP}/24 dev eth0
echo "hv-guest: mac $(cat /sys/class/net/eth0/address)"
dd if=/dev/urandom of=/tmp/up bs=64k count=64 2>/dev/null
echo "hv-guest: up $(sha256sum < /tmp/up | cut -d' ' -f1)"
timeout 120 nc -l -p 5001 > /tmp/down & down=$!
timeout 120 nc -l -p 5002 < /tmp/up & up=$!
echo "hv-guest: net ready"
wait $up; echo "hv-guest: up-rc $?"
wait $down; echo "hv-guest: down-rc $?"
echo "hv-guest: down $(sha256sum < /tmp/down | cut -d' ' -f1) $(wc -c < /tmp/down)"
"""


@pytest.mark.parametrize("path", ["vhost", "userspace"])
def test_net_tcp_both_ways(vt, path):
    env = ""
    if path == "vhost":
        if vt.run("test -c /dev/vhost-net").rc != 0:
            pytest.skip("no /dev/vhost-net in the laptop")
    else:
        env = "HV_VMM_NET_USERSPACE=1"
    down = f"{W}/down.bin"
    vt.check(f"head -c 3M /dev/urandom > {down}")
    down_sha = host_sha(vt, down)
    rd = initrd(vt, "net", NET_SH)
    vm = Background(vt, vm_args(rd, f"--net tap={TAP}"), f"net-{path}", env=env)
    try:
        vm.wait("hv-guest: net ready")
        # Guest -> laptop, then laptop -> guest (retried while ARP settles).
        vt.check(retry(f"timeout 60 socat -u TCP:{GUEST_IP}:5002,connect-timeout=2 "
                       f"CREATE:{W}/up.bin"), timeout=200)
        vt.check(retry(f"timeout 60 socat -u FILE:{down} TCP:{GUEST_IP}:5001,connect-timeout=2"),
                 timeout=200)
        run = vm.finish()
    finally:
        vm.kill()
    assert run.rc == 0, run
    want = "vhost-net" if path == "vhost" else "userspace"
    assert f"virtio-net: TAP {TAP}" in run.stderr and want in run.stderr, run
    assert run.line("mac").startswith("02:68:76:"), run
    assert host_sha(vt, f"{W}/up.bin") == run.line("up"), run
    assert run.line("down") == f"{down_sha} {3 << 20}", run
    assert "needs a reset" not in run.stderr, run


# ---- virtio-vsock ----

VSOCK_SH = """\
/vsock_echo serve 1234 > /tmp/serve.log 2>&1 & srv=$!
sleep 0.5
echo "hv-guest: vsock listening"
wait $srv; echo "hv-guest: serve $(tr '\\n' ' ' < /tmp/serve.log)"
echo "hv-guest: send $(/vsock_echo send 2 5000 1048576 2>&1)"
"""


def test_vsock_echo_both_ways(vt):
    if vt.run("test -c /dev/vhost-vsock").rc != 0:
        pytest.skip("no /dev/vhost-vsock in the laptop (modprobe vhost_vsock)")
    vt.check(f"head -c 1M /dev/urandom > {W}/vs.in; rm -f {W}/vs.out")
    # The laptop's echo server for the guest's client.
    vt.check(f"setsid socat VSOCK-LISTEN:5000,reuseaddr EXEC:cat >/dev/null 2>&1 "
             f"& echo $! > {W}/vs-echo.pid")
    rd = initrd(vt, "vsock", VSOCK_SH, progs=["vsock_echo"])
    vm = Background(vt, vm_args(rd, f"--vsock {CID}"), "vsock")
    try:
        vm.wait("hv-guest: vsock listening")
        vt.check(retry(f"timeout 60 socat -t 30 - VSOCK-CONNECT:{CID}:1234 < {W}/vs.in "
                       f"> {W}/vs.out", tries=10), timeout=200)
        run = vm.finish()
    finally:
        vm.kill()
        vt.run(f"kill $(cat {W}/vs-echo.pid) 2>/dev/null")
    assert run.rc == 0, run
    assert host_sha(vt, f"{W}/vs.out") == host_sha(vt, f"{W}/vs.in"), run   # laptop -> guest -> laptop
    assert "echoed 1048576" in run.line("serve"), run
    assert run.line("send") == "vsock_echo: ok 1048576", run               # guest -> laptop -> guest


# ---- virtio-console, virtio-rng, virtio-balloon ----

CONSOLE_SH = """\
exec 3<>/dev/hvc0
stty raw -echo <&3
got=""
i=0
while [ $i -lt 120 ]; do
    echo "hvc ready $i" >&3
    if read -t 1 got <&3; then break; fi
    i=$((i + 1))
done
echo "hv-guest: hvc got $got"
dd if=/dev/urandom of=/tmp/blob bs=1k count=16 2>/dev/null
echo "hv-guest: blob $(sha256sum < /tmp/blob | cut -d' ' -f1)"
printf 'BEGIN\\n' >&3
cat /tmp/blob >&3
printf 'END\\n' >&3
sleep 1
"""


def test_virtio_console_socket_both_ways(vt):
    sock, out, fifo = f"{W}/hvc.sock", f"{W}/hvc.out", f"{W}/hvc.fifo"
    rd = initrd(vt, "hvc", CONSOLE_SH)
    vm = Background(vt, vm_args(rd, f"--virtio-console socket:{sock}"), "hvc")
    try:
        # One client (a new one would replace it): socket -> out, fifo -> socket.
        vt.check(f"for i in $(seq 100); do test -S {sock} && break; sleep 0.2; done; "
                 f"rm -f {fifo} {out}; mkfifo {fifo}; "
                 f"setsid sh -c 'exec sleep 300 > {fifo}' >/dev/null 2>&1 & echo $! > {W}/hvc-hold.pid; "
                 f"setsid socat UNIX-CONNECT:{sock} SYSTEM:'cat {fifo} & exec cat > {out}' "
                 f">/dev/null 2>&1 & echo $! > {W}/hvc-socat.pid")
        deadline = time.time() + 150
        while time.time() < deadline and vt.run(f"grep -q 'hvc ready' {out}").rc != 0:
            time.sleep(1)
        vt.check(f"echo ping > {fifo}")
        run = vm.finish()
    finally:
        vm.kill()
        vt.run(f"kill $(cat {W}/hvc-hold.pid) $(cat {W}/hvc-socat.pid) 2>/dev/null")
    assert run.rc == 0, run
    data = vt.get(out)
    assert b"hvc ready" in data, data[:200]
    assert run.line("hvc got") == "ping", run
    begin = data.index(b"BEGIN\n") + 6
    end = data.rindex(b"END\n")
    assert sha(data[begin:end]) == run.line("blob"), (len(data[begin:end]), run)


DEVICES_SH = """\
echo "hv-guest: rng $(cat /sys/class/misc/hw_random/rng_current)"
echo "hv-guest: hwrng $(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)"
echo "hv-guest: hwrng-distinct $(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | od -An -tx1 | tr ' ' '\\n' | sort -u | grep -c .)"
for d in /sys/bus/virtio/devices/*; do
    echo "hv-guest: dev $(cat $d/device) $(basename $(readlink $d/driver))"
done
echo "hv-guest: hvc $(ls /sys/class/tty | grep hvc | tr '\\n' ' ')"
echo "hello from hvc0" > /dev/hvc0
"""


def test_rng_balloon_and_console_file(vt):
    out = f"{W}/hvc-file.out"
    rd = initrd(vt, "devices", DEVICES_SH)
    run = boot(vt, vm_args(rd, f"--virtio-console file:{out}"), "devices")
    assert run.rc == 0, run
    assert run.line("rng").startswith("virtio_rng"), run
    assert run.line("hwrng") == "256", run
    assert int(run.line("hwrng-distinct")) > 100, run      # 256 bytes, not a constant
    drivers = {line.split()[2]: line.split()[3] for line in run.console.splitlines()
               if line.startswith("hv-guest: dev ")}
    assert drivers.get("0x0004") == "virtio_rng", run
    assert drivers.get("0x0005") == "virtio_balloon", run
    assert drivers.get("0x0003") == "virtio_console", run
    assert "hvc0" in run.line("hvc"), run
    assert vt.get(out) == b"hello from hvc0\r\n"           # a tty: ONLCR


SLOTS_SH = """\
for d in /sys/bus/pci/devices/*; do
    blk=$(ls $d/virtio*/block 2>/dev/null)
    first=""
    [ -n "$blk" ] && first=$(head -c 8 /dev/$blk)
    echo "hv-guest: pci $(basename $d) $(cat $d/device) $first"
done
"""


def test_pci_slots_given_on_the_command_line(vt):
    """--pci-slot puts a device where it is asked and the others skip that slot,
    as the guest's own PCI scan sees it; a slot for a device the VM lacks stays
    empty, with a warning."""
    for name, word in (("slot-a", "AAAAAAAA"), ("slot-b", "BBBBBBBB")):
        vt.check(f"printf {word} > {W}/{name}.img; truncate -s 1M {W}/{name}.img")
    rd = initrd(vt, "slots", SLOTS_SH)
    disks = f"--disk {W}/slot-a.img,format=raw --disk {W}/slot-b.img,format=raw"
    run = boot(vt, vm_args(rd, f"{disks} --pci-slot virtio-blk1=12 --pci-slot virtio-rng=20 "
                               f"--pci-slot virtio-blk7=1"), "slots")
    assert run.rc == 0, run
    seen = {}
    for line in run.console.splitlines():
        if line.startswith("hv-guest: pci "):
            parts = line.split()
            seen[parts[2]] = parts[3:]
    assert seen.get("0000:00:0c.0") == ["0x1042", "BBBBBBBB"], seen   # the second disk
    assert seen.get("0000:00:14.0", [""])[0] == "0x1044", seen         # virtio-rng
    assert "0000:00:01.0" not in seen, seen                            # kept for virtio-blk7
    assert seen.get("0000:00:02.0") == ["0x1042", "AAAAAAAA"], seen   # the first free slot
    assert "--pci-slot virtio-blk7=1: this VM has no PCI device virtio-blk7; slot 1 stays " \
        "empty" in run.stderr, run.stderr


# ---- a hostile driver in the guest ----

HOSTILE_SH = """\
B=0000:00:02.0
echo "hv-guest: victim $(cat /sys/bus/pci/devices/$B/device) $(basename $(readlink /sys/bus/pci/devices/$B/driver))"
echo $B > /sys/bus/pci/devices/$B/driver/unbind
echo 1 > /sys/bus/pci/devices/$B/enable
/hostile_virtio $B good outside loop hugelen badsize earlykick
echo "hv-guest: hostile-rc $?"
echo "hv-guest: vda $(dd if=/dev/vda bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "hv-guest: rng $(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)"
"""

HOSTILE_CASES = {
    "outside": "descriptor points outside guest RAM",
    "loop": "descriptor chain loops",
    "hugelen": "outside guest RAM",
    "badsize": "not a power of two",
}


def test_hostile_driver_breaks_only_its_device(vt):
    """A guest root process drives the second disk's BAR itself: each breach
    sets NEEDS_RESET and is logged; a reset brings the device back; hv-vmm
    runs on, the first disk and virtio-rng keep working, poweroff is clean."""
    a, b = f"{W}/h-a.img", f"{W}/h-b.img"
    vt.check(f"head -c 4M /dev/urandom > {a}; truncate -s 16M {b}")
    a_sha = host_sha(vt, a)
    rd = initrd(vt, "hostile", HOSTILE_SH, progs=["hostile_virtio"])
    run = boot(vt, vm_args(rd, f"--disk {a} --disk {b}"), "hostile")
    assert run.rc == 0, run
    assert "the guest powered off" in run.stderr, run
    assert run.line("victim") == "0x1042 virtio-pci", run
    assert run.line("hostile-rc") == "0", run
    lines = {}
    for line in run.console.splitlines():
        if line.startswith("hostile: "):
            words = line.split()
            lines.setdefault(words[1], []).append(words[2:])
    def field(case, key):
        for words in lines.get(case, []):
            i = words.index(key) if key in words else -1
            if 0 <= i < len(words) - 1 and words[i + 1].isdigit():
                return int(words[i + 1])
        return None
    # The control: a well-formed request through the same code path completes.
    assert field("good", "used") == 1 and field("good", "needs_reset") == 0, run
    for case, message in HOSTILE_CASES.items():
        assert field(case, "needs_reset") == 1, (case, run)
        assert field(case, "used") == 0, (case, run)
        assert field(case, "recovered") == 1, (case, run)
    assert "virtio-blk1: queue 0: descriptor chain loops; the device needs a reset" in run.stderr
    for message in HOSTILE_CASES.values():
        assert message in run.stderr, (message, run)
    # A kick before DRIVER_OK is ignored, and served once DRIVER_OK comes.
    assert "hostile: earlykick used before DRIVER_OK 0" in run.console, run
    assert field("earlykick", "needs_reset") == 0 and field("earlykick", "used") == 1, run
    assert "virtio-blk0: queue" not in run.stderr, run
    assert run.line("vda") == a_sha, run                   # the other disk still reads
    assert run.line("rng") == "64", run


# ---- requests in flight across a reboot ----

INFLIGHT_SH = """\
B=0000:00:01.0
if [ "$(dd if=/dev/vda bs=512 skip=$((63 * 2048)) count=1 2>/dev/null | head -c 6)" = PHASE2 ]; then
    /inflight_reboot check
    echo "hv-guest: vda $(dd if=/dev/vda bs=1M count=62 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
    echo "hv-guest: virtio-errors $(dmesg | grep -ciE 'virtio.*(error|fail|bad)|blk_update_request')"
else
    printf PHASE2 | dd of=/dev/vda bs=512 seek=$((63 * 2048)) conv=sync,notrunc 2>/dev/null
    sync
    echo $B > /sys/bus/pci/devices/$B/driver/unbind
    echo 1 > /sys/bus/pci/devices/$B/enable
    /inflight_reboot post $B 80
    echo "hv-guest: post-rc $?"
fi
"""


def test_requests_in_flight_across_a_reboot(vt):
    """A user-space driver in the guest puts 80 reads of 1 MiB in flight on the
    disk, in RAM the kernel does not use (memmap=), and reboots at once. After
    the reboot in place that RAM stays zero (no stale completion or data of the
    old requests lands in the new kernel's memory), and the new kernel's own
    virtio-blk driver reads the disk right."""
    img = f"{W}/inflight.img"
    vt.check(f"head -c 62M /dev/zero | tr '\\000' '\\245' > {img}; truncate -s 64M {img}")
    want = host_sha(vt, img, 0, 62)
    rd = initrd(vt, "inflight", INFLIGHT_SH, progs=["inflight_reboot"])
    cmdline = "'console=ttyS0 panic=-1 memmap=16M$0x10000000'"
    run = boot(vt, vm_args(rd, f"--disk {img} --cmdline {cmdline}", memory="512M"),
               "inflight", timeout=300)
    assert run.rc == 0, run
    posted = re.search(r"inflight: posted (\d+) used (\d+)", run.console)
    assert posted, run
    # The reboot came while the device still had requests to serve.
    assert int(posted.group(2)) < int(posted.group(1)), run
    assert run.console.count("hv-guest: hello") == 2, run
    assert "inflight: check clean" in run.console, run
    assert run.line("vda") == want, run
    assert run.line("virtio-errors") == "0", run
    assert "needs a reset" not in run.stderr, run


# ---- bad host-side input ----

def qcow2_header(size=64 << 20, l1_offset=0x30000, l1_size=1, refcount_offset=0x10000,
                 cluster_bits=16, version=3):
    hdr = struct.pack(">4sIQIIQIIQQIIQQQII", b"QFI\xfb", version, 0, 0, cluster_bits, size, 0,
                      l1_size, l1_offset, refcount_offset, 1, 0, 0, 0, 0, 4, 104)
    return hdr


@pytest.mark.parametrize("kind,message", [
    ("garbage-qcow2", "qcow2"),
    ("l1-beyond-file", "qcow2"),
    ("missing-backing", "nope.qcow2"),
    ("directory", "is a directory"),
    ("backing-outside", "/etc/shadow (/etc/shadow) is outside the directories"),
    ("backing-link-outside", "is outside the directories"),
    ("backing-block-device", "not a regular file"),
])
def test_bad_disk_is_refused_with_a_sentence(vt, kind, message):
    path = f"{W}/bad-{kind}"
    if kind == "garbage-qcow2":
        vt.put(b"QFI\xfb\0\0\0\x03" + os.urandom(4096), path)
    elif kind == "l1-beyond-file":
        data = bytearray(qcow2_header(l1_offset=1 << 40, l1_size=1 << 20))
        vt.put(bytes(data + bytes(0x40000 - len(data))), path)
    elif kind == "missing-backing":
        vt.check(f"rm -f {path}; qemu-img create -q -f qcow2 -u -b {W}/nope.qcow2 -F qcow2 "
                 f"{path} 64M")
    elif kind.startswith("backing-"):
        # A hostile image the user was given, attached the way hvd does it.
        target = {"backing-outside": "/etc/shadow", "backing-link-outside": "link",
                  "backing-block-device": "/dev/vda"}[kind]
        path = f"{W}/images/{kind}.qcow2"
        vt.check(f"mkdir -p {W}/images && ln -sfn /etc/passwd {W}/images/link && "
                 f"rm -f {path} && qemu-img create -q -f qcow2 -u -b {target} -F raw {path} 64M")
        dirs = "--image-dir /dev" if kind == "backing-block-device" else ""
        path = f"{path},format=qcow2 --image-dir {W}/images {dirs}"
    else:
        vt.check(f"mkdir -p {path}")
    res = vt.run(f"{VMM} --kernel {GUEST}/vmlinuz --memory 128M --console none --disk {path} "
                 f"</dev/null", timeout=60)
    assert res.rc == 1, (res.rc, res.stderr)
    assert res.stderr.startswith("hv-vmm: error: "), res.stderr
    assert message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) <= 3, res.stderr


@pytest.mark.parametrize("args,rc,message", [
    ("--virtio-console tcp:1", 2, "give socket:PATH or file:PATH"),
    ("--virtio-console socket:/nonexistent/dir/c.sock", 1, "/nonexistent/dir/c.sock"),
    ("--vsock 2", 2, "0-2 are reserved"),
])
def test_bad_device_options(vt, args, rc, message):
    res = vt.run(f"{VMM} --kernel {GUEST}/vmlinuz --memory 128M --console none {args} "
                 f"</dev/null", timeout=60)
    assert res.rc == rc, (res.rc, res.stderr)
    assert message in res.stderr, res.stderr
