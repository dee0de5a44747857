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

How a block of text is read: the compiled scanner (model_tools/native/logscan.c) runs the
templates over it and returns one record per match (position, template, numbers); without the
library, the templates' regexes do the same line by line (same records, slower). numpy then
assigns region records to iterations and sums them, in line order. Linear whatever the input:
a template is tried once per line start (or per occurrence of its first literal) and one attempt
reads at most MAX_MATCH_CHARS bytes. Bytes of a line past LINE_CAP are ignored and the line is
counted in `long_lines` (reported by parse-log): no darknet line is that long; files are read in
blocks cut at line ends, so memory stays bounded whatever the lines.
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
from model_tools.log_grammar import END, SLOTS, Alt, Fields, Flag, Int, Lit, Num, Opt, Run, Template, first, \
    max_width, program, slot_values

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
# Tried in this order on each line; of templates in one group, the first that matches counts.
TEMPLATES = [SUMMARY, HANK_SUMMARY, MAP, *REGIONS]
_GROUPS = [0, 0, 1, 2, 3, 4, 5]
KIND_SUMMARY, KIND_MAP, KIND_REGION = 0, 1, 2
_KINDS = np.array([KIND_SUMMARY, KIND_SUMMARY, KIND_MAP] + [KIND_REGION] * len(REGIONS))
PROGRAM = program(TEMPLATES, _GROUPS)
PATTERNS = [t.regex for t in TEMPLATES]  # for the tests' linearity checks
assert all(max_width(t.parts) <= MAX_MATCH_CHARS for t in TEMPLATES)

MISSING_LABEL = b"Can't open label file"
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
_STATS = 5  # iou, class, obj, no_obj, recall
_CARRY = 2 * _STATS + 1  # region sums, weights and count since the last summary


# --- records: what the templates found in a block ---------------------------------------------

Records = Tuple[np.ndarray, np.ndarray, np.ndarray]  # positions, template indices, slots (n x SLOTS)


def scan(block: bytes, use_native: Optional[bool] = None) -> Records:
    """The matches of TEMPLATES in a block of whole lines ('\\n' ends a line), in line order."""
    lib = native.library() if use_native is not False else None
    if use_native and lib is None:
        raise RuntimeError(f"the compiled log scanner is not available: {native.status()}")
    return _scan_native(lib, block) if lib is not None else _scan_regex(block)


def _scan_native(lib, block: bytes) -> Records:
    base = ctypes.cast(ctypes.c_char_p(block), ctypes.c_void_p).value or 0
    cap = len(block) // 24 + 64
    done = ctypes.c_long()
    found: List[Records] = []
    start = 0
    while start < len(block):
        pos = np.empty(cap, np.int64)
        tmpl = np.empty(cap, np.int32)
        slots = np.empty((cap, SLOTS))
        n = lib.ls_scan(base + start, len(block) - start, PROGRAM, pos.ctypes.data, tmpl.ctypes.data,
                        slots.ctypes.data, cap, ctypes.byref(done))
        if n < 0:
            raise RuntimeError("the compiled log scanner refused its program")
        found.append((pos[:n] + start, tmpl[:n], slots[:n]))
        if done.value == 0 and n == 0:  # one line holds more matches than fit: room for more
            cap *= 4
        start += done.value
    if len(found) == 1:
        return found[0]
    return (np.concatenate([f[0] for f in found] + [np.empty(0, np.int64)]),
            np.concatenate([f[1] for f in found] + [np.empty(0, np.int32)]),
            np.concatenate([f[2] for f in found] + [np.empty((0, SLOTS))]))


def _first_bytes(t: Template) -> Optional[frozenset]:
    starts = first(t.parts, frozenset({END}))
    return None if END in starts else starts


_FIRST = [_first_bytes(t) for t in TEMPLATES]  # bytes a line must begin with for t to match there


def _scan_regex(block: bytes) -> Records:
    """The same records as the compiled scanner, from the templates' regexes, line by line."""
    pos: List[int] = []
    tmpl: List[int] = []
    slots: List[list] = []
    start = 0
    for line in block.split(b"\n"):
        done = set()
        for i, t in enumerate(TEMPLATES):
            if t.anywhere:
                for m in t.regex.finditer(line):
                    pos.append(start + m.start())
                    tmpl.append(i)
                    slots.append(slot_values(t, m))
                continue
            if _GROUPS[i] in done or (_FIRST[i] is not None and (not line or line[0] not in _FIRST[i])):
                continue
            m = t.regex.match(line)
            if m:
                pos.append(start)
                tmpl.append(i)
                slots.append(slot_values(t, m))
                done.add(_GROUPS[i])
        start += len(line) + 1
    return (np.array(pos, np.int64), np.array(tmpl, np.int32),
            np.array(slots, dtype=float).reshape(len(slots), SLOTS))


# --- records → iterations ---------------------------------------------------------------------

@dataclass
class Block:
    table: np.ndarray            # one row per summary in the block, columns as FIELDS
    carry: np.ndarray            # region sums after the block's last summary
    maps: List[Tuple[int, float]]  # (row in table, or -1: the row before the block; mAP value)


def assemble(records: Records, carry: np.ndarray) -> Block:
    pos, tmpl, slots = records
    kind = _KINDS[tmpl] if len(tmpl) else np.empty(0, int)
    is_summary = kind == KIND_SUMMARY
    starts = pos[is_summary]
    table = np.full((len(starts), len(FIELDS)), np.nan)
    table[:, :7] = slots[is_summary, :7]
    # region records in line order; segment k ends at summary k, the last one continues in the next block
    is_region = kind == KIND_REGION
    region = slots[is_region]
    segment = np.concatenate([[0], np.searchsorted(starts, pos[is_region], side="right")])
    count = region[:, 5]
    sums = np.empty((len(starts) + 1, _CARRY))

    def total(column: int, weights: np.ndarray) -> None:  # carry first: sums run on from it, in line order
        sums[:, column] = np.bincount(segment, np.concatenate([[carry[column]], weights]), len(starts) + 1)

    for i in range(_STATS):
        value = region[:, i]
        weight = np.where(np.isfinite(value) & (count > 0), count, 0.0)
        total(i, np.where(weight > 0, value, 0.0) * weight)
        total(_STATS + i, weight)
    total(2 * _STATS, count)
    stats = sums[:-1]
    weights = stats[:, _STATS:2 * _STATS]
    with np.errstate(invalid="ignore", divide="ignore"):
        table[:, 8:13] = np.where(weights > 0, stats[:, :_STATS] / np.where(weights > 0, weights, 1.0), np.nan)
    table[:, 13] = stats[:, 2 * _STATS]
    # a mAP line belongs to the latest summary printed before it (possibly in an earlier block)
    is_map = kind == KIND_MAP
    owner = np.searchsorted(starts, pos[is_map], side="left") - 1
    value = slots[is_map, 0]
    value = np.where(slots[is_map, 1] == 1.0, value / 100.0, value)
    return Block(table, sums[-1].copy(), list(zip(owner.tolist(), value.tolist())))


def rows_of(table: np.ndarray) -> List[Row]:
    columns = table.T.tolist()
    for c in _INT_COLUMNS:
        columns[c] = table[:, c].astype(np.int64).tolist()
    return [Row(*values) for values in zip(*columns)]


class Parser:
    """Feed text (one line, or a block of whole lines); completed iteration summaries come back as
    Rows. A later mAP line sets `.map` on the row it belongs to, which the caller already holds."""

    def __init__(self, use_native: Optional[bool] = None):
        self._carry = np.zeros(_CARRY)
        self._use_native = use_native
        self.last: Optional[Row] = None
        self.missing_labels = 0  # "Can't open label file" lines (AlexeyAB trains on no objects)
        self.long_lines = 0      # lines cut to LINE_CAP bytes

    def feed(self, text: Union[str, bytes]) -> Optional[Row]:
        """Live use: returns the last summary completed by this text, or None."""
        rows = self.feed_block(text.encode("utf-8", "replace") if isinstance(text, str) else text)
        return rows[-1] if rows else None

    def feed_block(self, block: bytes) -> List[Row]:
        found = self.block(block)
        rows = rows_of(found.table)
        for owner, value in found.maps:
            target = rows[owner] if owner >= 0 else self.last
            if target is not None:
                target.map = value
        if rows:
            self.last = rows[-1]
        return rows

    def block(self, block: bytes) -> Block:
        """A block's iterations as a table (read_log keeps tables, not Rows); maps left to the caller."""
        if b"\r" in block:
            block = block.replace(b"\r", b"\n")
        if len(block) > LINE_CAP:
            block, cut = cut_long_lines(block)
            self.long_lines += cut
        self.missing_labels += block.count(MISSING_LABEL)
        found = assemble(scan(block, self._use_native), self._carry)
        self._carry = found.carry
        return found


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


def blocks(f: BinaryIO, parser: Parser, where: str, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Whole-line blocks of a binary stream ('\r' made '\n'). Memory stays bounded: a line that
    outgrows LINE_CAP across blocks is cut there (counted on parser); Parser cuts the others."""
    carry, skipping, first = b"", False, True
    while True:
        data = f.read(block_bytes)
        if first:
            _check_text(data, where)
            first = False
        if not data:
            break
        if b"\r" in data:
            data = data.replace(b"\r", b"\n")
        if skipping:  # inside an over-long line: drop bytes up to its end
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data, skipping = data[nl:], False
        buf = carry + data  # carry is at most LINE_CAP bytes, so this copy is bounded
        cut = buf.rfind(b"\n") + 1
        block, carry = buf[:cut], buf[cut:]
        if len(carry) > LINE_CAP:
            parser.long_lines += 1
            block += carry[:LINE_CAP] + b"\n"
            carry, skipping = b"", True
        if block:
            yield block
    if carry:
        yield carry


def cut_long_lines(block: bytes) -> Tuple[bytes, int]:
    """The block with every line longer than LINE_CAP cut to its first LINE_CAP bytes, and how
    many were. Long lines are found by jumping LINE_CAP bytes at a time: in ordinary text the
    backward search finds a newline within a few bytes, so this costs about len/LINE_CAP steps."""
    kept: List[bytes] = []
    count, pos, keep_from, end = 0, 0, 0, len(block)
    while end - pos > LINE_CAP:
        nl = block.rfind(b"\n", pos, pos + LINE_CAP + 1)
        if nl >= 0:
            pos = nl + 1
            continue
        count += 1  # the line at pos is longer than LINE_CAP
        kept.append(block[keep_from:pos + LINE_CAP])
        nl = block.find(b"\n", pos + LINE_CAP)
        if nl < 0:
            keep_from = end
            break
        keep_from, pos = nl, nl + 1
    if not count:
        return block, 0
    kept.append(block[keep_from:])
    return b"".join(kept), count


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
