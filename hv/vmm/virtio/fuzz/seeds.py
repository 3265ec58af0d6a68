#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpora of fuzz_transport and fuzz_devices: hand-made
guest drivers in vmfuzz.c's operation encoding. Run it again after changing
the encoding:  hv/vmm/virtio/fuzz/seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

(OP_CFG, OP_CF8_RAW, OP_ECAM, OP_BAR0, OP_MSIX, OP_MEM, OP_FEATURES, OP_QUEUE, OP_DESC,
 OP_PUBLISH, OP_KICK, OP_STATUS, OP_BAR_MOVE, OP_PLATFORM, OP_HOST, OP_MSIX_SETUP) = range(16)

DATA = 0x200000  # vmfuzz.c's DATA_AREA
NEXT, WRITE, INDIRECT = 1, 2, 4
W = {1: 0, 2: 1, 4: 2, 8: 3}  # access widths
RD, WR = 0, 4


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


class Driver:
    def __init__(self):
        self.b = b''

    def op(self, dev, kind, *parts):
        self.b += u8(dev << 4 | kind) + b''.join(parts)
        return self

    def cfg(self, dev, off, value=0, width=4, write=False):
        return self.op(dev, OP_CFG, u8(off), u8(W[width] | (WR if write else RD)), u32(value))

    def cf8(self, port, value, width=4, write=True):
        return self.op(0, OP_CF8_RAW, u8((port - 0xcf8) << 4 | W[width] | (WR if write else RD)),
                       u32(value))

    def ecam(self, dev, off, value=0, width=4, write=False, anywhere=False):
        return self.op(dev, OP_ECAM, u8(W[width] | (WR if write else RD) | (0x80 if anywhere else 0)),
                       u32(off) if anywhere else u16(off), u64(value))

    def bar0(self, dev, off, value=0, width=4, write=False):
        return self.op(dev, OP_BAR0, u16(off), u8(W[width] | (WR if write else RD)), u64(value))

    def msix(self, dev, off, value=0, width=4, write=False):
        return self.op(dev, OP_MSIX, u16(off), u8(W[width] | (WR if write else RD)), u64(value))

    def mem(self, gpa, data):
        assert len(data) < 256
        return self.op(0, OP_MEM, u32(gpa), u8(len(data)), data)

    def features(self, dev, how=0, want=(1 << 64) - 1):
        return self.op(dev, OP_FEATURES, u8(how), u64(want))

    def queue(self, dev, q, size_log2=4, region=0, vector=0, enable=True):
        return self.op(dev, OP_QUEUE, u8(q), u8(size_log2 | (0 if enable else 0x40)),
                       u8(region), u8(vector))

    def desc(self, dev, q, i, off, length, flags=0, nxt=0):
        """A descriptor pointing at DATA + off."""
        return self.op(dev, OP_DESC, u8(q), u8((flags & 7) << 4), u16(i), u32(off), u16(length),
                       u8(nxt))

    def desc_raw(self, dev, q, i, addr, length, flags, nxt):
        return self.op(dev, OP_DESC, u8(q), u8(0xf), u16(i), u64(addr), u32(length), u16(flags),
                       u16(nxt))

    def indirect(self, dev, slot, off, length, flags=0, nxt=0):
        """Entry `slot` of the indirect table area at DATA."""
        return self.op(dev, OP_DESC, u8(0), u8(0x80 | (flags & 7) << 4), u16(0), u32(off),
                       u16(length), u8(nxt), u16(slot))

    def publish(self, dev, q, head):
        return self.op(dev, OP_PUBLISH, u8(q), u16(head), u8(0))

    def kick(self, dev, q, pending=False):
        return self.op(dev, OP_KICK, u8(q | (0x80 if pending else 0)))

    def status(self, dev, value, add=True):
        return self.op(dev, OP_STATUS, u8(value | (0x80 if add else 0)))

    def driver_ok(self, dev):
        return self.status(dev, 4)

    def bar_move(self, dev, bar, addr):
        return self.op(dev, OP_BAR_MOVE, u8(2 if bar == 2 else 0), u32(addr))

    def command(self, dev, value):
        return self.op(dev, OP_BAR_MOVE, u8(1), u32(value))

    def reboot(self):
        return self.op(0, OP_PLATFORM, u8(1))

    def run_all(self):
        return self.op(0, OP_PLATFORM, u8(0))

    def host(self, dev, *parts):
        return self.op(dev, OP_HOST, *parts)

    def msix_on(self, dev, vectors=(0, 1)):
        d = self.op(dev, OP_MSIX_SETUP, u8(0x80 | len(vectors)))
        for v in vectors:
            d.b += u8(v) + u32(0x30 + v) + u8(0)
        return d

    def ready(self, dev, queues, size_log2=4, vector=0):
        """The usual bring-up: features, queues (region = queue index), MSI-X, DRIVER_OK."""
        self.features(dev)
        for q in queues:
            self.queue(dev, q, size_log2, region=dev * 4 + q, vector=vector)
        return self.msix_on(dev).driver_ok(dev)


def blk_hdr(kind, sector=0):
    return struct.pack('<IIQ', kind, 0, sector)


def write(target, name, d):
    path = os.path.join(HERE, 'corpus', target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), 'wb') as f:
        f.write(d.b)


BLK, RNG = 0, 1  # fuzz_transport's devices, in creation order


def transport():
    # virtio-blk: write sector 1, read it back, flush.
    d = Driver().ready(BLK, [0])
    d.mem(DATA, blk_hdr(1, 1)).mem(DATA + 0x1000, bytes(range(200)))
    d.desc(BLK, 0, 0, 0, 16, NEXT, 1).desc(BLK, 0, 1, 0x1000, 512, NEXT, 2)
    d.desc(BLK, 0, 2, 0x2000, 1, WRITE).publish(BLK, 0, 0).kick(BLK, 0)
    d.mem(DATA + 0x3000, blk_hdr(0, 1))
    d.desc(BLK, 0, 3, 0x3000, 16, NEXT, 4).desc(BLK, 0, 4, 0x4000, 512, NEXT | WRITE, 5)
    d.desc(BLK, 0, 5, 0x5000, 1, WRITE).publish(BLK, 0, 3).kick(BLK, 0)
    d.mem(DATA + 0x6000, blk_hdr(4)).desc(BLK, 0, 6, 0x6000, 16, NEXT, 7)
    d.desc(BLK, 0, 7, 0x7000, 1, WRITE).publish(BLK, 0, 6).kick(BLK, 0)
    d.bar0(BLK, 0x1000, width=1)  # ISR read clears
    d.msix(BLK, 0x800, width=8)   # PBA
    write('transport', 'blk-write-read', d)

    # virtio-rng through an indirect table.
    d = Driver().ready(RNG, [0])
    d.indirect(RNG, 0, 0x8000, 64, WRITE).desc(RNG, 0, 0, 0, 16, INDIRECT)
    d.publish(RNG, 0, 0).kick(RNG, 0)
    write('transport', 'rng-indirect', d)

    # A reset in the middle of a request, then a reboot with a kick pending.
    d = Driver().ready(BLK, [0])
    d.mem(DATA, blk_hdr(0)).desc(BLK, 0, 0, 0, 16, NEXT, 1)
    d.desc(BLK, 0, 1, 0x1000, 512, NEXT | WRITE, 2).desc(BLK, 0, 2, 0x2000, 1, WRITE)
    d.publish(BLK, 0, 0).kick(BLK, 0, pending=True).status(BLK, 0, add=False).run_all()
    d.ready(BLK, [0]).publish(BLK, 0, 0).kick(BLK, 0, pending=True).reboot().run_all()
    write('transport', 'reset-mid-request', d)

    # PCI: IDs, BAR sizing, BAR moves, decode off, ECAM, the PCI_CFG window.
    d = Driver().cfg(BLK, 0).cfg(BLK, 0, 0x12345678, write=True).cfg(BLK, 0x34, width=1)
    d.cfg(BLK, 0x10, 0xffffffff, write=True).cfg(BLK, 0x10).bar_move(BLK, 0, 0xd0000000)
    d.bar0(BLK, 0x12, width=2).command(BLK, 0).bar0(BLK, 0x12, width=2).command(BLK, 6)
    d.bar_move(RNG, 2, 0xd0100000).msix(RNG, 0, width=4)
    d.ecam(BLK, 0, width=4).ecam(BLK, 0x100, width=8).ecam(0, 31 << 15, anywhere=True)
    d.ecam(0, 1 << 12 | 2 << 15, 0xffffffff, 4, True, anywhere=True).cf8(0xcf8, 0x80000000).cf8(0xcfc, 0, 4, False)
    for off, v in ((0x88, 0), (0x8c, 0x12), (0x90, 2)):  # blk's PCI_CFG cap at 0x84
        d.cfg(BLK, off, v, write=True)
    d.cfg(BLK, 0x94, width=2).cfg(BLK, 0x94, 0x1, width=2, write=True)
    write('transport', 'pci-config', d)

    # A driver that breaks the rules: no VERSION_1, odd queue size, rings in MMIO, a loop.
    d = Driver().features(BLK, how=1, want=0).features(BLK, how=1, want=1 << 50)
    d.features(BLK).op(BLK, OP_QUEUE, u8(0), u8(0x80), u8(0), u8(0), u16(12))
    d.features(BLK).queue(BLK, 0).desc(BLK, 0, 0, 0, 16, NEXT, 1).desc(BLK, 0, 1, 0, 16, NEXT, 0)
    d.driver_ok(BLK).publish(BLK, 0, 0).kick(BLK, 0)
    d.desc_raw(BLK, 0, 2, 0xc0000000, 16, WRITE, 0).publish(BLK, 0, 2).kick(BLK, 0)
    d.driver_ok(RNG).kick(RNG, 5).bar0(RNG, 0x3ffe, 1, 8, True)
    write('transport', 'hostile', d)


# fuzz_devices' devices, in creation order.
NET, CONSOLE, BALLOON, KBD, TABLET, VSOCK = range(6)


def devices():
    # virtio-net: a packet out (TX), a packet in from the host (RX).
    d = Driver().ready(NET, [0, 1])
    d.mem(DATA, bytes(12) + b'\xff' * 6 + b'\x02\x00\x00\x00\x00\x01\x08\x00' + b'hello')
    d.desc(NET, 1, 0, 0, 31).publish(NET, 1, 0).kick(NET, 1)
    d.desc(NET, 0, 0, 0x1000, 1526, WRITE).publish(NET, 0, 0).kick(NET, 0)
    d.host(NET, u8(0), u8(40), bytes(12) + b'\x02' * 28).run_all()
    d.bar0(NET, 0x2000, width=4).bar0(NET, 0x2006, width=2)
    write('devices', 'net-tx-rx', d)

    # virtio-console: output, input from the client, emergency write, hang-up.
    d = Driver().ready(CONSOLE, [0, 1])
    d.mem(DATA, b'console says hi\n').desc(CONSOLE, 1, 0, 0, 16).publish(CONSOLE, 1, 0)
    d.kick(CONSOLE, 1).desc(CONSOLE, 0, 0, 0x1000, 64, WRITE).publish(CONSOLE, 0, 0)
    d.host(CONSOLE, u8(0), u8(5), b'abcde').kick(CONSOLE, 0).run_all()
    d.bar0(CONSOLE, 0x2008, ord('!'), 1, True).host(CONSOLE, u8(2)).run_all()
    write('devices', 'console-io', d)

    # virtio-balloon: inflate two pages, stats buffer kept, free page report, target.
    d = Driver().ready(BALLOON, [0, 1, 2, 3])
    d.mem(DATA, struct.pack('<III', 0x300, 0x301, 0xfffff))
    d.desc(BALLOON, 0, 0, 0, 12).publish(BALLOON, 0, 0).kick(BALLOON, 0)
    d.desc(BALLOON, 2, 0, 0x1000, 16).publish(BALLOON, 2, 0).kick(BALLOON, 2)
    d.desc(BALLOON, 3, 0, 0x10000, 0x2000, WRITE).publish(BALLOON, 3, 0).kick(BALLOON, 3)
    d.host(BALLOON, u8(0), u32(256)).bar0(BALLOON, 0x2004, 12, 4, True).bar0(BALLOON, 0x2000)
    write('devices', 'balloon', d)

    # virtio-input: config queries, key and pointer events into posted buffers.
    d = Driver().ready(KBD, [0, 1]).ready(TABLET, [0, 1])
    for sel, sub in ((1, 0), (2, 0), (0x11, 1), (0x12, 0)):
        d.bar0(KBD, 0x2000, sel | sub << 8, 2, True).bar0(KBD, 0x2002, width=1)
    d.bar0(TABLET, 0x2000, 0x12 | 0 << 8, 2, True).bar0(TABLET, 0x2008, width=8)
    for i in range(4):
        d.desc(KBD, 0, i, 0x100 * i, 8, WRITE).publish(KBD, 0, i)
        d.desc(TABLET, 0, i, 0x1000 + 0x100 * i, 8, WRITE).publish(TABLET, 0, i)
    d.kick(KBD, 0).kick(TABLET, 0).host(KBD, u8(0), u32(30), u8(1)).host(TABLET, u8(1), u32(100),
                                                                          u32(200), u32(1))
    d.host(TABLET, u8(2), u32(1), u32(0xffffffff)).run_all()
    d.desc(KBD, 1, 0, 0x2000, 8).publish(KBD, 1, 0).kick(KBD, 1)
    write('devices', 'input', d)

    # virtio-vsock: the guest CID in config space, an event buffer kept.
    d = Driver().ready(VSOCK, [2]).bar0(VSOCK, 0x2000, width=8).bar0(VSOCK, 0x2004, 7, 4, True)
    d.desc(VSOCK, 2, 0, 0, 8, WRITE).publish(VSOCK, 2, 0).kick(VSOCK, 2).kick(VSOCK, 0)
    write('devices', 'vsock', d)


if __name__ == '__main__':
    transport()
    devices()
