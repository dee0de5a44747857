import pytest

from edge_app import config
from edge_app.errors import InputError


def problems(data, overrides=None):
    with pytest.raises(InputError) as info:
        config.build(data, "edge-app.toml", overrides)
    return info.value


def test_defaults_need_only_the_model():
    c = config.build({"model": {"path": "/opt/model"}})
    assert c.model.device == "MYRIAD" and c.model.fallback == "CPU" and c.mqtt.qos == 1
    assert c.topic_base.startswith("edge-vision/")


def test_every_problem_reported_at_once_with_key_paths():
    err = problems({"model": {"path": ""}, "mqtt": {"prot": 1, "qos": 5, "port": "x"},
                    "detect": {"confidence": 1.5}, "sorce": {}})
    text = err.what
    assert "6 problems" in text
    assert "sorce: unknown section (did you mean 'source'?)" in text
    assert "mqtt.prot: unknown key (did you mean 'port'?)" in text
    assert "mqtt.port: must be an integer, found 'x'" in text
    assert "mqtt.qos: 5 is not one of 0, 1, 2" in text
    assert "detect.confidence: must be between 0 and 1" in text
    assert "model.path: required" in text
    assert err.where == "edge-app.toml"


def test_overrides_are_typed_and_checked():
    c = config.build({"model": {"path": "m"}}, overrides={"mqtt.port": "8883", "source.loop": "true",
                                                          "detect.classes": "Adidas,Nike"})
    assert c.mqtt.port == 8883 and c.source.loop is True and c.detect.classes == ("Adidas", "Nike")
    err = problems({"model": {"path": "m"}}, {"mqtt.hots": "x"})
    assert "mqtt.hots: unknown key (did you mean 'host'?)" in err.what


def test_password_never_in_the_file(tmp_path, monkeypatch):
    err = problems({"model": {"path": "m"}, "mqtt": {"username": "u", "password": "p"}})
    assert "secrets do not go in the config file" in err.what
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    c = config.build({"model": {"path": "m"}, "mqtt": {"username": "u", "password_file": str(secret)}})
    assert c.password() == "s3cret"
    assert "s3cret" not in repr(c.describe())
    monkeypatch.setenv("MQTT_PW", "envpw")
    c = config.build({"model": {"path": "m"}, "mqtt": {"username": "u", "password_env": "MQTT_PW"}})
    assert c.password() == "envpw"


def test_tls_files_must_exist(tmp_path):
    err = problems({"model": {"path": "m"}, "mqtt": {"tls": True, "ca_file": str(tmp_path / "none.pem"),
                                                     "cert_file": str(tmp_path / "c.pem")}})
    assert "mqtt.ca_file: file" in err.what and "a client certificate needs both" in err.what


def test_toml_syntax_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\npath = 1\n")
    with pytest.raises(InputError) as info:
        config.load(str(bad))
    assert info.value.where == str(bad) and "not valid TOML" in info.value.what


def test_example_config_is_valid():
    from tests.conftest import REPO

    c = config.load(str(REPO / "systemd/edge-app.toml"))
    assert c.model.device == "MYRIAD" and c.mqtt.publish in ("every", "detections", "changes")


def test_the_performance_hint_is_auto_throughput_or_latency():
    assert config.build({"model": {"path": "m"}}).model.hint == "auto"
    assert config.build({"model": {"path": "m", "hint": "throughput"}}).model.hint == "throughput"
    assert config.build({"model": {"path": "m", "hint": "latency"}}).model.hint == "latency"
    err = problems({"model": {"path": "m", "hint": "latncy"}})
    assert "model.hint: 'latncy' is not one of 'auto', 'throughput', 'latency' (did you mean 'latency'?)" in err.what
