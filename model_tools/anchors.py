"""Anchor boxes by k-means on the training boxes with 1 - IoU as the distance (YOLOv2's
dimension clusters; AlexeyAB's calc_anchors). Boxes are compared by size only (centred at
the origin); anchors come out in grid cells of the network's output."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from edge_app.errors import InputError


def iou_wh(boxes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """IoU of (n, 2) sizes against (k, 2) sizes, all centred at the origin."""
    inter = np.minimum(boxes[:, None, 0], centroids[None, :, 0]) * np.minimum(boxes[:, None, 1], centroids[None, :, 1])
    area_b = boxes[:, 0] * boxes[:, 1]
    area_c = centroids[:, 0] * centroids[:, 1]
    return inter / (area_b[:, None] + area_c[None, :] - inter)


def kmeans(sizes: np.ndarray, k: int, seed: int = 0, iterations: int = 300,
           restarts: int = 8) -> Tuple[np.ndarray, float]:
    """(k, 2) centroids sorted by area, and the average best IoU of the boxes with them; the
    best of several k-means++ starts (one start can settle in a poor local optimum)."""
    sizes = np.asarray(sizes, float)
    if len(sizes) < k:
        raise InputError(f"{len(sizes)} training boxes cannot give {k} anchors", "--num",
                         "use fewer anchors or more data")
    rng = np.random.default_rng(seed)
    best, best_iou = None, -1.0
    for _ in range(restarts):
        centroids = _one_run(sizes, k, rng, iterations)
        avg_iou = float(iou_wh(sizes, centroids).max(axis=1).mean())
        if avg_iou > best_iou:
            best, best_iou = centroids, avg_iou
    return best[np.argsort(best[:, 0] * best[:, 1])], best_iou


def _one_run(sizes: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> np.ndarray:
    # k-means++ seeding: next centre drawn with probability ~ distance² (distance = 1 - IoU)
    centroids = [sizes[rng.integers(len(sizes))]]
    for _ in range(1, k):
        d = (1 - iou_wh(sizes, np.array(centroids)).max(axis=1)) ** 2
        total = d.sum()
        centroids.append(sizes[rng.choice(len(sizes), p=d / total)] if total > 0 else sizes[rng.integers(len(sizes))])
    centroids = np.array(centroids)
    assignment = None
    for _ in range(iterations):
        new = iou_wh(sizes, centroids).argmax(axis=1)
        if assignment is not None and np.array_equal(new, assignment):
            break
        assignment = new
        for j in range(k):
            members = sizes[assignment == j]
            if len(members):
                centroids[j] = members.mean(axis=0)
    return centroids


def from_label_files(train_list: str, grid_w: int, grid_h: int, k: int = 5, seed: int = 0):
    """Anchors in grid cells from the YOLO labels of the images in a darknet train list."""
    from model_tools.dataset import label_path

    sizes = []
    for line in open(train_list).read().split():
        lf = label_path(line)
        if lf.exists():
            for row in lf.read_text().splitlines():
                f = row.split()
                if len(f) == 5:
                    sizes.append((float(f[3]) * grid_w, float(f[4]) * grid_h))
    if not sizes:
        raise InputError("no training boxes found", train_list, "import a dataset first")
    return kmeans(np.array(sizes), k, seed)
