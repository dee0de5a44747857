"""Tracked-object events, in the spirit of Frigate's `frigate/events` topic: one message when an
object is confirmed (`new`), rate-limited `update`s while it stays, one `end` when it leaves,
each carrying the object's state `before` (as last published) and `after` this change.

The payloads (schema edge_app/schemas/event.schema.json, counts.schema.json) are built by pure
functions; `EventBook` decides, from the tracker's per-frame changes, which messages go out.
Times are the frames' capture times, so decisions do not depend on how fast frames are handled.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from edge_app.tracking import Track, TrackerUpdate, track_state

EVENT_SCHEMA = "edge-vision/event/1"
COUNTS_SCHEMA = "edge-vision/counts/1"
NEW, UPDATE, END = "new", "update", "end"


def event_message(kind: str, before: Optional[Dict[str, Any]], after: Dict[str, Any], *,
                  device_id: str, model_id: str) -> Dict[str, Any]:
    return {"schema": EVENT_SCHEMA, "type": kind, "device_id": device_id, "model_id": model_id,
            "before": before, "after": after}


def counts_message(counts: Dict[str, int], labels: Sequence[str], *, device_id: str, model_id: str,
                   at: float) -> Dict[str, Any]:
    """Every label of the model, 0 when absent, so a subscriber sees a class leave."""
    return {"schema": COUNTS_SCHEMA, "device_id": device_id, "model_id": model_id,
            "at": round(at, 6), "counts": {label: int(counts.get(label, 0)) for label in labels}}


class EventBook:
    """Turns tracker changes into event messages.

    `update` goes out for an object whose top score rose or whose box moved (IoU with the box
    last published below `moved_iou`), at most once per `update_interval` seconds per object.
    """

    def __init__(self, device_id: str, model_id: str, update_interval: float = 5.0,
                 moved_iou: float = 0.5):
        self.device_id = device_id
        self.model_id = model_id
        self.update_interval = update_interval
        self.moved_iou = moved_iou
        self.published: Dict[int, Dict[str, Any]] = {}  # track id -> state last published
        self.sent_at: Dict[int, float] = {}
        self.has_snapshot: Dict[int, bool] = {}

    def _state(self, track: Track, width: int, height: int, ended: Optional[float] = None) -> Dict[str, Any]:
        state = track_state(track, width, height, ended)
        state["has_snapshot"] = self.has_snapshot.get(track.track_id, False)
        return state

    def _message(self, kind: str, track: Track, now: float, width: int, height: int,
                 ended: Optional[float] = None) -> Dict[str, Any]:
        after = self._state(track, width, height, ended)
        before = self.published.get(track.track_id, after)  # `new`: before = after, as Frigate
        self.published[track.track_id] = after
        self.sent_at[track.track_id] = now
        return event_message(kind, before, after, device_id=self.device_id, model_id=self.model_id)

    def step(self, update: TrackerUpdate, now: float, width: int, height: int) -> List[Dict[str, Any]]:
        out = []
        new_ids = {t.track_id for t in update.new}
        for track in update.new:
            out.append(self._message(NEW, track, now, width, height))
        for track in update.seen:
            if track.track_id in new_ids or track.track_id not in self.published:
                continue
            if now - self.sent_at[track.track_id] < self.update_interval:
                continue
            if self._changed(track, self.published[track.track_id]):
                out.append(self._message(UPDATE, track, now, width, height))
        out.extend(self.end(update.ended, now, width, height))
        return out

    def end(self, tracks: Sequence[Track], now: float, width: int, height: int) -> List[Dict[str, Any]]:
        out = []
        for track in tracks:
            if track.track_id not in self.published:
                continue
            # the object was last seen at its last frame: that is when it ended
            out.append(self._message(END, track, now, width, height, ended=track.last_time))
            for book in (self.published, self.sent_at, self.has_snapshot):
                book.pop(track.track_id, None)
        return out

    def _changed(self, track: Track, last: Dict[str, Any]) -> bool:
        if round(track.best_score, 4) > last["top_score"]:
            return True
        x1, y1, x2, y2 = last["box"]["pixels"]
        a, b = track.box, (x1, y1, x2, y2)
        iw = min(a[2], b[2]) - max(a[0], b[0])
        ih = min(a[3], b[3]) - max(a[1], b[1])
        inter = max(iw, 0) * max(ih, 0)
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return union <= 0 or inter / union < self.moved_iou

    def snapshot_published(self, track_id: int) -> None:
        self.has_snapshot[track_id] = True
