"""The pipeline against FakeAdapter (no OpenVINO, no broker): back-pressure bounds the frames
held (in flight plus waiting in the re-order buffer) by twice the request count under a slow sink, a stalled sink silences the watchdog, results
come out in frame order, errors carried by the callback fail the run, and stop() drains every
frame in flight to the sinks before the publisher is stopped."""
from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
import pytest

from edge_app.capture import Capture, make_source
from edge_app.config import build
from edge_app.daemon import Daemon
from edge_app.detector import Detector
from edge_app.metadata import sha256_file
from edge_app.notify import Notifier
from edge_app.pipeline import Heartbeat, Inference, Output
from tests.edge.fake_adapter import FakeAdapter

W, H, CLASSES, NUM = 64, 64, 2, 2


@pytest.fixture
def model(tmp_path):
    """Metadata of a 64x64 two-class model; the IR files only need to exist for FakeAdapter."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "m.xml").write_text("<net/>")
    (folder / "m.bin").write_bytes(b"\0" * 4)
    channels = (CLASSES + 5) * NUM
    (folder / "m.json").write_text(json.dumps({
        "schema_version": "1.0", "model_id": "fake", "labels": ["a", "b"],
        "ir": {"xml": "m.xml", "bin": "m.bin", "precision": "FP32",
               "xml_sha256": sha256_file(folder / "m.xml"),
               "bin_sha256": sha256_file(folder / "m.bin")},
        "input": {"width": W, "height": H},
        "region": {"classes": CLASSES, "num": NUM, "coords": 4, "anchors": [1.0, 1.0, 2.0, 2.0],
                   "softmax": True},
        "output": {"shape": [1, channels, H // 32, W // 32]},
        "resize_mode": "resize", "thresholds": {"confidence": 0.25, "nms": 0.45}}))
    return folder


@pytest.fixture
def frames(tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.full((48, 80, 3), 40 * i, np.uint8))
    return folder


def detector(model, **fake):
    channels = (CLASSES + 5) * NUM
    return Detector(model, adapter=FakeAdapter((1, channels, H // 32, W // 32), **fake))


def config(model, frames, **service):
    return build({"model": {"path": str(model), "requests": 3},
                  "source": {"uri": str(frames), "loop": True, "realtime": False},
                  "mqtt": {"enabled": False},
                  "service": {"stall_timeout": 1.0, "status_interval": 60.0, **service}})


def test_frames_held_never_exceed_twice_the_request_count_under_a_slow_sink(model, frames):
    cfg = config(model, frames)
    det = detector(model, delays=(0.02, 0.0, 0.01))  # completions out of order
    stop = threading.Event()
    capture = Capture(make_source(cfg.source), cfg.source, Heartbeat("capture"), stop)
    inference = Inference(det, capture, 3, stop)
    seen, depths = [], []

    def slow_sink(frame, detections, infer_ms, latency_ms):
        # sampled while the consumer lags: what waits behind it must stay within the slots
        depths.append(inference.results.depth + inference.in_flight)
        seen.append(frame.index)
        time.sleep(0.03)  # a slow terminal / SD card

    output = Output(det, inference, (), [slow_sink])
    for thread in (output, inference, capture):
        thread.start()
    while len(seen) < 40 and output.is_alive():
        time.sleep(0.05)
    stop.set()
    for thread in (capture, inference, output):
        thread.join(10)
    assert output.error is None and inference.error is None
    assert len(seen) >= 40 and seen == sorted(seen)  # frame order kept
    assert inference.jobs == 3 and inference.held_at_most == 6
    assert 1 <= inference.max_depth <= 6, inference.max_depth
    assert max(depths) <= 6 and det.adapter.max_in_flight <= 3
    assert inference.submitted == inference.completed == output.processed
    assert capture.mailbox.dropped > 0  # the slow consumer made capture drop, not queue


class RecordingNotifier(Notifier):
    """Notifier test double: a watchdog is configured, and each message is recorded."""

    def __init__(self, ping_interval: float):
        super().__init__({})
        self.watchdog_usec = int(ping_interval * 2e6)
        self.sent = []

    def send(self, message: str) -> bool:
        self.sent.append(message)
        return True

    def pings(self) -> int:
        return self.sent.count("WATCHDOG=1")


def run_in_thread(daemon):
    result = {}
    daemon.start()
    thread = threading.Thread(target=lambda: result.setdefault("code", daemon.supervise()))
    thread.start()
    return thread, result


def wait_until(predicate, what, timeout=30.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_stalled_consumer_stops_the_watchdog_pings(model, frames, caplog):
    release = threading.Event()
    delivered = []

    def stalling_sink(frame, detections, infer_ms, latency_ms):
        delivered.append(frame.index)
        if len(delivered) == 5:
            release.wait()  # the consumer stops consuming

    notifier = RecordingNotifier(ping_interval=0.1)
    daemon = Daemon(config(model, frames), sinks=[stalling_sink], notifier=notifier,
                    detector=detector(model))
    caplog.set_level(logging.ERROR, logger="edge_app.daemon")
    thread, result = run_in_thread(daemon)
    try:
        wait_until(lambda: notifier.pings() >= 2, "pings while healthy")
        wait_until(lambda: "output" in daemon.stalled, "the output stage to count as stalled")
        pings = notifier.pings()
        withheld = lambda: sum("withholding the watchdog ping" in r.message for r in caplog.records)
        wait_until(lambda: withheld() >= 3, "three withheld pings")
        assert notifier.pings() == pings  # not one ping while the consumer is stalled
        # the frames behind the stuck one fill every other slot, and no more
        inference = daemon.inference
        wait_until(lambda: inference.results.depth + inference.in_flight == inference.held_at_most - 1,
                   "the slots beside the stuck frame to fill")
        time.sleep(0.2)
        assert inference.results.depth + inference.in_flight == inference.held_at_most - 1
        assert inference.held_at_most == 2 * inference.jobs
    finally:
        release.set()
        daemon.stop_event.set()
        thread.join(30)
        daemon.stop()
    assert result["code"] == 0


def test_an_error_carried_by_the_callback_fails_the_run(model, frames, caplog):
    delivered = []
    daemon = Daemon(config(model, frames), sinks=[lambda f, *_: delivered.append(f.index)],
                    notifier=RecordingNotifier(0.1), detector=detector(model, fail_at={7}))
    thread, result = run_in_thread(daemon)
    thread.join(60)
    daemon.stop()
    assert result["code"] == 1
    # every frame submitted before the failed one reached the sinks, in order, and none after
    assert len(delivered) == 7 and delivered == sorted(delivered)
    assert "device error on request 7" in caplog.text


def test_stop_drains_frames_in_flight_to_the_sinks_before_the_publisher_stops(model, frames):
    events = []

    class RecordingPublisher:
        """Publisher test double: records when it is stopped."""

        def stop(self):
            events.append("publisher stopped")

    daemon = Daemon(config(model, frames), sinks=[lambda f, *_: events.append("frame")],
                    notifier=RecordingNotifier(0.1), detector=detector(model, delays=(0.2,)))
    daemon.start()
    daemon.publisher = RecordingPublisher()
    wait_until(lambda: daemon.inference.in_flight == 3, "three requests in flight")
    daemon.stop()
    submitted = daemon.inference.submitted
    assert events == ["frame"] * submitted + ["publisher stopped"]
    assert submitted >= 3 and daemon.detector.adapter.in_flight == 0
