#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Switch latency of hv-switch, in frames at 60 Hz.

Presses Ctrl+Alt+1 / Ctrl+Alt+2 alternately and reads the latencies hv-switch
measured itself (hotkey arrival to the new VM's frame presented) through its
stats query. Several runs; prints min / median / max per run and overall.

Window mode (default): hv-switch in a window under Xvfb (SDL x11 driver) with
two fake VMs; absolute figures of this machine, no vsync under Xvfb.

    bench/switch/switch-latency.py [--runs 3] [--switches 20] [--renderer software]

Laptop mode: in the virtual laptop, hv-switch on the panel (SDL KMSDRM,
opengles2 on Mesa, vsync), the hotkeys sent through QMP into the laptop's
keyboard; the producers are two hv-fake-display, or with --guests two real
guests (hv-vmm --display, the desktop test guest painting its fb0). Uses
$HV_BUILD_DIR like the tests.

    bench/switch/switch-latency.py --laptop [--guests] [--runs 3] [--switches 20]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(TOP / "tests" / "switch"))
sys.path.insert(0, str(TOP / "tests" / "vlaptop"))
from switchenv import SwitchEnv, wait_for  # noqa: E402

FRAME_US = 1e6 / 60
SOCK = "/run/hv/switch.sock"


def run(renderer, switches, size):
    env = SwitchEnv(extra_args=["--renderer", renderer])  # the last --renderer wins
    try:
        env.vm("red", "cc2020", "--size", size)
        env.vm("blue", "2040cc", "--size", size)
        wait_for(lambda: env.log().count("connected") >= 2, 10, "two VMs")
        for i in range(switches):
            env.key(f"ctrl+alt+{2 - i % 2}")
            wait_for(lambda: env.stats()["switches"] >= i + 1, 10, f"switch {i + 1}")
            time.sleep(0.05)
        return [us / FRAME_US for us in env.stats()["samples_us"]]
    finally:
        env.close()


def laptop_setup(lt, guests):
    """hv-switch on the laptop's panel and two producers, red in slot 1, blue in 2."""
    lt.check("modprobe kvm_amd && modprobe virtio_gpu && mkdir -p /run/hv")
    for name, colour, slot in (("red", "c02020", 1), ("blue", "2040c0", 2)):
        if guests:
            lt.check(f"setsid hv-vmm --name {name} --kernel {lt.desktop_kernel} "
                     f"--initrd {lt.desktop_initrd} --memory 256M "
                     f"--cmdline 'console=ttyS0 panic=-1 quiet hv.test=desk "
                     f"hv.colour={colour} hv.name={name}' --console file:/tmp/{name}.con "
                     f"--display {SOCK},name={name},colour={colour},slot={slot} "
                     f"</dev/null >/tmp/{name}.vmm 2>&1 &")
    if guests:
        for name in ("red", "blue"):
            wait_for(lambda: "hv-desk: painted" in lt.run(f"cat /tmp/{name}.con").stdout,
                     300, f"guest {name} to paint", poll=2)


def laptop_run(lt, guests, switches):
    """One run: a fresh hv-switch, the producers connect, `switches` hotkeys."""
    lt.run("pkill -x hv-switch; pkill -x hv-fake-display; sleep 1")
    lt.check(f"SDL_VIDEODRIVER=kmsdrm setsid hv-switch --socket {SOCK} "
             f"</dev/null >/tmp/switch.log 2>&1 &")
    wait_for(lambda: lt.run(f"test -S {SOCK}").rc == 0, 30, "hv-switch's socket", poll=0.5)
    if not guests:
        for name, colour, slot in (("red", "c02020", 1), ("blue", "2040c0", 2)):
            lt.check(f"setsid hv-fake-display --socket {SOCK} --name {name} --colour {colour} "
                     f"--slot {slot} </dev/null >/tmp/{name}.fake 2>&1 &")
    wait_for(lambda: lt.run("grep -c connected /tmp/switch.log").stdout.strip() == "2",
             60, "two VMs connected (hv-vmm reconnects within a second)", poll=0.5)
    time.sleep(2)

    def stats():
        return json.loads(lt.check(f"hv-fake-display --socket {SOCK} --stats").stdout)
    lt.send_key("ctrl", "alt", "1")  # whichever connected first has the focus
    time.sleep(3)
    base = stats()["switches"]
    for i in range(switches):
        lt.send_key("ctrl", "alt", str(2 - i % 2))
        wait_for(lambda: stats()["switches"] >= base + i + 1, 30, f"switch {i + 1}", poll=0.3)
        time.sleep(0.5)
    return [us / FRAME_US for us in stats()["samples_us"][-switches:]]


def laptop_main(args):
    import vlaptop  # noqa: E402  (builds the image: only in this mode)
    what = "two real guests (hv-vmm --display)" if args.guests else "two hv-fake-display"
    print(f"hv-switch switch latency in the virtual laptop: KMSDRM panel, opengles2, vsync, "
          f"{what}, hotkeys through QMP; frames at 60 Hz (16.7 ms)", flush=True)
    with vlaptop.Laptop(name="switch-latency") as lt:
        lt.check("modprobe virtio_gpu")
        laptop_setup(lt, args.guests)
        every = []
        for r in range(args.runs):
            frames = laptop_run(lt, args.guests, args.switches)
            every += frames
            print(f"run {r + 1}: {summary(frames)}", flush=True)
        print(f"all:   {summary(every)}")
        print(lt.run("grep -m1 'video driver' /tmp/switch.log").stdout.strip())


def summary(frames):
    return (f"min {min(frames):.2f}  median {statistics.median(frames):.2f}  "
            f"max {max(frames):.2f} frames  (n={len(frames)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--renderer", default="software", help="SDL renderer: software, opengl, opengles2")
    ap.add_argument("--size", default="1280x800", help="the fake VMs' scanout size")
    ap.add_argument("--laptop", action="store_true",
                    help="in the virtual laptop, on its KMSDRM panel")
    ap.add_argument("--guests", action="store_true",
                    help="with --laptop: two real guests instead of fake displays")
    args = ap.parse_args()
    if args.laptop:
        return laptop_main(args)
    print(f"hv-switch switch latency, {args.size} scanouts, renderer {args.renderer},"
          f" Xvfb 1280x800, frames at 60 Hz (16.7 ms)")
    every = []
    for r in range(args.runs):
        frames = run(args.renderer, args.switches, args.size)
        every += frames
        print(f"run {r + 1}: {summary(frames)}")
    print(f"all:   {summary(every)}")


if __name__ == "__main__":
    main()
