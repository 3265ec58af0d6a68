# SPDX-License-Identifier: GPL-2.0-or-later
"""A guest cannot make hv open a host file through its raw disk (issue 12,
defect 1), in the virtual laptop with hvd and the real hv-vmm.

A VM defined through hvd on a raw image of the store writes, from inside the
guest, a qcow2 header whose backing file is a host file (made with qemu-img
in the laptop, handed to the guest as a second, read-only raw disk) into the
first sectors of its disk, and powers off. Started again, the guest reads its
disk: it sees the header it wrote, byte for byte, and none of the host file's
bytes; hvd's definition says format=raw, and hv-vmm's log says it opened the
image as raw, not probed. Before the fix, hv-vmm probed the image at each
start (and, to stop exactly this, refused the guest's write of the qcow2
magic).

Also here (issue 15), each under a VM: a golden VHD made through hvctl and
a differencing VHD overlay on it; a non-persistent disk.

Run alone:  /usr/bin/python3 -m pytest tests/hvd/test_hvd_disk_formats.py -v
"""

import pytest

from test_hvd import (HVCTL, HVD, VMM, GUEST, console, hvctl_ok, start_hvd, stop_hvd,
                      vm_state)
from vlaptop import newc, wait_for

pytestmark = pytest.mark.vlaptop

IMAGES = "/var/lib/hv/images"
W = "/tmp/hv-formats"
SECRET = f"{W}/host-secret"            # the host file the guest wants to read
EVIL = f"{W}/evil.qcow2"               # a qcow2 whose backing file is SECRET
SECRET_WORD = "HOST-SECRET"

# The guest's /test.sh (busybox sh), appended to the test guest's initrd:
# prints what the start of /dev/vda holds, then, if it does not start with
# the qcow2 magic yet, copies /dev/vdb (the qcow2 with the host file as its
# backing) over it.
GUEST_SH = f"""#!/bin/sh
md5=$(dd if=/dev/vda bs=65536 count=1 2>/dev/null | md5sum | cut -d' ' -f1)
echo "hv-guest: fmt vda md5 $md5"
n=$(dd if=/dev/vda bs=1048576 count=1 2>/dev/null | tr '\\000' '\\n' | grep -c {SECRET_WORD})
echo "hv-guest: fmt vda secret lines $n"
if ! dd if=/dev/vda bs=4 count=1 2>/dev/null | grep -q QFI; then
    dd if=/dev/vdb of=/dev/vda bs=65536 conv=fsync,notrunc 2>/dev/null
    echo "hv-guest: fmt wrote the header rc $?"
    sync
fi
exit 0
"""


def fmt_lines(text, key):
    """The values of 'hv-guest: fmt KEY VALUE' lines, in order."""
    prefix = f"hv-guest: fmt {key} "
    return [line.split(prefix, 1)[1].strip() for line in text.splitlines() if prefix in line]


@pytest.fixture(scope="module")
def hv(laptop):
    for path in (HVD, HVCTL, VMM):
        if laptop.run(f"test -x {path}").rc != 0:
            pytest.fail(f"{path} is not installed in the laptop image")
    help_text = laptop.run(f"{VMM} --help 2>&1").stdout
    if "--image-dir" not in help_text or "format=" not in help_text:
        pytest.fail("this hv-vmm takes neither --disk PATH,format=F nor --image-dir (the hv-vmm "
                    "half of issue 12), which hvd now passes")
    cpio = newc({"test.sh": (0o100755, GUEST_SH.encode())})

    def setup(lt):
        lt.check("modprobe kvm_amd")
        lt.check(f"rm -rf {W}; mkdir -p {W}")
        lt.check(f"yes {SECRET_WORD}-0123456789abcdef | head -c 1048576 > {SECRET}")
        lt.check(f"qemu-img create -q -f qcow2 -b {SECRET} -F raw {EVIL} 16M")
        lt.put(cpio, f"{W}/fmt.cpio")
        lt.check(f"cat {GUEST}/initrd.img {W}/fmt.cpio > {W}/fmt.initrd")
        start_hvd(lt)
    laptop.prepare(setup)
    yield laptop
    stop_hvd(laptop)


def boot_and_power_off(lt, name):
    """Starts the VM; its /test.sh runs and the guest powers off. Its console."""
    hvctl_ok(lt, "start", name)
    wait_for(lambda: vm_state(lt, name) in ("shutoff", "crashed"), 240,
             lambda: f"{name} to run its test and power off; console:\n"
             f"{console(lt, name)[-2000:]}")
    text = console(lt, name)
    assert "hv-guest: test test.sh exit 0" in text, text[-2000:]
    return text


def test_a_guest_written_qcow2_header_stays_data(hv):
    lt = hv
    hvctl_ok(lt, "disk", "create", "victim", "16M")
    text = (f"[vm]\nname=fmt1\nmemory=256M\nkernel={GUEST}/vmlinuz\ninitrd={W}/fmt.initrd\n"
            f"cmdline=console=ttyS0 panic=-1\ndisplay=false\n"
            f"disk=victim;{EVIL},ro,format=raw\n")
    lt.put(text.encode(), f"{W}/fmt1.conf")
    hvctl_ok(lt, "define", f"{W}/fmt1.conf")
    disks = hvctl_ok(lt, "show", "fmt1")["definition"]["disk"]
    assert disks == ["victim,format=raw", f"{EVIL},ro,format=raw"], disks

    # First boot: the guest finds zeros and writes the qcow2 header over them.
    first = boot_and_power_off(lt, "fmt1")
    assert fmt_lines(first, "wrote the header rc") == ["0"], (
        "the guest could not write its own disk's first sectors:\n" + first[-2000:])
    evil_md5 = lt.check(f"head -c 65536 {EVIL} | md5sum").stdout.split()[0]
    on_host = lt.check(f"head -c 65536 {IMAGES}/victim | md5sum").stdout.split()[0]
    assert on_host == evil_md5, "the guest's write did not reach the image file"
    assert lt.check(f"head -c 3 {IMAGES}/victim").stdout == "QFI", \
        "the image does not start with the qcow2 magic the guest wrote"

    # Second boot: the image is still raw; the guest sees what it wrote, not the host file.
    second = boot_and_power_off(lt, "fmt1")
    assert fmt_lines(second, "vda md5") == [evil_md5], (
        "the guest does not see its disk as the bytes it wrote (opened as qcow2?):\n"
        + second[-2000:])
    assert fmt_lines(second, "vda secret lines") == ["0"], (
        "the guest read the host file through its disk:\n" + second[-2000:])
    assert not fmt_lines(second, "wrote the header rc"), second[-2000:]
    vmm_log = lt.check("cat /run/hv/vms/fmt1/vmm.log").stdout
    assert f"{IMAGES}/victim (raw)" in vmm_log, vmm_log[-2000:]
    assert "no format given" not in vmm_log, vmm_log[-2000:]  # hv-vmm did not probe
    disks = hvctl_ok(lt, "show", "fmt1")["definition"]["disk"]
    assert disks[0] == "victim,format=raw", disks

    # The header does not decide for a new definition either: the store's record does.
    image = {i["name"]: i for i in hvctl_ok(lt, "disk", "list")["images"]}["victim"]
    assert image["format"] == "raw" and image["backing"] is None, image
    lt.put(text.replace("name=fmt1", "name=fmt2").replace(
        f"disk=victim;{EVIL},ro,format=raw", "disk=victim,ro").encode(), f"{W}/fmt2.conf")
    hvctl_ok(lt, "define", f"{W}/fmt2.conf")
    assert hvctl_ok(lt, "show", "fmt2")["definition"]["disk"] == ["victim,ro,format=raw"]
    for name in ("fmt1", "fmt2"):
        hvctl_ok(lt, "undefine", name)
    hvctl_ok(lt, "disk", "delete", "victim")


# The guest's /test.sh for the VHD overlay: it reads its disk's first MiB
# (the golden image's bytes); at its first boot (no 'X' at 4 MiB yet) it
# writes 64 KiB at 2 MiB and the marker; at each boot it says what is there.
VHD_SH = """#!/bin/sh
echo "hv-guest: vhd first $(dd if=/dev/vda bs=1048576 count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
if [ "$(dd if=/dev/vda bs=1 skip=4194304 count=1 2>/dev/null)" != X ]; then
    dd if=/dev/urandom of=/tmp/r bs=65536 count=1 2>/dev/null
    echo "hv-guest: vhd wrote $(md5sum < /tmp/r | cut -d' ' -f1)"
    dd if=/tmp/r of=/dev/vda bs=65536 seek=32 conv=fsync,notrunc 2>/dev/null
    printf X | dd of=/dev/vda bs=1 seek=4194304 conv=fsync,notrunc 2>/dev/null
    sync
fi
echo "hv-guest: vhd at2m $(dd if=/dev/vda bs=65536 skip=32 count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
exit 0
"""


def test_a_golden_vhd_and_its_differencing_overlay_through_hvd(hv):
    """hvctl makes a dynamic VHD (qemu-img) and an overlay on it (a
    differencing VHD, hv-img); a VM on the overlay reads the golden image's
    bytes, keeps its own writes across boots, and the golden image is byte
    for byte unchanged."""
    lt = hv
    cpio = newc({"test.sh": (0o100755, VHD_SH.encode())})
    lt.put(cpio, f"{W}/vhd.cpio")
    lt.check(f"cat {GUEST}/initrd.img {W}/vhd.cpio > {W}/vhd.initrd")
    hvctl_ok(lt, "disk", "create", "gold.vhd", "16M", "--format", "vhd")
    lt.check(f"qemu-io -f vpc -c 'write -P 0xab 0 1M' {IMAGES}/gold.vhd >/dev/null")
    gold_md5 = lt.check(f"md5sum < {IMAGES}/gold.vhd").stdout.split()[0]
    hvctl_ok(lt, "disk", "clone", "gold.vhd", "work.vhd", "--overlay")
    images = {i["name"]: i for i in hvctl_ok(lt, "disk", "list")["images"]}
    assert images["work.vhd"]["format"] == "vhd" and images["work.vhd"]["backing"] == "gold.vhd", \
        images
    text = (f"[vm]\nname=vhd1\nmemory=256M\nkernel={GUEST}/vmlinuz\ninitrd={W}/vhd.initrd\n"
            f"cmdline=console=ttyS0 panic=-1\ndisplay=false\ndisk=work.vhd\n")
    lt.put(text.encode(), f"{W}/vhd1.conf")
    hvctl_ok(lt, "define", f"{W}/vhd1.conf")
    assert hvctl_ok(lt, "show", "vhd1")["definition"]["disk"] == ["work.vhd,format=vhd"]
    ones = lt.check("head -c 1048576 /dev/zero | tr '\\000' '\\253' | md5sum").stdout.split()[0]

    first = boot_and_power_off(lt, "vhd1")
    assert "hv-guest: vhd first " + ones in first, first[-2000:]  # the golden image's bytes
    wrote = [line.split("vhd wrote ", 1)[1].strip() for line in first.splitlines()
             if "vhd wrote " in line]
    assert len(wrote) == 1 and ("hv-guest: vhd at2m " + wrote[0]) in first, first[-2000:]
    second = boot_and_power_off(lt, "vhd1")
    assert "vhd wrote" not in second and ("hv-guest: vhd at2m " + wrote[0]) in second, \
        second[-2000:]
    assert "hv-guest: vhd first " + ones in second, second[-2000:]
    vmm_log = lt.check("cat /run/hv/vms/vhd1/vmm.log").stdout
    assert f"{IMAGES}/work.vhd (vhd)" in vmm_log, vmm_log[-2000:]
    assert lt.check(f"md5sum < {IMAGES}/gold.vhd").stdout.split()[0] == gold_md5
    hvctl_ok(lt, "undefine", "vhd1")
    for name in ("work.vhd", "gold.vhd"):
        hvctl_ok(lt, "disk", "delete", name)


def test_a_nonpersistent_disk_forgets_at_each_start(hv):
    """A non-persistent disk (issue 15): the guest's writes are there while it
    runs and gone at its next start; the image is byte for byte as it was."""
    lt = hv
    lt.put(newc({"test.sh": (0o100755, VHD_SH.encode())}), f"{W}/np.cpio")
    lt.check(f"cat {GUEST}/initrd.img {W}/np.cpio > {W}/np.initrd")
    hvctl_ok(lt, "disk", "create", "np.img", "16M")
    lt.check(f"qemu-io -f raw -c 'write -P 0xab 0 1M' {IMAGES}/np.img >/dev/null")
    before = lt.check(f"md5sum < {IMAGES}/np.img").stdout.split()[0]
    text = (f"[vm]\nname=np1\nmemory=256M\nkernel={GUEST}/vmlinuz\ninitrd={W}/np.initrd\n"
            f"cmdline=console=ttyS0 panic=-1\ndisplay=false\ndisk=np.img,nonpersistent\n")
    lt.put(text.encode(), f"{W}/np1.conf")
    hvctl_ok(lt, "define", f"{W}/np1.conf")
    ones = lt.check("head -c 1048576 /dev/zero | tr '\\000' '\\253' | md5sum").stdout.split()[0]
    for boot in ("first", "second"):
        run = boot_and_power_off(lt, "np1")
        assert "hv-guest: vhd first " + ones in run, run[-2000:]       # the image's bytes
        wrote = [line.split("vhd wrote ", 1)[1].strip() for line in run.splitlines()
                 if "vhd wrote " in line]
        # No marker from the boot before: each boot starts from the image as it is.
        assert len(wrote) == 1 and ("hv-guest: vhd at2m " + wrote[0]) in run, (boot, run[-2000:])
        assert lt.run("ls /var/lib/hv/scratch/np1/ 2>/dev/null").stdout.strip() == "", \
            "the overlay is still there after the VM ended"
    vmm_log = lt.check("cat /run/hv/vms/np1/vmm.log").stdout
    assert "/var/lib/hv/scratch/np1/disk0.qcow2 (qcow2)" in vmm_log, vmm_log[-2000:]
    assert lt.check(f"md5sum < {IMAGES}/np.img").stdout.split()[0] == before
    hvctl_ok(lt, "undefine", "np1")
    hvctl_ok(lt, "disk", "delete", "np.img")
