# SPDX-License-Identifier: GPL-2.0-or-later
"""Screenshots of an X display (xwd) as RGB pixels, and PNG files of them."""

import struct
import subprocess
import zlib


class Shot:
    def __init__(self, width, height, rgb):
        self.width, self.height, self.rgb = width, height, rgb

    def pixel(self, x, y):
        i = (y * self.width + x) * 3
        return tuple(self.rgb[i:i + 3])

    def count(self, colour, box=None, tol=40):
        """Pixels within tol (per channel) of colour inside box (x, y, w, h)."""
        x0, y0, w, h = box or (0, 0, self.width, self.height)
        n = 0
        for y in range(y0, y0 + h):
            row = self.rgb[(y * self.width + x0) * 3:(y * self.width + x0 + w) * 3]
            for i in range(0, len(row), 3):
                if (abs(row[i] - colour[0]) <= tol and abs(row[i + 1] - colour[1]) <= tol
                        and abs(row[i + 2] - colour[2]) <= tol):
                    n += 1
        return n

    def save_png(self, path):
        raw = b"".join(b"\0" + self.rgb[y * self.width * 3:(y + 1) * self.width * 3]
                       for y in range(self.height))

        def chunk(kind, data):
            c = kind + data
            return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))

        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
            f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)))
            f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
            f.write(chunk(b"IEND", b""))


def parse_xwd(data):
    hdr = struct.unpack(">25I", data[:100])
    header_size, depth, width, height = hdr[0], hdr[3], hdr[4], hdr[5]
    byte_order, bpp, bpl, ncolors = hdr[7], hdr[11], hdr[12], hdr[19]
    if bpp not in (24, 32) or depth != 24:
        raise ValueError(f"xwd: want depth 24 at 24 or 32 bpp, got {depth} at {bpp}")
    off = header_size + ncolors * 12
    n = bpp // 8  # bytes per pixel; 24 bpp when the X server was started with it
    rgb = bytearray(width * height * 3)
    for y in range(height):
        line = data[off + y * bpl:off + y * bpl + width * n]
        if byte_order == 0:  # LSBFirst: B G R [X]
            rgb[y * width * 3 + 0:(y + 1) * width * 3:3] = line[2::n]
            rgb[y * width * 3 + 1:(y + 1) * width * 3:3] = line[1::n]
            rgb[y * width * 3 + 2:(y + 1) * width * 3:3] = line[0::n]
        else:  # MSBFirst: [X] R G B
            rgb[y * width * 3 + 0:(y + 1) * width * 3:3] = line[n - 3::n]
            rgb[y * width * 3 + 1:(y + 1) * width * 3:3] = line[n - 2::n]
            rgb[y * width * 3 + 2:(y + 1) * width * 3:3] = line[n - 1::n]
    return Shot(width, height, bytes(rgb))


def capture(display, timeout=10):
    out = subprocess.run(["xwd", "-root", "-silent", "-display", display],
                         capture_output=True, check=True, timeout=timeout).stdout
    return parse_xwd(out)
