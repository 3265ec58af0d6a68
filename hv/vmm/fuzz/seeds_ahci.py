#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz_ahci: what a driver's probe and I/O do on
the SATA disk (port 0) and the CD-ROM (port 1); fuzz_ahci.c describes the
encoding. Run: hv/vmm/fuzz/seeds_ahci.py"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ATA = [0xec, 0x25, 0x35, 0x60, 0x61, 0xea, 0xe7, 0x06, 0xef, 0xf8,
       0x27, 0x2f, 0xc8, 0xca, 0x24, 0x34, 0xc6, 0x42, 0xe5, 0xa0,
       0xa1, 0x08, 0x20, 0x30, 0xe0]
SCSI = [0x00, 0x03, 0x12, 0x1b, 0x1e, 0x25, 0x28, 0xa8, 0x5a, 0x46, 0x43, 0x4a, 0xbd, 0x51]


def cmd(port, slot, op, lba=0, count=0, feat=0, cdb=b"", prds=(), write=False, atapi=False):
    """Operation 0: one command; prds are (offset in the data area, sectors - 1)."""
    b = bytes([0 | port << 3, slot, ATA.index(op)]) + struct.pack("<IBB", lba, count, feat)
    scsi = cdb[0] if cdb else 0
    b += bytes([SCSI.index(scsi)]) + (cdb[1:] + bytes(12))[:11]
    b += bytes([len(prds) | (0x10 if atapi else 0) | (0x20 if write else 0)])
    for off, n in prds:
        b += bytes([n & 0x7f, 0]) + struct.pack("<H", off)
    return b


def seeds():
    yield "identify", b"\0" + cmd(0, 0, 0xec, prds=[(0, 0)])
    yield "write-read", (b"\0" + cmd(0, 1, 0x35, lba=8, count=8, prds=[(0, 3), (2048, 3)], write=True)
                         + cmd(0, 2, 0x25, lba=8, count=8, prds=[(0x4000, 7)]))
    yield "ncq", (b"\0" + cmd(0, 3, 0x61, lba=16, count=3 << 3, feat=4, prds=[(0, 3)], write=True)
                  + cmd(0, 4, 0x60, lba=16, count=4 << 3, feat=4, prds=[(0x1000, 3)]))
    yield "features", (b"\0" + cmd(0, 0, 0xef, count=0x46, feat=3) + cmd(0, 0, 0x27)
                       + cmd(0, 0, 0xea) + cmd(0, 0, 0x2f, lba=0x10, count=1, prds=[(0, 0)]))
    yield "trim", b"\0" + cmd(0, 0, 0x06, count=1, feat=1, prds=[(0, 0)], write=True)
    yield "atapi", (b"\0" + cmd(1, 0, 0xa1, prds=[(0, 0)])
                    + cmd(1, 0, 0xa0, feat=1, cdb=bytes([0x25]), prds=[(0, 0)], atapi=True)
                    + cmd(1, 1, 0xa0, feat=1, cdb=bytes([0x28, 0, 0, 0, 0, 2, 0, 0, 1]),
                          prds=[(0, 3)], atapi=True)
                    + cmd(1, 2, 0xa0, cdb=bytes([0x12, 0, 0, 0, 36]), prds=[(0, 0)], atapi=True)
                    + cmd(1, 3, 0xa0, cdb=bytes([0x43, 0, 0, 0, 0, 0, 0, 0, 20]), prds=[(0, 0)],
                          atapi=True)
                    + cmd(1, 4, 0xa0, cdb=bytes([0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8]), prds=[(0, 0)],
                          atapi=True)
                    + cmd(1, 5, 0xa0, cdb=bytes([0x46, 0, 0, 0, 0, 0, 0, 0, 64]), prds=[(0, 0)],
                          atapi=True)
                    + cmd(1, 6, 0xa0, cdb=bytes([0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 64]),
                          prds=[(0, 0)], atapi=True))
    yield "save-reset", (b"\0" + cmd(0, 0, 0xec, prds=[(0, 0)]) + bytes([5])
                         + cmd(0, 1, 0x25, lba=1, count=1, prds=[(0, 0)]) + bytes([0x85]))
    yield "comreset", b"\0" + bytes([3 | 0x80]) + cmd(0, 0, 0xec, prds=[(0, 0)])


def main():
    out = os.path.join(HERE, "corpus", "ahci")
    os.makedirs(out, exist_ok=True)
    for _, data in seeds():
        with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
