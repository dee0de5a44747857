"""Reading a person's text and JSON input files, with every failure as one InputError.

One home for the rules every text input follows: UTF-8 (the error names the line and column of
the first byte that is not), a file that cannot be opened says why, and JSON nested deeper than
Python's parser can follow is reported instead of raising RecursionError.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

from edge_app.errors import InputError

PathLike = Union[str, Path]


def decode_utf8(data: bytes, where: str, fix: Optional[str] = None) -> str:
    """`data` as text; InputError at file:line:column of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(f"byte 0x{data[exc.start]:02x} is not UTF-8 text", f"{where}:{line}:{column}",
                         fix or "save the file as UTF-8") from None


def read_text(path: PathLike, what: str = "file", fix: Optional[str] = None) -> str:
    """The whole file as UTF-8 text (a leading byte-order mark is dropped)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", str(path),
                         fix or f"check the path of the {what}") from None
    text = decode_utf8(data, str(path))
    return text[1:] if text.startswith("\ufeff") else text


def parse_json(text: str, where: str, what: str = "JSON", fix: Optional[str] = None) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(f"{what} is nested too deeply to read", where, fix) from None
    except ValueError as exc:
        raise InputError(f"{what} is not valid JSON: {exc}", where, fix) from None


def load_json(path: PathLike, what: str = "JSON file", fix: Optional[str] = None) -> Any:
    return parse_json(read_text(path, what, fix), str(path), what, fix)
