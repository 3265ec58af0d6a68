# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-vmm boots Linux in the virtual laptop, as a user sees it.

Debian's cloud kernel (and the laptop's own stock kernel) reach the test
guest's userspace with 1 to 4 vCPUs and 128 MiB to 2 GiB; the boot log comes
out of the serial console; poweroff ends hv-vmm with 0, a reboot with 3 under
--on-reboot exit; the control socket pauses, resumes and stops the VM; bad
input gets a sentence and a non-zero exit code.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_boot.py -v
"""

import json
import re
import shlex
import time
from pathlib import Path

import pytest
from vlaptop import newc

pytestmark = pytest.mark.vlaptop

VMM = "/usr/local/bin/hv-vmm"
GUEST = "/var/lib/hv/test-guest"
INITRD = "/tmp/hvtest-initrd.img"  # the test guest + our /test.sh

# Run by the test guest's /init, which then powers off.
TEST_SH = b"""\
echo "hv-guest: cpus $(grep -c ^processor /proc/cpuinfo)"
echo "hv-guest: memtotal $(awk '/^MemTotal/ {print $2}' /proc/meminfo) kB"
echo "hv-guest: uptime $(cut -d' ' -f1 /proc/uptime)"
if grep -qw hvtest.reboot /proc/cmdline; then echo "hv-guest: rebooting"; reboot -f; fi
"""


@pytest.fixture(scope="module")
def vmm(laptop):
    """The laptop with KVM loaded and the test guest's initrd plus our test script."""
    if laptop.run(f"test -x {VMM}").rc != 0:
        pytest.fail(f"hv-vmm is not installed in the laptop ({VMM})")

    def setup(lt):
        lt.check("modprobe kvm_amd")
        lt.put(newc({"test.sh": (0o100755, TEST_SH)}), "/tmp/hvtest.cpio")
        lt.check(f"cat {GUEST}/initrd.img /tmp/hvtest.cpio > {INITRD}")
    laptop.prepare(setup)
    return laptop


class Run:
    def __init__(self, rc, console, stderr, seconds):
        self.rc, self.console, self.stderr, self.seconds = rc, console, stderr, seconds

    def line(self, prefix):
        """The value after 'hv-guest: PREFIX ' on the console, or None."""
        for line in self.console.splitlines():
            line = line.strip()
            if line.startswith(f"hv-guest: {prefix} "):
                return line[len(f"hv-guest: {prefix} "):]
        return None

    def __repr__(self):
        return (f"rc={self.rc} after {self.seconds:.1f} s\n--- hv-vmm ---\n{self.stderr}\n"
                f"--- console (tail) ---\n{self.console[-3000:]}")


def boot(laptop, args, timeout=240, name="vm"):
    """Runs hv-vmm to its end with the console in a file; returns a Run."""
    con, err = f"/tmp/{name}.console", f"/tmp/{name}.err"
    cmd = (f"rm -f {con}; timeout -s KILL {timeout} {VMM} {args} --console file:{con} "
           f"</dev/null 2>{err}; echo rc=$?")
    t0 = time.monotonic()
    res = laptop.run(cmd, timeout=timeout + 30)
    secs = time.monotonic() - t0
    rc = int(res.stdout.strip().rsplit("rc=", 1)[-1])
    console = laptop.run(f"cat {con} 2>/dev/null").stdout
    stderr = laptop.run(f"cat {err}").stdout
    return Run(rc, console, stderr, secs)


@pytest.mark.parametrize("cpus,memory_mib", [(1, 128), (2, 512), (4, 2048)])
def test_cloud_kernel_boots_to_userspace(vmm, timed, cpus, memory_mib):
    with timed(f"hv-vmm cloud kernel {cpus} vCPU {memory_mib} MiB, start to exit"):
        run = boot(vmm, f"--kernel {GUEST}/vmlinuz --initrd {INITRD} "
                        f"--memory {memory_mib}M --cpus {cpus}")
    assert run.rc == 0, run
    assert "Linux version" in run.console, run          # the boot log is on the serial port
    assert "hv-guest: hello" in run.console, run
    assert run.line("cpus") == str(cpus), run           # /proc/cpuinfo shows every vCPU
    mem_kb = int(run.line("memtotal").split()[0])
    assert memory_mib * 1024 * 0.6 < mem_kb <= memory_mib * 1024, run
    assert "reboot: Power down" in run.console, run     # poweroff went through ACPI S5
    assert "the guest powered off" in run.stderr, run
    print(f"guest uptime at init: {run.line('uptime')} s; hv-vmm ran {run.seconds:.1f} s")


def test_stock_debian_kernel_boots(vmm, laptop_image):
    """The laptop's own linux-image-amd64 bzImage, with the test guest's initrd
    (its modules do not match that kernel; the guest's init goes on without)."""
    vmlinuz = Path(laptop_image.kernel).with_name("vmlinuz")
    if not vmlinuz.exists():
        pytest.skip(f"no stock bzImage beside the laptop's kernel ({vmlinuz})")
    vmm.put(vmlinuz, "/tmp/stock-vmlinuz")
    run = boot(vmm, f"--kernel /tmp/stock-vmlinuz --initrd {INITRD} --memory 512M --cpus 2")
    assert run.rc == 0, run
    assert "hv-guest: hello" in run.console, run
    assert run.line("cpus") == "2", run


def test_pvh_entry_boots_an_elf_vmlinux(vmm, laptop_image):
    """The same stock kernel as an uncompressed vmlinux: booted through its
    PVH entry (XEN_ELFNOTE_PHYS32_ENTRY), no decompressor."""
    vmlinux = Path(laptop_image.kernel)
    if vmlinux.name != "vmlinux":
        pytest.skip("the laptop image has no extracted vmlinux")
    vmm.put(vmlinux, "/tmp/stock-vmlinux", timeout=300)
    run = boot(vmm, f"--kernel /tmp/stock-vmlinux --initrd {INITRD} --memory 512M --cpus 2")
    assert run.rc == 0, run
    assert "hv-guest: hello" in run.console, run
    assert run.line("cpus") == "2", run
    vmm.run("rm -f /tmp/stock-vmlinux")


def test_reboot_exits_with_3_when_asked(vmm):
    run = boot(vmm, f"--kernel {GUEST}/vmlinuz --initrd {INITRD} --on-reboot exit "
                    f"--cmdline 'console=ttyS0 panic=-1 hvtest.reboot'")
    assert run.rc == 3, run
    assert run.console.count("hv-guest: hello") == 1, run
    assert "hv-guest: rebooting" in run.console, run


def control(laptop, sock, request):
    """Sends one JSON request on the control socket; returns the reply object."""
    line = shlex.quote(json.dumps(request))
    res = laptop.check(f"echo {line} | socat -t 5 - UNIX-CONNECT:{sock}", timeout=30)
    return json.loads(res.stdout.strip().splitlines()[-1])


def start_background(laptop, args, name):
    con, err = f"/tmp/{name}.console", f"/tmp/{name}.err"
    laptop.check(f"rm -f {con}; setsid {VMM} {args} --console file:{con} </dev/null "
                 f">/dev/null 2>{err} & echo $! > /tmp/{name}.pid")
    return int(laptop.check(f"cat /tmp/{name}.pid").stdout)


def wait_console(laptop, name, text, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if laptop.run(f"grep -qF {shlex.quote(text)} /tmp/{name}.console").rc == 0:
            return
        time.sleep(1)
    pytest.fail(f"{text!r} not on the console of {name} after {timeout} s:\n"
                + laptop.run(f"tail -c 2000 /tmp/{name}.console; cat /tmp/{name}.err").stdout)


def wait_exit(laptop, pid, timeout=60):
    """Waits for a background hv-vmm (not our child: setsid) to end."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if laptop.run(f"kill -0 {pid} 2>/dev/null").rc != 0:
            return
        time.sleep(0.5)
    laptop.run(f"kill -9 {pid}")
    pytest.fail(f"hv-vmm {pid} still runs after {timeout} s")


def test_reboot_restarts_in_place_and_control_socket(vmm):
    """A rebooting guest is restarted in the same process; the control socket
    answers query/pause/resume, refuses nonsense with a sentence, and kill ends it."""
    sock = "/tmp/vmm-ctl.sock"
    pid = start_background(vmm, f"--kernel {GUEST}/vmlinuz --initrd {INITRD} --cpus 2 "
                                f"--memory 256M --control {sock} --name rebooter "
                                f"--cmdline 'console=ttyS0 panic=-1 hvtest.reboot'", "rb")
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            hellos = vmm.run("grep -c 'hv-guest: hello' /tmp/rb.console").stdout.strip()
            if hellos.isdigit() and int(hellos) >= 2:
                break
            time.sleep(1)
        q = control(vmm, sock, {"cmd": "query"})
        assert q["ok"] and q["name"] == "rebooter" and q["vcpus"] == 2, q
        assert q["memory"] == 256 << 20 and q["reboots"] >= 1, q
        assert q["state"] == "running", q
        # Each boot, the first and those after a reboot in place, has both vCPUs.
        console = vmm.run("cat /tmp/rb.console").stdout
        assert re.findall(r"hv-guest: cpus (\d+)", console)[:2] == ["2", "2"], console[-3000:]

        # The layout (docs/device-model.md): the same devices and slots after
        # more reboots; while paused every device is quiesced.
        layout = control(vmm, sock, {"cmd": "devices"})
        assert layout["ok"], layout
        ids = [(d["id"], d.get("pci")) for d in layout["devices"]]
        assert ("serial8250", None) in ids and any(i.startswith("virtio-rng") and p
                                                   for i, p in ids), ids
        assert not any(d["quiesced"] for d in layout["devices"]), layout
        before = q["reboots"]
        deadline = time.time() + 180
        while control(vmm, sock, {"cmd": "query"})["reboots"] <= before:
            assert time.time() < deadline, "the guest did not reboot again"
            time.sleep(1)
        again = control(vmm, sock, {"cmd": "devices"})
        assert [(d["id"], d.get("pci")) for d in again["devices"]] == ids, again

        assert control(vmm, sock, {"cmd": "pause"}) == {"ok": True}
        assert control(vmm, sock, {"cmd": "query"})["state"] == "paused"
        paused = control(vmm, sock, {"cmd": "devices"})["devices"]
        assert all(d["quiesced"] for d in paused), paused
        again = control(vmm, sock, {"cmd": "pause"})
        assert again["ok"] is False and "already paused" in again["error"], again
        assert control(vmm, sock, {"cmd": "resume"}) == {"ok": True}
        assert not any(d["quiesced"] for d in control(vmm, sock, {"cmd": "devices"})["devices"])
        # The boot vCPU of a 64-bit kernel: long mode, paging on; the vCPUs run
        # on afterwards.
        cpus = control(vmm, sock, {"cmd": "cpu-state"})
        assert cpus["ok"] and [c["id"] for c in cpus["cpus"]] == [0, 1], cpus
        bsp = cpus["cpus"][0]
        assert int(bsp["efer"], 16) & 0x400 and int(bsp["cr0"], 16) & 0x80000000, bsp
        assert control(vmm, sock, {"cmd": "query"})["state"] == "running"
        bad = control(vmm, sock, {"cmd": "fly"})
        assert bad["ok"] is False and "unknown command" in bad["error"], bad
        assert control(vmm, sock, {"nocmd": 1})["ok"] is False

        assert control(vmm, sock, {"cmd": "kill"})["ok"] is True
        wait_exit(vmm, pid)
    finally:
        vmm.run(f"kill -9 {pid} 2>/dev/null")
    assert "restarting it" in vmm.run("cat /tmp/rb.err").stdout


def test_sigterm_presses_the_power_button_then_stops_by_force(vmm):
    """With hv.nobutton the test guest ignores the ACPI power button: after
    --stop-timeout the VM is stopped by force (exit code 4), and hv-vmm said
    what it did. (Without it, the guest powers off: tests/hvd/test_hvd.py.)"""
    pid = start_background(vmm, f"--kernel {GUEST}/vmlinuz --initrd {GUEST}/initrd.img "
                                f"--memory 256M --stop-timeout 3 "
                                f"--cmdline 'console=ttyS0 panic=-1 hv.nobutton'", "term")
    try:
        wait_console(vmm, "term", "hv-guest: hello")
        res = vmm.run(f"kill -TERM {pid}; for i in $(seq 40); do kill -0 {pid} 2>/dev/null "
                      f"|| break; sleep 0.5; done; kill -0 {pid} 2>/dev/null && echo alive",
                      timeout=60)
        assert "alive" not in res.stdout
    finally:
        vmm.run(f"kill -9 {pid} 2>/dev/null")
    err = vmm.run("cat /tmp/term.err").stdout
    assert "pressing the power button" in err, err
    assert "stopping it by force" in err, err


@pytest.mark.parametrize("args,rc,message", [
    ("", 2, "no kernel given"),
    ("--kernel /nonexistent/vmlinuz", 1, "does not exist"),
    ("--kernel /etc/hostname", 1, "not a Linux bzImage"),
    (f"--kernel {GUEST}/vmlinuz --memory 64G", 1, "more than this host has"),
    (f"--kernel {GUEST}/vmlinuz --memory 16M", 2, "too small"),
    (f"--kernel {GUEST}/vmlinuz --disk /nonexistent.img", 1, "does not exist"),
    (f"--kernel {GUEST}/vmlinuz --cpus 0", 2, "--cpus 0"),
])
def test_bad_input_gets_a_clear_error(vmm, args, rc, message):
    res = vmm.run(f"{VMM} {args} </dev/null", timeout=60)
    assert res.rc == rc, (res.rc, res.stderr)
    assert message in res.stderr, res.stderr
    assert res.stderr.startswith("hv-vmm: error: "), res.stderr
