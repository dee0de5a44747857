"""The output-stage sink for tracked objects: tracker → events, per-class counts and snapshots.

It is called like every sink, sink(frame, detections, inference_ms, latency_ms), in the output
thread and in frame order, and close() at the end (which ends every object still in view).
What goes out goes through `send(leaf, payload, qos, retain)` (a dict is JSON, bytes are sent
as they are) — the MQTT adapter in the daemon, a list in the tests — and to `listeners`, each
called with every event message (terminal, JSON lines file, live view).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from edge_app.config import EventsConfig, SnapshotsConfig
from edge_app.events import EventBook, counts_message
from edge_app.snapshots import SnapshotFolder, annotate, encode_capped, safe_name
from edge_app.tracking import Track, Tracker

log = logging.getLogger(__name__)

Send = Callable[[str, Union[Dict[str, Any], bytes], int, bool], Any]
EVENTS, COUNTS = "events", "counts"


def snapshot_leaf(label: str) -> str:
    return f"{safe_name(label)}/snapshot"


class ObjectsSink:
    def __init__(self, events: EventsConfig, snapshots: SnapshotsConfig, *, device_id: str,
                 model_id: str, labels: Sequence[str], send: Optional[Send] = None,
                 listeners: Sequence[Callable[[Dict[str, Any]], None]] = ()):
        self.cfg = events
        self.snap = snapshots
        self.labels = list(labels)
        self.send = send
        self.listeners = list(listeners)
        self.device_id, self.model_id = device_id, model_id
        self.tracker = Tracker(events.iou_threshold, events.max_missed, events.min_hits)
        self.book = EventBook(device_id, model_id, events.update_interval)
        self.folder = (SnapshotFolder(snapshots.folder, int(snapshots.folder_max_mb * 1e6),
                                      snapshots.folder_max_files)
                       if snapshots.enabled and snapshots.folder else None)
        # track id -> (frame image, track) of its best frame; a reference, not a copy: every
        # capture source returns a fresh array per frame (capture.py), never a reused buffer
        self.best: Dict[int, Tuple[Any, Track]] = {}
        self.pending: Set[int] = set()  # confirmed tracks whose best frame is not yet published
        self.next_snapshot: Dict[str, float] = {}
        self.last_counts: Optional[Dict[str, int]] = None
        self.size = (1, 1)
        self.last_time = 0.0
        self.events_sent = 0
        self.snapshots_sent = 0
        self.snapshots_too_big = 0
        self.recent: List[Dict[str, Any]] = []  # the last few events, for the live view

    # -- per frame ------------------------------------------------------------------------

    def __call__(self, frame, detections, inference_ms: float, latency_ms: float) -> None:
        height, width = frame.image.shape[:2]
        self.size = (width, height)
        now = self.last_time = frame.captured_at
        update = self.tracker.update(frame.index, now, detections)
        if self.snap.enabled:
            for track in self.tracker.tracks:
                if track.best_frame == frame.index:
                    self.best[track.track_id] = (frame.image, track)
            self.pending.update(t.track_id for t in update.new + update.improved)
        self._emit(self.book.step(update, now, width, height))
        if self.snap.enabled:
            self._snapshots(now)
            live = {t.track_id for t in self.tracker.tracks}
            for track in update.ended:
                self._ended(track)
            for track_id in [k for k in self.best if k not in live]:
                del self.best[track_id]  # tentative tracks that died, ended ones
        self._counts(now)

    def close(self) -> None:
        """The source ended or the daemon stops: every object in view ends now."""
        ended = self.tracker.finish()
        width, height = self.size
        self._emit(self.book.end(ended, self.last_time, width, height))
        if self.snap.enabled:
            for track in ended:
                self._ended(track)
            self.best.clear()
        self._counts(self.last_time)

    # -- outputs --------------------------------------------------------------------------

    def _emit(self, messages: List[Dict[str, Any]]) -> None:
        for message in messages:
            if self.send is not None:
                self.send(EVENTS, message, self.cfg.qos, False)
            self.events_sent += 1
            self.recent = (self.recent + [message])[-20:]
            for listener in self.listeners:
                listener(message)

    def _counts(self, now: float) -> None:
        counts = self.tracker.counts()
        if counts != self.last_counts:
            self.last_counts = counts
            if self.send is not None:
                self.send(COUNTS, counts_message(counts, self.labels, device_id=self.device_id,
                                                 model_id=self.model_id, at=now), 1, True)

    def _picture(self, track_id: int) -> Optional[bytes]:
        image, track = self.best[track_id]
        picture = annotate(image, [(track.label, track.best_score, track.best_box)])
        data = encode_capped(picture, self.snap.max_bytes, self.snap.quality)
        if data is None:
            self.snapshots_too_big += 1
            log.warning("snapshot of %s %d does not fit snapshots.max_bytes=%d even scaled down",
                        track.label, track_id, self.snap.max_bytes)
        return data

    def _snapshots(self, now: float) -> None:
        for track_id in sorted(self.pending):
            if track_id not in self.best:
                self.pending.discard(track_id)
                continue
            label = self.best[track_id][1].label
            if now < self.next_snapshot.get(label, float("-inf")):
                continue  # rate limit per label: the newer best frame waits
            data = self._picture(track_id)
            self.pending.discard(track_id)
            if data is None:
                continue
            if self.send is not None:
                self.send(snapshot_leaf(label), data, 1, True)
            self.snapshots_sent += 1
            self.book.snapshot_published(track_id)
            self.next_snapshot[label] = now + self.snap.min_interval

    def _ended(self, track: Track) -> None:
        self.pending.discard(track.track_id)
        if self.folder is None or track.track_id not in self.best:
            return
        data = self._picture(track.track_id)
        if data is not None:
            try:
                self.folder.save(data, track.label, track.track_id, track.best_time)
            except OSError as exc:  # a full or read-only SD card must not stop detection
                log.error("cannot save a snapshot in %s: %s", self.folder.folder, exc)
