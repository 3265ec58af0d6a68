#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""One slow or hostile peer must not stall hv-usbd for the others (#12 defect 5).

The real hv-usbd runs with no USB device, its control socket and its TCP
USB/IP listener. While a peer misbehaves, another client keeps asking and
must be answered well under a second each time:

  (a) a TCP peer sends its OP_REQ_IMPORT and a control client its attach
      request one byte a second: both are dropped at the whole-request
      deadline (10 s), with a log line naming them;
  (b) a control client asks for a large reply many times and reads none:
      it is dropped once its replies have waited 10 s;
  (c) a control client floods requests without reading: hv-usbd stops
      taking them (its RSS stays flat) and the queue reported when it is
      dropped is within the cap.

usage: test_usbd_slow_peers.py HV_USBD   (run by meson test, suite unit)
"""
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

USBD = sys.argv[1]
REQUEST_S = 10  # USBD_REQUEST_MS
DRAIN_S = 10  # USBD_CONTROL_DRAIN_MS
QUEUE_CAP = 1 << 20  # CLIENT_OUT_CAP
PROMPT_S = 0.5  # "well under a second"
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Usbd:
    def __init__(self, top):
        self.sock = os.path.join(top, "usbd.sock")
        self.logname = os.path.join(top, "usbd.log")
        self.port = free_port()
        log = open(self.logname, "a")
        self.p = subprocess.Popen([USBD, "--control", self.sock, "--tcp", str(self.port)],
                                  stdout=log, stderr=log)
        # Until it accepts: the socket file exists a moment before listen().
        for _ in range(200):
            if self.p.poll() is not None:
                return  # the caller says why
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.sock)
                return
            except OSError:
                time.sleep(0.05)
        self.p.kill()
        raise RuntimeError("hv-usbd did not come up: " + self.log())

    def log(self):
        return open(self.logname, errors="replace").read()

    def rss_kib(self):
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def control(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.sock)
        return s

    def call(self, obj):
        """One request on a fresh connection: (reply, seconds it took)."""
        t0 = time.monotonic()
        s = self.control()
        s.sendall(json.dumps(obj).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
        s.close()
        return (json.loads(buf.split(b"\n")[0]) if buf else None), time.monotonic() - t0

    def devlist(self):
        """OP_REQ_DEVLIST over TCP: (number of devices, seconds it took)."""
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(struct.pack(">HHI", 0x0111, 0x8005, 0))
        buf = b""
        while len(buf) < 12:
            d = s.recv(64)
            if not d:
                break
            buf += d
        s.close()
        n = struct.unpack(">I", buf[8:12])[0] if len(buf) >= 12 else None
        return n, time.monotonic() - t0


class Prober:
    """The well-behaved client: a control "list" and a TCP device list, timed."""

    def __init__(self, usbd):
        self.usbd = usbd
        self.worst = 0.0
        self.bad = []

    def probe(self):
        t0 = time.monotonic()
        try:
            r, t = self.usbd.call({"cmd": "list"})
            if r != {"ok": True, "devices": []}:
                self.bad.append(f"list answered {r}")
            n, t2 = self.usbd.devlist()
            if n != 0:
                self.bad.append(f"devlist answered {n}")
            self.worst = max(self.worst, t, t2)
        except OSError as e:
            self.bad.append(f"no answer: {e!r}")
            self.worst = max(self.worst, time.monotonic() - t0)

    def report(self, during):
        check(not self.bad and self.worst < PROMPT_S,
              f"{during}: another client answered within {PROMPT_S} s each time "
              f"(worst {self.worst:.3f} s{', ' + self.bad[0] if self.bad else ''})")


def closed(s):
    """True when the peer has closed s (after any data it sent); never waits."""
    try:
        while select.select([s], [], [], 0)[0]:
            if not s.recv(1 << 20):
                return True
        return False
    except OSError:
        return True


def wait_log(usbd, pattern, timeout, start=0):
    """The first match of pattern in the log after its first start characters."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.search(pattern, usbd.log()[start:])
        if m:
            return m
        time.sleep(0.1)
    return None


def test_dribbling_requests(usbd):
    """(a) requests one byte a second; the others are answered meanwhile."""
    tcp = socket.create_connection(("127.0.0.1", usbd.port))
    tcp_name = "TCP 127.0.0.1:%d" % tcp.getsockname()[1]
    ctl = usbd.control()
    import_req = struct.pack(">HHI", 0x0111, 0x8003, 0) + b"1-1".ljust(32, b"\0")
    attach_req = json.dumps({"cmd": "attach", "busid": "1-1", "cid": 3}).encode() + b"\n"
    peers = {"TCP OP_REQ_IMPORT": [tcp, import_req, None],
             "control attach": [ctl, attach_req, None]}
    prober = Prober(usbd)
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < REQUEST_S + 4:
        for name, peer in peers.items():
            s, data, dropped = peer
            if dropped is None and i < len(data):
                try:
                    s.send(data[i:i + 1])
                except OSError:
                    peer[2] = time.monotonic() - t0
            if peer[2] is None and closed(s):
                peer[2] = time.monotonic() - t0
        i += 1
        next_byte = t0 + i
        while time.monotonic() < next_byte:
            prober.probe()
            time.sleep(0.05)
    prober.report("while two peers dribbled their requests")
    for name, (s, data, dropped) in peers.items():
        check(dropped is not None and REQUEST_S - 1 <= dropped <= REQUEST_S + 2,
              f"{name} one byte a second: dropped at the {REQUEST_S} s deadline "
              f"(after {dropped} s, {len(data)} bytes to send)")
        s.close()
    log = usbd.log()
    check(f"dropping {tcp_name}: its request did not arrive within {REQUEST_S} s" in log,
          f"the log names the slow TCP peer ({tcp_name})")
    check(re.search(r"dropping control client \(pid \d+\): no whole request", log),
          "the log names the slow control client")


def test_not_reading(usbd):
    """(b) large replies asked for and never read."""
    rules = [{"id": "%04x:%04x" % (0x1000 + i, i), "class": 8, "port": "1-%d" % (i % 9 + 1),
              "target": "vm%d" % i, "cid": 3 + i, "port_vsock": 5310} for i in range(256)]
    r, _ = usbd.call({"cmd": "rules", "set": rules})
    check(r and r["ok"] and len(r["rules"]) == 256, "256 rules set (a large reply)")
    reply_size = len(json.dumps(r))
    s = usbd.control()
    s.setblocking(False)
    asked = 0
    req = b'{"cmd":"rules"}\n'
    # Several MiB of replies, far more than a socket buffer and the cap.
    want = 8 * QUEUE_CAP // reply_size
    try:
        while asked < want:
            s.send(req)
            asked += 1
    except BlockingIOError:
        pass
    t0 = time.monotonic()
    print(f"asked for {asked} replies of {reply_size} bytes and read none", flush=True)
    prober = Prober(usbd)
    dropped = None
    while time.monotonic() - t0 < DRAIN_S + 4:
        prober.probe()
        m = re.search(r"dropping control client \(pid \d+\): it did not read its replies",
                      usbd.log())
        if m and dropped is None:
            dropped = time.monotonic() - t0
        time.sleep(0.05)
    prober.report("while a client did not read its replies")
    check(dropped is not None and DRAIN_S - 1 <= dropped <= DRAIN_S + 2,
          f"the client that does not read is dropped after {DRAIN_S} s (after {dropped} s)")
    # What it had been sent is still there to read, then the end.
    s.setblocking(True)
    s.settimeout(5)
    got = b""
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += d
    except OSError:
        pass
    s.close()
    lines = got.count(b"\n")
    check(0 < len(got) and lines * 2 < asked,
          f"it was disconnected: it got {lines} of its {asked} replies "
          f"({len(got)} bytes), then end of file")


def test_flood_bounded(usbd):
    """(c) a flood of requests that amplify, never reading: bounded memory."""
    rss0 = usbd.rss_kib()
    log_start = len(usbd.log())
    s = usbd.control()
    s.setblocking(False)
    req = b'{"cmd":"rules"}\n' * 256
    sent = 0
    t0 = time.monotonic()
    peak = rss0
    prober = Prober(usbd)
    while time.monotonic() - t0 < 4:
        try:
            sent += s.send(req)
        except BlockingIOError:
            prober.probe()
            time.sleep(0.05)
        peak = max(peak, usbd.rss_kib())
    prober.report("while a client flooded requests")
    print(f"flood: {sent} bytes of requests taken by the socket, RSS {rss0} -> {peak} KiB",
          flush=True)
    # Unbounded, each 16-byte request would queue a 20 kB reply.
    check(sent < 4 << 20, f"hv-usbd stopped taking requests it could not answer ({sent} bytes)")
    check(peak - rss0 < 32 << 10, f"RSS stays flat under the flood (+{peak - rss0} KiB)")
    m = wait_log(usbd, r"dropping control client \(pid \d+\): it did not read its replies "
                 r"within \d+ s \((\d+) bytes queued, cap (\d+)\)", DRAIN_S + 6, log_start)
    check(m and 0 < int(m.group(1)) <= int(m.group(2)) == QUEUE_CAP,
          f"the flooder is dropped with its queue within the cap ({m and m.group(0).strip()})")
    s.close()


def main():
    top = tempfile.mkdtemp(prefix="usbd-slow.")
    usbd = None
    try:
        usbd = Usbd(top)
        try:
            r, _ = usbd.call({"cmd": "list"})
        except OSError as e:
            if usbd.p.poll() is None:
                raise  # it runs but does not answer: a failure, not a skip
            print(f"SKIP: hv-usbd cannot run here ({e})")
            return 77
        if r is None or usbd.p.poll() is not None:
            print("SKIP: hv-usbd exits without USB support here: " + usbd.log())
            return 77
        test_dribbling_requests(usbd)
        test_not_reading(usbd)
        test_flood_bounded(usbd)
        check(usbd.p.poll() is None, "hv-usbd still running")
    finally:
        if usbd:
            usbd.p.terminate()
            try:
                usbd.p.wait(10)
            except subprocess.TimeoutExpired:
                usbd.p.kill()
                usbd.p.wait()
            print(usbd.log()[-4000:])
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
