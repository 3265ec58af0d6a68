#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes fuzz_vhd's seed corpus (corpus-vhd/): small VHDs with 4 KiB blocks,
each after 4 bytes that choose the harness's operations (fuzz_image.c).

    python3 hv/vmm/block/fuzz/make_vhd_corpus.py

The layout is the one in hv/vmm/block/vhd.h; this is its own encoder, so
that the seeds do not depend on the code under test.
"""

import struct
import sys
from pathlib import Path

SECTOR = 512
PARENT_UUID = b"hv-fuzz-parent!!"  # fuzz_image.c gives its p.vhd this id


def checksum(b, at):
    return ~sum(b[:at] + b[at + 4:]) & 0xFFFFFFFF


def footer(kind, size, data_offset, uuid):
    f = bytearray(512)
    struct.pack_into(">8sIIQI4sIIQQIII16sB", f, 0, b"conectix", 2, 0x10000, data_offset, 0,
                     b"seed", 0x10000, 0x5769326B, size, size, 0x00100411, kind, 0, uuid, 0)
    struct.pack_into(">I", f, 64, checksum(f, 64))
    return bytes(f)


def dyn_header(entries, block, parent_uuid=b"\0" * 16, parent=None, loc_off=0):
    h = bytearray(1024)
    struct.pack_into(">8sQQIII", h, 0, b"cxsparse", 2**64 - 1, 1536, 0x10000, entries, block)
    h[40:56] = parent_uuid
    if parent:
        name = parent.encode("utf-16-be")
        h[64:64 + len(name)] = name
        loc = (".\\" + parent).encode("utf-16-le")
        struct.pack_into(">IIIIQ", h, 576, 0x57327275, 512, len(loc), 0, loc_off)
    struct.pack_into(">I", h, 36, checksum(h, 36))
    return bytes(h)


def sparse(kind, size, blocks, parent=None, uuid=bytes(range(16))):
    block = 4096
    entries = (size + block - 1) // block
    bat_len = (entries * 4 + SECTOR - 1) // SECTOR * SECTOR
    end = 1536 + bat_len
    loc = b""
    if parent:
        loc = (".\\" + parent).encode("utf-16-le").ljust(512, b"\0")
    loc_off = end
    end += len(loc)
    bat = [0xFFFFFFFF] * entries
    body = b""
    for i, (index, fill) in enumerate(blocks):
        bat[index] = (end + len(body)) // SECTOR
        bitmap = bytes([0xFF if kind == 3 else 0xA5]) + b"\0" * 511
        body += bitmap + bytes([fill]) * block
    f = footer(kind, size, 512, uuid)
    bat_bytes = struct.pack(f">{entries}I", *bat).ljust(bat_len, b"\xff")
    header = dyn_header(entries, block, PARENT_UUID if parent else b"\0" * 16, parent, loc_off)
    return f + header + bat_bytes + loc + body + f


def main():
    out = Path(__file__).resolve().parent / "corpus-vhd"
    out.mkdir(exist_ok=True)
    images = {
        "dyn": sparse(3, 64 * 1024, [(0, 0x11), (5, 0x22)]),
        "empty": sparse(3, 32 * 1024, []),
        "diff": sparse(4, 64 * 1024, [(1, 0x33)], parent="p.vhd"),
        "parent": sparse(3, 64 * 1024, [(1, 0x55)], uuid=PARENT_UUID),  # diff's, for test_vhd
        "fixed": bytes([0x44]) * 8192 + footer(2, 8192, 2**64 - 1, bytes(16)),
    }
    for name, img in images.items():
        for seed in (b"\x00\x00\x00\x00", b"\x06\x1e\x52\x93", b"\x1e\x0a\x17\x2c"):
            (out / f"{name}-{seed[0]:02x}").write_bytes(seed + img)
    return 0


if __name__ == "__main__":
    sys.exit(main())
