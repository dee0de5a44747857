"""`edge-app run`: start the stages in dependency order, supervise, stop in reverse.

Start-up: config → model on the device (loud, explicit fallback) → MQTT (background connect) →
capture → inference → output. READY=1 goes to systemd once the first frame has gone through,
or once the pipeline runs and waits for a source that is not there yet (a camera unplugged at
boot: STATUS says "source retrying", capture retries with backoff, the watchdog keeps being
fed because capture keeps beating). The supervisor (main thread) then pings the watchdog at
half WATCHDOG_USEC while no stage is stalled, updates STATUS= with live fps, and publishes stats.

Exits: SIGTERM/SIGINT: stop capture, drain the requests in flight, publish "stopped", exit 0.
A finite source (a file) ends the run the same way once every frame has been published: exit
0 if it was read whole, 2 if it failed (missing, unreadable, truncated; see capture.py). A
stage failure exits 1. SIGHUP reloads: the configuration is read again and, if valid, the
pipeline is stopped as for SIGTERM and started again with it in the same process (RELOADING=1,
then READY=1); an invalid new configuration is logged and the running one kept.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Callable, Dict, List, Optional

from edge_app import __version__
from edge_app.allocator import limit_arenas
from edge_app.capture import Capture, make_source
from edge_app.config import Config
from edge_app.cputime import HostCpu
from edge_app.detector import Detector
from edge_app.errors import InputError
from edge_app.messages import STATS_SCHEMA, cpu_temperature, percentile
from edge_app.notify import Notifier
from edge_app.pipeline import Heartbeat, Inference, Output, detections_sink, frames_per_class

log = logging.getLogger(__name__)

MYRIAD_REQUESTS = 4  # the NCS2's optimum: 2 executors x 2 requests


def check_classes(classes, labels) -> None:
    """detect.classes may only name classes the model has (checked once it is loaded)."""
    unknown = [c for c in classes if c not in labels]
    if unknown:
        raise InputError(f"detect.classes names {', '.join(map(repr, unknown))}, which the model "
                         f"does not detect (its classes: {', '.join(labels)})", "detect.classes",
                         "use the model's class names, or leave detect.classes empty for all")


def load_detector(config: Config) -> Detector:
    """The model on the configured engine and device, or on the fallbacks, said loudly:
    model.device → model.fallback (an OpenVINO device) → the OpenCV-DNN engine on the CPU when
    OpenVINO cannot run the model here at all (not installed, no usable device)."""
    m, d = config.model, config.detect
    conf = d.confidence if d.confidence >= 0 else None
    nms = d.nms if d.nms >= 0 else None
    if m.engine == "opencv":
        log.warning("*** model.engine = \"opencv\": OpenCV DNN on the CPU, no OpenVINO, no NCS2 ***")
        return Detector(m.path, "CPU", conf, nms, engine="opencv")
    try:
        return Detector(m.path, m.device, conf, nms, hint=m.hint)
    except InputError as exc:
        if exc.where not in ("device", "python environment") or not m.fallback:
            raise
        problem = exc
    if problem.where == "device" and m.fallback not in ("opencv", m.device):
        log.warning("*** device %s is not available (%s); FALLING BACK to %s as model.fallback "
                    "says. Set model.fallback = \"\" to refuse to start instead. ***",
                    m.device, problem.what, m.fallback)
        try:
            return Detector(m.path, m.fallback, conf, nms, hint=m.hint)
        except InputError as exc:
            if exc.where != "device":
                raise
            problem = exc
    from edge_app.runtime_report import openvino_report

    log.warning("*** OpenVINO cannot run the model here (%s; %s); FALLING BACK to the OpenCV-DNN "
                "engine on the CPU, much slower than the NCS2. Set model.fallback = \"\" to refuse "
                "to start instead. ***", problem.what,
                openvino_report().verdict if problem.where == "device" else problem.fix)
    return Detector(m.path, "CPU", conf, nms, engine="opencv")


def request_count(config: Config, detector: Detector) -> int:
    if config.model.requests:
        return config.model.requests
    if detector.adapter.device.startswith("MYRIAD"):
        return MYRIAD_REQUESTS
    return max(1, detector.adapter.optimal_requests())


class Daemon:
    def __init__(self, config: Config, sinks: Optional[List[Callable]] = None,
                 notifier: Optional[Notifier] = None, detector: Optional[Detector] = None,
                 event_listeners: Optional[List[Callable]] = None,
                 detection_writers: Optional[List[Callable]] = None):
        """detector: an already loaded model (tests pass one with a stand-in adapter); by
        default start() loads the configured one. detection_writers: each gets every frame's
        detections message (messages.EncodedDetections), as MQTT does (`run --jsonl`)."""
        self.config = config
        self.extra_sinks = sinks or []
        self.detection_writers = detection_writers or []
        self.event_listeners = event_listeners or []
        self.objects = None  # tracked objects → events, counts, snapshots (edge_app/objects.py)
        self.live = None  # the HTTP live view (edge_app/liveview.py)
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.started = time.monotonic()
        self.per_class: Dict[str, int] = {}
        self.publisher = None
        self.detector: Optional[Detector] = detector
        self.capture: Optional[Capture] = None
        self.inference: Optional[Inference] = None
        self.output: Optional[Output] = None
        self.stalled: List[str] = []
        self.host_cpu = HostCpu()
        self._hangup = threading.Event()
        self.reload: Optional[Callable[[], Config]] = None  # re-reads the configuration (SIGHUP)
        self.next_config: Optional[Config] = None  # set when supervise() ended for a reload

    # -- start / stop ---------------------------------------------------------------------

    def start(self) -> None:
        config = self.config
        # OpenCV starts its worker pool on the first parallel resize: start it before the runtime
        # loads, so the pool counts as host work and the threads born later as OpenVINO's
        import numpy as np

        from edge_app.preprocess import prepare

        prepare(np.zeros((480, 640, 3), np.uint8), 416, 416, "resize")
        self.host_cpu.mark_before_runtime()
        if self.detector is None:
            self.detector = load_detector(config)
        check_classes(config.detect.classes, self.detector.info.labels)
        info = self.detector.info
        log.info("model %s (%s, %dx%d, %d classes) on %s", info.model_id, info.precision,
                 info.width, info.height, info.classes, self.detector.adapter.describe())
        sinks = [frames_per_class(self.per_class)] + self.extra_sinks + [
            detections_sink(write, config.device_id, info.model_id)
            for write in self.detection_writers]
        labels = [label for label in info.labels
                  if not config.detect.classes or label in config.detect.classes]
        if config.mqtt.enabled:
            from edge_app.mqtt import Publisher

            self.publisher = Publisher(config)
            if config.discovery.enabled:
                from edge_app import discovery

                discovery.attach(self.publisher, prefix=config.discovery.prefix, device_id=config.device_id,
                                 configs=discovery.discovery_configs(
                                     prefix=config.discovery.prefix, topic_base=config.topic_base,
                                     device_id=config.device_id, model_id=info.model_id, version=__version__,
                                     labels=labels, device_name=config.discovery.device_name))
            self.publisher.start()
            if config.mqtt.detections:
                sinks.insert(0, detections_sink(self.publisher.detections, config.device_id, info.model_id))
        if config.events.enabled:
            from edge_app.objects import ObjectsSink

            self.objects = ObjectsSink(config.events, config.snapshots, device_id=config.device_id,
                                       model_id=info.model_id, labels=labels,
                                       send=self.publisher.send if self.publisher is not None else None,
                                       listeners=self.event_listeners)
            sinks.append(self.objects)
        if config.live.enabled:
            from edge_app.liveview import LiveView

            self.live = LiveView(config.live, status=self.live_status)
            self.live.start()
            sinks.append(self.live.sink)
        network = (info.width, info.height, info.resize_mode)
        self.capture = Capture(make_source(config.source, network), config.source, Heartbeat("capture"),
                               self.stop_event)
        self.inference = Inference(self.detector, self.capture, request_count(config, self.detector),
                                   self.stop_event)
        self.output = Output(self.detector, self.inference, config.detect.classes, sinks)
        hint = getattr(self.detector.adapter, "hint", None)
        log.info("%d inference requests in flight at most%s", self.inference.jobs,
                 f" (OpenVINO hint {hint} for model.hint {config.model.hint})" if hint else "")
        for thread in (self.output, self.inference, self.capture):
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.notifier.stopping("stopping")
        # capture may sit in a blocking read (a hung camera): it is a daemon thread, so do
        # not wait long for it; inference and output drain what is already in flight
        for thread, wait in ((self.capture, 2), (self.inference, 10), (self.output, 10)):
            if thread is not None and thread.is_alive():
                thread.join(timeout=wait)
                if thread.is_alive():
                    log.error("stage %s did not stop within %d s", thread.name, wait)
        # the output stage has stopped: end the objects still in view (their `end` events
        # and snapshots go out before the publisher says "stopped")
        if self.objects is not None and not (self.output is not None and self.output.is_alive()):
            try:
                self.objects.close()
            except Exception:
                log.exception("ending the tracked objects failed")
        if self.live is not None:
            self.live.stop()
        if self.publisher is not None:
            self.publisher.stop()

    # -- supervision ----------------------------------------------------------------------

    def stages(self):
        return [self.capture.heartbeat, self.inference.heartbeat, self.output.heartbeat]

    def healthy(self) -> bool:
        limit = self.config.service.stall_timeout
        self.stalled = [h.name for h in self.stages() if h.silent_for() > limit]
        return not self.stalled

    def failure(self) -> Optional[BaseException]:
        return self.inference.error or self.output.error

    def finished(self) -> bool:
        return not self.output.is_alive()

    def stats(self) -> dict:
        out, inf, cap = self.output, self.inference, self.capture
        pub = self.publisher
        infer = list(out.inference_ms)
        latency = list(out.latency_ms)
        return {
            "schema": STATS_SCHEMA,
            "device_id": self.config.device_id,
            "model_id": self.detector.info.model_id,
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "device": self.detector.adapter.device,
            "engine": f"{self.detector.adapter.runtime} {self.detector.adapter.version}",
            "fps": round(out.fps(), 2),
            "frames": {"captured": cap.frames, "processed": out.processed,
                       "dropped": cap.mailbox.dropped},
            "inference_ms": {"p50": percentile(infer, 50), "mean": (sum(infer) / len(infer)) if infer else None},
            "latency_ms": {"p50": percentile(latency, 50), "p95": percentile(latency, 95)},
            "queues": {"capture": cap.mailbox.depth, "in_flight": inf.in_flight,
                       "reorder": inf.results.depth, "mqtt": pub.queued if pub else 0,
                       "mqtt_outage_bytes": pub.outage_bytes if pub else 0},
            "source": {"name": cap.source.name, "state": cap.state, "reconnects": cap.reconnects},
            "mqtt": {"connected": bool(pub and pub.connected), "published": pub.published if pub else 0,
                     "overflow": pub.overflow if pub else 0, "skipped": pub.skipped if pub else 0},
            "cpu_temp_c": cpu_temperature(),
            "host_cpu_ms_per_frame": self.host_cpu_ms_per_frame(),
        }

    def live_status(self) -> dict:
        """What the live view's status page shows."""
        if self.output is None:
            return {}
        infer = list(self.output.inference_ms)
        return {"device_id": self.config.device_id, "fps": round(self.output.fps(), 2),
                "frames": self.output.processed,
                "inference_ms_p50": percentile(infer, 50),
                "counts": dict(self.objects.last_counts or {}) if self.objects else {},
                "events": list(self.objects.recent) if self.objects else []}

    def host_cpu_ms_per_frame(self) -> Optional[float]:
        """Host CPU per frame since the previous call (see cputime.py), to 0.001 ms."""
        value = self.host_cpu.sample(self.output.processed, self.inference.callback_cpu)
        return None if value is None else round(value, 3)

    def status_line(self) -> str:
        cap = self.capture
        text = f"{self.output.fps():.1f} fps, {self.output.processed} frames, source {cap.state}"
        if self.publisher is not None:
            text += ", mqtt " + ("connected" if self.publisher.connected else "disconnected")
        if self.stalled:
            text += f", STALLED: {', '.join(self.stalled)}"
        return text

    def supervise(self) -> int:
        """Main-thread loop until stop, the end of a finite source, or a stage failure."""
        svc = self.config.service
        ping = self.notifier.ping_interval
        tick = min(0.5, ping) if ping else 0.5
        ready = False
        warned_broker = False
        next_ping = next_status = time.monotonic()
        next_stats = time.monotonic() + self.config.mqtt.stats_interval
        while not self.stop_event.is_set():
            error = self.failure()
            if error is not None:
                log.error("pipeline failed: %s", error)
                return 1
            if self.finished():
                if self.capture.failure:
                    log.error("source failed: %s (the %d frames read before it were processed)",
                              self.capture.failure, self.output.processed)
                    return 2
                log.info("source ended and every frame was processed")
                return 0
            if self._hangup.is_set() and self._reload_requested():
                return 0
            now = time.monotonic()
            if not ready and (self.output.first_frame.is_set() or self.capture.state == "retrying"):
                ready = True
                self.notifier.ready(self.status_line())
                log.info("first frame through the pipeline: ready" if self.output.first_frame.is_set()
                         else "pipeline running, waiting for the source: ready")
            healthy = self.healthy()
            if ping and ready and now >= next_ping:
                if healthy:
                    self.notifier.watchdog()
                else:
                    log.error("stage(s) %s stalled for more than %.0f s: withholding the "
                              "watchdog ping", ", ".join(self.stalled), svc.stall_timeout)
                next_ping = now + ping
            if now >= next_status:
                self.notifier.status(self.status_line())
                next_status = now + svc.status_interval
            if (self.publisher is not None and not self.publisher.connected and not warned_broker
                    and now - self.started > 5):
                warned_broker = True
                log.warning("MQTT broker %s:%d not reachable: detections are not published until it is "
                            "(retrying in the background)", self.config.mqtt.host, self.config.mqtt.port)
            if self.publisher is not None and self.config.mqtt.stats_interval and now >= next_stats:
                self.publisher.publish("stats", self.stats(), retain=False)
                next_stats = now + self.config.mqtt.stats_interval
            self.stop_event.wait(tick)
        return 0

    def _reload_requested(self) -> bool:
        """SIGHUP: True (stop, then start again with next_config) if the configuration read
        again is valid; otherwise log why and keep running as we are."""
        self._hangup.clear()
        if self.reload is None:
            log.warning("SIGHUP: nothing to reload from; ignored")
            return False
        try:
            config = self.reload()
        except InputError as exc:
            log.error("SIGHUP: the configuration was not reloaded, the running one stays: %s", exc)
            return False
        log.info("SIGHUP: configuration %s read again; restarting the pipeline with it", config.path)
        self.notifier.send("RELOADING=1")
        self.next_config = config
        return True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        # before any worker thread allocates: keeps RSS flat at full speed (allocator.py)
        limit_arenas()
        signal.signal(signal.SIGHUP, lambda *_: self._hangup.set())
        code = 1
        try:  # stop() also after a failed start: a started publisher says "stopped" and ends
            self.start()
            code = self.supervise()
        finally:
            self.stop()
        return code
