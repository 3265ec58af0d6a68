#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""hvd against a fake hv-vmm: definitions, lifecycle, crash and reboot events,
re-attach after kill -9 of hvd, bad input, disks, disk jobs (a slow qemu-img
put first in hvd's PATH), and a 50-client load test.

usage: test_hvd.py HVD FAKE_VMM HVCTL   (run by meson test, suite unit)
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from hvdclient import kill_fake_vmms, stop_process, wait_listening

HVD, FAKE_VMM, HVCTL = sys.argv[1:4]
LOAD_SECONDS = float(os.environ.get("HVD_LOAD_SECONDS", "10"))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.events = []

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("hvd closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, **params):
        i = self.next_id
        self.next_id += 1
        self.sock.sendall(json.dumps({"id": i, "method": method, "params": params}).encode() + b"\n")
        while True:
            msg = self.line()
            if "event" in msg:
                self.events.append(msg)
                continue
            assert msg["id"] == i, msg
            return msg

    def wait_event(self, pred, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            for e in self.events:
                if pred(e):
                    self.events.remove(e)
                    return e
            self.sock.settimeout(max(0.1, end - time.time()))
            try:
                msg = self.line()
            except (socket.timeout, TimeoutError):
                break
            finally:
                self.sock.settimeout(30)
            if "event" in msg:
                self.events.append(msg)
        return None

    def close(self):
        self.sock.close()


# hvd finds qemu-img through PATH: tests/slow-qemu-img.sh, first in hvd's PATH,
# makes `convert` slow, gated, junky or failing (see the script).
SLOW_QEMU_IMG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow-qemu-img.sh")


class Hvd:
    def __init__(self, top):
        self.top = top
        self.state = os.path.join(top, "state")
        self.run = os.path.join(top, "run")
        self.sock = os.path.join(self.run, "hvd.sock")
        self.images = os.path.join(self.state, "images")
        self.proc = None
        self.env = dict(os.environ)
        self.bin = os.path.join(top, "bin")
        real = shutil.which("qemu-img")
        if real:
            os.makedirs(self.bin, exist_ok=True)
            shutil.copy(SLOW_QEMU_IMG, os.path.join(self.bin, "qemu-img"))
            self.env["REAL_QEMU_IMG"] = real
            self.env["PATH"] = self.bin + os.pathsep + self.env.get("PATH", "")

    def qemu_img_mode(self, mode):
        with open(os.path.join(self.bin, "mode"), "w") as f:
            f.write(mode)
        if os.path.exists(os.path.join(self.bin, "go")):
            os.unlink(os.path.join(self.bin, "go"))

    def qemu_img_go(self):
        open(os.path.join(self.bin, "go"), "w").close()

    def start(self):
        log = open(os.path.join(self.top, "hvd.log"), "a")
        self.proc = subprocess.Popen(
            [HVD, "--state-dir", self.state, "--run-dir", self.run, "--vmm", FAKE_VMM,
             "--vsock-port", "-1"], stdout=log, stderr=log, env=self.env)
        wait_listening(self.sock)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        stop_process(self.proc)

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def sanitized(self):
        with open(f"/proc/{self.proc.pid}/maps") as f:
            return "asan" in f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def hvctl(d, *args):
    return subprocess.run([HVCTL, "--socket", d.sock, *args], capture_output=True, text=True,
                          timeout=60)


def definition(top, name, extra=""):
    kernel = os.path.join(top, "vmlinuz")
    if not os.path.exists(kernel):
        open(kernel, "w").write("not a kernel")
    path = os.path.join(top, name + ".conf")
    with open(path, "w") as f:
        f.write(f"[vm]\nname={name}\nmemory=256M\ncpus=1\nkernel={kernel}\n{extra}")
    return path


def test_bad_input(d):
    c = Client(d.sock)
    r = c.call("hello", client="test", versions=[1])
    check(r["result"]["version"] == 1, "hello negotiates version 1")
    r = c.call("hello", versions=[7])
    check(r["error"]["code"] == "version", "hello with an unknown version → version error")
    c.sock.sendall(b"this is not json\n")
    r = c.line()
    check(r["error"]["code"] == "bad-json" and r["id"] is None, "garbage line → bad-json")
    c.sock.sendall(b"[1,2,3]\n")
    check(c.line()["error"]["code"] == "bad-json", "a JSON array → bad-json")
    r = c.call("vm.frobnicate")
    check(r["error"]["code"] == "unknown-method" and "vm.frobnicate" in r["error"]["message"],
          "unknown method → unknown-method naming it")
    r = c.call("vm.start")
    check(r["error"]["code"] == "bad-params", "vm.start without a name → bad-params")
    r = c.call("vm.start", name="ghost")
    check(r["error"]["code"] == "not-found" and "ghost" in r["error"]["message"],
          "unknown VM → not-found")
    c.sock.sendall(b'{"id": 5, "method": 3}\n')
    check(c.line()["error"]["code"] == "bad-request", "method not a string → bad-request")
    check(c.call("vm.list")["result"]["vms"] is not None, "the connection still serves")
    c.close()

    # A client that leaves in the middle of a message.
    c = Client(d.sock)
    c.sock.sendall(b'{"id": 1, "method": "vm.li')
    c.close()

    # 100 MiB in one line: one too-large error, then the connection is closed.
    c = Client(d.sock)
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        c.sock.sendall(b'{"id":1,"method":"vm.list","params":{"junk":"')
        for _ in range(100):
            c.sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        r = c.line()
        check(r["error"]["code"] == "too-large", "a 100 MiB message → too-large")
    except (EOFError, ConnectionResetError) as e:
        check(False, f"a 100 MiB message → too-large (got {e})")
    check(sent < 100 << 20, f"hvd closed the oversized stream early (after {sent >> 20} MiB)")
    c.close()

    c = Client(d.sock)
    check("vms" in c.call("vm.list")["result"], "hvd keeps serving after bad clients")
    r = c.call("vm.screenshot", name="nobody")
    check(r["error"]["code"] == "not-found", "screenshot of an unknown VM → not-found")
    c.close()


def test_definitions(d, top):
    path = definition(top, "alpha", "colour=#ff0000\n")
    r = hvctl(d, "validate", path, "--state-dir", d.state)
    check(r.returncode == 0 and "valid" in r.stdout, "hvctl validate accepts a good file")
    r = hvctl(d, "define", path)
    check(r.returncode == 0 and "defined alpha" in r.stdout, "hvctl define alpha")
    r = hvctl(d, "define", path)
    check(r.returncode == 1 and "already defined" in r.stderr, "duplicate name refused, exit 1")
    bad = definition(top, "beta", "memory=-1G\n")
    r = hvctl(d, "define", bad)
    check(r.returncode == 1 and "field 'memory'" in r.stderr, "negative memory refused by field")
    bad = definition(top, "beta", "flavour=vanilla\n")
    r = hvctl(d, "validate", bad)
    check(r.returncode == 1 and "unknown field 'flavour'" in r.stderr,
          "hvctl validate names an unknown field")
    bad = definition(top, "beta", "disk=nothere.img\n")
    r = hvctl(d, "--json", "define", bad)
    check(r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "invalid-definition"
          and "nothere.img" in r.stdout, "missing disk refused (--json error object)")
    check(hvctl(d, "define", definition(top, "beta")).returncode == 0, "define beta")
    r = hvctl(d, "show", "alpha")
    check("colour=#ff0000" in r.stdout and "name=alpha" in r.stdout, "hvctl show prints the INI")
    r = hvctl(d, "--json", "list")
    names = [v["name"] for v in json.loads(r.stdout)["vms"]]
    check(names == ["alpha", "beta"], f"list has both, sorted ({names})")
    r = subprocess.run([HVCTL, "--socket", "/nonexistent/sock", "list"], capture_output=True)
    check(r.returncode == 3, "hvctl exit 3 when hvd is unreachable")
    if os.geteuid() == 0 and shutil.which("setpriv"):
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            HVCTL, "--socket", d.sock, "list"], capture_output=True, text=True)
        check(r.returncode == 3, f"a user outside root/hv is refused ({r.stderr.strip()})")
    r = subprocess.run([HVCTL, "frob"], capture_output=True)
    check(r.returncode == 2, "hvctl exit 2 on bad usage")


def state_of(c, name):
    return c.call("vm.info", name=name)["result"]["state"]


def wait_state(c, name, want, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if state_of(c, name) == want:
            return True
        time.sleep(0.05)
    return False


def test_lifecycle(d):
    ev = Client(d.sock)
    ev.call("events.subscribe")
    c = Client(d.sock)
    r = hvctl(d, "start", "alpha")
    check(r.returncode == 0 and "running" in r.stdout, "hvctl start alpha")
    check(ev.wait_event(lambda e: e["params"].get("reason") == "started") is not None,
          "started event")
    check(c.call("vm.start", name="alpha")["error"]["code"] == "bad-state",
          "starting a running VM → bad-state")
    time.sleep(0.3)
    r = hvctl(d, "console", "alpha")
    check("hv-guest: hello" in r.stdout, "console shows hv-guest: hello")
    check(c.call("vm.pause", name="alpha")["result"]["state"] == "paused", "pause")
    check(c.call("vm.resume", name="alpha")["result"]["state"] == "running", "resume")
    r = hvctl(d, "shutdown", "alpha")
    check(r.returncode == 0, "hvctl shutdown alpha")
    e = ev.wait_event(lambda e: e["params"].get("reason") == "poweroff")
    check(e is not None and e["params"]["state"] == "shutoff", "poweroff event after ACPI stop")
    check(state_of(c, "alpha") == "shutoff", "alpha shut off")

    c.call("vm.start", name="alpha")
    r = c.call("vm.destroy", name="alpha")
    check(r["result"]["state"] == "shutoff", "destroy → shutoff")
    info = c.call("vm.info", name="alpha")["result"]
    check(info["last_exit"]["reason"] == "killed", "last_exit says killed")

    # A crash: kill -9 of one hv-vmm; the other VM runs on.
    c.call("vm.start", name="alpha")
    c.call("vm.start", name="beta")
    pid = c.call("vm.info", name="alpha")["result"]["pid"]
    os.kill(pid, signal.SIGKILL)
    e = ev.wait_event(lambda e: e["params"].get("name") == "alpha" and
                      e["params"].get("reason") == "crashed")
    check(e is not None and e["params"]["last_exit"]["signal"] == 9, "crash event with signal 9")
    check(state_of(c, "alpha") == "crashed" and state_of(c, "beta") == "running",
          "alpha crashed, beta runs on")
    check(c.call("vm.undefine", name="beta")["error"]["code"] == "bad-state",
          "undefine of a running VM refused")
    ev.close()
    c.close()


def readable(c):
    """Whether a reply or event has come (without reading it)."""
    return bool(c.buf) or bool(select.select([c.sock], [], [], 0)[0])


def test_control_async(d):
    """hv-vmm stopped (SIGSTOP): vm.pause waits for its control socket from hvd's event
    loop, so other clients are answered first; then the reply comes, or `vmm` after 3 s."""
    c, other = Client(d.sock), Client(d.sock)
    pid = c.call("vm.info", name="beta")["result"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        i = send(c, "vm.pause", name="beta")
        j = send(c, "vm.info", name="beta")  # the same connection: answered after the pause
        time.sleep(0.05)
        r = other.call("vm.list")
        check("result" in r and not readable(c),
              "vm.pause waits on a stopped hv-vmm: another client's vm.list is answered first")
        r = other.call("vm.shutdown", name="beta")
        check(r.get("error", {}).get("code") == "bad-state" and "busy" in r["error"]["message"],
              f"a second control call on the VM meanwhile → bad-state, busy ({r.get('error')})")
    finally:
        os.kill(pid, signal.SIGCONT)
    r = reply(c, i)
    check(r.get("result", {}).get("state") == "paused", f"the pause is answered when hv-vmm is back ({r})")
    r = reply(c, j)
    check(r.get("result", {}).get("state") == "paused", "then the request sent after it")

    os.kill(pid, signal.SIGSTOP)
    try:
        i = send(c, "vm.resume", name="beta")
        r = other.call("host.info")
        check("result" in r and not readable(c), "vm.resume waits: host.info is answered first")
        r = reply(c, i)
        err = r.get("error", {})
        check(err.get("code") == "vmm" and "did not answer" in err.get("message", ""),
              f"hv-vmm stays stopped: vm.resume → vmm after the timeout ({err})")
        check(state_of(c, "beta") == "paused", "beta is still paused for hvd")
    finally:
        os.kill(pid, signal.SIGCONT)
    # fake-vmm reads the resume hvd gave up on: start beta afresh for the next tests.
    time.sleep(0.3)
    if state_of(c, "beta") in ("running", "paused"):
        c.call("vm.destroy", name="beta")
    check("result" in c.call("vm.start", name="beta"), "beta started again")
    other.close()
    c.close()


def test_reattach(d):
    c = Client(d.sock)
    c.call("vm.start", name="alpha")
    c.call("vm.pause", name="alpha")
    pids = {n: c.call("vm.info", name=n)["result"]["pid"] for n in ("alpha", "beta")}
    c.close()
    d.kill9()
    time.sleep(0.2)
    for n, pid in pids.items():
        check(os.path.exists(f"/proc/{pid}"), f"{n}'s VMM survives kill -9 of hvd")
    d.start()
    c = Client(d.sock)
    vms = {v["name"]: v for v in c.call("vm.list")["result"]["vms"]}
    check(vms["alpha"]["state"] == "paused" and vms["alpha"]["pid"] == pids["alpha"],
          "alpha re-attached, still paused, same pid")
    check(vms["beta"]["state"] == "running" and vms["beta"]["pid"] == pids["beta"],
          "beta re-attached, running")
    check(c.call("vm.resume", name="alpha")["result"]["state"] == "running",
          "re-attached VM is controllable (resume)")
    ev = Client(d.sock)
    ev.call("events.subscribe")
    c.call("vm.shutdown", name="beta")
    e = ev.wait_event(lambda e: e["params"].get("name") == "beta" and
                      e["params"].get("reason") == "poweroff")
    check(e is not None, "a re-attached VM's poweroff is noticed")
    # A VM that ends while hvd is away is reported when hvd comes back.
    pid = c.call("vm.info", name="alpha")["result"]["pid"]
    c.close()
    ev.close()
    d.kill9()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    d.start()
    c = Client(d.sock)
    info = c.call("vm.info", name="alpha")["result"]
    check(info["state"] == "crashed" and info["last_exit"]["signal"] == 9,
          "a crash while hvd was down is reported after restart")
    c.close()


def test_reboot(d, top):
    flag = os.path.join(top, "rebooted")
    hvctl(d, "define", definition(top, "rb", "cmdline=fake-reboot\n"))
    ev = Client(d.sock)
    ev.call("events.subscribe")
    os.environ["FAKE_VMM_REBOOTED_FLAG"] = flag
    ev.call("vm.start", name="rb")
    e = ev.wait_event(lambda e: e["params"].get("reason") == "reboot", timeout=10)
    check(e is not None, "reboot event (hv-vmm exit 3)")
    e = ev.wait_event(lambda e: e["params"].get("name") == "rb" and
                      e["params"].get("reason") == "started")
    check(e is not None and wait_state(ev, "rb", "running"), "VM started again after reboot")
    ev.call("vm.destroy", name="rb")
    ev.call("vm.undefine", name="rb")
    ev.close()


def test_disks(d, top):
    c = Client(d.sock)
    r = c.call("disk.create", name="raw1", size="64M")
    check(r.get("result", {}).get("virtual_size") == 64 << 20, "create a 64M raw image")
    check(c.call("disk.create", name="raw1", size="1M")["error"]["code"] == "exists",
          "create over an existing image → exists")
    check(c.call("disk.create", name="../x", size="1M")["error"]["code"] == "bad-params",
          "a path as image name → bad-params")
    r = c.call("disk.resize", name="raw1", size="128M")
    check(r.get("result", {}).get("virtual_size") == 128 << 20, "resize raw to 128M")
    check(c.call("disk.resize", name="raw1", size="2M")["error"]["code"] == "bad-params",
          "shrink refused")
    if shutil.which("qemu-img"):
        r = c.call("disk.create", name="golden.qcow2", size="32M", format="qcow2")
        check(r.get("result", {}).get("format") == "qcow2", "create qcow2 golden image")
        r = c.call("disk.clone", source="golden.qcow2", name="vm1.qcow2", mode="overlay")
        check(r.get("result", {}).get("backing") == "golden.qcow2", "overlay on the golden image")
        r = c.call("disk.clone", source="raw1", name="raw2")
        check(r.get("result", {}).get("virtual_size") == 128 << 20, "copy clone")
        hvctl(d, "define", definition(top, "gamma", "disk=vm1.qcow2\n"))
        r = c.call("disk.delete", name="vm1.qcow2")
        check(r["error"]["code"] == "in-use" and "gamma" in r["error"]["message"],
              "delete of an image a VM uses → in-use")
        r = c.call("disk.delete", name="golden.qcow2")
        check(r["error"]["code"] == "in-use" and "backing" in r["error"]["message"],
              "delete of a backing image → in-use")
        # Truncate the overlay: start must refuse it.
        path = os.path.join(d.state, "images", "vm1.qcow2")
        with open(path, "r+b") as f:
            f.truncate(100)
        r = c.call("vm.start", name="gamma")
        check(r.get("error", {}).get("code") == "bad-image", f"truncated qcow2 refused ({r})")
        c.call("vm.undefine", name="gamma")
        check("result" in c.call("disk.delete", name="vm1.qcow2"), "delete once unused")
    names = [i["name"] for i in c.call("disk.list")["result"]["images"]]
    check("raw1" in names, f"disk.list ({names})")
    r = hvctl(d, "disk", "list")
    check(r.returncode == 0 and "raw1" in r.stdout, "hvctl disk list")
    r = hvctl(d, "--json", "net", "list")
    check(r.returncode == 0 and json.loads(r.stdout)["networks"][0]["bridge"] == "hvbr0",
          "hvctl net list")
    c.close()


def send(c, method, **params):
    """Sends a request without waiting; returns its id."""
    i = c.next_id
    c.next_id += 1
    c.sock.sendall(json.dumps({"id": i, "method": method, "params": params}).encode() + b"\n")
    return i


def reply(c, i, timeout=30):
    """The reply to request i; events are kept in c.events."""
    c.sock.settimeout(timeout)
    try:
        while True:
            msg = c.line()
            if "event" in msg:
                c.events.append(msg)
                continue
            assert msg["id"] == i, msg
            return msg
    finally:
        c.sock.settimeout(30)


def progress_of(events, name):
    return [e["params"] for e in events
            if e["event"] == "disk.progress" and e["params"]["name"] == name]


def part(d, name):
    return os.path.join(d.images, f".{name}.part")


def test_jobs(d, top):
    if not shutil.which("qemu-img"):
        print("SKIP: disk jobs need qemu-img (Debian qemu-utils)", flush=True)
        return
    c = Client(d.sock)
    check("result" in c.call("disk.create", name="big.raw", size="64M"), "a 64M sparse source")
    ev = Client(d.sock)
    ev.call("events.subscribe")
    other = Client(d.sock)
    d.qemu_img_mode("gate")  # the copy stops at 50 % until qemu_img_go()

    # A long clone: the requester waits, everyone else is served meanwhile.
    t0 = time.time()
    cid = send(c, "disk.clone", source="big.raw", name="copy.raw")
    after = send(c, "vm.list")  # in order: answered after the clone's reply
    half = ev.wait_event(lambda e: e["event"] == "disk.progress" and
                         e["params"]["name"] == "copy.raw" and e["params"]["fraction"] >= 0.5)
    check(half is not None, "disk.progress events reach another client during the clone")
    ev.events.append(half)  # keep it for the check of all fractions below
    worst, jobs = 0.0, []
    for _ in range(20):
        t = time.time()
        jobs = other.call("disk.jobs")["result"]["jobs"]
        worst = max(worst, time.time() - t)
    print(f"20 disk.jobs calls during the clone: slowest {worst * 1000:.0f} ms", flush=True)
    check(len(jobs) == 1 and jobs[0]["name"] == "copy.raw" and jobs[0]["op"] == "clone" and
          jobs[0]["source"] == "big.raw" and jobs[0]["fraction"] >= 0.5,
          f"another client is answered during the clone; disk.jobs lists it ({jobs})")
    check(os.path.exists(part(d, "copy.raw")) and
          not os.path.exists(os.path.join(d.images, "copy.raw")),
          "the copy goes to a hidden temporary file, not to its name")
    names = [i["name"] for i in other.call("disk.list")["result"]["images"]]
    check("copy.raw" not in names and ".copy.raw.part" not in names,
          f"disk.list shows neither the unfinished image nor its temporary file ({names})")

    # While it runs: the same name, the source, a VM on the source: all refused.
    r = other.call("disk.clone", source="big.raw", name="copy.raw")
    check(r.get("error", {}).get("code") == "busy" and "copy.raw" in r["error"]["message"],
          f"a second job on the same image → busy ({r})")
    r = other.call("disk.create", name="copy.raw", size="1M")
    check(r.get("error", {}).get("code") == "busy", "disk.create of the image being made → busy")
    r = other.call("disk.delete", name="big.raw")
    check(r.get("error", {}).get("code") == "busy", f"deleting the source → busy ({r})")
    r = other.call("disk.resize", name="big.raw", size="128M")
    check(r.get("error", {}).get("code") == "busy", "resizing the source → busy")
    hvctl(d, "define", definition(top, "delta", "disk=big.raw\n"))
    r = other.call("vm.start", name="delta")
    check(r.get("error", {}).get("code") == "busy" and "big.raw" in r["error"]["message"],
          f"a VM does not start on an image a job uses ({r})")
    other.call("vm.undefine", name="delta")

    # An async-replies client: its next request is answered before the clone ends.
    a = Client(d.sock)
    r = a.call("hello", client="test", versions=[1], features=["async-replies"])
    check("async-replies" in r["result"].get("features", []), "hello offers async-replies")
    slow = send(a, "disk.clone", source="big.raw", name="copy2.raw")
    quick = send(a, "host.info")
    first = a.line()
    check(first.get("id") == quick, "async-replies: host.info answered before the clone")

    d.qemu_img_go()
    r = reply(c, cid)
    took = time.time() - t0
    check(r.get("result", {}).get("name") == "copy.raw" and
          r["result"]["virtual_size"] == 64 << 20, f"the deferred reply comes ({took:.1f} s)")
    check(reply(c, after).get("result", {}).get("vms") is not None,
          "the request sent after the clone is answered after it")
    check(os.path.exists(os.path.join(d.images, "copy.raw")) and
          not os.path.exists(part(d, "copy.raw")), "the image is renamed into place")
    ev.wait_event(lambda e: e["event"] == "disk.changed" and e["params"]["name"] == "copy.raw")
    prog = progress_of(ev.events, "copy.raw")
    fr = [p["fraction"] for p in prog]
    check(len(fr) >= 2 and all(x < y for x, y in zip(fr, fr[1:])) and
          all(0 <= x <= 1 for x in fr) and fr[-1] == 1 and prog[-1]["state"] == "done" and
          prog[0]["op"] == "clone", f"disk.progress: increasing fractions ending at 1 ({fr})")
    r = reply(a, slow)
    check("result" in r, "async-replies: the clone's reply comes later, with its id")
    a.close()
    d.qemu_img_mode("slow")

    # hvctl: a percentage line on a terminal; --json stays plain JSON.
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([HVCTL, "--socket", d.sock, "disk", "clone", "big.raw", "copy3.raw"],
                         stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    out = p.communicate(timeout=60)[0]
    os.close(master)
    check(p.returncode == 0 and b"100%" in tty and b"\r" in tty and b"copy3.raw" in tty,
          f"hvctl disk clone shows a percentage on a terminal ({tty[-120:]!r})")
    check("copy3.raw" in out, "hvctl disk clone prints the new image")
    r = hvctl(d, "--json", "disk", "clone", "big.raw", "copy4.raw")
    check(r.returncode == 0 and json.loads(r.stdout)["name"] == "copy4.raw",
          "hvctl --json disk clone prints the image as JSON")

    # A copy that fails half-way: a clear error, nothing left behind.
    d.qemu_img_mode("fail")
    r = c.call("disk.clone", source="big.raw", name="bad.raw")
    check(r.get("error", {}).get("code") == "bad-image" and
          "Input/output error" in r["error"]["message"] and "big.raw" in r["error"]["message"],
          f"a failing copy → bad-image with qemu-img's reason ({r.get('error')})")
    check(not os.path.exists(part(d, "bad.raw")) and
          not os.path.exists(os.path.join(d.images, "bad.raw")), "no partial image after a failure")
    e = ev.wait_event(lambda e: e["event"] == "disk.progress" and
                      e["params"]["name"] == "bad.raw" and e["params"]["state"] == "failed")
    check(e is not None, "a disk.progress event says the job failed")

    # A corrupt source image.
    d.qemu_img_mode("")
    c.call("disk.create", name="broken.qcow2", size="32M", format="qcow2")
    with open(os.path.join(d.images, "broken.qcow2"), "r+b") as f:
        f.seek(0x30)  # the refcount table offset: far past the end of the file
        f.write(b"\x7f" * 8)
    r = c.call("disk.clone", source="broken.qcow2", name="fromcorrupt.qcow2")
    check(r.get("error", {}).get("code") == "bad-image" and "broken.qcow2" in
          r["error"]["message"], f"a corrupt source → bad-image naming it ({r.get('error')})")
    check(not os.path.exists(os.path.join(d.images, "fromcorrupt.qcow2")) and
          not os.path.exists(part(d, "fromcorrupt.qcow2")), "nothing made from a corrupt source")
    if shutil.which("qemu-io"):
        # Damage only an L2 entry: the header reads fine, `qemu-img check` (a job step) refuses.
        c.call("disk.create", name="damaged.qcow2", size="32M", format="qcow2")
        path = os.path.join(d.images, "damaged.qcow2")
        subprocess.run(["qemu-io", "-c", "write -P 0x11 0 64k", path], check=True,
                       capture_output=True)
        with open(path, "r+b") as f:
            f.seek(40)
            l1 = int.from_bytes(f.read(8), "big")
            f.seek(l1)
            l2 = int.from_bytes(f.read(8), "big") & 0x00fffffffffffe00
            f.seek(l2)
            f.write(((1 << 63) | (0x7f << 16)).to_bytes(8, "big"))
        r = c.call("disk.clone", source="damaged.qcow2", name="fromdamaged.qcow2")
        check(r.get("error", {}).get("code") == "bad-image" and
              "'damaged.qcow2' is corrupt" in r["error"]["message"],
              f"a source with a damaged table → bad-image from qemu-img check ({r.get('error')})")
        check(not os.path.exists(os.path.join(d.images, "fromdamaged.qcow2")),
              "nothing made from a damaged source")
        c.call("disk.delete", name="damaged.qcow2")

    # disk.cancel: the requester hears "cancelled"; nothing is left.
    d.qemu_img_mode("slow")
    cid = send(c, "disk.clone", source="big.raw", name="cancelled.raw")
    ev.wait_event(lambda e: e["event"] == "disk.progress" and
                  e["params"]["name"] == "cancelled.raw")
    r = other.call("disk.cancel", name="cancelled.raw")
    check(r.get("result", {}).get("name") == "cancelled.raw", "disk.cancel")
    r = reply(c, cid)
    check(r.get("error", {}).get("code") == "cancelled", f"the requester is told ({r})")
    check(not os.path.exists(part(d, "cancelled.raw")), "no partial file after a cancel")

    # A client that leaves: the job still completes.
    gone = Client(d.sock)
    send(gone, "disk.clone", source="big.raw", name="orphan.raw")
    gone.close()
    ok = ev.wait_event(lambda e: e["event"] == "disk.changed" and
                       e["params"]["name"] == "orphan.raw", timeout=30)
    check(ok is not None and os.path.exists(os.path.join(d.images, "orphan.raw")),
          "the job of a client that left still completes")

    # SIGTERM during a job: the child is killed, the partial file removed.
    cid = send(c, "disk.clone", source="big.raw", name="term.raw")
    ev.wait_event(lambda e: e["event"] == "disk.progress" and e["params"]["name"] == "term.raw")
    check(os.path.exists(part(d, "term.raw")), "the partial file exists while the job runs")
    t = time.time()
    d.stop()
    stopped = time.time() - t
    try:
        r = reply(c, cid, timeout=5)
        code = r.get("error", {}).get("code")
    except (EOFError, OSError):
        code = "closed"
    check(code == "cancelled", f"the requester hears that hvd stopped the job ({code})")
    check(not os.path.exists(part(d, "term.raw")) and
          not os.path.exists(os.path.join(d.images, "term.raw")),
          f"SIGTERM during a job leaves no partial image (hvd stopped in {stopped:.1f} s)")
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and
            d.bin.encode() in open(f"/proc/{pid}/cmdline", "rb").read()] \
        if os.path.isdir("/proc") else []
    check(not left, f"no job process outlives hvd ({left})")
    for x in (c, ev, other):
        x.close()

    # kill -9 during a job: the next hvd removes the leftover temporary file.
    d.start()
    c = Client(d.sock)
    send(c, "disk.clone", source="big.raw", name="killed.raw")
    for _ in range(100):
        if os.path.exists(part(d, "killed.raw")):
            break
        time.sleep(0.05)
    d.kill9()
    time.sleep(0.5)
    d.start()
    d.qemu_img_mode("")
    c = Client(d.sock)
    c.call("disk.list")
    check(not os.path.exists(part(d, "killed.raw")),
          "a temporary file left by a killed hvd is removed")
    for n in ("copy.raw", "copy2.raw", "copy3.raw", "copy4.raw", "orphan.raw", "broken.qcow2",
              "big.raw"):
        c.call("disk.delete", name=n)
    c.close()


def test_load(d):
    c = Client(d.sock)
    for n in ("alpha", "beta"):
        if c.call("vm.info", name=n)["result"]["state"] in ("running", "paused"):
            c.call("vm.destroy", name=n)
    # Warm up allocator and caches before measuring; a first shutdown makes
    # sd-event's CLOCK_MONOTONIC timerfd (hv-vmm calls are timed from the loop).
    for _ in range(200):
        c.call("vm.list")
    c.call("vm.start", name="alpha")
    c.call("vm.shutdown", name="alpha")
    wait_state(c, "alpha", "shutoff")
    fds0, rss0 = d.fds(), d.rss_kib()
    stop = time.time() + LOAD_SECONDS
    errors, calls = [], [0]
    lock = threading.Lock()

    def worker():
        try:
            w = Client(d.sock)
            n = 0
            while time.time() < stop:
                r = w.call("vm.list")
                if "result" not in r:
                    errors.append(r)
                r = w.call("vm.info", name="alpha")
                if "result" not in r:
                    errors.append(r)
                n += 2
            w.close()
            with lock:
                calls[0] += n
        except Exception as e:  # noqa: BLE001 - any failure counts
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    cycles = 0
    while time.time() < stop:
        for n in ("alpha", "beta"):
            c.call("vm.start", name=n)
        for n in ("alpha", "beta"):
            if cycles % 2:
                c.call("vm.destroy", name=n)
            else:
                c.call("vm.shutdown", name=n)
        for n in ("alpha", "beta"):
            wait_state(c, n, "shutoff")
        cycles += 1
    for t in threads:
        t.join(60)
    time.sleep(0.5)
    fds1, rss1 = d.fds(), d.rss_kib()
    print(f"load: {calls[0]} calls by 50 clients in {LOAD_SECONDS}s, {cycles} start/stop cycles; "
          f"fds {fds0}->{fds1}, RSS {rss0}->{rss1} KiB", flush=True)
    check(not errors, f"no failed call under load ({errors[:3]})")
    check(calls[0] > 0 and cycles > 0, "load did work")
    check(fds1 == fds0, f"fd count stable ({fds0} -> {fds1})")
    if d.sanitized():
        print("RSS not checked: ASan's quarantine holds freed memory on purpose", flush=True)
    else:
        check(rss1 - rss0 < 8 * 1024, f"RSS stable within 8 MiB ({rss0} -> {rss1} KiB)")
    c.close()


def cleanup_vms(top):
    kill_fake_vmms(FAKE_VMM, top)


def main():
    top = tempfile.mkdtemp(prefix="hvd-test-")
    d = Hvd(top)
    try:
        d.start()
        test_bad_input(d)
        test_definitions(d, top)
        test_lifecycle(d)
        test_control_async(d)
        test_reattach(d)
        test_reboot(d, top)
        test_disks(d, top)
        test_jobs(d, top)
        test_load(d)
        check(d.proc.poll() is None, "hvd is still running at the end")
    finally:
        d.stop()
        cleanup_vms(top)
        if failures:
            print(open(os.path.join(top, "hvd.log")).read()[-4000:])
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
