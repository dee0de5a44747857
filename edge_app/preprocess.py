"""Frame → network input (u8, NHWC, BGR), and network-relative boxes → frame pixels.

Two resize modes:
- "resize": stretch the frame to the network size (AlexeyAB's default, how it trains).
- "letterbox": keep the aspect ratio, centre, pad with grey (pjreddie's `detector test/valid`).
  darknet pads with 0.5; a u8 input can only hold 127 or 128, so the pad is 127 (0.002 off).

Two interpolation arithmetics (the model's metadata says which one its numbers were made with):
- "darknet": darknet's resize_image — output column c samples the input at c·(w_in−1)/(w_out−1)
  (corners aligned), a horizontal pass over every input row into a float image, then a vertical
  pass, in float32; the last row keeps only its (1−dy) term, as darknet's loop does.
- "opencv-linear": cv2.resize INTER_LINEAR (half-pixel centres), what models exported before
  the field existed were run with.
The two differ by up to a third of a pixel in where they sample, enough to move mAP by points.
"""
from __future__ import annotations

import threading
from functools import lru_cache, partial
from typing import Dict, Optional, Tuple

import numpy as np

from edge_app import native

LETTERBOX_FILL = 127
INTERPOLATIONS = ("darknet", "opencv-linear")
LEGACY_INTERPOLATION = "opencv-linear"  # metadata written before the field existed


def letterbox_size(frame_w, frame_h, net_w: int, net_h: int) -> Tuple:
    """The scaled image size inside the letterbox, with darknet's integer arithmetic: ints for
    an int frame size; int arrays for arrays of them (the frames of a batch), element by element.
    At least 1 pixel each way: for a frame more than net_h/net_w times as tall as wide (or the
    converse) darknet's arithmetic gives 0 — an empty image, and boxes divided by zero."""
    if isinstance(frame_w, np.ndarray):
        wide = net_w / frame_w < net_h / frame_h
        return (np.where(wide, net_w, np.maximum((frame_w * net_h) // frame_h, 1)),
                np.where(wide, np.maximum((frame_h * net_w) // frame_w, 1), net_h))
    if net_w / frame_w < net_h / frame_h:
        return net_w, max((frame_h * net_w) // frame_w, 1)
    return max((frame_w * net_h) // frame_h, 1), net_h


@lru_cache(maxsize=32)
def darknet_taps(n_in: int, n_out: int, last_is_exact: bool):
    """Per output index: the two input indices and their float32 weights, as darknet computes
    them: s = i·((float)(n_in−1)/(n_out−1)), i0 = (int)s, weights 1−(s−i0) and s−i0.

    Horizontally the last column copies the last input column (last_is_exact); vertically the
    last row keeps only (1−dy)·row[i0] — both exactly as darknet's loops do.
    """
    if n_out == 1:
        i0 = np.array([n_in - 1], np.intp)
        return i0, i0, np.ones(1, np.float32), np.zeros(1, np.float32)
    scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    s = np.arange(n_out, dtype=np.float32) * scale
    i0 = s.astype(np.intp)
    d = (s - i0.astype(np.float32)).astype(np.float32)
    w0 = (np.float32(1) - d).astype(np.float32)
    w1 = d
    i1 = np.minimum(i0 + 1, n_in - 1)
    if last_is_exact or n_in == 1:
        i0[-1] = i1[-1] = n_in - 1
        w0[-1], w1[-1] = 1, 0
    else:
        i1[-1] = i0[-1]
        w1[-1] = 0
    for array in (i0, i1, w0, w1):
        array.setflags(write=False)
    return i0, i1, w0, w1


class _Buffers(threading.local):
    """Per-thread scratch arrays, reused from frame to frame: fresh multi-megabyte arrays
    each frame come from mmap and cost more in page faults than the arithmetic itself."""

    def __init__(self) -> None:
        self.arrays: Dict[Tuple, np.ndarray] = {}

    def get(self, name: str, shape: Tuple[int, ...], dtype) -> np.ndarray:
        key = (name, shape, np.dtype(dtype).str)
        array = self.arrays.get(key)
        if array is None:
            if len(self.arrays) > 64:  # many frame sizes: start over rather than grow
                self.arrays.clear()
            array = self.arrays[key] = np.empty(shape, dtype)
        return array


_buffers = _Buffers()


@lru_cache(maxsize=32)
def _native_taps(in_w: int, in_h: int, out_w: int, out_h: int):
    """darknet_taps as the C library takes them (int32 indices, float32 weights), with their
    addresses; the arrays stay referenced by the tuple."""
    arrays = [np.ascontiguousarray(a, np.int32 if a.dtype.kind == "i" else np.float32)
              for a in darknet_taps(in_w, out_w, True) + darknet_taps(in_h, out_h, False)]
    return arrays, [a.ctypes.data for a in arrays]


def darknet_resize(image: np.ndarray, out_w: int, out_h: int, u8: bool = False) -> np.ndarray:
    """darknet's resize_image on an (h, w, c) array: the same float32 operations on the same
    values (bit-identical to darknet for float input). Returns a new float32 (out_h, out_w, c)
    array, or the values rounded to u8 (half to even) when `u8`.

    Computed by the compiled library (edge_app.native) when it is built, else by numpy; both
    give the same values."""
    if image.ndim != 3:
        raise ValueError(f"expected an (h, w, channels) image, got shape {image.shape}")
    lib = native.library()
    kind = "u8" if image.dtype == np.uint8 else "f32" if image.dtype == np.float32 else None
    if lib is None or kind is None or (kind == "u8") != u8:  # the library does u8→u8 and f32→f32
        return _darknet_resize_numpy(image, out_w, out_h, u8)
    in_h, in_w, channels = image.shape
    itemsize = image.itemsize
    if image.strides[2] != itemsize or image.strides[1] != channels * itemsize or image.strides[0] % itemsize:
        image = np.ascontiguousarray(image)
    _, taps = _native_taps(in_w, in_h, out_w, out_h)
    out = np.empty((out_h, out_w, channels), np.uint8 if kind == "u8" else np.float32)
    scratch = _buffers.get("native", (lib.dk_scratch_floats(in_w, channels, out_w),), np.float32)
    fn = lib.dk_resize_u8 if kind == "u8" else lib.dk_resize_f32
    fn(image.ctypes.data, image.strides[0] // itemsize, in_w, channels, out.ctypes.data, out_h, out_w, *taps,
       scratch.ctypes.data)
    return out


def _darknet_resize_numpy(image: np.ndarray, out_w: int, out_h: int, u8: bool = False) -> np.ndarray:
    """The numpy version of darknet_resize, for machines without the compiled library.

    Of darknet's intermediate image only the rows the vertical pass reads are computed
    (gathered first, so the horizontal pass runs on out_h rows, not in_h), columns are gathered
    as rows of the transposed image (block copies, not per-pixel fancy indexing), tap tables
    are computed once per size and scratch arrays reused.
    """
    import cv2

    in_h, in_w, channels = image.shape
    x0, x1, a0, a1 = darknet_taps(in_w, out_w, True)
    y0, y1, b0, b1 = darknet_taps(in_h, out_h, False)
    get = _buffers.get

    def horizontal(y: np.ndarray, name: str) -> np.ndarray:
        # darknet's part[r][c] = (1-dx)*im[r][x0] + dx*im[r][x1], computed on the transposed
        # rows: (out_w, out_h*channels), each weight constant along a row (numpy's fast loop)
        rows = np.take(image, y, axis=0, out=get("rows", (out_h, in_w, channels), image.dtype), mode="clip")
        columns = cv2.transpose(rows, dst=get("columns", (in_w, out_h, channels), image.dtype))
        columns = columns.reshape(in_w, out_h * channels)
        gathered = get("gathered", (out_w, out_h * channels), image.dtype)
        part = get(name, (out_w, out_h * channels), np.float32)
        right = get("right", (out_w, out_h * channels), np.float32)
        np.multiply(np.take(columns, x0, axis=0, out=gathered, mode="clip"), a0[:, None], out=part,
                    casting="unsafe")
        np.multiply(np.take(columns, x1, axis=0, out=gathered, mode="clip"), a1[:, None], out=right,
                    casting="unsafe")
        part += right
        return part

    top = horizontal(y0, "top")
    top *= _repeat(b0, channels)
    bottom = horizontal(y1, "bottom")
    bottom *= _repeat(b1, channels)
    top += bottom  # darknet: out = (1-dy)*part[y0], then += dy*part[y1]
    top = top.reshape(out_w, out_h, channels)
    result = cv2.transpose(to_u8(top, get("u8", top.shape, np.uint8)) if u8 else top)
    return result.reshape(out_h, out_w, channels)  # cv2.transpose drops a single channel's axis


@lru_cache(maxsize=32)
def _repeat_cached(weights: bytes, channels: int) -> np.ndarray:
    row = np.repeat(np.frombuffer(weights, np.float32), channels)
    row.setflags(write=False)
    return row


def _repeat(weights: np.ndarray, channels: int) -> np.ndarray:
    return _repeat_cached(weights.tobytes(), channels)


def to_u8(values: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """float pixel values on the 0..255 scale → u8, rounded to nearest, saturated."""
    import cv2

    return cv2.convertScaleAbs(values, dst=out)


def resize(frame: np.ndarray, width: int, height: int, interpolation: str) -> np.ndarray:
    """u8 frame → u8 image of the given size with the model's interpolation arithmetic."""
    import cv2

    if interpolation == "darknet":
        return darknet_resize(frame, width, height, u8=True)
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def prepare(frame: np.ndarray, net_w: int, net_h: int, mode: str,
            interpolation: str = LEGACY_INTERPOLATION) -> np.ndarray:
    """The model input for one BGR u8 frame: shape (1, net_h, net_w, 3), dtype u8."""
    frame_h, frame_w = frame.shape[:2]
    if mode == "letterbox":
        new_w, new_h = letterbox_size(frame_w, frame_h, net_w, net_h)
        tensor = np.full((1, net_h, net_w, 3), LETTERBOX_FILL, np.uint8)
        dx, dy = (net_w - new_w) // 2, (net_h - new_h) // 2
        scaled = frame if (new_w, new_h) == (frame_w, frame_h) else resize(frame, new_w, new_h, interpolation)
        tensor[0, dy:dy + new_h, dx:dx + new_w] = scaled
        return tensor
    if (frame_w, frame_h) == (net_w, net_h):
        return np.ascontiguousarray(frame)[None]
    return resize(frame, net_w, net_h, interpolation)[None]


def prepare_float(frame: np.ndarray, net_w: int, net_h: int, mode: str) -> np.ndarray:
    """darknet's own network input for a u8 frame, kept in float (no u8 rounding), on the
    0..255 scale: pixels divided by 255 as darknet loads them, resized with darknet's
    arithmetic, letterbox padded with 0.5, then ×255 for a model that divides by 255.
    Shape (1, net_h, net_w, 3), float32. For evaluate's reference mode."""
    unit = (frame.astype(np.float64) / 255.0).astype(np.float32)
    frame_h, frame_w = frame.shape[:2]
    if mode == "letterbox":
        new_w, new_h = letterbox_size(frame_w, frame_h, net_w, net_h)
        tensor = np.full((net_h, net_w, 3), 0.5, np.float32)
        dx, dy = (net_w - new_w) // 2, (net_h - new_h) // 2
        tensor[dy:dy + new_h, dx:dx + new_w] = darknet_resize(unit, new_w, new_h) \
            if (new_w, new_h) != (frame_w, frame_h) else unit
    else:
        tensor = darknet_resize(unit, net_w, net_h) if (net_w, net_h) != (frame_w, frame_h) else unit
    return (tensor * np.float32(255))[None]


def boxes_to_frame(boxes: np.ndarray, frame_w, frame_h, net_w: int, net_h: int,
                   mode: str, clip: bool = True) -> np.ndarray:
    """(n, 4) network-relative x1, y1, x2, y2 → frame pixels, clamped to the frame (unless
    not `clip`: darknet's `detector map` scores unclipped boxes). frame_w, frame_h: the frame's
    size, or int arrays (n,) of each box's frame size (a batch of frames).

    Letterbox follows darknet's correct_region_boxes (integer scaled size, float half-offsets).
    """
    if isinstance(frame_w, np.ndarray):
        frame_w, frame_h = frame_w.astype(np.int64)[:, None], frame_h.astype(np.int64)[:, None]
        join = partial(np.concatenate, axis=1)
    else:
        join = np.array
    if mode == "letterbox":
        new_w, new_h = letterbox_size(frame_w, frame_h, net_w, net_h)
        offset = join([(net_w - new_w) / 2.0 / net_w, (net_h - new_h) / 2.0 / net_h] * 2)
        scale = join([new_w / net_w, new_h / net_h] * 2)
        boxes = (boxes - offset) / scale
    frame = join([frame_w, frame_h, frame_w, frame_h]).astype(np.float64)
    return np.clip(boxes * frame, 0, frame) if clip else boxes * frame
