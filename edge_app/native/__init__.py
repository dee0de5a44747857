"""Compiled arithmetic for the hot path: the darknet resize (dkresize.c) and, for evaluation's
crowds of candidates, darknet's NMS (dknms.c: suppression by groups, and decode.nms of a whole batch), loaded with ctypes
(edge_app/native/loader.py).

Built at install time when a C compiler is there (setup.py / deploy/pi/setup_edge.py, from
build_spec.py); the library is optional: without it the numpy versions in edge_app.preprocess
and edge_app.decode compute the same values, more slowly. EDGE_APP_NATIVE=0 turns it off (for comparisons);
EDGE_APP_NATIVE_SIMD picks the instruction set on x86-64 (see dkresize.c): `plain` (C loops
only), `128` (128-bit byte shuffles, NEON's width: what the Pi estimate counts), default the
best the CPU has.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

from edge_app.native.loader import CompiledLibrary, Unusable

HERE = Path(__file__).resolve().parent
ABI_VERSION = 10
SIMD_LEVELS = {"plain": 0, "128": 1, "best": 2}
LEVEL_NAMES = ("plain C loops", "128-bit shuffles", "256-bit shuffles")


def _configure(lib: ctypes.CDLL) -> str:
    wanted = os.environ.get("EDGE_APP_NATIVE_SIMD", "best")
    if wanted not in SIMD_LEVELS:
        raise Unusable(f"EDGE_APP_NATIVE_SIMD={wanted!r} is not one of {', '.join(SIMD_LEVELS)}; "
                       "unset it or pick one")
    p, i = ctypes.c_void_p, ctypes.c_int
    for name in ("dk_resize_u8", "dk_resize_f32"):
        fn = getattr(lib, name)
        fn.argtypes = [p, i, i, i, p, i, i] + [p] * 8 + [p]
        fn.restype = None
    lib.dk_scratch_floats.argtypes = [i, i, i]
    lib.dk_scratch_floats.restype = ctypes.c_long
    lib.dk_nms_groups.argtypes = [p, p, p, p, p, i, ctypes.c_double, p]
    lib.dk_nms_groups.restype = None
    lib.dk_nms_frames.argtypes = [p] * 7 + [i, ctypes.c_double, ctypes.c_int64, p]
    lib.dk_nms_frames.restype = ctypes.c_int64
    lib.dk_set_simd.argtypes = [i]
    lib.dk_set_simd.restype = i
    return LEVEL_NAMES[lib.dk_set_simd(SIMD_LEVELS[wanted])]


LIBRARY = CompiledLibrary(HERE, "_dkresize", "dk_abi_version", ABI_VERSION, "EDGE_APP_NATIVE",
                          not_built="install gcc and reinstall edge_app to get it",
                          rebuild="reinstall edge_app", configure=_configure)
library = LIBRARY.library
status = LIBRARY.status  # one line for `edge-app check`: which resize arithmetic runs, and why
reset = LIBRARY.reset
