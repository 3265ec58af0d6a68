# SPDX-License-Identifier: GPL-2.0-or-later
"""The laptop's panel for display tests: hv-switch on KMS, and VMs shown on it
(tests/switch/test_vm_display.py, tests/vmm/test_bochs_display.py,
tests/vmm/test_ps2.py)."""

from vlaptop import wait_for

VMM = "/usr/local/bin/hv-vmm"
SOCK = "/run/hv/switch.sock"


def start_switch(lt):
    """KVM and virtio-gpu loaded, hv-switch on the laptop's panel (log /tmp/switch.log)."""
    lt.check("modprobe kvm_amd && modprobe virtio_gpu && test -e /dev/dri/card0")
    lt.check(f"mkdir -p /run/hv && SDL_VIDEODRIVER=kmsdrm setsid hv-switch --socket {SOCK} "
             f"</dev/null >/tmp/switch.log 2>&1 &")
    wait_for(lambda: lt.run(f"test -S {SOCK}").rc == 0, 30, "hv-switch's socket")


def start_vm(lt, name, kernel, initrd, cmdline, display, extra=""):
    """hv-vmm NAME in the background on hv-switch (--display SOCK,name=NAME,DISPLAY):
    console /tmp/NAME.con, hv-vmm's output /tmp/NAME.vmm, pid /tmp/NAME.pid."""
    lt.check(
        f"setsid {VMM} --name {name} --kernel {kernel} --initrd {initrd} --memory 256M "
        f"--cmdline 'console=ttyS0 panic=-1 {cmdline}' --console file:/tmp/{name}.con "
        f"--display {SOCK},name={name}{',' + display if display else ''} {extra} "
        f"</dev/null >>/tmp/{name}.vmm 2>&1 & echo $! > /tmp/{name}.pid")
