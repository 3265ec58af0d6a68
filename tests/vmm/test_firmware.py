# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-vmm boots firmware in the virtual laptop: Debian's SeaBIOS.

With no disk, SeaBIOS comes up on the VM's serial console (its banner, the
boot attempts, "No bootable device"), having read this VM's memory map and
CPU count from fw_cfg (its debug port, --firmware-log, says what it found);
its own reboot after the failed boot brings the firmware up again in the
same process; a boot sector and Debian's GRUB rescue image boot from
virtio-blk; a missing or oddly sized image gets a sentence and exit 1.

SeaBIOS also boots the project's Linux test guest given with --kernel
(through fw_cfg and qemu-system-data's linuxboot_dma.bin option ROM), and
that guest finds hv's ACPI tables where SeaBIOS's run of etc/table-loader
put them: its DSDT, 2 CPUs in the MADT, the serial port bound through the
DSDT, and \\_S5 to power off. The same DSDT devices bind under hv's own
direct Linux boot.

Run alone:  /usr/bin/python3 -m pytest tests/vmm/test_firmware.py -v
"""

import json
import re
import shlex
import subprocess
import time
from pathlib import Path

import imagelib
import pytest
from vlaptop import newc

pytestmark = pytest.mark.vlaptop

VMM = "/usr/local/bin/hv-vmm"
BIOS = "/usr/share/seabios/bios.bin"  # Debian's seabios package, in the laptop image
BIOS_256K = "/usr/share/seabios/bios-256k.bin"
LINUXBOOT = "/usr/share/qemu/linuxboot_dma.bin"  # qemu-system-data's option ROM, in the image
GUEST = "/var/lib/hv/test-guest"


@pytest.fixture(scope="module")
def vmm(laptop):
    """The laptop with KVM loaded and SeaBIOS in place."""
    for path in (VMM, BIOS, BIOS_256K, LINUXBOOT):
        if laptop.run(f"test -f {path}").rc != 0:
            pytest.fail(f"{path} is not in the laptop image")
    laptop.prepare(lambda lt: lt.check("modprobe kvm_amd"))
    return laptop


ANSI = re.compile(r"\x1b(c|\[\??[0-9;]*[A-Za-z])")


def screen(console, rows=25, cols=80):
    """The text screen SeaBIOS's serial console draws, as a terminal shows it.

    SeaBIOS turns int 10h output into ANSI sequences and, when it flushes
    late, moves the cursor in the middle of a word: the raw bytes do not
    hold "GNU GRUB  version 2.06" whole, the screen does. Handles what it
    sends: ESC c, ESC[2J, ESC[r;cH, colours (ignored), CR, LF, scrolling.
    """
    grid = [[" "] * cols for _ in range(rows)]
    r = c = 0
    pos = 0
    for m in ANSI.finditer(console + "\x1b[0m"):
        for ch in console[pos:m.start()]:
            if ch == "\r":
                c = 0
            elif ch == "\n":
                r += 1
            elif ch >= " ":
                if c >= cols:
                    c, r = 0, r + 1
                if r >= rows:
                    grid = grid[r - rows + 1:] + [[" "] * cols for _ in range(r - rows + 1)]
                    r = rows - 1
                grid[r][c] = ch
                c += 1
            if r >= rows:
                grid = grid[1:] + [[" "] * cols]
                r = rows - 1
        seq, pos = m.group(0), m.end()
        if seq == "\x1bc" or seq == "\x1b[2J":
            grid = [[" "] * cols for _ in range(rows)]
        elif seq.endswith("H"):
            nums = [int(n) if n else 1 for n in seq[2:-1].split(";")] + [1, 1]
            r, c = min(nums[0], rows) - 1, min(nums[1], cols) - 1
    return ["".join(row).rstrip() for row in grid]


class FirmwareVM:
    """hv-vmm running firmware in the background, its console and debug port in files."""

    def __init__(self, laptop, args, name):
        self.laptop, self.name = laptop, name
        self.console, self.log = f"/tmp/{name}.console", f"/tmp/{name}.fwlog"
        self.err, self.ctl = f"/tmp/{name}.err", f"/tmp/{name}.sock"
        cmd = (f"rm -f {self.console} {self.log} {self.err}; "
               f"{VMM} {args} --console file:{self.console} --firmware-log {self.log} "
               f"--control {self.ctl} </dev/null >/dev/null 2>{self.err} & echo $!")
        self.pid = int(laptop.check(cmd).stdout.strip())

    def read(self, path):
        return self.laptop.run(f"cat {path} 2>/dev/null").stdout

    def wait_console(self, text, count=1, timeout=120, on_screen=False):
        """The console once it holds text count times (on_screen: as a terminal shows it)."""
        deadline = time.monotonic() + timeout
        while True:
            console = self.read(self.console)
            seen = "\n".join(screen(console)) if on_screen else console
            if seen.count(text) >= count:
                return seen
            if time.monotonic() > deadline or not self.running():
                pytest.fail(f"{text!r} x{count} not on the console after {timeout} s:\n"
                            f"--- console ---\n{console[-3000:]}\n--- hv-vmm ---\n"
                            f"{self.read(self.err)}\n--- firmware log ---\n"
                            f"{self.read(self.log)[-3000:]}")
            time.sleep(1)

    def running(self):
        return self.laptop.run(f"kill -0 {self.pid}").rc == 0

    def control(self, cmd):
        res = self.laptop.run(f"echo {shlex.quote(json.dumps(cmd))} | "
                              f"socat -t 5 - UNIX-CONNECT:{self.ctl}", timeout=30)
        return json.loads(res.stdout.splitlines()[0])

    def stop(self):
        self.laptop.run(f"kill -9 {self.pid} 2>/dev/null; sleep 0.2; rm -f {self.ctl}")


@pytest.fixture
def firmware_vm(vmm):
    vms = []

    def start(args, name="fw"):
        vm = FirmwareVM(vmm, args, name)
        vms.append(vm)
        return vm
    yield start
    for vm in vms:
        vm.stop()


def assert_low_ram(log, end):
    """SeaBIOS's map: RAM from 1 MiB to end, less the top page(s) where it keeps the ACPI
    tables its table loader installed (reserved, as under QEMU)."""
    m = re.search(r"0000000000100000 - ([0-9a-f]{16}) = 1 RAM", log)
    assert m, log
    top = int(m.group(1), 16)
    assert end - 0x40000 <= top < end, (hex(top), log)
    # Reserved from there on (with 3 GiB SeaBIOS joins it to its ECAM's reservation).
    r = re.search(rf"{top:016x} - ([0-9a-f]{{16}}) = 2 RESERVED", log)
    assert r and int(r.group(1), 16) >= end, log


@pytest.mark.parametrize("image", [BIOS, BIOS_256K], ids=["bios.bin", "bios-256k.bin"])
def test_seabios_comes_up_on_the_serial_console(firmware_vm, timed, image):
    vm = firmware_vm(f"--firmware {image} --memory 256M --cpus 2")
    with timed(f"SeaBIOS ({image.rsplit('/', 1)[1]}) to 'No bootable device'"):
        console = vm.wait_console("No bootable device")
    # What a person at the console sees: the banner, the boot attempts, the failure.
    assert "SeaBIOS (version 1.16" in console, console
    assert "Booting from Hard Disk..." in console, console
    assert console.index("SeaBIOS (version") < console.index("No bootable device"), console

    # What SeaBIOS found, in its own words on the debug port: fw_cfg with DMA,
    # this VM's RAM (256 MiB) and vCPUs, and the ECAM where it put it.
    log = vm.read(vm.log)
    assert "Found QEMU fw_cfg" in log and "fw_cfg DMA interface supported" in log, log
    assert "qemu/e820: addr 0x0000000000000000 len 0x0000000010000000 [RAM]" in log, log
    assert_low_ram(log, 0x10000000)
    assert "Found 2 cpu(s)" in log, log
    assert "PCIe: using q35 mmconfig at 0xb0000000" in log, log
    # The virtio devices every VM gets are on the bus SeaBIOS walked.
    assert "id=1af4:1044" in log, log  # virtio-rng
    assert vm.running()


def test_seabios_sees_memory_above_4g(firmware_vm):
    vm = firmware_vm("--firmware " + BIOS + " --memory 3G", name="fw3g")
    vm.wait_console("No bootable device")
    log = vm.read(vm.log)
    # Low RAM ends at the ECAM (0xB0000000); the rest is above 4 GiB.
    assert_low_ram(log, 0xB0000000)
    assert "0000000100000000 - 0000000110000000 = 1 RAM" in log, log


def test_the_firmware_reboot_brings_seabios_up_again(firmware_vm, timed):
    # After "No bootable device" SeaBIOS waits as long as fw_cfg's
    # etc/boot-fail-wait says (5 s from hv-vmm) and resets the machine (port
    # 0xCF9): hv-vmm restarts the VM in place, into the firmware.
    vm = firmware_vm(f"--firmware {BIOS} --memory 128M", name="fwreboot")
    vm.wait_console("No bootable device")
    with timed("SeaBIOS reboot to its second banner"):
        console = vm.wait_console("SeaBIOS (version", count=2, timeout=150)
    assert console.count("Booting from Hard Disk...") >= 1, console
    assert "Retrying in 5 seconds" in console, console
    q = vm.control({"cmd": "query"})
    assert q["ok"] and q["reboots"] == 1 and q["state"] == "running", q


def boot_sector(text):
    """A 1 MiB disk whose MBR prints text on COM1 (port 0x3F8) and halts: 16-bit code."""
    code = bytes([
        0xFA,              # cli
        0x31, 0xC0,        # xor ax, ax
        0x8E, 0xD8,        # mov ds, ax
        0xBE, 0x16, 0x7C,  # mov si, 0x7c16 (the text, after this code)
        0xBA, 0xF8, 0x03,  # mov dx, 0x3f8
        0xAC,              # next: lodsb
        0x84, 0xC0,        # test al, al
        0x74, 0x03,        # jz done
        0xEE,              # out dx, al
        0xEB, 0xF8,        # jmp next
        0xF4,              # done: hlt
        0xEB, 0xFD,        # jmp done
    ])
    assert len(code) == 0x16
    mbr = code + text + b"\0"
    mbr += b"\0" * (510 - len(mbr)) + b"\x55\xaa"
    return mbr + b"\0" * ((1 << 20) - 512)


def test_seabios_boots_a_boot_sector_from_virtio_blk(vmm, firmware_vm):
    # SeaBIOS's own virtio-blk driver reads the MBR from hv's virtio-blk
    # (modern virtio 1.0, BARs where SeaBIOS put them) and runs it.
    vmm.put(boot_sector(b"\r\nhv-boot: hello from the boot sector\r\n"), "/tmp/mbr.img")
    vm = firmware_vm(f"--firmware {BIOS} --memory 128M --disk /tmp/mbr.img,format=raw",
                     name="fwdisk")
    console = vm.wait_console("hv-boot: hello from the boot sector", timeout=120)
    assert "SeaBIOS (version" in console and "Booting from Hard Disk" in console, console
    assert "No bootable device" not in console, console
    log = vm.read(vm.log)
    assert "found virtio-blk at 00:01.0" in log, log
    assert "Searching bootorder for: /pci@i0cf8/*@1" in log, log  # hv's etc bootorder file
    assert "Booting from 0000:7c00" in log, log


@pytest.fixture(scope="module")
def grub_rescue_iso(tmp_path_factory):
    """Debian's grub-rescue-pc image (grub-mkrescue: an ISO that also boots as a BIOS disk)."""
    deb = imagelib.fetch_deb("grub-rescue-pc", imagelib.candidate_version("grub-rescue-pc"))
    dest = tmp_path_factory.mktemp("grub-rescue")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    return dest / "usr/lib/grub-rescue/grub-rescue-cdrom.iso"


def test_seabios_boots_debians_grub_from_virtio_blk(vmm, firmware_vm, grub_rescue_iso, timed):
    # An unmodified boot loader: GRUB 2 reads its core and modules through
    # SeaBIOS's int 13h on hv's virtio-blk and draws its menu through int 10h,
    # which SeaBIOS's serial console puts on COM1.
    vmm.put(Path(grub_rescue_iso), "/tmp/grub-rescue.iso")
    vm = firmware_vm(f"--firmware {BIOS} --memory 256M --disk /tmp/grub-rescue.iso,ro,format=raw",
                     name="fwgrub")
    with timed("SeaBIOS to the GRUB menu"):
        # The menu's last entry: GRUB draws the title, frame and help first.
        shown = vm.wait_console("Change the colors", timeout=180, on_screen=True)
    # GRUB's menu as it stands on the screen: its title, the frame, the entries.
    rows = shown.splitlines()
    assert "Press enter to boot the selected OS" in shown, shown
    assert any(r.strip().startswith("GNU GRUB  version 2.06") for r in rows[:3]), shown
    assert any("*GNU/Linux" in r for r in rows), shown
    assert any(r.strip().startswith("┌") and r.strip().endswith("┐") for r in rows), shown
    console = vm.read(vm.console)
    assert "GRUB loading." in console, console
    assert "No bootable device" not in console, console


@pytest.mark.parametrize("setup, args, rc, message", [
    pytest.param("", "--firmware /nonexistent/bios.bin", 1,
                 "the firmware /nonexistent/bios.bin does not exist", id="missing"),
    pytest.param("head -c 1000 /dev/zero > /tmp/odd.bin", "--firmware /tmp/odd.bin", 1,
                 "the firmware /tmp/odd.bin is 1000 bytes: a firmware image here is 64 KiB to "
                 "256 KiB", id="too-small"),
    pytest.param("head -c 200000 /dev/zero > /tmp/odd2.bin", "--firmware /tmp/odd2.bin", 1,
                 "a firmware image is a whole number of 64 KiB", id="odd-size"),
    pytest.param("", f"--firmware {BIOS} --initrd {GUEST}/initrd.img", 2,
                 "--initrd and --cmdline go with --kernel", id="initrd-without-kernel"),
])
def test_bad_firmware_gets_a_clear_error(vmm, setup, args, rc, message):
    if setup:
        vmm.check(setup)
    res = vmm.run(f"{VMM} {args} </dev/null", timeout=60)
    assert res.rc == rc, (res.rc, res.stderr)
    assert message in res.stderr, res.stderr
    assert res.stderr.startswith("hv-vmm: error: "), res.stderr


# What the guest reports of its ACPI, between markers on its console.
ACPI_SH = b"""\
echo "hv-guest: cpus $(grep -c ^processor /proc/cpuinfo)"
echo "hv-guest: cmdline $(cat /proc/cmdline)"
echo "hv-guest: tables $(ls /sys/firmware/acpi/tables | tr '\\n' ' ')"
for d in /sys/bus/acpi/devices/*; do
    [ -f $d/path ] && echo "hv-guest: acpidev $(cat $d/hid 2>/dev/null) $(cat $d/path)"
done
for d in /sys/bus/pnp/devices/*; do
    drv=$(readlink $d/driver); echo "hv-guest: pnp $(cat $d/id) ${drv##*/}"
done
dmesg | grep -E "ACPI: (RSDP|XSDT|FACP|DSDT|FACS|APIC|MCFG) " | sed 's/^/hv-guest: dmesg /'
for t in APIC DSDT MCFG; do
    f=/sys/firmware/acpi/tables/$t
    hex=$(od -An -v -tx1 $f 2>/dev/null || hexdump -v -e '1/1 "%02x"' $f)
    echo "hv-guest: hex $t $(echo "$hex" | tr -d ' \\n')"
done
if grep -qw hv.fwreboot /proc/cmdline; then echo "hv-guest: rebooting"; reboot -f; fi
"""


def guest_initrd(laptop, name):
    """The test guest's initramfs with ACPI_SH as its /test.sh."""
    laptop.put(newc({"test.sh": (0o100755, ACPI_SH)}), f"/tmp/{name}.cpio")
    laptop.check(f"cat {GUEST}/initrd.img /tmp/{name}.cpio > /tmp/{name}.initrd")
    return f"/tmp/{name}.initrd"


def run_to_end(laptop, args, name, timeout=240, env=""):
    """hv-vmm in the foreground until the guest powers off: (rc, console, stderr, firmware log)."""
    con, err, log = f"/tmp/{name}.console", f"/tmp/{name}.err", f"/tmp/{name}.fwlog"
    fwlog = f"--firmware-log {log}" if "--firmware" in args else ""
    res = laptop.run(f"rm -f {con} {err} {log}; {env} timeout -s KILL {timeout} {VMM} {args} "
                     f"--console file:{con} {fwlog} </dev/null 2>{err}; echo rc=$?",
                     timeout=timeout + 30)
    rc = int(res.stdout.strip().rsplit("rc=", 1)[-1])
    read = lambda p: laptop.run(f"cat {p} 2>/dev/null").stdout  # noqa: E731
    return rc, read(con), read(err), read(log)


def reported(console, key):
    """Every value after 'hv-guest: KEY ' on the console."""
    pre = f"hv-guest: {key} "
    return [ln.strip()[len(pre):] for ln in console.splitlines() if ln.strip().startswith(pre)]


def enabled_lapics(madt):
    """Processor local APIC entries with the enabled flag in a MADT."""
    n, off = 0, 44
    while off + 2 <= len(madt) and madt[off + 1]:
        if madt[off] == 0 and madt[off + 4] & 1:
            n += 1
        off += madt[off + 1]
    return n


CMDLINE = "console=ttyS0 panic=-1 loglevel=4 hv.acpitest"


def check_guest_acpi(console, cpus, ecam):
    """What the guest says of hv's tables: the devices each model describes, bound."""
    assert "hv-guest: test test.sh exit 0" in console, console[-3000:]
    assert reported(console, "cpus") == [str(cpus)], console[-3000:]
    assert CMDLINE in reported(console, "cmdline")[0], console[-3000:]
    tables = reported(console, "tables")[0].split()
    for t in ("DSDT", "FACP", "APIC", "MCFG", "FACS"):
        assert t in tables, tables
    dmesg = " ".join(reported(console, "dmesg"))
    assert re.search(r"ACPI: RSDP 0x[0-9A-F]+ 000024 \(v02 HVHV", dmesg), dmesg
    assert re.search(r"ACPI: DSDT 0x[0-9A-F]+ [0-9A-F]+ \(v02 HVHV", dmesg), dmesg
    hexes = dict(v.split(" ", 1) for v in reported(console, "hex"))
    madt, dsdt = bytes.fromhex(hexes["APIC"]), bytes.fromhex(hexes["DSDT"])
    mcfg = bytes.fromhex(hexes["MCFG"])
    assert enabled_lapics(madt) == cpus, madt.hex()
    assert int.from_bytes(mcfg[44:52], "little") == ecam, mcfg.hex()
    assert sum(dsdt) % 256 == 0 and sum(madt) % 256 == 0
    devs = reported(console, "acpidev")
    assert "PNP0A08 \\_SB_.PCI0" in devs, devs
    assert "PNP0501 \\_SB_.COM1" in devs, devs
    assert "PNP0B00 \\_SB_.RTC_" in devs, devs
    # The serial port the console runs on is the DSDT's COM1, bound by the 8250 driver.
    pnp = reported(console, "pnp")
    assert "PNP0501 serial" in pnp, pnp
    assert "PNP0b00 rtc_cmos" in pnp or "PNP0B00 rtc_cmos" in pnp, pnp


def test_seabios_boots_linux_which_finds_hvs_acpi_tables(vmm, timed):
    # SeaBIOS runs etc/table-loader (the tables land in its RAM), then the
    # linuxboot option ROM first in the boot order loads the kernel, initrd
    # and command line from fw_cfg; the guest then powers off through the
    # DSDT's \\_S5 and the FADT's PM1 block: hv-vmm exits 0.
    rd = guest_initrd(vmm, "fwlinux")
    with timed("SeaBIOS + linuxboot to the guest's poweroff"):
        rc, console, err, log = run_to_end(
            vmm, f"--firmware {BIOS} --kernel {GUEST}/vmlinuz --initrd {rd} --memory 256M "
                 f"--cpus 2 --cmdline '{CMDLINE}'", "fwlinux")
    assert rc == 0, (rc, err, console[-3000:], log[-3000:])
    print("\n".join(ln for ln in console.splitlines()
                    if "Booting from" in ln or "hv-guest: dmesg" in ln or "pnp PNP" in ln))
    assert "SeaBIOS (version" in console, console[:2000]
    assert console.index("SeaBIOS (version") < console.index("hv-guest: hello"), console[:3000]
    assert "Searching bootorder for: /rom@genroms/linuxboot_dma.bin" in log, log[-3000:]
    assert "Booting from Hard Disk" not in console, console[:3000]
    check_guest_acpi(console, 2, 0xB0000000)
    # SeaBIOS moved the ECAM before it ran the loader: the MCFG says where.
    assert "PCIe: using q35 mmconfig at 0xb0000000" in log, log[-3000:]


def test_direct_boot_dsdt_devices_bind_too(vmm):
    # hv's own Linux boot writes the same device-built DSDT at 0xE0000.
    rd = guest_initrd(vmm, "directacpi")
    rc, console, err, _ = run_to_end(
        vmm, f"--kernel {GUEST}/vmlinuz --initrd {rd} --memory 256M --cpus 2 "
             f"--cmdline '{CMDLINE}'", "directacpi")
    assert rc == 0, (rc, err, console[-3000:])
    check_guest_acpi(console, 2, 0xE0000000)


def test_firmware_linux_boot_without_its_rom_is_refused(vmm):
    res = vmm.run(f"HV_VMM_LINUXBOOT_ROM=/nonexistent/linuxboot_dma.bin {VMM} --firmware {BIOS} "
                  f"--kernel {GUEST}/vmlinuz </dev/null", timeout=60)
    assert res.rc == 1, (res.rc, res.stderr)
    assert res.stderr.startswith("hv-vmm: error: the firmware's Linux loader "
                                 "/nonexistent/linuxboot_dma.bin does not exist: install Debian's "
                                 "qemu-system-data package"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr



def test_firmware_linux_boot_again_after_the_guest_reboots(vmm, firmware_vm):
    # The guest reboots (0xCF9): hv-vmm restarts the VM in place, SeaBIOS
    # runs the table loader again (the tables are built anew after the
    # reset) and the ROM boots the same kernel from fw_cfg.
    rd = guest_initrd(vmm, "fwreboot")
    vm = firmware_vm(f"--firmware {BIOS} --kernel {GUEST}/vmlinuz --initrd {rd} --memory 256M "
                     f"--cpus 2 --cmdline '{CMDLINE} hv.fwreboot'", name="fwlinuxreboot")
    console = vm.wait_console("hv-guest: rebooting", count=2, timeout=300)
    assert console.count("SeaBIOS (version") >= 2, console[-3000:]
    hexes = [v.split(" ", 1) for v in reported(console, "hex")]
    for name in ("APIC", "DSDT", "MCFG"):
        seen = [bytes.fromhex(h) for n, h in hexes if n == name]
        assert len(seen) >= 2 and seen[0] == seen[1], (name, [x.hex()[:80] for x in seen])
    madt = [bytes.fromhex(h) for n, h in hexes if n == "APIC"][1]
    mcfg = [bytes.fromhex(h) for n, h in hexes if n == "MCFG"][1]
    assert enabled_lapics(madt) == 2 and int.from_bytes(mcfg[44:52], "little") == 0xB0000000
    q = vm.control({"cmd": "query"})
    assert q["ok"] and q["reboots"] >= 1, q
