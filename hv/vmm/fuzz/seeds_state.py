#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz_state: saved sections of the platform
devices and of virtio-gpu, as their save functions write them (fuzz_state.c
describes the input). Run: hv/vmm/fuzz/seeds_state.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SERIAL, RTC, I8042, PM, GPU = range(5)


def write(name, which, payload):
    d = os.path.join(HERE, 'corpus', 'state')
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes([which]) + payload)


def serial(regs, thr, rx):
    return bytes(regs) + bytes([thr]) + struct.pack('<H', len(rx)) + rx


def rtc(index, offset, a=0x26, b=0x02, extra=b''):
    cmos = bytearray(128)
    cmos[0x0a], cmos[0x0b] = a, b
    cmos[0x10:0x10 + len(extra)] = extra
    return bytes([index]) + bytes(cmos) + struct.pack('<q', offset)


def pm(sts, en, cnt, cf9, tmr, ns):
    return struct.pack('<HHHBIQ', sts, en, cnt, cf9, tmr, ns)


def resource(rid, fmt, w, h, backing, fill=0):
    b = struct.pack('<IIIII', rid, fmt, w, h, len(backing))
    for gpa, length in backing:
        b += struct.pack('<QI', gpa, length)
    return b + bytes([(fill + i) & 0xff for i in range(w * h * 4)])


def gpu(resources, scanout=(0, 0, 0, 0, 0), cursor=(0, 0)):
    b = struct.pack('<I', len(resources)) + b''.join(resources)
    return b + struct.pack('<5I', *scanout) + struct.pack('<2I', *cursor)


def main():
    write('serial-idle', SERIAL, serial([0, 0x03, 0x0b, 0, 0xc1, 1, 0], 0, b''))
    write('serial-rx', SERIAL, serial([0x05, 0x03, 0x0b, 0x5a, 0xc1, 1, 0], 1, b'login: root\r'))
    write('serial-loop', SERIAL, serial([0x0f, 0x9b, 0x1f, 0, 0, 0x0c, 0], 0, bytes(range(256))))
    write('rtc-host', RTC, rtc(0x0b, 0))
    write('rtc-local', RTC, rtc(0x00, 3600 * 2, b=0x06, extra=b'\x12\x34'))
    write('rtc-setting', RTC, rtc(0x09, -86400 * 365 * 20, b=0x82))
    write('i8042-idle', I8042, bytes([0x45, 0, 0, 0, 0]))
    write('i8042-reply', I8042, bytes([0x47, 0x60, 0x08, 1, 0x55]))
    write('pm-idle', PM, pm(0, 0, 1, 0, 0x12345678, 1700000000 * 10**9))
    write('pm-button', PM, pm(0x100, 0x100, 1 | 5 << 10, 0x02, 0xfffffff0, 0))
    # BGRX 16x8 with one page of backing at 1 MiB, on the scanout.
    r1 = resource(1, 2, 16, 8, [(0x100000, 4096)], 7)
    write('gpu-scanout', GPU, gpu([r1], (1, 0, 0, 16, 8), (100, 50)))
    # Two resources (one without backing, RGBA), scanout on part of the second.
    r2 = resource(2, 67, 8, 8, [])
    r3 = resource(3, 1, 32, 4, [(0x200000, 256), (0x300000, 256)], 1)
    write('gpu-two', GPU, gpu([r3, r2], (3, 4, 1, 20, 3)))
    write('gpu-empty', GPU, gpu([]))


if __name__ == '__main__':
    main()
