"""Detections linked across frames into tracked objects: a small IoU tracker with a
constant-velocity prediction, in numpy only.

Why not a library. The maintained trackers were checked for what a 1 GB Raspberry Pi 3B+
on Raspberry Pi OS Bullseye armhf can carry (numpy 1.19 and OpenCV from apt, no armv7 wheels
of scipy & co. on PyPI), from their published metadata (pip download --no-deps, 2026-11):

  norfair 2.3.0     filterpy, scipy >= 1.5.4, rich, numpy >= 1.23 (Bullseye's apt numpy is 1.19.5)
  motpy 0.0.10      numpy, scipy, filterpy
  supervision 0.31  scipy, matplotlib, pillow, av, pyyaml, requests, tqdm, ... (ByteTrack inside)
  bytetracker 0.3.2 lap 0.4.0, scipy 1.9.3, torch 1.13.0

Every one pulls scipy (and most a Kalman library or torch) for what is, at a handful of
objects per frame, a greedy assignment over an IoU matrix of a few cells. The tracker below
does that assignment plus a constant-velocity prediction (so a box moving several pixels a
frame still matches after a missed frame or two); its per-frame host cost is measured against
decode + NMS by benchmarks/bench_tracking.py.

Semantics (all in frames, so a run is deterministic for a given sequence of detections):
- a detection matches the live track of the same class whose predicted box overlaps it most,
  if IoU >= iou_threshold (greedy, best pairs first; confirmed tracks before tentative ones);
- an unmatched detection starts a tentative track; it is *confirmed* (and announced) once it
  has been matched in `min_hits` frames — a one-frame false positive never becomes an object;
- a track not matched for more than `max_missed` frames ends (a confirmed one is reported);
  during misses its box is predicted forward with its velocity.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.detection import Detection

Box = Tuple[float, float, float, float]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N x 4, x1 y1 x2 y2) with every box in b (M x 4): N x M."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def greedy_match(iou: np.ndarray, threshold: float) -> List[Tuple[int, int]]:
    """(row, column) pairs, best IoU first, each row and column used once, IoU >= threshold."""
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r, used_c, pairs = set(), set(), []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


@dataclass
class Track:
    """One object followed across frames. Boxes are float pixels of the captured frame."""

    track_id: int
    label: str
    class_id: int
    first_frame: int
    first_time: float
    last_frame: int
    last_time: float
    box: Box
    score: float
    best_score: float
    best_box: Box
    best_frame: int
    best_time: float
    hits: int = 1
    missed: int = 0  # consecutive frames without a match
    confirmed: bool = False
    velocity: Tuple[float, float] = (0.0, 0.0)  # box centre, pixels per frame

    def predicted(self, frame: int) -> Box:
        steps = frame - self.last_frame
        dx, dy = self.velocity[0] * steps, self.velocity[1] * steps
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)


@dataclass
class TrackerUpdate:
    """What one frame changed: tracks confirmed this frame, tracks matched (confirmed ones,
    including the new), tracks that ended, and whether a track's best score rose."""

    new: List[Track] = field(default_factory=list)
    seen: List[Track] = field(default_factory=list)
    ended: List[Track] = field(default_factory=list)
    improved: List[Track] = field(default_factory=list)


class Tracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, min_hits: int = 3,
                 velocity_smoothing: float = 0.5):
        if not 0 < iou_threshold <= 1:
            raise ValueError("iou_threshold must be in (0, 1]")
        if max_missed < 0 or min_hits < 1:
            raise ValueError("max_missed must be >= 0 and min_hits >= 1")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.min_hits = min_hits
        self.smoothing = velocity_smoothing
        self.tracks: List[Track] = []
        self._next_id = 1

    def active(self) -> List[Track]:
        """Confirmed tracks currently alive (seen within max_missed frames)."""
        return [t for t in self.tracks if t.confirmed]

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for t in self.active():
            out[t.label] = out.get(t.label, 0) + 1
        return out

    def update(self, frame: int, timestamp: float, detections: Sequence[Detection]) -> TrackerUpdate:
        result = TrackerUpdate()
        matched_tracks: set = set()
        matched_dets: set = set()
        # confirmed tracks choose first, tentative ones get what is left: a duplicate box
        # next to an object (the detector's second guess) must not steal the object's track
        for confirmed in (True, False):
            for label in sorted({d.label for d in detections}):
                t_index = [i for i, t in enumerate(self.tracks)
                           if t.label == label and t.confirmed == confirmed]
                d_index = [j for j, d in enumerate(detections) if d.label == label and j not in matched_dets]
                if not t_index or not d_index:
                    continue
                predicted = np.array([self.tracks[i].predicted(frame) for i in t_index], dtype=float)
                boxes = np.array([(detections[j].x1, detections[j].y1, detections[j].x2, detections[j].y2)
                                  for j in d_index], dtype=float)
                for r, c in greedy_match(iou_matrix(predicted, boxes), self.iou_threshold):
                    track, det = self.tracks[t_index[r]], detections[d_index[c]]
                    self._absorb(track, det, frame, timestamp, result)
                    matched_tracks.add(t_index[r])
                    matched_dets.add(d_index[c])
        survivors = []
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.missed += 1
                # a tentative track gets no grace: it must be matched in consecutive frames
                if track.missed > self.max_missed or not track.confirmed:
                    if track.confirmed:
                        result.ended.append(track)
                    continue
            survivors.append(track)
        for j, det in enumerate(detections):
            if j in matched_dets:
                continue
            box = (float(det.x1), float(det.y1), float(det.x2), float(det.y2))
            track = Track(self._next_id, det.label, det.class_id, frame, timestamp, frame, timestamp,
                          box, float(det.confidence), float(det.confidence), box, frame, timestamp)
            self._next_id += 1
            if self.min_hits <= 1:
                track.confirmed = True
                result.new.append(track)
                result.seen.append(track)
            survivors.append(track)
        self.tracks = survivors
        return result

    def _absorb(self, track: Track, det: Detection, frame: int, timestamp: float,
                result: TrackerUpdate) -> None:
        box = (float(det.x1), float(det.y1), float(det.x2), float(det.y2))
        steps = max(frame - track.last_frame, 1)
        old_cx, old_cy = (track.box[0] + track.box[2]) / 2, (track.box[1] + track.box[3]) / 2
        new_cx, new_cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        vx, vy = (new_cx - old_cx) / steps, (new_cy - old_cy) / steps
        a = self.smoothing
        track.velocity = ((1 - a) * track.velocity[0] + a * vx, (1 - a) * track.velocity[1] + a * vy) \
            if track.hits > 1 else (vx, vy)
        track.box, track.score = box, float(det.confidence)
        track.last_frame, track.last_time = frame, timestamp
        track.hits += 1
        track.missed = 0
        if track.score > track.best_score:
            track.best_score, track.best_box = track.score, box
            track.best_frame, track.best_time = frame, timestamp
            if track.confirmed:
                result.improved.append(track)
        if not track.confirmed and track.hits >= self.min_hits:
            track.confirmed = True
            result.new.append(track)
        if track.confirmed:
            result.seen.append(track)

    def finish(self) -> List[Track]:
        """End every track (the source ended or the daemon stops): the confirmed ones."""
        ended = [t for t in self.tracks if t.confirmed]
        self.tracks = []
        return ended


def track_state(track: Track, width: int, height: int, ended: Optional[float] = None) -> Dict:
    """A track as published (the `before`/`after` of an event)."""
    def boxes(box: Box) -> Dict:
        return {"pixels": [int(round(v)) for v in box],
                "norm": [round(box[0] / width, 5), round(box[1] / height, 5),
                         round(box[2] / width, 5), round(box[3] / height, 5)]}

    return {
        "id": track.track_id,
        "label": track.label,
        "class_id": track.class_id,
        "start_time": round(track.first_time, 6),
        "end_time": None if ended is None else round(ended, 6),
        "frame_time": round(track.last_time, 6),
        "first_frame": track.first_frame,
        "last_frame": track.last_frame,
        "frames_seen": track.hits,
        "score": round(track.score, 4),
        "top_score": round(track.best_score, 4),
        "box": boxes(track.box),
        "top_box": boxes(track.best_box),
        "top_frame": track.best_frame,
        "active": ended is None,
    }
