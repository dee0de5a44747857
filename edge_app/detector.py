"""Frame in, detections out: preprocess → OpenVINO → region decode → frame pixels.

The Pi's daemon and the training box's evaluator both call this, so a checkpoint is scored
exactly as the device will run it.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app import metadata
from edge_app.decode import Found, RegionSpec, decode, decode_batch
from edge_app.detection import Detection
from edge_app.preprocess import prepare
from edge_app.runtime import InferenceAdapter, open_adapter


class Detector:
    """The model's metadata, its thresholds and the inference adapter that runs it.

    model: the exported model's folder or metadata file, or its metadata already loaded.
    adapter: the runtime to use (tests pass a stand-in); by default the one open_adapter()
    picks for `device`."""

    def __init__(self, model: Union[str, Path, metadata.ModelInfo], device: str = "CPU",
                 conf_threshold: Optional[float] = None, nms_threshold: Optional[float] = None,
                 hint: Optional[str] = None, adapter: Optional[InferenceAdapter] = None,
                 engine: str = "openvino"):
        self.info = model if isinstance(model, metadata.ModelInfo) else metadata.load(model)
        self.adapter = adapter if adapter is not None else \
            open_adapter(self.info, device, hint, engine)
        self.spec = RegionSpec.from_info(self.info)
        self.conf_threshold = self.info.conf_threshold if conf_threshold is None else conf_threshold
        self.nms_threshold = self.info.nms_threshold if nms_threshold is None else nms_threshold

    @property
    def preprocessing(self) -> tuple:
        """prepare()'s arguments after the frame: input width, height, resize mode, interpolation."""
        return self.info.width, self.info.height, self.info.resize_mode, self.info.interpolation

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        return prepare(frame, *self.preprocessing)

    def decode(self, raw: np.ndarray, frame_w: int, frame_h: int) -> List[Detection]:
        return decode(raw, self.spec, self.info.labels, frame_w, frame_h, self.info.width,
                      self.info.height, self.info.resize_mode, self.conf_threshold,
                      self.nms_threshold)

    def decode_batch(self, raw: np.ndarray, frame_sizes: Sequence[Tuple[int, int]]) -> Found:
        """Raw outputs of several frames (width, height each) at once: decode()'s detections of
        each, as arrays (the evaluator's path; the same arithmetic as decode())."""
        return decode_batch(raw, self.spec, frame_sizes, self.info.width, self.info.height,
                            self.info.resize_mode, self.conf_threshold, self.nms_threshold)

    def raw(self, frame: np.ndarray) -> np.ndarray:
        return self.adapter.infer(self.prepare(frame))

    def detect(self, frame: np.ndarray) -> List[Detection]:
        return self.decode(self.raw(frame), frame.shape[1], frame.shape[0])
