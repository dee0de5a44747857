"""Host CPU per frame, measured inside the daemon from per-thread kernel accounting."""
import json
import threading
import time

import pytest

from edge_app import config as config_mod
from edge_app.cputime import HostCpu, host_threads, task_cpu_seconds, thread_ids
from edge_app.daemon import Daemon
from tests.conftest import REPO
from tests.edge.conftest import write_clip


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_host_threads_are_python_threads_and_those_older_than_the_runtime():
    assert host_threads({1, 2, 3, 4}, before_runtime={1, 2}, python_ids={4}) == {1, 2, 4}


def test_a_thread_is_charged_the_cpu_it_burnt():
    done, release = threading.Event(), threading.Event()

    def work():
        burn(0.05)
        done.set()
        release.wait()

    worker = threading.Thread(target=work)
    worker.start()
    done.wait()
    try:
        assert worker.native_id in thread_ids()
        assert task_cpu_seconds(worker.native_id) >= 0.05  # the kernel saw at least what it burnt
    finally:
        release.set()
        worker.join()
    for _ in range(500):  # the kernel reaps the thread shortly after join() returns
        if worker.native_id not in thread_ids():
            break
        time.sleep(0.01)
    assert task_cpu_seconds(worker.native_id) is None  # gone: nothing to read


def test_sample_divides_host_cpu_by_frames_and_adds_callback_cpu():
    meter = HostCpu()
    meter.mark_before_runtime()  # this test's own threads all count as host
    assert meter.sample(frames=0, callback_cpu=0.0) is None  # the first sample only starts
    burn(0.04)
    per_frame = meter.sample(frames=10, callback_cpu=0.5)  # 0.5 s of callback work over 10 frames
    assert per_frame >= (0.04 + 0.5) * 1e3 / 10
    assert meter.sample(frames=10, callback_cpu=0.5) is None  # no frame since: no figure


def test_daemon_reports_host_cpu_without_openvino_threads(exported, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    model = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    clip = write_clip(tmp_path / "clip.avi", frames=30, size=(320, 240))
    cfg = config_mod.build({"model": {"path": str(model), "device": "CPU", "fallback": ""},
                            "source": {"uri": str(clip), "loop": True, "realtime": False},
                            "mqtt": {"enabled": False}})
    daemon = Daemon(cfg)
    daemon.start()
    try:
        assert daemon.output.first_frame.wait(60)
        assert daemon.stats()["host_cpu_ms_per_frame"] is None  # the window starts here
        process_start, frames_start = time.process_time(), daemon.output.processed
        while daemon.output.processed < frames_start + 40:
            time.sleep(0.05)
        stats = daemon.stats()
        process_ms = (time.process_time() - process_start) * 1e3 / (daemon.output.processed - frames_start)
    finally:
        daemon.stop_event.set()
        daemon.stop()
    jsonschema.validate(stats, json.loads((REPO / "edge_app/schemas/stats.schema.json").read_text()))
    host = stats["host_cpu_ms_per_frame"]
    # some host work per frame (decode, resize, hand-overs), but less than the whole process,
    # whose OpenVINO CPU threads do the inference itself
    assert 0 < host < process_ms
