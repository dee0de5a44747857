"""Capture: sources behind one small interface, and a thread that always offers the freshest frame.

Sources: a V4L2/USB camera, video file or RTSP/HTTP stream through OpenCV; a folder of images;
the Pi camera through picamera2 (imported only when used). The capture thread puts each frame
into a one-slot mailbox; a frame not yet taken is replaced and counted as dropped, so inference
always gets the newest frame and latency stays bounded when the camera outruns the stick.
A source that vanishes (camera unplugged, stream closed, a looping file deleted) is re-opened
with exponential backoff (source.retry_min doubling up to retry_max); the thread never dies of
it and reports its state. Whatever the library underneath raises (SourceError, cv2.error, ...)
is handled the same way.

A finite source (a file or folder with loop = false) is a job with a defined input, so it is
not retried: missing, unreadable (empty, garbage, header only) or ending early (fewer frames
than its header announces: truncated or corrupt) is a failure, `failure` says why, and the
daemon exits 2 after publishing what it did read. A looping file that is missing or unreadable
is retried like a camera (it may be replaced), and warned about.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from edge_app.config import SourceConfig
from edge_app.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


class SourceError(Exception):
    """The source cannot be opened or read right now (it may come back)."""


@dataclass(frozen=True)
class Frame:
    index: int  # running number of the frame from this capture (0, 1, 2, ...)
    captured_at: float  # wall clock, seconds since the epoch
    captured_mono: float  # monotonic clock, for latencies
    image: np.ndarray  # BGR u8, H x W x 3


def describe_error(exc: BaseException) -> str:
    """A source error in one line; errors of the libraries underneath keep their type's name."""
    if isinstance(exc, SourceError):
        return str(exc)
    return f"{type(exc).__module__}.{type(exc).__name__}: {exc}".strip()


def short_file_problem(uri: str, frames: int, announced: Optional[int]) -> Optional[str]:
    """Why a pass over a video file that delivered `frames` frames was not a whole file, or None.
    Some containers only estimate their frame count, hence the slack of 2 frames or 5 %."""
    if frames == 0:
        return (f"video file {uri} delivered no frame (empty, not a video, or header only)")
    if announced and frames + max(2, announced // 20) < announced:
        return (f"video file {uri} ended after {frames} of the {announced} frames its header "
                "announces (truncated or corrupt)")
    return None


class OpenCVSource:
    """Camera index, /dev/videoN, video file, or rtsp://, http:// stream."""

    def __init__(self, uri: str, cfg: SourceConfig):
        self.uri = uri
        self.cfg = cfg
        self.is_file = "://" not in uri and not uri.isdigit() and not uri.startswith("/dev/")
        self.finite = self.is_file and not cfg.loop
        self._cap = None
        self.frame_interval: Optional[float] = None
        self._announced: Optional[int] = None  # the file header's frame count
        self._pass_frames = 0  # frames read since the file was (re)opened
        self._warned_short = False

    @property
    def name(self) -> str:
        return f"opencv:{self.uri}"

    def open(self) -> None:
        import cv2

        if self.is_file and not Path(self.uri).is_file():
            raise SourceError(f"video file {self.uri} does not exist")
        if self.uri.isdigit() and int(self.uri) > 255:
            raise SourceError(f"camera index {self.uri} is out of range (0-255)")
        cap = cv2.VideoCapture(int(self.uri) if self.uri.isdigit() else self.uri)
        if not cap.isOpened():
            cap.release()
            if self.is_file:
                raise SourceError(f"cannot open video file {self.uri} (empty, not a video "
                                  "OpenCV can decode, or header only)")
            raise SourceError(f"cannot open {self.uri}")
        if not self.is_file:
            if self.cfg.width and self.cfg.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
            if self.cfg.fps:
                cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver's queue short: fresh frames
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.frame_interval = 1.0 / fps if self.is_file and self.cfg.realtime and fps > 0 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if self.is_file else 0
        self._announced = int(count) if count and 0 < count < 1e9 else None
        self._pass_frames = 0
        self._cap = cap

    def read(self) -> Optional[np.ndarray]:
        """The next frame; None when a camera or stream stops delivering or a whole file has
        been read. SourceError when a file ends short (see short_file_problem) or, looping,
        cannot be re-opened."""
        ok, image = self._cap.read()
        if ok:
            self._pass_frames += 1
            return image
        if not self.is_file:
            return None
        problem = short_file_problem(self.uri, self._pass_frames, self._announced)
        if not self.cfg.loop or self._pass_frames == 0:
            if problem:
                raise SourceError(problem)
            return None
        if problem and not self._warned_short:
            self._warned_short = True
            log.warning("%s; looping over what it holds", problem)
        # re-open rather than seek: seeking to 0 fails on some containers (MJPEG AVI)
        self.close()
        self.open()
        ok, image = self._cap.read()
        if not ok:
            raise SourceError(f"video file {self.uri} delivered no frame after the loop restarted")
        self._pass_frames = 1
        return image

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class DirectorySource:
    """The images of a folder in name order (JPEG, PNG, BMP)."""

    def __init__(self, folder: str, cfg: SourceConfig):
        self.folder = Path(folder)
        self.cfg = cfg
        self.finite = not cfg.loop
        self.frame_interval = 1.0 / cfg.fps if cfg.fps and cfg.realtime else None
        self._files: List[Path] = []
        self._next = 0

    @property
    def name(self) -> str:
        return f"directory:{self.folder}"

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"folder {self.folder} does not exist")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"folder {self.folder} holds no images")
        self._next = 0

    def read(self) -> Optional[np.ndarray]:
        """The next readable image; None at the end, or when a whole pass finds none (the
        folder went away): the capture thread then treats the source as lost."""
        import cv2

        for _ in range(len(self._files)):
            if self._next >= len(self._files):
                if not self.cfg.loop:
                    return None
                self._next = 0
            path = self._files[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            log.warning("skipping unreadable image %s", path)
        return None

    def close(self) -> None:
        self._files = []


DEFAULT_CAMERA_SIZE = (640, 480)


def picamera_size(requested: Tuple[int, int], network: Optional[Tuple[int, int, str]],
                  sensor: Tuple[int, int]) -> Tuple[int, int]:
    """The frame size to ask the Pi camera's ISP for, which scales for free what the host would
    otherwise resize on the CPU (two thirds of a Pi 3's host time per frame at 640x480).

    requested: source.width/height (0, 0 = not set); network: (width, height, resize_mode) of
    the model, None when unknown; sensor: the sensor's full resolution.
    - a size the user set is kept (say, for larger snapshots);
    - resize mode: the network size itself, the whole field stretched as the host would;
    - letterbox mode: the scaled image inside the letterbox, in the sensor's aspect ratio (the
      host then only pads); heights and widths even, as the ISP's YUV/RGB output wants.
    """
    if requested[0] and requested[1]:
        return requested
    if network is None:
        return DEFAULT_CAMERA_SIZE
    net_w, net_h, mode = network
    if mode == "letterbox":
        from edge_app.preprocess import letterbox_size

        width, height = letterbox_size(sensor[0], sensor[1], net_w, net_h)
        return width - width % 2, height - height % 2
    return net_w, net_h


class Picamera2Source:
    """The Raspberry Pi camera (picamera2 from apt on Bullseye). RGB888 is BGR in memory, which
    is what OpenCV and the model expect. Thin on purpose: everything around it is tested with
    the other sources, which share its interface; the size decision is picamera_size().

    network: (width, height, resize_mode) of the model, so that the camera delivers frames the
    host does not have to resize."""

    finite = False
    frame_interval = None

    def __init__(self, cfg: SourceConfig, network: Optional[Tuple[int, int, str]] = None):
        self.cfg = cfg
        self.network = network
        self._camera = None

    @property
    def name(self) -> str:
        return "picamera2"

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError("picamera2 is not installed (apt install python3-picamera2)") from None
        try:
            camera = Picamera2()
            size = picamera_size((self.cfg.width, self.cfg.height), self.network,
                                 tuple(camera.sensor_resolution))
            camera.configure(camera.create_preview_configuration(main={"format": "RGB888", "size": size}))
            camera.start()
            if self.network is not None and self.network[2] == "resize" and size == self.network[:2]:
                # the whole sensor stretched to the network size, as a host resize would do
                # (left alone, the ISP crops to the output's aspect ratio)
                camera.set_controls({"ScalerCrop": camera.camera_properties["ScalerCropMaximum"]})
            log.info("Pi camera delivers %dx%d frames", *size)
        except Exception as exc:  # libcamera raises many kinds
            raise SourceError(f"cannot start the Pi camera: {exc}") from None
        self._camera = camera

    def read(self) -> Optional[np.ndarray]:
        try:
            return self._camera.capture_array("main")
        except Exception as exc:
            log.warning("Pi camera read failed: %s", exc)
            return None

    def close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop()
                self._camera.close()
            finally:
                self._camera = None


def make_source(cfg: SourceConfig, network: Optional[Tuple[int, int, str]] = None):
    """network: (width, height, resize_mode) of the model, for sources that can deliver frames
    at the size the model wants (the Pi camera)."""
    kind = cfg.kind
    if kind == "auto":
        if cfg.uri in ("picamera", "picamera2"):
            kind = "picamera2"
        elif Path(cfg.uri).is_dir():
            kind = "directory"
        else:
            kind = "opencv"
    if kind == "picamera2":
        return Picamera2Source(cfg, network)
    if kind == "directory":
        return DirectorySource(cfg.uri, cfg)
    return OpenCVSource(cfg.uri, cfg)


class FrameMailbox:
    """One slot holding the newest frame. put() replaces an untaken frame and counts it dropped;
    with wait=True it waits for the slot to empty instead (no drops)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None
        self.dropped = 0
        self.closed = False

    def put(self, frame: Frame, wait: bool = False, timeout: float = 0.5) -> bool:
        """False when waiting timed out (the caller retries, keeping its heartbeat)."""
        with self._cond:
            if wait and not self._cond.wait_for(lambda: self._frame is None or self.closed, timeout):
                return False
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()
            return True

    def take(self, timeout: float) -> Optional[Frame]:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self.closed, timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def depth(self) -> int:
        return 0 if self._frame is None else 1


class Capture(threading.Thread):
    """Reads the source into the mailbox until stopped or (finite sources) the end."""

    def __init__(self, source, cfg: SourceConfig, heartbeat, stop: threading.Event):
        super().__init__(name="capture", daemon=True)
        self.source = source
        self.cfg = cfg
        self.heartbeat = heartbeat
        self.stop_event = stop
        self.mailbox = FrameMailbox()
        self.ended = threading.Event()
        self.state = "starting"
        self.frames = 0
        self.reconnects = 0
        self.last_error = ""
        self.failure: Optional[str] = None  # why a finite source failed (the run then exits 2)
        self._delay = cfg.retry_min

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self.state:
            (log.warning if state in ("lost", "retrying") else log.info)(
                "source %s: %s%s", self.source.name, state, f" ({detail})" if detail else "")
        self.state = state

    def _sleep(self, seconds: float) -> bool:
        """Sleep in short steps, beating; True if stopped meanwhile."""
        end = time.monotonic() + seconds
        while not self.stop_event.is_set():
            self.heartbeat.beat()
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.stop_event.wait(min(left, 0.5))
        return True

    def _fail(self, reason: str) -> None:
        self.failure = self.last_error = reason
        self._set_state("failed", reason)

    def _back_off(self, reason: str) -> bool:
        """Wait before the next attempt, doubling the delay; True if stopped meanwhile."""
        self.last_error = reason
        self._set_state("retrying", f"{reason}; next try in {self._delay:.0f} s")
        self.reconnects += 1
        stopped = self._sleep(self._delay)
        self._delay = min(self._delay * 2, self.cfg.retry_max)
        return stopped

    def _open_with_backoff(self) -> bool:
        while not self.stop_event.is_set():
            self.heartbeat.beat()
            try:
                self.source.open()
                self._set_state("running")
                return True
            # SourceError, or whatever the library underneath raises (cv2.error, OSError, ...)
            except Exception as exc:
                reason = describe_error(exc)
                self.source.close()
            if self.source.finite:
                self._fail(reason)
                return False
            if self._back_off(reason):
                return False
        return False

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.source.close()
            self.ended.set()
            self.mailbox.close()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if not self._open_with_backoff():
                return
            problem, count = None, 0
            try:
                count = self._stream()
            # SourceError, or whatever the library underneath raises (cv2.error, OSError, ...)
            except Exception as exc:
                problem = describe_error(exc)
            finally:
                self.source.close()
            if self.stop_event.is_set():
                return
            if self.source.finite:
                if problem or not count:
                    self._fail(problem or f"{self.source.name} delivered no frame")
                else:
                    self._set_state("ended")
                return
            if count:
                self._delay = self.cfg.retry_min  # it worked for a while: start over quickly
                self._set_state("lost", problem or "no frame from the source")
            elif self._back_off(problem or "the source opened but delivered no frame"):
                return

    def _stream(self) -> int:
        """Read frames into the mailbox until the source ends or stop; returns how many."""
        started, count = time.monotonic(), 0
        while not self.stop_event.is_set():
            self.heartbeat.beat()
            image = self.source.read()
            if image is None:
                break
            now = time.monotonic()
            frame = Frame(self.frames, time.time(), now, image)
            self.frames += 1
            while not self.mailbox.put(frame, wait=self.cfg.every_frame):
                self.heartbeat.beat()
                if self.stop_event.is_set():
                    return count
            count += 1
            if self.source.frame_interval:  # play files at their own pace
                self._sleep(started + count * self.source.frame_interval - time.monotonic())
        return count


def check_source(cfg: SourceConfig) -> str:
    """Open the source and read one frame, for `edge-app check`; InputError if it fails."""
    source = make_source(cfg)
    try:
        source.open()
        image = source.read()
    # SourceError, or whatever the library underneath raises (cv2.error, OSError, ...)
    except Exception as exc:
        raise InputError(describe_error(exc), "source.uri",
                         "check the camera, file or stream address") from None
    finally:
        source.close()
    if image is None:
        raise InputError("the source opened but delivered no frame", "source.uri")
    return f"{source.name}: {image.shape[1]}x{image.shape[0]}"
