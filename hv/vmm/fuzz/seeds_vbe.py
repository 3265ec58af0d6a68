#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz_vbe: what the Linux bochs driver and a
firmware do to the Bochs VBE display (fuzz_vbe.c describes the encoding).
Run: hv/vmm/fuzz/seeds_vbe.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ID, XRES, YRES, BPP, ENABLE, BANK, VW, VH, XOFF, YOFF, VMEM = range(11)
W = {1: 0, 2: 1, 4: 2, 8: 3}


def port(reg, val):
    return bytes([0, reg]) + struct.pack('<H', val)


def mmio(reg, val):
    return bytes([3, reg]) + struct.pack('<H', val)


def modeset(how, w, h, extra=(), bpp=32):
    seq = [(ENABLE, 0), (BPP, bpp), (XRES, w), (YRES, h), (BANK, 0), (VW, w), (VH, h),
           (XOFF, 0), (YOFF, 0), *extra, (ENABLE, 0x41)]
    return b''.join(how(r, v) for r, v in seq)


def pixels(off, val, width=4):
    return bytes([4 | W[width] << 3]) + struct.pack('<IQ', off, val)


POLL, SAVE, RESET = bytes([6]), bytes([7]), bytes([0x87])
SEEDS = {
    'linux-mmio': modeset(mmio, 1280, 800) + pixels(4096 * 3, 0xff0000) + POLL + SAVE,
    'ports': modeset(port, 1024, 768) + pixels(0, 0x00ff00) + POLL + RESET + POLL,
    'pan': modeset(mmio, 800, 600, [(VW, 1024)]) + mmio(YOFF, 4) + POLL + mmio(XOFF, 1)
    + SAVE + mmio(XOFF, 0) + POLL,
    'edid-vga': bytes([0x82 | W[8] << 3]) + struct.pack('<H', 0) + bytes([0x02])
    + struct.pack('<HQ', 0x400, 0x20) + bytes([0x82 | W[4] << 3]) + struct.pack('<H', 0x41a)
    + modeset(port, 640, 480) + bytes([0x02]) + struct.pack('<HQ', 0x400, 0x00) + POLL,
    'depth16': modeset(port, 320, 200, bpp=16) + pixels(640 * 3, 0xf800, 2) + POLL
    + modeset(port, 320, 200, bpp=24) + pixels(9, 0x302010) + POLL + modeset(port, 320, 200, bpp=15)
    + POLL + SAVE,
    'huge': modeset(port, 0xffff, 0xffff) + modeset(port, 2048, 2048) + pixels(0xfffffc, 1)
    + POLL + bytes([5, 1]) + struct.pack('<I', 0xffffffff) + POLL + SAVE,
}

if __name__ == '__main__':
    d = os.path.join(HERE, 'corpus', 'vbe')
    os.makedirs(d, exist_ok=True)
    for name, b in SEEDS.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(b)
