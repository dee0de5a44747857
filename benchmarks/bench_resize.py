"""The host's resize of a 640x480 camera frame to a 416x416 network input: darknet's arithmetic
(edge_app.preprocess, what `export` sets by default; compiled in edge_app.native, numpy when the
library is not built) against cv2.resize INTER_LINEAR (the cheapest resize OpenCV offers with
linear interpolation), timed in the same run, interleaved round by round. Also the letterboxed
variant (pjreddie models), both sides on one thread (the CPU each costs, what a Pi whose cores
are busy pays), and the compiled resize held to 128-bit vectors (EDGE_APP_NATIVE_SIMD=128: NEON's
width, the level a Pi 3 runs) and to its plain C loops.

Each figure: milliseconds per frame as median [min–max] over the rounds; each ratio is taken
within a round (darknet resize time / cv2.resize time: the goal is ≤ 1.5).
    python benchmarks/bench_resize.py [rounds, default 15]
"""
import sys

import cv2
import numpy as np

from common import interleaved, ratio_line, spread
from edge_app import native, preprocess
from edge_app.preprocess import prepare

FRAME = (640, 480)
NET = (416, 416)


def one_thread(fn):
    """fn with OpenCV's thread count set to 1 for the call (the compiled resize uses one)."""
    def call():
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return fn()
        finally:
            cv2.setNumThreads(threads)
    return call


def at_level(level, fn):
    """fn with the compiled resize held to an instruction-set level for the call (edge_app.native)."""
    lib = native.library()

    def call():
        lib.dk_set_simd(level)
        try:
            return fn()
        finally:
            lib.dk_set_simd(native.SIMD_LEVELS["best"])
    return call


def main(rounds: int = 15) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (FRAME[1], FRAME[0], 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (5, 5), 0)  # camera-like content; the cost does not depend on it
    cases = {
        "cv2.resize": lambda: prepare(frame, *NET, "resize", "opencv-linear"),
        "darknet": lambda: prepare(frame, *NET, "resize", "darknet"),
        "cv2.resize letterbox": lambda: prepare(frame, *NET, "letterbox", "opencv-linear"),
        "darknet letterbox": lambda: prepare(frame, *NET, "letterbox", "darknet"),
        "cv2.resize, 1 thread": one_thread(lambda: prepare(frame, *NET, "resize", "opencv-linear")),
        "darknet, numpy fallback": lambda: preprocess._darknet_resize_numpy(frame, *NET, True),
    }
    if native.library() is not None:
        for name, level in (("darknet, 128-bit", "128"), ("darknet, plain C", "plain")):
            cases[name] = at_level(native.SIMD_LEVELS[level],
                                   lambda: prepare(frame, *NET, "resize", "darknet"))
    times = interleaved(cases, rounds, calls=20, warmup=3)
    print(f"{FRAME[0]}x{FRAME[1]} BGR frame -> {NET[0]}x{NET[1]} u8 network input; cv2 threads "
          f"{cv2.getNumThreads()}, darknet resize: {native.status()}, 1 thread; "
          f"ms per frame, median [min-max] over {rounds} rounds of 20 calls")
    for name, values in times.items():
        print(f"  {name:24s} {spread([1e3 * v for v in values])}")
    print(ratio_line("darknet resize / cv2.resize", times["darknet"], times["cv2.resize"]))
    print(ratio_line("darknet letterbox / cv2.resize letterbox", times["darknet letterbox"],
                     times["cv2.resize letterbox"]))
    print(ratio_line("one thread each: darknet / cv2.resize", times["darknet"],
                     times["cv2.resize, 1 thread"]))
    print(ratio_line("numpy fallback / cv2.resize", times["darknet, numpy fallback"], times["cv2.resize"]))
    for name in ("darknet, 128-bit", "darknet, plain C"):
        if name in times:
            print(ratio_line(f"{name} / cv2.resize", times[name], times["cv2.resize"]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
