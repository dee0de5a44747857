"""The README's main-job command, run exactly as documented: its detections on the held-out
demo clip must match the clip's ground truth (precision and recall >= 0.9 at IoU 0.5), and its
tracked-object events must give one `new` and one `end` per object appearance with an id that
stays while the object is visible (>= 0.95 of appearances, <= 0.05 spurious tracks), with the
best frame of each object saved as a JPEG to look at."""
import json
import subprocess

from tests.conftest import REPO
from tests.edge.event_scoring import score as score_events


def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def score(messages, truth_frames, threshold=0.5):
    tp = fp = fn = 0
    for message in messages:
        truths = list(truth_frames[message["frame_id"]])
        for d in sorted(message["detections"], key=lambda d: -d["confidence"]):
            box = (d["topleft"]["x"], d["topleft"]["y"], d["bottomright"]["x"] + 1, d["bottomright"]["y"] + 1)
            best = max(((iou(box, t["box"]), i) for i, t in enumerate(truths) if t["label"] == d["label"]),
                       default=(0.0, -1))
            if best[0] >= threshold:
                truths.pop(best[1])
                tp += 1
            else:
                fp += 1
        fn += len(truths)
    return tp, fp, fn


def test_main_job_as_documented():
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/demo.sh" in readme
    result = subprocess.run(["bash", "scripts/demo.sh"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "summary: 60 frames" in out and "detections per class" in out
    assert "MQTT broker on localhost:1883" in out or "no MQTT broker on localhost:1883" in out
    messages = [json.loads(line) for line in (REPO / "out/demo/detections.jsonl").read_text().splitlines()]
    truth = json.loads((REPO / "out/demo/clip.json").read_text())["frames"]
    # the clip's glyphs never hide each other, so every ground-truth object is visible
    assert all(iou(a["box"], b["box"]) == 0 for frame in truth for i, a in enumerate(frame) for b in frame[i + 1:])
    assert [m["frame_id"] for m in messages] == list(range(60))
    # --jsonl writes the MQTT payload itself: the model is named as on the broker
    model_id = json.loads((REPO / "demo/model/demo.json").read_text())["model_id"]
    assert {m["model_id"] for m in messages} == {model_id}
    tp, fp, fn = score(messages, truth)
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    print(f"main job on the demo clip: TP {tp}, FP {fp}, FN {fn}: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.9 and recall >= 0.9

    # tracked-object events (written by the same run)
    events = [json.loads(line) for line in (REPO / "out/demo/events.jsonl").read_text().splitlines()]
    result = score_events(events, truth)
    print(f"main job events: {result}")
    assert result["recall"] >= 0.95 and result["spurious_ratio"] <= 0.05, result
    assert "event new" in out and "event end" in out
    snapshots = sorted((REPO / "out/demo/snapshots").glob("*.jpg"))
    assert len(snapshots) == result["tracks"]  # the best frame of every object
    import cv2
    assert all(cv2.imread(str(p)) is not None for p in snapshots)
