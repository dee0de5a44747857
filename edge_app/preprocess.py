"""Frame → network input (u8, NHWC, BGR), and network-relative boxes → frame pixels.

Two resize modes, both with darknet's arithmetic so boxes come back where darknet puts them:
- "resize": stretch the frame to the network size (AlexeyAB's default, how it trains).
- "letterbox": keep the aspect ratio, centre, pad with grey (pjreddie's `detector test/valid`).
  darknet pads with 0.5; a u8 input can only hold 127 or 128, so the pad is 127 (0.002 off).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

LETTERBOX_FILL = 127


def letterbox_size(frame_w: int, frame_h: int, net_w: int, net_h: int) -> Tuple[int, int]:
    """The scaled image size inside the letterbox, with darknet's integer arithmetic."""
    if net_w / frame_w < net_h / frame_h:
        return net_w, (frame_h * net_w) // frame_w
    return (frame_w * net_h) // frame_h, net_h


def prepare(frame: np.ndarray, net_w: int, net_h: int, mode: str) -> np.ndarray:
    """The model input for one BGR u8 frame: shape (1, net_h, net_w, 3), dtype u8."""
    import cv2

    frame_h, frame_w = frame.shape[:2]
    if mode == "letterbox":
        new_w, new_h = letterbox_size(frame_w, frame_h, net_w, net_h)
        tensor = np.full((1, net_h, net_w, 3), LETTERBOX_FILL, np.uint8)
        dx, dy = (net_w - new_w) // 2, (net_h - new_h) // 2
        scaled = frame if (new_w, new_h) == (frame_w, frame_h) else \
            cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        tensor[0, dy:dy + new_h, dx:dx + new_w] = scaled
        return tensor
    if (frame_w, frame_h) == (net_w, net_h):
        return np.ascontiguousarray(frame)[None]
    return cv2.resize(frame, (net_w, net_h), interpolation=cv2.INTER_LINEAR)[None]


def boxes_to_frame(boxes: np.ndarray, frame_w: int, frame_h: int, net_w: int, net_h: int,
                   mode: str) -> np.ndarray:
    """(n, 4) network-relative x1, y1, x2, y2 → frame pixels, clamped to the frame.

    Letterbox follows darknet's correct_region_boxes (integer scaled size, float half-offsets).
    """
    if mode == "letterbox":
        new_w, new_h = letterbox_size(frame_w, frame_h, net_w, net_h)
        offset = np.array([(net_w - new_w) / 2.0 / net_w, (net_h - new_h) / 2.0 / net_h] * 2)
        scale = np.array([new_w / net_w, new_h / net_h] * 2)
        boxes = (boxes - offset) / scale
    frame = np.array([frame_w, frame_h, frame_w, frame_h], np.float64)
    return np.clip(boxes * frame, 0, frame)
