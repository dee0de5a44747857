"""darknet training logs → one metrics row per iteration, live (line by line) or from a file.

Line formats understood (from the forks' printf/ostream calls; see ../shared/reference/darknet.md),
written below as templates (model_tools/log_grammar.py), their one home:
- summaries: pjreddie `N: loss, avg avg, rate rate, s seconds, n images`; AlexeyAB
  `N: loss, avg avg loss, rate rate, s seconds, n images, h hours left` (or `time left`);
  hank-ai `N: loss=x, avg loss=x, last=..., best=..., mAP=<next>|next=<next>, rate=x, load ..., train=...,
  n images, time remaining=...`, with ANSI colours and an OSC title (`ESC]2;...BEL`) before it.
- region lines: YOLOv2 `Region Avg IOU: ..., Avg Recall: ...,  count: n` (hank-ai: `Region avg IoU: ...`);
  YOLOv3 pjreddie `Region 82 Avg IOU: ..., .5R: ..., .75R: ...,  count: n` (-nan when a subdivision is empty);
  AlexeyAB/hank-ai `v3 (...) Region 82 Avg (IOU: x), count: n, ...` and the 2019-2020
  `... Avg (IOU: x, GIOU: y), Class: ..., .5R: ..., count: n, ...`.
- mAP lines printed *after* the summary of the iteration they belong to: AlexeyAB's
  `mean_average_precision (mAP@0.50) = x` and ` mean average precision (mAP@0.50) = x, or y %`,
  hank-ai's `-> mean average precision (mAP@0.50)=y%`.

A region line belongs to the next summary line; its statistics are averaged over the iteration
weighted by their `count`, in the order of the lines (values that are NaN or inf, and lines with
count 0, carry no weight). A mAP line sets the map of the last summary printed before it.

How a block of text is read: the compiled scanner (model_tools/native/logscan.c, ctypes) runs the
templates over it line by line, adds up the region lines of each iteration and returns the summary
and mAP lines with their numbers; numpy makes the table. Without the library (no C compiler when
installed) the templates' regexes do the same in Python, line by line: same results, 30-60x slower.
Linear whatever the input: a template is tried once per line start (or per occurrence of its
first literal) and one attempt reads at most MAX_MATCH_CHARS bytes. Bytes of a line past LINE_CAP
are ignored and the line is counted in `long_lines` (reported by parse-log): no darknet line is
that long; files are read in blocks cut at line ends, so memory stays bounded whatever the lines.
"""
from __future__ import annotations

import csv
import ctypes
import math
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.errors import InputError
from model_tools import native
from model_tools.log_grammar import CLOSE, END, RECORD, SLOTS, STATS, WEIGHTED, Alt, Fields, Flag, Int, Lit, Num, \
    Opt, Run, Template, first, max_width, program, slot_values

LINE_CAP = 64 * 1024
BLOCK_BYTES = 4 * 1024 * 1024
MAX_MATCH_CHARS = 2400  # upper bound of any template's match width; asserted by the tests


def _spaces(lo: int, hi: int) -> Run:
    return Run.of(b" ", lo, hi)


COLOUR = Opt(Lit(b"\x1b["), Run.of(b"0123456789;", 0, 12), Lit(b"m"))  # hank-ai wraps numbers in ANSI colours

# slots of a summary: iteration, loss, avg_loss, rate, seconds, images, hours_left (the Row's order)
SUMMARY = Template("summary", [
    _spaces(0, 8), Int(0, 10), Lit(b":"), _spaces(0, 4), Num(1), Lit(b","), _spaces(0, 4), Num(2), Lit(b" avg"),
    Opt(Lit(b" loss")), Lit(b","), _spaces(0, 4), Num(3), Lit(b" rate,"), _spaces(0, 4), Num(4), Lit(b" seconds,"),
    _spaces(0, 4), Int(5, 15, signed=True), Lit(b" images"),
    Opt(Lit(b","), _spaces(0, 4), Num(6), Lit(b" "), Alt(Lit(b"hours"), Lit(b"time")), Lit(b" left"))])
HANK_SUMMARY = Template("hank-ai summary", [
    Opt(Lit(b"\x1b]2;"), Run.not_of(b"\x07\n", 0, 200), Lit(b"\x07")),  # the terminal title
    COLOUR, Int(0, 10), COLOUR, Lit(b": loss="), COLOUR, Num(1), COLOUR, Lit(b", avg loss="), COLOUR, Num(2), COLOUR,
    Fields(8, 100), Lit(b", rate="), Num(3), Fields(8, 100), Lit(b", "), Int(5, 15, signed=True), Lit(b" images")])
# slots of a mAP line: the value, and 1 where it is a percentage
MAP = Template("mAP", [
    Opt(Alt(Lit(b" "), Lit(b"-> "))), Lit(b"mean"), Run.of(b" _", 1, 1), Lit(b"average"), Run.of(b" _", 1, 1),
    Lit(b"precision (mAP@"), Run.of(b"0123456789.", 1, 8), Lit(b")"), _spaces(0, 1), Lit(b"="), _spaces(0, 1),
    COLOUR, Num(0), Opt(_spaces(0, 1), Lit(b"%"), Flag(1))])
# slots of a region line: iou, class, obj, no_obj, recall, count (6, 7: printed, not used)
_SEP = (Lit(b","), _spaces(1, 4), Lit(b"count: "), Int(5, 12))
REGIONS = [
    Template("YOLOv2 region, pjreddie and AlexeyAB", [
        Lit(b"Region Avg IOU: "), Num(0), Lit(b", Class: "), Num(1), Lit(b", Obj: "), Num(2), Lit(b", No Obj: "),
        Num(3), Lit(b", Avg Recall: "), Num(4), *_SEP]),
    Template("YOLOv2 region, hank-ai", [
        Lit(b"Region avg IoU: "), Num(0), Lit(b", class: "), Num(1), Lit(b", obj: "), Num(2), Lit(b", no obj: "),
        Num(3), Lit(b", avg recall: "), Num(4), *_SEP]),
    Template("YOLOv3 region, pjreddie", [
        Lit(b"Region "), Run.of(b"0123456789", 1, 6), Lit(b" Avg IOU: "), Num(0), Lit(b", Class: "), Num(1),
        Lit(b", Obj: "), Num(2), Lit(b", No Obj: "), Num(3), Lit(b", .5R: "), Num(4), Lit(b", .75R: "), Num(6), *_SEP]),
    Template("YOLOv3 region, AlexeyAB (both eras) and hank-ai", [
        Lit(b"Avg (IOU: "), Num(0),
        Alt([Lit(b", GIOU: "), Num(6), Lit(b"), Class: "), Num(1), Lit(b", Obj: "), Num(2), Lit(b", No Obj: "), Num(3),
             Lit(b", .5R: "), Num(4), Lit(b", .75R: "), Num(7)],
            [Lit(b")")]),
        *_SEP], anywhere=True),
]
# AlexeyAB prints this when an image has no label file (and trains it as having no objects)
MISSING_LABEL = Template("missing label file", [Lit(b"Can't open label file")], anywhere=True)
# Tried in this order on each line; of templates in one group, the first that matches counts (the
# three region lines that start with "Region " share a group: no line can be two of them). A
# summary closes its iteration (CLOSE: it takes the region sums since the previous one); region
# lines are added up, weighted by their count (WEIGHTED); the others are returned as they are.
TEMPLATES = [SUMMARY, HANK_SUMMARY, MAP, *REGIONS, MISSING_LABEL]
_GROUPS = [0, 0, 1, 2, 2, 2, 3, 4]
_KINDS = [CLOSE, CLOSE, RECORD] + [WEIGHTED] * len(REGIONS) + [RECORD]
PROGRAM = program(TEMPLATES, _GROUPS, _KINDS)
PATTERNS = [t.regex for t in TEMPLATES]  # for the tests' linearity checks
assert all(max_width(t.parts) <= MAX_MATCH_CHARS for t in TEMPLATES)

_BINARY_MAGIC = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"\x7fELF": "a program",
                 b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "a gzip file"}


@dataclass
class Row:
    iteration: int
    loss: float
    avg_loss: float
    rate: float = math.nan
    seconds: float = math.nan
    images: int = 0
    hours_left: float = math.nan
    map: float = math.nan
    region_iou: float = math.nan
    region_class: float = math.nan
    region_obj: float = math.nan
    region_no_obj: float = math.nan
    region_recall: float = math.nan
    region_count: int = 0


FIELDS = ["iteration", "loss", "avg_loss", "rate", "seconds", "images", "hours_left", "map", "region_iou",
          "region_class", "region_obj", "region_no_obj", "region_recall", "region_count"]
_row_values = attrgetter(*FIELDS)
_INT_FIELDS = ("iteration", "images", "region_count")
_INT_COLUMNS = [FIELDS.index(name) for name in _INT_FIELDS]
_MAP_COLUMN = FIELDS.index("map")


# --- what the templates find in a block ---------------------------------------------------------

_SUMS = 2 * STATS + 1  # region sums of value * count and of counts, per statistic, and of all counts


@dataclass
class Found:
    """The CLOSE and RECORD matches of a block in line order: positions, template indices,
    slots (n x SLOTS), and for CLOSE matches the region sums of their iteration (n x _SUMS); and
    the sums after the last CLOSE match, which carry on into the next block."""
    pos: np.ndarray
    tmpl: np.ndarray
    slots: np.ndarray
    sums: np.ndarray
    carry: np.ndarray
    long_lines: int = 0  # lines longer than LINE_CAP


Buffer = Union[bytes, bytearray, memoryview]


def scan(block: Buffer, carry: Optional[np.ndarray] = None, use_native: Optional[bool] = None) -> Found:
    """What TEMPLATES find in a block of whole lines ('\\n' and '\\r' end a line; a line is read
    up to its first LINE_CAP bytes)."""
    carry = np.zeros(_SUMS) if carry is None else np.array(carry, dtype=float)
    lib = native.library() if use_native is not False else None
    if use_native and lib is None:
        raise RuntimeError(f"the compiled log scanner is not available: {native.status()}")
    return _scan_native(lib, block, carry) if lib is not None else _scan_regex(block, carry)


def _scan_native(lib, block: Buffer, carry: np.ndarray) -> Found:
    if isinstance(block, bytes):
        base = ctypes.cast(ctypes.c_char_p(block), ctypes.c_void_p).value or 0
    else:  # a view of blocks()' buffer: no copy
        base = ctypes.addressof(ctypes.c_char.from_buffer(block)) if len(block) else 0
    cap = len(block) // 256 + 64
    done, long_lines = ctypes.c_long(), ctypes.c_long()
    parts = []
    start = 0
    while start < len(block):
        pos = np.empty(cap, np.int64)
        tmpl = np.empty(cap, np.int32)
        slots = np.empty((cap, SLOTS))
        sums = np.zeros((cap, _SUMS))
        n = lib.ls_scan(base + start, len(block) - start, PROGRAM, LINE_CAP, carry.ctypes.data, pos.ctypes.data,
                        tmpl.ctypes.data, slots.ctypes.data, sums.ctypes.data, cap, ctypes.byref(done),
                        ctypes.byref(long_lines))
        if n < 0:
            raise RuntimeError("the compiled log scanner refused its program")
        parts.append((pos[:n] + start, tmpl[:n], slots[:n], sums[:n]))
        if done.value == 0 and n == 0:  # one line holds more records than fit: room for more
            cap *= 4
        start += done.value
    if not parts:
        return _empty(carry)
    if len(parts) == 1:
        return Found(*parts[0], carry, long_lines.value)
    return Found(*(np.concatenate([p[k] for p in parts]) for k in range(4)), carry, long_lines.value)


def _empty(carry: np.ndarray) -> Found:
    return Found(np.empty(0, np.int64), np.empty(0, np.int32), np.empty((0, SLOTS)), np.empty((0, _SUMS)), carry)


def _first_bytes(t: Template) -> Optional[frozenset]:
    starts = first(t.parts, frozenset({END}))
    return None if END in starts else starts


_FIRST = [_first_bytes(t) for t in TEMPLATES]  # bytes a line must begin with for t to match there
_LITERALS = [t.parts[0].text if t.anywhere else b"" for t in TEMPLATES]  # what t's matches begin with
# the templates worth trying on a line that begins with byte b (256: an empty line), in order
_CANDIDATES = [tuple(i for i, t in enumerate(TEMPLATES) if t.anywhere or _FIRST[i] is None or b in _FIRST[i])
               for b in range(257)]


def _scan_regex(block: Buffer, carry: np.ndarray) -> Found:
    """What the compiled scanner finds, from the templates' regexes, line by line."""
    block = bytes(block).replace(b"\r", b"\n")
    long_lines = 0
    pos: List[int] = []
    tmpl: List[int] = []
    slots: List[list] = []
    closed: List[list] = []
    sums = carry.tolist()
    start = 0
    for whole in block.split(b"\n"):
        line = whole[:LINE_CAP]
        long_lines += len(whole) > LINE_CAP
        done = set()
        for i in _CANDIDATES[line[0] if line else 256]:
            t = TEMPLATES[i]
            if t.anywhere:
                matches = list(t.regex.finditer(line)) if _LITERALS[i] in line else []
            elif _GROUPS[i] in done:
                continue
            else:
                matches = [m for m in [t.regex.match(line)] if m]
            for m in matches:
                values = slot_values(t, m)
                done.add(_GROUPS[i])
                if _KINDS[i] == WEIGHTED:
                    weight = values[STATS]
                    for k in range(STATS):
                        if math.isfinite(values[k]) and weight > 0:
                            sums[k] += values[k] * weight
                            sums[STATS + k] += weight
                    sums[2 * STATS] += weight
                    continue
                pos.append(start + m.start())
                tmpl.append(i)
                slots.append(values)
                closed.append(sums if _KINDS[i] == CLOSE else [0.0] * _SUMS)
                if _KINDS[i] == CLOSE:
                    sums = [0.0] * _SUMS
        start += len(whole) + 1
    n = len(pos)
    return Found(np.array(pos, np.int64), np.array(tmpl, np.int32), np.array(slots, float).reshape(n, SLOTS),
                 np.array(closed, float).reshape(n, _SUMS), np.array(sums), long_lines)


# --- found → iterations -------------------------------------------------------------------------

@dataclass
class Block:
    table: np.ndarray            # one row per summary in the block, columns as FIELDS
    maps: List[Tuple[int, float]]  # (row in table, or -1: the row before the block; mAP value)


_IS_CLOSE = np.array([k == CLOSE for k in _KINDS])
_MAP = TEMPLATES.index(MAP)
_MISSING_LABEL = TEMPLATES.index(MISSING_LABEL)


def assemble(found: Found) -> Block:
    is_summary = _IS_CLOSE[found.tmpl]
    starts = found.pos[is_summary]
    table = np.full((len(starts), len(FIELDS)), np.nan)
    table[:, :7] = found.slots[is_summary, :7]
    sums = found.sums[is_summary]
    weights = sums[:, STATS:2 * STATS]
    with np.errstate(invalid="ignore", divide="ignore"):
        table[:, 8:13] = np.where(weights > 0, sums[:, :STATS] / np.where(weights > 0, weights, 1.0), np.nan)
    table[:, 13] = sums[:, 2 * STATS]
    # a mAP line belongs to the latest summary printed before it (possibly in an earlier block)
    is_map = found.tmpl == _MAP
    owner = np.searchsorted(starts, found.pos[is_map], side="left") - 1
    value = found.slots[is_map, 0]
    value = np.where(found.slots[is_map, 1] == 1.0, value / 100.0, value)
    return Block(table, list(zip(owner.tolist(), value.tolist())))


def rows_of(table: np.ndarray) -> List[Row]:
    columns = table.T.tolist()
    for c in _INT_COLUMNS:
        columns[c] = table[:, c].astype(np.int64).tolist()
    return [Row(*values) for values in zip(*columns)]


class Parser:
    """Feed text (one line, or a block of whole lines); completed iteration summaries come back as
    Rows. A later mAP line sets `.map` on the row it belongs to, which the caller already holds."""

    def __init__(self, use_native: Optional[bool] = None):
        self._carry = np.zeros(_SUMS)
        self._use_native = use_native
        self.last: Optional[Row] = None
        self.missing_labels = 0  # "Can't open label file" lines (AlexeyAB trains on no objects)
        self.long_lines = 0      # lines longer than LINE_CAP bytes (read up to there)

    def feed(self, text: Union[str, bytes]) -> Optional[Row]:
        """Live use: returns the last summary completed by this text, or None."""
        rows = self.feed_block(text.encode("utf-8", "replace") if isinstance(text, str) else text)
        return rows[-1] if rows else None

    def feed_block(self, block: Buffer) -> List[Row]:
        found = self.block(block)
        rows = rows_of(found.table)
        for owner, value in found.maps:
            target = rows[owner] if owner >= 0 else self.last
            if target is not None:
                target.map = value
        if rows:
            self.last = rows[-1]
        return rows

    def block(self, block: Buffer) -> Block:
        """A block's iterations as a table (read_log keeps tables, not Rows); maps left to the caller."""
        found = scan(block, self._carry, self._use_native)
        self._carry = found.carry
        self.long_lines += found.long_lines
        self.missing_labels += int(np.count_nonzero(found.tmpl == _MISSING_LABEL))
        return assemble(found)


def parse_lines(lines: Iterable[Union[str, bytes]]) -> Iterator[Row]:
    parser = Parser()
    for line in lines:
        yield from parser.feed_block(line.encode("utf-8", "replace") if isinstance(line, str) else line)


def _check_text(head: bytes, where: str) -> None:
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"this is {what}, not a darknet training log", where,
                             "give the text file darknet's output was saved to (e.g. training/train.log)")
    if b"\x00" in head[:65536]:
        raise InputError("this file holds binary data (NUL bytes), not a darknet training log", where,
                         "give the text file darknet's output was saved to (e.g. training/train.log)")


def _line_end(buf: bytearray, start: int, end: int) -> int:
    """Where the first line in buf[start:end] ends ('\\n' or '\\r'), or -1."""
    nl, cr = buf.find(b"\n", start, end), buf.find(b"\r", start, end)
    return nl if cr < 0 else cr if nl < 0 else min(nl, cr)


def blocks(f: BinaryIO, parser: Parser, where: str, block_bytes: int = BLOCK_BYTES) -> Iterator[memoryview]:
    """Whole-line blocks of a binary stream, as views of one buffer (each is overwritten when the
    next is read). Memory stays bounded: a line that outgrows LINE_CAP across blocks is cut there
    (counted on parser), the scanner reads the others up to LINE_CAP."""
    buf = bytearray(LINE_CAP + 1 + block_bytes)
    view = memoryview(buf)
    have, skipping, first = 0, False, True  # have: bytes of an unfinished line at the front
    while True:
        n = f.readinto(view[have:have + block_bytes])
        if first:
            _check_text(bytes(view[:min(n, 65536)]), where)
            first = False
        if not n:
            break
        total = have + n
        if skipping:  # inside an over-long line: drop bytes up to its end
            end = _line_end(buf, 0, total)
            if end < 0:
                continue
            buf[:total - end] = buf[end:total]
            total -= end
            skipping = False
        cut = max(buf.rfind(b"\n", 0, total), buf.rfind(b"\r", 0, total)) + 1
        if total - cut > LINE_CAP:  # the unfinished line is too long already: keep its start
            parser.long_lines += 1
            buf[cut + LINE_CAP] = ord("\n")
            cut, total, skipping = cut + LINE_CAP + 1, cut + LINE_CAP + 1, True
        if cut:
            yield view[:cut]
        have = total - cut
        buf[:have] = buf[cut:total]
    if have:
        yield view[:have]


class LogParse:
    """A parsed log: `table` (one row per iteration, columns as FIELDS); `rows` made on first use."""

    def __init__(self, table: np.ndarray, size: int, long_lines: int, missing_labels: int):
        self.table = table
        self.bytes = size
        self.long_lines = long_lines
        self.missing_labels = missing_labels
        self._rows: Optional[List[Row]] = None

    @property
    def rows(self) -> List[Row]:
        if self._rows is None:
            self._rows = rows_of(self.table)
        return self._rows


def read_log(path: Union[str, Path], use_native: Optional[bool] = None) -> LogParse:
    """Parse a whole log file; a file that is not a darknet log, or holds no iteration, is an error."""
    path = Path(path)
    parser, tables, size, rows = Parser(use_native), [], 0, 0
    try:
        with open(path, "rb") as f:
            for block in blocks(f, parser, str(path), BLOCK_BYTES):
                size += len(block)
                found = parser.block(block)
                for owner, value in found.maps:
                    if owner >= 0:
                        found.table[owner, _MAP_COLUMN] = value
                    elif rows:
                        tables[-1][-1, _MAP_COLUMN] = value
                if len(found.table):
                    tables.append(found.table)
                    rows += len(found.table)
    except OSError as e:
        raise InputError(f"cannot read the log: {e.strerror}", str(path), "check the path") from None
    if not rows:
        raise InputError(f"no darknet iteration summary found in {size} bytes", str(path),
                         "give the output of `darknet detector train` (pjreddie, AlexeyAB or hank-ai); "
                         "if it is one, training never completed an iteration: read the log's last lines")
    return LogParse(np.concatenate(tables), size, parser.long_lines, parser.missing_labels)


def parse_file(path: Union[str, Path]) -> List[Row]:
    return read_log(path).rows


def _columns(rows: Union[Sequence[Row], LogParse]) -> List[list]:
    if isinstance(rows, LogParse):
        table = rows.table
        columns = table.T.tolist()
        for c in _INT_COLUMNS:
            columns[c] = table[:, c].astype(np.int64).tolist()
    else:
        columns = [list(c) for c in zip(*map(_row_values, rows))] or [[] for _ in FIELDS]
    # NaN (not measured) is written as an empty cell; v != v is the cheap NaN test
    return [c if i in _INT_COLUMNS else ["" if v != v else v for v in c] for i, c in enumerate(columns)]


def write_csv(rows: Union[Iterable[Row], LogParse], out: Union[str, Path]) -> int:
    from edge_app.atomic import atomic_path

    columns = _columns(rows if isinstance(rows, LogParse) else list(rows))
    with atomic_path(out) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(FIELDS)
            writer.writerows(zip(*columns))
    return len(columns[0])


def read_csv(path: Union[str, Path]) -> List[Row]:
    rows = []
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            values = {}
            for name in FIELDS:
                raw = record.get(name, "")
                if name in _INT_FIELDS:
                    values[name] = int(raw or 0)
                else:
                    values[name] = float(raw) if raw not in ("", None) else math.nan
            rows.append(Row(**values))
    return rows
