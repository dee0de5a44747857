"""Resident pages of a file this process has mapped but no longer reads, handed back to the kernel.

Current OpenVINO maps the IR's .bin (read-only, private) instead of reading it, and the compiled
model keeps that mapping for as long as it lives (the CPU plugin builds each stream's graph
from the model and export_model() writes it), while inference reads only the plugin's own
FP32 copy of the weights. The FP16 pages read once at compile time would otherwise stay in the
daemon's RSS and in its cgroup's memory: 30 MiB for a 416x416 yolov2-tiny-voc. They are clean
file pages: a later read (export_model) faults them in again from the file. OpenVINO 2022.x
reads the .bin into its own memory and maps nothing, so there is nothing to do there.

Compiling a model also runs code that the daemon never runs again: OpenVINO's graph
transformations and frontends, the plugin's compile paths, the import-time code of every
library. Those pages of the libraries' read-only mappings are clean too, and `page_out()` of
every file hands them back as well; what inference, capture and publishing run comes back on
first use, once (a 416 yolov2-tiny-voc on current OpenVINO: the daemon's file-backed RSS at
full speed went from 80 to 47 MiB, OpenVINO alone's from 75 to 24, when no other process maps
the same libraries: the kernel reclaims only pages this process alone maps).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

MADV_PAGEOUT = 21  # linux/mman.h; Linux >= 5.4 (older kernels refuse it with EINVAL)


def read_only_mappings(path: Optional[Union[str, Path]] = None,
                       maps: str = "/proc/self/maps") -> List[Tuple[int, int]]:
    """(start, end) of this process's read-only mappings of `path`, or of every regular file
    (path None: libraries' code and constants, mapped data files; not devices); [] where there
    is no /proc."""
    target = os.path.realpath(path) if path is not None else None
    found = []
    try:
        with open(maps) as f:
            for line in f:
                fields = line.split(maxsplit=5)
                if len(fields) < 6 or "w" in fields[1]:
                    continue
                name = fields[5].rstrip("\n")
                if name == target or (target is None and name.startswith("/") and not name.startswith("/dev/")):
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    found.append((start, end))
    except OSError:
        pass
    return found


def page_out(path: Optional[Union[str, Path]] = None) -> int:
    """Ask the kernel to reclaim this process's resident pages of its read-only mappings of
    `path` (None: of every file) now (madvise MADV_PAGEOUT); the bytes of mappings it accepted
    the advice for, 0 if the file is not mapped, or on a system without it. Pages that another
    mapping or process shares stay."""
    mappings = read_only_mappings(path)
    if not mappings:
        return 0
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return sum(end - start for start, end in mappings if madvise(start, end - start, MADV_PAGEOUT) == 0)
