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


def vfio():
    """fuzz_vfio's devices and guests (fuzz_vfio.c)."""
    def cfg_space(header=0, caps=()):
        c = bytearray(256)
        c[0:4] = struct.pack('<HH', 0x8086, 0x10d3)
        c[0x06] = 0x10  # capability list
        c[0x09:0x0c] = bytes([0, 0, 2])  # Ethernet
        c[0x0e] = header
        c[0x10:0x14] = struct.pack('<I', 0xfeb00000)  # BAR0: 32-bit memory
        c[0x18:0x1c] = struct.pack('<I', 0xe001)      # BAR2: I/O
        c[0x1c:0x20] = struct.pack('<I', 0xfeb8000c)  # BAR3: 64-bit prefetchable
        c[0x2c:0x30] = struct.pack('<HH', 0x8086, 0xa01f)
        c[0x3c:0x3e] = bytes([11, 1])
        c[0x34] = caps[0][0] if caps else 0
        for i, (pos, cap_id, body) in enumerate(caps):
            nxt = caps[i + 1][0] if i + 1 < len(caps) else 0
            c[pos:pos + 2 + len(body)] = bytes([cap_id, nxt]) + body
        return bytes(c)

    msix = struct.pack('<HII', 3, 0x0000 | 3, 0x800 | 3)
    caps = ((0x40, 0x01, b'\x03\x00' + bytes(4)), (0x50, 0x05, bytes(12)),
            (0x70, 0x10, bytes(16)), (0xa0, 0x11, msix))
    bars = bytes([0x80 | 11, 0, 2, 0x80 | 11, 0, 0])

    def cfg(off, value=0, width=4, write=False):
        return bytes([0, off, {1: 0, 2: 1, 4: 2}[width] | (4 if write else 0)]) + struct.pack(
            '<I', value)

    def ecam(off, value=0, width=4, write=False):
        return bytes([1]) + struct.pack('<H', off) + bytes(
            [{1: 0, 2: 1, 4: 2, 8: 3}[width] | (4 if write else 0)]) + struct.pack('<Q', value)

    def bar(b, off, value=0, width=4, write=False):
        return bytes([2, b]) + struct.pack('<I', off) + bytes(
            [{1: 0, 2: 1, 4: 2, 8: 3}[width] | (4 if write else 0)]) + struct.pack('<Q', value)

    def table(off, value=0, width=4, write=False):
        return bytes([3]) + struct.pack('<I', off) + bytes(
            [{1: 0, 2: 1, 4: 2, 8: 3}[width] | (4 if write else 0)]) + struct.pack('<Q', value)

    guest = b''.join(cfg(o) for o in range(0, 256, 4))
    guest += cfg(0x10, 0xffffffff, write=True) + cfg(0x10) + cfg(0x10, 0xd0000000, write=True)
    guest += cfg(0x1c, 0xffffffff, write=True) + cfg(0x20, 0xffffffff, write=True) + cfg(0x1c)
    guest += cfg(0x1c, 0xd0100000, write=True) + cfg(0x20, 0, write=True) + cfg(0x04, 7, 2, True)
    guest += cfg(0x18, 0xc000, write=True) + cfg(0xa2, 0x8000, 2, True) + table(0, 0xfee00000)
    guest += table(0, 0xfee00000, write=True) + table(8, 0x4021, write=True)
    guest += table(12, 0, write=True) + table(0x800, width=8) + table(0x30, 0x1234, 8, True)
    guest += bar(0, 0x10, 0x5a5a5a5a, 4, True) + bar(0, 0x10) + bar(2, 4, 0x12, 1, True)
    guest += bar(2, 0x40) + bar(0, 0x3ffc, width=8) + cfg(0x52, 0x1, 2, True)  # the hidden MSI
    guest += cfg(0x30, 0xffffffff, write=True) + cfg(0x30) + cfg(0x3c, 0xffff, 2, True)
    guest += ecam(0x100, 0xdeadbeef, 4, True) + ecam(0x100) + ecam(0x10, 0xffffffffffffffff, 8, True)
    guest += bytes([4, 0x06, 0x18]) + cfg(0x04) + cfg(0xa2, 0xc000, 2, True) + bytes([5])
    guest += cfg(0x04) + cfg(0xa2, width=2) + cfg(0x04, 0, 2, True) + cfg(0x04, 0x0406, 2, True)
    seeds = {
        'nic-msix': cfg_space(caps=caps) + bars + guest,
        'bridge': cfg_space(header=1) + bars + cfg(0),
        # MSI-X table and PBA in different BARs; a capability that points at itself.
        'msix-split-loop': cfg_space(caps=((0x40, 0x11, struct.pack('<HII', 7, 0, 0x800 | 3)),
                                          (0x40, 0x01, bytes(6)))) + bars + guest[:200],
        # A 64-bit BAR in the last slot, an I/O BAR too big, sizes not powers of two.
        'odd-bars': cfg_space(caps=caps)[:0x24] + struct.pack('<I', 4) +
        cfg_space(caps=caps)[0x28:] + bytes([0x4b, 0x40 | 5, 0x10, 11, 0, 11]) + guest,
    }
    os.makedirs(os.path.join(HERE, 'corpus', 'vfio'), exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(HERE, 'corpus', 'vfio', name), 'wb') as f:
            f.write(data)


def ps2():
    """fuzz_ps2's operations (fuzz_ps2.c): Linux's i8042, atkbd and psmouse probes, keys."""
    def dat(v):
        return bytes([0, v])

    def cmd(v):
        return bytes([1, v])

    rd, st = bytes([2]), bytes([3])

    def key(code, pressed):
        return bytes([4]) + struct.pack('<HB', code, pressed)

    def ptr(x, y, buttons, report=1):
        return bytes([5]) + struct.pack('<HHBB', x, y, buttons, report)

    def aux(v):
        return cmd(0xd4) + dat(v) + st + rd

    probe = (cmd(0xaa) + st + rd + cmd(0x20) + rd + cmd(0x60) + dat(0x47) + cmd(0xd3) + dat(0x5a) +
             st + rd + cmd(0xa9) + rd + cmd(0xa7) + cmd(0x20) + rd + cmd(0xa8) + cmd(0xae))
    atkbd = (dat(0xf2) + rd * 3 + dat(0xf5) + rd + dat(0xed) + rd + dat(0x02) + rd + dat(0xf3) +
             rd + dat(0x00) + rd + dat(0xf4) + rd + dat(0xf0) + dat(0x00) + rd * 3)
    typing = b''.join(key(c, 1) + st + rd + rd + key(c, 0) + rd + rd + rd for c in
                      (30, 97, 119, 99, 103, 28))
    psmouse = (aux(0xff) + rd + rd + aux(0xf2) + rd + b''.join(
        aux(0xf3) + aux(r) for r in (200, 100, 80, 200, 200, 80)) + aux(0xf2) + rd + aux(0xe8) +
        aux(0x03) + aux(0xe9) + rd * 3 + aux(0xf4) + ptr(1000, 1000, 0) + ptr(9000, 200, 1) +
        bytes([6, 1]) + st + rd * 4 + ptr(9000, 200, 0, 0) + rd * 4 + aux(0xf0) + aux(0xeb) + rd * 4)
    seeds = {
        'linux-probe': probe + atkbd + typing,
        'mouse': probe + psmouse,
        # A guest that never reads while keys and motion pour in; then save/load.
        'flood': dat(0xf4) + aux(0xf4) + b''.join(key(103, 1) + key(103, 0) + ptr(i * 300, 100, i & 7)
                                                  for i in range(60)) + bytes([7]) + rd * 8,
        'garbage': bytes(range(256)) + cmd(0xd1) + dat(0xfe) + cmd(0x60) + dat(0xff) + bytes([7]),
    }
    os.makedirs(os.path.join(HERE, 'corpus', 'ps2'), exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(HERE, 'corpus', 'ps2', name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
    display()
    vfio()
    ps2()
