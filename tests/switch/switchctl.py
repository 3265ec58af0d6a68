# SPDX-License-Identifier: GPL-2.0-or-later
"""A client of hv-switch's control socket (docs/display-protocol.md, "The control socket")."""

import mmap
import os
import socket
import struct

FOCUS, LIST, THUMB = 0x41, 0x42, 0x43
ERROR, FOCUS_REPLY, LIST_REPLY, THUMB_REPLY = 0xC0, 0xC1, 0xC2, 0xC3
E_BAD_REQUEST, E_NO_VM, E_NO_PICTURE, E_INTERNAL = 1, 2, 3, 4
VM_PICTURE, VM_FOCUSED, VM_UIVM = 1, 2, 4
NO_SLOT = 0xFFFFFFFF
VM_FMT = "=5I32s"


class CtlError(Exception):
    def __init__(self, status, request, message):
        super().__init__(f"status {status}: {message}")
        self.status, self.request, self.message = status, request, message


def _name(b):
    return b.split(b"\0", 1)[0].decode()


class SwitchCtl:
    def __init__(self, path, timeout=5):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def close(self):
        self.sock.close()

    def raw(self, data):
        """Sends any bytes; returns (reply type, reply bytes, fds)."""
        self.sock.send(data)
        msg, fds, _, _ = socket.recv_fds(self.sock, 4096, 4)
        return struct.unpack_from("=I", msg)[0], msg, fds

    def _call(self, data, want):
        kind, msg, fds = self.raw(data)
        if kind == ERROR:
            status, request, text = struct.unpack("=II116s", msg[4:])
            for fd in fds:
                os.close(fd)
            raise CtlError(status, request, _name(text))
        assert kind == want, hex(kind)
        return msg, fds

    def focus(self, slot):
        msg, _ = self._call(struct.pack("=II", FOCUS, slot), FOCUS_REPLY)
        slot, name = struct.unpack("=I32s", msg[4:])
        return slot, _name(name)

    def list(self):
        msg, _ = self._call(struct.pack("=I", LIST), LIST_REPLY)
        (count,) = struct.unpack_from("=I", msg, 4)
        size = struct.calcsize(VM_FMT)
        vms = []
        for i in range(count):
            slot, colour, flags, w, h, name = struct.unpack_from(VM_FMT, msg, 8 + i * size)
            vms.append({"slot": None if slot == NO_SLOT else slot, "colour": colour,
                        "picture": bool(flags & VM_PICTURE), "focused": bool(flags & VM_FOCUSED),
                        "uivm": bool(flags & VM_UIVM), "width": w, "height": h,
                        "name": _name(name)})
        return vms

    def thumb(self, slot, max_w, max_h):
        """Returns (width, height, name, rgb bytes)."""
        msg, fds = self._call(struct.pack("=IIII", THUMB, slot, max_w, max_h), THUMB_REPLY)
        slot, w, h, stride, fmt, sw, sh, name = struct.unpack("=7I32s", msg[4:])
        assert len(fds) == 1, fds
        try:
            with mmap.mmap(fds[0], stride * h, prot=mmap.PROT_READ) as m:
                data = bytes(m)
        finally:
            os.close(fds[0])
        rgb = bytearray(w * h * 3)
        for y in range(h):
            line = data[y * stride:y * stride + w * 4]
            rgb[y * w * 3 + 0:(y + 1) * w * 3:3] = line[2::4]
            rgb[y * w * 3 + 1:(y + 1) * w * 3:3] = line[1::4]
            rgb[y * w * 3 + 2:(y + 1) * w * 3:3] = line[0::4]
        return w, h, _name(name), bytes(rgb)
