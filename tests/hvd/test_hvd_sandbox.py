# SPDX-License-Identifier: GPL-2.0-or-later
"""hvd runs each VM's hv-vmm as the VM's own user, in the virtual laptop
(docs/hvd.md, "Sandbox").

What is checked: two VMs started by hvd run as two different users from
hvd's range, with the seccomp filter; one VM's user can read neither the
other's disk, console log or process, nor connect to its control socket (nor
its own files: everything was opened by root before the drop); the images
folder and the disks are closed to others; a kill -9 of hvd and a restart
re-attach both, and pause, ACPI shutdown and destroy still work; a system
call outside the filter, injected into a running hv-vmm, is reported by hvd
as a crash with signal 31 and a sentence in its log.

Run alone:  /usr/bin/python3 -m pytest tests/hvd/test_hvd_sandbox.py -v
"""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from test_hvd import (HVCTL, HVD, VMM, console, define, hvctl_ok, start_hvd, stop_hvd, vm_state,
                      wait_for)

pytestmark = pytest.mark.vlaptop

BASE = 1900000000
IMAGES = "/var/lib/hv/images"
INJECT = "/tmp/inject_syscall"


def status(lt, pid):
    text = lt.check(f"cat /proc/{pid}/status").stdout
    return dict(re.findall(r"^(\w+):[ \t]*(.*)$", text, re.M))


def pid_of(lt, name):
    return hvctl_ok(lt, "info", name)["pid"]


@pytest.fixture(scope="module")
def hv(laptop, tmp_path_factory):
    for path in (HVD, HVCTL, VMM):
        if laptop.run(f"test -x {path}").rc != 0:
            pytest.fail(f"{path} is not installed in the laptop image")
    cc = shutil.which("gcc") or shutil.which("cc")
    exe = tmp_path_factory.mktemp("inject") / "inject_syscall"
    subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                    "-Werror", "-o", str(exe),
                    str(Path(__file__).parents[1] / "vmm" / "inject_syscall.c")], check=True)
    inject = exe.read_bytes()

    def setup(lt):
        lt.put(inject, INJECT, mode=0o755)
        lt.check("modprobe kvm_amd")
        start_hvd(lt)
        for name in ("sa", "sb"):
            # Made as a person would, world-readable: hvd closes it at vm.start.
            lt.check(f"truncate -s 16M {IMAGES}/{name}.img; chmod 0644 {IMAGES}/{name}.img; "
                     f"echo secret-of-{name} | dd of={IMAGES}/{name}.img conv=notrunc 2>/dev/null")
            define(lt, name, extra=f"disk={name}.img\ndisplay=false\n")
    laptop.prepare(setup)
    yield laptop
    stop_hvd(laptop)


def start_both(lt):
    for name in ("sa", "sb"):
        if vm_state(lt, name) != "running":
            hvctl_ok(lt, "start", name)
    for name in ("sa", "sb"):
        wait_for(lambda n=name: "hv-guest: hello" in console(lt, n), 120,
                 f"{name} to print hv-guest: hello")


def test_each_vm_runs_as_its_own_user(hv):
    start_both(hv)
    uids = {}
    for name in ("sa", "sb"):
        st = status(hv, pid_of(hv, name))
        uid = int(st["Uid"].split()[0])
        assert st["Uid"].split() == [str(uid)] * 4 and st["Gid"].split() == [str(uid)] * 4, st
        assert BASE < uid <= BASE + 65535, st
        assert st["Groups"] == "" and int(st["CapEff"], 16) == 0, st
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st
        uids[name] = uid
    assert uids["sa"] != uids["sb"], uids
    users = hv.check("cat /var/lib/hv/vm-users").stdout.split()
    assert ["sa", "sb"] == sorted(users[1::2]), users


def test_a_vm_cannot_reach_another_vms_files(hv):
    start_both(hv)
    uid = int(status(hv, pid_of(hv, "sa"))["Uid"].split()[0])
    other = pid_of(hv, "sb")
    as_sa = f"setpriv --reuid={uid} --regid={uid} --clear-groups"
    for what, cmd in (
            ("sb's disk", f"head -c 20 {IMAGES}/sb.img"),
            ("sa's own disk", f"head -c 20 {IMAGES}/sa.img"),
            ("sb's console log", "cat /run/hv/vms/sb/console.log"),
            ("sb's control socket",
             "echo '{\"cmd\":\"kill\"}' | socat -t 3 - UNIX-CONNECT:/run/hv/vms/sb/control.sock"),
            ("sb's hv-vmm memory", f"head -c 16 /proc/{other}/environ"),
            ("a signal to sb's hv-vmm", f"kill -STOP {other}")):
        r = hv.run(f"{as_sa} sh -c {shlex.quote(cmd)}")
        assert r.rc != 0 and "secret-of" not in r.stdout, (what, r)
        assert re.search("denied|not permitted", r.stderr, re.I), (what, r)
    assert vm_state(hv, "sb") == "running"
    for path in (IMAGES, f"{IMAGES}/sa.img", f"{IMAGES}/sb.img", "/run/hv/vms/sb"):
        mode, owner = hv.check(f"stat -c '%a %u:%g' {path}").stdout.split()
        assert owner == "0:0" and int(mode, 8) & 0o007 == 0, (path, mode, owner)


def test_reattach_pause_shutdown_destroy(hv):
    start_both(hv)
    pids = {n: pid_of(hv, n) for n in ("sa", "sb")}
    hv.check("pkill -9 -x hvd")
    start_hvd(hv)
    for name in ("sa", "sb"):
        info = hvctl_ok(hv, "info", name)
        assert info["state"] == "running" and info["pid"] == pids[name], info
    hvctl_ok(hv, "pause", "sa")
    assert vm_state(hv, "sa") == "paused"
    hvctl_ok(hv, "resume", "sa")
    hvctl_ok(hv, "shutdown", "sa")
    wait_for(lambda: vm_state(hv, "sa") in ("shutoff", "crashed"), 90, "sa to power off")
    assert hvctl_ok(hv, "info", "sa")["last_exit"]["reason"] == "poweroff"
    hvctl_ok(hv, "destroy", "sb")
    assert hvctl_ok(hv, "info", "sb")["last_exit"]["reason"] == "killed"
    assert hv.run("pgrep -x hv-vmm").rc != 0
    # hv-vmm's user may not remove its control socket: hvd does.
    assert hv.run("ls /run/hv/vms/sa/control.sock /run/hv/vms/sb/control.sock").rc != 0


def test_a_forbidden_system_call_is_reported_as_a_crash(hv):
    hvctl_ok(hv, "start", "sa")
    wait_for(lambda: "hv-guest: hello" in console(hv, "sa"), 120, "sa to print hv-guest: hello")
    r = hv.check(f"{INJECT} {pid_of(hv, 'sa')} 59")          # execve
    assert "killed by signal 31" in r.stdout, r
    wait_for(lambda: vm_state(hv, "sa") == "crashed", 30, "hvd to see sa crash")
    last = hvctl_ok(hv, "info", "sa")["last_exit"]
    assert last == {"reason": "crashed", "signal": 31}, last
    log = hv.check("cat /tmp/hvd.log").stdout
    assert "VM sa: hv-vmm made a system call that its sandbox forbids" in log, log[-2000:]
