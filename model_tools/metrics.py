"""Detection metrics, pure functions: AP, mAP and the counts at a confidence threshold.

Matching (both definitions): detections of all images, sorted by falling score; each one is
matched to the truth of its class with the highest IoU, if that IoU is > the IoU threshold
(0.5). The first detection to hit a truth is a TP; later hits on it and detections matching
nothing are FPs. Difficult truths are not in the recall's denominator, and a detection matched
to one is ignored (neither TP nor FP). Which truth a detection is matched to when difficult
ones are near: ours as the VOC devkit (and darknet's scripts/voc_eval.py, which scores
`detector valid` output — pjreddie's only route: it has no `detector map` and no difficult=),
the best IoU among all the truths, difficult or not; AlexeyAB's the best among the ordinary
truths, a difficult one only when no ordinary truth is over the threshold (so a detection
overlapping both is a TP, or an FP if that truth is taken).
AP: area under the monotone precision envelope at every recall step (points=0, VOC2010+,
darknet's default), or the mean of the best precision at recall >= i/(points-1) (points=11:
VOC2007, 101: COCO-style).

Two definitions of the rest, `reference=False` (ours) and `reference=True` (AlexeyAB's
`detector map`, reproduced):
- mAP: ours averages the classes that have truths; darknet divides by every class, a class
  with no truth counting 0.
- TP/FP at the confidence threshold: ours takes the matching above (score order); darknet
  walks each image's boxes in its own order (the order the caller gives the detections in,
  see evaluate.darknet_order) and counts a TP when the box's best truth was not claimed by an
  earlier box of that image — at any score.
- detections_count: ours counts the detections at the threshold; darknet all of them but the
  ignored ones.
- FP at the confidence threshold: darknet also counts there the detections it ignores for AP
  (those matched to a difficult truth); ours does not.
"""
from __future__ import annotations

import math
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from edge_app.errors import InputError

# (image id, class, score, x1, y1, x2, y2)
Detection = Tuple[str, int, float, float, float, float, float]
# (image id, class, x1, y1, x2, y2, difficult)
Truth = Tuple[str, int, float, float, float, float, bool]


class Detections(abc.Sequence):
    """Detections held as columns: the image ids (`stems`, each once) and, per detection, its
    image (an index into stems), class, score and box (n, 4) x1, y1, x2, y2, all float64 as
    Detection's floats are. To whatever walks it, the sequence of Detection tuples those columns
    describe; match, compute and evaluate's cache read the columns (an early checkpoint has
    100k detections: tuples are made only where they are asked for)."""

    __slots__ = ("stems", "image", "class_id", "score", "boxes")

    def __init__(self, stems: Sequence[str], image: np.ndarray, class_id: np.ndarray, score: np.ndarray,
                 boxes: np.ndarray):
        self.stems = list(stems)
        self.image = np.asarray(image, np.int64)
        self.class_id = np.asarray(class_id, np.int64)
        self.score = np.asarray(score, np.float64)
        self.boxes = np.asarray(boxes, np.float64).reshape(len(self.score), 4)

    @classmethod
    def of(cls, detections: Sequence[Detection]) -> "Detections":
        """The columns of Detection tuples (the same object if it is one already)."""
        if isinstance(detections, Detections):
            return detections
        stems: Dict[str, int] = {}
        image = [stems.setdefault(d[0], len(stems)) for d in detections]
        values = np.array([d[1:7] for d in detections], np.float64).reshape(len(detections), 6)
        return cls(list(stems), np.array(image, np.int64), [d[1] for d in detections], values[:, 1],
                   values[:, 2:])

    def __len__(self) -> int:
        return len(self.score)

    def __iter__(self):
        stems = self.stems
        return zip([stems[i] for i in self.image.tolist()], self.class_id.tolist(), self.score.tolist(),
                   *self.boxes.T.tolist())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self)[index]
        box = self.boxes[index].tolist()
        return (self.stems[int(self.image[index])], int(self.class_id[index]), float(self.score[index]), *box)

    def __eq__(self, other) -> bool:
        return isinstance(other, abc.Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays, like a list


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes (x1, y1, x2, y2). Plain Python floats: the same IEEE double arithmetic as
    numpy's float64, without numpy's cost per call (a detection meets one or two truths)."""
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-12) if union > 0 else 0.0


def average_precision(recall: np.ndarray, precision: np.ndarray, points: int = 0) -> float:
    """points=0: area under the monotone envelope (VOC2010+); 11: VOC2007 11-point;
    101: COCO-style 101-point."""
    if len(recall) == 0:
        return 0.0
    if points:
        total = 0.0
        for point in range(points):
            above = precision[recall >= point * 1.0 / (points - 1)]  # darknet's arithmetic
            total += above.max() if len(above) else 0.0
        return float(total / points)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


@dataclass
class ClassResult:
    name: str
    ap: float
    truths: int
    tp: int  # at the confidence threshold
    fp: int
    recall: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    precision: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


@dataclass
class Metrics:
    classes: List[ClassResult]
    map: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    avg_iou: float
    iou_threshold: float
    conf_threshold: float
    points: int
    images: int = 0
    seconds: float = 0.0
    detections_count: int = 0
    reference: bool = False

    def table(self) -> str:
        lines = [f" detections_count = {self.detections_count}, unique_truth_count = "
                 f"{sum(c.truths for c in self.classes)}"
                 + ("   (darknet's definitions)" if self.reference else "")]
        for k, c in enumerate(self.classes):
            lines.append(f"class_id = {k}, name = {c.name}, ap = {100 * c.ap:.2f}%   \t (TP = {c.tp}, FP = {c.fp}) ")
        lines.append(f" for conf_thresh = {self.conf_threshold:.2f}, precision = {self.precision:.2f}, "
                     f"recall = {self.recall:.2f}, F1-score = {self.f1:.2f} ")
        lines.append(f" for conf_thresh = {self.conf_threshold:.2f}, TP = {self.tp}, FP = {self.fp}, "
                     f"FN = {self.fn}, average IoU = {100 * self.avg_iou:.2f} % ")
        kind = {0: "area under the curve", 11: "11-point", 101: "101-point"}.get(self.points, f"{self.points}-point")
        lines.append(f" IoU threshold = {100 * self.iou_threshold:.0f} %, used {kind} ")
        lines.append(f" mean average precision (mAP@{self.iou_threshold:.2f}) = {self.map:.6f}, or "
                     f"{100 * self.map:.2f} % ")
        return "\n".join(lines) + "\n"

    def summary(self) -> Dict[str, float]:
        return {"map": self.map, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "avg_iou": self.avg_iou,
                **{f"ap_{c.name}": c.ap for c in self.classes}}


PAIR_BUDGET = 2 ** 20  # (detection, truth) pairs matched at once: ~150 MB of temporaries


def match(detections: Sequence[Detection], truths: Sequence[Truth], iou_threshold: float = 0.5,
          reference: bool = False):
    """The matching (see the module's docstring; reference=True: darknet's choice of truth):
    (score order (an index array), outcome per detection: 1 TP, 0 FP, -1 ignored (matched to a difficult truth),
    best IoU, index of the truth matched or -1). A detection's outcome depends only on its own
    image's detections and truths.

    Each detection claims the truth of its image and class it overlaps most (the first of
    equals, in truth order) if that IoU is over the threshold; the first claim of an ordinary
    truth in score order is the TP. Computed over the (detection, candidate truth) pairs of
    many detections at once (PAIR_BUDGET); iou()'s arithmetic, element by element."""
    columns = Detections.of(detections)
    n = len(columns)
    # by falling score, ties in list order (a stable sort)
    order = np.argsort(-columns.score, kind="stable")
    outcome = np.zeros(n, int)
    best_iou = np.zeros(n)
    claimed = np.full(n, -1)
    # a group: the truths of one image and class, numbered by (image, class)
    image_of = {stem: i for i, stem in enumerate(columns.stems)}
    truth_image = np.array([image_of.setdefault(t[0], len(image_of)) for t in truths], np.int64)
    truth_class = np.array([t[1] for t in truths], np.int64)
    width = int(max(truth_class.max(initial=0), columns.class_id.max(initial=0))) + 1
    keys, truth_group = np.unique(truth_image * width + truth_class, return_inverse=True)
    wanted = columns.image * width + columns.class_id
    at = np.searchsorted(keys, wanted)
    known = at < len(keys)
    known[known] = keys[at[known]] == wanted[known]
    detection_group = np.where(known, at, -1)
    # each group's truths in truth order: by_group[first[g]:first[g] + count[g]]
    by_group = np.argsort(truth_group, kind="stable")
    count = np.bincount(truth_group, minlength=len(keys))
    first = np.cumsum(count) - count
    has = np.flatnonzero(detection_group >= 0)
    per = count[detection_group[has]]  # candidates of each detection that has any
    detection_boxes = columns.boxes[has]
    truth_boxes = np.array([t[2:6] for t in truths], float).reshape(len(truths), 4)
    truth_hard = np.array([bool(t[6]) for t in truths], bool)
    best = np.zeros(len(has))
    chosen = np.zeros(len(has), np.int64)
    # a few detections at a time, up to PAIR_BUDGET pairs: a crowded image at threshold 0.005
    # has thousands of detections and hundreds of truths per class
    ends = np.cumsum(per)
    lo = 0
    while lo < len(has):
        hi = max(lo + 1, int(np.searchsorted(ends, ends[lo] - per[lo] + PAIR_BUDGET, side="right")))
        best[lo:hi], chosen[lo:hi] = _claims(detection_boxes[lo:hi], per[lo:hi], first[detection_group[has[lo:hi]]],
                                             by_group, truth_boxes, truth_hard, iou_threshold, reference)
        lo = hi
    over = best > iou_threshold
    i, t = has[over], chosen[over]
    best_iou[i], claimed[i] = best[over], t
    hard = truth_hard[t]
    outcome[i[hard]] = -1
    # an ordinary truth's TP is its first claim in score order; later claims stay FPs
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    i, t = i[~hard], t[~hard]
    by_claim = np.lexsort((rank[i], t))
    firsts = by_claim[np.r_[True, t[by_claim][1:] != t[by_claim][:-1]]] if len(by_claim) else by_claim
    outcome[i[firsts]] = 1
    return order, outcome, best_iou, claimed


def _claims(boxes: np.ndarray, per: np.ndarray, group_first: np.ndarray, by_group: np.ndarray,
            truth_boxes: np.ndarray, truth_hard: np.ndarray, iou_threshold: float, reference: bool):
    """For each detection box: its best IoU among its `per` candidate truths
    (by_group[group_first:group_first + per]) and the truth giving it, the first of equals."""
    starts = np.cumsum(per) - per  # each detection's first pair
    owner = np.repeat(np.arange(len(per)), per)
    pair_truth = by_group[np.repeat(group_first - starts, per) + np.arange(len(owner))]
    a, b = boxes[owner], truth_boxes[pair_truth]
    iw = np.maximum(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0)
    ih = np.maximum(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    if reference:  # an ordinary truth over the threshold wins over any difficult one
        difficult = truth_hard[pair_truth]
        ordinary_hit = np.maximum.reduceat((overlap > iou_threshold) & ~difficult, starts)
        overlap[difficult & np.repeat(ordinary_hit, per)] = 0.0
    best = np.maximum.reduceat(overlap, starts)
    at_best = np.flatnonzero(overlap == np.repeat(best, per))
    _, first_best = np.unique(owner[at_best], return_index=True)
    return best, pair_truth[at_best[first_best]]


def compute(detections: Sequence[Detection], truths: Sequence[Truth], names: Sequence[str],
            iou_threshold: float = 0.5, conf_threshold: float = 0.25, points: int = 0,
            reference: bool = False) -> Metrics:
    """Metrics of detections against truths; reference=True: `detector map`'s definitions
    (see the module's docstring), with the detections of each image in darknet's box order."""
    columns = Detections.of(detections)
    order, outcome, best_iou, claimed = match(columns, truths, iou_threshold, reference)
    if reference:
        at_conf_tp = _darknet_tp_at_conf(detections, claimed, truths, conf_threshold)
    results = []
    all_tp = all_fp = 0
    iou_sum = 0.0
    # in score order: each detection's class, score, outcome
    ranked = order
    ranked_class = columns.class_id[ranked]
    ranked_score = columns.score[ranked]
    ranked_outcome = outcome[ranked]
    for k, name in enumerate(names):
        n_truth = sum(1 for t in truths if t[1] == k and not t[6])
        counted = (ranked_class == k) & (ranked_outcome >= 0)
        hits = ranked_outcome[counted]
        tp_cum = np.cumsum(hits == 1)
        fp_cum = np.cumsum(hits == 0)
        recall = tp_cum / n_truth if n_truth else np.zeros(len(hits))
        precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
        ap = average_precision(recall, precision, points) if n_truth else 0.0
        if reference:  # darknet: prob > thresh; FPs include boxes that hit only a difficult truth
            at_conf = ranked[(ranked_class == k) & (ranked_score > conf_threshold)]
            hit = at_conf_tp[at_conf]
        else:
            at_conf = ranked[counted & (ranked_score >= conf_threshold)]
            hit = outcome[at_conf] == 1
        tp = int(np.count_nonzero(hit))
        iou_sum += sum(best_iou[at_conf[hit]].tolist())  # in score order, one by one, as ever
        fp = len(at_conf) - tp
        all_tp += tp
        all_fp += fp
        results.append(ClassResult(name, ap, n_truth, tp, fp, recall, precision))
    n_truth_all = sum(c.truths for c in results)
    precision = all_tp / (all_tp + all_fp) if all_tp + all_fp else 0.0
    recall = all_tp / n_truth_all if n_truth_all else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    averaged = [c.ap for c in results] if reference else [c.ap for c in results if c.truths]
    counted = int(np.sum(outcome >= 0)) if reference else all_tp + all_fp
    return Metrics(results, float(np.mean(averaged)) if averaged else 0.0, precision, recall, f1,
                   all_tp, all_fp, n_truth_all - all_tp, iou_sum / (all_tp + all_fp) if all_tp + all_fp else 0.0,
                   iou_threshold, conf_threshold, points, detections_count=counted, reference=reference)


def _darknet_tp_at_conf(detections: Sequence[Detection], claimed: np.ndarray, truths: Sequence[Truth],
                        conf_threshold: float) -> np.ndarray:
    """darknet's TP at the threshold: in each image's box order (the list's order), a box above
    the threshold whose best truth no earlier box of that image claimed, at any score."""
    tp = np.zeros(len(detections), bool)
    seen: Dict[str, set] = {}
    for i, d in enumerate(detections):
        claims = seen.setdefault(d[0], set())
        t = int(claimed[i])
        if d[2] > conf_threshold and t >= 0 and not truths[t][6] and t not in claims:
            tp[i] = True
        if t >= 0:
            claims.add(t)
    return tp


# --------------------------------------------------------------------------------------------
# darknet's own detections


def read_comp4(prefix: Union[str, Path], names: Sequence[str]) -> List[Detection]:
    """Detections darknet's `detector valid` wrote, both forks: <prefix><class name>.txt (e.g.
    results/comp4_det_test_Circle.txt), lines `<image id> <prob> <x1> <y1> <x2> <y2>` in
    1-based pixels (darknet adds 1 and clips to [1, w] / [1, h]); returned 0-based.
    A class with no file is an InputError (darknet writes one per class, even empty)."""
    found: List[Detection] = []
    for k, name in enumerate(names):
        path = Path(f"{prefix}{name}.txt")
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read darknet's detections for class {name!r}: {exc.strerror}", str(path),
                             "run `darknet detector valid` with the same .names (it writes one file per class)") from None
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) != 6:
                    raise ValueError(f"expected 6 fields, found {len(fields)}")
                prob, x1, y1, x2, y2 = (float(v) for v in fields[1:])
                if not all(math.isfinite(v) for v in (prob, x1, y1, x2, y2)):
                    raise ValueError("a value is not finite")
            except ValueError as exc:
                raise InputError(f"not a detection line: {exc}", f"{path}:{number}",
                                 "pass the files `detector valid` wrote, unedited") from None
            found.append((fields[0], k, prob, x1 - 1, y1 - 1, x2 - 1, y2 - 1))
    return found


def comp4_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Tuple[float, ...]:
    """A box as darknet's print_detector_detections writes it, read back 0-based: clipped to
    [0, w-1] x [0, h-1] (1-based [1, w]). Our detections pass through this to be compared with
    darknet's own files on the same footing."""
    return (max(x1, 0.0), max(y1, 0.0), min(x2, width - 1.0), min(y2, height - 1.0))
