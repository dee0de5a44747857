"""The inference engine that needs no OpenVINO: OpenCV DNN's darknet importer on the CPU.

For a Pi whose stick is unplugged or whose OpenVINO has no usable plugin (the 2022.3 armhf
archive has no MYRIAD; docs/ncs2-runtimes.md). It reads the darknet cfg + weights that
`model-tools export` copies into the bundle (metadata key `darknet`), without the [region]
section: the network's output is then the last convolution's raw output, the same tensor the
IR gives, so the same numpy region decode runs. (OpenCV's own region layer also refuses
softmax=0, which our pjreddie-style cfgs use.)
Debian's python3-opencv (4.5.1 on Bullseye) has readNetFromDarknet; nothing else is needed.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import time
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

from edge_app.errors import InputError
from edge_app.metadata import ModelInfo
from edge_app.runtime import InferenceAdapter

RUNTIME = "OpenCV DNN"


def darknet_paths(info: ModelInfo) -> Tuple[Path, Path]:
    """The bundle's cfg and weights, checked against the hashes in the metadata."""
    entry = info.raw.get("darknet")
    where = str(info.path)
    if not isinstance(entry, dict):
        raise InputError("the model bundle carries no darknet cfg + weights (metadata key "
                         "'darknet'), which the OpenCV engine needs", where,
                         "re-export with a current `model-tools export` (it copies them), or "
                         "set model.engine = \"openvino\"")
    paths = []
    for kind in ("cfg", "weights"):
        path = info.path.parent / str(entry.get(kind, ""))
        if not entry.get(kind) or not path.is_file():
            raise InputError(f"darknet {kind} file '{entry.get(kind)}' named by the metadata is "
                             f"missing", where, "copy the whole export folder to the device")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry.get(f"{kind}_sha256"):
            raise InputError(f"darknet {kind} file {path.name} does not match its sha256 in the "
                             f"metadata (corrupt or replaced)", str(path),
                             "copy the export folder again")
        paths.append(path)
    return paths[0], paths[1]


def without_region(cfg_text: str) -> str:
    """The cfg up to its final [region] section: the last convolution becomes the output."""
    start = cfg_text.rfind("[region]")
    if start < 0:
        raise InputError("the darknet cfg has no [region] section", "darknet cfg",
                         "export a Tiny YOLOv2 cfg ([yolo] heads: `model-tools convert` first)")
    return cfg_text[:start]


def to_blob(tensor: np.ndarray) -> np.ndarray:
    """(1, H, W, 3) u8 BGR, the IR's input → (1, 3, H, W) f32 RGB in 0..1, darknet's input."""
    return np.ascontiguousarray(tensor[..., ::-1].transpose(0, 3, 1, 2), np.float32) / 255.0


class OpenCVNet:
    """The darknet network in OpenCV DNN; `forward(tensor)` gives the raw region input."""

    def __init__(self, info: ModelInfo):
        try:
            import cv2
        except ImportError:
            raise InputError("OpenCV is not installed", "python environment",
                             "on the Pi: apt install python3-opencv") from None
        cfg, weights = darknet_paths(info)
        cfg_bytes = without_region(cfg.read_text(encoding="utf-8")).encode()
        try:
            self.net = cv2.dnn.readNetFromDarknet(np.frombuffer(cfg_bytes, np.uint8),
                                                  np.frombuffer(weights.read_bytes(), np.uint8))
        except cv2.error as exc:
            raise InputError(f"OpenCV cannot read the darknet model: {str(exc).strip()}",
                             str(cfg), "re-export the model") from None
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.version = cv2.__version__
        self.expected_shape = tuple(info.raw.get("output", {}).get("shape", ()))

    def forward(self, tensor: np.ndarray) -> np.ndarray:
        self.net.setInput(to_blob(tensor))
        out = self.net.forward()
        if self.expected_shape and tuple(out.shape) != self.expected_shape:
            raise InputError(f"the darknet model gives output {tuple(out.shape)}, the metadata "
                             f"says {self.expected_shape}", "darknet cfg", "re-export the model")
        return out.copy()



class OpenCVAdapter(InferenceAdapter):
    """The OpenCV-DNN network behind the one adapter interface. OpenCV's forward() is
    synchronous and already uses every core, so one request runs at a time, on a worker thread
    whose completion calls back as OpenVINO's do."""

    runtime = RUNTIME

    def __init__(self, info: ModelInfo):
        super().__init__()
        self.info = info
        self.net = OpenCVNet(info)
        self.device = "CPU"
        self.version = self.net.version
        self.source = "darknet cfg + weights"
        self._lock = threading.Lock()
        self._jobs: "queue.Queue" = queue.Queue()
        self._worker: Optional[threading.Thread] = None

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.net.forward(tensor)

    def optimal_requests(self) -> int:
        return 1

    def _open(self, requests: int) -> int:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="opencv-dnn", daemon=True)
            self._worker.start()
        return 1

    def _start(self, tensor: np.ndarray, userdata: Any) -> None:
        self._jobs.put((tensor, userdata))

    def _work(self) -> None:
        while True:
            tensor, userdata = self._jobs.get()
            cpu_start = time.thread_time()
            try:
                output, error = self.infer(tensor), None
            except BaseException as exc:  # handed to the callback, never lost
                output, error = None, exc
            self._finish(userdata, output, error, cpu_start)
