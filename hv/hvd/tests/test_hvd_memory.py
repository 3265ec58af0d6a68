#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vm.memory and what vm.info shows of the balloon (docs/hvd-api.md,
docs/memory.md), against a fake hv-vmm that answers "balloon" and reports
memory_target / memory_actual in "query".

Checked: a running 1 GiB VM asked for 384M (a size string or bytes) answers
with target and actual; vm.info then shows them, and a vm.memory event came;
back to 1G; a size below the floor (128 MiB or an eighth), above the
defined memory, or not a size is refused with a sentence naming the
parameter, and the VM keeps its target; a VM that is shut off gets
bad-state; a guest that ignores the balloon (actual stays) is reported as
such; vm.memory without a size only asks; `hvctl memory` prints one line
and exits 1 with hvd's sentence on a refusal; vm.info of a shut-off VM has
nulls.

usage: test_hvd_memory.py HVD FAKE_VMM HVCTL   (meson test, suite unit)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from hvdclient import Client, kill_fake_vmms, start_argv, stop_process, wait_listening

HVD, FAKE_VMM, HVCTL = sys.argv[1:4]
MiB = 1 << 20
failures = []


def check(cond, what):
    print(("ok:" if cond else "FAIL:"), what, flush=True)
    if not cond:
        failures.append(what)


def define(c, top, name, extra=""):
    text = (f"[vm]\nname={name}\nkernel={top}/vmlinuz\ndisplay=false\nmemory=1G\n{extra}")
    return c.call("vm.define", text=text)


def err(r):
    return r.get("error", {})


def info_memory(c, name, want_target, timeout=5):
    """vm.info until its memory_target is want_target (the first one may not know yet)."""
    deadline = time.time() + timeout
    while True:
        r = c.call("vm.info", name=name)["result"]
        if r.get("memory_target") == want_target or time.time() > deadline:
            return r
        time.sleep(0.1)


def main():
    top = tempfile.mkdtemp(prefix="hvd-memory-")
    state, run = os.path.join(top, "state"), os.path.join(top, "run")
    sock, log = os.path.join(run, "hvd.sock"), os.path.join(top, "hvd.log")
    with open(os.path.join(top, "vmlinuz"), "w") as f:
        f.write("not a kernel")
    proc = subprocess.Popen([HVD, "--state-dir", state, "--run-dir", run, "--vmm", FAKE_VMM,
                             "--vsock-port", "-1", "--vmm-uid-base", "0", "--no-autostart"],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)

    def hvctl(*args):
        return subprocess.run([HVCTL, "--socket", sock, *args], capture_output=True, text=True,
                              timeout=30)
    try:
        wait_listening(sock)
        c = Client(sock)
        ev = Client(sock)
        ev.call("events.subscribe", events=["vm.memory"])
        check("result" in define(c, top, "m"), "a 1 GiB VM is defined")
        off = c.call("vm.memory", name="m", size="384M")
        check(err(off).get("code") == "bad-state" and "only while it runs" in
              err(off).get("message", ""), f"a shut-off VM: bad-state ({off})")
        i = c.call("vm.info", name="m")["result"]
        check(i.get("memory_target", 0) is None and i.get("memory_actual", 0) is None,
              f"vm.info of a shut-off VM: null target and actual ({i})")
        check("result" in c.call("vm.start", name="m"), "it starts")
        i = info_memory(c, "m", 1 << 30)
        check(i.get("memory_target") == 1 << 30 and i.get("memory_actual") == 1 << 30,
              f"vm.info of the running VM: the whole 1 GiB ({i})")

        r = c.call("vm.memory", name="m", size="384M")
        res = r.get("result", {})
        check(res == {"name": "m", "memory": 1 << 30, "target": 384 * MiB,
                      "actual": 384 * MiB, "balloon_driver": True},
              f"vm.memory 384M: target and actual ({r})")
        i = c.call("vm.info", name="m")["result"]
        check(i.get("memory_target") == 384 * MiB and i.get("memory_actual") == 384 * MiB,
              f"vm.info shows them ({i})")
        got = None
        deadline = time.time() + 5
        while time.time() < deadline and not got:
            msg = ev.sock.recv(65536).decode()
            for line in msg.splitlines():
                m = json.loads(line)
                if m.get("event") == "vm.memory" and m["params"].get("target") == 384 * MiB:
                    got = m
        check(got and got["params"]["actual"] == 384 * MiB and got["params"]["name"] == "m",
              f"a vm.memory event came ({got})")

        for size, code, words in ((64 * MiB, "bad-params", "below the least VM 'm' may keep, "
                                   "128 MiB"),
                                  ("2G", "bad-params", "more than VM 'm' was started with "
                                   "(1024 MiB)"),
                                  ("lots", "bad-params", "Parameter 'size'"),
                                  (-5, "bad-params", "Parameter 'size'")):
            r = c.call("vm.memory", name="m", size=size)
            check(err(r).get("code") == code and words in err(r).get("message", ""),
                  f"size {size!r} is refused ({r})")
        check(c.call("vm.info", name="m")["result"].get("memory_target") == 384 * MiB,
              "after the refusals the target is still 384 MiB")
        check(err(c.call("vm.memory", name="nope", size="1G")).get("code") == "not-found",
              "an unknown VM: not-found")

        r = c.call("vm.memory", name="m", size=1 << 30)
        check(r.get("result", {}).get("target") == 1 << 30, f"back to 1 GiB in bytes ({r})")
        r = c.call("vm.memory", name="m")
        check(r.get("result", {}).get("actual") == 1 << 30, f"without a size it only asks ({r})")

        p = hvctl("memory", "m", "512M")
        check(p.returncode == 0 and p.stdout.strip() ==
              "m: memory 1.00G, target 512M, actual 512M", f"hvctl memory m 512M ({p.stdout!r})")
        p = hvctl("memory", "m", "16M")
        check(p.returncode == 1 and "below the least" in p.stderr and "(bad-params)" in p.stderr,
              f"hvctl memory below the floor: exit 1 and hvd's sentence ({p.stderr!r})")
        p = hvctl("--json", "memory", "m")
        check(p.returncode == 0 and json.loads(p.stdout).get("target") == 512 * MiB,
              f"hvctl --json memory m ({p.stdout!r})")
        p = hvctl("info", "m")
        check(f"memory_target   {512 * MiB}" in p.stdout, f"hvctl info shows it ({p.stdout!r})")
        c.call("vm.destroy", name="m")

        # A guest that ignores its balloon: the target moves, actual stays, it says so.
        define(c, top, "stuck", extra="cmdline=fake-balloon-stuck\n")
        c.call("vm.start", name="stuck")
        info_memory(c, "stuck", 1 << 30)
        r = c.call("vm.memory", name="stuck", size="256M")
        check(r.get("result", {}).get("target") == 256 * MiB and
              r.get("result", {}).get("actual") == 1 << 30,
              f"a guest that ignores the balloon keeps its memory, and hvd says so ({r})")
        p = hvctl("memory", "stuck")
        check("target 256M, actual 1.00G (the guest is on its way)" in p.stdout, p.stdout)
        c.call("vm.destroy", name="stuck")
        i = c.call("vm.info", name="stuck")["result"]
        check(i.get("memory_target", 0) is None, f"stopped: no target any more ({i})")
        # page_sharing=false (a VM that shares no page with others): hv-vmm --ksm off.
        define(c, top, "private", extra="page_sharing=false\n")
        d = c.call("vm.get", name="private")["result"]
        check(d["definition"].get("page_sharing") is False and "page_sharing=false" in d["text"],
              f"page_sharing=false is kept ({d})")
        check(c.call("vm.get", name="m")["result"]["definition"].get("page_sharing") is True,
              "page_sharing is true by default")
        for name, want in (("private", True), ("m", False)):
            argv = start_argv(c, name, FAKE_VMM)
            has = any(a == "--ksm" and b == "off" for a, b in zip(argv, argv[1:]))
            check(has == want, f"{name}: --ksm off given to hv-vmm: {has} ({argv})")
        r = define(c, top, "bad", extra="page_sharing=maybe\n")
        check("page_sharing" in err(r).get("message", ""), f"page_sharing=maybe is refused ({r})")
        c.close()
        ev.close()
        check(proc.poll() is None, "hvd is still running at the end")
    finally:
        stop_process(proc)
        kill_fake_vmms(FAKE_VMM, top)
        if failures:
            print(open(log).read()[-4000:])
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
