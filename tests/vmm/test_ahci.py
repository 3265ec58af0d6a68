# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-vmm's AHCI controller with a real Linux guest, in the virtual laptop.

What a user gets: the guest's own ahci driver binds the controller
(`--disk PATH,bus=ahci`, `--cdrom ISO`); the SATA disk is /dev/sda with
the image's size, the model hv-vmm gives it and NCQ in use; bytes written
with dd (direct, and through the page cache) are in the image file on the
host and read back the same; the CD-ROM is /dev/sr0, read-only, with the
ISO's size, and the ISO the test built (xorriso) mounts as iso9660 and
gives the file's bytes. A guest counting onto its AHCI disk is saved and
restored: every write it saw acknowledged is in the image, and it goes on
writing after the restore.

The test guest's cloud kernel has no AHCI driver (CONFIG_SATA_AHCI is not
set in linux-image-cloud-amd64), so these guests run the desktop flavour
(linux-image-amd64, CONFIG_SATA_AHCI=m, CONFIG_BLK_DEV_SR=m,
CONFIG_ISO9660_FS=m): the modules it needs (ahci, sr_mod, isofs and their
dependencies) are taken from that kernel's package on the host and put,
with the /test.sh, in a cpio appended to the desktop guest's initramfs.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_ahci.py -v
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import counter_guest
from counter_guest import COUNTER_SH, counts, writes
from test_boot import VMM
from test_virtio import W, Background, host_sha, sha  # W: where Background keeps its files
from vlaptop import DESKTOP_INITRD, DESKTOP_KERNEL, newc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vlaptop"))
import imagelib  # noqa: E402

pytestmark = pytest.mark.vlaptop

SAVE_CLIENT_C = Path(__file__).with_name("save_client.c")
SAVE_CLIENT = "/tmp/save_client"
DISK_MIB = 64
MODULES = ["ahci", "sd_mod", "sr_mod", "isofs"]
PAYLOAD = os.urandom(300_000)  # the file on the ISO: more than one 64 KiB read


def guest_modules(out):
    """ahci, sr_mod, isofs and what they need, from the desktop guest's kernel
    package, in load order: [(name, bytes)]."""
    pkg, version = imagelib.kernel_package("linux-image-amd64")
    deb = imagelib.fetch_deb(pkg, version)
    tree = out / "kernel"
    tree.mkdir()
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                         stdout=subprocess.PIPE).stdout
    subprocess.run(["tar", "-x", "--wildcards", "./lib/modules/*/modules.builtin*",
                    "./lib/modules/*/modules.order", "./lib/modules/*/kernel/drivers/ata/*",
                    "./lib/modules/*/kernel/drivers/scsi/*", "./lib/modules/*/kernel/drivers/cdrom/*",
                    "./lib/modules/*/kernel/fs/isofs/*", "./lib/modules/*/kernel/lib/*"],
                   cwd=tree, input=tar, check=True)
    kver = next((tree / "lib/modules").iterdir()).name
    subprocess.run(["depmod", "-b", str(tree), kver], check=True)
    moddir = tree / "lib/modules" / kver
    mods = out / "mods"
    names = imagelib.copy_modules(moddir, MODULES, mods)
    return [(n, (mods / n).read_bytes()) for n in names]


def build_iso(out):
    """An ISO 9660 image (xorriso, Debian's) with one file, hello.bin."""
    tree = out / "iso"
    tree.mkdir()
    (tree / "hello.bin").write_bytes(PAYLOAD)
    iso = out / "test.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-V", "HVTEST", "-o", str(iso),
                    str(tree)], check=True)
    return iso


@pytest.fixture(scope="module")
def ah(laptop, tmp_path_factory):
    """The laptop with KVM, the guest's modules and the test ISO."""
    for path in (VMM, DESKTOP_KERNEL, DESKTOP_INITRD):
        if laptop.run(f"test -e {path}").rc != 0:
            pytest.fail(f"{path} is not in the laptop")
    if not shutil.which("xorriso"):
        pytest.fail("xorriso is not installed (scripts/packages-test.txt)")
    cc = shutil.which("gcc") or shutil.which("cc")
    out = tmp_path_factory.mktemp("ahci")
    mods = guest_modules(out)
    iso = build_iso(out)
    client = out / "save_client"
    subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                    "-Werror", "-o", str(client), str(SAVE_CLIENT_C)], check=True)

    def setup(lt):
        lt.check("modprobe kvm_amd || modprobe kvm_intel")
        lt.check(f"mkdir -p {W}")
        lt.put(client, SAVE_CLIENT, mode=0o755)
        lt.put(iso, f"{W}/test.iso")
    laptop.prepare(setup)
    laptop.mods = mods
    laptop.iso_size = iso.stat().st_size
    return laptop


LOAD_SH = """\
while read m; do insmod /ahci-mods/$m 2>/dev/null; done < /ahci-mods/load-order
"""


def initrd(lt, name, script):
    files = {"test.sh": (0o100755, (LOAD_SH + script).encode()),
             "ahci-mods": (0o040755, b""),
             "ahci-mods/load-order": (0o100644,
                                       "".join(n + "\n" for n, _ in lt.mods).encode())}
    for n, data in lt.mods:
        files[f"ahci-mods/{n}"] = (0o100644, data)
    lt.put(newc(files), f"{W}/{name}.cpio")
    lt.check(f"cat {DESKTOP_INITRD} {W}/{name}.cpio > {W}/{name}.initrd")
    return f"{W}/{name}.initrd"


AHCI_SH = f"""\
i=0
while [ $i -lt 150 ] && {{ [ ! -e /dev/sda ] || [ ! -e /dev/sr0 ]; }}; do sleep 0.2; i=$((i + 1)); done
echo "hv-guest: nodes $(ls /dev/sda /dev/sr0 | tr '\\n' ' ')"
echo "hv-guest: sda-size $(blockdev --getsize64 /dev/sda)"
echo "hv-guest: sda-model $(cat /sys/block/sda/device/model)"
echo "hv-guest: sda-qdepth $(cat /sys/block/sda/device/queue_depth)"
echo "hv-guest: sr0-size $(blockdev --getsize64 /dev/sr0)"
echo "hv-guest: sr0-ro $(cat /sys/block/sr0/ro)"
echo "hv-guest: sr0-vendor $(cat /sys/block/sr0/device/vendor)"
dd if=/dev/urandom of=/tmp/p bs=1M count=4 2>/dev/null
echo "hv-guest: wrote $(sha256sum < /tmp/p | cut -d' ' -f1)"
dd if=/tmp/p of=/dev/sda bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null || echo "hv-guest: write failed"
echo "hv-guest: direct-read $(dd if=/dev/sda bs=1M skip=1 count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo 3 > /proc/sys/vm/drop_caches
echo "hv-guest: cached-read $(dd if=/dev/sda bs=4k skip=256 count=1024 2>/dev/null | sha256sum | cut -d' ' -f1)"
mkdir -p /mnt/cd
if mount -t iso9660 -o ro /dev/sr0 /mnt/cd 2>/tmp/err; then
    echo "hv-guest: mounted $(ls /mnt/cd | tr '\\n' ' ')"
    echo "hv-guest: file $(sha256sum < /mnt/cd/hello.bin | cut -d' ' -f1)"
    umount /mnt/cd
else
    echo "hv-guest: mount failed: $(tr '\\n' ' ' < /tmp/err)"
fi
if dd if=/dev/zero of=/dev/sr0 bs=2048 count=1 2>/dev/null; then echo "hv-guest: sr0 write succeeded"; else echo "hv-guest: sr0 write refused"; fi
dmesg | grep -iE 'ahci|ata[0-9]|sr0|scsi' | sed 's/^/hv-guest: dmesg /'
# Written without fsync: only the sync before poweroff pushes it out.
dd if=/dev/urandom of=/tmp/q bs=64k count=16 2>/dev/null
echo "hv-guest: late $(sha256sum < /tmp/q | cut -d' ' -f1)"
dd if=/tmp/q of=/dev/sda bs=1M seek=20 2>/dev/null
"""


def test_guest_ahci_driver_uses_the_sata_disk_and_the_cdrom(ah, timed):
    disk, iso = f"{W}/ahci.img", f"{W}/test.iso"
    ah.check(f"rm -f {disk}; truncate -s {DISK_MIB}M {disk}")
    iso_before = host_sha(ah, iso)
    rd = initrd(ah, "ahci", AHCI_SH)
    args = (f"--kernel {DESKTOP_KERNEL} --initrd {rd} --memory 512M --cpus 2 "
            f"--disk {disk},format=raw,bus=ahci --cdrom {iso},format=raw")
    with timed("hv-vmm guest with an AHCI disk and CD-ROM, start to exit"):
        vm = Background(ah, args, "ahci")
        try:
            vm.wait("hv-guest: cached-read")
            now = vm.run_now()
            # While the guest runs: what it wrote with fsync is in the file.
            assert now.line("direct-read") == now.line("wrote"), now
            assert host_sha(ah, disk, 1, 4) == now.line("wrote"), now
            run = vm.finish(timeout=180)
        finally:
            vm.kill()
    assert run.rc == 0, run
    assert "AHCI at 00:01.0" in run.stderr, run
    assert run.line("nodes") == "/dev/sda /dev/sr0", run
    assert run.line("sda-size") == str(DISK_MIB << 20), run
    assert run.line("sda-model") == "hv SATA disk", run
    assert int(run.line("sda-qdepth")) > 1, run          # NCQ: queued commands
    assert run.line("cached-read") == run.line("wrote"), run
    assert run.line("sr0-size") == str(ah.iso_size), run  # READ CAPACITY: the ISO's size
    assert run.line("sr0-vendor") == "hv", run
    assert run.line("mounted") == "hello.bin", run
    assert run.line("file") == sha(PAYLOAD), run
    assert "sr0 write refused" in run.console, run
    assert host_sha(ah, iso) == iso_before
    # After sync + poweroff: every write is in the image.
    assert host_sha(ah, disk, 1, 4) == run.line("wrote"), run
    assert host_sha(ah, disk, 20, 1) == run.line("late"), run


def test_cdrom_options_are_checked(ah):
    res = ah.run(f"{VMM} --kernel {DESKTOP_KERNEL} --cdrom {W}/test.iso,rw; echo rc=$?")
    assert "rc=2" in res.stdout, res
    assert "a CD-ROM is read-only" in res.stderr, res
    res = ah.run(f"{VMM} --kernel {DESKTOP_KERNEL} --cdrom {W}/none.iso; echo rc=$?")
    assert "does not exist" in res.stderr, res


AHCI_COUNTER_SH = ("i=0; while [ $i -lt 100 ] && [ ! -e /dev/sda ]; do sleep 0.2; "
                   "i=$((i + 1)); done\n" + COUNTER_SH.replace("/dev/vda", "/dev/sda"))


def test_saved_guest_carries_on_with_its_ahci_disk(ah):
    """The ports, their command lists, FIS areas, interrupts and MSI-X come
    back: the restored guest goes on writing to its disk, with no new boot."""
    disk, state, sock = f"{W}/save-ahci.img", f"{W}/ahci.hvsave", f"{W}/ahci.sock"
    ah.check(f"rm -f {disk} {state}; truncate -s 16M {disk}")
    rd = initrd(ah, "ahci-counter", AHCI_COUNTER_SH)
    args = (f"--kernel {DESKTOP_KERNEL} --initrd {rd} --memory 256M --cpus 2 "
            f"--control {sock} --disk {disk},format=raw,bus=ahci --cdrom {W}/test.iso")
    first = Background(ah, args, "ahci-save-a")
    try:
        first.wait("hv-guest: count 5")
        res = ah.run(f"{SAVE_CLIENT} {sock} {state} exit", timeout=120)
        assert res.rc == 0, f"{res.stdout}\n{res.stderr}\n{first.run_now()}"
        run = first.finish(timeout=60)
    finally:
        first.kill()
    assert run.rc == 6, run                           # saved and stopped
    acked, last = writes(run.console), counts(run.console)[-1][0]
    assert acked, run
    for n in acked:                                   # every acknowledged write is in the image
        got = ah.check(f"dd if={disk} bs=512 skip={n} count=1 2>/dev/null | head -c 14").stdout
        assert got == f"count {n:08d}", (n, got)

    second = Background(ah, args + f" --restore {state}", "ahci-save-b")
    try:
        seen, _, _ = counter_guest.wait_count(
            lambda: ah.run(f"cat {W}/ahci-save-b.console").stdout, last + 5, 120,
            second.run_now)
        run2 = second.run_now()
    finally:
        second.kill()
    assert "Linux version" not in run2.console, run2  # continued, not booted
    assert seen[0][0] in (last, last + 1), (last, seen[:3], run2)
    more = writes(run2.console)
    assert more and more[-1] > last, run2             # the AHCI disk still takes writes
    got = ah.check(f"dd if={disk} bs=512 skip={more[-1]} count=1 2>/dev/null | head -c 14").stdout
    assert got == f"count {more[-1]:08d}", got
