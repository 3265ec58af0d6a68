#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Stable PCI slots through hvd (issue 13; docs/hvd.md, "PCI layout"),
against a fake hv-vmm that places devices as hv-vmm does and answers the
control socket's "devices".

Checked: after a VM's first start its definition holds where each device
went (disks as disk:PATH); a disk added in front of the others takes a free
slot and the others keep theirs (--pci-slot on hv-vmm's command line, the
disks' new virtio-blk numbers); a disk taken out leaves the rest in place; a
replace that gives no pci_slots keeps hvd's record; a layout given by the
user is used; bad pci_slots are refused with a sentence; the record is in
the stored definition file.

usage: test_pci_layout.py HVD FAKE_VMM HVCTL   (meson test, suite unit)
"""
import os
import sys
import time

from hvdclient import Checks, Client, run_hvd_test, start_argv

HVD, FAKE_VMM, HVCTL = sys.argv[1:4]
check = Checks()


def define(c, top, name, disks, replace=False, extra=""):
    text = (f"[vm]\nname={name}\nkernel={top}/vmlinuz\ndisplay=false\n"
            f"disk={';'.join(d + ',format=raw' for d in disks)}\n{extra}")
    return c.call("vm.define", text=text, replace=replace)


def pci_slots(c, name):
    r = c.call("vm.get", name=name)
    return sorted(r.get("result", {}).get("definition", {}).get("pci_slots", []))


def start(c, name):
    """Starts the VM; returns hv-vmm's command line once it runs."""
    return start_argv(c, name, FAKE_VMM, destroy=False)


def wait_slots(c, name, want, timeout=10):
    deadline = time.time() + timeout
    got = pci_slots(c, name)
    while got != sorted(want) and time.time() < deadline:
        time.sleep(0.1)
        got = pci_slots(c, name)
    return got


def slot_args(argv):
    return sorted(argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--pci-slot")


def layout_test(top, sock, proc):
    state = os.path.join(top, "state")
    with open(os.path.join(top, "vmlinuz"), "w") as f:
        f.write("not a kernel")
    a, b, c_img = (os.path.join(top, n) for n in ("a.img", "b.img", "c.img"))
    for path in (a, b, c_img):
        with open(path, "wb") as f:
            f.truncate(1 << 20)
    c = Client(sock)
    check("result" in define(c, top, "lay", [a, b]), "a VM with two disks is defined")
    check(pci_slots(c, "lay") == [], "a new definition has no layout yet")
    argv = start(c, "lay")
    check(slot_args(argv) == [], f"the first start gives hv-vmm no --pci-slot ({argv})")
    got = wait_slots(c, "lay", [f"disk:{a}=1", f"disk:{b}=2"])
    check(got == sorted([f"disk:{a}=1", f"disk:{b}=2"]),
          f"after it, the definition holds where hv-vmm put each disk ({got})")
    c.call("vm.destroy", name="lay")
    with open(os.path.join(state, "vms", "lay.conf")) as f:
        stored = f.read()
    check(f"pci_slots=disk:{a}=1;disk:{b}=2;" in stored, f"and it is stored ({stored})")

    # A disk in front: the others keep their slots, the new one takes a free one.
    check("result" in define(c, top, "lay", [c_img, a, b], replace=True),
          "the definition is replaced with a new disk first")
    check(pci_slots(c, "lay") == sorted([f"disk:{a}=1", f"disk:{b}=2"]),
          "a replace without pci_slots keeps hvd's record")
    argv = start(c, "lay")
    check(slot_args(argv) == ["virtio-blk1=1", "virtio-blk2=2"],
          f"hv-vmm is told the old disks' slots under their new numbers ({argv})")
    want = [f"disk:{c_img}=3", f"disk:{a}=1", f"disk:{b}=2"]
    got = wait_slots(c, "lay", want)
    check(got == sorted(want), f"the new disk's slot is recorded ({got})")
    c.call("vm.destroy", name="lay")

    # A disk taken out: the one left stays where it was.
    define(c, top, "lay", [b], replace=True)
    argv = start(c, "lay")
    check(slot_args(argv) == ["virtio-blk0=2"], f"b keeps slot 2 alone ({argv})")
    got = wait_slots(c, "lay", [f"disk:{b}=2"])
    check(got == [f"disk:{b}=2"], f"and the record forgets the disks taken out ({got})")
    c.call("vm.destroy", name="lay")

    # A layout the user gives is used as it is.
    r = define(c, top, "own", [a], extra=f"pci_slots=disk:{a}=9;virtio-net=4\n")
    check("result" in r, f"a definition with its own pci_slots is accepted ({r})")
    argv = start(c, "own")
    check(slot_args(argv) == ["virtio-blk0=9", "virtio-net=4"],
          f"and hv-vmm is given it ({argv})")
    c.call("vm.destroy", name="own")

    for bad, why in ((f"disk:{a}=0", "is not DEVICE=SLOT with a slot from 1 to 31"),
                     ("virtio-net", "is not DEVICE=SLOT"),
                     ("virtio-net=3;virtio-rng=3", "slot 3 is given twice"),
                     ("virtio-net=3;virtio-net=4", "virtio-net is listed twice")):
        r = define(c, top, "bad", [a], extra=f"pci_slots={bad}\n")
        msg = r.get("error", {}).get("message", "")
        check("field 'pci_slots'" in msg and why in msg, f"pci_slots={bad} is refused ({r})")
    c.close()


def main():
    return run_hvd_test(layout_test, HVD, FAKE_VMM, check, prefix="hvd-layout-")


if __name__ == "__main__":
    sys.exit(main())
