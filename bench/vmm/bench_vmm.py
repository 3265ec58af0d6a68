#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-vmm vs QEMU, side by side in one virtual laptop (docs/benchmarks.md).

    HV_BUILD_DIR=/tmp/mybuild /usr/bin/python3 bench/vmm/bench_vmm.py [--runs N]

Boots the laptop once (tests/vlaptop), copies this machine's QEMU into it
(binary, the shared libraries it links, the firmware it needs; the laptop
image itself stays without QEMU), then measures with the same test-guest
kernel, initrd, 256 MiB and 1 vCPU:

  boot      launch -> "hv-guest: hello" on the serial console (the guest's
            /init ran), wall clock in the laptop; hv-vmm, QEMU microvm, q35
  memory    after init, VmRSS of the VMM minus the resident part of its
            largest mapping (guest RAM), from /proc/PID/smaps
  blk       virtio-blk on the same image in the laptop's RAM (--format raw,
            or qcow2 / vhd: a new empty image for each run, so writes allocate):
            sequential 1 MiB and random 4 KiB, read and write, O_DIRECT,
            queue depth 1 (tests/guest/progs/blkbench.c); hv-vmm vs q35
            (virtio-blk-pci, cache=writeback, aio=threads: page cache +
            thread pool, the same as hv-vmm's preadv/pwritev on its thread)

Prints a table of medians and hv/QEMU ratios. Not part of the test suite.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "vlaptop"))
sys.path.insert(0, str(ROOT / "tests" / "vmm"))

import build_image  # noqa: E402
import vlaptop  # noqa: E402
from vlaptop import newc  # noqa: E402

GUEST = "/var/lib/hv/test-guest"
B = "/tmp/bench"
QB = f"{B}/qemu"
MEM, CPUS = 256, 1
FIRMWARE = ["bios-256k.bin", "bios-microvm.bin", "qboot.rom", "linuxboot_dma.bin",
            "linuxboot.bin", "kvmvapic.bin", "pvh.bin", "multiboot_dma.bin"]

GUEST_SH = """\
mode=boot
for a in $(cat /proc/cmdline); do case "$a" in hvbench=*) mode="${a#hvbench=}";; esac; done
if [ "$mode" = idle ]; then sleep 8; fi
if [ "$mode" = blk ]; then
    for op in seqw seqr randw randr; do /blkbench /dev/vda $op 4; done
fi
"""


def qemu_bundle(tmp):
    """This machine's qemu-system-x86_64 with its libraries and firmware, as a tar."""
    qemu = subprocess.check_output(["which", "qemu-system-x86_64"], text=True).strip()
    root = Path(tmp) / "qemu"
    (root / "lib").mkdir(parents=True)
    (root / "share").mkdir()
    subprocess.check_call(["cp", "-L", qemu, str(root / "qemu-system-x86_64")])
    for line in subprocess.check_output(["ldd", qemu], text=True).splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if lib.startswith("/"):
            subprocess.check_call(["cp", "-L", lib, str(root / "lib")])
    for fw in FIRMWARE:
        for d in ("/usr/share/qemu", "/usr/share/seabios"):
            src = Path(d) / fw
            if src.exists():
                subprocess.check_call(["cp", "-L", str(src), str(root / "share")])
                break
    tar = Path(tmp) / "qemu.tar.gz"   # the agent's channel is slow under TCG: compress
    subprocess.check_call(["tar", "-C", tmp, "-czf", str(tar), "qemu"])
    return tar


def qemu_cmd(machine, extra=""):
    ld = f"{QB}/lib/ld-linux-x86-64.so.2 --library-path {QB}/lib {QB}/qemu-system-x86_64"
    m = {"microvm": "microvm,accel=kvm", "q35": "q35,accel=kvm"}[machine]
    return (f"{ld} -L {QB}/share -machine {m} -cpu host -m {MEM} -smp {CPUS} -nodefaults "
            f"-no-user-config -display none -no-reboot {extra}")


def launch_cmd(vmm, args, con, cmdline):
    kernel = f"-kernel {GUEST}/vmlinuz -initrd {B}/initrd"
    if vmm == "hv-vmm":
        return (f"hv-vmm --kernel {GUEST}/vmlinuz --initrd {B}/initrd --memory {MEM}M "
                f"--cpus {CPUS} --cmdline '{cmdline}' --console file:{con} {args}")
    return f"{qemu_cmd(vmm, args)} {kernel} -append '{cmdline}' -serial file:{con}"


def run_vm(lt, vmm, mode, args="", wait_exit=True):
    """Starts a VM, times launch -> hello in the laptop; returns (seconds, pid, console)."""
    con = f"{B}/{vmm}.con"
    cmdline = f"console=ttyS0 panic=-1 hvbench={mode}"
    script = (f"rm -f {con}; t0=$(date +%s%N); setsid {launch_cmd(vmm, args, con, cmdline)} "
              f"</dev/null >{B}/{vmm}.out 2>&1 & pid=$!; "
              f"while ! grep -q 'hv-guest: hello' {con} 2>/dev/null; do "
              f"kill -0 $pid 2>/dev/null || break; sleep 0.01; "
              f"[ $(( $(date +%s%N) - t0 )) -gt 240000000000 ] && break; done; "
              f"t1=$(date +%s%N); echo $pid $(( (t1 - t0) / 1000000 ))")
    out = lt.check(script, timeout=300).stdout.split()
    pid, ms = int(out[0]), int(out[1])
    if lt.run(f"grep -q 'hv-guest: hello' {con}").rc != 0:
        lt.run(f"kill -9 {pid}")
        raise SystemExit(f"{vmm} did not reach the guest's init:\n"
                         + lt.run(f"cat {B}/{vmm}.out; tail -c 2000 {con}").stdout)
    return ms / 1000.0, pid, con


def wait_gone(lt, pid, timeout=120):
    lt.run(f"for i in $(seq {timeout * 10}); do kill -0 {pid} 2>/dev/null || exit 0; "
           f"sleep 0.1; done; kill -9 {pid}", timeout=timeout + 30)


def overhead_mib(lt, pid):
    """VmRSS minus the resident part of the largest mapping (the guest RAM), MiB."""
    smaps = lt.check(f"cat /proc/{pid}/smaps").stdout
    best_size, best_rss, total = 0, 0, 0
    size = 0
    for line in smaps.splitlines():
        if line.startswith("Size:"):
            size = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
            total += rss
            if size > best_size:
                best_size, best_rss = size, rss
    return (total - best_rss) / 1024.0, best_rss / 1024.0


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--image-mib", type=int, default=256)
    ap.add_argument("--format", choices=("raw", "qcow2", "vhd"), default="raw",
                    help="the blk image: raw, or an empty qcow2 (64 KiB clusters) or dynamic "
                         "VHD made by qemu-img, so that the writes allocate")
    opts = ap.parse_args()

    img = build_image.ensure_image()
    with tempfile.TemporaryDirectory() as tmp:
        tar = qemu_bundle(tmp)
        progs = {}
        for name in ["blkbench"]:
            exe = Path(tmp) / name
            subprocess.check_call(["gcc", "-static", "-O2", "-D_GNU_SOURCE", "-o", str(exe),
                                   str(ROOT / "tests" / "guest" / "progs" / f"{name}.c")])
            progs[name] = (0o100755, exe.read_bytes())
        cpio = newc({"test.sh": (0o100755, GUEST_SH.encode()), **progs})
        with vlaptop.Laptop(image=img, name="bench-vmm") as lt:
            lt.check(f"rm -rf {B}; mkdir -p {B}; modprobe kvm_amd")
            t0 = time.monotonic()
            lt.put(tar, f"{B}/qemu.tar.gz", timeout=900)
            lt.check(f"tar -C {B} -xzf {B}/qemu.tar.gz && rm {B}/qemu.tar.gz", timeout=300)
            print(f"QEMU copied into the laptop in {time.monotonic() - t0:.0f} s", flush=True)
            lt.put(cpio, f"{B}/extra.cpio")
            lt.check(f"cat {GUEST}/initrd.img {B}/extra.cpio > {B}/initrd")
            lt.check(f"{QB}/lib/ld-linux-x86-64.so.2 --library-path {QB}/lib "
                     f"{QB}/qemu-system-x86_64 --version")
            vmms = ["hv-vmm", "microvm", "q35"]
            boot = {v: [] for v in vmms}
            mem = {v: [] for v in vmms}
            for r in range(opts.runs):
                for v in vmms:   # interleaved, so drifts hit all alike
                    # The guest idles 8 s at init, then powers off.
                    secs, pid, _ = run_vm(lt, v, "idle")
                    boot[v].append(secs)
                    time.sleep(2)
                    mem[v].append(overhead_mib(lt, pid))
                    wait_gone(lt, pid)
                    print(f"run {r}: {v}: boot {boot[v][-1]:.2f} s, overhead "
                          f"{mem[v][-1][0]:.1f} MiB (guest RAM resident {mem[v][-1][1]:.0f} MiB)",
                          flush=True)
            disk = f"{B}/disk.img"
            qfmt = {"raw": "raw", "qcow2": "qcow2", "vhd": "vpc"}[opts.format]
            make = {"raw": f"truncate -s {opts.image_mib}M {disk}",
                    "qcow2": f"qemu-img create -q -f qcow2 {disk} {opts.image_mib}M",
                    "vhd": f"qemu-img create -q -f vpc -o subformat=dynamic,force_size=on {disk} "
                           f"{opts.image_mib}M"}[opts.format]
            blk = {"hv-vmm": {}, "q35": {}}
            args = {"hv-vmm": f"--disk {disk},format={opts.format}",
                    "q35": f"-drive file={disk},format={qfmt},if=none,id=d0,cache=writeback,"
                           f"aio=threads -device virtio-blk-pci,drive=d0"}
            for r in range(opts.runs):
                for v in blk:
                    lt.check(f"rm -f {disk} && {make}")  # each run allocates afresh
                    _, pid, con = run_vm(lt, v, "blk", args[v])
                    wait_gone(lt, pid, 180)
                    for line in lt.check(f"cat {con}").stdout.splitlines():
                        if line.startswith("blkbench: "):
                            w = line.split()
                            blk[v].setdefault(w[1], []).append(
                                float(w[3]) if w[1].startswith("seq") else float(w[5]))
                    print(f"run {r}: {v}: blk {blk[v]}", flush=True)

    print("\n| measure | hv-vmm | QEMU microvm | QEMU q35 | hv/microvm | hv/q35 |")
    print("|---|---|---|---|---|---|")
    h, mi, q = med(boot["hv-vmm"]), med(boot["microvm"]), med(boot["q35"])
    print(f"| boot to init (s) | {h:.2f} | {mi:.2f} | {q:.2f} | {h / mi:.2f} | {h / q:.2f} |")
    h, mi, q = (med([m[0] for m in mem[v]]) for v in vmms)
    print(f"| VMM RSS minus guest RAM (MiB) | {h:.1f} | {mi:.1f} | {q:.1f} | {h / mi:.2f} | "
          f"{h / q:.2f} |")
    for op, unit in [("seqw", "MiB/s"), ("seqr", "MiB/s"), ("randw", "IOPS"), ("randr", "IOPS")]:
        h, q = med(blk["hv-vmm"].get(op, [])), med(blk["q35"].get(op, []))
        print(f"| blk {op} ({unit}) | {h:.0f} | - | {q:.0f} | - | {h / q:.2f} |")
    print(f"\n{opts.runs} runs each, medians; all values: boot {boot}, memory {mem}, blk {blk}")


if __name__ == "__main__":
    main()
