"""Image size from the file header, without decoding the pixels: evaluation needs the size of
every validation image to turn YOLO labels into pixels, and decoding 1000 JPEGs just for that
cost seconds. JPEG: the first SOFn segment; PNG: IHDR. Anything else, or a header that does not
parse, falls back to a full decode (which also reports unreadable files)."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional, Tuple

# SOF0..SOF15 without DHT (C4), JPG (C8) and DAC (CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(f) -> Optional[Tuple[int, int]]:
    f.seek(2)
    while True:
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            continue
        if marker == 0xD9 or marker == 0xDA:  # end of image / start of scan before any SOF
            return None
        length_bytes = f.read(2)
        if len(length_bytes) != 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if marker in _SOF:
            data = f.read(5)
            if len(data) != 5:
                return None
            height, width = struct.unpack(">HH", data[1:5])
            return (width, height) if width and height else None
        f.seek(length - 2, 1)


def header_size(path: Path) -> Optional[Tuple[int, int]]:
    """(width, height) read from a JPEG or PNG header, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return (width, height) if width and height else None
            if head[:2] == b"\xff\xd8":
                return _jpeg(f)
    except OSError:
        return None
    return None


def image_size(path: Path) -> Tuple[int, int]:
    """(width, height): from the header when it parses, else by decoding (ValueError if the
    file is not a readable image)."""
    size = header_size(path)
    if size is not None:
        return size
    from model_tools.dataset import image_size as decoded_size

    return decoded_size(path)
