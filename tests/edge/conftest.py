"""Fixtures for the daemon tests: a real Mosquitto broker on a free port (killed and restarted
by fault tests), a subscriber that records every message, and clips made of real photos."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PHOTOS, photo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


class Broker:
    def __init__(self, workdir: Path):
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(self.binary):
            pytest.fail("mosquitto not installed: apt-get install mosquitto (scripts/test.sh does)")
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\nmax_queued_messages 100000\n")
        self.log = workdir / "mosquitto.log"
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def kill(self) -> None:
        """A crash, not a shutdown: no goodbye to the clients."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.kill()


class Subscriber:
    """Records (time, topic, payload) for everything under a prefix; reconnects every second."""

    def __init__(self, port: int, topic: str = "#"):
        import paho.mqtt.client as mqtt

        self.messages = []
        self.raw = []
        self.lock = threading.Lock()
        self.connects = 0
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.reconnect_delay_set(1, 1)

        def on_connect(c, userdata, flags, rc, props):
            if not rc.is_failure:
                self.connects += 1
                c.subscribe(topic, qos=1)

        def on_message(c, userdata, msg):
            with self.lock:
                # snapshots are JPEG bytes: text is for the JSON and plain topics, raw for all
                self.messages.append((time.monotonic(), msg.topic, msg.payload.decode("utf-8", "replace"),
                                      msg.retain))
                self.raw.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect_async("127.0.0.1", port)
        client.loop_start()
        self.client = client
        end = time.monotonic() + 10
        while self.connects == 0 and time.monotonic() < end:
            time.sleep(0.05)
        assert self.connects, "subscriber could not connect"

    def payloads(self, leaf: str):
        with self.lock:
            items = [m for m in self.messages if m[1].endswith("/" + leaf)]
        return [json.loads(m[2]) if leaf != "available" else m[2] for m in items]

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(broker):
    s = Subscriber(broker.port)
    yield s
    s.close()


def lost_frames(detections, crashes):
    """Frame ids missing from a run of detections messages that the broker crashes do not
    explain. crashes: (the last frame id the subscriber had, the wall-clock time the broker was
    dead by) for each kill. A frame the broker had acknowledged but not yet forwarded dies with
    it (persistence is off; QoS 1 promises nothing past the broker): a frame after the last one
    seen, captured before the kill, may be missing. One captured after it never reached that
    broker and must arrive. A missing frame's capture time is interpolated between its received
    neighbours (the test clips are read at a steady pace) with half a frame's slack; the times
    are the daemon's wall clock, from its messages. Needs every_frame (no frame dropped by
    design) for the ids to be contiguous."""
    captured = {m["frame_id"]: m["captured_at"] for m in detections}
    ids = sorted(captured)
    unexplained = []
    for before, after in zip(ids, ids[1:]):
        step = (captured[after] - captured[before]) / (after - before)
        for frame in range(before + 1, after):
            at = captured[before] + (frame - before) * step
            if not any(seen < frame and at < dead + step / 2 for seen, dead in crashes):
                unexplained.append(frame)
    return unexplained


def write_clip(path: Path, frames: int = 20, size=(320, 240), fps: float = 10.0) -> Path:
    """An MJPEG .avi of darknet's photos, cycling, slightly shifted each frame."""
    import cv2
    import numpy as np

    images = [cv2.resize(cv2.imread(str(photo(n))), size) for n in PHOTOS]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.roll(images[i % len(images)], 3 * i, axis=1))
    writer.release()
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.avi")


class Daemon:
    """`edge-app run` as a subprocess with a written config; logs to a file."""

    def __init__(self, workdir: Path, config: str, env=None, extra=()):
        import sys

        from tests.conftest import REPO

        self.config = workdir / "edge-app.toml"
        self.config.write_text(config)
        self.log = workdir / "daemon.log"
        full_env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config",
                                      str(self.config), *extra], stdout=subprocess.PIPE,
                                     stderr=open(self.log, "wb"), env=full_env, text=True)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def daemon_factory(tmp_path):
    started = []

    def make(config: str, **kwargs) -> Daemon:
        d = Daemon(tmp_path, config, **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def config_toml(model_dir, uri, port, **sections) -> str:
    """A config with the test's model, source and broker; sections override keys."""
    base = {
        "model": {"path": str(model_dir), "device": "CPU", "fallback": ""},
        "detect": {"confidence": 0.05},
        "source": {"uri": str(uri), "realtime": False, "every_frame": True},
        "mqtt": {"host": "127.0.0.1", "port": port, "device_id": "pi-test", "stats_interval": 1.0,
                 "reconnect_min": 1.0, "reconnect_max": 2.0},
        "service": {"log_level": "info"},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    lines = []
    for section, values in base.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"
