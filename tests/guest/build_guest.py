#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Builds hv's test guest: Debian's cloud kernel + a busybox initramfs.

    /usr/bin/python3 tests/guest/build_guest.py     prints the cache folder

The result (vmlinuz, initrd.img) is cached under ~/.cache/hv/test-guest-*/
and copied into the virtual laptop at /var/lib/hv/test-guest/. The guest's
/init (tests/guest/init) prints "hv-guest: hello" on the console and runs
tests/guest/tests/NAME.sh when the kernel command line says hv.test=NAME.
"""

import shutil
import sys
from pathlib import Path

GUEST_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(GUEST_DIR.parent / "vlaptop"))

import imagelib  # noqa: E402
from imagelib import log  # noqa: E402

KERNEL_META = "linux-image-cloud-amd64"
MODULES = GUEST_DIR / "guest-modules.txt"
HELLO = "hv-guest: hello"


def guest_key():
    h = imagelib.Hasher("test-guest")
    h.file(MODULES).file(GUEST_DIR / "init").file(Path(__file__))
    h.file(GUEST_DIR.parent / "vlaptop" / "imagelib.py")
    h.tree(GUEST_DIR / "tests")
    h.text("kernel", imagelib.kernel_key(KERNEL_META))
    return h


def build(out):
    kernel_tree = out / "kernel"
    kver, vmlinuz = imagelib.extract_kernel(KERNEL_META, kernel_tree)
    root = out / "root"
    imagelib.install_busybox(root)
    names = imagelib.copy_modules(kernel_tree / "lib/modules" / kver,
                                  imagelib.read_list(MODULES), root / "lib/hv-modules")
    log(f"test guest modules: {' '.join(names)}")
    shutil.copy2(GUEST_DIR / "init", root / "init")
    shutil.copytree(GUEST_DIR / "tests", root / "tests")
    imagelib.make_cpio(root, out / "initrd.img")
    shutil.move(vmlinuz, out / "vmlinuz")
    (out / "kernel-version").write_text(kver + "\n")
    shutil.rmtree(root)
    shutil.rmtree(kernel_tree)


def ensure():
    """(cache folder holding vmlinuz and initrd.img, built now?)"""
    path, built = imagelib.cached("test-guest", guest_key(), build)
    if built:
        log(f"built test guest {path.name}")
    return path, built


def main():
    with imagelib.cache_lock():
        print(ensure()[0])


if __name__ == "__main__":
    main()
