# SPDX-License-Identifier: GPL-2.0-or-later
"""Save and restore through hvd with the real hv-vmm (issue 13), in the
virtual laptop.

A VM defined through hvd runs a guest that counts on its serial console and
writes each count to its disk. `hvctl save` stops it into hvd's save file
(<state-dir>/saved/NAME.hvsave, root's, 0600, in a 0700 folder); `hvctl
list` says saved; hvd is killed and started again and still says saved;
`hvctl restore` continues it: the count goes on from where it stopped with
no new boot, the guest's clock shows the laptop's time, the save file is
gone. A damaged save file is refused (`cannot restore from ...`), the VM
stays saved and the file is kept; `hvctl discard` and a start boots afresh.

Run alone:  /usr/bin/python3 -m pytest tests/hvd/test_hvd_save.py -v
"""

import re
import time

import counter_guest
import pytest
from counter_guest import COUNTER_SH, assert_counts_continue, counts
from test_hvd import GUEST, HVCTL, HVD, VMM, console, hvctl, hvctl_ok, start_hvd, vm_state
from vlaptop import newc, wait_for

pytestmark = pytest.mark.vlaptop

W = "/tmp/hvsave"
SAVED = "/var/lib/hv/saved"
NAME = "sv1"


def wait_count(laptop, above, timeout=180):
    """Waits for a count above `above` on the VM's console; returns (counts, t_before, t_after)."""
    return counter_guest.wait_count(lambda: console(laptop, NAME), above, timeout,
                                    lambda: console(laptop, NAME)[-1500:])


def restart_hvd(laptop):
    laptop.check("pkill -9 -x hvd; sleep 0.5")
    start_hvd(laptop)


@pytest.fixture(scope="module")
def hv(laptop):
    for path in (HVD, HVCTL, VMM):
        if laptop.run(f"test -x {path}").rc != 0:
            pytest.fail(f"{path} is not installed in the laptop image")

    def setup(lt):
        lt.check("modprobe kvm_amd")
        lt.check(f"rm -rf {W}; mkdir -p {W}")
        lt.put(newc({"test.sh": (0o100755, COUNTER_SH.encode())}), f"{W}/counter.cpio")
        lt.check(f"cat {GUEST}/initrd.img {W}/counter.cpio > {W}/counter.initrd")
        start_hvd(lt)
        hvctl(lt, "destroy", NAME)
        hvctl(lt, "discard", NAME)
        hvctl(lt, "undefine", NAME)
        hvctl(lt, "disk", "delete", f"{NAME}.img")
        hvctl_ok(lt, "disk", "create", f"{NAME}.img", "16M")
        text = (f"[vm]\nname={NAME}\nmemory=256M\ncpus=2\nkernel={GUEST}/vmlinuz\n"
                f"initrd={W}/counter.initrd\ncmdline=console=ttyS0 panic=-1\n"
                f"disk={NAME}.img\ndisplay=false\n")
        lt.put(text.encode(), f"{W}/{NAME}.conf")
        hvctl_ok(lt, "define", f"{W}/{NAME}.conf")
    laptop.prepare(setup)
    yield laptop
    if not laptop.crashed():
        laptop.run(f"{HVCTL} destroy {NAME}; {HVCTL} discard {NAME}; pkill -x hvd", timeout=60)


def test_saved_vm_survives_an_hvd_restart_and_continues(hv):
    hvctl_ok(hv, "start", NAME)
    seen, _, _ = wait_count(hv, 5)
    res = hvctl(hv, "save", NAME, timeout=300)
    assert res.rc == 0, f"hvctl save: {res.stdout} {res.stderr}\n{console(hv, NAME)[-800:]}"
    before_text = console(hv, NAME)
    before = counts(before_text)
    last = before[-1][0]
    assert vm_state(hv, NAME) == "saved"
    st = hv.check(f"stat -c '%a %u' {SAVED} {SAVED}/{NAME}.hvsave").stdout.split("\n")
    assert st[0].strip() == "700 0" and st[1].strip() == "600 0", st
    lst = hv.check(f"{HVCTL} list").stdout
    assert re.search(rf"^{NAME}\s+saved\b", lst, re.M), lst

    restart_hvd(hv)
    assert vm_state(hv, NAME) == "saved", "saved after hvd was killed and started again"
    time.sleep(3)  # time spent saved: the guest's clock must catch up on restore

    res = hvctl(hv, "restore", NAME, timeout=300)
    assert res.rc == 0, f"hvctl restore: {res.stdout} {res.stderr}\n" + \
        hv.run(f"tail -c 1500 /run/hv/vms/{NAME}/vmm.log").stdout
    assert vm_state(hv, NAME) == "running"
    seen, t_before, t_after = wait_count(hv, last + 3)
    text = console(hv, NAME)
    assert "Linux version" not in text, "the restored guest booted again:\n" + text[-1500:]
    assert_counts_continue(before_text, text)
    guest_t = seen[-1][1]
    assert t_before - 2 <= guest_t <= t_after + 1, (guest_t, t_before, t_after)
    wait_for(lambda: hv.run(f"test -e {SAVED}/{NAME}.hvsave").rc != 0, 30,
             lambda: "the save file to be removed once the restored VM runs")
    args = hv.check(f"cat /proc/$(pgrep -f -- '--name {NAME}' | head -1)/cmdline | tr '\\0' ' '")
    assert "--restore" in args.stdout and f"{SAVED}/{NAME}.hvsave" in args.stdout, args.stdout


def test_damaged_save_file_is_refused_and_kept(hv):
    if vm_state(hv, NAME) != "running":
        hvctl_ok(hv, "start", NAME)
    wait_count(hv, 2)
    assert hvctl(hv, "save", NAME, timeout=300).rc == 0
    path = f"{SAVED}/{NAME}.hvsave"
    hv.check(f"cp {path} {W}/good.hvsave; printf 'XXXXXXXX' | dd of={path} conv=notrunc "
             "2>/dev/null")
    res = hvctl(hv, "restore", NAME, timeout=300)
    assert res.rc == 1 and "cannot restore from" in res.stdout + res.stderr, (res.stdout,
                                                                              res.stderr)
    assert "no HVSAVE magic" in res.stdout + res.stderr, res.stdout
    assert vm_state(hv, NAME) == "saved"
    assert hv.run(f"test -f {path}").rc == 0, "the save file must be kept"
    hv.check(f"cp {W}/good.hvsave {path}")
    assert hvctl(hv, "restore", NAME, timeout=300).rc == 0
    hvctl_ok(hv, "destroy", NAME)


def test_discard_then_start_boots_afresh(hv):
    if vm_state(hv, NAME) == "saved":   # left so by a failed test before this one
        hvctl_ok(hv, "discard", NAME)
    if vm_state(hv, NAME) != "running":
        hvctl_ok(hv, "start", NAME)
    wait_count(hv, 2)
    assert hvctl(hv, "save", NAME, timeout=300).rc == 0
    hvctl_ok(hv, "discard", NAME)
    assert vm_state(hv, NAME) == "shutoff"
    assert hv.run(f"test -e {SAVED}/{NAME}.hvsave").rc != 0
    hvctl_ok(hv, "start", NAME)
    wait_count(hv, 1)
    assert "Linux version" in console(hv, NAME), "a fresh start boots the kernel"
    hvctl_ok(hv, "destroy", NAME)
