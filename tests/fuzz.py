"""Shared pieces of the property-based (hypothesis) input tests.

Inputs are real files mutated the way damaged or hostile input looks: byte flips, truncation,
appended junk, non-UTF-8 bytes, a number replaced by NaN/inf/huge/negative values, deep
nesting, long names, absolute and `..` paths. The property every parser must keep: it returns a
valid result or raises the project's InputError; any other exception, or a hang, is a bug.

Example counts come from the hypothesis profile (tests/conftest.py): `ci` (the default) runs
IN_PROCESS examples per in-process property and SUBPROCESS per property that goes through a real
CLI subprocess; HYPOTHESIS_PROFILE=dev runs a tenth of that, =deep ten times as many.
"""
from __future__ import annotations

import os
import re
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, List

from hypothesis import settings, strategies as st

from edge_app.errors import InputError

IN_PROCESS = 200
SUBPROCESS = 12
_SCALE = {"ci": 1.0, "dev": 0.1, "deep": 10.0}


def examples(base: int):
    """settings(max_examples=...) scaled by the active profile."""
    scale = _SCALE.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 1.0)
    return settings(max_examples=max(3, int(base * scale)))


# Tokens that break parsers: special numbers, huge numbers, encodings, nesting, paths, names.
TOKENS: List[bytes] = [
    b"0", b"-1", b"-0", b"1e309", b"-1e309", b"nan", b"NaN", b"inf", b"-inf", b"Infinity",
    b"9" * 40, b"9" * 5000, b"0x10", b"1e3", b"2147483648", b"18446744073709551617",
    b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\x1b[31m", b"\r", b"\t", b"\n", b"",
    b"[", b"]", b"{", b"}", b"=", b",", b";", b"#", b"\"", b"'", b"<", b">", b"&", b"\\",
    b"[" * 3000, b"{\"a\":" * 3000, b"a=[" * 2000, b"<a>" * 3000,
    b"/", b"../", b"../../../../etc/passwd", b"/etc/passwd", b"x" * 300, b"\xc3\xa9" * 200,
]
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@st.composite
def mutated(draw, seed: bytes, tokens: Iterable[bytes] = TOKENS, max_ops: int = 3) -> bytes:
    """`seed` changed by 1..max_ops mutations, mostly at places that matter (numbers, lines)."""
    tokens = list(tokens)
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(("number", "number", "token", "flip", "truncate", "delete",
                                   "duplicate_line", "append")))
        numbers = [m.span() for m in NUMBER.finditer(bytes(data))]
        if op == "number" and numbers:
            start, end = draw(st.sampled_from(numbers))
            data[start:end] = draw(st.sampled_from(tokens))
        elif op == "token" or (op == "number" and not numbers):
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.sampled_from(tokens))
        elif op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif op == "delete" and data:
            start = draw(st.integers(0, len(data) - 1))
            del data[start:start + draw(st.integers(1, 64))]
        elif op == "duplicate_line":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
        elif op == "append":
            data += draw(st.sampled_from(tokens)) * draw(st.integers(1, 3))
    return bytes(data)


class Hang(AssertionError):
    pass


@contextmanager
def no_hang(seconds: int = 120):
    """Fail (instead of blocking CI) if the body never returns: a liveness guard, not a timing
    measurement — anything that finishes passes, however slowly."""
    def alarm(signum, frame):
        raise Hang(f"no result after {seconds} s: the parser hangs on this input")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def result_or_input_error(call: Callable, *args, **kwargs):
    """(result, None) or (None, InputError); any other exception propagates as the bug it is."""
    with no_hang():
        try:
            return call(*args, **kwargs), None
        except InputError as exc:
            assert exc.what.strip(), "an InputError must say what is wrong"
            return None, exc


def files_under(folder: Path) -> List[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []


def assert_cli_error_or_success(result, what: str = "") -> bool:
    """A CLI run ended with exit 0, or exit 2 and one clear message; True when it failed."""
    assert "Traceback" not in result.stderr, f"{what}: traceback\n{result.stderr[-3000:]}"
    assert result.returncode in (0, 2), f"{what}: exit {result.returncode}\n{result.stderr[-3000:]}"
    if result.returncode == 2:
        assert "error:" in result.stderr, f"{what}: exit 2 without a message: {result.stderr!r}"
    return result.returncode == 2
