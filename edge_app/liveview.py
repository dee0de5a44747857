"""The live view for aiming the camera: an opt-in HTTP server (standard library only,
ThreadingHTTPServer) with

  /             one page: the stream plus fps, inference time, counts and the last events
  /stream.mjpg  MJPEG (multipart/x-mixed-replace) of the annotated frames
  /status.json  what the page shows, as JSON

Cost on the pipeline: the sink runs in the output thread; with nobody watching it returns at
once (no drawing, no JPEG). With viewers it draws and encodes each frame once (at most
live.max_fps per second) and drops the JPEG into every viewer's one-frame slot, overwriting
what that viewer has not taken yet: a slow or stalled viewer loses frames, it never makes the
pipeline wait or memory grow. When no viewer has taken its last frame, nothing is encoded. Each viewer is served by its own thread, which gives up after
a send blocked for SEND_TIMEOUT seconds.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional

from edge_app.config import LiveConfig
from edge_app.errors import InputError
from edge_app.snapshots import annotate_detections, encode_jpeg

log = logging.getLogger(__name__)

BOUNDARY = "edgevisionframe"
SEND_TIMEOUT = 10.0
SEND_BUFFER = 64 * 1024


class Slot:
    """The latest frame for one viewer: put() replaces, take() waits for one newer than the
    last taken. Never holds more than one frame."""

    def __init__(self):
        self._cond = threading.Condition()
        self._data: Optional[bytes] = None
        self.replaced = 0  # frames overwritten before the viewer took them (dropped for it)
        self.closed = False

    def put(self, data: bytes) -> None:
        with self._cond:
            if self._data is not None:
                self.replaced += 1
            self._data = data
            self._cond.notify()

    def take(self, timeout: float) -> Optional[bytes]:
        with self._cond:
            self._cond.wait_for(lambda: self._data is not None or self.closed, timeout)
            data, self._data = self._data, None
            return data

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def depth(self) -> int:
        return 0 if self._data is None else 1


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edge-vision live view</title>
<style>body{font-family:sans-serif;margin:1em;background:#222;color:#eee}img{max-width:100%%;background:#000}
td,th{padding:2px 8px;text-align:left}#events{font-family:monospace;font-size:90%%}</style></head>
<body><h1>%(device)s</h1>
<img id="stream" src="/stream.mjpg" alt="live stream">
<table><tr><th>fps</th><td id="fps">-</td><th>inference</th><td id="inference">-</td>
<th>frames</th><td id="frames">-</td><th>viewers</th><td id="viewers">-</td></tr></table>
<h2>In view</h2><div id="counts">-</div>
<h2>Last events</h2><div id="events">-</div>
<script>
function show(s) {
  document.getElementById("fps").textContent = s.fps;
  document.getElementById("inference").textContent =
    s.inference_ms_p50 === null ? "-" : s.inference_ms_p50.toFixed(1) + " ms";
  document.getElementById("frames").textContent = s.frames;
  document.getElementById("viewers").textContent = s.viewers;
  var c = Object.keys(s.counts || {}).filter(function (k) { return s.counts[k] > 0; });
  document.getElementById("counts").textContent =
    c.length ? c.map(function (k) { return k + ": " + s.counts[k]; }).join(", ") : "nothing";
  document.getElementById("events").innerHTML = (s.events || []).slice().reverse().map(function (e) {
    var a = e.after, t = new Date(a.frame_time * 1000).toLocaleTimeString();
    return t + " " + e.type + " " + a.label + " #" + a.id + " " + a.top_score.toFixed(2);
  }).join("<br>") || "none";
}
function poll() {
  fetch("/status.json").then(function (r) { return r.json(); }).then(show)
    .catch(function () {}).then(function () { setTimeout(poll, 1000); });
}
poll();
</script></body></html>
"""


class LiveView:
    def __init__(self, config: LiveConfig, status: Callable[[], Dict] = dict):
        self.cfg = config
        self.status = status
        self._lock = threading.Lock()
        self._slots: List[Slot] = []
        self._last_encode = 0.0
        self.encoded = 0  # frames drawn and encoded (only while someone watches)
        self.offered = 0  # frames the sink was called with
        self._dropped_gone = 0
        self._skipped = 0  # frames not encoded because every viewer's slot was full
        self.server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- the pipeline side ----------------------------------------------------------------

    def sink(self, frame, detections, inference_ms: float, latency_ms: float) -> None:
        self.offered += 1
        if not self._slots:  # nobody watches: no drawing, no encoding
            return
        now = time.monotonic()
        if now - self._last_encode < 1.0 / self.cfg.max_fps:
            return
        self._last_encode = now
        with self._lock:
            slots = list(self._slots)
        if all(slot.depth for slot in slots):
            # every viewer still has an untaken frame (stalled or slow): this one would only
            # replace it, so it is dropped for them before any drawing or encoding
            self._skipped += 1
            return
        data = encode_jpeg(annotate_detections(frame.image, detections), self.cfg.quality)
        self.encoded += 1
        for slot in slots:
            slot.put(data)

    @property
    def viewers(self) -> int:
        return len(self._slots)

    def dropped(self) -> int:
        """Frames overwritten in a viewer's slot before it took them (slow viewers)."""
        with self._lock:
            return self._dropped_gone + self._skipped + sum(s.replaced for s in self._slots)

    def slot_depths(self) -> List[int]:
        with self._lock:
            return [s.depth for s in self._slots]

    # -- the server side ------------------------------------------------------------------

    def _add(self) -> Optional[Slot]:
        with self._lock:
            if len(self._slots) >= self.cfg.max_viewers:
                return None
            slot = Slot()
            self._slots.append(slot)
            return slot

    def _remove(self, slot: Slot) -> None:
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)
                self._dropped_gone += slot.replaced

    def start(self) -> None:
        view = self

        class Handler(BaseHTTPRequestHandler):
            timeout = SEND_TIMEOUT  # a viewer whose socket blocks this long is dropped
            protocol_version = "HTTP/1.0"

            def log_message(self, fmt, *args):  # the journal gets no line per request
                log.debug("live view %s: " + fmt, self.client_address[0], *args)

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/":
                    device = str(view.status().get("device_id", "edge-vision"))
                    page = PAGE % {"device": device.replace("&", "&amp;").replace("<", "&lt;")}
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", page.encode())
                elif path == "/status.json":
                    status = dict(view.status(), viewers=view.viewers, encoded=view.encoded,
                                  viewer_slots=view.slot_depths(), dropped_for_viewers=view.dropped())
                    self._send(HTTPStatus.OK, "application/json", json.dumps(status).encode())
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

            def _stream(self):
                slot = view._add()
                if slot is None:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain",
                               b"too many viewers (live.max_viewers)\n")
                    return
                try:
                    # a small kernel buffer: a slow viewer's backlog stays in our one-frame
                    # slot (where it is replaced by fresher frames), not seconds of old JPEGs
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
                    self.send_response(HTTPStatus.OK)
                    self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    while view.server is not None:
                        data = slot.take(timeout=1.0)
                        if data is None:
                            continue
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                except (OSError, ValueError):
                    pass  # the viewer went away or stalled past SEND_TIMEOUT
                finally:
                    view._remove(slot)

        try:
            server = ThreadingHTTPServer((self.cfg.host, self.cfg.port), Handler)
        except OSError as exc:
            raise InputError(f"live view cannot listen on {self.cfg.host}:{self.cfg.port}: {exc.strerror}",
                             "live.host / live.port", "choose a free port or another address") from None
        server.daemon_threads = True
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, name="live-view", daemon=True)
        self._thread.start()
        log.info("live view on http://%s:%d/", self.cfg.host, server.server_address[1])

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else 0

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        with self._lock:
            for slot in self._slots:
                slot.close()
        server.shutdown()
        server.server_close()
