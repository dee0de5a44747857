"""A small line grammar for log formats, compiled two ways from one definition: to a Python regex
(the per-line fallback, and what the grammar means) and to a program for the compiled scanner
(model_tools/native/logscan.c), which must find exactly what the regex finds.

A template is a sequence of parts:
    Lit(b"...")               these bytes
    Run(chars, lo, hi)        lo..hi bytes from a set (greedy)
    Num(slot)                 a number as darknet prints it (NUM below), converted like float()
    Int(slot, digits, signed) an integer of 1..digits digits (optionally a leading '-')
    Opt(*parts)               the parts, or nothing (greedy, as `(?:...)?`)
    Alt(seq, seq, ...)        the first sequence that leads to a match (as `(?:a|b)`)
    Fields(n, width)          0..n fields `, <up to width bytes but ',' and '\n'>`, as few as
                              possible (lazy, as `(?:, [^,\\n]{0,w}){0,n}?`)
    Flag(slot)                zero width; sets slot to 1 where the match passes here
Slots are numbered by the template; a slot no part of the match set is NaN (the regex's None).

Why the two compilations agree: the scanner backtracks where the regex does (Opt, Alt, Fields)
and takes Run, Num and Int whole (longest) without trying shorter ones. That is what the regex
does too whenever the text that may follow cannot begin with a byte a shorter match would leave
in front of it: `check()` proves this for every such part from the first bytes of what follows
(for Fields, what follows must begin with ','), and refuses a template where it does not hold.
Every repetition is bounded, so one match attempt reads at most `max_width()` bytes.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import FrozenSet, Sequence, Tuple

# a number as darknet prints it (%f, %g, iostream), NaN/inf as glibc or MSVC (-nan(ind)) print them;
# digit runs are bounded so a 5000-digit "number" simply does not match
NUM = rb"(-?nan|-?inf|[-+]?[0-9]{1,40}(?:\.[0-9]{0,40})?(?:[eE][-+]?[0-9]{1,3})?)(?:\([a-z]{1,8}\))?"
NUM_WIDTH = 1 + 40 + 1 + 40 + 1 + 1 + 3 + 10
NUM_FIRST = frozenset(b"-+0123456789ni")
NUM_TAIL = frozenset(b"0123456789.eE+-(")  # bytes a shorter NUM match leaves before what follows
DIGITS = frozenset(b"0123456789")
END = -1  # "the template may end here" in a set of first bytes
ALL_BYTES = frozenset(range(256))

OP_END, OP_LIT, OP_RUN, OP_NUM, OP_INT, OP_OPT, OP_ALT, OP_FIELDS, OP_FLAG = range(9)
SLOTS = 8  # slots per match (logscan.c: LS_SLOTS)


@dataclass(frozen=True)
class Lit:
    text: bytes


@dataclass(frozen=True)
class Run:
    chars: FrozenSet[int]
    lo: int
    hi: int

    @staticmethod
    def of(chars: bytes, lo: int, hi: int) -> "Run":
        return Run(frozenset(chars), lo, hi)

    @staticmethod
    def not_of(chars: bytes, lo: int, hi: int) -> "Run":
        return Run(ALL_BYTES - frozenset(chars), lo, hi)


@dataclass(frozen=True)
class Num:
    slot: int


@dataclass(frozen=True)
class Int:
    slot: int
    digits: int
    signed: bool = False


class Opt:
    def __init__(self, *parts):
        self.parts = tuple(parts)


class Alt:
    def __init__(self, *seqs: Sequence):
        self.seqs = tuple(tuple(s) if isinstance(s, (tuple, list)) else (s,) for s in seqs)


@dataclass(frozen=True)
class Fields:
    n: int
    width: int


@dataclass(frozen=True)
class Flag:
    slot: int


FIELD_CHARS = ALL_BYTES - frozenset(b",\n")


class Template:
    """One line format. `anywhere`: matches wherever its first literal occurs in a line (every
    non-overlapping one, as `finditer`); otherwise only at the start of a line (as `match`)."""

    def __init__(self, name: str, parts: Sequence, anywhere: bool = False):
        self.name = name
        self.parts = tuple(parts)
        self.anywhere = anywhere
        check(self)
        self.regex = re.compile(_regex(self.parts))
        self.slots = _slots(self.parts)

    def __repr__(self):
        return f"Template({self.name})"


# --- first bytes and the agreement check -------------------------------------------------------

def first(parts: Sequence, follow: FrozenSet[int]) -> FrozenSet[int]:
    """Bytes a match of `parts` then `follow` can begin with (END: it can be empty)."""
    out = set()
    for part in parts:
        if isinstance(part, Lit):
            return frozenset(out | {part.text[0]})
        if isinstance(part, Run):
            out |= part.chars
            if part.lo > 0:
                return frozenset(out)
        elif isinstance(part, Num):
            return frozenset(out | NUM_FIRST)
        elif isinstance(part, Int):
            return frozenset(out | DIGITS | ({ord("-")} if part.signed else set()))
        elif isinstance(part, Opt):
            out |= first(part.parts, frozenset())
            out.discard(END)
        elif isinstance(part, Alt):
            alts = set().union(*(first(s, frozenset({END})) for s in part.seqs))
            empty = END in alts
            out |= alts - {END}
            if not empty:
                return frozenset(out)
        elif isinstance(part, Fields):
            out.add(ord(","))
        elif isinstance(part, Flag):
            pass
        else:
            raise TypeError(part)
    return frozenset(out | follow)


def _check(parts: Sequence, follow: FrozenSet[int], where: str) -> None:
    for i, part in enumerate(parts):
        after = first(parts[i + 1:], follow)
        if isinstance(part, Run):
            assert part.lo <= part.hi, where
            if after & part.chars:
                raise ValueError(f"{where}: a run of {sorted(part.chars)[:8]}... may be followed by one of "
                                 "its own bytes; the scanner takes runs whole")
        elif isinstance(part, Num) and after & NUM_TAIL:
            raise ValueError(f"{where}: a number may be followed by a byte that continues a number")
        elif isinstance(part, Int) and after & DIGITS:
            raise ValueError(f"{where}: an integer may be followed by a digit")
        elif isinstance(part, Fields) and not after <= {ord(","), END}:
            raise ValueError(f"{where}: Fields must be followed by text that begins with ','")
        elif isinstance(part, Opt):
            _check(part.parts, after, where)
        elif isinstance(part, Alt):
            for seq in part.seqs:
                _check(seq, after, where)
        elif isinstance(part, Lit):
            assert 0 < len(part.text) < 256, where


def check(t: Template) -> None:
    if t.anywhere and not isinstance(t.parts[0], Lit):
        raise ValueError(f"{t.name}: a template matched anywhere in a line begins with a literal")
    _check(t.parts, frozenset({END}), t.name)


def _slots(parts: Sequence) -> Tuple[int, ...]:
    found = []
    for part in parts:
        if isinstance(part, (Num, Int, Flag)):
            found.append(part.slot)
        elif isinstance(part, Opt):
            found += _slots(part.parts)
        elif isinstance(part, Alt):
            for seq in part.seqs:
                found += _slots(seq)
    return tuple(found)


def max_width(parts: Sequence) -> int:
    """Most bytes one match attempt can read."""
    width = 0
    for part in parts:
        if isinstance(part, Lit):
            width += len(part.text)
        elif isinstance(part, Run):
            width += part.hi
        elif isinstance(part, Num):
            width += NUM_WIDTH
        elif isinstance(part, Int):
            width += part.digits + part.signed
        elif isinstance(part, Opt):
            width += max_width(part.parts)
        elif isinstance(part, Alt):
            width += max(max_width(s) for s in part.seqs)
        elif isinstance(part, Fields):
            width += part.n * (2 + part.width)
    return width


# --- to a Python regex ----------------------------------------------------------------------

def _class(chars: FrozenSet[int]) -> bytes:
    inside = chars if len(chars) <= 128 else ALL_BYTES - chars
    body = b"".join(re.escape(bytes([c])) for c in sorted(inside))
    return b"[" + (b"" if inside is chars else b"^") + body + b"]"


def _regex(parts: Sequence) -> bytes:
    """Groups in slot order of appearance: the fallback reads group i into slot slots[i]."""
    out = []
    for part in parts:
        if isinstance(part, Lit):
            out.append(re.escape(part.text))
        elif isinstance(part, Run):
            out.append(_class(part.chars) + b"{%d,%d}" % (part.lo, part.hi))
        elif isinstance(part, Num):
            out.append(NUM)
        elif isinstance(part, Int):
            out.append(b"(%s[0-9]{1,%d})" % (b"-?" if part.signed else b"", part.digits))
        elif isinstance(part, Opt):
            out.append(b"(?:" + _regex(part.parts) + b")?")
        elif isinstance(part, Alt):
            out.append(b"(?:" + b"|".join(_regex(s) for s in part.seqs) + b")")
        elif isinstance(part, Fields):
            out.append(b"(?:, [^,\\n]{0,%d}){0,%d}?" % (part.width, part.n))
        elif isinstance(part, Flag):
            out.append(b"()")
    return b"".join(out)


# --- to a scanner program ---------------------------------------------------------------------

def _bitset(chars) -> bytes:
    bits = bytearray(32)
    for c in chars:
        if c != END:
            bits[c >> 3] |= 1 << (c & 7)
    return bytes(bits)


def _ops(parts: Sequence) -> bytes:
    out = bytearray()
    for part in parts:
        if isinstance(part, Lit):
            out += bytes([OP_LIT, len(part.text)]) + part.text
        elif isinstance(part, Run):
            out += bytes([OP_RUN]) + struct.pack("<HH", part.lo, part.hi) + _bitset(part.chars)
        elif isinstance(part, Num):
            out += bytes([OP_NUM, part.slot])
        elif isinstance(part, Int):
            out += bytes([OP_INT, part.slot, part.digits, int(part.signed)])
        elif isinstance(part, Opt):
            body = _ops(part.parts) + bytes([OP_END])
            out += bytes([OP_OPT]) + struct.pack("<H", len(body)) + body
        elif isinstance(part, Alt):
            out += bytes([OP_ALT, len(part.seqs)])
            for seq in part.seqs:
                body = _ops(seq) + bytes([OP_END])
                out += struct.pack("<H", len(body)) + body
        elif isinstance(part, Fields):
            out += bytes([OP_FIELDS, part.n]) + struct.pack("<H", part.width)
        elif isinstance(part, Flag):
            out += bytes([OP_FLAG, part.slot])
    return bytes(out)


RECORD, CLOSE, WEIGHTED = range(3)  # what a match does (logscan.c: KIND_*)
STATS = 5  # a WEIGHTED match's values are in slots 0..4, its weight in slot 5


def program(templates: Sequence[Template], groups: Sequence[int], kinds: Sequence[int]) -> bytes:
    """All templates for the scanner: per template its flags, group (of the templates tried at a
    line start, only the first that matches in each group counts), kind (RECORD: the match is
    returned; WEIGHTED: its values are added up, weighted; CLOSE: returned with those sums, which
    then start again), first bytes, and ops."""
    out = bytearray([len(templates)])
    for t, group, kind in zip(templates, groups, kinds):
        ops = _ops(t.parts) + bytes([OP_END])
        starts = first(t.parts, frozenset({END}))
        out += bytes([int(t.anywhere), group, kind, int(END in starts)]) + _bitset(starts)
        out += struct.pack("<H", len(ops)) + ops
    return bytes(out)


def slot_values(t: Template, m: "re.Match[bytes]") -> list:
    """What the scanner writes for a regex match: float() of each number, 1 for a flag, NaN
    where the group took no part."""
    values = [float("nan")] * SLOTS
    for slot, text in zip(t.slots, m.groups()):
        if text is not None:
            values[slot] = 1.0 if text == b"" else float(text)
    return values
