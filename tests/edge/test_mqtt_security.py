"""Username/password and TLS against a real Mosquitto: the daemon connects with the right
credentials, is refused (and says so) with wrong ones, and never shows the password."""
import shutil
import subprocess
import time

import pytest

from tests.edge.conftest import Broker, config_toml


@pytest.fixture
def model(exported):
    return exported("tiny-224x160", fp16=True, resize_mode="resize")[0]


def secured_broker(tmp_path, tls=False):
    broker = Broker(tmp_path)
    passwd = tmp_path / "passwd"
    subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", "-c", str(passwd),
                    "pi", "s3cret-pw"], check=True, capture_output=True)
    # "user root": as root, mosquitto would drop to user mosquitto, which cannot read pytest tmp dirs
    # (ignored when the tests do not run as root)
    lines = [f"listener {broker.port} 127.0.0.1", "user root", "allow_anonymous false", f"password_file {passwd}",
             "persistence false"]
    if tls:
        ssl = tmp_path / "ssl"
        ssl.mkdir()
        run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=ssl)
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=test-ca")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
        (ssl / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
        lines += [f"cafile {ssl / 'ca.pem'}", f"certfile {ssl / 'server.pem'}", f"keyfile {ssl / 'server.key'}"]
    broker.conf.write_text("\n".join(lines) + "\n")
    broker.start()
    return broker


def test_password_auth_and_refusal(model, clip, tmp_path, daemon_factory, run_cli):
    broker = secured_broker(tmp_path)
    try:
        good, bad = tmp_path / "good", tmp_path / "bad"
        good.write_text("s3cret-pw\n")
        bad.write_text("wrong\n")
        for secret, expect in ((good, 0), (bad, 1)):
            config = tmp_path / f"{secret.name}.toml"
            config.write_text(config_toml(model, clip, broker.port, mqtt={"username": "pi", "password_file": str(secret)}))
            result = run_cli("edge_app", "check", "--config", config)
            assert result.returncode == expect, result.stdout + result.stderr
            assert "s3cret-pw" not in result.stdout + result.stderr
        assert "refused the connection" in result.stdout
        # the daemon with the wrong password keeps running its pipeline and says why nothing is published
        daemon = daemon_factory(config_toml(model, clip, broker.port, mqtt={"username": "pi", "password_file": str(bad)}))
        assert daemon.wait(120) == 0
        assert "refused the connection" in daemon.logs() and "wrong" not in daemon.logs()
    finally:
        broker.kill()


def test_tls_with_ca(model, clip, tmp_path, daemon_factory):
    if not shutil.which("openssl"):
        pytest.fail("openssl not installed")
    broker = secured_broker(tmp_path, tls=True)
    try:
        secret = tmp_path / "pw"
        secret.write_text("s3cret-pw")
        import paho.mqtt.client as mqtt

        received = []
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sub.username_pw_set("pi", "s3cret-pw")
        sub.tls_set(ca_certs=str(tmp_path / "ssl" / "ca.pem"))
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("edge-vision/#", 1)
        sub.on_message = lambda c, u, m: received.append(m.topic)
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        daemon = daemon_factory(config_toml(model, clip, broker.port, mqtt={
            "username": "pi", "password_file": str(secret), "tls": True, "ca_file": str(tmp_path / "ssl" / "ca.pem")}))
        assert daemon.wait(120) == 0, daemon.logs()
        end = time.monotonic() + 10
        while time.monotonic() < end and not any(t.endswith("/detections") for t in received):
            time.sleep(0.1)
        sub.loop_stop()
        assert sum(t.endswith("/detections") for t in received) == 20
    finally:
        broker.kill()


def test_tls_failure_is_explained(model, clip, tmp_path, daemon_factory, run_cli):
    """A CA that did not sign the broker's certificate: the daemon keeps its pipeline running and
    says why it cannot connect (paho alone only retries, silently)."""
    if not shutil.which("openssl"):
        pytest.fail("openssl not installed")
    broker = secured_broker(tmp_path, tls=True)
    try:
        other = tmp_path / "other-ca"
        other.mkdir()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                        "-out", "ca.pem", "-days", "2", "-subj", "/CN=another-ca"],
                       check=True, capture_output=True, cwd=other)
        secret = tmp_path / "pw"
        secret.write_text("s3cret-pw")
        config = config_toml(model, clip, broker.port, source={"realtime": True, "fps": 10.0}, mqtt={
            "username": "pi", "password_file": str(secret), "tls": True, "ca_file": str(other / "ca.pem")})
        daemon = daemon_factory(config)
        assert daemon.wait(120) == 0, daemon.logs()
        logs = daemon.logs()
        assert "TLS handshake failed" in logs and "certificate" in logs, logs
        assert "s3cret-pw" not in logs
    finally:
        broker.kill()
