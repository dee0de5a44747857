"""Host CPU time per frame, from the kernel's per-thread accounting, inside the running daemon.

Host work is everything the Pi's CPU does for a frame apart from the inference runtime: the
capture, inference-feeding and output stages, the supervisor, paho's network thread, OpenCV's
worker pool (resize), and the copy of the output done in the runtime's completion callback.
OpenVINO's own threads are left out (with the NCS2 they wait on USB; with the CPU plugin they
are the inference itself).

Which threads are OpenVINO's: the native (non-Python) threads that did not exist before the
runtime was loaded. `HostCpu.mark_before_runtime()` is called before the model is loaded,
after OpenCV's pool has been started by one resize, so the pool counts as host.
"""
from __future__ import annotations

import os
import threading
from typing import Dict, Iterable, Optional, Set

TASKS = "/proc/self/task"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def task_cpu_seconds(tid: int, tasks: str = TASKS) -> Optional[float]:
    """CPU time (user + system) of one thread of this process; None once it has ended.
    schedstat gives nanoseconds; /proc/.../stat's clock ticks are the fallback."""
    try:
        with open(f"{tasks}/{tid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"{tasks}/{tid}/stat") as f:
            # the command name (field 2) may hold spaces; fields after it are fixed
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


def thread_ids(tasks: str = TASKS) -> Set[int]:
    try:
        return {int(name) for name in os.listdir(tasks)}
    except OSError:  # no /proc (not Linux): nothing to measure
        return set()


def python_threads() -> Dict[int, str]:
    """Threads started by Python code (ours and paho's), by id, with their names. A _DummyThread
    is a foreign thread that merely ran Python (OpenVINO's callback thread): not host work."""
    return {t.native_id: t.name for t in threading.enumerate()
            if t.native_id is not None and type(t).__name__ != "_DummyThread"}


def host_threads(all_ids: Iterable[int], before_runtime: Set[int], python_ids: Set[int]) -> Set[int]:
    """The host threads among all_ids: Python threads and those older than the runtime."""
    return {tid for tid in all_ids if tid in before_runtime or tid in python_ids}


class HostCpu:
    """Host CPU seconds per processed frame between two samples."""

    def __init__(self):
        self.before_runtime: Set[int] = set()
        self._last: Optional[tuple] = None  # (per-thread cpu, callback cpu, frames)
        self._names: Dict[int, str] = {}
        # ms per frame by thread name over the last sampled window (native threads older than
        # the runtime are OpenCV's pool), and "runtime callback" for the callback's share
        self.by_thread: Dict[str, float] = {}

    def mark_before_runtime(self) -> None:
        self.before_runtime = thread_ids()

    def _per_thread(self) -> Dict[int, float]:
        named = python_threads()
        ids = host_threads(thread_ids(), self.before_runtime, set(named))
        for tid in ids:
            self._names.setdefault(tid, named.get(tid, "native (before the runtime)"))
        found = {tid: task_cpu_seconds(tid) for tid in ids}
        return {tid: cpu for tid, cpu in found.items() if cpu is not None}

    def sample(self, frames: int, callback_cpu: float) -> Optional[float]:
        """Host CPU milliseconds per frame since the previous sample (None on the first call or
        when no frame went through meanwhile). callback_cpu: the running total of host work done
        inside runtime threads (the completion callback's copy), in seconds."""
        now = (self._per_thread(), callback_cpu, frames)
        last, self._last = self._last, now
        if last is None or frames <= last[2]:
            return None
        # a thread present at both samples counts its difference; a new one all of its time
        scale = 1e3 / (frames - last[2])
        by_thread: Dict[str, float] = {"runtime callback": (now[1] - last[1]) * scale}
        for tid, cpu in now[0].items():
            name = self._names[tid]
            by_thread[name] = by_thread.get(name, 0.0) + (cpu - last[0].get(tid, 0.0)) * scale
        self.by_thread = by_thread
        return sum(by_thread.values())
