"""YOLOv2 region decode and darknet's NMS, in numpy, vectorised over cells and anchors.

raw output (1, num*(coords+1+classes), H, W), channel order per anchor: tx, ty, tw, th, to,
class scores. darknet's region semantics:
  x = (col + σ(tx)) / W      y = (row + σ(ty)) / H
  w = exp(tw) * anchor_w / W h = exp(th) * anchor_h / H   (anchors in grid cells)
  objectness = σ(to); class probability = softmax (σ when the cfg says softmax=0)
  prob = objectness * class probability, kept where > threshold (objectness too)
NMS follows do_nms_sort: per class, by falling prob, drop boxes whose IoU with a kept box of
the same class is > the NMS threshold. IoU is taken before any clamping, as darknet does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

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
    """Detections before NMS, in network-relative centre coordinates."""

    cx: np.ndarray
    cy: np.ndarray
    w: np.ndarray
    h: np.ndarray
    score: np.ndarray
    class_id: np.ndarray

    def take(self, index: np.ndarray) -> "Candidates":
        return Candidates(self.cx[index], self.cy[index], self.w[index], self.h[index],
                          self.score[index], self.class_id[index])

    def __len__(self) -> int:
        return len(self.score)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def region_candidates(raw: np.ndarray, spec: RegionSpec, threshold: float) -> Candidates:
    grid_h, grid_w = raw.shape[-2:]
    per_anchor = spec.coords + 1 + spec.classes
    out = raw.reshape(spec.num, per_anchor, grid_h, grid_w)
    objectness = _sigmoid(out[:, spec.coords])  # (num, H, W)
    # prob <= objectness, so only cells whose objectness passes can yield a detection
    anchor, row, col = np.nonzero(objectness > threshold)
    logits = out[anchor, spec.coords + 1:, row, col]  # (cells, classes)
    if spec.softmax:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        class_prob = e / e.sum(axis=1, keepdims=True)
    else:
        class_prob = _sigmoid(logits)
    prob = objectness[anchor, row, col][:, None] * class_prob
    cell, class_id = np.nonzero(prob > threshold)
    anchor, row, col = anchor[cell], row[cell], col[cell]
    t = out[anchor, :4, row, col]  # (n, 4): tx, ty, tw, th
    cx = (col + _sigmoid(t[:, 0])) / grid_w
    cy = (row + _sigmoid(t[:, 1])) / grid_h
    w = np.exp(t[:, 2]) * spec.anchors[anchor, 0] / grid_w
    h = np.exp(t[:, 3]) * spec.anchors[anchor, 1] / grid_h
    return Candidates(cx, cy, w, h, prob[cell, class_id], class_id)


def _iou_matrix(c: Candidates) -> np.ndarray:
    """IoU of every pair, with darknet's box_iou arithmetic on centre boxes."""
    left = np.maximum.outer(c.cx - c.w / 2, c.cx - c.w / 2)
    right = np.minimum.outer(c.cx + c.w / 2, c.cx + c.w / 2)
    top = np.maximum.outer(c.cy - c.h / 2, c.cy - c.h / 2)
    bottom = np.minimum.outer(c.cy + c.h / 2, c.cy + c.h / 2)
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area = c.w * c.h
    union = np.add.outer(area, area) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(c: Candidates, threshold: float) -> np.ndarray:
    """Indices kept by darknet's do_nms_sort, best first."""
    if len(c) == 0 or threshold <= 0:
        return np.argsort(-c.score, kind="stable")
    order = np.lexsort((-c.score, c.class_id))  # by class, then falling score
    classes = c.class_id[order]
    bounds = np.flatnonzero(np.diff(classes)) + 1
    keep = np.ones(len(order), bool)
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(order)]):
        if stop - start < 2:
            continue
        segment = order[start:stop]
        over = np.triu(_iou_matrix(c.take(segment)) > threshold, k=1)
        alive = keep[start:stop]  # a view: writes land in keep
        for i in np.flatnonzero(over.any(axis=1)):
            if alive[i]:
                alive &= ~over[i]
    kept = order[keep]
    return kept[np.argsort(-c.score[kept], kind="stable")]


def decode(raw: np.ndarray, spec: RegionSpec, labels: Sequence[str], frame_w: int, frame_h: int,
           net_w: int, net_h: int, resize_mode: str, conf_threshold: float,
           nms_threshold: float) -> List[Detection]:
    """Raw region output → detections in frame pixels, best first."""
    candidates = region_candidates(raw, spec, conf_threshold)
    kept = candidates.take(nms(candidates, nms_threshold))
    boxes = boxes_to_frame(kept.cx, kept.cy, kept.w, kept.h, frame_w, frame_h, net_w, net_h,
                           resize_mode)
    return [Detection(int(k), labels[k], float(s), *map(float, b))
            for k, s, b in zip(kept.class_id, kept.score, boxes)]


def filter_classes(detections: List[Detection], allowed: Tuple[str, ...]) -> List[Detection]:
    if not allowed:
        return detections
    return [d for d in detections if d.label in allowed]
