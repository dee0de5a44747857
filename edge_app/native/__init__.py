"""Compiled arithmetic for the hot path, loaded with ctypes (no Python C API: one build serves
every Python version, and building needs a C compiler but no python3-dev).

Built at install time when a C compiler is there (setup.py / deploy/pi/setup_edge.py, from
build_spec.py); the library is optional: without it the numpy versions in edge_app.preprocess
compute the same values, more slowly. EDGE_APP_NATIVE=0 turns it off (for comparisons);
EDGE_APP_NATIVE_SIMD picks the instruction set on x86-64 (see dkresize.c): `plain` (C loops
only), `128` (128-bit byte shuffles, NEON's width: what the Pi estimate counts), default the
best the CPU has.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Optional, Tuple

HERE = Path(__file__).resolve().parent
ABI_VERSION = 6
SIMD_LEVELS = {"plain": 0, "128": 1, "best": 2}
LEVEL_NAMES = ("plain C loops", "128-bit shuffles", "256-bit shuffles")
_state: Optional[Tuple[Optional[ctypes.CDLL], str]] = None


def _find() -> Optional[Path]:
    # setuptools names it like an extension module (_dkresize.cpython-39-arm-linux-gnueabihf.so);
    # it holds no Python code, so any of them fits any interpreter on the machine that built it
    found = sorted(HERE.glob("_dkresize*.so")) + sorted(HERE.glob("_dkresize*.pyd"))
    return found[0] if found else None


def _load() -> Tuple[Optional[ctypes.CDLL], str]:
    if os.environ.get("EDGE_APP_NATIVE", "1") == "0":
        return None, "turned off by EDGE_APP_NATIVE=0"
    path = _find()
    if path is None:
        return None, ("not built (no C compiler when edge_app was installed); install gcc and "
                      "reinstall edge_app to get it")
    try:
        lib = ctypes.CDLL(str(path))
        if lib.dk_abi_version() != ABI_VERSION:
            return None, f"{path.name} is from another version of edge_app; reinstall edge_app"
    except (OSError, AttributeError) as exc:  # e.g. built for another machine
        return None, f"{path.name} cannot be loaded ({exc}); reinstall edge_app on this machine"
    p, i = ctypes.c_void_p, ctypes.c_int
    for name in ("dk_resize_u8", "dk_resize_f32"):
        fn = getattr(lib, name)
        fn.argtypes = [p, i, i, i, p, i, i] + [p] * 8 + [p]
        fn.restype = None
    lib.dk_scratch_floats.argtypes = [i, i, i]
    lib.dk_scratch_floats.restype = ctypes.c_long
    lib.dk_set_simd.argtypes = [i]
    lib.dk_set_simd.restype = i
    wanted = os.environ.get("EDGE_APP_NATIVE_SIMD", "best")
    if wanted not in SIMD_LEVELS:
        return None, (f"EDGE_APP_NATIVE_SIMD={wanted!r} is not one of {', '.join(SIMD_LEVELS)}; "
                      "unset it or pick one")
    level = lib.dk_set_simd(SIMD_LEVELS[wanted])
    return lib, f"loaded {path.name} ({LEVEL_NAMES[level]})"


def library() -> Optional[ctypes.CDLL]:
    """The loaded library, or None (see status())."""
    global _state
    if _state is None:
        _state = _load()
    return _state[0]


def status() -> str:
    """One line for `edge-app check`: which resize arithmetic runs, and why."""
    library()
    assert _state is not None
    return _state[1]


def reset() -> None:
    """Forget the loaded state (tests switch EDGE_APP_NATIVE)."""
    global _state
    _state = None
