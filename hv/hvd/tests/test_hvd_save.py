#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Save and restore through hvd, against fake-vmm (its "save" writes a small
file with the fake's magic; --restore refuses a file without it):
vm.save → state saved, the file private to root → hvd restarted → still
saved → vm.start restores (fake-vmm got --restore with the right path) →
the file is removed once it runs; a failed restore keeps the file, reports
hv-vmm's sentence and leaves the VM saved; a refused save keeps the VM
running; a VM with pci= refuses save; edits that would break a restore and
undefine are refused while saved, colour is not; another VM cannot start
on a saved VM's disk; vm.discard; progress events; host.suspend/resume;
hvctl save, restore, list, discard.

usage: test_hvd_save.py HVD FAKE_VMM HVCTL   (run by meson test, suite unit)
"""
import os
import shutil
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hvd as base  # noqa: E402  (HVD, FAKE_VMM, HVCTL come from sys.argv there)
from test_hvd import Client, Hvd, check, definition, hvctl, state_of, wait_state  # noqa: E402


def save_file(d, name):
    return os.path.join(d.state, "saved", name + ".hvsave")


def fake_cmdline(name, timeout=3):
    """The command line of the fake-vmm running VM name (once it has been
    exec'd: right after vm.start it may still be hvd's fork), or None."""
    end = time.time() + timeout
    while time.time() < end:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = [a.decode() for a in f.read().split(b"\0") if a]
            except OSError:
                continue
            if args and args[0] == base.FAKE_VMM and "--name" in args and \
                    args[args.index("--name") + 1] == name:
                return args
        time.sleep(0.02)
    return None


def define(c, top, name, extra="", memory="256M"):
    text = open(definition(top, name, extra)).read().replace("memory=256M", "memory=" + memory)
    r = c.call("vm.define", text=text, replace=True)
    check("result" in r, f"define {name}: {r.get('error')}")


def test_save_restore(d, top):
    c = Client(d.sock)
    ev = Client(d.sock)
    ev.call("events.subscribe")
    open(os.path.join(d.images, "s1.img"), "wb").truncate(1 << 20)
    # 16 MiB of RAM: the slow save's 4 MiB is a quarter of it, so progress shows.
    define(c, top, "s1", "disk=s1.img,format=raw\ncmdline=fake-save-slow\n", memory="16M")
    check("result" in c.call("vm.start", name="s1"), "s1 started")
    r = c.call("vm.save", name="s1")
    check("result" in r and r["result"]["state"] == "saved", f"vm.save → saved: {r}")
    check(r.get("result", {}).get("bytes", 0) > 4 << 20, "the reply gives the file's size")
    path = save_file(d, "s1")
    check(os.path.isfile(path) and open(path, "rb").read(14) == b"FAKEVMM-SAVE1\n",
          "the save file is in <state-dir>/saved with the fake's contents")
    check(not os.path.exists(path + ".part"), "no .part file left")
    st = os.stat(path)
    dst = os.stat(os.path.dirname(path))
    check(stat.S_IMODE(st.st_mode) == 0o600 and stat.S_IMODE(dst.st_mode) == 0o700,
          "the file is 0600 in a 0700 folder (no VM user can read it)")
    check(state_of(c, "s1") == "saved", "vm.info says saved")
    lst = [v for v in c.call("vm.list")["result"]["vms"] if v["name"] == "s1"][0]
    check(lst["state"] == "saved" and lst["pid"] is None, "vm.list says saved, no pid")
    e = ev.wait_event(lambda e: e["event"] == "vm.state" and e["params"]["name"] == "s1" and
                      e["params"]["state"] == "saved", timeout=5)
    check(e is not None and e["params"]["reason"] == "saved", "vm.state event saved")
    prog = [e["params"] for e in ev.events if e["event"] == "vm.progress"]
    fr = [p["fraction"] for p in prog if p["state"] == "running"]
    check(len(fr) >= 3 and fr == sorted(fr), f"vm.progress events while saving: {fr}")
    check(prog and prog[-1]["state"] == "done" and prog[-1]["fraction"] == 1,
          "the last vm.progress is done with fraction 1")
    r = hvctl(d, "list")
    check(any(line.split()[:2] == ["s1", "saved"] for line in r.stdout.splitlines()),
          "hvctl list shows saved")

    # Edits that would break the restore are refused; the label colour is not.
    text = open(definition(top, "s1", "disk=s1.img,format=raw\ncmdline=fake-save-slow\n")).read()
    text = text.replace("memory=256M", "memory=16M")
    r = c.call("vm.define", text=text.replace("memory=16M", "memory=32M"), replace=True)
    check(r.get("error", {}).get("code") == "bad-state" and "'memory'" in r["error"]["message"],
          f"memory change refused while saved: {r.get('error')}")
    r = c.call("vm.define", text=text.replace("disk=s1.img,format=raw\n", ""), replace=True)
    check(r.get("error", {}).get("code") == "bad-state" and "'disk'" in r["error"]["message"],
          "disk change refused while saved")
    r = c.call("vm.define", text=text + "colour=#112233\ninstant_on=true\n", replace=True)
    check("result" in r, f"colour and instant_on changes allowed while saved: {r.get('error')}")
    check(c.call("vm.undefine", name="s1").get("error", {}).get("code") == "bad-state",
          "undefine of a saved VM refused")
    # Its disk is the saved VM's: another VM cannot start on it.
    define(c, top, "s1b", "disk=s1.img,format=raw\n")
    r = c.call("vm.start", name="s1b")
    check(r.get("error", {}).get("code") == "in-use" and "saved" in r["error"]["message"],
          f"another VM on a saved VM's disk → in-use: {r.get('error')}")
    c.call("vm.undefine", name="s1b")
    r = c.call("disk.resize", name="s1.img", size="2M")
    check(r.get("error", {}).get("code") == "in-use" and "saved" in r["error"]["message"],
          f"disk.resize of a saved VM's disk → in-use: {r.get('error')}")

    # hvd restarted: the file says saved.
    ev.close()
    c.close()
    d.stop()
    d.start()
    c = Client(d.sock)
    check(state_of(c, "s1") == "saved", "still saved after an hvd restart")

    # A refused restore keeps the file and the VM saved.
    good = open(path, "rb").read()
    with open(path, "r+b") as f:
        f.write(b"XXXX")
    r = c.call("vm.start", name="s1")
    check(r.get("error", {}).get("code") == "vmm" and
          "cannot restore from" in r["error"]["message"] and path in r["error"]["message"],
          f"a bad save file: vm.start fails with hv-vmm's sentence: {r.get('error')}")
    check(os.path.exists(path) and state_of(c, "s1") == "saved",
          "after a failed restore the file is kept and the VM saved")
    with open(path, "wb") as f:
        f.write(good)

    # hvctl restore: fake-vmm gets --restore PATH; the file goes once it runs.
    r = hvctl(d, "restore", "s1")
    check(r.returncode == 0 and "running" in r.stdout, f"hvctl restore s1: {r.stdout}{r.stderr}")
    args = fake_cmdline("s1")
    check(args is not None and "--restore" in args and args[args.index("--restore") + 1] == path,
          f"hv-vmm got --restore {path}")
    check(args is not None and "--disk" in args, "with the usual command line")
    check(args is not None and "--instant-on" in args, f"and --instant-on (instant_on=true) {args}")
    check(not os.path.exists(path), "the save file is removed after the VM runs")
    check(state_of(c, "s1") == "running", "s1 runs")
    console = hvctl(d, "console", "s1").stdout
    check("fake-vmm: restored from" in console, "the fake says it restored")
    r = hvctl(d, "restore", "s1")
    check(r.returncode == 1, "hvctl restore of a running VM fails")

    # Save via hvctl, then discard: the next start boots afresh.
    r = hvctl(d, "save", "s1")
    check(r.returncode == 0 and "saved" in r.stdout, f"hvctl save s1: {r.stdout}{r.stderr}")
    r = hvctl(d, "discard", "s1")
    check(r.returncode == 0 and "shutoff" in r.stdout, f"hvctl discard s1: {r.stdout}{r.stderr}")
    check(not os.path.exists(path) and state_of(c, "s1") == "shutoff", "discarded: shutoff")
    check(c.call("vm.discard", name="s1").get("error", {}).get("code") == "bad-state",
          "discard of a VM that is not saved → bad-state")
    c.call("vm.start", name="s1")
    args = fake_cmdline("s1")
    check(args is not None and "--restore" not in args and "--instant-on" not in args,
          "started afresh: no --restore, no --instant-on")
    # vm.start with discard=true drops a save explicitly.
    c.call("vm.save", name="s1")
    r = c.call("vm.start", name="s1", discard=True)
    args = fake_cmdline("s1")
    check("result" in r and args is not None and "--restore" not in args and
          not os.path.exists(path), f"vm.start discard=true starts afresh: {r} {args}")
    c.call("vm.destroy", name="s1")
    c.close()


def test_refusals(d, top):
    c = Client(d.sock)
    define(c, top, "s2", "cmdline=fake-save-fail\n")
    c.call("vm.start", name="s2")
    r = c.call("vm.save", name="s2")
    check(r.get("error", {}).get("code") == "vmm" and "fake0" in r["error"]["message"],
          f"a save hv-vmm refuses → vmm with its reason: {r.get('error')}")
    check(state_of(c, "s2") == "running" and not os.path.exists(save_file(d, "s2")) and
          not os.path.exists(save_file(d, "s2") + ".part"),
          "after a refused save the VM runs on, no file")
    c.call("vm.destroy", name="s2")
    r = c.call("vm.save", name="s2")
    check(r.get("error", {}).get("code") == "bad-state", "save of a shut-off VM → bad-state")
    # pci=: refused by hvd from the definition (the device is never bound: not started).
    define(c, top, "s3", "pci=0000:00:1f.6\n")
    r = c.call("vm.save", name="s3")
    check(r.get("error", {}).get("code") == "bad-state", "save of a shut-off pci VM → bad-state")
    c.close()


def test_pci_refused_running(d, top):
    """A running VM with pci= (a stored definition, started with a fake hvd
    state): its save is refused before hv-vmm is asked."""
    # Without root hvd cannot bind a device, so the VM cannot run here; the
    # refusal is checked on the code path shared with running VMs instead: an
    # s4 that runs, then has pci= in its stored definition at the next hvd start.
    c = Client(d.sock)
    define(c, top, "s4")
    c.call("vm.start", name="s4")
    c.close()
    d.stop()
    conf = os.path.join(d.state, "vms", "s4.conf")
    with open(conf, "a") as f:
        f.write("pci=0000:00:1f.6\n")
    d.start()
    c = Client(d.sock)
    check(state_of(c, "s4") == "running", "s4 re-attached")
    r = c.call("vm.save", name="s4")
    check(r.get("error", {}).get("code") == "bad-state" and "PCI" in r["error"]["message"],
          f"save of a VM with pci= refused with the reason: {r.get('error')}")
    check(state_of(c, "s4") == "running", "it runs on")
    c.call("vm.destroy", name="s4")
    c.call("vm.undefine", name="s4")
    c.close()


def test_hvd_killed_during_a_save(d, top):
    """hvd dies while hv-vmm writes: hv-vmm completes the file and exits 6;
    the next hvd takes its .part as the save (exit 6 means complete)."""
    import json
    import socket
    c = Client(d.sock)
    define(c, top, "s5", "cmdline=fake-save-slow\n", memory="16M")
    c.call("vm.start", name="s5")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(d.sock)
    raw.sendall(json.dumps({"id": 1, "method": "vm.save", "params": {"name": "s5"}}).encode()
                + b"\n")
    time.sleep(0.3)
    check(os.path.exists(save_file(d, "s5") + ".part"), "the save writes its .part file")
    c.close()
    d.kill9()
    raw.close()
    time.sleep(1.5)  # the fake finishes its 4 MiB and exits 6
    d.start()
    c = Client(d.sock)
    check(wait_state(c, "s5", "saved"), "after hvd came back the VM is saved")
    check(os.path.isfile(save_file(d, "s5")) and not os.path.exists(save_file(d, "s5") + ".part"),
          "its .part file became the save file")
    r = c.call("vm.start", name="s5")
    check(r.get("result", {}).get("restored") is True, f"and it restores: {r}")
    c.call("vm.destroy", name="s5")
    c.call("vm.undefine", name="s5")
    c.close()


def test_host_suspend(d, top):
    c = Client(d.sock)
    ev = Client(d.sock)
    ev.call("events.subscribe")
    define(c, top, "h1")
    define(c, top, "h2")
    c.call("vm.start", name="h1")
    c.call("vm.start", name="h2")
    r = hvctl(d, "host", "suspend", "--shutdown")
    check(r.returncode == 0 and state_of(c, "h1") == "running",
          "host suspend --shutdown without --save-on-shutdown saves nothing")
    r = hvctl(d, "host", "suspend")
    check(r.returncode == 0 and "h1: saved" in r.stdout and "h2: saved" in r.stdout,
          f"hvctl host suspend saves both: {r.stdout}{r.stderr}")
    check(state_of(c, "h1") == "saved" and state_of(c, "h2") == "saved", "both saved")
    e = ev.wait_event(lambda e: e["event"] == "host.suspend" and
                      e["params"]["state"] == "skipped")
    check(e is not None, "host.suspend event skipped (a shutdown, --save-on-shutdown off)")
    e = ev.wait_event(lambda e: e["event"] == "host.suspend" and e["params"]["state"] == "saving")
    check(e is not None and sorted(e["params"]["vms"]) == ["h1", "h2"], "host.suspend saving event")
    e = ev.wait_event(lambda e: e["event"] == "host.suspend" and e["params"]["state"] == "done")
    check(e is not None and sorted(e["params"]["saved"]) == ["h1", "h2"], "host.suspend done event")
    r = hvctl(d, "host", "resume")
    check(r.returncode == 0 and "h1: restoring" in r.stdout, f"hvctl host resume: {r.stdout}")
    check(wait_state(c, "h1", "running") and wait_state(c, "h2", "running"), "both run again")
    end = time.time() + 5
    while time.time() < end and (os.path.exists(save_file(d, "h1")) or
                                 os.path.exists(save_file(d, "h2"))):
        time.sleep(0.05)
    check(not os.path.exists(save_file(d, "h1")) and not os.path.exists(save_file(d, "h2")),
          "their save files are removed once they run")
    check(ev.wait_event(lambda e: e["event"] == "host.resume") is not None, "host.resume event")
    check(ev.wait_event(lambda e: e["event"] == "vm.state" and
                        e["params"]["reason"] == "restored") is not None,
          "vm.state restored event")
    for n in ("h1", "h2"):
        c.call("vm.destroy", name=n)
    ev.close()
    c.close()


def main():
    top = tempfile.mkdtemp(prefix="hvd-save-test-")
    d = Hvd(top)
    try:
        d.start()
        test_save_restore(d, top)
        test_refusals(d, top)
        test_pci_refused_running(d, top)
        test_hvd_killed_during_a_save(d, top)
        test_host_suspend(d, top)
        check(d.proc.poll() is None, "hvd is still running at the end")
    finally:
        d.stop()
        base.cleanup_vms(top)
        if base.failures:
            print(open(os.path.join(top, "hvd.log")).read()[-6000:])
        elif os.environ.get("HVD_TEST_LOG"):
            print(open(os.path.join(top, "hvd.log")).read())
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(base.failures)} failure(s)")
    return 1 if base.failures else 0


if __name__ == "__main__":
    sys.exit(main())
