# SPDX-License-Identifier: GPL-2.0-or-later
"""The virtual laptop: QEMU (TCG, q35, -cpu max with SVM) driven from Python.

    from vlaptop import Laptop
    with Laptop() as lt:                     # builds/caches the image, boots
        print(lt.check("uname -a").stdout)
        lt.put(b"data", "/tmp/x")
        lt.qmp("query-status")

Helpers for tests that drive it: wait_for() (poll until true, bounded),
newc() (a cpio archive to append to a guest's initrd), hvctl()/hvctl_ok()
(hvctl --json in the laptop), sd_disk() (a SCSI disk of the laptop, on
vhci_hcd or not). See docs/testing.md for the whole
picture.
"""

import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import build_image

QEMU = os.environ.get("HV_QEMU", "qemu-system-x86_64")
AGENT_PORT = "org.hv.agent"
GUEST_KERNEL = build_image.GUEST_DIR_IN_LAPTOP + "/vmlinuz"
GUEST_INITRD = build_image.GUEST_DIR_IN_LAPTOP + "/initrd.img"
DESKTOP_KERNEL = build_image.DESKTOP_GUEST_DIR_IN_LAPTOP + "/vmlinuz"
DESKTOP_INITRD = build_image.DESKTOP_GUEST_DIR_IN_LAPTOP + "/initrd.img"

# Agent protocol (tests/vlaptop/agent/hv-test-agent.c has the full picture).
MAGIC = 0x41545648
T_HELLO, T_PING, T_PONG, T_EXEC, T_RESULT, T_PUT, T_GET, T_OK, T_ERROR = range(1, 10)
F_TIMED_OUT, F_TRUNCATED = 1, 2


class LaptopError(Exception):
    """The laptop could not be started or driven; the message says why."""


class CommandFailed(LaptopError):
    def __init__(self, cmd, result):
        self.result = result
        super().__init__(f"command failed (rc={result.rc}"
                         f"{', timed out' if result.timed_out else ''}): {cmd}\n"
                         f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")


class QMPError(LaptopError):
    pass


@dataclass
class Result:
    rc: int               # exit code, or -N when killed by signal N
    stdout_bytes: bytes
    stderr_bytes: bytes
    timed_out: bool = False
    truncated: bool = False

    @property
    def stdout(self):
        return self.stdout_bytes.decode(errors="replace")

    @property
    def stderr(self):
        return self.stderr_bytes.decode(errors="replace")

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out


# ---- pictures ------------------------------------------------------------

class Screen:
    """A screendump: width, height and RGB bytes (row-major, 3 per pixel)."""

    def __init__(self, width, height, rgb):
        self.width, self.height, self.rgb = width, height, rgb

    @classmethod
    def from_ppm(cls, data):
        """Parses a binary (P6, maxval 255) PPM as QEMU writes it."""
        fields, pos = [], 0
        while len(fields) < 4:
            while data[pos:pos + 1].isspace():
                pos += 1
            if data[pos:pos + 1] == b"#":
                pos = data.index(b"\n", pos) + 1
                continue
            end = pos
            while not data[end:end + 1].isspace():
                end += 1
            fields.append(data[pos:end])
            pos = end
        if fields[0] != b"P6" or int(fields[3]) != 255:
            raise LaptopError(f"not a P6/255 PPM: {fields}")
        width, height = int(fields[1]), int(fields[2])
        rgb = data[pos + 1:pos + 1 + width * height * 3]
        if len(rgb) != width * height * 3:
            raise LaptopError("truncated PPM")
        return cls(width, height, rgb)

    def pixel(self, x, y):
        i = (y * self.width + x) * 3
        return tuple(self.rgb[i:i + 3])

    def colours(self, step=1):
        """The set of colours seen (every step-th pixel)."""
        px = self.rgb
        return {px[i:i + 3] for i in range(0, len(px), 3 * step)}

    def count(self, colour):
        """How many pixels have exactly this (r, g, b) colour."""
        want = bytes(colour)
        px = self.rgb
        return sum(1 for i in range(0, len(px), 3) if px[i:i + 3] == want)

    def save_png(self, path):
        rows = b"".join(b"\0" + self.rgb[y * self.width * 3:(y + 1) * self.width * 3]
                        for y in range(self.height))

        def chunk(kind, body):
            return (struct.pack(">I", len(body)) + kind + body +
                    struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))

        png = (b"\x89PNG\r\n\x1a\n" +
               chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)) +
               chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))
        Path(path).write_bytes(png)


# ---- QMP -----------------------------------------------------------------

class QMP:
    """A minimal QMP client: commands in order, events kept aside."""

    def __init__(self, path, timeout):
        self.sock = _connect_unix(path, timeout)
        self.sock.settimeout(timeout)
        self.reader = self.sock.makefile("rb")
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.reader.readline()
        if not line:
            raise QMPError("QMP connection closed (QEMU exited?)")
        return json.loads(line)

    def execute(self, command, timeout=60, **args):
        msg = {"execute": command}
        if args:
            msg["arguments"] = args
        self.sock.settimeout(timeout)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise QMPError(f"{command}: {reply['error'].get('desc', reply['error'])}")
            elif "return" in reply:
                return reply["return"]

    def wait_event(self, name, timeout=30, match=None):
        """Returns the first event called name (and matching match(data))."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and (match is None or match(ev.get("data", {}))):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError(f"no {name} event within {timeout} s")
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            except socket.timeout:
                pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _connect_unix(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ---- the agent channel ---------------------------------------------------

class Agent:
    """Frames over the virtio-serial port's unix socket."""

    def __init__(self, sock):
        self.sock = sock
        self.broken = None

    def send(self, ftype, payload=b""):
        self.sock.sendall(struct.pack("<III", MAGIC, ftype, len(payload)) + payload)

    def _recv_exact(self, n, deadline):
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            data = self.sock.recv(min(n, 1 << 20))
            if not data:
                raise LaptopError("the agent channel closed (the laptop went down?)")
            chunks.append(data)
            n -= len(data)
        return b"".join(chunks)

    def recv(self, deadline):
        magic, ftype, length = struct.unpack("<III", self._recv_exact(12, deadline))
        if magic != MAGIC:
            raise LaptopError(f"bad frame from the agent (magic {magic:#x})")
        return ftype, self._recv_exact(length, deadline)

    def request(self, ftype, payload, timeout):
        """Sends a request and returns the reply; a timeout breaks the channel."""
        if self.broken:
            raise LaptopError(f"the agent channel is unusable: {self.broken}")
        deadline = time.monotonic() + timeout
        try:
            # sendall() obeys the socket's timeout, which the last recv left at
            # whatever was left of the previous request's time: big puts failed.
            self.sock.settimeout(timeout)
            self.send(ftype, payload)
            while True:
                rtype, data = self.recv(deadline)
                if rtype != T_HELLO:  # a restarted agent says hello again
                    return rtype, data
        except socket.timeout:
            self.broken = f"no reply within {timeout:.0f} s"
            raise LaptopError(f"the agent did not answer within {timeout:.0f} s") from None
        except OSError as e:
            self.broken = str(e)
            raise LaptopError(f"the agent channel failed: {e}") from None


# ---- the laptop ----------------------------------------------------------

class Laptop:
    """One virtual laptop. start() boots it to its agent; stop() kills it.

    kernel/initrd/rootfs default to the cached image (built if needed).
    extra_cmdline is appended to the kernel command line; extra_args to QEMU's.
    """

    def __init__(self, *, kernel=None, initrd=None, rootfs=None, image=None,
                 memory="4G", smp=2, accel=None, extra_cmdline="", extra_args=(),
                 boot_timeout=None, qemu=None, workdir=None, name="vlaptop"):
        self.image = image
        self.kernel, self.initrd, self.rootfs = kernel, initrd, rootfs
        self.memory, self.smp = memory, smp
        self.accel = accel or os.environ.get("HV_LAPTOP_ACCEL", "tcg")
        self.extra_cmdline, self.extra_args = extra_cmdline, list(extra_args)
        self.boot_timeout = boot_timeout or float(os.environ.get("HV_BOOT_TIMEOUT", 180))
        self.qemu_bin = qemu or QEMU
        self.name = name
        self._own_workdir = workdir is None
        # QEMU's unix sockets live here: keep the path short (108 bytes max).
        tmp = tempfile.gettempdir() if len(tempfile.gettempdir()) < 60 else "/tmp"
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="vlaptop.", dir=tmp))
        self.console_log = self.workdir / "console.log"
        self.qemu_log = self.workdir / "qemu.log"
        self.proc = None
        self._qmp = None
        self.agent = None
        self.boot_seconds = None
        self._prepared = []  # prepare()'d setup, replayed after a restart
        self.restarts = 0
        self.on_restart = None  # on_restart(laptop, why), before a restart: keep logs

    # -- in-laptop paths of the test guest
    guest_kernel = GUEST_KERNEL
    guest_initrd = GUEST_INITRD
    # the desktop flavour (generic kernel: virtio-gpu, virtio-input, USB)
    desktop_kernel = DESKTOP_KERNEL
    desktop_initrd = DESKTOP_INITRD

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- start / stop

    def _resolve_image(self):
        if self.kernel and self.initrd and self.rootfs:
            return
        if self.image is None:
            self.image = build_image.ensure_image()
        self.kernel = self.kernel or self.image.kernel
        self.initrd = self.initrd or self.image.initrd
        self.rootfs = self.rootfs or self.image.rootfs

    def _check_inputs(self):
        for what, path in (("kernel", self.kernel), ("initrd", self.initrd),
                           ("root image", self.rootfs)):
            if not Path(path).is_file():
                raise LaptopError(f"the laptop's {what} is missing: {path}")
        if shutil.which(self.qemu_bin) is None:
            raise LaptopError(f"QEMU not found: '{self.qemu_bin}' (install qemu-system-x86)")

    def cmdline(self):
        base = "console=ttyS0 intel_iommu=on panic=-1 loglevel=4"
        return f"{base} {self.extra_cmdline}".strip()

    def qemu_args(self):
        w = self.workdir
        return [
            self.qemu_bin, "-name", self.name,
            "-accel", self.accel, "-machine", "q35,kernel-irqchip=split", "-cpu", "max",
            "-smp", str(self.smp), "-m", self.memory,
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-device", "intel-iommu,intremap=on",
            "-kernel", str(self.kernel), "-initrd", str(self.initrd),
            "-append", self.cmdline(),
            "-drive", f"if=none,id=root,file={self.rootfs},format=raw,readonly=on",
            "-device", "virtio-blk-pci,drive=root",
            "-chardev", f"file,id=con,path={self.console_log}", "-serial", "chardev:con",
            "-device", "virtio-serial-pci,id=vser",
            "-chardev", f"socket,id=agent,path={w}/agent.sock,server=on,wait=off",
            "-device", f"virtserialport,bus=vser.0,chardev=agent,name={AGENT_PORT}",
            "-qmp", f"unix:{w}/qmp.sock,server=on,wait=off",
            "-device", "virtio-vga,id=panel",
            "-device", "bochs-display,id=gpu2",
            "-netdev", "user,id=net0,restrict=on",
            "-device", "e1000e,id=nic0,netdev=net0,romfile=",
            "-device", "qemu-xhci,id=xhci",
            "-device", "usb-tablet,id=tablet,bus=xhci.0",
            "-device", "virtio-rng-pci",
        ] + self.extra_args

    def start(self):
        """Boots the laptop and waits for its agent, within boot_timeout."""
        self._resolve_image()
        self._check_inputs()
        self.workdir.mkdir(parents=True, exist_ok=True)  # stop() removes it
        for path in (self.initrd, self.rootfs):  # in use: keep prune_stale() away from it
            os.utime(Path(path).parent)
        t0 = time.monotonic()
        with open(self.qemu_log, "wb") as qlog:
            try:
                self.proc = subprocess.Popen(self.qemu_args(), stdin=subprocess.DEVNULL,
                                             stdout=qlog, stderr=subprocess.STDOUT,
                                             start_new_session=True,
                                             preexec_fn=_die_with_parent)
            except OSError as e:
                raise LaptopError(f"cannot start QEMU ({self.qemu_bin}): {e}") from None
        try:
            self._connect(t0)
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - t0
        for fn in self._prepared:  # a restart (a revived laptop): set it up again
            fn(self)
        return self

    def prepare(self, fn):
        """Runs fn(laptop) now and again after every restart of this laptop.

        For a module's setup inside the laptop (modules loaded, folders,
        daemons): when the laptop dies under a test and the harness boots it
        again (conftest.py), the tests after it find the same state.

        A laptop that is already dead when prepare() is called (a module
        fixture run again by the rerun of a test that the crash failed) is
        booted again first, with what was prepared before.
        """
        why = self.crashed()
        if why:
            self.restart(why)
        fn(self)
        self._prepared.append(fn)

    def restart(self, why="asked to"):
        """Keeps the console of the laptop that is going away, stops it and boots
        it again; what was prepare()'d is set up again."""
        if self.on_restart:
            self.on_restart(self, why)
        self.stop()
        self.restarts += 1
        self.start()

    def _connect(self, t0):
        deadline = t0 + self.boot_timeout
        sock = self._wait_for(lambda: _try_connect(self.workdir / "agent.sock"), deadline,
                              "QEMU's sockets did not appear")
        self.agent = Agent(sock)
        self._qmp = self._wait_for(lambda: QMP(self.workdir / "qmp.sock", 30), deadline,
                                   "QMP did not answer")
        while True:
            self._check_alive("before its shell came up")
            left = deadline - time.monotonic()
            if left <= 0:
                raise LaptopError(f"the laptop did not reach its shell within "
                                  f"{self.boot_timeout:.0f} s\n{self._tail()}")
            try:
                ftype, _ = self.agent.recv(time.monotonic() + min(left, 0.5))
            except socket.timeout:
                continue
            except (LaptopError, OSError):
                # The channel closed: QEMU is going away. Say why it did.
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                self._check_alive("before its shell came up")
                raise LaptopError(f"the agent channel closed during boot\n{self._tail()}")
            if ftype == T_HELLO:
                return

    def _wait_for(self, fn, deadline, what):
        while True:
            self._check_alive("at start")
            try:
                return fn()
            except OSError:
                if time.monotonic() > deadline:
                    raise LaptopError(f"{what} within {self.boot_timeout:.0f} s\n"
                                      f"{self._tail()}") from None
                time.sleep(0.05)

    def _check_alive(self, when):
        if self.proc.poll() is not None:
            raise LaptopError(f"QEMU exited {when} (status {self.proc.returncode})\n"
                              f"{self._tail()}")

    def _tail(self, lines=40):
        out = []
        for label, path in (("QEMU output", self.qemu_log), ("console", self.console_log)):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if text:
                out.append(f"--- {label} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(out) or "(no console output)"

    def crashed(self):
        """Why the laptop is gone (QEMU exited, or its kernel panicked), or None."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return f"QEMU exited with status {self.proc.returncode}"
        if "Kernel panic" in self.console_text():
            return "the laptop's kernel panicked"
        if self.agent and self.agent.broken:
            return f"the laptop stopped answering ({self.agent.broken})"
        return None

    def console_text(self):
        try:
            return self.console_log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Kills QEMU (politely first) and removes the work folder. Idempotent."""
        if self._qmp:
            try:
                self._qmp.execute("quit", timeout=5)
            except (LaptopError, OSError, ValueError):
                pass
            self._qmp.close()
            self._qmp = None
        if self.agent:
            self.agent.sock.close()
            self.agent = None
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def save_artifacts(self, dest, prefix=None):
        """Copies the console and QEMU logs, and the laptop's dmesg if it still
        answers, to dest (before stop())."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        prefix = prefix or self.name
        for src in (self.console_log, self.qemu_log):
            if src.exists():
                shutil.copy2(src, dest / f"{prefix}-{src.name}")
        if self.agent and not self.agent.broken:
            try:
                dmesg = self.run("dmesg", timeout=15).stdout_bytes
                (dest / f"{prefix}-dmesg.txt").write_bytes(dmesg)
            except LaptopError:
                pass

    # -- commands and files

    def run(self, cmd, timeout=60, stdin=b""):
        """Runs /bin/sh -c cmd in the laptop; returns a Result."""
        if isinstance(stdin, str):
            stdin = stdin.encode()
        payload = (struct.pack("<II", int(timeout * 1000), len(stdin)) + stdin +
                   cmd.encode())
        rtype, data = self.agent.request(T_EXEC, payload, timeout + 30)
        if rtype == T_ERROR:
            raise LaptopError(f"agent: {data.decode(errors='replace')}")
        if rtype != T_RESULT or len(data) < 12:
            raise LaptopError(f"unexpected reply {rtype} to EXEC")
        rc, flags, out_len = struct.unpack("<iII", data[:12])
        out = data[12:12 + out_len]
        err = data[12 + out_len:]
        return Result(rc, out, err, bool(flags & F_TIMED_OUT), bool(flags & F_TRUNCATED))

    def check(self, cmd, timeout=60, stdin=b""):
        """Like run(), but raises CommandFailed (with the output) unless rc is 0."""
        res = self.run(cmd, timeout=timeout, stdin=stdin)
        if not res.ok:
            raise CommandFailed(cmd, res)
        return res

    def put(self, src, remote_path, mode=0o644, timeout=120):
        """Copies bytes, or a local file's contents, to remote_path."""
        data = src if isinstance(src, (bytes, bytearray)) else Path(src).read_bytes()
        path = remote_path.encode()
        payload = struct.pack("<II", mode, len(path)) + path + bytes(data)
        rtype, reply = self.agent.request(T_PUT, payload, timeout)
        if rtype != T_OK:
            raise LaptopError(f"put {remote_path}: {reply.decode(errors='replace')}")

    def get(self, remote_path, timeout=120):
        """Returns the bytes of a file in the laptop."""
        rtype, data = self.agent.request(T_GET, remote_path.encode(), timeout)
        if rtype != T_OK:
            raise LaptopError(f"get {remote_path}: {data.decode(errors='replace')}")
        return data

    def ping(self, timeout=10):
        rtype, _ = self.agent.request(T_PING, b"", timeout)
        return rtype == T_PONG

    # -- QEMU monitor: what a person does to the machine

    def qmp(self, command, timeout=60, **args):
        if not self._qmp:
            raise LaptopError("the laptop is not running")
        return self._qmp.execute(command, timeout=timeout, **args)

    def wait_event(self, name, timeout=30, match=None):
        return self._qmp.wait_event(name, timeout=timeout, match=match)

    def screendump(self, path=None, device=None):
        """Returns a Screen of a display (default: the panel, virtio-vga).

        With path, also writes the picture there (PNG if path ends in .png,
        else PPM).
        """
        with tempfile.NamedTemporaryFile(suffix=".ppm", dir=self.workdir) as f:
            args = {"filename": f.name}
            if device:
                args["device"] = device
            self.qmp("screendump", **args)
            data = Path(f.name).read_bytes()
        screen = Screen.from_ppm(data)
        if path:
            if str(path).endswith(".png"):
                screen.save_png(path)
            else:
                Path(path).write_bytes(data)
        return screen

    def usb_add(self, dev_id, image, *, readonly=False, bus="xhci.0", driver="usb-storage"):
        """Hotplugs a USB mass-storage device backed by a host image file."""
        node = f"{dev_id}-blk"
        self.qmp("blockdev-add", **{
            "node-name": node, "driver": "raw", "read-only": readonly,
            "file": {"driver": "file", "filename": str(image)}})
        try:
            self.qmp("device_add", driver=driver, id=dev_id, drive=node, bus=bus)
        except LaptopError:
            self.qmp("blockdev-del", **{"node-name": node})
            raise

    def usb_del(self, dev_id, timeout=30):
        """Unplugs a device added by usb_add and waits until it is gone."""
        self.qmp("device_del", id=dev_id)
        self.wait_event("DEVICE_DELETED", timeout=timeout,
                        match=lambda d: d.get("device") == dev_id)
        try:
            self.qmp("blockdev-del", **{"node-name": f"{dev_id}-blk"})
        except QMPError:
            pass

    def send_key(self, *keys, hold_time=100):
        """Presses keys together: send_key("ctrl", "alt", "f1")."""
        self.qmp("send-key", keys=[{"type": "qcode", "data": k} for k in keys],
                 **{"hold-time": hold_time})

    def type_text(self, text):
        names = {" ": "spc", "\n": "ret", ".": "dot", "-": "minus", "/": "slash"}
        for ch in text:
            if ch.isupper():
                self.send_key("shift", ch.lower())
            else:
                self.send_key(names.get(ch, ch))

    def mouse_move(self, x, y, device=None):
        """Moves the tablet pointer to absolute (x, y) in 0..32767."""
        events = [{"type": "abs", "data": {"axis": "x", "value": x}},
                  {"type": "abs", "data": {"axis": "y", "value": y}}]
        self._input(events, device)

    def mouse_click(self, button="left", device=None):
        for down in (True, False):
            self._input([{"type": "btn", "data": {"down": down, "button": button}}], device)

    def _input(self, events, device):
        args = {"events": events}
        if device:
            args["device"] = device
        self.qmp("input-send-event", **args)


# ---- helpers for tests ------------------------------------------------------

def wait_for(fn, timeout, what, interval=0.5):
    """Calls fn() until it returns something true, and returns that; after
    timeout seconds raises AssertionError naming what was awaited (what may
    carry logs: it is only formatted on failure if it is callable)."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.time() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {detail}")
        time.sleep(interval)


def newc(files):
    """A cpio archive (newc) of {path: (mode, bytes)}, to append to an initrd."""
    out = bytearray()

    def entry(name, mode, data, ino):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        out.extend(hdr.encode() + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (path, (mode, data)) in enumerate(files.items(), start=1):
        entry(path, mode, data, ino)
    entry("TRAILER!!!", 0, b"", 0)
    return bytes(out)


HVCTL = "/usr/local/bin/hvctl"


def hvctl(laptop, *args, timeout=90):
    """hvctl --json ARGS in the laptop: (rc, parsed stdout or its text or
    None, stderr)."""
    res = laptop.run(" ".join([HVCTL, "--json", *args]), timeout=timeout)
    try:
        out = json.loads(res.stdout) if res.stdout.strip() else None
    except ValueError:
        out = res.stdout
    return res.rc, out, res.stderr


def hvctl_ok(laptop, *args, timeout=90, detail=None):
    """hvctl() that must succeed; detail() adds to the failure's message."""
    rc, out, err = hvctl(laptop, *args, timeout=timeout)
    assert rc == 0, (f"hvctl {' '.join(args)}: rc {rc}: {out} {err}"
                     + (f"\n{detail()}" if detail else ""))
    return out


def sd_disk(laptop, on_vhci):
    """The laptop's sd block device whose sysfs path is (or, with on_vhci
    false, is not) under vhci_hcd, i.e. a USB/IP-imported or a local disk."""
    res = laptop.run("for d in /sys/block/sd*; do [ -e $d ] && "
                     "echo $(basename $d) $(readlink -f $d); done")
    for line in res.stdout.splitlines():
        name, path = line.split(None, 1)
        if ("vhci_hcd" in path) == on_vhci:
            return name
    return None


def _die_with_parent():
    """In QEMU's child process: SIGKILL it if the Python process dies, so no
    QEMU outlives a test run that was killed (pytest timeout, ^C, OOM)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os._exit(1)


def _try_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        raise
    return s
