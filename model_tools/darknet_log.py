"""darknet training logs → one metrics row per iteration, live (line by line) or from a file.

Understood, from both forks and hank-ai (see ../shared/reference/darknet.md):
- summaries: pjreddie `N: loss, avg avg, rate rate, s seconds, n images`; AlexeyAB
  `N: loss, avg avg loss, rate rate, s seconds, n images, h hours left` (or `time left`);
  hank-ai `N: loss=x, avg loss=x, last=..., best=..., mAP=..., rate=x, ..., n images, time remaining=...`
- region lines: YOLOv2 `Region Avg IOU: ..., Avg Recall: ...,  count: n`; YOLOv3 (pjreddie)
  `Region 82 Avg IOU: ..., .5R: ..., .75R: ...,  count: n` (with -nan for empty subdivisions);
  AlexeyAB `v3 (... loss, Normalizer: ...) Region 82 Avg (IOU: x, ...) ... count: n ...`
- AlexeyAB's -map lines (`mean_average_precision (mAP@0.50) = x`, `Last accuracy mAP@...`)
ANSI escapes, the terminal-title line (ends in BEL) and carriage returns are stripped first.
Region statistics are averaged over the lines since the previous summary, weighted by count.
Unknown lines are ignored.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Union

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")
NUM = r"(-?nan|-?inf|[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"

SUMMARY = re.compile(
    rf"^\s*(\d+):\s*{NUM},\s*{NUM}\s+avg(?: loss)?,\s*{NUM}\s+rate,\s*{NUM}\s+seconds,\s*(\d+)\s+images"
    rf"(?:,\s*{NUM}\s+(?:hours|time) left)?")
HANK = re.compile(rf"^\s*(\d+):\s*loss={NUM},\s*avg loss={NUM},.*?rate={NUM}.*?(\d+)\s+images")
HANK_MAP = re.compile(rf"mAP={NUM}")
REGION_V2 = re.compile(
    rf"Region Avg IOU:\s*{NUM},\s*Class:\s*{NUM},\s*Obj:\s*{NUM},\s*No Obj:\s*{NUM},\s*"
    rf"Avg Recall:\s*{NUM},\s*count:\s*(\d+)")
REGION_V3 = re.compile(
    rf"Region \d+ Avg IOU:\s*{NUM},\s*Class:\s*{NUM},\s*Obj:\s*{NUM},\s*No Obj:\s*{NUM},\s*"
    rf"\.5R:\s*{NUM},\s*\.75R:\s*{NUM},\s*count:\s*(\d+)")
REGION_AB = re.compile(
    rf"Region \d+ Avg \(IOU:\s*{NUM}(?:,\s*GIOU:\s*{NUM})?\)(?:,\s*Class:\s*{NUM},\s*Obj:\s*{NUM},"
    rf"\s*No Obj:\s*{NUM},\s*\.5R:\s*{NUM},\s*\.75R:\s*{NUM})?,\s*count:\s*(\d+)")
MAP_LINE = re.compile(rf"mean_average_precision \(mAP@[0-9.]+\)\s*=\s*{NUM}")


def _f(text: Optional[str]) -> float:
    if text is None:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


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


FIELDS = [f.name for f in fields(Row)]


@dataclass
class _Region:
    weight: float = 0.0
    sums: List[float] = field(default_factory=lambda: [0.0] * 5)
    count: int = 0

    def add(self, iou, cls, obj, no_obj, recall, count: int) -> None:
        self.count += count
        values = (iou, cls, obj, no_obj, recall)
        if count > 0 and all(not math.isnan(v) for v in values):
            self.weight += count
            self.sums = [s + v * count for s, v in zip(self.sums, values)]

    def means(self) -> List[float]:
        return [s / self.weight for s in self.sums] if self.weight else [math.nan] * 5


class Parser:
    """Feed lines; each completed iteration summary comes back as a Row."""

    def __init__(self):
        self._region = _Region()
        self._map = math.nan

    def feed(self, line: str) -> Optional[Row]:
        if "\x1b" in line:
            line = ANSI.sub("", line)
        if "\r" in line:
            line = line.replace("\r", "\n")
        row = None
        for part in line.split("\n"):
            if "\x07" in part:  # AlexeyAB's terminal title: "i/max: loss=... hours left=...\a"
                part = part.split("\x07")[-1]
            got = self._feed_one(part)
            row = got or row
        return row

    def _feed_one(self, line: str) -> Optional[Row]:
        # cheap substring tests pick the one or two patterns a line can match
        if "Region" in line:
            m = REGION_V2.search(line)
            if m:
                self._region.add(*(_f(g) for g in m.groups()[:5]), int(m.group(6)))
                return None
            m = REGION_V3.search(line)
            if m:
                iou, cls, obj, no_obj, r5, _r75, count = m.groups()
                self._region.add(_f(iou), _f(cls), _f(obj), _f(no_obj), _f(r5), int(count))
                return None
            m = REGION_AB.search(line)
            if m:
                iou, _giou, cls, obj, no_obj, r5, _r75, count = m.groups()
                self._region.add(_f(iou), _f(cls), _f(obj), _f(no_obj), _f(r5), int(count))
            return None
        if "mean_average_precision" in line:
            m = MAP_LINE.search(line)
            if m:
                self._map = _f(m.group(1))
            return None
        if "avg" not in line:
            return None
        m = SUMMARY.match(line)
        if m:
            it, loss, avg, rate, secs, images, left = m.groups()
            return self._emit(int(it), _f(loss), _f(avg), _f(rate), _f(secs), int(images), _f(left))
        m = HANK.match(line)
        if m:
            it, loss, avg, rate, images = m.groups()
            mm = HANK_MAP.search(line)
            if mm:
                self._map = _f(mm.group(1))
                if self._map > 1:  # hank-ai prints percent
                    self._map /= 100.0
            return self._emit(int(it), _f(loss), _f(avg), _f(rate), math.nan, int(images), math.nan)
        return None

    def _emit(self, iteration, loss, avg, rate, seconds, images, hours_left) -> Row:
        iou, cls, obj, no_obj, recall = self._region.means()
        row = Row(iteration, loss, avg, rate, seconds, images, hours_left, self._map, iou, cls, obj,
                  no_obj, recall, self._region.count)
        self._region = _Region()
        self._map = math.nan
        return row


def parse_lines(lines: Iterable[str]) -> Iterator[Row]:
    parser = Parser()
    for line in lines:
        row = parser.feed(line)
        if row is not None:
            yield row


def parse_file(path: Union[str, Path]) -> List[Row]:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return list(parse_lines(f))


def write_csv(rows: Iterable[Row], out: Union[str, Path]) -> int:
    from edge_app.atomic import atomic_path

    n = 0
    with atomic_path(out) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                                 for k, v in asdict(row).items()})
                n += 1
    return n


def read_csv(path: Union[str, Path]) -> List[Row]:
    rows = []
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            values = {}
            for name in FIELDS:
                raw = record.get(name, "")
                if name in ("iteration", "images", "region_count"):
                    values[name] = int(raw or 0)
                else:
                    values[name] = float(raw) if raw not in ("", None) else math.nan
            rows.append(Row(**values))
    return rows
