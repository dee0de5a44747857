"""Per-frame host cost of tracking + events (edge_app.objects.ObjectsSink: tracker, event
decisions, counts; snapshots off, they are rate-limited JPEG encodes) as a ratio to decode + NMS
(edge_app.decode through the Detector) on the same frames, in the same run, interleaved.

The frames are synthetic clips of moving logos (model_tools.synth.make_clip), run through the
demo model (demo/model) on the CPU once; the raw region outputs are kept, so each round times
exactly the host work that follows inference on the Pi. Each round replays every clip through
decode + NMS and through tracking + events (alternating which goes first).

It also prints how the events score against the clips' ground truth (tests/edge/event_scoring.py):
appearances found with one stable id, and the share of spurious tracks.

    python benchmarks/bench_tracking.py [rounds, default 7] [clips, default 4]
"""
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from common import REPO, ratio_line, spread
from edge_app.config import EventsConfig, SnapshotsConfig
from edge_app.detector import Detector
from edge_app.objects import ObjectsSink
from model_tools import synth
from tests.edge.event_scoring import score


def load_clip(path):
    import cv2

    video = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = video.read()
        if not ok:
            return frames
        frames.append(image)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    n_clips = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    detector = Detector(REPO / "demo/model", "CPU", conf_threshold=0.4)
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [777] + list(range(1, n_clips)):
            path = synth.make_clip(Path(tmp) / f"clip{seed}.avi", frames=150, seed=seed)
            truth = json.loads(path.with_suffix(".json").read_text())["frames"]
            images = load_clip(path)
            raws = [detector.raw(image).copy() for image in images]
            clips.append((seed, images, raws, truth))
    frames = sum(len(c[1]) for c in clips)
    size = clips[0][1][0].shape[1::-1]

    decoded = {}

    def decode_all():
        for seed, images, raws, _ in clips:
            decoded[seed] = [detector.decode(raw, size[0], size[1]) for raw in raws]

    events_of = {}

    def track_all():
        for seed, images, raws, _ in clips:
            events = []
            sink = ObjectsSink(EventsConfig(), SnapshotsConfig(enabled=False), device_id="bench",
                               model_id="demo", labels=list(detector.info.labels), listeners=[events.append])
            for index, (image, detections) in enumerate(zip(images, decoded[seed])):
                sink(SimpleNamespace(index=index, captured_at=index * 0.1, image=image), detections, 0.0, 0.0)
            sink.close()
            events_of[seed] = events

    decode_all()
    track_all()  # warm-up
    t_decode, t_track = [], []
    for r in range(rounds):
        order = ((decode_all, t_decode), (track_all, t_track))
        for fn, out in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) / frames)
    print(f"{len(clips)} clips x 150 frames ({size[0]}x{size[1]}), demo model, {rounds} rounds")
    print(f"decode + NMS per frame:       {spread([t * 1e3 for t in t_decode])} ms")
    print(f"tracking + events per frame:  {spread([t * 1e3 for t in t_track])} ms")
    print(ratio_line("tracking + events / decode + NMS", t_track, t_decode))

    results = [score(events_of[seed], truth) for seed, _, _, truth in clips]
    found = sum(r["found"] for r in results)
    appearances = sum(r["appearances"] for r in results)
    spurious = sum(r["spurious"] for r in results)
    tracks = sum(r["tracks"] for r in results)
    print(f"events vs ground truth (defaults {EventsConfig()}):")
    print(f"  appearances found with one stable id: {found}/{appearances} = {found / appearances:.3f} "
          f"(goal >= 0.95); spurious tracks {spurious}/{tracks} = {spurious / max(tracks, 1):.3f} (goal <= 0.05)")
    print("  per clip (seed: found/appearances, spurious/tracks): " + ", ".join(
        f"{seed}: {r['found']}/{r['appearances']}, {r['spurious']}/{r['tracks']}"
        for (seed, *_), r in zip(clips, results)))
    print(f"  median events per clip: {statistics.median(len(e) for e in events_of.values())}")


if __name__ == "__main__":
    main()
