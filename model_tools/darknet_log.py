"""darknet training logs → one metrics row per iteration, live (line by line) or from a file.

Line formats understood (from the forks' printf/ostream calls; see ../shared/reference/darknet.md):
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

Why it is linear whatever the input: every pattern starts with a literal (so the regex engine
only tries a match where that literal occurs) and every repetition in it is bounded, so one
attempt reads at most MAX_MATCH_CHARS characters (checked by the tests from the compiled
patterns). Files are read in blocks cut at line ends; a line longer than LINE_CAP bytes is cut to
its first LINE_CAP bytes when it spans a block boundary, and every line over LINE_CAP is counted in
`long_lines` (reported by parse-log): no pattern reaches further than MAX_MATCH_CHARS into a line,
so neither changes a result; the cut only bounds memory.

Why it is fast: the work happens in C — the regex scans, one `findall` per iteration for the
region lines, and numpy for the number conversion and the per-iteration weighted means. Python
code runs once per iteration summary, not once per line.
"""
from __future__ import annotations

import csv
import math
import re
import warnings
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from edge_app.errors import InputError

LINE_CAP = 64 * 1024
BLOCK_BYTES = 4 * 1024 * 1024
MAX_MATCH_CHARS = 2400  # upper bound of any pattern's match width; asserted by the tests

# a number as darknet prints it (%f, %g, iostream), NaN/inf as glibc or MSVC (-nan(ind)) print them;
# digit runs are bounded so a 5000-digit "number" simply does not match
NUM = rb"(-?nan|-?inf|[-+]?\d{1,40}(?:\.\d{0,40})?(?:[eE][-+]?\d{1,3})?)(?:\([a-z]{1,8}\))?"
INT = rb"(-?\d{1,15})"
COLOUR = rb"(?:\x1b\[[0-9;]{0,12}m)?"  # hank-ai wraps numbers in ANSI colours

_SUMMARY = (rb" {0,8}(\d{1,10}): {0,4}" + NUM + rb", {0,4}" + NUM + rb" avg(?: loss)?, {0,4}" + NUM
            + rb" rate, {0,4}" + NUM + rb" seconds, {0,4}" + INT + rb" images(?:, {0,4}" + NUM
            + rb" (?:hours|time) left)?")
_FIELD = rb"(?:, [^,\n]{0,100}){0,8}?"  # hank-ai fields we do not use (last=, best=, mAP=, load, train)
_HANK = (rb"(?:\x1b\]2;[^\x07\n]{0,200}\x07)?" + COLOUR + rb"(\d{1,10})" + COLOUR + rb": loss=" + COLOUR + NUM
         + COLOUR + rb", avg loss=" + COLOUR + NUM + COLOUR + _FIELD + rb", rate=" + NUM + _FIELD
         + rb", " + INT + rb" images")
_MAP = (rb"(?: |-> )?mean[ _]average[ _]precision \(mAP@[0-9.]{1,8}\) ?= ?" + COLOUR + NUM + rb"( ?%)?")
# whole-line patterns, tried only at the start of a line that holds their literal (see _events)
SUMMARY_LINE = re.compile(rb"\n" + _SUMMARY)
HANK_LINE = re.compile(rb"\n" + _HANK)
MAP_LINE = re.compile(rb"\n" + _MAP)
SUMMARY_HINT = re.compile(rb" avg")            # in every summary format, near the line start
MAP_HINT = re.compile(rb"precision \(mAP@")
HINT_REACH = 400  # a summary's " avg" / a mAP line's literal lies within this many bytes of its line start

_C = rb", {1,4}"


@dataclass(frozen=True)
class RegionFormat:  # noqa: D101 (documented below)
    """One region-line format. Fast path: `rest` captures the line from a literal on (bounded);
    deleting `labels` leaves only numbers, which numpy converts in one call. `layout(text, n)` gives
    the numbers per line and where (iou, class, obj, no_obj, recall, count) sit among them, or None
    when the lines do not all share one layout — then `strict` (the exact format) is used instead."""
    marker: bytes
    rest: "re.Pattern[bytes]"
    labels: Tuple[bytes, ...]
    layout: object
    strict: "re.Pattern[bytes]"
    strict_columns: Tuple[int, ...]
    one_match_per_marker: bool = True  # `rest` starts with `marker` and matches wherever it occurs


def _fixed(k: int, columns: Tuple[int, ...]):
    return lambda text, n: (k, columns)


def _yolo_ab_layout(text: bytes, n: int):
    giou = text.count(b"GIOU: ")
    if giou == n:   # AlexeyAB 2019-06..2020-11
        return 11, (0, 2, 3, 4, 5, 7)
    detailed = text.count(b"class_loss")
    if giou == 0 and detailed in (0, n):  # AlexeyAB since 2020-11 / hank-ai (verbose)
        return (5 if detailed else 3), (0, -1, -1, -1, -1, 1)
    return None


REGION_FORMATS = [
    RegionFormat(  # YOLOv2, pjreddie and AlexeyAB
        b"\nRegion Avg IOU: ", re.compile(rb"\nRegion Avg IOU: ([^\n]{0,300})"),
        (b", Class: ", b", Obj: ", b", No Obj: ", b", Avg Recall: ", b",  count: "), _fixed(6, (0, 1, 2, 3, 4, 5)),
        re.compile(rb"\nRegion Avg IOU: " + NUM + rb", Class: " + NUM + rb", Obj: " + NUM + rb", No Obj: " + NUM
                   + rb", Avg Recall: " + NUM + _C + rb"count: (\d{1,12})"), (0, 1, 2, 3, 4, 5)),
    RegionFormat(  # YOLOv2, hank-ai
        b"\nRegion avg IoU: ", re.compile(rb"\nRegion avg IoU: ([^\n]{0,300})"),
        (b", class: ", b", obj: ", b", no obj: ", b", avg recall: ", b", count: "), _fixed(6, (0, 1, 2, 3, 4, 5)),
        re.compile(rb"\nRegion avg IoU: " + NUM + rb", class: " + NUM + rb", obj: " + NUM + rb", no obj: " + NUM
                   + rb", avg recall: " + NUM + _C + rb"count: (\d{1,12})"), (0, 1, 2, 3, 4, 5)),
    RegionFormat(  # YOLOv3, pjreddie
        b", .75R: ", re.compile(rb"\nRegion (\d{1,6} Avg IOU: [^\n]{0,300})"),
        (b" Avg IOU: ", b", Class: ", b", Obj: ", b", No Obj: ", b", .5R: ", b", .75R: ", b",  count: "),
        _fixed(8, (1, 2, 3, 4, 5, 7)),
        re.compile(rb"\nRegion \d{1,6} Avg IOU: " + NUM + rb", Class: " + NUM + rb", Obj: " + NUM + rb", No Obj: "
                   + NUM + rb", \.5R: " + NUM + rb", \.75R: " + NUM + _C + rb"count: (\d{1,12})"),
        (0, 1, 2, 3, 4, 6), one_match_per_marker=False),
    RegionFormat(  # YOLOv3, AlexeyAB (both eras) and hank-ai
        b"Avg (IOU: ", re.compile(rb"Avg \(IOU: ([^\n]{0,300})"),
        (b"), count: ", b", GIOU: ", b"), Class: ", b", Obj: ", b", No Obj: ", b", .5R: ", b", .75R: ", b", count: ",
         b", class_loss = ", b", iou_loss = ", b", total_loss = ", b", class_loss: ", b", iou_loss: ",
         b", total_loss: "),
        _yolo_ab_layout,
        re.compile(rb"Avg \(IOU: " + NUM + rb"(?:, GIOU: " + NUM + rb"\), Class: " + NUM + rb", Obj: " + NUM
                   + rb", No Obj: " + NUM + rb", \.5R: " + NUM + rb", \.75R: " + NUM + rb"|\))" + _C
                   + rb"count: (\d{1,12})"), (0, 2, 3, 4, 5, 7)),
]
# every pattern the parser runs, for the tests' structural linearity check
PATTERNS = [SUMMARY_LINE, HANK_LINE, MAP_LINE, SUMMARY_HINT, MAP_HINT,
            *(f.rest for f in REGION_FORMATS), *(f.strict for f in REGION_FORMATS)]
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
_STATS = 5  # iou, class, obj, no_obj, recall


def _f(text: Optional[bytes]) -> float:
    return math.nan if text is None else float(text)  # the patterns only capture what float() reads


class Parser:
    """Feed text (one line, or a block of whole lines); completed iteration summaries come back as
    Rows. A later mAP line sets `.map` on the row it belongs to, which the caller already holds."""

    def __init__(self):
        self._pending = np.zeros(2 * _STATS + 1)  # region sums, weights, count since the last summary
        self.last: Optional[Row] = None
        self.missing_labels = 0  # "Can't open label file" lines (AlexeyAB trains on no objects)
        self.long_lines = 0      # lines cut to LINE_CAP bytes while reading a file

    def feed(self, text: Union[str, bytes]) -> Optional[Row]:
        """Live use: returns the last summary completed by this text, or None."""
        rows = self.feed_block(text.encode("utf-8", "replace") if isinstance(text, str) else text)
        return rows[-1] if rows else None

    def feed_block(self, block: bytes) -> List[Row]:
        if b"\r" in block:
            block = block.replace(b"\r", b"\n")
        buf = b"\n" + block
        self.missing_labels += buf.count(MISSING_LABEL)
        summaries = [(pos, self._summary(m)) for pos, m in _lines_matching(buf, SUMMARY_HINT, (SUMMARY_LINE, HANK_LINE))]
        maps = [(pos, _map_value(m)) for pos, m in _lines_matching(buf, MAP_HINT, (MAP_LINE,))]
        stats = _region_stats(buf, [pos for pos, _ in summaries])
        stats[0] += self._pending
        for (_, row), s in zip(summaries, stats.tolist()):
            means = [s[i] / s[_STATS + i] if s[_STATS + i] > 0 else math.nan for i in range(_STATS)]
            (row.region_iou, row.region_class, row.region_obj, row.region_no_obj,
             row.region_recall) = means
            row.region_count = int(s[2 * _STATS])
        self._pending = stats[-1]
        # a mAP line belongs to the latest summary printed before it (possibly in an earlier block)
        k, latest = 0, self.last
        for pos, value in maps:
            while k < len(summaries) and summaries[k][0] < pos:
                latest = summaries[k][1]
                k += 1
            if latest is not None:
                latest.map = value
        rows = [row for _, row in summaries]
        if rows:
            self.last = rows[-1]
        return rows

    @staticmethod
    def _summary(m: "re.Match[bytes]") -> Row:
        if m.re is SUMMARY_LINE:
            it, loss, avg, rate, secs, images, left = m.groups()
            return Row(int(it), _f(loss), _f(avg), _f(rate), _f(secs), int(images), _f(left))
        it, loss, avg, rate, images = m.groups()
        return Row(int(it), _f(loss), _f(avg), _f(rate), math.nan, int(images))


def _map_value(m: "re.Match[bytes]") -> float:
    value, percent = m.groups()
    return _f(value) / (100.0 if percent else 1.0)


def _lines_matching(buf: bytes, hint: "re.Pattern[bytes]", patterns) -> Iterator[Tuple[int, "re.Match[bytes]"]]:
    """(line start, match) for each line holding `hint` within HINT_REACH bytes of its start and
    matching one of `patterns` there. Each line is looked at once, however often the hint occurs
    in it, and only HINT_REACH bytes back: linear in len(buf)."""
    line_end = -1
    for hit in hint.finditer(buf):
        p = hit.start()
        if p < line_end:
            continue
        line_end = buf.find(b"\n", p)
        if line_end < 0:
            line_end = len(buf)
        start = buf.rfind(b"\n", max(0, p - HINT_REACH), p)
        if start < 0:
            continue
        for pattern in patterns:
            m = pattern.match(buf, start, line_end)
            if m:
                yield start, m
                break


def _region_stats(buf: bytes, cuts: List[int]) -> np.ndarray:
    """Count-weighted region sums per segment: segment k ends at summary k; the last one is what
    follows the last summary. Shape (len(cuts)+1, 2*_STATS+1): sums, weights, count."""
    bounds = [0, *cuts, len(buf)]
    out = np.zeros((len(bounds) - 1, 2 * _STATS + 1))
    for fmt in REGION_FORMATS:
        if fmt.marker not in buf:
            continue
        values, columns, per_segment = _fast_numbers(buf, bounds, fmt)
        if values is None:
            values, columns, per_segment = _strict_numbers(buf, bounds, fmt)
        if not len(values):
            continue
        segment = np.repeat(np.arange(len(per_segment)), per_segment)
        count = values[:, columns[5]]
        out[:, 2 * _STATS] += np.bincount(segment, weights=count, minlength=len(out))
        for target, col in enumerate(columns[:_STATS]):
            if col < 0:
                continue
            value = values[:, col]
            weight = np.where(np.isfinite(value) & (count > 0), count, 0.0)
            out[:, target] += np.bincount(segment, weights=np.where(weight > 0, value, 0.0) * weight,
                                          minlength=len(out))
            out[:, _STATS + target] += np.bincount(segment, weights=weight, minlength=len(out))
    return out


NAN_STANDIN = b" -987654321987 "
_TO_SPACE = bytes(c if c in b"0123456789.-+" else 32 for c in range(256))


def _fast_numbers(buf: bytes, bounds: List[int], fmt: RegionFormat):
    found: List[bytes] = []
    per_segment: List[int] = []
    if fmt.one_match_per_marker:
        # one scan of the block; each marker starts exactly one match, so counting markers per
        # segment (in C) gives the segment sizes without a findall per segment
        found = fmt.rest.findall(buf)
        per_segment = [buf.count(fmt.marker, a, b) for a, b in zip(bounds, bounds[1:])]
    if sum(per_segment) != len(found) or not per_segment:
        found, per_segment = [], []
        for a, b in zip(bounds, bounds[1:]):
            hits = fmt.rest.findall(buf, a, b)
            per_segment.append(len(hits))
            found.extend(hits)
    text = b"\n".join(found)
    layout = fmt.layout(text, len(found))
    if layout is None:
        return None, None, None
    k, columns = layout
    has_nan = b"nan" in text
    if has_nan:  # (-)nan as a number no darknet prints for these values, back to NaN after parsing
        text = text.replace(b"-nan", b"nan").replace(b"nan", NAN_STANDIN)
    if any(word in text for word in (b"inf", b"e-", b"e+")):
        for label in fmt.labels:  # words that look like numbers: delete the labels one by one
            if label in text:
                text = text.replace(label, b" ")
    else:  # only digits, dots and signs are numbers here: one C pass turns the rest into spaces
        for label in fmt.labels:
            if any(ch in label for ch in b"0123456789.") and label in text:
                text = text.replace(label, b" ")
        text = text.translate(_TO_SPACE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns (and stops) at a token that is not a number
            numbers = np.fromstring(text.decode("ascii"), sep=" ")
    except (ValueError, DeprecationWarning, UnicodeDecodeError):
        return None, None, None
    if numbers.size != k * len(found):
        return None, None, None
    if has_nan:
        numbers[numbers == float(NAN_STANDIN)] = np.nan
    values = numbers.reshape(len(found), k)
    count = values[:, columns[5]]
    if not np.all(np.isfinite(count) & (count >= 0) & (count == np.floor(count))):
        return None, None, None  # a count that is no count (nan, -3, 2.5): the strict format decides per line
    return values, columns, per_segment


def _strict_numbers(buf: bytes, bounds: List[int], fmt: RegionFormat):
    rows, per_segment = [], []
    for a, b in zip(bounds, bounds[1:]):
        hits = fmt.strict.findall(buf, a, b)
        per_segment.append(len(hits))
        rows.extend([_f(g or None) for g in hit] for hit in hits)
    values = np.array(rows, dtype=float).reshape(len(rows), fmt.strict.groups)
    return values, fmt.strict_columns, per_segment


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
    """Whole-line blocks of a binary stream; over-long lines are cut to LINE_CAP (counted on parser)."""
    carry, skipping, first = b"", False, True
    while True:
        data = f.read(block_bytes)
        if first:
            _check_text(data, where)
            first = False
        if not data:
            break
        if skipping:  # inside an over-long line: drop bytes up to its end
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data, skipping = data[nl:], False
        buf = carry + data  # carry is at most LINE_CAP bytes, so this copy is bounded
        cut = buf.rfind(b"\n") + 1
        block, carry = buf[:cut], buf[cut:]
        parser.long_lines += _count_long_lines(block)
        if len(carry) > LINE_CAP:
            parser.long_lines += 1
            block += carry[:LINE_CAP] + b"\n"
            carry, skipping = b"", True
        if block:
            yield block
    if carry:
        parser.long_lines += _count_long_lines(carry)
        yield carry


def _count_long_lines(block: bytes) -> int:
    """Lines longer than LINE_CAP, found by jumping LINE_CAP bytes at a time: in ordinary text the
    backward search finds a newline within a few bytes, so this costs about len/LINE_CAP steps."""
    count, pos, end = 0, 0, len(block)
    while end - pos > LINE_CAP:
        nl = block.rfind(b"\n", pos, pos + LINE_CAP + 1)
        if nl >= 0:
            pos = nl + 1
            continue
        count += 1
        nl = block.find(b"\n", pos + LINE_CAP)
        if nl < 0:
            break
        pos = nl + 1
    return count


@dataclass
class LogParse:
    rows: List[Row]
    bytes: int
    long_lines: int
    missing_labels: int


def read_log(path: Union[str, Path]) -> LogParse:
    """Parse a whole log file; a file that is not a darknet log, or holds no iteration, is an error."""
    path = Path(path)
    parser, rows, size = Parser(), [], 0
    try:
        with open(path, "rb") as f:
            for block in blocks(f, parser, str(path)):
                size += len(block)
                rows.extend(parser.feed_block(block))
    except OSError as e:
        raise InputError(f"cannot read the log: {e.strerror}", str(path), "check the path") from None
    if not rows:
        raise InputError(f"no darknet iteration summary found in {size} bytes", str(path),
                         "give the output of `darknet detector train` (pjreddie, AlexeyAB or hank-ai); "
                         "if it is one, training never completed an iteration: read the log's last lines")
    return LogParse(rows, size, parser.long_lines, parser.missing_labels)


def parse_file(path: Union[str, Path]) -> List[Row]:
    return read_log(path).rows


def write_csv(rows: Iterable[Row], out: Union[str, Path]) -> int:
    from edge_app.atomic import atomic_path

    n = 0
    with atomic_path(out) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(FIELDS)
            for row in rows:
                # NaN (not measured) is written as an empty cell; v != v is the cheap NaN test
                writer.writerow(["" if v != v else v for v in _row_values(row)])
                n += 1
    return n


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
