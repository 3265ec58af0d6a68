# SPDX-License-Identifier: GPL-2.0-or-later
"""PCI passthrough in the virtual laptop (docs/passthrough.md).

The laptop's e1000e (QEMU's 82574L behind its emulated VT-d with interrupt
remapping) is given to the desktop test guest by hv-vmm --pci: the guest's own
e1000e driver binds it, reads the MAC QEMU gave the laptop's NIC, brings the
link up, gets a DHCP lease from QEMU's user network and pings its gateway,
with MSI-X interrupts counted in /proc/interrupts. When the VM ends the NIC is
back on e1000e in the laptop. Then the same through hvd (pci= in a
definition, hvctl start/destroy), and the refusals: an address that does not
exist, a device whose IOMMU group it shares with a device in use (a
pcie-pci-bridge with two functions behind it, added to this laptop), the
same device for two VMs.

Run alone:  HV_BUILD_DIR=... /usr/bin/python3 -m pytest tests/passthrough -v
"""

import json
import re
import time

import pytest
from vlaptop import hvctl, hvctl_ok

pytestmark = pytest.mark.vlaptop

VMM = "/usr/local/bin/hv-vmm"
HVPCI = "/usr/local/bin/hv-pci"
HVD, HVCTL = "/usr/local/sbin/hvd", "/usr/local/bin/hvctl"
E1000E = "8086:10d3"  # QEMU's e1000e (82574L)
VM_USER = "1900000042:1900000042"
W = "/tmp/pt"


@pytest.fixture(scope="module")
def laptop_options():
    # Behind a PCIe-to-PCI bridge the IOMMU cannot tell functions apart: the
    # bridge and both virtio-rng functions share one IOMMU group.
    return {"extra_args": ["-device", "pcie-pci-bridge,id=ptbr",
                           "-device", "virtio-rng-pci,bus=ptbr,addr=1",
                           "-device", "virtio-rng-pci,bus=ptbr,addr=2"]}


def sysfs_driver(laptop, bdf):
    r = laptop.run(f"basename $(readlink /sys/bus/pci/devices/{bdf}/driver) 2>/dev/null")
    return r.stdout.strip() or None


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Nic:
    def __init__(self, bdf, mac):
        self.bdf, self.mac = bdf, mac


@pytest.fixture(scope="module")
def nic(laptop):
    """The laptop's e1000e: its address and MAC, on its own driver."""
    for path in (VMM, HVPCI, HVD, HVCTL, laptop.desktop_kernel, laptop.desktop_initrd):
        if laptop.run(f"test -e {path}").rc != 0:
            pytest.fail(f"{path} is not in the laptop image")
    laptop.prepare(lambda lt: lt.check(f"modprobe kvm_amd && mkdir -p {W}"))
    out = laptop.check(f"lspci -D -n -d {E1000E}").stdout.split()
    assert out, "no e1000e in the laptop"
    bdf = out[0]
    wait_for(lambda: sysfs_driver(laptop, bdf) == "e1000e", 30, "e1000e to bind the laptop's NIC")
    mac = wait_for(lambda: laptop.run(f"cat /sys/bus/pci/devices/{bdf}/net/*/address").stdout
                   .strip(), 30, "the laptop's NIC interface")
    assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac), mac
    return Nic(bdf, mac)


def group_of(laptop, bdf):
    return laptop.check(f"basename $(readlink /sys/bus/pci/devices/{bdf}/iommu_group)").stdout.strip()


def test_hv_pci_lists_devices_with_group_driver_and_verdict(laptop, nic):
    out = laptop.check(f"{HVPCI} list").stdout
    print(out)
    line = next(l for l in out.splitlines() if l.startswith(nic.bdf))
    assert f" {group_of(laptop, nic.bdf)} " in line and " e1000e " in line, line
    assert "82574L" in line and "[8086:10d3]" in line and "(assignable)" in line, line
    assert "the IOMMU is off" not in out
    r = laptop.run(f"{HVPCI} check {nic.bdf}")
    assert r.rc == 0 and f"{nic.bdf} can be given to a VM" in r.stdout, r.stdout + r.stderr


def shared_group(laptop):
    """The two virtio-rng functions behind the pcie-pci-bridge: they share a group."""
    rngs = laptop.check("lspci -D -n -d 1af4:1005; lspci -D -n -d 1af4:1044").stdout.split("\n")
    rngs = [l.split()[0] for l in rngs if l.strip()]
    groups = {}
    for bdf in rngs:
        groups.setdefault(group_of(laptop, bdf), []).append(bdf)
    shared = next((g for g in groups.values() if len(g) == 2), None)
    assert shared, f"no two virtio-rng functions share an IOMMU group: {groups}"
    return shared


def test_shared_iommu_group_is_refused_with_the_reason(laptop, nic):
    target, other = shared_group(laptop)
    before = sysfs_driver(laptop, target)
    r = laptop.run(f"{HVPCI} bind {target}")
    assert r.rc == 1, r.stdout + r.stderr
    want = (f"{target} shares IOMMU group {group_of(laptop, target)} with {other} "
            f"({sysfs_driver(laptop, other)}), which is in use")
    assert want in r.stderr, r.stderr
    assert sysfs_driver(laptop, target) == before  # nothing was bound


def run_vmm(laptop, args, timeout=300, name="pt"):
    con, err = f"{W}/{name}.console", f"{W}/{name}.err"
    res = laptop.run(f"rm -f {con}; timeout -s KILL {timeout} {VMM} {args} --console file:{con} "
                     f"</dev/null 2>{err}; echo rc=$?", timeout=timeout + 30)
    rc = int(res.stdout.strip().rsplit("rc=", 1)[-1])
    return (rc, laptop.run(f"cat {con} 2>/dev/null").stdout.replace("\r", ""),
            laptop.run(f"cat {err}").stdout)


def guest_line(console, prefix):
    for line in console.splitlines():
        line = line.strip()
        if line.startswith(f"hv-guest: {prefix} "):
            return line[len(f"hv-guest: {prefix} "):]
    return None


def test_vmm_refuses_bad_pci_arguments(laptop, nic):
    base = f"--kernel {laptop.desktop_kernel} --initrd {laptop.desktop_initrd} --memory 256M"
    rc, _, err = run_vmm(laptop, f"{base} --pci 00:02", timeout=30)
    assert rc == 2 and "--pci 00:02: give a PCI address such as 0000:00:02.0" in err, err
    rc, _, err = run_vmm(laptop, f"{base} --pci 0000:00:1f.6", timeout=30)
    assert rc == 1 and "there is no PCI device 0000:00:1f.6 on this machine" in err, err
    # Still on e1000e: hv-vmm does not bind, it says how.
    rc, _, err = run_vmm(laptop, f"{base} --pci {nic.bdf}", timeout=30)
    assert rc == 1 and f"the device is on e1000e, not vfio-pci: bind it first (hv-pci bind " \
                       f"{nic.bdf})" in err, err
    assert sysfs_driver(laptop, nic.bdf) == "e1000e"


def check_guest_used_the_nic(console, nic):
    assert guest_line(console, "pt iface"), console[-4000:]
    assert guest_line(console, "pt mac") == nic.mac, console[-4000:]
    assert guest_line(console, "pt carrier") == "1", console[-4000:]
    assert guest_line(console, "pt irq kind") == "msix", console[-4000:]
    lease = guest_line(console, "pt lease")
    assert lease and lease.startswith("10.0.2."), console[-4000:]
    before = int(guest_line(console, "pt irqs before"))
    after = int(guest_line(console, "pt irqs after"))
    assert after > before, console[-4000:]
    return lease, before, after


def test_guest_drives_the_laptops_e1000e_and_gives_it_back(laptop, nic, timed):
    r = laptop.check(f"{HVPCI} bind {nic.bdf}")
    assert r.stdout.strip() == f"{nic.bdf} e1000e"
    assert sysfs_driver(laptop, nic.bdf) == "vfio-pci"
    try:
        with timed("hv-vmm with the laptop's e1000e passed through, start to exit"):
            rc, console, err = run_vmm(
                laptop, f"--kernel {laptop.desktop_kernel} --initrd {laptop.desktop_initrd} "
                        f"--memory 512M --cpus 2 --user {VM_USER} --pci {nic.bdf} "
                        f"--cmdline 'console=ttyS0 panic=-1 hv.test=passthrough'", timeout=400)
        print(err)
        print("\n".join(l for l in console.splitlines() if "hv-guest" in l or "e1000e" in l))
        assert rc == 0, f"rc {rc}\n{err}\n{console[-4000:]}"
        assert f"{nic.bdf}: passed through as 00:" in err
        lease, before, after = check_guest_used_the_nic(console, nic)
        ping = guest_line(console, "pt ping")
        print(f"lease {lease}; ping: {ping}; e1000e interrupts {before} -> {after}")
        assert ping and ping.endswith(" ok"), console[-4000:]
    finally:
        r = laptop.run(f"{HVPCI} restore {nic.bdf} e1000e")
    assert r.rc == 0, r.stderr
    assert sysfs_driver(laptop, nic.bdf) == "e1000e"
    # The laptop's interface is back with its MAC.
    wait_for(lambda: laptop.run(f"cat /sys/bus/pci/devices/{nic.bdf}/net/*/address")
             .stdout.strip() == nic.mac, 30, "the laptop's NIC interface to come back")
    assert laptop.check(f"cat /sys/bus/pci/devices/{nic.bdf}/driver_override").stdout.strip() \
        == "(null)"


def test_nic_works_again_after_a_guest_reboot(laptop, nic):
    """--on-reboot restart: the device is reset and MSI-X set up again by the next boot."""
    laptop.check(f"{HVPCI} bind {nic.bdf}")
    con = f"{W}/reboot.console"
    try:
        laptop.check(f"rm -f {con}; setsid {VMM} --kernel {laptop.desktop_kernel} "
                     f"--initrd {laptop.desktop_initrd} --memory 512M --cpus 2 --user {VM_USER} "
                     f"--pci {nic.bdf} --cmdline 'console=ttyS0 panic=-1 hv.test=passthrough "
                     f"hv.ptreboot' --console file:{con} </dev/null >{W}/reboot.err 2>&1 &")
        text = lambda: laptop.run(f"cat {con}").stdout.replace("\r", "")
        wait_for(lambda: text().count("hv-guest: pt irqs after") >= 2, 400,
                 "two boots to use the NIC\n" + laptop.run(f"cat {W}/reboot.err").stdout)
        boots = text().split("hv-guest: pt rebooting")
        check_guest_used_the_nic(boots[0], nic)
        check_guest_used_the_nic(boots[1], nic)
        assert "the guest rebooted" in laptop.run(f"cat {W}/reboot.err").stdout
    finally:
        laptop.run("pkill -KILL -x hv-vmm; sleep 1")
        r = laptop.run(f"{HVPCI} restore {nic.bdf} e1000e")
    assert r.rc == 0 and sysfs_driver(laptop, nic.bdf) == "e1000e", r.stderr


def console_of(laptop, name):
    rc, out, _ = hvctl(laptop, "console", name, "--bytes", "262144")
    return out["data"].replace("\r", "") if rc == 0 and isinstance(out, dict) else ""


def define(laptop, name, extra):
    conf = (f"[vm]\nname={name}\nmemory=512M\ncpus=2\nkernel={laptop.desktop_kernel}\n"
            f"initrd={laptop.desktop_initrd}\ndisplay=false\n"
            f"cmdline=console=ttyS0 panic=-1 hv.test=passthrough hv.ptwait\n{extra}")
    laptop.put(conf.encode(), f"{W}/{name}.conf")
    return hvctl(laptop, "define", f"{W}/{name}.conf", "--replace")


@pytest.fixture(scope="module")
def hvd(laptop, nic):
    def start_hvd(lt):
        lt.check(f"mkdir -p /run/hv {W} && setsid {HVD} --vsock-port -1 "
                 f"</dev/null >>{W}/hvd.log 2>&1 &")
        wait_for(lambda: hvctl(lt, "list")[0] == 0, 20, "hvd to answer")
    laptop.prepare(start_hvd)
    yield laptop
    if laptop.crashed():
        return
    for name in ("pta", "ptb"):
        hvctl(laptop, "destroy", name)
    laptop.run("pkill -x hvd")
    print(laptop.run(f"cat {W}/hvd.log").stdout[-4000:])


def test_hvd_gives_the_nic_to_a_vm_and_back(hvd, nic):
    laptop = hvd
    rc, out, err = define(laptop, "pta", f"pci={nic.bdf}")
    assert rc == 0, f"{out} {err}"
    shown = hvctl_ok(laptop, "show", "pta")
    assert shown["definition"]["pci"] == [nic.bdf] and f"pci={nic.bdf}" in shown["text"]
    hvctl_ok(laptop, "start", "pta")
    assert sysfs_driver(laptop, nic.bdf) == "vfio-pci"
    assert laptop.check("cat /run/hv/vms/pta/pci").stdout.strip() == f"{nic.bdf} e1000e"
    wait_for(lambda: "hv-guest: pt waiting" in console_of(laptop, "pta")
             or "hv-guest: test passthrough exit" in console_of(laptop, "pta"), 400,
             "the guest to use the NIC\n" + laptop.run(f"tail -20 {W}/hvd.log").stdout)
    console = console_of(laptop, "pta")
    check_guest_used_the_nic(console, nic)

    # A second VM with the same device is refused while the first runs.
    rc, out, err = define(laptop, "ptb", f"pci={nic.bdf}")
    assert rc == 0, f"{out} {err}"
    rc, out, err = hvctl(laptop, "start", "ptb")
    assert rc != 0
    assert f"PCI device {nic.bdf} is in use by the running VM 'pta'" in json.dumps(out) + err
    assert sysfs_driver(laptop, nic.bdf) == "vfio-pci"

    hvctl_ok(laptop, "destroy", "pta")
    assert sysfs_driver(laptop, nic.bdf) == "e1000e"
    assert laptop.run("test -e /run/hv/vms/pta/pci").rc != 0
    assert "given back to e1000e" in laptop.run(f"cat {W}/hvd.log").stdout


def test_hvd_gives_the_nic_back_when_hv_vmm_crashes(hvd, nic):
    laptop = hvd
    hvctl_ok(laptop, "start", "pta")
    assert sysfs_driver(laptop, nic.bdf) == "vfio-pci"
    wait_for(lambda: "passed through as" in laptop.run("cat /run/hv/vms/pta/vmm.log").stdout,
             60, "hv-vmm to open the device")
    vmm_pid = laptop.check("cat /run/hv/vms/pta/monitor.pid").stdout.split()[1]
    laptop.check(f"kill -9 {vmm_pid}")
    wait_for(lambda: hvctl_ok(laptop, "info", "pta")["state"] == "crashed", 30,
             "hvd to see the crash")
    wait_for(lambda: sysfs_driver(laptop, nic.bdf) == "e1000e", 10, "e1000e back on the NIC")
    assert laptop.run("test -e /run/hv/vms/pta/pci").rc != 0


def test_hvd_refuses_a_device_in_a_shared_group(hvd, nic):
    laptop = hvd
    target, other = shared_group(laptop)
    before = sysfs_driver(laptop, target)
    rc, out, err = define(laptop, "ptb", f"pci={target}")
    assert rc == 0, f"{out} {err}"
    rc, out, err = hvctl(laptop, "start", "ptb")
    assert rc != 0
    assert (f"VM 'ptb' cannot have PCI device {target}: {target} shares IOMMU group "
            f"{group_of(laptop, target)} with {other} ({sysfs_driver(laptop, other)}), which is "
            f"in use") in json.dumps(out) + err, f"{out} {err}"
    assert sysfs_driver(laptop, target) == before
    assert hvctl_ok(laptop, "info", "ptb")["state"] == "shutoff"


def test_hvd_refuses_bad_pci_fields(hvd, nic):
    laptop = hvd
    rc, out, err = define(laptop, "ptb", "pci=00:02")
    assert rc != 0 and "field 'pci': '00:02' is not a PCI address" in json.dumps(out) + err
    rc, out, err = define(laptop, "ptb", f"pci={nic.bdf};{nic.bdf}")
    assert rc != 0 and f"field 'pci': {nic.bdf} is listed twice" in json.dumps(out) + err
    rc, out, err = define(laptop, "ptb", "pci=0000:00:1f.6")
    assert rc == 0, f"{out} {err}"
    rc, out, err = hvctl(laptop, "start", "ptb")
    assert rc != 0
    assert "there is no PCI device 0000:00:1f.6 on this machine" in json.dumps(out) + err
    assert sysfs_driver(laptop, nic.bdf) == "e1000e"
