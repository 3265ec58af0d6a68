#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The UIVM image for tests: the base cached like the laptop's, hv-manager added per run.

    /usr/bin/python3 tests/uivm/uivm_image.py [OUT]   builds it, prints the folder

uivm/image/build-uivm.sh does the work in its two stages: the base (Debian,
cage, the kiosk service: ~2 min with mmdebstrap) is cached as
~/.cache/hv/uivm-base-KEY, keyed on the script and the kernel it will get;
hv-manager from HV_BUILD_DIR (default build/) is then written into a copy of
the base's root file system in a folder of the caller's (seconds). Each
build tree's hv-manager differs (paths, build ids), so only the base is
shared between them.
"""

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "vlaptop"))

import imagelib  # noqa: E402
from build_image import default_build_dir  # noqa: E402

SCRIPT = REPO / "uivm" / "image" / "build-uivm.sh"


def manager_binary():
    path = default_build_dir() / "uivm" / "manager" / "hv-manager"
    if not path.is_file():
        raise imagelib.BuildError(f"hv-manager is not built: {path} is missing "
                                  f"(ninja -C {default_build_dir()})")
    return path


def base_key():
    h = imagelib.Hasher("uivm-base")
    h.file(SCRIPT)
    h.text("kernel", imagelib.kernel_key("linux-image-amd64"))
    return h


def ensure_base():
    """(cache folder of the UIVM base, built now?)."""
    with imagelib.cache_lock():
        return imagelib.cached(
            "uivm-base", base_key(),
            lambda out: imagelib.run(["sh", str(SCRIPT), "--base-only", "--out", str(out)],
                                     timeout=1800))


def make_uivm(out):
    """Builds the UIVM into out (vmlinuz, initrd.img, rootfs.ext4, cmdline);
    returns (out, whether the base was built now)."""
    base, built = ensure_base()
    imagelib.run(["sh", str(SCRIPT), "--base", str(base), "--manager", str(manager_binary()),
                  "--out", str(out)], timeout=600)
    return Path(out), built


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="hv-uivm."))
    print(make_uivm(out)[0])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
