# SPDX-License-Identifier: GPL-2.0-or-later
"""A client of hvd's JSON API (docs/hvd-api.md) for the unit tests here:
one request at a time, the reply with the request's id returned, events and
other lines skipped."""

import json
import os
import signal
import socket
import time


class Client:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def call(self, method, **params):
        i = self.next_id
        self.next_id += 1
        self.sock.sendall(json.dumps({"id": i, "method": method, "params": params}).encode()
                          + b"\n")
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("hvd closed the connection")
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if msg.get("id") == i:
                return msg

    def close(self):
        self.sock.close()


def start_argv(c, name, fake_vmm, destroy=True):
    """vm.start NAME; returns the fake hv-vmm's command line once the VM's process
    has exec'd it (/proc/PID/cmdline), or the error reply. destroy: vm.destroy after."""
    r = c.call("vm.start", name=name)
    if "result" not in r:
        return r
    argv = []
    for _ in range(100):  # the VM's process runs hvd's code until it execs hv-vmm
        with open(f"/proc/{r['result']['pid']}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
        if argv and argv[0] == fake_vmm:
            break
        time.sleep(0.05)
    if destroy:
        c.call("vm.destroy", name=name)
    return argv


class Checks:
    """check(cond, what): prints ok/FAIL and keeps the failures, for a test's summary."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        print(("ok:" if cond else "FAIL:"), what, flush=True)
        if not cond:
            self.failures.append(what)


def run_hvd_test(body, hvd, fake_vmm, checks, args=(), prefix="hvd-test-"):
    """Starts hvd with the fake hv-vmm in a new temporary folder TOP (state and run
    folders inside, no vsock, VMs as hvd's user, no autostart), runs body(top,
    sock, proc), then stops hvd, kills the fakes and removes TOP. Prints hvd's log
    when a check failed; returns the exit status (1 on failures)."""
    import shutil
    import subprocess
    import tempfile
    top = tempfile.mkdtemp(prefix=prefix)
    state, run = os.path.join(top, "state"), os.path.join(top, "run")
    sock, log = os.path.join(run, "hvd.sock"), os.path.join(top, "hvd.log")
    proc = subprocess.Popen([hvd, "--state-dir", state, "--run-dir", run, "--vmm", fake_vmm,
                             "--vsock-port", "-1", "--vmm-uid-base", "0", "--no-autostart",
                             *(args(top) if callable(args) else args)],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)
    try:
        wait_listening(sock)
        body(top, sock, proc)
        checks(proc.poll() is None, "hvd is still running at the end")
    finally:
        stop_process(proc)
        kill_fake_vmms(fake_vmm, top)
        if checks.failures:
            print(open(log).read()[-4000:])
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(checks.failures)} failure(s)")
    return 1 if checks.failures else 0


def kill_fake_vmms(fake_vmm, top):
    """Kill every fake VMM started under the test folder top, even after a failure."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0] == fake_vmm.encode() and top.encode() in b" ".join(cmd):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def wait_listening(*socks, tries=200):
    """Until each unix socket accepts a connection (hvd has started); RuntimeError if not."""
    for _ in range(tries):
        try:
            for path in socks:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(path)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("hvd did not come up")


def stop_process(proc):
    """SIGTERM, then wait (at most 10 s) for it to end."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)

