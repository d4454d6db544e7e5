"""Reads just enough of a PNG file (signature, IHDR, any tRNS chunk) to check it before an upload."""

import struct
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour types 4 (grey + alpha) and 6 (RGBA) carry an alpha channel in every pixel.
ALPHA_COLOUR_TYPES = {4, 6}


class NotPNG(ValueError):
    """The file does not start like a PNG, or its header is cut short."""


@dataclass(frozen=True)
class PngInfo:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    has_trns: bool  # a tRNS chunk gives palette or grey/RGB images transparency too

    @property
    def has_alpha(self) -> bool:
        return self.colour_type in ALPHA_COLOUR_TYPES or self.has_trns

    @property
    def square(self) -> bool:
        return self.width == self.height


def read_info(path: Path) -> PngInfo:
    """The header of a PNG, by its signature and not its name; raises NotPNG otherwise."""
    with open(path, "rb") as handle:
        if handle.read(8) != SIGNATURE:
            raise NotPNG("not a PNG file (its first bytes are not the PNG signature)")
        length, kind = _chunk_head(handle)
        if kind != b"IHDR" or length < 13:
            raise NotPNG("a PNG without its IHDR header chunk")
        fields = handle.read(10)
        if len(fields) < 10:
            raise NotPNG("a PNG cut short in its header")
        width, height, depth, colour = struct.unpack(">IIBB", fields)
        handle.seek(length - 10 + 4, 1)  # the rest of IHDR and its CRC
        return PngInfo(width, height, depth, colour, _has_trns(handle))


def _chunk_head(handle) -> tuple[int, bytes]:
    head = handle.read(8)
    if len(head) < 8:
        raise NotPNG("a PNG cut short in its header")
    return struct.unpack(">I4s", head)


def _has_trns(handle) -> bool:
    """tRNS, when present, comes before the first IDAT; stop there without reading image data."""
    while True:
        head = handle.read(8)
        if len(head) < 8:
            return False
        length, kind = struct.unpack(">I4s", head)
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        handle.seek(length + 4, 1)
