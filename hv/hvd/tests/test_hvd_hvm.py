#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Firmware VMs and the display adapter through hvd (issue 14; docs/hvd.md),
against a fake hv-vmm whose command line is what hv-vmm would get.

Checked: firmware=bios boots hv-vmm with --firmware and hvd's BIOS image and
no --kernel; a definition needs kernel= or firmware=, not both, and no
initrd=/cmdline= with firmware; gpu=bochs (and os=windows without gpu=)
gives --display ...,gpu=bochs, os=linux keeps virtio-gpu; a bad choice is
refused with a sentence; a BIOS image that is missing stops the start with
a sentence naming it; gpu and firmware cannot change while the VM is saved.

usage: test_hvd_hvm.py HVD FAKE_VMM HVCTL   (meson test, suite unit)
"""
import os
import sys

from hvdclient import Checks, Client, run_hvd_test, start_argv

HVD, FAKE_VMM, HVCTL = sys.argv[1:4]
check = Checks()


def start(c, name):
    """Starts the VM; returns hv-vmm's command line (or the error reply); destroys it."""
    return start_argv(c, name, FAKE_VMM)


def value(argv, option):
    return argv[argv.index(option) + 1] if isinstance(argv, list) and option in argv else None


def error(r):
    return r.get("error", {}).get("message", "")


def hvm_test(top, sock, proc):
    bios, kernel, disk = (os.path.join(top, n) for n in ("bios.bin", "vmlinuz", "disk.img"))
    for path, size in ((bios, 128 << 10), (kernel, 4096), (disk, 1 << 20)):
        with open(path, "wb") as f:
            f.truncate(size)
    c = Client(sock)
    r = c.call("vm.define", text=f"[vm]\nname=pc\nfirmware=bios\ndisk={disk},format=raw\n")
    check("result" in r, f"a firmware=bios VM without kernel= is defined ({r})")
    check(r.get("result", {}).get("definition", {}).get("firmware") == "bios",
          "its definition says firmware=bios")
    argv = start(c, "pc")
    check(value(argv, "--firmware") == bios and "--kernel" not in argv,
          f"hv-vmm boots hvd's BIOS image, no kernel ({argv})")
    check(value(argv, "--disk") == f"{disk},format=raw", "with the VM's disk")
    check("gpu=bochs" not in (value(argv, "--display") or ""),
          "os=linux keeps virtio-gpu")

    for text, why in (
            (f"firmware=bios\nkernel={kernel}\n", "field 'firmware': a VM boots its kernel= "
                                                  "or its firmware, not both"),
            ("firmware=uefi\n", "field 'firmware'"),
            ("firmware=bios\ncmdline=quiet\n", "field 'cmdline': only with kernel="),
            ("disk=x.img\n", "field 'kernel': missing"),
            (f"kernel={kernel}\ngpu=cirrus\n", "field 'gpu'")):
        r = c.call("vm.define", text=f"[vm]\nname=bad\n{text}")
        check(why in error(r), f"{text.strip()!r} refused: {error(r)!r}")

    c.call("vm.define", text=f"[vm]\nname=win\nos=windows\nfirmware=bios\n")
    got = c.call("vm.get", name="win").get("result", {}).get("definition", {})
    check(got.get("gpu") == "bochs", f"os=windows without gpu= gets gpu=bochs ({got})")
    argv = start(c, "win")
    check(",gpu=bochs" in (value(argv, "--display") or ""),
          f"and hv-vmm gets --display ...,gpu=bochs ({value(argv, '--display')})")
    c.call("vm.define", text=f"[vm]\nname=lin\nkernel={kernel}\ngpu=bochs\n")
    argv = start(c, "lin")
    check("gpu=bochs" in (value(argv, "--display") or ""), "gpu=bochs given by the user")

    # Saved: neither the adapter nor the firmware may change.
    c.call("vm.start", name="lin")
    c.call("vm.save", name="lin")
    r = c.call("vm.define", text=f"[vm]\nname=lin\nkernel={kernel}\ngpu=virtio\n",
               replace=True)
    check(r.get("error", {}).get("code") == "bad-state" and "'gpu'" in error(r),
          f"gpu cannot change while saved ({error(r)!r})")
    c.call("vm.discard", name="lin")

    os.unlink(bios)
    r = c.call("vm.start", name="pc")
    check(r.get("error", {}).get("code") == "bad-params" and bios in error(r) and
          "seabios" in error(r), f"a missing BIOS image stops the start ({error(r)!r})")
    c.close()


def main():
    return run_hvd_test(hvm_test, HVD, FAKE_VMM, check,
                        args=lambda top: ["--bios", os.path.join(top, "bios.bin")],
                        prefix="hvd-hvm-")


if __name__ == "__main__":
    sys.exit(main())
