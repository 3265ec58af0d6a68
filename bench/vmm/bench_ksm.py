#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Page sharing between identical guests (KSM), in one virtual laptop (docs/memory.md).

    HV_BUILD_DIR=build /usr/bin/python3 bench/vmm/bench_ksm.py [--runs N] [--guests N] [--memory MIB]

Boots the laptop once, turns KSM on (run=1, pages_to_scan 4000 every 20 ms)
and, run by run, interleaves three ways of backing guest RAM:

  anon+ksm   hv-vmm's default: private anonymous memory marked MADV_MERGEABLE
  anon       the same with --ksm off (no page offered to KSM)
  memfd      --mem-backing memfd: a shared memfd (what hv-vmm did before), which
             KSM cannot merge even though it is marked mergeable

Each round starts N identical test guests (default 4 of 256 MiB: same kernel,
same initramfs, 1 vCPU, idle after boot), waits for every guest's
"hv-guest: hello", then until KSM's pages_sharing stands still (less than 1 %
growth over 15 s, at least 45 s after the last hello, at most --settle s) and
reads:

  used       the laptop's MemTotal - MemFree after dropping its page cache,
             minus the same before the guests started (what the guests cost)
  rss        the sum of the hv-vmm processes' VmRSS (KSM pages count in each)
  sharing    /sys/kernel/mm/ksm/pages_sharing (pages saved) and pages_shared
  settle     seconds from the last hello (and from the launch of the first
             guest) to KSM's steady state

Then the guests are killed and KSM unmerges everything (run=2) before the
next round. Prints medians with their spread (min-max). Not part of the
test suite.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "vlaptop"))

import build_image  # noqa: E402
import vlaptop  # noqa: E402
from vlaptop import newc  # noqa: E402

GUEST = "/var/lib/hv/test-guest"
B = "/tmp/bksm"
KSM = "/sys/kernel/mm/ksm"
MODES = {"anon+ksm": "", "anon": "--ksm off", "memfd": "--mem-backing memfd"}

GUEST_SH = """\
i=0
while :; do i=$((i + 1)); echo "hv-guest: tick $i"; sleep 5; done
"""


class GuestHang(Exception):
    """A guest that never said hello (its console tail in the message)."""


def meminfo(lt):
    out = lt.check("sync; echo 3 > /proc/sys/vm/drop_caches; cat /proc/meminfo").stdout
    kv = {line.split(":")[0]: int(line.split()[1]) for line in out.splitlines()}
    return kv


def used_mib(lt):
    m = meminfo(lt)
    return (m["MemTotal"] - m["MemFree"]) / 1024


def ksm(lt, name):
    return int(lt.check(f"cat {KSM}/{name}").stdout)


def one_round(lt, mode, guests, mem, settle_max):
    lt.check(f"echo 2 > {KSM}/run")  # unmerge what an earlier round left
    lt.check(f"echo 4000 > {KSM}/pages_to_scan; echo 20 > {KSM}/sleep_millisecs; "
             f"echo 1 > {KSM}/run")
    time.sleep(2)
    base = used_mib(lt)
    launched = time.time()
    pids = []
    for g in range(guests):
        con = f"{B}/g{g}.console"
        cmd = (f"hv-vmm --kernel {GUEST}/vmlinuz --initrd {B}/initrd --memory {mem}M --cpus 1 "
               f"--console file:{con} --name g{g} {MODES[mode]}")
        lt.check(f"rm -f {con}; setsid {cmd} </dev/null >/dev/null 2>{B}/g{g}.err & "
                 f"echo $! > {B}/g{g}.pid")
        pids.append(int(lt.check(f"cat {B}/g{g}.pid").stdout))
    deadline = time.time() + 600
    for g in range(guests):
        while lt.run(f"grep -q 'hv-guest: hello' {B}/g{g}.console").rc != 0:
            if time.time() > deadline:
                raise GuestHang(f"guest g{g} did not come up:\n" +
                                   lt.run(f"tail -c 1500 {B}/g{g}.console; cat {B}/g{g}.err")
                                   .stdout)
            time.sleep(2)
    up = time.time()
    last, last_t = ksm(lt, "pages_sharing"), time.time()
    while time.time() - up < settle_max:
        time.sleep(5)
        now = ksm(lt, "pages_sharing")
        if now > last * 1.01 + 16:
            last, last_t = now, time.time()
        elif time.time() - last_t >= 15 and time.time() - up >= 45:
            break
    settle = last_t - up
    settle_launch = last_t - launched
    used = used_mib(lt) - base
    rss = sum(int(lt.check(f"awk '/VmRSS/ {{print $2}}' /proc/{p}/status").stdout or 0)
              for p in pids) / 1024
    sharing, shared = ksm(lt, "pages_sharing"), ksm(lt, "pages_shared")
    alive = all(lt.run(f"kill -0 {p}").rc == 0 for p in pids)
    for p in pids:
        lt.run(f"kill -9 {p} 2>/dev/null")
    time.sleep(2)
    return {"used": used, "rss": rss, "sharing": sharing * 4 / 1024, "shared": shared * 4 / 1024,
            "settle": settle, "settle_launch": settle_launch, "alive": alive}


def spread(xs):
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--guests", type=int, default=4)
    ap.add_argument("--memory", type=int, default=256, help="MiB per guest")
    ap.add_argument("--settle", type=int, default=180, help="most seconds to wait for KSM")
    ap.add_argument("--modes", nargs="*", default=list(MODES))
    ap.add_argument("--laptop-memory", default="4G", help="the laptop's RAM (QEMU -m)")
    opts = ap.parse_args()

    img = build_image.ensure_image()
    res = {}
    lost = []
    with vlaptop.Laptop(image=img, name="bench-ksm", memory=opts.laptop_memory) as lt:
        def setup(lt):
            lt.check(f"rm -rf {B}; mkdir -p {B}; modprobe kvm_amd")
            lt.put(newc({"test.sh": (0o100755, GUEST_SH.encode())}), f"{B}/extra.cpio")
            lt.check(f"cat {GUEST}/initrd.img {B}/extra.cpio > {B}/initrd")
        lt.prepare(setup)
        thp = lt.run("cat /sys/kernel/mm/transparent_hugepage/enabled").stdout.strip()
        print(f"laptop: {lt.run('uname -r').stdout.strip()}, THP {thp}, "
              f"MemTotal {meminfo(lt)['MemTotal'] // 1024} MiB", flush=True)
        for r in range(opts.runs):
            for mode in opts.modes:
                try:
                    d = one_round(lt, mode, opts.guests, opts.memory, opts.settle)
                except GuestHang as e:
                    print(f"run {r} {mode}: lost, {e}", flush=True)
                    lost.append(f"run {r} {mode} (a guest hung)")
                    lt.run(f"for f in {B}/g*.pid; do kill -9 $(cat $f) 2>/dev/null; done; sleep 2")
                    continue
                except vlaptop.LaptopError as e:
                    # The TCG laptop freezes now and then under load (docs/testing.md,
                    # "Known flakes"): that round is lost, the laptop booted again.
                    print(f"run {r} {mode}: lost, the laptop went down ({e})", flush=True)
                    lost.append(f"run {r} {mode}")
                    log = Path(f"bench-ksm-lost-{r}-{mode}.console")
                    log.write_text(lt.console_text())
                    print(f"  its console: {log.resolve()}", flush=True)
                    lt.restart(str(e))
                    continue
                res.setdefault(mode, []).append(d)
                print(f"run {r} {mode}: used {d['used']:.0f} MiB, rss {d['rss']:.0f} MiB, "
                      f"pages_sharing {d['sharing']:.0f} MiB, pages_shared {d['shared']:.0f} MiB, "
                      f"settle {d['settle']:.0f} s after the last hello, "
                      f"{d['settle_launch']:.0f} s after the launch, all alive {d['alive']}",
                      flush=True)

    total = opts.guests * opts.memory
    print(f"\n{opts.guests} guests x {opts.memory} MiB = {total} MiB of guest RAM; "
          f"medians (min-max) of {opts.runs} runs"
          + (f"; lost to a laptop crash: {', '.join(lost)}" if lost else "") + "\n")
    print("| RAM backing | laptop memory used by the guests (MiB) | sum of hv-vmm RSS (MiB) | "
          "KSM pages_sharing (MiB saved) | KSM pages_shared (MiB) | KSM steady, s after the "
          "last hello / the launch |")
    print("|---|---|---|---|---|---|")
    for mode in opts.modes:
        rs = res.get(mode)
        if not rs:
            continue
        print(f"| {mode} | {spread([x['used'] for x in rs])} | {spread([x['rss'] for x in rs])} | "
              f"{spread([x['sharing'] for x in rs])} | {spread([x['shared'] for x in rs])} | "
              f"{spread([x['settle'] for x in rs])} / {spread([x['settle_launch'] for x in rs])} |")


if __name__ == "__main__":
    main()
