# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs hv-switch under Xvfb with fake display producers, for tests and the benchmark."""

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import xshot

REPO = Path(__file__).resolve().parent.parent.parent
WIDTH, HEIGHT = 1280, 800


def build_dir():
    return Path(os.environ.get("HV_BUILD_DIR", REPO / "build"))


def tool(name):
    path = build_dir() / "hv" / "switch" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build first (meson setup build && ninja -C build)")
    return str(path)


def wait_for(pred, timeout, what, poll=0.1):
    """Calls pred until it returns something true; raises after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


class Producer:
    def __init__(self, env, name, args):
        self.name = name
        self.log = env.dir / f"producer-{name}.log"
        self.proc = env.spawn([tool("hv-fake-display"), "--socket", env.sock, "--name", name]
                              + args, self.log)

    def lines(self):
        return self.log.read_text(errors="replace").splitlines()

    def keys(self, pressed=True):
        want = "press" if pressed else "release"
        return [int(l.split()[1]) for l in self.lines() if l.startswith("key ") and l.endswith(want)]

    def wait_line(self, pred, timeout=10, what="a line"):
        return wait_for(lambda: next((l for l in self.lines() if pred(l)), None), timeout,
                        f"{self.name} to log {what}")


class SwitchEnv:
    """Xvfb + hv-switch; every process it starts is killed by close()."""

    def __init__(self, extra_args=()):
        for prog in ("Xvfb", "xdotool", "xwd"):
            if not shutil.which(prog):
                raise RuntimeError(f"{prog} is missing: scripts/deps.sh test")
        self.procs = []
        self.dir = Path(tempfile.mkdtemp(prefix="hv-switch-test-"))
        self.sock = str(self.dir / "switch.sock")
        self.control = str(self.dir / "switch-control.sock")  # hv-switch's default beside it
        self.display = self._start_xvfb()
        self.env = dict(os.environ, DISPLAY=self.display, SDL_VIDEODRIVER="x11")
        self.switch_log = self.dir / "hv-switch.log"
        self.switch = self.spawn([tool("hv-switch"), "--socket", self.sock, "--size",
                                  f"{WIDTH}x{HEIGHT}", "--renderer", "software", *extra_args],
                                 self.switch_log)
        wait_for(lambda: (os.path.exists(self.sock) and os.path.exists(self.control))
                 or self.switch.poll() is not None, 15, "hv-switch's sockets")
        if self.switch.poll() is not None:
            raise RuntimeError("hv-switch exited:\n" + self.switch_log.read_text())

    def _start_xvfb(self):
        r, w = os.pipe()
        p = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0",
                              f"{WIDTH}x{HEIGHT}x24", "-nolisten", "tcp", "-noreset"], pass_fds=[w],
                             stdout=subprocess.DEVNULL, stderr=open(self.dir / "xvfb.log", "w"),
                             start_new_session=True)
        self.procs.append(p)
        os.close(w)
        # The read end stays open: Xvfb fails when it cannot write its number there.
        self.displayfd = r
        ready, _, _ = select.select([r], [], [], 15)
        num = os.read(r, 64).decode().strip() if ready else ""
        if not num:
            raise RuntimeError("Xvfb did not start")
        return ":" + num

    def spawn(self, argv, log):
        env = getattr(self, "env", None)
        # O_APPEND, so that a test can truncate a log while the process writes it.
        p = subprocess.Popen(argv, stdout=open(log, "a"), stderr=subprocess.STDOUT,
                             env=env, start_new_session=True)
        self.procs.append(p)
        return p

    def vm(self, name, colour, *args):
        return Producer(self, name, ["--colour", colour, *args])

    def key(self, *keys):
        subprocess.run(["xdotool", "key", "--delay", "30", *keys], env=self.env, check=True,
                       timeout=10)

    def type(self, text):
        subprocess.run(["xdotool", "type", "--delay", "30", text], env=self.env, check=True,
                       timeout=10)

    def click(self, x, y, button=1):
        subprocess.run(["xdotool", "mousemove", "--sync", str(x), str(y), "click", str(button)],
                       env=self.env, check=True, timeout=10)

    def shot(self):
        return xshot.capture(self.display)

    def wait_screen(self, pred, what, timeout=10):
        """Waits until pred(screenshot) is true; returns that screenshot."""
        last = []

        def check():
            s = self.shot()
            last[:] = [s]
            return s if pred(s) else None

        try:
            return wait_for(check, timeout, what, poll=0.2)
        except TimeoutError:
            if last:
                self.failed_shot = last[0]
            raise

    def log(self):
        return self.switch_log.read_text(errors="replace")

    def stats(self):
        out = subprocess.run([tool("hv-fake-display"), "--socket", self.sock, "--stats"],
                             capture_output=True, text=True, check=True, timeout=10).stdout
        import json
        return json.loads(out)

    def close(self, artifacts=None):
        if artifacts:
            artifacts.mkdir(parents=True, exist_ok=True)
            try:
                if self.switch.poll() is None:
                    self.shot().save_png(artifacts / "screen.png")
            except Exception as e:  # keep the logs even if the screen cannot be read
                (artifacts / "screen-error.txt").write_text(str(e))
            if getattr(self, "failed_shot", None):
                self.failed_shot.save_png(artifacts / "last-waited-screen.png")
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        if artifacts:
            for f in self.dir.glob("*.log"):
                shutil.copy(f, artifacts / f.name)
        os.close(self.displayfd)
        shutil.rmtree(self.dir, ignore_errors=True)
