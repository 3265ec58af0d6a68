#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""How reliable is the virtual laptop's nested KVM? Boots test guests until told.

Each round starts --vms guests at once with hv-vmm in one laptop and waits
for each to print "hv-guest: hello"; then they are killed and the next round
starts. A guest that does not get there within --guest-timeout is a hang (its
console tail and the laptop's dmesg are kept); a laptop whose kernel panics
or that stops answering is a crash, and is booted again. At the end one line
per setting says how many guest boots, hangs and laptop crashes there were.

    tests/vlaptop/nested_stress.py --boots 50
    tests/vlaptop/nested_stress.py --boots 50 --smp 1 --accel tcg,thread=single
    tests/vlaptop/nested_stress.py --boots 30 --kvm-params "npt=1"   # the laptop defaults to npt=0
    tests/vlaptop/nested_stress.py --boots 50 --vmm qemu   # QEMU/KVM runs the guests

The figures it gave are in docs/testing.md ("How reliable nested SVM is").
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vlaptop  # noqa: E402

# The guests: hv-vmm, or QEMU/KVM inside the laptop (this machine's QEMU copied
# in, as bench/vmm does), on the same kernel, initrd and command line.
HV_VMM = ("hv-vmm --kernel $G/vmlinuz --initrd $G/initrd.img --memory 256M --cpus {cpus} "
          "--console file:/tmp/st-c$n.log --name st$n --sandbox off --control /tmp/st-ctl$n.sock "
          "--cmdline 'console=ttyS0 panic=-1 nokaslr'")
QB = "/root/stress-qemu"
QEMU_KVM = (f"{QB}/lib/ld-linux-x86-64.so.2 --library-path {QB}/lib {QB}/qemu-system-x86_64 "
            f"-L {QB}/share -machine q35,accel=kvm -cpu host -m 256M -smp {{cpus}} -nodefaults "
            "-no-user-config -display none -no-reboot -name st$n -kernel $G/vmlinuz "
            "-initrd $G/initrd.img -append 'console=ttyS0 panic=-1 nokaslr' "
            "-serial file:/tmp/st-c$n.log")

ROUND = r"""
G=/var/lib/hv/test-guest
rm -f /tmp/st-*.log
for n in $(seq {vms}); do
    setsid {launch} </dev/null >/tmp/st-e$n.log 2>&1 &
done
t0=$(date +%s.%N)
left={vms}
end=$(( $(date +%s) + {timeout} ))
while [ $(date +%s) -lt $end ]; do
    left=0
    for n in $(seq {vms}); do
        grep -q 'hv-guest: hello' /tmp/st-c$n.log 2>/dev/null || left=$((left + 1))
    done
    [ $left = 0 ] && break
    sleep 0.5
done
echo "round: $(awk -v a=$t0 -v b=$(date +%s.%N) 'BEGIN {{printf "%.1f", b - a}}') s, $left not up"
for n in $(seq {vms}); do
    if grep -q 'hv-guest: hello' /tmp/st-c$n.log 2>/dev/null; then echo "vm$n: up"; else
        echo "vm$n: HANG"; tail -c 400 /tmp/st-c$n.log | tr -d '\r'; echo; tail -3 /tmp/st-e$n.log
        pid=$(pgrep -f "name st$n( |$)")
        [ -n "$pid" ] && grep -h . /proc/$pid/task/*/stat | cut -d' ' -f2,3,14,15
        for i in 1 2 3 4 5 6; do
            echo '{{"cmd": "cpu-state"}}' | socat -t2 - UNIX-CONNECT:/tmp/st-ctl$n.sock
            sleep 0.4
        done
    fi
done
pkill -9 -f "name st[0-9]"
sleep 0.5
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boots", type=int, default=50, help="guest boots in all")
    ap.add_argument("--vms", type=int, default=3, help="guests booted at once")
    ap.add_argument("--cpus", type=int, default=1, help="vCPUs per guest")
    ap.add_argument("--smp", type=int, default=2, help="the laptop's CPUs")
    ap.add_argument("--accel", default="tcg", help="QEMU -accel (e.g. tcg,thread=single)")
    ap.add_argument("--kvm-params", default="", help="kvm_amd module parameters")
    ap.add_argument("--guest-timeout", type=int, default=240)
    ap.add_argument("--vmm", choices=("hv-vmm", "qemu"), default="hv-vmm",
                    help="what runs the guests in the laptop")
    ap.add_argument("--log", default="nested-stress.jsonl", help="one JSON line per round")
    args = ap.parse_args()

    if args.vmm == "qemu":
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "vmm"))
        from bench_vmm import qemu_bundle
        qemu_tar = qemu_bundle(tempfile.mkdtemp(prefix="stress-qemu."))
    stats = {"boots": 0, "hangs": 0, "crashes": 0, "rounds": 0}
    t_start = time.monotonic()
    log = open(args.log, "a")
    lt = None
    while stats["boots"] < args.boots:
        if lt is None:
            lt = vlaptop.Laptop(smp=args.smp, accel=args.accel, name="nested-stress")
            lt.start()
            lt.check(f"modprobe kvm_amd {args.kvm_params}")
            if args.vmm == "qemu":
                lt.put(qemu_tar, "/root/stress-qemu.tar.gz", timeout=900)
                lt.check("tar -C /root -xzf /root/stress-qemu.tar.gz && "
                         "mv /root/qemu /root/stress-qemu", timeout=300)
        launch = (HV_VMM if args.vmm == "hv-vmm" else QEMU_KVM).format(cpus=args.cpus)
        cmd = ROUND.format(vms=args.vms, launch=launch, timeout=args.guest_timeout)
        try:
            res = lt.run(cmd, timeout=args.guest_timeout + 60)
            out = res.stdout
        except vlaptop.LaptopError as e:
            out = f"agent: {e}"
        why = lt.crashed()
        up = out.count(": up")
        hangs = out.count(": HANG")
        stats["rounds"] += 1
        stats["boots"] += up + hangs
        stats["hangs"] += hangs
        rec = {"round": stats["rounds"], "up": up, "hangs": hangs, "crash": why,
               "out": out if (hangs or why) else out.splitlines()[0] if out else ""}
        if why:
            stats["crashes"] += 1
            console = lt.console_text()
            rec["console"] = console[console.rfind("BUG:") - 200 if "BUG:" in console else -3000:]
            lt.stop()
            lt = None
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(f"round {stats['rounds']}: {up} up, {hangs} hang(s)"
              f"{', laptop CRASHED: ' + why if why else ''}  "
              f"[{out.splitlines()[0] if out else ''}]", flush=True)
    if lt:
        lt.stop()
    minutes = (time.monotonic() - t_start) / 60
    print(f"setting: vmm={args.vmm} smp={args.smp} accel={args.accel} kvm_amd='{args.kvm_params}' "
          f"vms={args.vms} cpus={args.cpus}: {stats['boots']} guest boots, "
          f"{stats['hangs']} hangs, {stats['crashes']} laptop crashes, {minutes:.1f} min")


if __name__ == "__main__":
    main()
