# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-vmm's sandbox with a real guest, in the virtual laptop (docs/vmm.md, "Sandbox").

What is checked: with --user, every device works while hv-vmm runs as that
user with the filter (/proc/PID/status: the uid, no groups, no
capabilities, NoNewPrivs 1, Seccomp 2): raw and qcow2 disks, vhost-net,
vhost-vsock, the virtio-console socket, rng, balloon, the control socket,
a reboot in place (kernel and initrd read again through the fds opened
before the drop), poweroff, SIGTERM -> ACPI power button; hv-switch's
socket is reconnected as the VM's user when the socket's group is given
(and hv-vmm warns when it is not); a system call outside the filter,
injected into the running hv-vmm with ptrace as shellcode would make it,
kills hv-vmm with SIGSYS and the kernel names the call; a developer
without root runs hv-vmm with the filter and is told that --user needs root.

Started as root with the sandbox on, hv-vmm is in a mount namespace whose
root is empty (/proc/PID/root holds nothing, or only the directory of
hv-switch's socket) and a network namespace of its own, every thread of it
(only `lo`; the host's abstract sockets refuse it): a host socket open to
everyone, by path or abstract, connected to by shellcode injected into the
running hv-vmm (the filter allows socket+connect, for hv-switch) is not
found; an injected open of /etc/shadow kills it under the filter and, in
log mode, finds nothing (and the kernel logs it); --sandbox off keeps the
host's root and network.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_vmm_sandbox.py -v
"""

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from test_virtio import (CID, GUEST_IP, HOST_IP, TAP, VMM, W, Background, initrd, retry,
                         vm_args, vt)  # noqa: F401 (vt is the laptop fixture)

pytestmark = pytest.mark.vlaptop

UID = 1900000101          # a VM's user, as hvd would give it (docs/hvd.md)
SWITCH_GID = 1900000200   # the group of a fake hv-switch socket
INJECT = "/tmp/inject_syscall"
SYS_EXECVE = 59
SYS_OPENAT = 257
HOST_SOCK = "/run/hv-test-bus.sock"   # stands for the system D-Bus socket (open to all users)
DBUS_SOCK = "/run/dbus/system_bus_socket"
ABSTRACT = "hv-test-host"               # an abstract socket of the host's network namespace


def status(lt, pid):
    """Fields of /proc/PID/status of hv-vmm."""
    text = lt.check(f"cat /proc/{pid}/status").stdout
    return dict(re.findall(r"^(\w+):[ \t]*(.*)$", text, re.M))


def vmm_pid(lt, name):
    """The hv-vmm of the Background named name (its session's hv-vmm)."""
    for _ in range(50):
        pid = lt.run(f"pgrep -x -s $(cat {W}/{name}.pid) hv-vmm").stdout.split()
        if pid:
            return int(pid[0])
        time.sleep(0.2)
    pytest.fail(f"no hv-vmm for {name}")


def seccomp_kills(lt):
    return [ln for ln in lt.run("dmesg").stdout.splitlines()
            if "type=1326" in ln and "hv-vmm" in ln]


@pytest.fixture(scope="module")
def sb(vt, tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    exe = tmp_path_factory.mktemp("inject") / "inject_syscall"
    subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                    "-Werror", "-o", str(exe),
                    str(Path(__file__).with_name("inject_syscall.c"))], check=True)
    inject = exe.read_bytes()
    vt.prepare(lambda lt: lt.put(inject, INJECT, mode=0o755))
    return vt


# The guest: every device once, then a reboot in place; the second boot powers off.
ALL_SH = f"""\
if [ "$(dd if=/dev/vda bs=512 skip=2 count=1 2>/dev/null | head -c 6)" = second ]; then
    echo "hv-guest: second boot"; exit 0
fi
for d in vda vdb; do
    dd if=/dev/urandom of=/tmp/p bs=1M count=2 2>/dev/null
    dd if=/tmp/p of=/dev/$d bs=1M seek=1 conv=fsync 2>/dev/null
    echo 3 > /proc/sys/vm/drop_caches
    a=$(sha256sum < /tmp/p); b=$(dd if=/dev/$d bs=1M skip=1 count=2 2>/dev/null | sha256sum)
    [ "$a" = "$b" ] && echo "hv-guest: $d ok" || echo "hv-guest: $d bad"
done
ip link set eth0 up && ip addr add {GUEST_IP}/24 dev eth0
ping -c 2 -W 5 {HOST_IP} >/dev/null 2>&1 && echo "hv-guest: ping ok"
echo "hv-guest: hwrng $(dd if=/dev/hwrng bs=64 count=2 2>/dev/null | wc -c)"
echo "hv-guest: balloon $(ls /sys/bus/virtio/drivers/virtio_balloon | grep -c virtio)"
echo "hello from hvc0" > /dev/hvc0
/vsock_echo serve 1234 > /tmp/serve.log 2>&1 & srv=$!
sleep 0.5
echo "hv-guest: ready"
wait $srv; echo "hv-guest: serve $(tr '\\n' ' ' < /tmp/serve.log)"
printf second | dd of=/dev/vda bs=512 seek=2 conv=fsync 2>/dev/null
echo "hv-guest: rebooting"; reboot -f
"""


def test_every_device_works_as_the_vms_user(sb):
    raw, qcow = f"{W}/sbx-raw.img", f"{W}/sbx.qcow2"
    sb.check(f"rm -f {raw} {qcow}; truncate -s 64M {raw}; qemu-img create -q -f qcow2 {qcow} 64M")
    sb.check(f"head -c 256K /dev/urandom > {W}/sbx-vs.in; rm -f {W}/sbx-hvc.out")
    rd = initrd(sb, "sbx-all", ALL_SH, progs=["vsock_echo"])
    hvc, ctl = f"{W}/sbx-hvc.sock", f"{W}/sbx-ctl.sock"
    kills_before = len(seccomp_kills(sb))
    vm = Background(sb, vm_args(rd, f"--user {UID}:{UID} --disk {raw} --disk {qcow} "
                                    f"--net tap={TAP} --vsock {CID} --control {ctl} "
                                    f"--virtio-console socket:{hvc}"), "sbx-all")
    try:
        # The guest's hvc0 output, read through the socket hv-vmm accepts on (as its user).
        sb.check(retry(f"test -S {hvc}"))
        sb.check(f"setsid sh -c 'timeout 200 socat -u UNIX-CONNECT:{hvc} - "
                 f"> {W}/sbx-hvc.out' >/dev/null 2>&1 &")
        vm.wait("hv-guest: ready")
        st = status(sb, vmm_pid(sb, "sbx-all"))
        assert st["Uid"].split() == [str(UID)] * 4, st
        assert st["Gid"].split() == [str(UID)] * 4, st
        assert st["Groups"] == "", st
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st
        assert st["Seccomp_filters"] == "1", st
        for cmd, want in (("query", '"running"'), ("pause", "true"), ("query", '"paused"'),
                          ("resume", "true")):
            r = sb.check(f"echo '{{\"cmd\":\"{cmd}\"}}' | socat -t 5 - UNIX-CONNECT:{ctl}")
            assert want in r.stdout, (cmd, r.stdout)
        sb.check(retry(f"timeout 30 socat -t 10 - VSOCK-CONNECT:{CID}:1234 "
                       f"< {W}/sbx-vs.in > {W}/sbx-vs.out", tries=10), timeout=200)
        run = vm.finish(timeout=180)
    finally:
        vm.kill()
    assert run.rc == 0, run
    for d in ("vda", "vdb"):
        assert f"hv-guest: {d} ok" in run.console, run
    assert "hv-guest: ping ok" in run.console, run
    assert run.line("hwrng") == "128", run
    assert run.line("balloon") == "1", run
    assert "echoed 262144" in run.line("serve"), run
    assert sb.get(f"{W}/sbx-vs.out") == sb.get(f"{W}/sbx-vs.in")
    assert b"hello from hvc0" in sb.get(f"{W}/sbx-hvc.out")
    # The reboot in place read kernel and initrd again, through fds opened as root.
    assert run.console.count("hv-guest: hello") == 2, run
    assert "hv-guest: second boot" in run.console, run
    assert "the guest powered off" in run.stderr, run
    assert f"sandbox: running as {UID}:{UID}" in run.stderr, run
    assert len(seccomp_kills(sb)) == kills_before, seccomp_kills(sb)


IDLE_SH = 'echo "hv-guest: idle"; sleep 600\n'


def test_sigterm_presses_the_power_button(sb):
    rd = initrd(sb, "sbx-idle", IDLE_SH)
    vm = Background(sb, vm_args(rd, f"--user {UID}:{UID}"), "sbx-term")
    try:
        vm.wait("hv-guest: idle")
        sb.check(f"kill -TERM {vmm_pid(sb, 'sbx-term')}")
        run = vm.finish()
    finally:
        vm.kill()
    assert run.rc == 0, run
    assert "power button pressed, powering off" in run.console, run


def test_a_forbidden_system_call_kills_hv_vmm(sb):
    """execve() made by the running hv-vmm, as a guest exploit's shellcode would."""
    rd = initrd(sb, "sbx-idle", IDLE_SH)
    vm = Background(sb, vm_args(rd, f"--user {UID}:{UID}"), "sbx-kill")
    try:
        vm.wait("hv-guest: idle")
        pid = vmm_pid(sb, "sbx-kill")
        r = sb.check(f"{INJECT} {pid} {SYS_EXECVE}")
        run = vm.finish(timeout=30)
    finally:
        vm.kill()
    assert "killed by signal 31" in r.stdout, r          # SIGSYS, the whole process
    assert run.rc == 128 + 31, run                        # what its parent (hvd's monitor) sees
    lines = [ln for ln in seccomp_kills(sb) if f" pid={pid} " in ln]
    assert lines, sb.run("dmesg | tail -20").stdout
    assert f"uid={UID}" in lines[-1] and "sig=31" in lines[-1], lines
    assert f"syscall={SYS_EXECVE} " in lines[-1], lines  # the kernel names the call
    print(lines[-1])


def test_display_reconnects_as_the_vms_user(sb):
    """hv-vmm connects to hv-switch as root at start, and reconnects as its user
    when hv-switch comes back: it needs the socket's group, and warns without it."""
    rd = initrd(sb, "sbx-idle", IDLE_SH)
    sock = f"{W}/sbx-switch.sock"

    def fake_switch(n):
        # A SOCK_SEQPACKET listener that records what the producer sends (its HELLO).
        sb.check(f"rm -f {sock} {W}/sbx-sw{n}.out; setsid socat -u "
                 f"UNIX-LISTEN:{sock},type=5,mode=660,group={SWITCH_GID},unlink-early "
                 f"CREATE:{W}/sbx-sw{n}.out >/dev/null 2>&1 & echo $! > {W}/sbx-sw.pid")
        sb.check(retry(f"test -S {sock}"))

    fake_switch(1)
    vm = Background(sb, vm_args(rd, f"--user {UID}:{UID}:{SWITCH_GID} "
                                    f"--display {sock},name=sbx"), "sbx-disp")
    try:
        vm.wait("hv-guest: idle")
        sb.check(retry(f"test -s {W}/sbx-sw1.out"))        # the first HELLO, sent as root
        sb.check(f"kill $(cat {W}/sbx-sw.pid)")          # hv-switch goes away...
        fake_switch(2)                                     # ...and comes back
        sb.check(retry(f"test -s {W}/sbx-sw2.out"))        # reconnected as the VM's user
        assert b"sbx" in sb.get(f"{W}/sbx-sw2.out")
        pid = vmm_pid(sb, "sbx-disp")
        assert status(sb, pid)["Uid"].split()[0] == str(UID)
        # Its root holds only the way to the socket's directory (bound in read-only).
        assert sb.check(f"ls -A /proc/{pid}/root/").stdout.split() == ["tmp"]
        assert sb.check(f"ls -A /proc/{pid}/root/tmp").stdout.split() == ["vt"]
        assert sb.run(f"test -e /proc/{pid}/root/etc").rc != 0
        run = vm.run_now()
    finally:
        vm.kill()
        sb.run(f"kill $(cat {W}/sbx-sw.pid) 2>/dev/null")
    assert "will not come back" not in run.stderr, run

    # Without the socket's group, hv-vmm says at start that reconnecting will fail.
    fake_switch(3)
    vm = Background(sb, vm_args(rd, f"--user {UID}:{UID} --display {sock},name=sbx"),
                    "sbx-disp2")
    try:
        vm.wait("hv-guest: idle")
        run = vm.run_now()
    finally:
        vm.kill()
        sb.run(f"kill $(cat {W}/sbx-sw.pid) 2>/dev/null")
    assert "display will not come back" in run.stderr, run


def test_a_developer_without_root(sb):
    """hv-vmm started by hand as an ordinary user: the filter, no user switch."""
    rd = initrd(sb, "sbx-dev", 'echo "hv-guest: dev"\n')
    sb.check(f"chmod 0666 /dev/kvm; chmod 0755 {W}; chmod 0644 {rd}")
    try:
        as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups"
        r = sb.run(f"cd /tmp && {as_nobody} timeout 120 {VMM} {vm_args(rd, '')} "
                   f"--console none 2>&1; echo rc=$?", timeout=180)
        assert "rc=0" in r.stdout, r.stdout
        assert "system call filter on; the user is unchanged (65534)" in r.stdout, r.stdout
        r = sb.run(f"cd /tmp && {as_nobody} {VMM} {vm_args(rd, '')} --user {UID}:{UID} "
                   f"--console none 2>&1; echo rc=$?", timeout=60)
        assert "rc=1" in r.stdout, r.stdout
        assert "--user needs hv-vmm to be started as root" in r.stdout, r.stdout
    finally:
        sb.run("chmod 0600 /dev/kvm")


def host_sockets(lt):
    """A socket at a path and an abstract one, both answering any user of the host."""
    lt.check(f"rm -f {HOST_SOCK}; setsid socat UNIX-LISTEN:{HOST_SOCK},mode=666,fork,unlink-early "
             f"SYSTEM:true >/dev/null 2>&1 & echo $! > {W}/sbx-host1.pid")
    lt.check(f"setsid socat ABSTRACT-LISTEN:{ABSTRACT},fork SYSTEM:true >/dev/null 2>&1 & "
             f"echo $! > {W}/sbx-host2.pid")
    as_vm = f"setpriv --reuid={UID} --regid={UID} --clear-groups"
    lt.check(retry(f"{as_vm} socat -u OPEN:/dev/null UNIX-CONNECT:{HOST_SOCK}"))
    lt.check(retry(f"{as_vm} socat -u OPEN:/dev/null ABSTRACT-CONNECT:{ABSTRACT}"))


def stop_host_sockets(lt):
    lt.run(f"kill $(cat {W}/sbx-host1.pid) $(cat {W}/sbx-host2.pid) 2>/dev/null; rm -f {HOST_SOCK}")


def netns(lt, pid=1):
    """The network namespaces of every thread of pid (1: the host's)."""
    return set(lt.check(f"readlink /proc/{pid}/task/*/ns/net").stdout.split())


def test_hv_vmm_reaches_nothing_of_the_host(sb):
    """As root with the sandbox on: an empty root and a network of its own."""
    host_sockets(sb)
    rd = initrd(sb, "sbx-idle", IDLE_SH)
    ctl = f"{W}/sbx-ns-ctl.sock"
    kills_before = len(seccomp_kills(sb))
    vm = Background(sb, vm_args(rd, f"--user {UID}:{UID} --net tap={TAP} --vsock {CID} "
                                    f"--control {ctl}"), "sbx-ns")
    try:
        vm.wait("hv-guest: idle")
        pid = vmm_pid(sb, "sbx-ns")
        root = f"/proc/{pid}/root"
        # Nothing of the host's filesystem by path: its root is empty.
        assert sb.check(f"ls -A {root}/").stdout == "", sb.run(f"ls -lAR {root}/").stdout
        disks = sb.check("ls /dev/vda /dev/sda /dev/nvme0n1 2>/dev/null || true").stdout.split()
        assert disks, "the laptop has a disk"
        for path in ["/etc/shadow", "/dev/kvm", "/run", DBUS_SOCK, HOST_SOCK] + disks:
            assert sb.run(f"test -e {root}{path}").rc != 0, path
        assert sb.check(f"readlink /proc/{pid}/ns/mnt").stdout != \
            sb.check("readlink /proc/self/ns/mnt").stdout
        # Its own network, every thread of it (the TAP and vsock were opened in the host's):
        nets = netns(sb, pid)
        assert len(nets) == 1 and not nets & netns(sb), nets
        links = sb.check(f"nsenter -t {pid} -n ip -o link").stdout
        assert [ln.split(":")[1].strip() for ln in links.splitlines()] == ["lo"], links
        r = sb.run(f"nsenter -t {pid} -n -S {UID} -G {UID} "
                   f"socat -u OPEN:/dev/null ABSTRACT-CONNECT:{ABSTRACT}")
        assert r.rc != 0 and "Connection refused" in r.stderr, r
        # Shellcode in hv-vmm may make sockets and connect (for hv-switch): it finds nothing.
        for target, errno in ((HOST_SOCK, -2), (DBUS_SOCK, -2), (f"@{ABSTRACT}", -111)):
            r = sb.check(f"{INJECT} {pid} connect {target}")
            print(r.stdout)
            assert f"connect returned {errno} " in r.stdout, r.stdout
            assert "survived" in r.stdout, r.stdout
        # ...and the VM runs on: its control socket, and the guest's network and vsock.
        r = sb.check(f"echo '{{\"cmd\":\"query\"}}' | socat -t 5 - UNIX-CONNECT:{ctl}")
        assert '"running"' in r.stdout, r.stdout
        # An open of a host file: the filter kills hv-vmm, and the kernel says so.
        r = sb.check(f"{INJECT} {pid} open /etc/shadow")
        run = vm.finish(timeout=30)
    finally:
        vm.kill()
        stop_host_sockets(sb)
    assert "killed by signal 31" in r.stdout, r.stdout
    assert run.rc == 128 + 31, run
    assert "an empty root and no network" in run.stderr, run
    lines = [ln for ln in seccomp_kills(sb)[kills_before:] if f" pid={pid} " in ln]
    assert lines and f"syscall={SYS_OPENAT} " in lines[-1], lines
    print(lines[-1])


def test_log_mode_opens_nothing_and_off_is_unchanged(sb):
    """--sandbox log lets an open through the filter (and logs it): the empty root
    finds nothing. --sandbox off: the host's root and network, as before."""
    rd = initrd(sb, "sbx-idle", IDLE_SH)
    vm = Background(sb, vm_args(rd, f"--user {UID}:{UID} --sandbox log"), "sbx-nslog")
    try:
        vm.wait("hv-guest: idle")
        pid = vmm_pid(sb, "sbx-nslog")
        # /etc/passwd: any user may read it on the host; /etc/shadow: EACCES there, not ENOENT.
        for path in ("/etc/shadow", "/etc/passwd"):
            r = sb.check(f"{INJECT} {pid} open {path}")
            assert "open returned -2 " in r.stdout and "survived" in r.stdout, r.stdout
        logged = [ln for ln in seccomp_kills(sb) if f" pid={pid} " in ln]
        assert any(f"syscall={SYS_OPENAT} " in ln for ln in logged), logged
        run = vm.run_now()
    finally:
        vm.kill()
    assert "in log mode, an empty root and no network" in run.stderr, run

    vm = Background(sb, vm_args(rd, "--sandbox off"), "sbx-nsoff")
    try:
        vm.wait("hv-guest: idle")
        pid = vmm_pid(sb, "sbx-nsoff")
        assert sb.run(f"test -e /proc/{pid}/root/etc/shadow").rc == 0
        assert netns(sb, pid) == netns(sb)
        assert sb.check(f"readlink /proc/{pid}/ns/mnt").stdout == \
            sb.check("readlink /proc/self/ns/mnt").stdout
        run = vm.run_now()
    finally:
        vm.kill()
    assert "sandbox: off" in run.stderr, run
