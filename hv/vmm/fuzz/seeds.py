#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz_pio: port I/O a guest does at boot and
after (fuzz_pio.c describes the encoding). Run: hv/vmm/fuzz/seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
UART, KBC, RTC, PM, PCI, POST, ANY = range(7)
WIDTH = {1: 0, 2: 1, 4: 2}


class Exits:
    def __init__(self):
        self.b = b''

    def _port(self, group, port):
        if group == ANY:
            return struct.pack('<H', port)
        base = {UART: 0x3f8, RTC: 0x70, PM: 0x600, PCI: 0xcf8}.get(group)
        if group == KBC:
            return bytes([1 if port == 0x64 else 0])
        if group == POST:
            return bytes([1 if port == 0x80 else 0])
        return bytes([port - base])

    def out(self, group, port, value, width=1):
        self.b += bytes([1 | WIDTH[width] << 1 | group << 3]) + self._port(group, port)
        self.b += struct.pack('<I', value)
        return self

    def inp(self, group, port, width=1):
        self.b += bytes([WIDTH[width] << 1 | group << 3]) + self._port(group, port)
        return self

    def outs(self, group, port, data):
        """rep outsb: one exit, several 1-byte accesses."""
        self.b += bytes([1 | 3 << 1 | group << 3, len(data) - 1]) + self._port(group, port) + data
        return self


def write(name, e):
    os.makedirs(os.path.join(HERE, 'corpus', 'pio'), exist_ok=True)
    with open(os.path.join(HERE, 'corpus', 'pio', name), 'wb') as f:
        f.write(e.b)


def main():
    # Linux's 8250 probe and console set-up, loopback test, then output.
    e = Exits().out(UART, 0x3fb, 0x80).out(UART, 0x3f8, 1).out(UART, 0x3f9, 0)
    e.out(UART, 0x3fb, 0x03).out(UART, 0x3fa, 0xc7).out(UART, 0x3fc, 0x10)
    e.out(UART, 0x3f8, 0x41).inp(UART, 0x3fd).inp(UART, 0x3f8).inp(UART, 0x3fe)
    e.out(UART, 0x3fc, 0x0b).out(UART, 0x3f9, 0x0f).inp(UART, 0x3fa).inp(UART, 0x3fa)
    e.out(UART, 0x3ff, 0x5a).inp(UART, 0x3ff).outs(UART, 0x3f8, b'hello\r\n')
    e.out(UART, 0x3fa, 0x02).inp(UART, 0x3f8, 2).out(UART, 0x3f8, 0x41424344, 4)
    write('serial', e)

    # The 8042: self test, configuration byte, output port, reset.
    e = Exits().out(KBC, 0x64, 0xaa).inp(KBC, 0x64).inp(KBC, 0x60).out(KBC, 0x64, 0x20)
    e.inp(KBC, 0x60).out(KBC, 0x64, 0x60).out(KBC, 0x60, 0x47).out(KBC, 0x64, 0xab)
    e.inp(KBC, 0x60, 2).out(KBC, 0x64, 0xd1).out(KBC, 0x60, 0xfe).out(KBC, 0x64, 0xfe)
    write('i8042', e)

    # The RTC: the time in BCD and binary, status registers, CMOS RAM, NMI mask.
    e = Exits()
    for reg in (0, 2, 4, 6, 7, 8, 9, 0x32, 0x0a, 0x0b, 0x0c, 0x0d):
        e.out(RTC, 0x70, reg).inp(RTC, 0x71)
    e.out(RTC, 0x70, 0x0b).out(RTC, 0x71, 0x06).out(RTC, 0x70, 0x00).inp(RTC, 0x71)
    e.out(RTC, 0x70, 0xc0).out(RTC, 0x71, 0x12).inp(RTC, 0x71).inp(RTC, 0x70)
    e.out(RTC, 0x70, 0x0c).out(RTC, 0x71, 0xff).inp(RTC, 0x71, 2)
    write('rtc', e)

    # ACPI: enable the power button, clear status, PM timer, S5, another sleep
    # state, and the reset register at 0xCF9 next to a PCI config cycle.
    e = Exits().out(PM, 0x602, 0x0100, 2).inp(PM, 0x600, 2).out(PM, 0x600, 0x8731, 2)
    e.inp(PM, 0x608, 4).inp(PM, 0x608, 4).inp(PM, 0x60a, 2).inp(PM, 0x604, 2)
    e.out(PM, 0x604, 3 << 10 | 1 << 13, 2).out(PM, 0x605, 0x34).out(PM, 0x600, 0x01020304, 4)
    e.out(PM, 0x60b, 0xff).inp(PM, 0x60c, 4)
    e.out(PCI, 0xcf8, 0x80000000, 4).inp(PCI, 0xcfc, 4).inp(PCI, 0xcf9).out(PCI, 0xcf9, 0x02)
    e.out(PCI, 0xcf9, 0x06).out(PCI, 0xcf9, 0x0e, 2)
    write('acpi-pm', e)

    # POST codes and ports nothing answers.
    e = Exits().out(POST, 0x80, 0x55).inp(POST, 0xed).out(ANY, 0x61, 0).inp(ANY, 0x4d0)
    e.inp(ANY, 0xffff, 4).out(ANY, 0x3f7, 0, 2).out(ANY, 0x5ff, 0xffffffff, 4)
    write('post-and-holes', e)


def display():
    """fuzz_display's operations (fuzz_display.c)."""
    def msg(kind, *words):  # a valid message: kind indexes WELCOME, KEY, POINTER, WHEEL, FOCUS
        return bytes([0x80, kind]) + b''.join(struct.pack('<I', w & 0xffffffff) for w in words)

    def raw(data):
        return bytes([0]) + struct.pack('<H', len(data)) + data

    def scanout(w, h, pad=0):
        return bytes([1]) + struct.pack('<HHB', w - 1, h - 1, pad)

    def damage(x, y, w, h):
        return bytes([2]) + struct.pack('<HHHH', x, y, w - 1, h - 1)

    seeds = {
        # WELCOME, a scanout, damage, keys, the pointer and wheel, focus; hv-switch reads.
        'session': msg(0, 1, 3) + scanout(1024, 768) + damage(0, 0, 100, 50) + msg(1, 30, 1) +
        msg(1, 30, 0) + msg(2, 16000, 9000, 1) + msg(2, 40000, 99999, 0) + msg(3, 1, -2) +
        msg(4, 1) + bytes([4]) + damage(1000, 700, 24, 68) + bytes([3]) + damage(5, 5, 5, 5) +
        bytes([4]),
        # hv-switch restarts: HELLO and the surface again; then it stops reading.
        'reconnect': scanout(640, 480, 3) + bytes([4, 5]) + damage(1, 2, 3, 4) + bytes([4, 6]) +
        b''.join(damage(i, i, 10, 10) for i in range(40)) + bytes([4]) + bytes([3, 5, 4]),
        # Messages of the wrong size, unknown types, short ones.
        'garbage': raw(struct.pack('<III', 0x82, 30, 1)[:8]) + raw(b'\x83\0\0\0' + bytes(40)) +
        raw(b'\x99\0\0\0') + raw(b'\x81\0') + raw(bytes(2048)) + raw(b'\x84\0\0\0' + bytes(8)),
        # --display specs.
        'specs': b''.join(bytes([7]) + struct.pack('<H', len(t)) + t for t in (
            b'/run/hv/switch.sock,name=work,colour=3366ff,slot=2,uivm,size=1280x800',
            b',name=x', b'/s,name= bad,slot=10,size=10x10', b'/s,colour=12345g,color=ffffff',
            b'/s,size=4096x64,name=' + b'n' * 31, b'/s,unknown,uivm=1')),
    }
    os.makedirs(os.path.join(HERE, 'corpus', 'display'), exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(HERE, 'corpus', 'display', name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
    display()
