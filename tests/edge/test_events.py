"""Events, counts and snapshots from the objects sink, fed frames by hand (pure parts, real
OpenCV JPEG encoding, a real folder); payloads validated against their JSON Schemas."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edge_app.config import EventsConfig, SnapshotsConfig
from edge_app.detection import Detection
from edge_app.objects import ObjectsSink
from edge_app.snapshots import SnapshotFolder, encode_capped, safe_name
from tests.conftest import REPO

jsonschema = pytest.importorskip("jsonschema")


def schema(name):
    return json.loads((REPO / "edge_app/schemas" / f"{name}.schema.json").read_text())


def frame(index, t):
    rng = np.random.default_rng(index)
    return SimpleNamespace(index=index, captured_at=t, image=rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))


def star(x, conf=0.8):
    return Detection(0, "Star", conf, x, 50, x + 40, 90)


def run(frames, events=None, snapshots=None):
    sent = []
    sink = ObjectsSink(events or EventsConfig(min_hits=2, max_missed=2, update_interval=1.0),
                       snapshots or SnapshotsConfig(min_interval=100.0),
                       device_id="pi", model_id="m", labels=["Star", "Moon"],
                       send=lambda leaf, payload, qos, retain: sent.append((leaf, payload, qos, retain)))
    for i, detections in enumerate(frames):
        sink(frame(i, 1000.0 + 0.1 * i), detections, 10.0, 20.0)
    sink.close()
    return sink, sent


def test_new_updates_end_with_before_after_and_counts():
    # a star moving 10 px/frame for 40 frames (4 s), its score rising once
    frames = [[star(10 + 5 * i, conf=0.9 if i == 25 else 0.8)] for i in range(40)]
    sink, sent = run(frames)
    events = [p for leaf, p, qos, retain in sent if leaf == "events"]
    for e in events:
        jsonschema.validate(e, schema("event"))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "new" and kinds[-1] == "end" and kinds.count("new") == 1 and kinds.count("end") == 1
    updates = [e for e in events if e["type"] == "update"]
    # rate limit: at most one update per second of capture time over a 3.9 s life
    assert 1 <= len(updates) <= 4
    times = [e["after"]["frame_time"] for e in updates]
    assert all(b - a >= 1.0 - 1e-6 for a, b in zip([events[0]["after"]["frame_time"]] + times, times))
    for previous, e in zip(events, events[1:]):
        assert e["before"] == previous["after"]
    new, end = events[0], events[-1]
    assert new["before"] == new["after"] and new["after"]["active"] and new["after"]["end_time"] is None
    assert not end["after"]["active"] and end["after"]["end_time"] == pytest.approx(1003.9)
    assert end["after"]["top_score"] == 0.9 and end["after"]["top_frame"] == 25
    assert end["after"]["first_frame"] == 0 and end["after"]["last_frame"] == 39
    assert len({e["after"]["id"] for e in events}) == 1
    assert all(qos == 1 and not retain for leaf, p, qos, retain in sent if leaf == "events")
    counts = [(p, retain) for leaf, p, qos, retain in sent if leaf == "counts"]
    for p, retain in counts:
        assert retain
        jsonschema.validate(p, schema("counts"))
    assert [p["counts"] for p, _ in counts] == [{"Star": 0, "Moon": 0}, {"Star": 1, "Moon": 0},
                                               {"Star": 0, "Moon": 0}]


def test_snapshot_is_the_best_frame_with_its_box_retained_and_rate_limited():
    frames = [[star(10 + 2 * i, conf=0.6 + 0.01 * i)] for i in range(20)]
    sink, sent = run(frames, snapshots=SnapshotsConfig(min_interval=100.0, max_bytes=60000))
    snaps = [(leaf, p, retain) for leaf, p, qos, retain in sent if leaf.endswith("/snapshot")]
    assert len(snaps) == 1  # the score rose every frame; the rate limit let one through
    leaf, data, retain = snaps[0]
    assert leaf == "Star/snapshot" and retain and len(data) <= 60000
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (240, 320, 3)
    # the box is drawn in green at the best frame's box (frame 1, the best when confirmed)
    x1, y1 = 10 + 2 * 1, 50
    edge = picture[y1 + 5:y1 + 35, x1 - 1:x1 + 2]
    assert edge[..., 1].mean() > 180 and edge[..., 0].mean() < 120 and edge[..., 2].mean() < 120
    events = [p for leaf, p, qos, retain in sent if leaf == "events"]
    assert events[-1]["after"]["has_snapshot"] is True


def test_snapshot_size_cap_lowers_quality_then_size():
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    full = encode_capped(image, 10 ** 7, 90)
    capped = encode_capped(image, 20000, 90)
    assert len(full) > 20000 >= len(capped)
    assert cv2.imdecode(np.frombuffer(capped, np.uint8), cv2.IMREAD_COLOR).shape[1] < 640
    assert encode_capped(image, 100, 90) is None


def test_snapshot_folder_keeps_the_newest_within_its_bounds(tmp_path):
    folder = SnapshotFolder(str(tmp_path / "snaps"), max_bytes=3500, max_files=3)
    for i in range(6):
        folder.save(bytes([i]) * 1000, "Star", i, 1000.0 + i)
    names = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert len(names) == 3 and [n.rsplit("-", 1)[1] for n in names] == ["3.jpg", "4.jpg", "5.jpg"]
    folder = SnapshotFolder(str(tmp_path / "snaps"), max_bytes=2500, max_files=10)
    folder.save(b"x" * 1000, "Moon", 9, 2000.0)
    assert sum(p.stat().st_size for p in (tmp_path / "snaps").iterdir()) <= 2500


def test_objects_end_in_the_folder_one_best_frame_each(tmp_path):
    frames = [[star(10 + 2 * i)] for i in range(10)] + [[] for _ in range(5)] + [[star(200)] for _ in range(10)]
    run(frames, snapshots=SnapshotsConfig(folder=str(tmp_path / "best"), min_interval=0.0))
    files = sorted((tmp_path / "best").iterdir())
    assert len(files) == 2 and all(f.name.endswith(".jpg") and "-Star-" in f.name for f in files)


def test_safe_names():
    assert safe_name("my/odd label+#") == "my_odd_label__" and safe_name("Ünïcode") == "_n_code"
