"""Scoring tracked-object events against a synthetic clip's ground truth (pure functions).

An appearance is one ground-truth object over a run of consecutive frames it is in. A track
(the `new` and `end` events of one id) belongs to an appearance when its box at three anchors
— where it was announced, its best frame, its last frame — overlaps that object's true box
(IoU >= 0.3) and its label is the object's. An appearance is *found* when exactly one track
belongs to it and that track spans at least `cover` of its frames: one id, stable while the
object is visible. Every other track is spurious."""
from __future__ import annotations

from typing import Dict, List


def iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def appearances(truth_frames) -> List[Dict]:
    """Objects are identified by their position in each frame's list (synth.make_clip keeps
    the order); a gap in an object's presence starts a new appearance."""
    out, open_ = [], {}
    for f, objects in enumerate(truth_frames):
        for i, obj in enumerate(objects):
            a = open_.get(i)
            if a is None or a["last"] != f - 1:
                a = {"object": i, "label": obj["label"], "first": f, "last": f, "boxes": {}}
                open_[i] = a
                out.append(a)
            a["last"] = f
            a["boxes"][f] = obj["box"]
    return out


def tracks(events) -> Dict[int, Dict]:
    out: Dict[int, Dict] = {}
    for e in events:
        t = out.setdefault(e["after"]["id"], {"id": e["after"]["id"], "label": e["after"]["label"]})
        t[e["type"]] = e
    return out


def score(events, truth_frames, cover: float = 0.9, min_iou: float = 0.3) -> Dict:
    apps = appearances(truth_frames)
    found, owners = 0, {}
    spurious = []
    for t in tracks(events).values():
        if "new" not in t or "end" not in t:
            spurious.append(t["id"])
            continue
        new, end = t["new"]["after"], t["end"]["after"]
        anchors = [(new["last_frame"], new["box"]["pixels"]), (end["top_frame"], end["top_box"]["pixels"]),
                   (end["last_frame"], end["box"]["pixels"])]
        mine = [k for k, a in enumerate(apps) if a["label"] == t["label"]
                and all(f in a["boxes"] and iou(box, a["boxes"][f]) >= min_iou for f, box in anchors)]
        if len(mine) != 1:
            spurious.append(t["id"])
            continue
        owners.setdefault(mine[0], []).append((t["id"], end["first_frame"], end["last_frame"]))
    for k, a in enumerate(apps):
        owned = owners.get(k, [])
        length = a["last"] - a["first"] + 1
        if len(owned) == 1 and (owned[0][2] - owned[0][1] + 1) >= cover * length:
            found += 1
        spurious += [o[0] for o in owned[1:]]  # a second id for the same appearance
    n_tracks = len(tracks(events))
    return {"appearances": len(apps), "found": found, "tracks": n_tracks, "spurious": len(spurious),
            "recall": found / max(len(apps), 1), "spurious_ratio": len(spurious) / max(n_tracks, 1)}
