#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz_fw_cfg: what SeaBIOS does with fw_cfg at
boot (fuzz_fw_cfg.c describes the encoding). Run: hv/vmm/fuzz/seeds_fw_cfg.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
RAM = 0x10000
READ, SKIP, SELECT, WRITE = 0x02, 0x04, 0x08, 0x10


def select(key):
    return bytes([0]) + struct.pack('<H', key)


def read(n):
    return bytes([1, n])


def port(off, width_log2, write, value):
    return bytes([2 | width_log2 << 3 | (0x20 if write else 0), off]) + struct.pack('>I', value)


def dma(at, control, length, addr, high=None):
    op = 3 | (0x08 if high is not None else 0)
    b = bytes([op]) + struct.pack('>I', at) + struct.pack('>IIQ', control, length, addr)
    if high is not None:
        b += struct.pack('>I', high)
    return b


seeds = {
    'signature': select(0) + read(4) + select(1) + read(4),
    'dma-signature': port(4, 2, False, 0) + port(8, 2, False, 0),
    'directory': dma(RAM, 0x19 << 16 | SELECT | READ, 4, RAM + 0x100) +
                 dma(RAM, READ, 64 * 3, RAM + 0x200),
    'file-skip': select(0x20) + dma(RAM, SKIP, 2, 0) + dma(RAM, READ, 30, RAM + 0x400) + read(8),
    'dma-outside': dma(RAM, 0x20 << 16 | SELECT | READ, 20, 0xfffff000) +
                   dma(RAM, WRITE, 4, RAM) + dma(0x100, READ, 4, RAM),
    'dma-high': dma(RAM + 0x20, 0x21 << 16 | SELECT | READ, 8, RAM, high=0) +
                dma(RAM, READ, 8, RAM, high=1),
    'reset': select(5) + read(1) + bytes([5]) + read(4),
}

out = os.path.join(HERE, 'corpus', 'fw_cfg')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
