# SPDX-License-Identifier: GPL-2.0-or-later
"""A laptop that dies mid-module comes back with everything the module set up.

QEMU's nested SVM now and then takes the laptop down (docs/testing.md, "Known
flakes"). The module's setup (a kernel module loaded, a daemon started, a VM
defined) goes through Laptop.prepare(); here the laptop's QEMU is killed in
the middle of the module, and the tests after it find the same laptop state,
without doing anything themselves.
"""

import os
import signal

import pytest
from vlaptop import hvctl_ok, wait_for

pytestmark = pytest.mark.vlaptop

CONF = ("[vm]\nname=r1\nmemory=128M\ncpus=1\nkernel=/var/lib/hv/test-guest/vmlinuz\n"
        "initrd=/var/lib/hv/test-guest/initrd.img\ndisplay=false\n")


def bring_up(lt):
    lt.check("modprobe kvm_amd")
    lt.check("mkdir -p /run/hv && setsid /usr/local/sbin/hvd --vsock-port -1 </dev/null >>/tmp/hvd.log 2>&1 &")
    wait_for(lambda: lt.run("/usr/local/bin/hvctl list").rc == 0, 20, "hvd to answer")
    lt.put(CONF.encode(), "/tmp/r1.conf")
    hvctl_ok(lt, "define", "/tmp/r1.conf")
    lt.check("echo set-up > /tmp/module-state")


@pytest.fixture(scope="module")
def prepared(laptop):
    laptop.prepare(bring_up)
    return laptop


def state(lt):
    """What the module set up, as the laptop sees it now."""
    return {
        "kvm": lt.run("test -c /dev/kvm && lsmod | grep -q '^kvm_amd'").rc == 0,
        "hvd": lt.run("pidof hvd").rc == 0,
        "vm": [v["name"] for v in hvctl_ok(lt, "list")["vms"]],
        "file": lt.run("cat /tmp/module-state").stdout.strip(),
        "kvm-smoke": "hello from kvm" in lt.run("kvm-smoke", timeout=60).stdout,
    }


EXPECTED = {"kvm": True, "hvd": True, "vm": ["r1"], "file": "set-up", "kvm-smoke": True}


def test_the_module_setup_is_there(prepared):
    assert state(prepared) == EXPECTED
    assert prepared.restarts == 0


def test_the_laptops_qemu_is_killed(prepared):
    os.killpg(prepared.proc.pid, signal.SIGKILL)
    prepared.proc.wait(timeout=10)
    assert prepared.crashed() == f"QEMU exited with status {prepared.proc.returncode}"


def test_the_next_test_finds_the_same_setup(prepared):
    # conftest.py's autouse fixture revived the laptop before this test.
    assert prepared.restarts == 1
    assert prepared.crashed() is None
    assert state(prepared) == EXPECTED
    # hvd's state lives in the laptop's RAM: this is a new hvd with a new r1.
    assert "set-up" in prepared.run("cat /tmp/module-state").stdout


def test_a_fixture_run_on_a_dead_laptop_revives_it_first(prepared):
    # A module fixture run again by pytest-rerunfailures after a crash calls
    # prepare() on a dead laptop: it is booted again (with what was prepared)
    # before the new setup runs.
    os.killpg(prepared.proc.pid, signal.SIGKILL)
    prepared.proc.wait(timeout=10)
    prepared.prepare(lambda lt: lt.check("echo more > /tmp/more-state"))
    assert prepared.restarts == 2
    assert state(prepared) == EXPECTED
    assert prepared.run("cat /tmp/more-state").stdout.strip() == "more"
