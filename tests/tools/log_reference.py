"""A straightforward training-log reader for the differential tests: the regexes the parser used
before its templates (written by hand, independently of model_tools/log_grammar.py), tried on
each line in turn (its first LINE_CAP bytes), with the sums kept in plain Python floats. Slow and obviously right; the
parser must give the same rows, bit for bit."""
from __future__ import annotations

import math
import re
from typing import Dict, List

from model_tools.darknet_log import LINE_CAP

NUM = rb"(-?nan|-?inf|[-+]?\d{1,40}(?:\.\d{0,40})?(?:[eE][-+]?\d{1,3})?)(?:\([a-z]{1,8}\))?"
INT = rb"(-?\d{1,15})"
COLOUR = rb"(?:\x1b\[[0-9;]{0,12}m)?"
_C = rb", {1,4}"
_FIELD = rb"(?:, [^,\n]{0,100}){0,8}?"

SUMMARY = re.compile(rb" {0,8}(\d{1,10}): {0,4}" + NUM + rb", {0,4}" + NUM + rb" avg(?: loss)?, {0,4}" + NUM
                     + rb" rate, {0,4}" + NUM + rb" seconds, {0,4}" + INT + rb" images(?:, {0,4}" + NUM
                     + rb" (?:hours|time) left)?")
HANK = re.compile(rb"(?:\x1b\]2;[^\x07\n]{0,200}\x07)?" + COLOUR + rb"(\d{1,10})" + COLOUR + rb": loss=" + COLOUR
                  + NUM + COLOUR + rb", avg loss=" + COLOUR + NUM + COLOUR + _FIELD + rb", rate=" + NUM + _FIELD
                  + rb", " + INT + rb" images")
MAP = re.compile(rb"(?: |-> )?mean[ _]average[ _]precision \(mAP@[0-9.]{1,8}\) ?= ?" + COLOUR + NUM + rb"( ?%)?")
# (pattern, groups holding iou, class, obj, no_obj, recall, count; matched anywhere in a line?)
REGIONS = [
    (re.compile(rb"Region Avg IOU: " + NUM + rb", Class: " + NUM + rb", Obj: " + NUM + rb", No Obj: " + NUM
                + rb", Avg Recall: " + NUM + _C + rb"count: (\d{1,12})"), (0, 1, 2, 3, 4, 5), False),
    (re.compile(rb"Region avg IoU: " + NUM + rb", class: " + NUM + rb", obj: " + NUM + rb", no obj: " + NUM
                + rb", avg recall: " + NUM + _C + rb"count: (\d{1,12})"), (0, 1, 2, 3, 4, 5), False),
    (re.compile(rb"Region \d{1,6} Avg IOU: " + NUM + rb", Class: " + NUM + rb", Obj: " + NUM + rb", No Obj: "
                + NUM + rb", \.5R: " + NUM + rb", \.75R: " + NUM + _C + rb"count: (\d{1,12})"),
     (0, 1, 2, 3, 4, 6), False),
    (re.compile(rb"Avg \(IOU: " + NUM + rb"(?:, GIOU: " + NUM + rb"\), Class: " + NUM + rb", Obj: " + NUM
                + rb", No Obj: " + NUM + rb", \.5R: " + NUM + rb", \.75R: " + NUM + rb"|\))" + _C
                + rb"count: (\d{1,12})"), (0, 2, 3, 4, 5, 7), True),
]
FIELDS = ["iteration", "loss", "avg_loss", "rate", "seconds", "images", "hours_left", "map", "region_iou",
          "region_class", "region_obj", "region_no_obj", "region_recall", "region_count"]


def _f(text) -> float:
    return math.nan if text is None else float(text)


def rows(data: bytes) -> List[Dict]:
    """One dict per iteration summary, keys FIELDS."""
    out: List[Dict] = []
    sums, weights, count = [0.0] * 5, [0.0] * 5, 0.0
    for line in data.replace(b"\r", b"\n").split(b"\n"):
        line = line[:LINE_CAP]  # the parser ignores what lies past LINE_CAP bytes in a line
        m = SUMMARY.match(line)
        if m:
            it, loss, avg, rate, secs, images, left = m.groups()
            row = dict(iteration=int(it), loss=_f(loss), avg_loss=_f(avg), rate=_f(rate), seconds=_f(secs),
                       images=int(images), hours_left=_f(left))
        else:
            m = HANK.match(line)
            row = None
            if m:
                it, loss, avg, rate, images = m.groups()
                row = dict(iteration=int(it), loss=_f(loss), avg_loss=_f(avg), rate=_f(rate), seconds=math.nan,
                           images=int(images), hours_left=math.nan)
        if row is not None:  # this line ends the iteration whose region lines came before it
            for name, s, w in zip(("region_iou", "region_class", "region_obj", "region_no_obj", "region_recall"),
                                  sums, weights):
                row[name] = s / w if w > 0 else math.nan
            row["region_count"] = int(count)
            row["map"] = math.nan
            out.append(row)
            sums, weights, count = [0.0] * 5, [0.0] * 5, 0.0
        m = MAP.match(line)
        if m and out:
            value, percent = m.groups()
            out[-1]["map"] = _f(value) / (100.0 if percent else 1.0)
        for pattern, groups, anywhere in REGIONS:
            for m in (pattern.finditer(line) if anywhere else filter(None, [pattern.match(line)])):
                values = [_f(g or None) for g in m.groups()]
                n = values[groups[5]]
                count += n
                for i in range(5):
                    v = values[groups[i]]
                    if math.isfinite(v) and n > 0:
                        sums[i] += v * n
                        weights[i] += n
    return out
