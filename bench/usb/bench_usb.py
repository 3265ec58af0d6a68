#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Bulk read throughput of one usb-storage device, four ways, in the virtual laptop.

    HV_BUILD_DIR=/tmp/mybuild /usr/bin/python3 bench/usb/bench_usb.py [--runs 3] [--mib 64]

One laptop boot; QEMU's usb-storage (high speed, on the laptop's xHCI) backed
by a file of random bytes is read with `dd bs=1M iflag=direct` (no page cache)
from the block device it becomes:

  native     the laptop's own usb-storage driver on the xHCI
  usbip-tcp  the kernel's usbip-host + usbipd, attached with `usbip attach`
             to the laptop's vhci-hcd over TCP loopback (the stock baseline)
  hvusbd-tcp hv-usbd serving it over TCP loopback to the laptop's vhci-hcd
  pv-guest   hv-usbd over vsock into a guest (hv-vmm, desktop test guest,
             hv-usb-agent), the guest's vhci-hcd; the product path

and reports MiB/s per run, the median, and each median as a ratio to native.
Everything runs under TCG (and the guest under nested KVM on it), so absolute
numbers say little; the ratios are the point. Not part of the test suite.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "vlaptop"))

import build_image  # noqa: E402
import vlaptop  # noqa: E402
from vlaptop import newc, sd_disk, wait_for  # noqa: E402

CTL = "/run/hv-usbd.sock"
VMM = "/usr/local/bin/hv-vmm"
CID = 29
W = "/tmp/usbbench"
PORT_HVUSBD, PORT_USBIPD = 3240, 3241


def log(msg):
    print(f"bench: {msg}", flush=True)


def busid_of(lt):
    import json
    res = lt.run(f"echo '{{\"cmd\":\"list\"}}' | socat -t 5 - UNIX-CONNECT:{CTL}")
    try:
        devs = json.loads(res.stdout.strip().splitlines()[-1])["devices"]
    except (ValueError, IndexError, KeyError):
        return None
    return next((d["busid"] for d in devs if d["id"] == "46f4:0001"), None)


def ctl(lt, text):
    return lt.check(f"echo '{text}' | socat -t 30 - UNIX-CONNECT:{CTL}", timeout=60).stdout


def dd_runs(lt, dev, runs, mib):
    """MiB/s of each dd run over the first `mib` MiB of /dev/dev."""
    out = []
    for _ in range(runs):
        res = lt.check(f"t0=$(date +%s.%N); dd if=/dev/{dev} of=/dev/null bs=1M count={mib} "
                       f"iflag=direct 2>/dev/null; t1=$(date +%s.%N); echo $t0 $t1",
                       timeout=900)
        t0, t1 = map(float, res.stdout.split())
        out.append(mib / (t1 - t0))
    return out


GUEST_SH = r"""
say() { echo "hv-guest: $*"; }
vdisk() {
    for d in /sys/block/sd*; do
        [ -e "$d" ] || continue
        case "$(readlink -f "$d")" in *vhci_hcd*) basename "$d"; return 0 ;; esac
    done
    return 1
}
/hv-usb-agent > /tmp/agent.log 2>&1 &
sleep 0.5
say "agent up"
i=0; while [ $i -lt 600 ] && ! vdisk >/dev/null; do sleep 0.5; i=$((i + 1)); done
sd=$(vdisk) || { say "fail no disk"; exit 1; }
sleep 1
for r in $(seq RUNS); do
    t0=$(cut -d' ' -f1 /proc/uptime)
    dd if=/dev/$sd of=/dev/null bs=1M count=MIB iflag=direct 2>/dev/null
    t1=$(cut -d' ' -f1 /proc/uptime)
    say "run $t0 $t1"
done
say "bench done"
"""


def pv_guest(lt, busid, runs, mib, agent):
    lt.put(newc({"test.sh": (0o100755, GUEST_SH.replace("RUNS", str(runs))
                              .replace("MIB", str(mib)).encode()),
                 "hv-usb-agent": (0o100755, agent.read_bytes())}), f"{W}/b.cpio")
    lt.check(f"cat {lt.desktop_initrd} {W}/b.cpio > {W}/b.initrd")
    con = f"{W}/vm.console"
    lt.check(f"setsid sh -c '{VMM} --kernel {lt.desktop_kernel} --initrd {W}/b.initrd "
             f"--memory 512M --cpus 2 --vsock {CID} --console file:{con} </dev/null "
             f"2>{W}/vm.err' >/dev/null 2>&1 & echo $! > {W}/vm.pid")
    try:
        wait_for(lambda: lt.run(f"grep -q 'hv-guest: agent up' {con}").ok, 600, "the guest's agent")
        for _ in range(10):
            rep = ctl(lt, f'{{"cmd":"attach","busid":"{busid}","vm":"b","cid":{CID}}}')
            if '"ok":true' in rep:
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"attach to the guest failed: {rep}")
        wait_for(lambda: lt.run(f"grep -q 'hv-guest: bench done\\|hv-guest: fail' {con}").ok,
             600 + 120 * runs, "the guest's runs")
        text = lt.run(f"cat {con}").stdout
        speeds = []
        for line in text.splitlines():
            if line.strip().startswith("hv-guest: run "):
                t0, t1 = map(float, line.split()[2:4])
                speeds.append(mib / (t1 - t0))
        if not speeds:
            raise RuntimeError(f"no runs on the guest's console:\n{text[-3000:]}")
        return speeds
    finally:
        ctl(lt, f'{{"cmd":"detach","busid":"{busid}"}}')
        lt.run(f"pkill -9 -s $(cat {W}/vm.pid) 2>/dev/null")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=64, help="MiB read per run")
    ap.add_argument("--only", default="native,usbip-tcp,hvusbd-tcp,pv-guest")
    args = ap.parse_args()
    want = args.only.split(",")
    results = {}

    tmp = Path(tempfile.mkdtemp(prefix="usbbench."))
    img = tmp / "stick.img"
    with open(img, "wb") as f:
        for _ in range(args.mib + 8):
            f.write(os.urandom(1 << 20))
    agent = tmp / "hv-usb-agent"
    subprocess.run(["gcc", "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-o", str(agent),
                    str(ROOT / "usb" / "agent" / "hv-usb-agent.c")], check=True)
    image = build_image.ensure_image()
    with vlaptop.Laptop(image=image, name="usb-bench") as lt:
        log(f"laptop up in {lt.boot_seconds:.1f} s")
        lt.check("modprobe -a vhci-hcd usb-storage sd_mod usbip-host kvm_amd vhost_vsock 2>&1")
        lt.check("pidof systemd-udevd >/dev/null || /lib/systemd/systemd-udevd --daemon; "
                 "udevadm settle -t 10", timeout=60)
        lt.check(f"mkdir -p {W}; hv-usbd --control {CTL} --tcp {PORT_HVUSBD} >{W}/usbd.log 2>&1 &"
                 " sleep 1")
        lt.usb_add("stick", img)
        busid = wait_for(lambda: busid_of(lt), 60, "hv-usbd to list the stick")
        log(f"stick at {busid}")

        if "native" in want:
            sd = wait_for(lambda: sd_disk(lt, False), 60, "the native disk")
            results["native"] = dd_runs(lt, sd, args.runs, args.mib)
            log(f"native: {results['native']}")

        if "usbip-tcp" in want:
            lt.check(f"usbipd -D --tcp-port {PORT_USBIPD} && sleep 0.5 && usbip bind -b {busid}",
                     timeout=60)
            lt.check(f"usbip --tcp-port {PORT_USBIPD} attach -r 127.0.0.1 -b {busid}",
                     timeout=60)
            sd = wait_for(lambda: sd_disk(lt, True), 60, "the vhci disk (usbip-host)")
            results["usbip-tcp"] = dd_runs(lt, sd, args.runs, args.mib)
            log(f"usbip-tcp: {results['usbip-tcp']}")
            lt.run("for p in $(usbip port | sed -n 's/^Port \\([0-9]*\\):.*/\\1/p'); do "
                   "usbip detach -p $p; done")
            wait_for(lambda: sd_disk(lt, True) is None, 60, "the vhci disk to go")
            lt.run(f"usbip unbind -b {busid}; pkill -x usbipd")
            wait_for(lambda: sd_disk(lt, False), 60, "the stick back on usb-storage")

        if "hvusbd-tcp" in want:
            ctl(lt, f'{{"cmd":"attach","busid":"{busid}","tcp":true}}')
            lt.check(f"usbip attach -r 127.0.0.1 -b {busid}", timeout=60)
            sd = wait_for(lambda: sd_disk(lt, True), 60, "the vhci disk (hv-usbd)")
            results["hvusbd-tcp"] = dd_runs(lt, sd, args.runs, args.mib)
            log(f"hvusbd-tcp: {results['hvusbd-tcp']}")
            lt.run("for p in $(usbip port | sed -n 's/^Port \\([0-9]*\\):.*/\\1/p'); do "
                   "usbip detach -p $p; done")
            wait_for(lambda: sd_disk(lt, True) is None, 60, "the vhci disk to go")
            ctl(lt, f'{{"cmd":"detach","busid":"{busid}"}}')

        if "pv-guest" in want:
            results["pv-guest"] = pv_guest(lt, busid, args.runs, args.mib, agent)
            log(f"pv-guest: {results['pv-guest']}")
    shutil.rmtree(tmp)

    base = statistics.median(results["native"]) if "native" in results else None
    print(f"\n{args.mib} MiB per run, {args.runs} runs, dd bs=1M iflag=direct")
    print(f"{'path':<11} {'median MiB/s':>12} {'vs native':>9}  runs")
    for k, v in results.items():
        med = statistics.median(v)
        ratio = f"{med / base:.2f}" if base else "-"
        print(f"{k:<11} {med:>12.2f} {ratio:>9}  {' '.join(f'{x:.2f}' for x in v)}")


if __name__ == "__main__":
    main()
