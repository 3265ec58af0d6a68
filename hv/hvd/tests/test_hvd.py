#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""hvd against a fake hv-vmm: definitions, lifecycle, crash and reboot events,
re-attach after kill -9 of hvd, bad input, disks, and a 50-client load test.

usage: test_hvd.py HVD FAKE_VMM HVCTL   (run by meson test, suite unit)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

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


class Hvd:
    def __init__(self, top):
        self.top = top
        self.state = os.path.join(top, "state")
        self.run = os.path.join(top, "run")
        self.sock = os.path.join(self.run, "hvd.sock")
        self.proc = None

    def start(self):
        log = open(os.path.join(self.top, "hvd.log"), "a")
        self.proc = subprocess.Popen(
            [HVD, "--state-dir", self.state, "--run-dir", self.run, "--vmm", FAKE_VMM,
             "--vsock-port", "-1"], stdout=log, stderr=log)
        for _ in range(200):
            if os.path.exists(self.sock):
                try:
                    c = Client(self.sock)
                    c.close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("hvd did not come up")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

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


def test_load(d):
    c = Client(d.sock)
    for n in ("alpha", "beta"):
        if c.call("vm.info", name=n)["result"]["state"] in ("running", "paused"):
            c.call("vm.destroy", name=n)
    # Warm up allocator and caches before measuring.
    for _ in range(200):
        c.call("vm.list")
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
    # Kill every fake VMM this test started, even on failure.
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0] == FAKE_VMM.encode() and top.encode() in b" ".join(cmd):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def main():
    top = tempfile.mkdtemp(prefix="hvd-test-")
    d = Hvd(top)
    try:
        d.start()
        test_bad_input(d)
        test_definitions(d, top)
        test_lifecycle(d)
        test_reattach(d)
        test_reboot(d, top)
        test_disks(d, top)
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
