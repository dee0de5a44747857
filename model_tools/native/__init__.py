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
import os
from pathlib import Path
from typing import Optional, Tuple

HERE = Path(__file__).resolve().parent
ABI_VERSION = 3
_state: Optional[Tuple[Optional[ctypes.CDLL], str]] = None


def _find() -> Optional[Path]:
    # named like an extension module (_logscan.cpython-311-x86_64-linux-gnu.so) by setuptools; it
    # holds no Python code, so any of them fits any interpreter on the machine that built it
    found = sorted(HERE.glob("_logscan*.so")) + sorted(HERE.glob("_logscan*.pyd"))
    return found[0] if found else None


def _load() -> Tuple[Optional[ctypes.CDLL], str]:
    if os.environ.get("MODEL_TOOLS_NATIVE", "1") == "0":
        return None, "turned off by MODEL_TOOLS_NATIVE=0"
    path = _find()
    if path is None:
        return None, ("not built (no C compiler when model_tools was installed); install gcc and "
                      "reinstall, or run `python setup.py build_ext --inplace` in the checkout")
    try:
        lib = ctypes.CDLL(str(path))
        if lib.ls_abi_version() != ABI_VERSION:
            return None, f"{path.name} is from another version of model_tools; rebuild it"
    except (OSError, AttributeError) as exc:  # e.g. built for another machine
        return None, f"{path.name} cannot be loaded ({exc}); rebuild it on this machine"
    p = ctypes.c_void_p
    lng = ctypes.c_long
    lib.ls_scan.argtypes = [p, lng, ctypes.c_char_p, lng, p, p, p, p, p, lng, p, p]
    lib.ls_scan.restype = ctypes.c_long
    return lib, f"loaded {path.name}"


def library() -> Optional[ctypes.CDLL]:
    """The loaded library, or None (see status())."""
    global _state
    if _state is None:
        _state = _load()
    return _state[0]


def status() -> str:
    library()
    assert _state is not None
    return _state[1]


def reset() -> None:
    """Forget the loaded state (tests switch MODEL_TOOLS_NATIVE)."""
    global _state
    _state = None
