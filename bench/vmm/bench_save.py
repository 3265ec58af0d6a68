#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Save and restore, hv-vmm vs QEMU, in one virtual laptop (docs/benchmarks.md).

    HV_BUILD_DIR=/tmp/mybuild /usr/bin/python3 bench/vmm/bench_save.py [--runs N]

Boots the laptop once, copies this machine's QEMU into it (as bench_vmm.py
does), and for guests of 256 MiB and 1 GiB (1 vCPU, the test-guest kernel,
a guest that fills a quarter of its RAM with random bytes and then prints
a tick every 50 ms) measures, interleaved run by run:

  save      hv-vmm: the control socket's "save" into a passed file (as hvd
            does) until the reply; QEMU q35: QMP "migrate" to
            "exec:cat > FILE" with max-bandwidth unlimited, until
            query-migrate says completed
  size      of the file
  restore   launch of the restoring process -> the next tick on the guest's
            serial console (hv-vmm --restore, which reads and checks every
            page first; hv-vmm --restore --instant-on, which maps them;
            QEMU -incoming "exec:cat FILE")

Prints medians with their spread (min-max) and the hv/QEMU ratio.
Not part of the test suite.
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "vlaptop"))
sys.path.insert(0, str(ROOT / "bench" / "vmm"))

import bench_vmm  # noqa: E402
import build_image  # noqa: E402
import vlaptop  # noqa: E402
from bench_vmm import B, GUEST, QB, med, qemu_bundle  # noqa: E402
from vlaptop import newc  # noqa: E402

GUEST_SH = """\
mb=$(( $(awk '/^MemTotal/ {print $2}' /proc/meminfo) / 4096 ))
dd if=/dev/urandom of=/fill bs=1M count=$mb 2>/dev/null
echo "hv-guest: filled $mb MiB"
i=0
while :; do i=$((i + 1)); echo "hv-guest: tick $i"; usleep 50000 2>/dev/null || sleep 0.05; done
"""


def launch(vmm, mem, con, extra=""):
    cmdline = "console=ttyS0 panic=-1"
    if vmm.startswith("hv-"):
        return (f"hv-vmm --kernel {GUEST}/vmlinuz --initrd {B}/initrd --memory {mem}M "
                f"--cpus 1 --cmdline '{cmdline}' --console file:{con} --control {B}/hv.sock "
                f"{extra}")
    bench_vmm.MEM = mem
    return (f"{bench_vmm.qemu_cmd('q35', extra)} -kernel {GUEST}/vmlinuz -initrd {B}/initrd "
            f"-append '{cmdline}' -serial file:{con} -qmp unix:{B}/qmp.sock,server=on,wait=off")


def start(lt, cmd, name):
    con = f"{B}/{name}.con"
    lt.check(f"rm -f {con}; setsid {cmd.replace('CON', con)} </dev/null >{B}/{name}.out 2>&1 & "
             f"echo $! > {B}/{name}.pid")
    return int(lt.check(f"cat {B}/{name}.pid").stdout), con


def wait_text(lt, con, text, timeout=300):
    res = lt.run(f"t0=$(date +%s); while ! grep -q {shlex.quote(text)} {con} 2>/dev/null; do "
                 f"[ $(( $(date +%s) - t0 )) -gt {timeout} ] && exit 1; sleep 0.2; done",
                 timeout=timeout + 30)
    if res.rc != 0:
        raise SystemExit(f"{text!r} never came:\n" + lt.run(f"tail -c 2000 {con}").stdout)


def qmp(lt, *cmds):
    lines = [{"execute": "qmp_capabilities"}] + list(cmds)
    body = "\n".join(json.dumps(c) for c in lines) + "\n"
    return lt.check(f"printf %s {shlex.quote(body)} | socat -t 2 - UNIX-CONNECT:{B}/qmp.sock",
                    timeout=60).stdout


def save_hv(lt, f):
    out = lt.check(f"t0=$(date +%s%N); /tmp/save_client {B}/hv.sock {f} exit >/dev/null; "
                   f"t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 ))", timeout=600).stdout
    return int(out.split()[-1]) / 1000.0


def save_qemu(lt, f):
    qmp(lt, {"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1 << 40}})
    t0 = time.monotonic()
    qmp(lt, {"execute": "migrate", "arguments": {"uri": f"exec:cat > {f}"}})
    while '"completed"' not in qmp(lt, {"execute": "query-migrate"}):
        if time.monotonic() - t0 > 600:
            raise SystemExit("QEMU's migration did not complete")
        time.sleep(0.05)
    return time.monotonic() - t0


def restore_time(lt, cmd, name):
    """Launch -> a tick newer than the file's: seconds, measured in the laptop."""
    con = f"{B}/{name}.con"
    out = lt.check(f"rm -f {con}; t0=$(date +%s%N); setsid {cmd.replace('CON', con)} </dev/null "
                   f">{B}/{name}.out 2>&1 & pid=$!; "
                   f"while ! grep -q 'hv-guest: tick' {con} 2>/dev/null; do "
                   f"kill -0 $pid 2>/dev/null || break; sleep 0.005; "
                   f"[ $(( $(date +%s%N) - t0 )) -gt 180000000000 ] && break; done; "
                   f"t1=$(date +%s%N); echo $pid $(( (t1 - t0) / 1000000 ))", timeout=600).stdout
    pid, ms = out.split()
    if lt.run(f"grep -q 'hv-guest: tick' {con}").rc != 0:
        raise SystemExit(f"{name} did not continue within 180 s:\n"
                         + lt.run(f"cat {B}/{name}.out; tail -c 1000 {con}").stdout)
    return int(ms) / 1000.0, int(pid)


def spread(xs):
    return f"{med(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory", type=int, nargs="*", default=[256, 1024])
    opts = ap.parse_args()

    img = build_image.ensure_image()
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        tar = qemu_bundle(tmp)
        client = Path(tmp) / "save_client"
        subprocess.check_call(["gcc", "-static", "-O2", "-D_GNU_SOURCE", "-o", str(client),
                               str(ROOT / "tests" / "vmm" / "save_client.c")])
        with vlaptop.Laptop(image=img, name="bench-save", memory="6G") as lt:
            lt.check(f"rm -rf {B}; mkdir -p {B}; modprobe kvm_amd")
            lt.put(tar, f"{B}/qemu.tar.gz", timeout=900)
            lt.check(f"tar -C {B} -xzf {B}/qemu.tar.gz && rm {B}/qemu.tar.gz", timeout=300)
            lt.put(client, "/tmp/save_client", mode=0o755)
            lt.put(newc({"test.sh": (0o100755, GUEST_SH.encode())}), f"{B}/extra.cpio")
            lt.check(f"cat {GUEST}/initrd.img {B}/extra.cpio > {B}/initrd")
            for mem in opts.memory:
                for r in range(opts.runs):
                    for vmm in ("hv-vmm", "hv-instant", "q35"):
                        f = f"{B}/{vmm}.save"
                        lt.run(f"rm -f {f}")
                        pid, con = start(lt, launch(vmm, mem, "CON"), f"{vmm}-src")
                        wait_text(lt, con, "hv-guest: filled")
                        wait_text(lt, con, "hv-guest: tick 5")
                        s = save_hv(lt, f) if vmm.startswith("hv-") else save_qemu(lt, f)
                        lt.run(f"kill -9 {pid} 2>/dev/null; sleep 0.5")
                        size = int(lt.check(f"stat -c %s {f}").stdout) / (1 << 20)
                        extra = {"hv-vmm": f"--restore {f}",
                                 "hv-instant": f"--restore {f} --instant-on",
                                 "q35": f"-incoming 'exec:cat {f}'"}[vmm]
                        rt, pid2 = restore_time(lt, launch(vmm, mem, "CON", extra), f"{vmm}-dst")
                        lt.run(f"kill -9 {pid2} 2>/dev/null; sleep 0.5")
                        d = res.setdefault((mem, vmm), {"save": [], "size": [], "restore": []})
                        d["save"].append(s)
                        d["size"].append(size)
                        d["restore"].append(rt)
                        print(f"{mem} MiB run {r}: {vmm}: save {s:.2f} s, {size:.0f} MiB, "
                              f"restore {rt:.2f} s", flush=True)

    print("\n| guest | measure | hv-vmm | hv-vmm --instant-on | QEMU q35 | hv/QEMU | "
          "instant/QEMU |")
    print("|---|---|---|---|---|---|---|")
    for mem in opts.memory:
        h, i, q = res[(mem, "hv-vmm")], res[(mem, "hv-instant")], res[(mem, "q35")]
        for m, unit in (("save", "s"), ("size", "MiB"), ("restore", "s")):
            print(f"| {mem} MiB | {m} ({unit}) | {spread(h[m])} | {spread(i[m])} | "
                  f"{spread(q[m])} | {med(h[m]) / med(q[m]):.2f} | "
                  f"{med(i[m]) / med(q[m]):.2f} |")


if __name__ == "__main__":
    main()
