# SPDX-License-Identifier: GPL-2.0-or-later
"""A real guest's virtio-gpu picture on the virtual laptop's panel (issue 5).

hv-switch runs on the laptop's panel (SDL2 on KMSDRM); hv-vmm runs the test
guest with --display; the guest loads virtio-gpu and paints its colour into
/dev/fb0 (DRM fbdev emulation), which reaches hv-switch as SCANOUT + DAMAGE
and the panel, checked with QMP screendump.

Run alone:  /usr/bin/python3 -m pytest tests/switch/test_vm_display.py -v
Every missing piece is checked, not assumed, and skips with the reason:
hv-vmm or hv-switch not in the laptop, hv-vmm without --display or unable
to boot the test guest, the test guest without the virtio_gpu module.
"""

import io
import time

import pytest

pytestmark = pytest.mark.vlaptop

PREFIX = "/usr/local"
VMM = f"{PREFIX}/bin/hv-vmm"
GUEST = "/var/lib/hv/test-guest"
SOCK = "/run/hv/switch.sock"
COLOUR = (0x20, 0xB0, 0x40)

# Runs in the guest (busybox): load virtio-gpu, paint fb0, keep the picture up.
PAINT = r"""#!/bin/sh
modprobe virtio_gpu 2>/dev/null || insmod /lib/hv-modules/virtio-gpu.ko 2>/dev/null
for i in $(seq 50); do [ -e /dev/fb0 ] && break; sleep 0.2; done
if [ ! -e /dev/fb0 ]; then echo "hv-guest: no fb0"; exit 1; fi
echo "hv-guest: fb0 $(cat /sys/class/graphics/fb0/virtual_size)"
printf '\x%02x\x%02x\x%02x\x00' > /tmp/px
for i in $(seq 21); do cat /tmp/px /tmp/px > /tmp/px2 && mv /tmp/px2 /tmp/px; done
for i in $(seq 30); do dd if=/tmp/px of=/dev/fb0 bs=65536 2>/dev/null; sleep 1; done
exit 0
""" % (COLOUR[2], COLOUR[1], COLOUR[0])


def newc_cpio(files):
    """A newc cpio archive of {path: (mode, bytes)}, to append to an initrd."""
    out = io.BytesIO()

    def entry(name, mode, data):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        out.write(hdr.encode() + name_b)
        out.write(b"\0" * (-(110 + len(name_b)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))

    for name, (mode, data) in files.items():
        entry(name, mode, data)
    entry("TRAILER!!!", 0, b"")
    return out.getvalue()


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def display_laptop(laptop):
    if laptop.run(f"test -x {VMM}").rc != 0:
        pytest.skip(f"hv-vmm is not in the laptop image ({VMM})")
    switch = laptop.run("command -v hv-switch").stdout.strip()
    if not switch:
        pytest.skip("hv-switch is not in the laptop image")
    if "--display" not in laptop.run(f"{VMM} --help 2>&1").stdout:
        pytest.skip("this hv-vmm has no --display (virtio-gpu not built in)")
    laptop.check("modprobe kvm_amd")
    probe = laptop.run(
        f"timeout 90 {VMM} --kernel {GUEST}/vmlinuz --initrd {GUEST}/initrd.img "
        f"--memory 256M --console file:/tmp/probe.log --name probe 2>/tmp/probe.err & pid=$!; "
        f"for i in $(seq 90); do grep -q 'hv-guest: hello' /tmp/probe.log 2>/dev/null && break; "
        f"sleep 1; done; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; "
        f"grep -c 'hv-guest: hello' /tmp/probe.log", timeout=120)
    if "1" not in probe.stdout:
        pytest.skip("hv-vmm cannot boot the test guest to userspace in the laptop yet "
                    f"(hv-vmm said: {laptop.run('tail -c 300 /tmp/probe.err').stdout!r})")
    laptop.put(newc_cpio({"test.sh": (0o100755, PAINT.encode())}), "/tmp/paint.cpio")
    laptop.check(f"cat {GUEST}/initrd.img /tmp/paint.cpio > /tmp/paint-initrd.img")
    laptop.check(f"mkdir -p /run/hv && SDL_VIDEODRIVER=kmsdrm setsid {switch} --socket {SOCK} "
                 f"</dev/null >/tmp/switch.log 2>&1 &")
    wait_for(lambda: laptop.run(f"test -S {SOCK}").rc == 0, 30, "hv-switch's socket")
    yield laptop
    laptop.run("pkill -x hv-vmm; pkill -x hv-switch", timeout=30)


def test_guest_paints_its_colour_on_the_panel(display_laptop):
    laptop = display_laptop
    laptop.check(f"setsid {VMM} --kernel {GUEST}/vmlinuz --initrd /tmp/paint-initrd.img "
                 f"--memory 256M --console file:/tmp/paint.log --name green "
                 f"--display {SOCK},name=green,colour=20b040,slot=1 "
                 f"</dev/null >/tmp/vmm.log 2>&1 &")
    wait_for(lambda: "hv-guest:" in laptop.run("cat /tmp/paint.log").stdout, 120,
             "the guest to start")
    wait_for(lambda: "hv-guest: fb0" in laptop.run("cat /tmp/paint.log").stdout
             or "no fb0" in laptop.run("cat /tmp/paint.log").stdout, 60, "the guest's fb0")
    if "no fb0" in laptop.run("cat /tmp/paint.log").stdout:
        pytest.skip("the test guest has no virtio_gpu module (add virtio-gpu and its DRM "
                    "dependencies to tests/guest/guest-modules.txt)")

    def painted():
        shot = laptop.screendump()
        return shot.count(COLOUR) > 0.3 * shot.width * shot.height

    wait_for(painted, 60, "the guest's colour on the panel "
             f"(hv-switch: {laptop.run('tail -5 /tmp/switch.log').stdout!r}, "
             f"hv-vmm: {laptop.run('tail -5 /tmp/vmm.log').stdout!r})")
    assert "error" not in laptop.run("cat /tmp/vmm.log").stdout.lower()
