"""Small real PNG files for photo tests (distinct colours → distinct content hashes)."""

from __future__ import annotations

import base64
import struct
import zlib


def png(r: int, g: int, b: int, size: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes((r, g, b)) * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_b64(r: int, g: int, b: int) -> str:
    return base64.b64encode(png(r, g, b)).decode()
