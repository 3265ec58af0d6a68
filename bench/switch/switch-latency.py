#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Switch latency of hv-switch, in frames at 60 Hz.

Runs hv-switch in a window under Xvfb (SDL x11 driver) with two fake VMs,
presses Ctrl+Alt+1 / Ctrl+Alt+2 alternately, and reads the latencies hv-switch
measured itself (hotkey arrival to the new VM's frame presented) through its
stats query. Several runs; prints min / median / max per run and overall.
Absolute figures: on this machine, not a laptop; no vsync under Xvfb.

    bench/switch/switch-latency.py [--runs 3] [--switches 20] [--renderer software]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "tests" / "switch"))
from switchenv import SwitchEnv, wait_for  # noqa: E402

FRAME_US = 1e6 / 60


def run(renderer, switches, size):
    env = SwitchEnv(extra_args=["--renderer", renderer]  # the last --renderer wins)
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


def summary(frames):
    return (f"min {min(frames):.2f}  median {statistics.median(frames):.2f}  "
            f"max {max(frames):.2f} frames  (n={len(frames)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--renderer", default="software", help="SDL renderer: software, opengl, opengles2")
    ap.add_argument("--size", default="1280x800", help="the fake VMs' scanout size")
    args = ap.parse_args()
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
