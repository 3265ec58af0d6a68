# SPDX-License-Identifier: GPL-2.0-or-later
"""Bad inputs to the harness give a clear error within a bounded time."""

import time

import pytest

import vlaptop

pytestmark = pytest.mark.vlaptop


def start_error(**kw):
    """Starts a laptop that must fail; returns (message, seconds taken)."""
    t0 = time.monotonic()
    lt = vlaptop.Laptop(**kw)
    with pytest.raises(vlaptop.LaptopError) as err:
        try:
            lt.start()
        finally:
            lt.stop()
    assert lt.proc is None or lt.proc.poll() is not None, "QEMU left running"
    return str(err.value), time.monotonic() - t0


def test_missing_kernel_is_reported_at_once(laptop_image, tmp_path):
    msg, secs = start_error(image=laptop_image, kernel=tmp_path / "no-vmlinuz")
    assert "kernel is missing" in msg and "no-vmlinuz" in msg
    assert secs < 2


def test_missing_qemu_is_reported_at_once(laptop_image):
    msg, secs = start_error(image=laptop_image, qemu="/nonexistent/qemu-system-x86_64")
    assert "QEMU not found" in msg
    assert secs < 2


def test_qemu_that_refuses_its_arguments_is_reported_with_its_message(laptop_image):
    msg, secs = start_error(image=laptop_image, extra_args=["-device", "no-such-device"])
    assert "QEMU exited at start" in msg
    assert "no-such-device" in msg  # QEMU's own words are in the error
    assert secs < 20


def test_a_kernel_panic_at_boot_is_reported_with_the_console(laptop_image):
    msg, secs = start_error(image=laptop_image, extra_cmdline="rdinit=/bin/false",
                            boot_timeout=120)
    assert "QEMU exited before its shell came up" in msg
    assert "Kernel panic" in msg
    assert secs < 120


def test_a_laptop_that_never_reaches_its_shell_times_out(laptop_image):
    msg, secs = start_error(image=laptop_image, extra_cmdline="hv.noagent", boot_timeout=30)
    assert "did not reach its shell within 30 s" in msg
    assert "--- console" in msg
    assert secs < 45
