# SPDX-License-Identifier: GPL-2.0-or-later
"""An installed Debian 12 on a BIOS GRUB disk, for firmware tests (issue 14).

Nothing of hv is in it: mmdebstrap installs Debian's kernel (its initramfs
made by Debian's initramfs-tools), systemd and GRUB's BIOS modules; the disk
gets an MBR with one ext4 partition holding that tree, and GRUB is put on
it the way grub-install does for a BIOS disk: boot.img's code in the MBR,
core.img (made by the tree's own grub-mkimage) in the sectors after it,
GRUB's modules in /boot/grub/i386-pc. grub-install itself needs the disk
as a block device (a loop device), which a CI machine may not have.

    python3 tests/vlaptop/hvm_debian.py        # build (or find) it; prints the folder

The result, cached like the laptop's images ($XDG_CACHE_HOME/hv/hvm-debian-KEY):
disk.img (raw) and root-password.txt. The console is ttyS0 (GRUB's serial
terminal and the kernel's console=ttyS0), so a test reads the boot, GRUB's
menu and the login prompt on COM1.
"""

import os
import shutil
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import imagelib  # noqa: E402
from imagelib import BuildError, log, run  # noqa: E402

SUITE = "bookworm"
PACKAGES = ["linux-image-amd64", "systemd-sysv", "udev", "grub-pc-bin", "grub2-common",
            "e2fsprogs", "procps"]
ROOT_PASSWORD = "hv"
PART_START = 2048  # sectors: the partition at 1 MiB, GRUB's core.img before it
GRUB_CFG = """\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=2
menuentry 'Debian GNU/Linux' {
    insmod part_msdos
    insmod ext2
    set root=(hd0,msdos1)
    echo 'Loading Linux ...'
    linux /vmlinuz root=/dev/vda1 ro console=ttyS0,115200 panic=-1
    echo 'Loading initial ramdisk ...'
    initrd /initrd.img
}
"""
# What a booted Debian needs to find its root and show a login prompt.
FSTAB = "/dev/vda1 / ext4 errors=remount-ro 0 1\n"


def key():
    h = imagelib.Hasher("hvm-debian")
    h.file(Path(__file__)).file(HERE / "imagelib.py").file(imagelib.apt_sources())
    h.text("kernel", imagelib.kernel_key("linux-image-amd64"))
    h.text("grub", imagelib.candidate_version("grub-pc-bin"))
    return h


def mmdebstrap(tree):
    imagelib.need_tool("mmdebstrap", "mmdebstrap")
    setup = [f'echo "root:{ROOT_PASSWORD}" | chroot "$1" chpasswd',
             'echo hv-hvm > "$1/etc/hostname"',
             f'printf "{FSTAB}" > "$1/etc/fstab"']
    cmd = ["mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(PACKAGES)]
    cmd += [f"--customize-hook={c}" for c in setup]
    cmd += [SUITE, str(tree), str(imagelib.apt_sources())]
    log(f"mmdebstrap {SUITE} with {', '.join(PACKAGES)}")
    run(cmd)


def install_grub_files(tree, out):
    """GRUB's modules and config in the tree's /boot/grub; core.img made by the
    tree's own grub-mkimage (run in a chroot, so it is Debian's GRUB)."""
    mods = tree / "usr/lib/grub/i386-pc"
    if not (mods / "boot.img").is_file():
        raise BuildError(f"no GRUB BIOS modules in {mods} (grub-pc-bin not installed?)")
    grub = tree / "boot/grub"
    shutil.copytree(mods, grub / "i386-pc", dirs_exist_ok=True)
    (grub / "grub.cfg").write_text(GRUB_CFG)
    run(["chroot", str(tree), "grub-mkimage", "-O", "i386-pc", "-o", "/tmp/core.img",
         "-p", "(hd0,msdos1)/boot/grub", "biosdisk", "part_msdos", "ext2"])
    shutil.move(tree / "tmp/core.img", out / "core.img")
    shutil.copy(mods / "boot.img", out / "boot.img")


def make_disk(tree, out):
    """MBR + ext4 partition from the tree + GRUB's boot code, in disk.img."""
    imagelib.need_tool("mke2fs", "e2fsprogs")
    used = int(run(["du", "-sxk", str(tree)]).stdout.split()[0])
    part_mb = used * 13 // 10 // 1024 + 256
    disk = out / "disk.img"
    size = (PART_START * 512) + (part_mb << 20)
    with open(disk, "wb") as f:
        f.truncate(size)
    log(f"mke2fs: {used // 1024} MiB of files into a {part_mb} MiB partition")
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "debian", "-E",
         f"offset={PART_START * 512},lazy_itable_init=0", "-d", str(tree), str(disk),
         f"{part_mb}M"])
    boot = (out / "boot.img").read_bytes()
    core = (out / "core.img").read_bytes()
    if len(core) > (PART_START - 1) * 512:
        raise BuildError(f"GRUB's core.img ({len(core)} bytes) does not fit before the partition")
    sectors = (size // 512) - PART_START
    # One bootable Linux partition; CHS fields all "beyond 1024 cylinders".
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", PART_START,
                        sectors)
    with open(disk, "r+b") as f:
        f.write(boot[:440])          # boot.img's code; its kernel sector is already 1
        f.seek(446)
        f.write(entry + bytes(48))
        f.write(b"\x55\xaa")
        f.seek(512)                  # core.img: its first sector's block list already says
        f.write(core)                # "the rest follows from sector 2", as written here
    (out / "root-password.txt").write_text(ROOT_PASSWORD + "\n")


def build(out):
    if os.geteuid() != 0:
        raise BuildError("building the HVM Debian disk needs root (mmdebstrap --mode=root)")
    tree = out / "tree"
    mmdebstrap(tree)
    install_grub_files(tree, out)
    make_disk(tree, out)
    for name in ("core.img", "boot.img"):
        (out / name).unlink()
    shutil.rmtree(tree)


def ensure():
    """The cache folder holding disk.img (built now if absent)."""
    with imagelib.cache_lock():
        path, built = imagelib.cached("hvm-debian", key(), build)
    if built:
        log(f"built the HVM Debian disk {path.name}")
    return path


if __name__ == "__main__":
    print(ensure())
