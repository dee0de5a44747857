"""The live view: `edge-app run` with live.enabled on the demo model, looked at by Debian's
headless chromium (page, stream with boxes, a screenshot kept in the test's tmp dir), and a
stalled viewer that connects and never reads."""
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from edge_app.config import LiveConfig
from edge_app.liveview import LiveView, Slot
from tests.conftest import REPO
from tests.edge.conftest import config_toml, free_port, wait_for_port

DEMO_MODEL = REPO / "demo/model"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_slot_holds_one_frame_and_counts_what_it_replaced():
    slot = Slot()
    for data in (b"1", b"2", b"3"):
        slot.put(data)
    assert slot.depth == 1 and slot.replaced == 2
    assert slot.take(0.1) == b"3" and slot.depth == 0
    assert slot.take(0.05) is None


def test_nobody_watching_costs_no_encoding():
    view = LiveView(LiveConfig(enabled=True, port=free_port()))
    frame = SimpleNamespace(index=0, captured_at=0.0, image=np.zeros((240, 320, 3), np.uint8))
    for _ in range(5):
        view.sink(frame, [], 1.0, 1.0)
    assert view.offered == 5 and view.encoded == 0
    slot = view._add()  # a viewer arrives
    view.sink(frame, [], 1.0, 1.0)
    assert view.encoded == 1 and view.slot_depths() == [1]
    view._last_encode = 0.0
    view.sink(frame, [], 1.0, 1.0)  # the viewer has not taken the last frame: no new encoding
    assert view.encoded == 1 and view.dropped() == 1
    assert slot.take(0.1) is not None
    view._last_encode = 0.0
    view.sink(frame, [], 1.0, 1.0)
    assert view.encoded == 2 and view.slot_depths() == [1]


def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def live_daemon(tmp_path, daemon_factory):
    from model_tools import synth

    clip = synth.make_clip(tmp_path / "clip.avi", frames=40, seed=99)
    port = free_port()
    daemon = daemon_factory(config_toml(DEMO_MODEL, clip, 1, detect={"confidence": 0.4},
                                        source={"loop": True, "realtime": True},
                                        mqtt={"enabled": False}, live={"enabled": True, "port": port}))
    wait_for_port(port, timeout=60)
    yield daemon, port
    assert daemon.terminate() == 0, daemon.logs()


def test_chromium_shows_the_page_and_the_stream_with_boxes(live_daemon, tmp_path):
    import cv2

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not installed: apt-get install chromium (scripts/setup.sh does)")
    daemon, port = live_daemon
    shot = tmp_path / "live-view.png"
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=800,900"]
    url = f"http://127.0.0.1:{port}/"
    dom = subprocess.run(common + ["--virtual-time-budget=4000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert 'id="stream"' in dom.stdout and "pi-test" in dom.stdout, dom.stderr[-2000:]
    # the status script ran: fps and frames were filled in from /status.json
    assert '<td id="frames">-</td>' not in dom.stdout, dom.stdout[-2000:]
    result = subprocess.run(common + [f"--screenshot={shot}", "--virtual-time-budget=3000", url],
                            capture_output=True, text=True, timeout=120)
    assert shot.exists(), result.stderr[-2000:]
    image = cv2.imread(str(shot))
    # the stream's 320x240 frame sits under the heading; the page background is #222
    background = np.all(np.abs(image.astype(int) - 0x22) <= 2, axis=2)
    assert background.mean() < 0.95, "the screenshot is blank: no stream frame was drawn"
    green = (image[..., 1] > 200) & (image[..., 0] < 80) & (image[..., 2] < 80)
    assert green.sum() > 100, f"no box drawn in the stream (see {shot})"
    assert status(port)["encoded"] > 0


def test_a_stalled_viewer_neither_stops_the_pipeline_nor_queues_frames(live_daemon):
    daemon, port = live_daemon
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a frame or two
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
    try:
        # the socket buffers on both sides take a few frames (how many depends on the kernel's
        # send-buffer autotuning and on how fast frames come); once encoding stops, the viewer
        # is stalled
        first = status(port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = status(port)
            if now["encoded"] == first["encoded"] and now["frames"] > first["frames"]:
                break
            first = now
        assert first["viewers"] == 1
        samples = []
        for _ in range(6):
            time.sleep(0.5)
            samples.append(status(port))
        last = samples[-1]
        # frames keep being processed ...
        assert last["frames"] > first["frames"] + 10
        # ... the stalled viewer's buffer never holds more than one frame: the rest are dropped
        # for it, without even being encoded (nobody would take them)
        assert all(max(s["viewer_slots"], default=0) <= 1 for s in samples)
        assert last["dropped_for_viewers"] > first["dropped_for_viewers"]
        assert last["encoded"] <= first["encoded"] + 1
    finally:
        stalled.close()
    assert daemon.proc.poll() is None
