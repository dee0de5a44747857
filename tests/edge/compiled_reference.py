"""The compiled region decode + NMS reference (region_decode.c beside this file), built with the
system's C compiler into a temporary folder on first use and called through ctypes.

Used by the tests (its detections must equal edge_app.decode's) and by benchmarks/bench_decode.py
(it is the compiled peer our numpy decode is timed against).
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

SOURCE = Path(__file__).with_name("region_decode.c")
_lib: Optional[ctypes.CDLL] = None
_float_p = ctypes.POINTER(ctypes.c_float)
_int_p = ctypes.POINTER(ctypes.c_int)


def library() -> ctypes.CDLL:
    """The shared library, compiled once per process with -O2 (as a distribution builds)."""
    global _lib
    if _lib is None:
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise RuntimeError("no C compiler (cc) on PATH: apt-get install gcc")
        out_dir = Path(tempfile.mkdtemp(prefix="region-ref-"))
        target = out_dir / "libregion.so"
        subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(target), str(SOURCE), "-lm"],
                       check=True, capture_output=True)
        lib = ctypes.CDLL(str(target))
        lib.region_decode.restype = ctypes.c_int
        lib.region_decode.argtypes = [_float_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                      _float_p, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                      _float_p, _int_p, _float_p, ctypes.c_int]
        _lib = lib
    return _lib


class RegionDecoder:
    """Buffers allocated once, as a compiled decoder in a real loop would keep them."""

    def __init__(self, classes: int, num: int, anchors, softmax: bool, grid_h: int, grid_w: int,
                 max_out: int = 100000):
        self.lib = library()
        self.classes, self.num, self.softmax = classes, num, softmax
        self.grid = (grid_h, grid_w)
        n = num * grid_h * grid_w
        self.anchors = np.ascontiguousarray(np.asarray(anchors, np.float32).ravel())
        self.work = np.empty(n * (5 + classes), np.float32)
        self.order = np.empty(n, np.int32)
        self.out = np.empty((max_out, 6), np.float32)

    def __call__(self, raw: np.ndarray, thresh: float, nms: float) -> np.ndarray:
        """(rows, 6) class, prob, x1, y1, x2, y2 (network-relative), by falling prob."""
        raw = np.ascontiguousarray(raw, np.float32)
        rows = self.lib.region_decode(
            raw.ctypes.data_as(_float_p), self.num, self.classes, self.grid[0], self.grid[1],
            self.anchors.ctypes.data_as(_float_p), int(self.softmax), thresh, nms,
            self.work.ctypes.data_as(_float_p), self.order.ctypes.data_as(_int_p),
            self.out.ctypes.data_as(_float_p), len(self.out))
        found = self.out[:rows]
        return found[np.argsort(-found[:, 1], kind="stable")]
