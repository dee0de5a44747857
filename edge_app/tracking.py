"""Detections linked across frames into tracked objects: a small IoU tracker with a
constant-velocity prediction, in plain Python.

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

from edge_app.detection import Detection

Box = Tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes. Plain Python: with a handful of
    objects per frame it is several times faster than numpy's per-call overhead."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def greedy_match(candidates: List[Tuple[float, int, int]], threshold: float) -> List[Tuple[int, int]]:
    """(row, column) pairs from (overlap, row, column) candidates, best overlap first, each row
    and column used once, overlap >= threshold. Ties keep the candidates' order."""
    used_r, used_c, pairs = set(), set(), []
    for overlap, r, c in sorted((x for x in candidates if x[0] >= threshold), key=lambda x: -x[0]):
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
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, min_hits: int = 5,
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
        if self.tracks and detections:
            boxes = [(d.x1, d.y1, d.x2, d.y2) for d in detections]
            # confirmed tracks choose first, tentative ones get what is left: a duplicate box
            # next to an object (the detector's second guess) must not steal the object's track
            for confirmed in (True, False):
                candidates = []
                for i, track in enumerate(self.tracks):
                    if track.confirmed != confirmed:
                        continue
                    predicted = track.predicted(frame)
                    for j, det in enumerate(detections):
                        if j in matched_dets or det.label != track.label:
                            continue
                        # the better of the predicted and the last box: the prediction carries a
                        # fast object over missed frames, the last box keeps a slow one whose
                        # velocity a badly placed detection has thrown off
                        candidates.append((max(iou(predicted, boxes[j]), iou(track.box, boxes[j])), i, j))
                for i, j in greedy_match(candidates, self.iou_threshold):
                    self._absorb(self.tracks[i], detections[j], frame, timestamp, result)
                    matched_tracks.add(i)
                    matched_dets.add(j)
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
