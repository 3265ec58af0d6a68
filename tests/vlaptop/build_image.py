#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Builds (or finds in the cache) everything the virtual laptop boots.

    /usr/bin/python3 tests/vlaptop/build_image.py [--build-dir DIR]

Three cached steps, each keyed on a hash of its inputs:

  laptop-base-*   Debian 12 root image (mmdebstrap), linux-image-amd64,
                  busybox + the modules that mount root     (imagebase.py)
  test-guest-*    cloud kernel + busybox initramfs for guests (tests/guest/)
  test-guest-desktop-*  the same on the generic kernel, with virtio-gpu,
                  virtio-input and USB modules               (tests/guest/)
  laptop-layer-*  the final layer: `meson install` of HV_BUILD_DIR, the
                  test guest and the laptop's boot scripts, as a cpio
                  appended to the base initramfs                 (here)

Only the last one is redone when our binaries change (a second or two).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import imagebase
import imagelib
from imagelib import HERE, REPO, BuildError, log, run

sys.path.insert(0, str(REPO / "tests" / "guest"))
import build_guest  # noqa: E402

BOOT = HERE / "boot"
GUEST_DIR_IN_LAPTOP = "/var/lib/hv/test-guest"
DESKTOP_GUEST_DIR_IN_LAPTOP = "/var/lib/hv/test-guest-desktop"
# Debian's SeaBIOS images, where the seabios package puts them (hv-vmm --firmware).
SEABIOS_DIR_IN_LAPTOP = "/usr/share/seabios"
SEABIOS_IMAGES = ("bios.bin", "bios-256k.bin")
# The option ROM with which SeaBIOS boots a --kernel (hv-vmm --firmware --kernel), from
# Debian's qemu-system-data; only this file of the package goes into the image.
LINUXBOOT_ROM_IN_LAPTOP = "/usr/share/qemu/linuxboot_dma.bin"


@dataclass
class LaptopImage:
    """Host paths of what the laptop boots, and of the test guest."""
    kernel: Path
    initrd: Path
    rootfs: Path
    kernel_version: str
    guest_kernel: Path
    guest_initrd: Path
    build_seconds: float
    rebuilt: list
    desktop_kernel: Path = None
    desktop_initrd: Path = None


def default_build_dir():
    return Path(os.environ.get("HV_BUILD_DIR") or REPO / "build")


def meson_install(build_dir, dest):
    """`meson install --destdir dest` (it builds what is out of date first).

    An unconfigured build folder is an error: the image needs our agent.
    """
    build_dir = Path(build_dir)
    if not (build_dir / "build.ninja").exists():
        raise BuildError(f"{build_dir} is not a configured meson build folder: run "
                         f"'meson setup {build_dir} && ninja -C {build_dir}' "
                         f"(or set HV_BUILD_DIR)")
    run(["meson", "install", "-C", str(build_dir), "--destdir", str(dest), "--quiet"])


def seabios_deb():
    """Debian's seabios package, fetched once into the cache."""
    return imagelib.fetch_deb("seabios", imagelib.candidate_version("seabios"))


def add_seabios(layer, deb):
    """The BIOS images out of the seabios package, without installing it."""
    with tempfile.TemporaryDirectory(prefix="hv-seabios.") as tmp:
        imagelib.run(["dpkg-deb", "-x", str(deb), tmp])
        dest = layer / SEABIOS_DIR_IN_LAPTOP.lstrip("/")
        dest.mkdir(parents=True, exist_ok=True)
        for name in SEABIOS_IMAGES:
            src = Path(tmp) / SEABIOS_DIR_IN_LAPTOP.lstrip("/") / name
            if not src.is_file():
                raise BuildError(f"{deb.name} has no {SEABIOS_DIR_IN_LAPTOP}/{name}")
            shutil.copy2(src, dest / name)


def qemu_data_deb():
    """Debian's qemu-system-data package, fetched once into the cache."""
    return imagelib.fetch_deb("qemu-system-data", imagelib.candidate_version("qemu-system-data"))


def add_linuxboot_rom(layer, deb):
    """linuxboot_dma.bin out of qemu-system-data, without installing the package."""
    with tempfile.TemporaryDirectory(prefix="hv-qemu-data.") as tmp:
        imagelib.run(["dpkg-deb", "-x", str(deb), tmp])
        src = Path(tmp) / LINUXBOOT_ROM_IN_LAPTOP.lstrip("/")
        if not src.is_file():
            raise BuildError(f"{deb.name} has no {LINUXBOOT_ROM_IN_LAPTOP}")
        dest = layer / LINUXBOOT_ROM_IN_LAPTOP.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


def layer_tree(install_tree, guest, dest, desktop=None):
    """The files copied over the read-only root at boot."""
    layer = dest / "layer"
    shutil.copytree(install_tree, layer, symlinks=True, dirs_exist_ok=True)
    etc = layer / "etc" / "hv-laptop"
    etc.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BOOT / "inittab", layer / "etc" / "inittab")
    shutil.copy2(BOOT / "rc", etc / "rc")
    shutil.copy2(BOOT / "agent", etc / "agent")
    shutil.copy2(BOOT / "boot-modules", etc / "boot-modules")
    (layer / "etc" / "modprobe.d").mkdir(exist_ok=True)
    shutil.copy2(BOOT / "modprobe.conf", layer / "etc" / "modprobe.d" / "hv-laptop.conf")
    gdir = layer / GUEST_DIR_IN_LAPTOP.lstrip("/")
    gdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(guest / "vmlinuz", gdir / "vmlinuz")
    shutil.copy2(guest / "initrd.img", gdir / "initrd.img")
    if desktop:
        ddir = layer / DESKTOP_GUEST_DIR_IN_LAPTOP.lstrip("/")
        ddir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(desktop / "vmlinuz", ddir / "vmlinuz")
        shutil.copy2(desktop / "initrd.img", ddir / "initrd.img")
    add_seabios(layer, seabios_deb())
    add_linuxboot_rom(layer, qemu_data_deb())
    shutil.copy2(BOOT / "stage1-init", dest / "init")


def build_layer(base, guest, install_tree, out, desktop=None):
    root = out / "root"
    root.mkdir()
    layer_tree(install_tree, guest, root, desktop)
    imagelib.make_cpio(root, out / "layer.cpio")
    imagelib.concat([base / "initramfs-base.cpio", out / "layer.cpio"], out / "initrd.img")
    (out / "layer.cpio").unlink()
    shutil.rmtree(root)


def layer_key(base, guest, install_tree, desktop=None):
    h = imagelib.Hasher("laptop-layer")
    h.text("base", base.name).text("guest", guest.name).text("seabios", seabios_deb().name)
    h.text("qemu-system-data", qemu_data_deb().name)
    if desktop:
        h.text("desktop-guest", desktop.name)
    h.tree(install_tree).tree(BOOT).file(Path(__file__))
    return h


def ensure_image(build_dir=None):
    """Builds what is missing and returns a LaptopImage. Holds the cache lock."""
    start = time.monotonic()
    build_dir = Path(build_dir) if build_dir else default_build_dir()
    with tempfile.TemporaryDirectory(prefix="hv-install.") as tmp:
        install_tree = Path(tmp) / "tree"
        install_tree.mkdir()
        meson_install(build_dir, install_tree)
        with imagelib.cache_lock():
            base, base_built = imagebase.ensure()
            guest, guest_built = build_guest.ensure()
            desktop, desktop_built = build_guest.ensure_desktop()
            layer, built = imagelib.cached(
                "laptop-layer", layer_key(base, guest, install_tree, desktop),
                lambda out: build_layer(base, guest, install_tree, out, desktop))
            rebuilt = [name for name, b in (("base", base_built), ("guest", guest_built),
                                            ("desktop guest", desktop_built),
                                            ("layer", built)) if b]
            imagelib.prune_stale(keep={base, guest, desktop, layer})
    return LaptopImage(
        kernel=base / "vmlinux" if (base / "vmlinux").exists() else base / "vmlinuz",
        initrd=layer / "initrd.img",
        rootfs=base / "rootfs.ext4",
        kernel_version=(base / "kernel-version").read_text().strip(),
        guest_kernel=guest / "vmlinuz",
        guest_initrd=guest / "initrd.img",
        desktop_kernel=desktop / "vmlinuz",
        desktop_initrd=desktop / "initrd.img",
        build_seconds=time.monotonic() - start,
        rebuilt=rebuilt,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", help="meson build folder (default $HV_BUILD_DIR or build)")
    args = ap.parse_args()
    try:
        img = ensure_image(args.build_dir)
    except BuildError as e:
        print(f"build_image: {e}", file=sys.stderr)
        return 1
    print(f"kernel:       {img.kernel} ({img.kernel_version})")
    print(f"initrd:       {img.initrd}")
    print(f"rootfs:       {img.rootfs}")
    print(f"guest kernel: {img.guest_kernel}")
    print(f"guest initrd: {img.guest_initrd}")
    print(f"desktop guest: {img.desktop_kernel} {img.desktop_initrd}")
    print(f"vlaptop: image ready in {img.build_seconds:.1f} s "
          f"(rebuilt: {', '.join(img.rebuilt) or 'nothing'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
