# SPDX-License-Identifier: GPL-2.0-or-later
"""Ballooning a running guest through hv-vmm's control socket, in the virtual laptop.

What a user gets: a test guest given 1 GiB fills 512 MiB of its RAM (so the
host holds it), is asked to shrink to 384 MiB with `{"cmd": "balloon"}`,
frees its file, and its driver inflates the balloon: `query` says the guest
keeps 384 MiB, the guest's own free memory falls below that, hv-vmm's RSS
falls by hundreds of MiB (the pages are given back to the laptop), and the
guest's tick loop keeps counting. Asked for 1 GiB again, the balloon
deflates and the guest has its memory back. A target below the floor, above
the VM's memory or not a number gets a sentence, and the guest runs on.

The guest side is a /test.sh in a cpio appended to the test guest's
initramfs; the host tells it to free its file by writing "hv-free" into the
first sector of a small raw disk the guest polls (O_DIRECT).

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_balloon.py -v
"""

import re
import time

import pytest

from test_boot import GUEST, VMM, control, start_background, wait_console, wait_exit
from vlaptop import newc

pytestmark = pytest.mark.vlaptop

W = "/tmp/vb"
MiB = 1 << 20
FILL_MIB = 512

GUEST_SH = f"""\
mem() {{ awk '/^MemTotal/ {{t=$2}} /^MemFree/ {{f=$2}} END {{print t, f}}' /proc/meminfo; }}
mkdir -p /mnt/hold && mount -t tmpfs -o size=900m tmpfs /mnt/hold
dd if=/dev/zero of=/mnt/hold/f bs=1M count={FILL_MIB} 2>/dev/null
echo "hv-guest: filled $(mem)"
i=0; freed=0
while [ $i -lt 1200 ]; do
    i=$((i + 1))
    if [ $freed = 0 ] && [ "$(dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 7)" = hv-free ]; then
        rm -f /mnt/hold/f; freed=1; echo "hv-guest: freed $(mem)"
    fi
    echo "hv-guest: tick $i $(mem)"
    sleep 1
done
"""


@pytest.fixture(scope="module")
def vb(laptop):
    if laptop.run(f"test -x {VMM}").rc != 0:
        pytest.fail(f"hv-vmm is not installed in the laptop ({VMM})")

    def setup(lt):
        lt.check("modprobe kvm_amd")
        lt.check(f"rm -rf {W}; mkdir -p {W}")
        lt.put(newc({"test.sh": (0o100755, GUEST_SH.encode())}), f"{W}/b.cpio")
        lt.check(f"cat {GUEST}/initrd.img {W}/b.cpio > {W}/b.initrd")
    laptop.prepare(setup)
    return laptop


def rss_mib(lt, pid):
    out = lt.check(f"grep VmRSS /proc/{pid}/status").stdout
    return int(out.split()[1]) / 1024


def ticks(lt, name):
    """The guest's last tick: (count, MemTotal kB, MemFree kB)."""
    found = re.findall(r"hv-guest: tick (\d+) (\d+) (\d+)",
                       lt.run(f"cat /tmp/{name}.console").stdout)
    assert found, lt.run(f"tail -c 2000 /tmp/{name}.console").stdout
    return tuple(int(v) for v in found[-1])


def wait_actual(lt, sock, want, timeout=240):
    """Polls query until memory_actual is want; returns the last query."""
    deadline = time.time() + timeout
    while True:
        q = control(lt, sock, {"cmd": "query"})
        if q["memory_actual"] == want or time.time() > deadline:
            return q
        time.sleep(2)


def test_a_guest_shrinks_to_384_mib_and_back(vb, timed):
    sock, disk, name = f"{W}/ctl.sock", f"{W}/cmd.img", "balloon"
    vb.check(f"rm -f {disk}; truncate -s 1M {disk}")
    pid = start_background(vb, f"--kernel {GUEST}/vmlinuz --initrd {W}/b.initrd --memory 1G "
                               f"--disk {disk},format=raw --control {sock} --name ballooned",
                           name)
    try:
        with timed("balloon: boot and fill"):
            wait_console(vb, name, "hv-guest: filled", timeout=400)
        q = control(vb, sock, {"cmd": "query"})
        assert q["ok"] and q["memory"] == 1 << 30, q
        assert q["balloon"] is True and q["balloon_driver"] is True, q
        assert q["memory_target"] == 1 << 30 and q["memory_actual"] == 1 << 30, q
        full = rss_mib(vb, pid)
        assert full > FILL_MIB + 64, f"hv-vmm's RSS {full:.0f} MiB after the guest filled " \
                                     f"{FILL_MIB} MiB"

        # Bad targets: a sentence each, nothing changes.
        low = control(vb, sock, {"cmd": "balloon", "target": 64 * MiB})
        assert low["ok"] is False and "below the least this VM may keep, 128 MiB" in low["error"]
        high = control(vb, sock, {"cmd": "balloon", "target": 2 << 30})
        assert high["ok"] is False and "more than the VM's memory (1024 MiB)" in high["error"]
        nan = control(vb, sock, {"cmd": "balloon", "target": "384M"})
        assert nan["ok"] is False and "\"target\" must be" in nan["error"], nan
        assert control(vb, sock, {"cmd": "query"})["memory_target"] == 1 << 30

        # Shrink to 384 MiB; the guest then frees its file for the balloon to take.
        r = control(vb, sock, {"cmd": "balloon", "target": 384 * MiB})
        assert r["ok"] and r["memory_target"] == 384 * MiB, r
        vb.check(f"printf hv-free | dd of={disk} conv=notrunc 2>/dev/null")
        with timed("balloon: inflate 640 MiB"):
            q = wait_actual(vb, sock, 384 * MiB)
        assert q["memory_actual"] == 384 * MiB, q
        time.sleep(4)
        n1, total, free = ticks(vb, name)
        assert free < 384 * 1024, f"the guest still has {free} kB free"
        shrunk = rss_mib(vb, pid)
        assert shrunk < 384 + 48 and shrunk < full - 300, \
            f"hv-vmm's RSS: {full:.0f} MiB full, {shrunk:.0f} MiB at a 384 MiB target"
        time.sleep(3)
        n2, _, _ = ticks(vb, name)
        assert n2 > n1, "the guest stopped ticking after the inflate"

        # Back to 1 GiB: the balloon deflates, the guest has its memory back.
        r = control(vb, sock, {"cmd": "balloon", "target": 1 << 30})
        assert r["ok"] and r["memory_target"] == 1 << 30, r
        with timed("balloon: deflate"):
            q = wait_actual(vb, sock, 1 << 30)
        assert q["memory_actual"] == 1 << 30, q
        time.sleep(4)
        n3, total2, free2 = ticks(vb, name)
        assert n3 > n2 and total2 == total, (n3, n2, total2, total)
        assert free2 > 700 * 1024, f"after the deflate the guest has {free2} kB free"
        console = vb.run(f"cat /tmp/{name}.console").stdout
        print(f"balloon: RSS {full:.0f} MiB filled, {shrunk:.0f} MiB at 384 MiB; guest free "
              f"{free // 1024} MiB inflated, {free2 // 1024} MiB deflated; "
              f"'{re.search(r'hv-guest: freed .*', console).group(0)}'")
        assert control(vb, sock, {"cmd": "kill"})["ok"] is True
        wait_exit(vb, pid)
    finally:
        vb.run(f"kill -9 {pid} 2>/dev/null")
