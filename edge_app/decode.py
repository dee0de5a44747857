"""YOLOv2 region decode and darknet's NMS, in numpy, vectorised over cells and anchors.

raw output (1, num*(coords+1+classes), H, W), channel order per anchor: tx, ty, tw, th, to,
class scores. darknet's region semantics:
  x = (col + σ(tx)) / W      y = (row + σ(ty)) / H         (box centre)
  w = exp(tw) * anchor_w / W h = exp(th) * anchor_h / H   (anchors in grid cells)
Boxes travel as corners x ± w/2, y ± h/2 relative to the network input until mapped to the frame.
  objectness = σ(to); class probability = softmax (σ when the cfg says softmax=0)
  prob = objectness * class probability, kept where > threshold (objectness too)
NMS follows do_nms_sort: per class, by falling prob, drop boxes whose IoU with a kept box of
the same class is > the NMS threshold. IoU is taken before any clamping, as darknet does.

A batch of outputs (n, channels, H, W) decodes in one pass (decode_batch): the evaluator scores
a checkpoint's whole validation set so, and the Pi's single frame is a batch of one — the same
arithmetic element by element, so both find the same detections to the bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from edge_app import native
from edge_app.detection import Detection
from edge_app.preprocess import boxes_to_frame


@dataclass(frozen=True)
class RegionSpec:
    classes: int
    num: int
    anchors: np.ndarray  # (num, 2) in grid cells
    softmax: bool = True
    coords: int = 4

    @classmethod
    def from_info(cls, info) -> "RegionSpec":
        anchors = np.asarray(info.anchors, np.float32).reshape(info.num, 2)
        return cls(info.classes, info.num, anchors, info.softmax, info.coords)


@dataclass(frozen=True)
class Candidates:
    """Detections before NMS; boxes are (n, 4) x1, y1, x2, y2 relative to the network input.
    frame: which output of the batch region_candidates read each one from (ascending); None
    for candidates made otherwise (of one frame, as the tests make them)."""

    boxes: np.ndarray
    score: np.ndarray
    class_id: np.ndarray
    frame: Optional[np.ndarray] = None

    def take(self, index) -> "Candidates":
        return Candidates(self.boxes[index], self.score[index], self.class_id[index],
                          None if self.frame is None else self.frame[index])

    def __len__(self) -> int:
        return len(self.score)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # = 1 / (1 + exp(-x)) to an ulp, without overflow warnings for large |x|
    return 0.5 + 0.5 * np.tanh(0.5 * x)


# e^20 grid cells is far beyond any frame; capping tw/th there keeps an untrained model's
# wild outputs finite (boxes are clipped to the frame afterwards anyway)
MAX_LOG_SCALE = 20.0


def region_candidates(raw: np.ndarray, spec: RegionSpec, threshold: float) -> Candidates:
    """Every (box, class) whose prob = objectness * class probability is > threshold, in each
    output of raw (n, channels, H, W); `frame` says which, in ascending order."""
    grid_h, grid_w = raw.shape[-2:]
    per_anchor = spec.coords + 1 + spec.classes
    out = raw.reshape(-1, spec.num, per_anchor, grid_h, grid_w)
    # prob <= objectness, so only cells whose objectness passes can yield a detection; compare
    # in logit space (σ(x) > t ⇔ x > ln(t/(1-t))), with a margin: the exact test is prob > t
    floor = np.log(threshold / (1 - threshold)) - 1e-3 if 0 < threshold < 1 else -np.inf
    frame, anchor, row, col = np.nonzero(out[:, :, spec.coords] > floor)
    if len(anchor) == 0:  # an empty scene, a camera's most common frame: skip the rest
        return Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                          np.zeros(0, np.int64))
    objectness = _sigmoid(out[frame, anchor, spec.coords, row, col])
    logits = out[frame, anchor, spec.coords + 1:, row, col]  # (cells, classes)
    if spec.softmax:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        class_prob = e / e.sum(axis=1, keepdims=True)
    else:
        class_prob = _sigmoid(logits)
    prob = objectness[:, None] * class_prob
    cell, class_id = np.nonzero(prob > threshold)  # cell ascending: a cell's classes side by side
    # each box once, for the cells with a candidate (an untrained model's cell has one per class)
    first = np.empty(len(cell), bool)
    first[:1] = True
    np.not_equal(cell[1:], cell[:-1], out=first[1:])
    used = cell[first]
    frame, anchor, row, col = frame[used], anchor[used], row[used], col[used]
    t = out[frame, anchor, :4, row, col]  # (cells, 4): tx, ty, tw, th
    grid = np.array([grid_w, grid_h], np.float32)
    centre = (np.stack([col, row], axis=1) + _sigmoid(t[:, :2])) / grid
    half = np.exp(np.minimum(t[:, 2:], MAX_LOG_SCALE)) * spec.anchors[anchor] / (2 * grid)
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    if len(used) < len(cell):
        slot = np.cumsum(first) - 1  # each candidate's cell among the used ones
        boxes, frame = boxes[slot], frame[slot]
    return Candidates(boxes, prob[cell, class_id], class_id, frame)


def _iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """IoU of every pair of (x1, y1, x2, y2) boxes, as darknet's box_iou computes it."""
    x1, y1, x2, y2 = boxes.T
    iw = np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1)
    ih = np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1)
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area = (x2 - x1) * (y2 - y1)
    # a box whose exp(tw) underflowed has no area; max() turns its 0/0 into 0 (no overlap)
    return inter / np.maximum(area[:, None] + area - inter, 1e-30)


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a[k] with b[k] for each row k: _iou_matrix's arithmetic, for chosen pairs only."""
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-30)


def _greedy(over: np.ndarray) -> np.ndarray:
    """Keep-mask of greedy suppression in score order: box i, if still kept, drops every later
    box j with over[i, j]. A suppressed box suppresses nothing (darknet skips boxes whose prob
    it zeroed). The diagonal must be False."""
    keep = np.ones(len(over), bool)
    for i in np.flatnonzero(over.any(axis=1)).tolist():
        if keep[i]:
            keep[i + 1:] &= ~over[i, i + 1:]
    return keep


def _suppress(boxes: np.ndarray, starts: np.ndarray, threshold: float) -> np.ndarray:
    """Keep-mask of darknet's suppression within each group of rows (a class of a frame):
    boxes (n, 4) float64, the groups one after the other, each best first; starts: the groups'
    first rows and n. The compiled library's (dknms.c) when it is built — its arithmetic is
    _iou_matrix's, so the mask is the same — else _iou_matrix and _greedy group by group."""
    keep = np.ones(len(boxes), bool)
    lib = native.library()
    if lib is not None:
        corners = np.ascontiguousarray(np.asarray(boxes, np.float64).T)  # x1, y1, x2, y2: a row each
        starts = np.ascontiguousarray(starts, np.int64)
        lib.dk_nms_groups(*(row.ctypes.data for row in corners), starts.ctypes.data, len(starts) - 1, threshold,
                          keep.ctypes.data)
        return keep
    for start, stop in zip(starts[:-1].tolist(), starts[1:].tolist()):
        if stop - start > 1:
            over = _iou_matrix(boxes[start:stop]) > threshold
            np.fill_diagonal(over, False)
            keep[start:stop] = _greedy(over)
    return keep


# Up to this many candidates one masked pairwise matrix beats a Python loop over classes; up to
# _DENSE_MAX the IoU of every pair is cheaper than choosing the same-class pairs first. With the
# compiled library, any group beyond _DENSE_MAX goes to it (_suppress).
_SINGLE_MATRIX_MAX = 400
_DENSE_MAX = 64


def nms(c: Candidates, threshold: float) -> np.ndarray:
    """Indices kept by darknet's do_nms_sort, best first."""
    order = np.argsort(-c.score, kind="stable")
    if len(c) < 2 or threshold <= 0:
        return order
    if len(c) <= _DENSE_MAX:  # a few boxes: the whole matrix costs less than picking pairs
        ranked = c.take(order)
        over = _iou_matrix(ranked.boxes) > threshold
        over &= ranked.class_id[:, None] == ranked.class_id  # classes never suppress each other
        np.fill_diagonal(over, False)
        return order[_greedy(over)]
    compiled = native.library() is not None
    if len(c) <= _SINGLE_MATRIX_MAX and not compiled:
        ranked = c.take(order)
        # IoU only where it can matter: a box and a later one of its class (classes never
        # suppress each other); at low thresholds most pairs are of different classes
        first, second = np.nonzero(np.triu(ranked.class_id[:, None] == ranked.class_id, 1))
        hit = _pair_iou(ranked.boxes[first], ranked.boxes[second]) > threshold
        over = np.zeros((len(c), len(c)), bool)
        over[first[hit], second[hit]] = True
        return order[_greedy(over)]
    # many candidates (evaluation at threshold 0.005), or past _DENSE_MAX with the compiled
    # library: one class at a time
    by_class = np.lexsort((-c.score, c.class_id))
    starts = np.r_[0, np.flatnonzero(np.diff(c.class_id[by_class])) + 1, len(c)]
    kept = by_class[_suppress(c.boxes[by_class], starts, threshold)]
    if len(c) <= _SINGLE_MATRIX_MAX:  # in the order the pairwise matrix above gives them
        chosen = np.zeros(len(c), bool)
        chosen[kept] = True
        return order[chosen[order]]
    return kept[np.argsort(-c.score[kept], kind="stable")]


def _nms_frames(c: Candidates, bounds: np.ndarray, threshold: float) -> np.ndarray:
    """nms() of each frame's rows (frame i: rows bounds[i]:bounds[i + 1]), concatenated: the
    compiled library's dk_nms_frames in one call when it is built (its sorts and suppression are
    nms()'s, order and ties included), else nms() frame by frame."""
    lib = native.library()
    if lib is None or c.score.dtype != np.float32:  # (region_candidates' scores are float32)
        spans = zip(bounds[:-1].tolist(), bounds[1:].tolist())
        return np.concatenate([np.zeros(0, np.intp)] + [start + nms(c.take(slice(start, stop)), threshold)
                                                         for start, stop in spans if stop > start])
    corners = np.ascontiguousarray(np.asarray(c.boxes, np.float64).T)
    score = np.ascontiguousarray(c.score, np.float32)
    class_id = np.ascontiguousarray(c.class_id, np.int64)
    starts = np.ascontiguousarray(bounds, np.int64)
    kept = np.empty(len(c), np.int64)
    count = lib.dk_nms_frames(*(row.ctypes.data for row in corners), score.ctypes.data, class_id.ctypes.data,
                              starts.ctypes.data, len(starts) - 1, threshold, _SINGLE_MATRIX_MAX, kept.ctypes.data)
    if count < 0:
        raise MemoryError("dk_nms_frames: no memory for its scratch arrays")
    return kept[:count]


class Found(NamedTuple):
    """Detections of a batch of outputs: frame (which output), class_id, score and boxes (n, 4)
    x1, y1, x2, y2 in frame pixels, ordered by frame and, within one, best first."""

    frame: np.ndarray
    class_id: np.ndarray
    score: np.ndarray
    boxes: np.ndarray


def decode_batch(raw: np.ndarray, spec: RegionSpec, frame_sizes: Sequence[Tuple[int, int]], net_w: int,
                 net_h: int, resize_mode: str, conf_threshold: float, nms_threshold: float) -> Found:
    """Raw region outputs (n, channels, H, W) of n frames of frame_sizes (width, height) →
    their detections in frame pixels. NMS runs per frame (boxes of two frames never meet)."""
    candidates = region_candidates(raw, spec, conf_threshold)
    if len(candidates) == 0:  # an empty scene, a camera's most common frame
        return Found(candidates.frame, candidates.class_id, candidates.score, np.zeros((0, 4)))
    if len(frame_sizes) == 1:  # the Pi's frame: no split, the frame size as plain ints
        kept = candidates.take(nms(candidates, nms_threshold))
        boxes = boxes_to_frame(kept.boxes, *frame_sizes[0], net_w, net_h, resize_mode)
        return Found(kept.frame, kept.class_id, kept.score, boxes)
    bounds = np.searchsorted(candidates.frame, np.arange(len(frame_sizes) + 1))
    kept = candidates.take(_nms_frames(candidates, bounds, nms_threshold))
    sizes = np.asarray(frame_sizes, np.int64).reshape(-1, 2)[kept.frame]
    boxes = boxes_to_frame(kept.boxes, sizes[:, 0], sizes[:, 1], net_w, net_h, resize_mode)
    return Found(kept.frame, kept.class_id, kept.score, boxes)


def decode(raw: np.ndarray, spec: RegionSpec, labels: Sequence[str], frame_w: int, frame_h: int,
           net_w: int, net_h: int, resize_mode: str, conf_threshold: float,
           nms_threshold: float) -> List[Detection]:
    """Raw output of one frame → detections in frame pixels, best first."""
    found = decode_batch(raw, spec, [(frame_w, frame_h)], net_w, net_h, resize_mode, conf_threshold,
                         nms_threshold)
    return [Detection(k, labels[k], s, *b)
            for k, s, b in zip(found.class_id.tolist(), found.score.tolist(), found.boxes.tolist())]


def filter_classes(detections: List[Detection], allowed: Tuple[str, ...]) -> List[Detection]:
    if not allowed:
        return detections
    return [d for d in detections if d.label in allowed]
