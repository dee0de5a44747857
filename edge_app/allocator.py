"""glibc's malloc arenas, limited for a long-running multi-threaded daemon on a 1 GB Pi.

glibc gives threads that contend for malloc their own arenas, up to 8 per core on 64-bit (2 per
core on 32-bit), and each arena keeps freed memory for reuse. With OpenVINO's, OpenCV's and the
stages' threads all allocating per frame, two arenas keep the daemon's RSS at full speed 2-19 MiB
below glibc's default (benchmarks/bench_rss.py). glibc's other knobs (MALLOC_MMAP_THRESHOLD_,
MALLOC_TRIM_THRESHOLD_, one arena, malloc_trim after loading the model) were tried on the 416
model on both stacks and moved its peak by 3 MiB at most: neither the daemon nor the systemd
unit sets them.
"""
from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

ARENAS = 2
M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the rest of this process; True if it was applied.

    Arenas are created lazily, so this works when called before the worker threads start
    allocating. MALLOC_ARENA_MAX in the environment wins (glibc read it at start-up: the
    systemd unit or a user chose it). Not glibc (no mallopt): nothing to do."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = mallopt(M_ARENA_MAX, arenas) == 1
    if applied:
        log.debug("malloc arenas limited to %d", arenas)
    return applied
