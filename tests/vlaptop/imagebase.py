# SPDX-License-Identifier: GPL-2.0-or-later
"""The laptop's base: Debian 12 root image, kernel and initramfs modules.

This is the slow, rarely changing step (about a minute cold). Its cache key
covers the package lists, the kernel package version, the apt sources and
this builder's own source. See build_image.py for the cheap final layer.
"""

import os
import shutil
from pathlib import Path

import imagelib
from imagelib import HERE, BuildError, log, run

SUITE = "bookworm"
KERNEL_META = "linux-image-amd64"
PACKAGES = HERE / "laptop-packages.txt"
INITRAMFS_MODULES = HERE / "initramfs-modules.txt"
DPKG_EXCLUDES = [
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
]


def base_key():
    h = imagelib.Hasher("laptop-base")
    h.file(PACKAGES).file(INITRAMFS_MODULES)
    h.file(HERE / "imagelib.py").file(Path(__file__))
    h.file(imagelib.apt_sources())
    h.text("kernel", imagelib.kernel_key(KERNEL_META))
    h.text("suite", SUITE)
    return h


def mmdebstrap(tree):
    imagelib.need_tool("mmdebstrap", "mmdebstrap")
    packages = imagelib.read_list(PACKAGES)
    cmd = ["mmdebstrap", "--variant=essential", "--mode=root",
           "--include=" + ",".join(packages)]
    cmd += [f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES]
    cmd += [SUITE, str(tree), str(imagelib.apt_sources())]
    log(f"mmdebstrap {SUITE} with {len(packages)} packages")
    run(cmd)


def configure_tree(tree):
    """Small fixes a booted Debian without systemd wants."""
    (tree / "etc/hostname").write_text("vlaptop\n")
    (tree / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 vlaptop\n")
    (tree / "etc/fstab").write_text("# the laptop's init mounts everything\n")
    (tree / "root").mkdir(exist_ok=True)
    for d in ("run/hv-lower", "run/hv-rw"):
        (tree / d).mkdir(parents=True, exist_ok=True)


def build_initramfs_base(tree, kver, out):
    """busybox + the modules that mount the root, as an uncompressed cpio."""
    root = out.parent / "initramfs-base"
    imagelib.install_busybox(root)
    wanted = imagelib.read_list(INITRAMFS_MODULES)
    names = imagelib.copy_modules(tree / "lib/modules" / kver, wanted,
                                  root / "lib/hv-modules")
    log(f"initramfs modules: {' '.join(names)}")
    imagelib.make_cpio(root, out)
    shutil.rmtree(root)


def make_ext4(tree, out):
    imagelib.need_tool("mke2fs", "e2fsprogs")
    used = int(run(["du", "-sxk", str(tree)]).stdout.split()[0])
    size_mb = used * 13 // 10 // 1024 + 256
    log(f"mke2fs: {used // 1024} MiB of files into a {size_mb} MiB ext4 image")
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "hv-laptop", "-m", "0",
         "-E", "lazy_itable_init=0", "-d", str(tree), str(out), f"{size_mb}M"])


def build(out):
    if os.geteuid() != 0:
        raise BuildError("building the laptop's base image needs root (mmdebstrap "
                         "--mode=root; the image's files must belong to root)")
    tree = out / "tree"
    mmdebstrap(tree)
    # The kernel package is unpacked aside: unpacked over the tree, tar would
    # replace the merged-/usr symlink /lib with a directory.
    kernel = out / "kernel"
    kver, vmlinuz = imagelib.extract_kernel(KERNEL_META, kernel)
    shutil.move(vmlinuz, out / "vmlinuz")
    if imagelib.extract_vmlinux(out / "vmlinuz", out / "vmlinux"):
        log("extracted vmlinux: the laptop boots it through the PVH entry")
    (tree / "usr/lib/modules").mkdir(parents=True, exist_ok=True)
    shutil.move(kernel / "lib/modules" / kver, tree / "usr/lib/modules" / kver)
    shutil.rmtree(kernel)
    configure_tree(tree)
    (out / "kernel-version").write_text(kver + "\n")
    build_initramfs_base(tree, kver, out / "initramfs-base.cpio")
    make_ext4(tree, out / "rootfs.ext4")
    shutil.rmtree(tree)


def ensure():
    """(cache folder with rootfs.ext4, vmlinuz, initramfs-base.cpio, built now?)"""
    path, built = imagelib.cached("laptop-base", base_key(), build)
    if built:
        log(f"built base image {path.name}")
    return path, built
