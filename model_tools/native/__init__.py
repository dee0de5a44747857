"""The compiled log scanner (logscan.c), loaded with ctypes: no Python C API, so one build serves
every Python version and building needs a C compiler but no python3-dev.

Built at install time when a C compiler is there (setup.py, from build_spec.py); optional:
without it model_tools.darknet_log runs the same templates as regexes, line by line.
MODEL_TOOLS_NATIVE=0 turns it off (for comparisons and the fallback's tests).

Why compiled rather than a vectorized engine (measured 2026-11-27 on the shared 2-core box, 20 MB
pjreddie YOLOv2 log): polars 2.1 (Rust regex) took 80-240 ms only to split the text into lines,
760 ms for `str.extract_groups` on the region lines, ~460 ms (~40 MB/s) for a whole pipeline
(lines, validation regex, labels replaced, numbers cast); pyarrow 26 (RE2) took 640 ms to split
the lines. The goal was 100 MB/s; this scanner reads the same log at 200-500 MB/s, and the
training box needs no new wheel for it.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

from edge_app.native.loader import CompiledLibrary

HERE = Path(__file__).resolve().parent
ABI_VERSION = 3


def _configure(lib: ctypes.CDLL) -> str:
    p, lng = ctypes.c_void_p, ctypes.c_long
    lib.ls_scan.argtypes = [p, lng, ctypes.c_char_p, lng, p, p, p, p, p, lng, p, p]
    lib.ls_scan.restype = ctypes.c_long
    return ""


LIBRARY = CompiledLibrary(HERE, "_logscan", "ls_abi_version", ABI_VERSION, "MODEL_TOOLS_NATIVE",
                          not_built="install gcc and reinstall, or run `python setup.py build_ext "
                                    "--inplace` in the checkout",
                          rebuild="rebuild it", configure=_configure)
library = LIBRARY.library
status = LIBRARY.status
reset = LIBRARY.reset
