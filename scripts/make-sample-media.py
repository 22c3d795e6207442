#!/usr/bin/env python3
"""Writes the sandbox customer phone's sample files (R51): a photo (PNG), a voice note
(OGG/Opus, one second of silence) and a one-page PDF, each a few kilobytes, into
src/whatsapp_helpdesk/sandbox/aircall/samples/. Standard library only; run it again to
regenerate them byte for byte."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/whatsapp_helpdesk/sandbox/aircall/samples"


def png(width: int = 160, height: int = 120) -> bytes:
    """A broken part on a workbench, as drawn by a program: a grey gear on a wooden band."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            dx, dy = x - width / 2, y - height / 2
            r2 = dx * dx + dy * dy
            if r2 < 14 ** 2:
                pixel = (245, 245, 245)
            elif r2 < 38 ** 2 or (r2 < 48 ** 2 and (int((x + y) / 9) % 2 == 0)):
                pixel = (110, 118, 130)
            elif y > height * 0.75:
                pixel = (170, 120, 70)
            else:
                pixel = (200, 225, 240)
            row += bytes(pixel)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packets: list[bytes], *, flags: int, granule: int, sequence: int) -> bytes:
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 0x5A17, sequence, 0,
                         len(lacing)) + bytes(lacing)
    page = header + b"".join(packets)
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_opus(seconds: int = 1) -> bytes:
    """OGG/Opus, the format WhatsApp records voice notes in: 20 ms silent frames."""
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, 312, 48000, 0, 0)
    vendor = b"whatsapp-helpdesk sandbox"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    silence = b"\xf8\xff\xfe"  # CELT-only, 20 ms, one frame of silence
    frames = [silence] * (50 * seconds)
    return (_ogg_page([head], flags=2, granule=0, sequence=0)
            + _ogg_page([tags], flags=0, granule=0, sequence=1)
            + _ogg_page(frames, flags=4, granule=312 + 960 * len(frames), sequence=2))


def pdf() -> bytes:
    """One A4 page: a delivery note."""
    text = (b"BT /F1 18 Tf 72 770 Td (Delivery note 2026-118) Tj ET\n"
            b"BT /F1 12 Tf 72 740 Td (1 x replacement gear, part GX-42) Tj ET\n")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in (("photo.png", png()), ("voice-note.ogg", ogg_opus()),
                          ("document.pdf", pdf())):
        (OUT / name).write_bytes(content)
        print(f"{OUT / name}: {len(content)} bytes")


if __name__ == "__main__":
    main()
