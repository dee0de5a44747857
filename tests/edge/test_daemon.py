"""`edge-app run` as a subprocess against a real Mosquitto broker (CPU device)."""
import json
import os
import re
import socket
import time

import pytest

from edge_app.detector import Detector
from tests.conftest import REPO
from tests.edge.conftest import config_toml, lost_frames, write_clip


def schema(name):
    return json.loads((REPO / "edge_app/schemas" / f"{name}.schema.json").read_text())


@pytest.fixture
def model(exported):
    return exported("tiny-224x160", fp16=True, resize_mode="resize")[0]


def test_end_to_end_messages_equal_direct_model_runs(model, clip, broker, subscriber, daemon_factory):
    import cv2
    jsonschema = pytest.importorskip("jsonschema")

    daemon = daemon_factory(config_toml(model, clip, broker.port))
    assert daemon.wait(120) == 0, daemon.logs()
    subscriber.wait_for(lambda: "stopped" in subscriber.payloads("available"), what="'stopped'")
    messages = subscriber.payloads("detections")
    assert [m["frame_id"] for m in messages] == list(range(20)), daemon.logs()
    for m in messages:
        jsonschema.validate(m, schema("detections"))

    # the same frames through the model directly
    detector = Detector(model, conf_threshold=0.05)
    video = cv2.VideoCapture(str(clip))
    total = 0
    for m in messages:
        ok, frame = video.read()
        assert ok
        want = [d.to_dict(frame.shape[1], frame.shape[0]) for d in detector.detect(frame)]
        got = m["detections"]
        assert [d["label"] for d in got] == [d["label"] for d in want]
        for g, w in zip(got, want):
            assert abs(g["confidence"] - w["confidence"]) <= 1e-3
            for corner in ("topleft", "bottomright"):
                for axis in "xy":
                    assert abs(g[corner][axis] - w[corner][axis]) <= 1
        assert m["frame"] == {"width": 320, "height": 240} and m["device_id"] == "pi-test"
        total += len(got)
    assert total > 0, "the test model must detect something for this comparison to mean anything"
    availability = subscriber.payloads("available")
    assert availability[0] == "online" and availability[-1] == "stopped"


def test_broker_crashes_do_not_stop_the_pipeline(model, tmp_path, broker, subscriber, daemon_factory):
    jsonschema = pytest.importorskip("jsonschema")
    looping = write_clip(tmp_path / "loop.avi", frames=10, fps=8.0)
    daemon = daemon_factory(config_toml(
        model, looping, broker.port, source={"loop": True, "realtime": True},
        mqtt={"reconnect_min": 3.0, "reconnect_max": 3.0, "qos": 1}))
    subscriber.wait_for(lambda: len(subscriber.payloads("detections")) >= 5, what="first detections")

    def onlines():  # the daemon's "online" as sent on each of its connects (live: retain flag off)
        with subscriber.lock:
            return sum(1 for topic, payload, retained in subscriber.raw
                       if topic.endswith("/available") and payload == b"online" and not retained)

    def last_frame():
        return max(m["frame_id"] for m in subscriber.payloads("detections"))

    crashes = []  # (the last frame the subscriber had, wall-clock time the broker was dead by)

    def lost():
        return lost_frames(subscriber.payloads("detections"), crashes)

    for outage in range(3):
        connects, online, seen = subscriber.connects, onlines(), last_frame()
        broker.kill()
        crashes.append((seen, time.time()))
        time.sleep(1.5)  # the daemon keeps producing; QoS 1 messages wait in its queue
        assert daemon.proc.poll() is None, daemon.logs()
        broker.start()
        # the subscriber (1 s retry) is back before the daemon (3 s retry) resends its queue
        subscriber.wait_for(lambda: subscriber.connects > connects, what="subscriber reconnect")
        subscriber.wait_for(lambda: onlines() > online, what=f"'online' after restart {outage + 1}")
        subscriber.wait_for(lambda: last_frame() > seen + 10 and not lost(),
                            what=lambda: (f"the frames queued in outage {outage + 1} (last seen before "
                                          f"it {seen}, now {last_frame()}, lost {lost()[:20]})\n"
                                          f"{daemon.logs()[-3000:]}"))
    # it kept running through three outages: frames beyond the last one seen keep arriving
    after = last_frame()
    subscriber.wait_for(lambda: last_frame() >= after + 5, what="frames after the third outage")
    assert lost() == [], f"frames produced during outages were lost: {lost()[:20]}"
    stats = subscriber.payloads("stats")
    jsonschema.validate(stats[-1], schema("stats"))
    assert stats[-1]["mqtt"]["overflow"] == 0 and stats[-1]["mqtt"]["connected"]
    assert daemon.terminate() == 0, daemon.logs()
    assert subscriber.payloads("available")[-1] == "stopped"


def test_queue_overflow_is_counted_not_fatal(model, tmp_path, broker, subscriber, daemon_factory):
    looping = write_clip(tmp_path / "loop.avi", frames=10, fps=10.0)
    daemon = daemon_factory(config_toml(
        model, looping, broker.port, source={"loop": True, "realtime": True},
        mqtt={"queue_limit": 5, "reconnect_min": 2.0, "reconnect_max": 2.0}))
    subscriber.wait_for(lambda: len(subscriber.payloads("detections")) >= 3, what="first detections")
    broker.kill()
    time.sleep(3.0)  # ~30 frames against a queue of 5
    broker.start()
    subscriber.wait_for(lambda: any(s["mqtt"]["overflow"] > 0 for s in subscriber.payloads("stats")),
                        what="overflow reported in stats")
    assert daemon.proc.poll() is None
    assert daemon.terminate() == 0, daemon.logs()


def test_vanished_source_is_retried_and_resumes(model, tmp_path, broker, subscriber, daemon_factory):
    import cv2

    from tests.conftest import photo

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, name in enumerate(("dog", "eagle", "horses")):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.imread(str(photo(name))))
    daemon = daemon_factory(config_toml(
        model, folder, broker.port, source={"loop": True, "fps": 10.0, "realtime": True,
                                            "retry_min": 0.5, "retry_max": 1.0}))
    subscriber.wait_for(lambda: len(subscriber.payloads("detections")) >= 3, what="first detections")
    hidden = tmp_path / "unplugged"
    folder.rename(hidden)  # the camera goes away
    subscriber.wait_for(lambda: any(s["source"]["state"] == "retrying" for s in subscriber.payloads("stats")),
                        what="stats reporting the source as retrying")
    seen = len(subscriber.payloads("detections"))
    assert daemon.proc.poll() is None, daemon.logs()
    hidden.rename(folder)  # and comes back
    subscriber.wait_for(lambda: len(subscriber.payloads("detections")) > seen + 5, what="frames again")
    # the next stats message says so (the last one may predate the frames: one a second)
    subscriber.wait_for(lambda: subscriber.payloads("stats")[-1]["source"]["state"] == "running",
                        what="stats reporting the source as running again")
    last = subscriber.payloads("stats")[-1]
    assert last["source"]["state"] == "running" and last["source"]["reconnects"] >= 1
    assert daemon.terminate() == 0
    assert "retrying" in daemon.logs()


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(0.2)
    messages = []

    def drain(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = sock.recv(4096).decode()
            except socket.timeout:
                continue
            messages.append((time.monotonic(), data))
        return messages

    def drain_until(predicate, what, timeout=60.0):
        end = time.monotonic() + timeout
        while not predicate(messages):
            assert time.monotonic() < end, f"timed out waiting for {what}: {messages}"
            drain(0.2)

    drain.until = drain_until
    yield path, drain, messages
    sock.close()


def test_sd_notify_ready_watchdog_stall_and_stopping(model, tmp_path, broker, subscriber,
                                                     daemon_factory, notify_socket):
    import cv2

    from tests.conftest import photo

    path, drain, messages = notify_socket
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), cv2.imread(str(photo("dog"))))
    os.mkfifo(folder / "zz.jpg")  # a frame whose read never returns: a hung camera driver
    daemon = daemon_factory(
        config_toml(model, folder, broker.port, source={"fps": 4.0, "realtime": True},
                    service={"stall_timeout": 2.0, "status_interval": 1.0}),
        env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})  # pings every 0.5 s
    # READY only once a frame has gone through (its STATUS counts the frames processed)
    drain.until(lambda ms: any("READY=1" in m for _, m in ms), "READY=1")
    ready = next(m for _, m in messages if "READY=1" in m)
    assert re.search(r"STATUS=[0-9.]+ fps, [1-9][0-9]* frames", ready), ready
    assert not any(m == "WATCHDOG=1" for _, m in messages[:messages.index(next(
        x for x in messages if "READY=1" in x[1]))])  # no ping before READY

    # healthy: pings; then capture hangs on the FIFO after 12 frames and counts as stalled
    drain.until(lambda ms: sum(m == "WATCHDOG=1" for _, m in ms) >= 4, "four pings")
    drain.until(lambda ms: any("STALLED: capture" in m for _, m in ms), "STALLED: capture")
    stalled_at = next(i for i, (_, m) in enumerate(messages) if "STALLED: capture" in m)
    pings = sum(m == "WATCHDOG=1" for _, m in messages)
    # three more status updates while stalled (status_interval 1 s, pings due every 0.5 s)
    drain.until(lambda ms: sum("STALLED: capture" in m for _, m in ms[stalled_at:]) >= 4,
                "more status updates while stalled")
    assert sum(m == "WATCHDOG=1" for _, m in messages) == pings, \
        "watchdog still pinged while capture is stalled"

    assert daemon.terminate() == 0, daemon.logs()
    drain(0.5)
    assert any(m.startswith("STOPPING=1") for _, m in messages)


def test_bad_config_lists_every_problem(tmp_path, daemon_factory, model):
    daemon = daemon_factory(config_toml(model, "x.avi", 1, mqtt={"prot": 1, "qos": 3},
                                        detect={"confidence": 2.0}))
    assert daemon.wait(30) == 2
    log = daemon.logs()
    assert "3 problems" in log and "mqtt.prot: unknown key (did you mean 'port'?)" in log
    assert "mqtt.qos" in log and "detect.confidence" in log and "Traceback" not in log


def test_missing_model_exits_2(tmp_path, daemon_factory):
    daemon = daemon_factory(config_toml(tmp_path / "no-model", "x.avi", 1883))
    assert daemon.wait(30) == 2
    assert "model not found" in daemon.logs() and "Traceback" not in daemon.logs()


def test_missing_device_without_fallback_exits_2(model, clip, daemon_factory):
    daemon = daemon_factory(config_toml(model, clip, 1883, model={"device": "MYRIAD", "fallback": ""}))
    assert daemon.wait(30) == 2
    assert "device 'MYRIAD' is not available" in daemon.logs()


def test_missing_device_falls_back_loudly(model, clip, broker, subscriber, daemon_factory):
    daemon = daemon_factory(config_toml(model, clip, broker.port,
                                        model={"device": "MYRIAD", "fallback": "CPU"}))
    assert daemon.wait(120) == 0
    assert "FALLING BACK to CPU" in daemon.logs()
    subscriber.wait_for(lambda: subscriber.payloads("stats") or subscriber.payloads("detections"),
                        what="messages")


def test_unreachable_broker_does_not_block_the_pipeline(model, clip, daemon_factory, run_cli, tmp_path):
    from tests.edge.conftest import free_port

    port = free_port()  # nothing listens there
    daemon = daemon_factory(config_toml(model, clip, port), extra=["--print"])
    out, _ = daemon.proc.communicate(timeout=120)
    assert daemon.proc.returncode == 0, daemon.logs()
    assert "summary: 20 frames" in out and "more" in out  # long lines are capped
    # `check` reports it as a failure, with the address
    config = tmp_path / "check.toml"
    config.write_text(config_toml(model, clip, port))
    result = run_cli("edge_app", "check", "--config", config)
    assert result.returncode == 1
    assert "broker: FAILED" in result.stdout and f"127.0.0.1:{port}" in result.stdout
    assert "model: ok" in result.stdout and "source: ok" in result.stdout


def test_check_masks_the_password(model, clip, broker, run_cli, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    config = tmp_path / "check.toml"
    config.write_text(config_toml(model, clip, broker.port,
                                  mqtt={"username": "pi", "password_file": str(secret)}))
    result = run_cli("edge_app", "check", "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ready" in result.stdout and "hunter2" not in result.stdout + result.stderr
    assert "******" in result.stdout


def test_the_configured_performance_hint_reaches_openvino(model):
    from edge_app import config
    from edge_app.daemon import load_detector, request_count
    from edge_app.runtime import CPU_STREAMS_SHARE_WEIGHTS, ONE_STREAM_REQUESTS, release

    for hint in ("throughput", "latency", "auto"):
        c = config.build({"model": {"path": str(model), "device": "CPU", "hint": hint}})
        detector = load_detector(c)
        one_stream = hint == "latency" or (
            hint == "auto" and release(detector.adapter.version) < CPU_STREAMS_SHARE_WEIGHTS)
        try:
            chosen = str(detector.adapter.compiled.get_property("PERFORMANCE_HINT")).upper()
            assert ("LATENCY" if one_stream else "THROUGHPUT") in chosen, (hint, chosen)
        except TypeError:  # OpenVINO 2022.1's binding cannot convert this property: its effect below
            pass
        requests = request_count(c, detector)
        if hint == "latency":  # one stream: one request at a time is its optimum
            assert requests == 1
        elif one_stream:  # auto with one stream: the host's work overlaps the next inference
            assert requests == ONE_STREAM_REQUESTS
        elif (os.cpu_count() or 1) > 1:  # a stream per core, each with a request
            assert requests > 1
