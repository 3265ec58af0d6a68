# SPDX-License-Identifier: GPL-2.0-or-later
"""The virtual laptop itself: what later end-to-end tests rely on.

Run alone:  /usr/bin/python3 -m pytest tests/vlaptop/test_laptop.py -v
"""

import hashlib
import os
import subprocess
import time

import pytest

import vlaptop

pytestmark = pytest.mark.vlaptop


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_laptop_boots_the_image_kernel_with_the_iommu_on(laptop, laptop_image):
    assert laptop.check("uname -r").stdout.strip() == laptop_image.kernel_version
    assert laptop.check("hostname").stdout.strip() == "vlaptop"
    assert "intel_iommu=on" in laptop.get("/proc/cmdline").decode()
    assert "vlaptop: userspace up" in laptop.console_text()
    # The emulated VT-d is there and has put devices in IOMMU groups.
    groups = laptop.check("ls /sys/kernel/iommu_groups").stdout.split()
    assert len(groups) > 3


def test_commands_report_status_output_and_stdin(laptop):
    res = laptop.run("echo out; echo err >&2; exit 3")
    assert (res.rc, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert laptop.run("tr a-z A-Z", stdin="hello").stdout == "HELLO"
    assert laptop.run("kill -9 $$").rc == -9
    with pytest.raises(vlaptop.CommandFailed, match="no-such-command"):
        laptop.check("no-such-command")


def test_a_command_that_hangs_is_killed_at_its_timeout(laptop):
    t0 = time.monotonic()
    res = laptop.run("echo started; sleep 600", timeout=2)
    assert res.timed_out and res.rc == -9
    assert res.stdout == "started\n"
    assert time.monotonic() - t0 < 15
    assert laptop.ping()  # the channel still works


def test_files_go_in_and_out_byte_for_byte(laptop, tmp_path):
    data = os.urandom(3 << 20) + bytes(range(256))
    laptop.put(data, "/root/in/blob.bin")
    assert laptop.check("sha256sum /root/in/blob.bin").stdout.split()[0] == sha256(data)
    assert laptop.get("/root/in/blob.bin") == data
    local = tmp_path / "script.sh"
    local.write_text("#!/bin/sh\necho from a file\n")
    laptop.put(local, "/usr/local/bin/from-file", mode=0o755)
    assert laptop.check("from-file").stdout == "from a file\n"
    with pytest.raises(vlaptop.LaptopError, match="No such file"):
        laptop.get("/no/such/file")


def test_a_real_guest_runs_on_the_laptops_kvm(laptop):
    laptop.check("modprobe kvm_amd")
    assert laptop.run("test -c /dev/kvm").rc == 0
    res = laptop.check("kvm-smoke", timeout=60)
    assert "hello from kvm" in res.stdout
    assert "halted" in res.stderr


def test_test_guest_is_in_the_laptop(laptop, laptop_image):
    for host, inside in ((laptop_image.guest_kernel, laptop.guest_kernel),
                         (laptop_image.guest_initrd, laptop.guest_initrd)):
        want = sha256(host.read_bytes())
        assert laptop.check(f"sha256sum {inside}").stdout.split()[0] == want


def pci_address(laptop, vendor_device):
    out = laptop.check(f"lspci -D -n -d {vendor_device}").stdout.split()
    assert out, f"no PCI device {vendor_device} in the laptop"
    return out[0]


def test_e1000e_binds_to_vfio_pci_and_gets_a_vfio_group(laptop):
    addr = pci_address(laptop, "8086:10d3")  # QEMU's e1000e (82574L)
    dev = f"/sys/bus/pci/devices/{addr}"
    laptop.check("modprobe vfio_pci && modprobe vfio_iommu_type1")
    laptop.check(f"echo vfio-pci > {dev}/driver_override")
    laptop.check(f"if [ -e {dev}/driver ]; then echo {addr} > {dev}/driver/unbind; fi")
    laptop.check(f"echo {addr} > /sys/bus/pci/drivers_probe")
    driver = laptop.check(f"basename $(readlink {dev}/driver)").stdout.strip()
    assert driver == "vfio-pci"
    group = laptop.check(f"basename $(readlink {dev}/iommu_group)").stdout.strip()
    assert laptop.run(f"test -c /dev/vfio/{group}").rc == 0


def make_ext4_image(path, files):
    """An ext4 image holding files (name -> bytes), made on the host."""
    tree = path.parent / (path.name + ".d")
    tree.mkdir()
    for name, data in files.items():
        (tree / name).write_bytes(data)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "HVSTICK", "-d", str(tree),
                    str(path), "16M"], check=True)


def usb_disks(laptop):
    out = laptop.check("ls /dev/disk/by-id/ 2>/dev/null | grep '^usb-' || true").stdout
    return [line for line in out.split() if "-part" not in line]


def test_usb_stick_hotplug_shows_its_file_and_goes_away(laptop, tmp_path):
    payload = os.urandom(200 << 10)
    image = tmp_path / "stick.img"
    make_ext4_image(image, {"hello.bin": payload})
    assert usb_disks(laptop) == []

    laptop.usb_add("stick0", image)
    try:
        laptop.check("for i in $(seq 100); do ls /dev/disk/by-id/usb-* >/dev/null 2>&1 "
                     "&& break; sleep 0.2; done; udevadm settle", timeout=60)
        disks = usb_disks(laptop)
        assert len(disks) == 1, disks
        dev = f"/dev/disk/by-id/{disks[0]}"
        laptop.check(f"mkdir -p /mnt/stick && mount -o ro {dev} /mnt/stick")
        got = laptop.check("sha256sum /mnt/stick/hello.bin").stdout.split()[0]
        assert got == sha256(payload)
        laptop.check("umount /mnt/stick")
    finally:
        laptop.usb_del("stick0")
    laptop.check("for i in $(seq 50); do ls /dev/disk/by-id/usb-* >/dev/null 2>&1 "
                 "|| break; sleep 0.2; done", timeout=30)
    assert usb_disks(laptop) == []


def panel_fb(laptop):
    """(device, width, height, stride) of the panel's (virtio-gpu) framebuffer."""
    for fb in laptop.check("ls /sys/class/graphics").stdout.split():
        if not fb.startswith("fb"):
            continue
        name = laptop.check(f"cat /sys/class/graphics/{fb}/name").stdout
        if "virtio" in name:
            width, height = map(int, laptop.check(
                f"cat /sys/class/graphics/{fb}/virtual_size").stdout.strip().split(","))
            stride = int(laptop.check(f"cat /sys/class/graphics/{fb}/stride").stdout)
            bpp = int(laptop.check(f"cat /sys/class/graphics/{fb}/bits_per_pixel").stdout)
            assert bpp == 32
            return f"/dev/{fb}", width, height, stride
    pytest.fail("no virtio-gpu framebuffer in the laptop")


def test_screendump_shows_what_is_drawn_on_the_panel(laptop, tmp_path):
    dev, width, height, stride = panel_fb(laptop)
    # Orange (r=255, g=128, b=0) in XRGB8888 is bytes B, G, R, X.
    laptop.check("echo 0 > /sys/class/graphics/fbcon/cursor_blink || true")
    laptop.put(b"\x00\x80\xff\x00" * (stride // 4) * height, dev)
    deadline = time.monotonic() + 20
    while True:
        screen = laptop.screendump(tmp_path / "panel.png")
        orange = screen.count((255, 128, 0))
        if orange > 0.95 * width * height or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (screen.width, screen.height) == (width, height)
    assert orange > 0.95 * width * height, f"only {orange} orange pixels"
    assert screen.pixel(width // 2, height // 2) == (255, 128, 0)


def test_keys_sent_through_qmp_reach_the_laptops_keyboard(laptop):
    laptop.check("modprobe evdev")
    event = laptop.check(
        "grep -A5 'AT Translated Set 2 keyboard' /proc/bus/input/devices "
        "| grep -o 'event[0-9]*'").stdout.strip()
    laptop.check(f"rm -f /tmp/keys; (timeout 20 cat /dev/input/{event} > /tmp/keys &)")
    time.sleep(1)
    laptop.send_key("a")
    laptop.send_key("shift", "b")
    # struct input_event on x86_64: 16 bytes time, u16 type, u16 code, s32 value
    deadline = time.monotonic() + 15
    codes = set()
    while time.monotonic() < deadline and not {30, 42, 48} <= codes:
        raw = laptop.get("/tmp/keys")
        codes = {int.from_bytes(raw[i + 18:i + 20], "little")
                 for i in range(0, len(raw) - 23, 24)
                 if int.from_bytes(raw[i + 16:i + 18], "little") == 1}
        time.sleep(0.5)
    assert 30 in codes  # KEY_A
    assert 42 in codes and 48 in codes  # KEY_LEFTSHIFT + KEY_B


def test_tablet_moves_reach_the_laptop(laptop):
    event = laptop.check(
        "grep -A5 'QEMU USB Tablet' /proc/bus/input/devices "
        "| grep -o 'event[0-9]*'").stdout.strip()
    laptop.check(f"rm -f /tmp/abs; (timeout 20 cat /dev/input/{event} > /tmp/abs &)")
    time.sleep(1)
    laptop.mouse_move(16384, 8192)
    laptop.mouse_click("left")
    deadline = time.monotonic() + 15
    seen = set()
    while time.monotonic() < deadline and not {(3, 0), (3, 1), (1, 272)} <= seen:
        raw = laptop.get("/tmp/abs")
        seen = {(int.from_bytes(raw[i + 16:i + 18], "little"),
                 int.from_bytes(raw[i + 18:i + 20], "little"))
                for i in range(0, len(raw) - 23, 24)}
        time.sleep(0.5)
    assert (3, 0) in seen and (3, 1) in seen  # ABS_X, ABS_Y
    assert (1, 272) in seen                   # BTN_LEFT
