"""A literal, loop-by-loop statement of darknet's region decode and do_nms_sort.

Slow on purpose: one Python step per cell, anchor and class, in darknet's order. The tests
check the vectorised decoder against it and the benchmark uses it as its same-run reference.
"""
from __future__ import annotations

import math
from typing import List, Tuple


def _logistic(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def region_detections(raw, classes: int, num: int, anchors, softmax: bool, thresh: float):
    """[(x, y, w, h, objectness, [prob per class])] for every cell and anchor, darknet order."""
    out = raw.reshape(num, 5 + classes, raw.shape[-2], raw.shape[-1])
    grid_h, grid_w = out.shape[-2:]
    dets = []
    for i in range(grid_w * grid_h):
        row, col = divmod(i, grid_w)
        for n in range(num):
            cell = [float(v) for v in out[n, :, row, col]]
            obj = _logistic(cell[4])
            x = (col + _logistic(cell[0])) / grid_w
            y = (row + _logistic(cell[1])) / grid_h
            w = math.exp(cell[2]) * anchors[2 * n] / grid_w
            h = math.exp(cell[3]) * anchors[2 * n + 1] / grid_h
            scores = cell[5:]
            if softmax:
                top = max(scores)
                e = [math.exp(s - top) for s in scores]
                total = sum(e)
                probs = [v / total for v in e]
            else:
                probs = [_logistic(s) for s in scores]
            objectness = obj if obj > thresh else 0.0
            prob = [0.0] * classes
            if objectness:
                prob = [obj * p if obj * p > thresh else 0.0 for p in probs]
            dets.append([x, y, w, h, objectness, prob])
    return dets


def _overlap(x1, w1, x2, w2):
    left = max(x1 - w1 / 2, x2 - w2 / 2)
    right = min(x1 + w1 / 2, x2 + w2 / 2)
    return right - left


def box_iou(a, b) -> float:
    w = _overlap(a[0], a[2], b[0], b[2])
    h = _overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if (w < 0 or h < 0) else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def do_nms_sort(dets, classes: int, thresh: float) -> None:
    dets[:] = [d for d in dets if d[4] != 0]
    for k in range(classes):
        dets.sort(key=lambda d: -d[5][k])
        for i, a in enumerate(dets):
            if a[5][k] == 0:
                continue
            for b in dets[i + 1:]:
                if box_iou(a, b) > thresh:
                    b[5][k] = 0.0


def decode(raw, classes, num, anchors, softmax, thresh, nms) -> List[Tuple[int, float, float, float, float, float]]:
    """(class, prob, cx, cy, w, h) per surviving class of every box, network-relative."""
    dets = region_detections(raw, classes, num, anchors, softmax, thresh)
    do_nms_sort(dets, classes, nms)
    return [(k, d[5][k], d[0], d[1], d[2], d[3]) for d in dets for k in range(classes) if d[5][k] > 0]
