"""Home Assistant discovery payloads against the rules encoded from its documentation
(tests/edge/ha_discovery_rules.py), and the validator itself against known-bad payloads."""
import json

from edge_app.discovery import discovery_configs, node_filter, stale_config
from edge_app.events import counts_message
from tests.edge.ha_discovery_rules import check_unique, problems

BASE = "edge-vision/pi door"


def configs(labels=("Star", "Circle", "my/odd label")):
    return discovery_configs(prefix="homeassistant", topic_base="edge-vision/pi-door", device_id="pi door",
                             model_id="m-1", version="0.1", labels=labels)


def samples(counts):
    return {"edge-vision/pi-door/counts": json.dumps(counts_message(counts, ["Star", "Circle", "my/odd label"],
                                                                    device_id="pi door", model_id="m-1", at=1.0)),
            "edge-vision/pi-door/stats": json.dumps({"fps": 9.5, "inference_ms": {"p50": 61.2}})}


def test_every_config_follows_the_rules_and_templates_render():
    all_configs = configs()
    assert len(all_configs) == 3 * 3 + 2
    raw = {t: json.dumps(p).encode() for t, p in all_configs.items()}
    for counts in ({"Star": 2}, {}):
        for topic, data in raw.items():
            assert problems(topic, data, retained=True, samples=samples(counts)) == [], topic
    assert check_unique(raw) == []
    components = sorted(t.split("/")[1] for t in all_configs)
    assert components.count("camera") == 3 and components.count("binary_sensor") == 3
    assert "homeassistant/sensor/pi_door/my_odd_label_count/config" in all_configs
    devices = {json.dumps(p["device"], sort_keys=True) for p in all_configs.values()}
    assert len(devices) == 1  # one device per Pi
    diagnostic = [p for p in all_configs.values() if p.get("entity_category") == "diagnostic"]
    assert sorted(p["name"] for p in diagnostic) == ["Frames per second", "Inference time"]


def test_templates_give_the_counts():
    from tests.edge.ha_discovery_rules import render

    c = configs()
    sample = samples({"Star": 2})["edge-vision/pi-door/counts"]
    assert render(c["homeassistant/sensor/pi_door/Star_count/config"]["value_template"], sample) == "2"
    assert render(c["homeassistant/sensor/pi_door/Circle_count/config"]["value_template"], sample) == "0"
    assert render(c["homeassistant/binary_sensor/pi_door/Star_present/config"]["value_template"], sample) == "ON"
    assert render(c["homeassistant/binary_sensor/pi_door/Circle_present/config"]["value_template"], sample) == "OFF"
    assert render(c["homeassistant/sensor/pi_door/my_odd_label_count/config"]["value_template"], sample) == "0"


def test_the_validator_catches_broken_payloads():
    good_topic = "homeassistant/sensor/pi_door/Star_count/config"
    good = configs()[good_topic]

    def broken(**changes):
        payload = dict(good)
        for k, v in changes.items():
            if v is None:
                payload.pop(k)
            else:
                payload[k] = v
        return problems(good_topic, json.dumps(payload).encode(), True, samples=samples({"Star": 1}))

    assert problems("homeassistant/sensor/pi door/x/config", b"{}", True)  # space in node_id
    assert problems("homeassistant/sensors/pi/x/config", json.dumps(good).encode(), True)  # component
    assert problems(good_topic, json.dumps(good).encode(), retained=False)
    assert broken(unique_id=None)
    assert broken(device={"name": "x"})
    assert broken(availability_topic="a/b")
    assert broken(availability=None)
    assert broken(entity_category="config")
    assert broken(state_class="average")
    assert broken(value_template="{{ value_json.counts.Star ~ ' objects' }}")
    assert broken(stat_topic="typo")
    assert problems(good_topic, b"[1]", True) and problems(good_topic, b"not json", True)
    assert problems(good_topic, b"", True) == []  # removal


def test_a_class_that_left_the_model_is_cleared():
    current = configs(labels=("Star",))
    old = "homeassistant/sensor/pi_door/Circle_count/config"
    assert stale_config(old, b"{}", True, current, "homeassistant", "pi door") == old
    assert stale_config(old, b"", True, current, "homeassistant", "pi door") is None  # already removed
    assert stale_config(old, b"{}", False, current, "homeassistant", "pi door") is None  # our own live echo
    kept = "homeassistant/sensor/pi_door/Star_count/config"
    assert stale_config(kept, b"{}", True, current, "homeassistant", "pi door") is None
    other = "homeassistant/sensor/another_pi/Circle_count/config"
    assert stale_config(other, b"{}", True, current, "homeassistant", "pi door") is None
    assert node_filter("homeassistant", "pi door") == "homeassistant/+/pi_door/+/config"
