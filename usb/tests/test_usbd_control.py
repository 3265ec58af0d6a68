#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""hv-usbd's control socket without any USB device (no laptop needed):
requests and refusals, hostile lines, and --rules persistence across a
restart, including a damaged rules file.

usage: test_usbd_control.py HV_USBD   (run by meson test, suite unit)
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

USBD = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def start(top, *extra):
    sock = os.path.join(top, "usbd.sock")
    log = open(os.path.join(top, "usbd.log"), "a")
    p = subprocess.Popen([USBD, "--control", sock, *extra], stdout=log, stderr=log)
    # Until it accepts: the socket file exists a moment before listen(), and a
    # loaded machine makes that moment long.
    for _ in range(200):
        if p.poll() is not None:
            return p, sock  # the caller says why
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(sock)
            return p, sock
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("hv-usbd did not come up: " + open(log.name).read())


def stop(p):
    p.terminate()
    p.wait(10)


def call(sock, line):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n")
    buf = b""
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    return json.loads(buf.split(b"\n")[0]) if buf else None


def main():
    top = tempfile.mkdtemp(prefix="usbd-ctl.")
    rules = os.path.join(top, "rules.json")
    try:
        p, sock = start(top, "--rules", rules)
        try:
            r = call(sock, {"cmd": "list"})
        except OSError as e:
            if p.poll() is None:
                raise  # it runs but does not answer: a failure, not a skip
            print(f"SKIP: hv-usbd cannot run here ({e})")
            return 77
        if r is None or p.poll() is not None:
            print("SKIP: hv-usbd exits without USB support here (no libusb backend): " +
                  open(os.path.join(top, "usbd.log")).read())
            return 77
        check(r == {"ok": True, "devices": []}, f"list with no device ({r})")
        for line, want, what in [
            (b"not json\n", "not valid JSON", "garbage line"),
            (b"[1,2]\n", "expected an object", "not an object"),
            ({"cmd": "fly"}, "unknown command", "unknown command"),
            ({"cmd": "attach", "busid": "1-1", "cid": 3}, "no such device", "attach unknown"),
            ({"cmd": "detach", "busid": "../x"}, "no such device", "detach path-like busid"),
            ({"cmd": "rules", "set": [{"id": "zz", "target": "w"}]}, "rule \"id\"", "bad id"),
            ({"cmd": "rules", "set": [{"target": "a b"}]}, "target", "bad target"),
            ({"cmd": "rules", "set": [{"class": 999, "target": "w"}]}, "class", "bad class"),
            ({"cmd": "rules", "set": "x"}, "array", "set not an array"),
        ]:
            r = call(sock, line)
            check(r and r["ok"] is False and want in r["error"], f"{what} refused ({r})")
        r = call(sock, b"x" * 70000)
        check(r and "too long" in r["error"], "a 70 kB line is refused")
        check(not os.path.exists(rules), "refused rules were not saved")
        good = [{"id": "46f4:0001", "target": "work", "cid": 7},
                {"class": 3, "target": "host"}]
        r = call(sock, {"cmd": "rules", "set": good})
        check(r["ok"] and len(r["rules"]) == 2, "rules set")
        check(json.load(open(rules)) == r["rules"], "rules saved to the --rules file")
        check(p.poll() is None, "hv-usbd still running")
        stop(p)

        p, sock = start(top, "--rules", rules)
        r = call(sock, {"cmd": "rules"})
        check(r["rules"] == json.load(open(rules)) and r["rules"][0]["cid"] == 7,
              f"rules back after a restart ({r})")
        stop(p)

        for bad in (b"garbage", b'{"a":1}', b'[{"target":"../.."}]', b"[" * 100000):
            open(rules, "wb").write(bad)
            p, sock = start(top, "--rules", rules)
            r = call(sock, {"cmd": "rules"})
            check(r == {"ok": True, "rules": []} and p.poll() is None,
                  f"damaged rules file {bad[:20]!r}: starts with no rules")
            stop(p)
    finally:
        print(open(os.path.join(top, "usbd.log")).read()[-3000:])
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
