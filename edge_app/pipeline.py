"""The daemon's data path: capture → async inference → decode → publish, in threads joined by
bounded hand-overs (a one-frame mailbox, N in-flight requests, a re-order buffer of at most 2N).

Each stage beats a heartbeat on every loop turn, busy or idle-waiting; a stage silent for
service.stall_timeout is stalled, and the supervisor then stops the systemd watchdog pings so
that systemd restarts the service. Results leave inference in frame order.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple

from edge_app.capture import Capture, Frame
from edge_app.decode import filter_classes
from edge_app.detection import Detection
from edge_app.detector import Detector
from edge_app.messages import EncodedDetections, encode_detections

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, name: str):
        self.name = name
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self.last


class Reorder:
    """Results arrive in completion order; pop() gives them back in submission order."""

    def __init__(self):
        self._cond = threading.Condition()
        self._items: Dict[int, tuple] = {}
        self._next = 0
        self.closed = False

    def put(self, seq: int, item: tuple) -> None:
        with self._cond:
            self._items[seq] = item
            self._cond.notify_all()

    def pop(self, timeout: float) -> Optional[tuple]:
        with self._cond:
            self._cond.wait_for(lambda: self._next in self._items or self.closed, timeout)
            item = self._items.pop(self._next, None)
            if item is not None:
                self._next += 1
            return item

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def depth(self) -> int:
        return len(self._items)


class Inference(threading.Thread):
    """Takes the freshest frame, prepares it and submits it to the adapter; the callback stores
    the raw output (or the error) in the re-order buffer.

    Back-pressure: a frame needs one of 2 x `jobs` slots, taken before the frame and given
    back only when Output has handed the result to every sink (release()). At most `jobs`
    frames are in flight (the adapter's requests), so at most 2 x `jobs` frames are held in
    all, whatever the sinks do: a slow consumer slows inference down (the capture mailbox then
    drops the stale frames) instead of growing memory. Slots beyond the requests let a free
    request take the next frame while Output still decodes and publishes the previous result:
    with only `jobs` slots a request stood idle through that, and every stream of the CPU
    plugin with it."""

    def __init__(self, detector: Detector, capture: Capture, jobs: int, stop: threading.Event):
        super().__init__(name="inference", daemon=True)
        self.detector = detector
        self.adapter = detector.adapter
        self.capture = capture
        self.heartbeat = Heartbeat("inference")
        self.stop_event = stop
        self.results = Reorder()
        self.jobs = self.adapter.open(jobs, self._done)
        self.held_at_most = 2 * self.jobs  # frames in flight + results not yet delivered
        self._slots = threading.BoundedSemaphore(self.held_at_most)
        self._lock = threading.Lock()  # the counters are updated from the runtime's threads
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.max_depth = 0  # the deepest the re-order buffer has been (at most held_at_most)
        self.error: Optional[BaseException] = None

    @property
    def callback_cpu(self) -> float:
        """CPU seconds of host work done on the runtime's threads (see cputime.py)."""
        return self.adapter.callback_cpu

    def _done(self, userdata, output, error) -> None:
        seq, frame, started = userdata
        with self._lock:
            self.completed += 1
            if error is not None:
                self.failed += 1
                if self.error is None:
                    self.error = error
        self.results.put(seq, (frame, output, (time.monotonic() - started) * 1e3))
        with self._lock:
            self.max_depth = max(self.max_depth, self.results.depth)

    def release(self) -> None:
        """Output is done with one result: its slot may take a new frame."""
        self._slots.release()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self.submitted - self.completed

    def _next_frame(self) -> Optional[Frame]:
        """The newest frame once a slot and a request are free; None (the slot given back)
        when none came within the turn."""
        if not self._slots.acquire(timeout=0.5):
            return None  # every slot is with a result the consumer has not finished yet
        frame = None
        try:
            # a free request first, then the newest frame: a frame taken earlier would age
            # while every request is busy
            if self.adapter.wait_for_free_slot(timeout=0.5):
                frame = self.capture.mailbox.take(timeout=0.5)
            return frame
        finally:
            if frame is None:
                self._slots.release()

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.heartbeat.beat()
                if self.adapter.callback_error is not None:
                    raise self.adapter.callback_error
                frame = self._next_frame()
                if frame is None:
                    if self.capture.ended.is_set() and self.capture.mailbox.depth == 0:
                        break
                    continue
                tensor = self.detector.prepare(frame.image)
                with self._lock:
                    seq = self.submitted
                    self.submitted += 1
                try:
                    self.adapter.submit(tensor, (seq, frame, time.monotonic()))
                except BaseException:
                    with self._lock:
                        self.submitted -= 1
                    self._slots.release()
                    raise
            while not self.adapter.drain(timeout=0.5):  # what is in flight still comes out
                self.heartbeat.beat()
        except BaseException as exc:
            with self._lock:
                if self.error is None:
                    self.error = exc
        finally:
            self.results.close()


class Output(threading.Thread):
    """Decodes results in frame order and hands them to the sinks (MQTT, terminal, tests).

    Its heartbeat beats once per result or idle turn, so a sink that blocks silences it and
    the supervisor withholds the watchdog pings."""

    def __init__(self, detector: Detector, inference: Inference, classes: Tuple[str, ...],
                 sinks: List[Callable[[Frame, List[Detection], float, float], None]]):
        super().__init__(name="output", daemon=True)
        self.detector = detector
        self.inference = inference
        self.classes = classes
        self.sinks = sinks
        self.heartbeat = Heartbeat("output")
        self.first_frame = threading.Event()
        self.processed = 0
        self.inference_ms: Deque[float] = deque(maxlen=1000)
        self.latency_ms: Deque[float] = deque(maxlen=1000)
        self.done_times: Deque[float] = deque(maxlen=1000)
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            while True:
                self.heartbeat.beat()
                item = self.inference.results.pop(timeout=0.5)
                if item is None:
                    if self.inference.results.closed and self.inference.results.depth == 0:
                        return
                    continue
                try:
                    self._deliver(*item)
                finally:
                    self.inference.release()
        except BaseException as exc:
            self.error = exc

    def _deliver(self, frame: Frame, raw, infer_ms: float) -> None:
        if raw is None:
            raise RuntimeError(f"inference failed: {self.inference.error!r}")
        height, width = frame.image.shape[:2]
        detections = filter_classes(self.detector.decode(raw, width, height), self.classes)
        latency = (time.monotonic() - frame.captured_mono) * 1e3
        for sink in self.sinks:
            sink(frame, detections, infer_ms, latency)
        self.processed += 1
        self.inference_ms.append(infer_ms)
        self.latency_ms.append((time.monotonic() - frame.captured_mono) * 1e3)
        self.done_times.append(time.monotonic())
        self.first_frame.set()

    def fps(self, window: float = 10.0) -> float:
        now = time.monotonic()
        recent = [t for t in list(self.done_times) if now - t <= window]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)


def detections_sink(write: Callable[[EncodedDetections], None], device_id: str, model_id: str):
    """The one place a frame's detections become its message; MQTT (Publisher.detections) and
    `edge-app run --jsonl` both write what it builds."""
    def sink(frame: Frame, detections: List[Detection], infer_ms: float, latency_ms: float) -> None:
        height, width = frame.image.shape[:2]
        write(encode_detections(
            detections, device_id=device_id, model_id=model_id, frame_id=frame.index,
            captured_at=frame.captured_at, frame_width=width, frame_height=height,
            inference_ms=infer_ms, latency_ms=latency_ms))
    return sink


def frames_per_class(counter: Dict[str, int]):
    def sink(frame, detections, infer_ms, latency_ms):
        for d in detections:
            counter[d.label] = counter.get(d.label, 0) + 1
    return sink
