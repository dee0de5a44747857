"""`edge-app run` with the demo model on a synthetic clip, against a real Mosquitto broker: a
subscriber receives Home Assistant discovery configs, events, counts and snapshots, and they
validate against the JSON Schemas and the discovery rules from Home Assistant's documentation."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.edge.conftest import Subscriber, config_toml
from tests.edge.ha_discovery_rules import check_unique, problems

jsonschema = pytest.importorskip("jsonschema")
DEMO_MODEL = REPO / "demo/model"


def schema(name):
    return json.loads((REPO / "edge_app/schemas" / f"{name}.schema.json").read_text())


def retained(port, topic_filter, settle=1.5):
    """What a newcomer gets: the retained messages (retain flag set by the broker)."""
    s = Subscriber(port, topic_filter)
    time.sleep(settle)
    s.close()
    return {topic: data for topic, data, retain in s.raw if retain}


@pytest.fixture
def demo_clip(tmp_path):
    from model_tools import synth

    return synth.make_clip(tmp_path / "clip.avi", frames=30, seed=4242)  # 3 s at 10 fps


def test_discovery_events_and_snapshots_through_a_real_broker(demo_clip, broker, subscriber, daemon_factory, tmp_path):
    import paho.mqtt.publish as publish

    labels = json.loads((DEMO_MODEL / "demo.json").read_text())["labels"]
    # a class an earlier model had: its retained config must be removed
    gone = "homeassistant/sensor/pi-test/Gone_count/config"
    publish.single(gone, json.dumps({"name": "Gone count", "unique_id": "x", "state_topic": "a"}), qos=1,
                   retain=True, hostname="127.0.0.1", port=broker.port)
    watch = subprocess.Popen([sys.executable, "-m", "edge_app", "watch", "--port", str(broker.port),
                              "--host", "127.0.0.1", "--events-only"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    daemon = daemon_factory(config_toml(DEMO_MODEL, demo_clip, broker.port, detect={"confidence": 0.4},
                                        source={"realtime": True},  # 3 s: stats go out too
                                        snapshots={"min_interval": 0.0, "max_bytes": 40000}))
    assert daemon.wait(120) == 0, daemon.logs()
    subscriber.wait_for(lambda: "stopped" in subscriber.payloads("available"), what="'stopped'")

    # events: schema, one new and one end per object, ids consistent
    events = subscriber.payloads("events")
    assert events, daemon.logs()
    for e in events:
        jsonschema.validate(e, schema("event"))
    new = [e["after"]["id"] for e in events if e["type"] == "new"]
    end = [e["after"]["id"] for e in events if e["type"] == "end"]
    assert sorted(new) == sorted(end) and len(set(new)) == len(new) >= 1
    # the per-frame detections topic is still there (mqtt.detections defaults to true)
    assert len(subscriber.payloads("detections")) == 30

    # retained state, as a newcomer (Home Assistant starting later) sees it
    state = retained(broker.port, "#")
    counts = json.loads(state["edge-vision/pi-test/counts"])
    jsonschema.validate(counts, schema("counts"))
    assert counts["counts"] == {label: 0 for label in labels}  # everything ended at the stop
    stats = subscriber.payloads("stats")
    assert stats, "no stats message to render the diagnostic sensors' templates on"
    samples = {"edge-vision/pi-test/counts": state["edge-vision/pi-test/counts"].decode(),
               "edge-vision/pi-test/stats": json.dumps(stats[-1])}
    configs = {t: d for t, d in state.items() if t.startswith("homeassistant/")}
    assert gone not in configs, "the config of a class the model no longer has was not removed"
    assert any(t == gone and d == b"" for t, d, _ in subscriber.raw)
    assert len(configs) == 3 * len(labels) + 2
    for topic, data in configs.items():
        assert problems(topic, data, retained=True, samples=samples) == [], topic
    assert check_unique(configs) == []

    # snapshots: retained JPEGs of the labels that had objects, within the size cap
    seen_labels = {e["after"]["label"] for e in events}
    snapshots = {t.split("/")[-2]: d for t, d in state.items() if t.endswith("/snapshot")}
    assert set(snapshots) == seen_labels
    for label, data in snapshots.items():
        assert 0 < len(data) <= 40000
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (240, 320)
        camera = json.loads(configs[f"homeassistant/camera/pi-test/{label}_snapshot/config"])
        assert camera["topic"] == f"edge-vision/pi-test/{label}/snapshot"
    assert any(e["after"]["has_snapshot"] for e in events if e["type"] == "end")

    # `edge-app watch --events-only` showed them readably, without per-frame detections
    watch.send_signal(signal.SIGINT)
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    lines = out.splitlines()
    assert sum(" event new " in line for line in lines) == len(new), out
    assert sum(" event end " in line for line in lines) == len(end), out
    assert any("snapshot of" in line and "bytes JPEG" in line for line in lines), out
    assert any("in view:" in line for line in lines)
    assert not any(re.match(r"^\S+ frame \d+:", line) for line in lines), "per-frame detections shown"
