#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Builds hv's test guests: a Debian kernel + a busybox initramfs.

    /usr/bin/python3 tests/guest/build_guest.py [--desktop]   prints the cache folder

Two flavours, same /init, same tests/ and tools:
  cloud    (test-guest-*)          linux-image-cloud-amd64, guest-modules.txt;
           no DRM, no USB. In the laptop at /var/lib/hv/test-guest/.
  desktop  (test-guest-desktop-*)  linux-image-amd64 (the laptop's own kernel),
           guest-modules-desktop.txt: virtio-gpu (fbdev), virtio-input,
           evdev, vhci-hcd, usb-storage... In the laptop at
           /var/lib/hv/test-guest-desktop/.
The result (vmlinuz, initrd.img) is cached under ~/.cache/hv/. The guest's
/init (tests/guest/init) prints "hv-guest: hello" on the console and runs
tests/guest/tests/NAME.sh when the kernel command line says hv.test=NAME.
Both carry /bin/hv-desk (tools/hv-desk.c, static): paints /dev/fb0 and logs
input events; and /bin/hv-hostile-gpu (tools/hv-hostile-gpu.c): a hostile
virtio-gpu driver (tests/hostile-gpu.sh); and /bin/hv-hostile-vbe
(tools/hv-hostile-vbe.c): a hostile Bochs VBE driver (tests/hostile-vbe.sh).
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
TOOLS = GUEST_DIR / "tools"
INCLUDE = GUEST_DIR / "include"  # virtio_bar.h, shared with tests/guest/progs
FONT = GUEST_DIR.parent.parent / "hv" / "switch"

# flavour: (cache kind, kernel meta package, module list)
FLAVOURS = {
    "cloud": ("test-guest", KERNEL_META, MODULES),
    "desktop": ("test-guest-desktop", "linux-image-amd64",
                GUEST_DIR / "guest-modules-desktop.txt"),
}


def guest_key(flavour="cloud"):
    kind, meta, modules = FLAVOURS[flavour]
    h = imagelib.Hasher(kind)
    h.file(modules).file(GUEST_DIR / "init").file(Path(__file__))
    h.file(GUEST_DIR.parent / "vlaptop" / "imagelib.py")
    h.tree(GUEST_DIR / "tests").tree(TOOLS).tree(INCLUDE)
    h.file(FONT / "font.c").file(FONT / "font.h")
    h.text("kernel", imagelib.kernel_key(meta))
    return h


def build_tools(bindir):
    """Static programs of tools/ for the guest's /bin."""
    imagelib.need_tool("gcc", "gcc")
    cc = ["gcc", "-std=c17", "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror"]
    imagelib.run(cc + ["-I", str(FONT), "-o", str(bindir / "hv-desk"), str(TOOLS / "hv-desk.c"),
                       str(FONT / "font.c")])
    imagelib.run(cc + ["-I", str(INCLUDE), "-o", str(bindir / "hv-hostile-gpu"),
                       str(TOOLS / "hv-hostile-gpu.c")])
    imagelib.run(cc + ["-o", str(bindir / "hv-hostile-vbe"), str(TOOLS / "hv-hostile-vbe.c")])


def build(out, flavour="cloud"):
    _, meta, modules = FLAVOURS[flavour]
    kernel_tree = out / "kernel"
    kver, vmlinuz = imagelib.extract_kernel(meta, kernel_tree)
    root = out / "root"
    imagelib.install_busybox(root)
    names = imagelib.copy_modules(kernel_tree / "lib/modules" / kver,
                                  imagelib.read_list(modules), root / "lib/hv-modules")
    log(f"test guest ({flavour}) modules: {' '.join(names)}")
    build_tools(root / "bin")
    shutil.copy2(GUEST_DIR / "init", root / "init")
    shutil.copytree(GUEST_DIR / "tests", root / "tests")
    imagelib.make_cpio(root, out / "initrd.img")
    shutil.move(vmlinuz, out / "vmlinuz")
    (out / "kernel-version").write_text(kver + "\n")
    shutil.rmtree(root)
    shutil.rmtree(kernel_tree)


def ensure(flavour="cloud"):
    """(cache folder holding vmlinuz and initrd.img, built now?). Callers hold
    imagelib.cache_lock()."""
    path, built = imagelib.cached(FLAVOURS[flavour][0], guest_key(flavour),
                                  lambda out: build(out, flavour))
    if built:
        log(f"built test guest {path.name}")
    return path, built


def ensure_desktop():
    return ensure("desktop")


def main():
    flavour = "desktop" if "--desktop" in sys.argv[1:] else "cloud"
    with imagelib.cache_lock():
        print(ensure(flavour)[0])


if __name__ == "__main__":
    main()
