"""Edge config values that used to be accepted and then misbehave (issue 12): each is refused
with its key path, and `edge-app run` exits 2 without a traceback."""
from __future__ import annotations

import math

import pytest

from edge_app.config import build
from edge_app.daemon import check_classes
from edge_app.errors import InputError

BAD = [
    ({"detect": {"confidence": math.nan}}, "detect.confidence: must be a finite number"),
    ({"detect": {"nms": math.inf}}, "detect.nms: must be a finite number"),
    ({"service": {"stall_timeout": math.nan}}, "service.stall_timeout"),
    ({"service": {"status_interval": 0.0}}, "service.status_interval: must be > 0"),
    ({"source": {"retry_min": math.nan}}, "source.retry_min: must be a finite number"),
    ({"source": {"retry_min": -1.0}}, "source.retry_min / retry_max"),
    ({"source": {"fps": -5.0}}, "source.fps: must be >= 0"),
    ({"model": {"requests": 100000}}, "model.requests: must be 0 (the device's optimum) to 64"),
    ({"model": {"requests": -1}}, "model.requests"),
    ({"mqtt": {"keepalive": 65536}}, "mqtt.keepalive: must be 0 (off) to 65535"),
    ({"mqtt": {"keepalive": -1}}, "mqtt.keepalive"),
    ({"mqtt": {"host": "h" * 300}}, "mqtt.host: 300 characters"),
    ({"mqtt": {"client_id": "c" * 5000}}, "mqtt.client_id: longer than 1024 bytes"),
    ({"mqtt": {"client_id": "a\0b"}}, "mqtt.client_id: contains a NUL character"),
    ({"mqtt": {"device_id": "pi\0"}}, "mqtt.device_id: contains a NUL character"),
    ({"mqtt": {"topic_prefix": "$SYS/edge"}}, "mqtt.topic_prefix: '$SYS/edge' starts with '$'"),
    ({"mqtt": {"topic_prefix": ""}}, "mqtt.topic_prefix: empty"),
    ({"mqtt": {"topic_prefix": "/"}}, "mqtt.topic_prefix: empty"),
    ({"mqtt": {"reconnect_min": 10.0, "reconnect_max": 2.0}}, "mqtt.reconnect_min / reconnect_max"),
    ({"mqtt": {"queue_limit": 0}}, "mqtt.queue_limit"),
    ({"mqtt": {"queue_bytes": 1000}}, "mqtt.queue_bytes: must be 65536 to 1073741824 bytes"),
    ({"mqtt": {"queue_bytes": 2 ** 31}}, "mqtt.queue_bytes: must be 65536 to 1073741824 bytes"),
    ({"mqtt": {"queue_bytes": 100000}, "snapshots": {"max_bytes": 150000}},
     "mqtt.queue_bytes: 100000 cannot hold one snapshot of snapshots.max_bytes = 150000"),
]


@pytest.mark.parametrize("values, message", BAD, ids=[m for _, m in BAD])
def test_a_bad_value_is_refused_with_its_key(values, message):
    data = {"model": {"path": "m"}, **values}
    data["model"].setdefault("path", "m")
    with pytest.raises(InputError) as caught:
        build(data, "edge-app.toml")
    assert message in str(caught.value)
    assert caught.value.where == "edge-app.toml"


def test_the_values_at_the_edges_of_their_ranges_are_accepted():
    config = build({"model": {"path": "m", "requests": 64},
                    "mqtt": {"keepalive": 65535, "client_id": "c" * 1024, "host": "h" * 253},
                    "detect": {"confidence": 0.5}})
    assert config.model.requests == 64 and config.mqtt.keepalive == 65535


def test_detect_classes_must_name_classes_of_the_model():
    check_classes(("dog",), ("dog", "person"))
    with pytest.raises(InputError) as caught:
        check_classes(("dgo", "person"), ("dog", "person"))
    assert caught.value.where == "detect.classes" and "'dgo'" in str(caught.value)


def test_a_non_utf8_password_file_is_an_input_error(tmp_path):
    secret = tmp_path / "password"
    secret.write_bytes(b"\xff\xfe secret")
    config = build({"model": {"path": "m"},
                    "mqtt": {"username": "u", "password_file": str(secret)}})
    with pytest.raises(InputError) as caught:
        config.password()
    assert "not UTF-8" in str(caught.value) and "mqtt.password_file" in caught.value.where


def test_run_with_a_nan_threshold_exits_2_without_traceback(tmp_path, daemon_factory):
    daemon = daemon_factory("[model]\npath = \"m\"\n[detect]\nconfidence = nan\n")
    assert daemon.wait(60) == 2
    log = daemon.logs()
    assert "detect.confidence: must be a finite number" in log and "Traceback" not in log


def test_a_ca_file_that_is_not_pem_is_an_input_error_in_check(tmp_path, run_cli):
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"not a certificate\n")
    config = tmp_path / "edge-app.toml"
    config.write_text(f'[model]\npath = "{tmp_path}/none"\n[mqtt]\ntls = true\nca_file = "{ca}"\n'
                      'port = 1\n')
    result = run_cli("edge_app", "check", "--config", config)
    assert "broker: FAILED: " in result.stdout and "cannot load the TLS files" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr and result.returncode == 1


def test_a_password_in_clear_and_a_world_readable_file_are_warned_about(tmp_path, caplog):
    import paho.mqtt.client as mqtt

    from edge_app.mqtt import secure_client

    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    config = build({"model": {"path": "m"},
                    "mqtt": {"username": "u", "password_file": str(secret)}})
    secure_client(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), config)
    assert "travels unencrypted" in caplog.text and "readable by every user" in caplog.text
