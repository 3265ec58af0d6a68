# SPDX-License-Identifier: GPL-2.0-or-later
"""The test guest boots and says hello (here under TCG on the host's QEMU,
so it is checked without the laptop; hv boots the same files in it)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_guest  # noqa: E402
import imagelib  # noqa: E402


@pytest.fixture(scope="module")
def guest():
    with imagelib.cache_lock():
        path, _ = build_guest.ensure()
    return path


def boot(guest, tmp_path, cmdline, timeout=90):
    """Boots the guest on QEMU TCG with the virtio devices hv gives; returns
    its console text once QEMU exits (the guest powers off after a test)."""
    console = tmp_path / "console.log"
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-cpu", "max",
           "-m", "512M", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
           "-no-reboot", "-kernel", str(guest / "vmlinuz"), "-initrd", str(guest / "initrd.img"),
           "-append", f"console=ttyS0 panic=-1 {cmdline}",
           "-chardev", f"file,id=con,path={console}", "-serial", "chardev:con",
           "-device", "virtio-rng-pci", "-device", "virtio-balloon-pci",
           "-device", "virtio-serial-pci", "-netdev", "user,id=n0,restrict=on",
           "-device", "virtio-net-pci,netdev=n0"]
    t0 = time.monotonic()
    try:
        subprocess.run(cmd, timeout=timeout, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the guest did not power off within {timeout} s:\n"
                    f"{console.read_text(errors='replace')[-3000:]}")
    return console.read_text(errors="replace"), time.monotonic() - t0


def test_guest_says_hello_and_runs_a_named_test(guest, tmp_path):
    text, secs = boot(guest, tmp_path, "hv.test=devices")
    assert build_guest.HELLO in text
    assert "hv-guest: test devices exit 0" in text
    assert "hv-guest: net eth0" in text or "eth0" in text  # virtio_net bound
    # virtio ids: 1 net, 4 rng, 5 balloon, 3 console
    for dev_id in ("0x0001", "0x0004", "0x0005", "0x0003"):
        assert f"device {dev_id}" in text, text[-2000:]


def test_guest_reports_an_unknown_test(guest, tmp_path):
    text, _ = boot(guest, tmp_path, "hv.test=no-such-test")
    assert "hv-guest: no such test: no-such-test" in text
    assert "hv-guest: test no-such-test exit 127" in text
