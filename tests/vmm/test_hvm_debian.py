# SPDX-License-Identifier: GPL-2.0-or-later
"""An unmodified Debian boots through SeaBIOS on hv-vmm (issue 14).

The disk is an installed Debian 12 on a BIOS GRUB disk (tests/vlaptop/
hvm_debian.py: Debian's kernel, initramfs, systemd and GRUB; nothing of hv).
The laptop gets it as a second disk (QEMU snapshot=on: the guest's writes
go to a temporary overlay, the cached image stays as built), and hv-vmm
gives that block device to the VM as its virtio disk. What a person at the
VM's serial console sees, in order: SeaBIOS booting the hard disk, GRUB's
menu, Debian's kernel and initramfs, systemd, and a login prompt.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_hvm_debian.py -v
"""

import pytest

import hvm_debian
from test_firmware import BIOS, VMM, FirmwareVM, screen

pytestmark = pytest.mark.vlaptop

SERIAL = "hvm-debian"  # the laptop's virtio disk serial: /sys/block/vdX/serial


@pytest.fixture(scope="module")
def laptop_options():
    disk = hvm_debian.ensure() / "disk.img"
    return {"extra_args": ["-drive", f"if=none,id=hvmdeb,file={disk},format=raw,snapshot=on",
                           "-device", f"virtio-blk-pci,drive=hvmdeb,serial={SERIAL}"]}


@pytest.fixture(scope="module")
def debian_disk(laptop):
    for path in (VMM, BIOS):
        if laptop.run(f"test -f {path}").rc != 0:
            pytest.fail(f"{path} is not in the laptop image")
    laptop.prepare(lambda lt: lt.check("modprobe kvm_amd"))
    dev = laptop.check(f"for d in /sys/block/vd*; do [ \"$(cat $d/serial 2>/dev/null)\" = "
                       f"{SERIAL} ] && echo /dev/${{d##*/}}; done").stdout.strip()
    if not dev:
        pytest.fail(f"the laptop has no disk with serial {SERIAL}")
    return dev


def test_installed_debian_boots_through_seabios_to_a_login_prompt(laptop, debian_disk, timed):
    vm = FirmwareVM(laptop, f"--firmware {BIOS} --memory 1G --cpus 2 "
                            f"--disk {debian_disk},format=raw", "hvmdeb")
    try:
        with timed("SeaBIOS to GRUB's menu"):
            menu = vm.wait_console("Debian GNU/Linux", timeout=180, on_screen=True)
        assert "GNU GRUB" in menu, menu
        with timed("GRUB to the login prompt"):
            console = vm.wait_console("login:", timeout=900)
        # In order: the firmware, the boot loader, the kernel, the init system.
        marks = ["SeaBIOS (version", "Booting from Hard Disk", "Loading Linux",
                 "Linux version 6.1", "systemd", "Debian GNU/Linux 12", "login:"]
        where = [console.find(m) for m in marks]
        assert all(w >= 0 for w in where), list(zip(marks, where))
        assert where == sorted(where), list(zip(marks, where))
        # The kernel came from the disk (Debian's), not from hv: its command line is GRUB's.
        assert "root=/dev/vda1 ro console=ttyS0,115200" in console, console[-3000:]
        assert "hv-hvm login:" in console, console[-2000:]
        assert vm.running()
    finally:
        vm.stop()
        print("\n".join(screen(vm.read(vm.console))[-10:]))
