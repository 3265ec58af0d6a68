# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-vmm's NVMe controller with a real Linux guest, in the virtual laptop.

What a user gets: the test guest's own nvme driver binds the controllers
(`--disk PATH,bus=nvme`), /dev/nvme0n1 appears with the image's size, the
model and the image's name as serial, its queues on MSI-X; bytes written
with dd (direct and through the page cache) are in the image file on the
host, also what only the poweroff's sync pushed out; a discard punches the
range; a qcow2 image works the same; a read-only disk is read-only in the
guest and the controller itself refuses a write to it with "Namespace is
Write Protected"; commands with an LBA past the end, an unknown opcode or
an Identify of another namespace get their NVMe status; a virtio disk
beside keeps working.
A guest counting onto its NVMe disk is saved and restored: every write it
saw acknowledged is in the image and it goes on writing after the restore.

The guest side is a /test.sh (and tests/guest/progs/nvme_passthru.c, built
here with gcc -static) in a cpio appended to the test guest's initramfs.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_nvme.py -v
"""

import shutil
import subprocess
from pathlib import Path

import pytest

import counter_guest
from counter_guest import COUNTER_SH, counts, writes
from test_boot import GUEST, VMM
from test_virtio import W, Background, host_sha, sha  # W: where Background keeps its files
from vlaptop import newc

pytestmark = pytest.mark.vlaptop

PROG = Path(__file__).resolve().parents[1] / "guest" / "progs" / "nvme_passthru.c"
SAVE_CLIENT_C = Path(__file__).with_name("save_client.c")
SAVE_CLIENT = "/tmp/save_client"
RW_MIB, RO_MIB, QC_MIB, VD_MIB = 64, 3, 16, 8


@pytest.fixture(scope="module")
def nv(laptop, tmp_path_factory):
    """The laptop with KVM and the guest's passthrough program."""
    if laptop.run(f"test -x {VMM}").rc != 0:
        pytest.fail(f"hv-vmm is not installed in the laptop ({VMM})")
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler to build the guest's test program")
    out = tmp_path_factory.mktemp("progs")
    exe, client = out / "nvme_passthru", out / "save_client"
    for src, dst in ((PROG, exe), (SAVE_CLIENT_C, client)):
        subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                        "-Werror", "-o", str(dst), str(src)], check=True)
    prog = exe.read_bytes()

    def setup(lt):
        lt.check("modprobe kvm_amd")
        lt.check(f"mkdir -p {W}")
        lt.put(client, SAVE_CLIENT, mode=0o755)
    laptop.prepare(setup)
    laptop.prog = prog
    return laptop


def initrd(lt, name, script):
    files = {"test.sh": (0o100755, script.encode()),
             "nvme_passthru": (0o100755, lt.prog)}
    lt.put(newc(files), f"{W}/{name}.cpio")
    lt.check(f"cat {GUEST}/initrd.img {W}/{name}.cpio > {W}/{name}.initrd")
    return f"{W}/{name}.initrd"


NVME_SH = f"""\
# The driver probes in the background: wait for the three namespaces.
i=0
while [ $i -lt 150 ] && [ "$(ls /sys/block | grep -c '^nvme')" -lt 3 ]; do sleep 0.2; i=$((i + 1)); done
for d in /sys/block/nvme*; do
    n=${{d##*/}}; s=$(cat $d/size)
    case $s in
    {RW_MIB * 2048}) RW=/dev/$n ;;
    {RO_MIB * 2048}) RO=/dev/$n ;;
    {QC_MIB * 2048}) QC=/dev/$n ;;
    esac
    echo "hv-guest: disk $n $s $(cat $d/ro)"
done
echo "hv-guest: rw $RW"
echo "hv-guest: node $(ls /dev/nvme0n1)"
echo "hv-guest: model $(cat /sys/class/nvme/nvme0/model)"
echo "hv-guest: serial $(cat /sys/class/nvme/nvme0/serial)"
echo "hv-guest: max-kb $(cat /sys/block/${{RW#/dev/}}/queue/max_hw_sectors_kb)"
echo "hv-guest: msix $(grep -c 'nvme0q' /proc/interrupts)"
echo "hv-guest: getro $(blockdev --getro $RW) $(blockdev --getro $RO)"
dd if=/dev/urandom of=/tmp/p bs=1M count=4 2>/dev/null
echo "hv-guest: wrote $(sha256sum < /tmp/p | cut -d' ' -f1)"
dd if=/tmp/p of=$RW bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null || echo "hv-guest: write failed"
echo "hv-guest: direct-read $(dd if=$RW bs=1M skip=1 count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo 3 > /proc/sys/vm/drop_caches
echo "hv-guest: cached-read $(dd if=$RW bs=4k skip=256 count=1024 2>/dev/null | sha256sum | cut -d' ' -f1)"
dd if=/dev/urandom of=$RW bs=1M seek=8 count=1 oflag=direct conv=fsync 2>/dev/null
if blkdiscard -o $((8 << 20)) -l $((1 << 20)) $RW; then echo "hv-guest: discard ok"; else echo "hv-guest: discard failed"; fi
if dd if=/dev/zero of=$RO bs=4096 count=1 oflag=direct 2>/tmp/err; then
    echo "hv-guest: ro write succeeded"
else
    echo "hv-guest: ro write refused: $(tr '\\n' ' ' < /tmp/err)"
fi
echo "hv-guest: ro-read $(dd if=$RO bs=1M 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "hv-guest: pt-ro-write $(/nvme_passthru $RO 1 1 0 7)"
echo "hv-guest: pt-range $(/nvme_passthru $RW 2 1 {RW_MIB * 2048} 0)"
echo "hv-guest: pt-opcode $(/nvme_passthru $RW 0x7f 1 0 0)"
echo "hv-guest: pt-nsid $(/nvme_passthru /dev/nvme0 6 7 0 0 admin)"
echo "hv-guest: pt-read $(/nvme_passthru $RW 2 1 2048 7)"
head -c 2097152 /tmp/p > /tmp/p2
dd if=/tmp/p2 of=$QC bs=1M seek=2 conv=fsync 2>/dev/null || echo "hv-guest: qcow2 write failed"
echo "hv-guest: qc-wrote $(sha256sum < /tmp/p2 | cut -d' ' -f1)"
echo "hv-guest: vda $(blockdev --getsize64 /dev/vda)"
dd if=/dev/vda bs=1M count=1 2>/dev/null | head -c 4 | sed 's/^/hv-guest: vda-head /'; echo
dmesg | grep -i nvme | sed 's/^/hv-guest: dmesg /'
# Written without fsync: only the sync before poweroff pushes it out.
dd if=/dev/urandom of=/tmp/q bs=64k count=16 2>/dev/null
echo "hv-guest: late $(sha256sum < /tmp/q | cut -d' ' -f1)"
dd if=/tmp/q of=$RW bs=1M seek=20 2>/dev/null
"""


def test_guest_nvme_driver_reads_and_writes_the_image(nv, timed):
    rw, ro, qc, vd = (f"{W}/rw-nvme.img", f"{W}/ro-nvme.img", f"{W}/qc-nvme.qcow2",
                      f"{W}/vd.img")
    nv.check(f"truncate -s {RW_MIB}M {rw}; head -c {RO_MIB}M /dev/urandom > {ro}; "
             f"rm -f {qc}; qemu-img create -q -f qcow2 {qc} {QC_MIB}M; "
             f"printf hvvd > {vd}; truncate -s {VD_MIB}M {vd}")
    ro_before = host_sha(nv, ro)
    rd = initrd(nv, "nvme", NVME_SH)
    args = (f"--kernel {GUEST}/vmlinuz --initrd {rd} --memory 512M --cpus 2 "
            f"--disk {rw},format=raw,bus=nvme --disk {ro},ro,format=raw,bus=nvme "
            f"--disk {qc},format=qcow2,bus=nvme --disk {vd},format=raw")
    with timed("hv-vmm guest with 3 NVMe disks, start to exit"):
        vm = Background(nv, args, "nvme")
        try:
            vm.wait("hv-guest: cached-read")
            now = vm.run_now()
            # While the guest runs: what it wrote with fsync is in the file.
            assert now.line("direct-read") == now.line("wrote"), now
            assert host_sha(nv, rw, 1, 4) == now.line("wrote"), now
            run = vm.finish(timeout=180)
        finally:
            vm.kill()
    assert run.rc == 0, run
    assert "NVMe at 00:01.0" in run.stderr, run          # first on the bus, in --disk order
    assert run.line("rw") == "/dev/nvme0n1", run
    assert run.line("node") == "/dev/nvme0n1", run
    assert run.line("model") == "hv NVMe disk", run
    assert run.line("serial") == "rw-nvme.img", run      # the image's name, as virtio-blk's
    assert run.line("max-kb") == "512", run               # MDTS 7: 512 KiB per command
    assert int(run.line("msix")) >= 2, run                # admin + I/O queues on MSI-X vectors
    assert run.line("getro") == "0 1", run                # NSATTR: the ro namespace is ro
    assert run.line("cached-read") == run.line("wrote"), run
    assert run.line("discard") == "ok", run
    assert host_sha(nv, rw, 8, 1) == sha(bytes(1 << 20)), run
    assert "ro write refused" in run.console, run
    assert run.line("ro-read") == ro_before, run
    assert host_sha(nv, ro) == ro_before
    # The controller's own answers (status field with DNR, bit 14).
    assert run.line("pt-ro-write").startswith("status 0x4020"), run  # Namespace Write Protected
    assert run.line("pt-range").startswith("status 0x4080"), run     # LBA Out of Range
    assert run.line("pt-opcode").startswith("status 0x4001"), run    # Invalid Command Opcode
    assert run.line("pt-nsid").startswith("status 0x400b"), run      # Invalid Namespace
    assert run.line("pt-read").startswith("status 0x0000"), run
    assert run.line("vda") == str(VD_MIB << 20), run
    assert "hvvd" in (run.line("vda-head") or ""), run
    # After sync + poweroff: every write is in the images.
    assert host_sha(nv, rw, 1, 4) == run.line("wrote"), run
    assert host_sha(nv, rw, 20, 1) == run.line("late"), run
    nv.check(f"qemu-img check -q {qc}")
    nv.check(f"qemu-img convert -O raw {qc} {W}/qc.raw")
    assert host_sha(nv, f"{W}/qc.raw", 2, 2) == run.line("qc-wrote"), run
    nv.run(f"rm -f {W}/qc.raw")


def test_bad_bus_is_refused_with_a_sentence(nv):
    res = nv.run(f"{VMM} --kernel {GUEST}/vmlinuz --disk {W}/x.img,bus=sata; echo rc=$?")
    assert "rc=2" in res.stdout, res
    assert "the bus is virtio, nvme or ahci, not 'sata'" in res.stderr, res


# The counting guest of test_save.py on an NVMe disk: each count fsync'd to its sector.
NVME_COUNTER_SH = ("i=0; while [ $i -lt 100 ] && [ ! -e /dev/nvme0n1 ]; do sleep 0.2; "
                   "i=$((i + 1)); done\n" + COUNTER_SH.replace("/dev/vda", "/dev/nvme0n1"))


def test_saved_guest_carries_on_with_its_nvme_disk(nv):
    """Queues, their positions, the held AER and MSI-X come back: the restored
    guest goes on writing through the same queues, with no new boot."""
    disk, state, sock = f"{W}/save-nvme.img", f"{W}/nvme.hvsave", f"{W}/nvme.sock"
    nv.check(f"rm -f {disk} {state}; truncate -s 16M {disk}")
    rd = initrd(nv, "nvme-counter", NVME_COUNTER_SH)
    args = (f"--kernel {GUEST}/vmlinuz --initrd {rd} --memory 256M --cpus 2 "
            f"--control {sock} --disk {disk},format=raw,bus=nvme")
    first = Background(nv, args, "nvme-save-a")
    try:
        first.wait("hv-guest: count 5")
        res = nv.run(f"{SAVE_CLIENT} {sock} {state} exit", timeout=120)
        assert res.rc == 0, f"{res.stdout}\n{res.stderr}\n{first.run_now()}"
        run = first.finish(timeout=60)
    finally:
        first.kill()
    assert run.rc == 6, run                           # saved and stopped
    acked, last = writes(run.console), counts(run.console)[-1][0]
    assert acked, run
    for n in acked:                                   # every acknowledged write is in the image
        got = nv.check(f"dd if={disk} bs=512 skip={n} count=1 2>/dev/null | head -c 14").stdout
        assert got == f"count {n:08d}", (n, got)

    second = Background(nv, args + f" --restore {state}", "nvme-save-b")
    try:
        seen, _, _ = counter_guest.wait_count(
            lambda: nv.run(f"cat {W}/nvme-save-b.console").stdout, last + 5, 120,
            second.run_now)
        run2 = second.run_now()
    finally:
        second.kill()
    assert "Linux version" not in run2.console, run2  # continued, not booted
    assert seen[0][0] in (last, last + 1), (last, seen[:3], run2)
    more = writes(run2.console)
    assert more and more[-1] > last, run2             # the NVMe disk still takes writes
    got = nv.check(f"dd if={disk} bs=512 skip={more[-1]} count=1 2>/dev/null | head -c 14").stdout
    assert got == f"count {more[-1]:08d}", got
