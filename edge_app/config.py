"""The daemon's configuration: one TOML file plus command-line overrides, validated at start.

Every problem is collected and reported at once, each with its key path ("mqtt.port") and,
for unknown keys, a "did you mean". Secrets (the MQTT password) are read from a file or an
environment variable, never from the TOML itself, and never shown.
"""
from __future__ import annotations

import math
import os
import socket
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edge_app.errors import InputError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.9/3.10 on the Pi
    import tomli as tomllib


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # export folder or its .json metadata (required)
    engine: str = "openvino"  # or "opencv": OpenCV DNN on the CPU, no OpenVINO (darknet files)
    device: str = "MYRIAD"
    # used when `device` is absent: an OpenVINO device, then the OpenCV engine when OpenVINO
    # cannot run the model at all; "opencv" goes straight there; "" refuses to start instead
    fallback: str = "CPU"
    requests: int = 0  # parallel infer requests; 0 = the device's optimum (4 on MYRIAD)
    # OpenVINO's performance hint: "throughput" = a stream per core on the CPU plugin, each with
    # its own activations; "latency" = one stream on every core: less memory, fewer fps; "auto" =
    # throughput, but one stream (2 requests) on a CPU plugin whose streams each copy the weights
    # (OpenVINO before 2024.2: edge_app/runtime.py, performance_hint)
    hint: str = "auto"


@dataclass(frozen=True)
class DetectConfig:
    confidence: float = -1.0  # < 0: the model's default (metadata)
    nms: float = -1.0
    classes: Tuple[str, ...] = ()  # allow-list of labels; empty = all


@dataclass(frozen=True)
class SourceConfig:
    kind: str = "auto"  # auto | picamera2 | opencv | directory
    uri: str = "0"  # camera index, /dev/videoN, file, rtsp:// or http:// URL, folder
    width: int = 0  # requested capture size (cameras); 0 = the device's default (Pi camera: the network size)
    height: int = 0
    fps: float = 0.0
    loop: bool = False  # files and folders: start again at the end
    realtime: bool = True  # files: read at the file's frame rate, as a camera would deliver
    every_frame: bool = False  # never drop a frame: capture waits for inference
    retry_min: float = 1.0  # seconds before re-opening a vanished source, doubling up to max
    retry_max: float = 30.0


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = True
    host: str = "localhost"
    port: int = 1883
    client_id: str = ""  # default: edge-app-<device_id>
    topic_prefix: str = "edge-vision"
    device_id: str = ""  # default: the host name
    qos: int = 1
    keepalive: int = 30
    detections: bool = True  # the per-frame detections topic (events are the summary of it)
    publish: str = "every"  # every | detections | changes
    max_rate: float = 0.0  # detection messages per second at most; 0 = no limit
    queue_limit: int = 1000  # QoS>=1 messages held while the broker is away ...
    queue_bytes: int = 16 * 2 ** 20  # ... and their bytes at most (snapshots are up to snapshots.max_bytes)
    stats_interval: float = 30.0
    username: str = ""
    password_file: str = ""
    password_env: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0


@dataclass(frozen=True)
class EventsConfig:
    enabled: bool = True  # track objects; events on <prefix>/<device>/events, counts retained
    iou_threshold: float = 0.3  # a detection continues a track when IoU with its predicted box >= this
    max_missed: int = 5  # frames an object may go undetected before it ends
    min_hits: int = 5  # consecutive frames an object must be seen in before `new` (brief false positives never are)
    update_interval: float = 5.0  # seconds between `update` events of one object at most
    qos: int = 1


@dataclass(frozen=True)
class SnapshotsConfig:
    enabled: bool = True  # best frame of each object on <prefix>/<device>/<label>/snapshot (retained)
    max_bytes: int = 150000  # JPEG size cap (quality, then size, is lowered to fit)
    quality: int = 80
    min_interval: float = 5.0  # seconds between snapshots of one label at most
    folder: str = ""  # also save each object's best frame here; "" = do not save
    folder_max_mb: float = 50.0  # oldest files deleted first beyond this total ...
    folder_max_files: int = 500  # ... or this many files


@dataclass(frozen=True)
class DiscoveryConfig:
    enabled: bool = True  # Home Assistant MQTT discovery (retained configs)
    prefix: str = "homeassistant"  # Home Assistant's discovery_prefix
    device_name: str = ""  # the device's name in Home Assistant; default: edge-vision <device_id>


@dataclass(frozen=True)
class LiveConfig:
    enabled: bool = False  # HTTP live view: MJPEG of annotated frames + a status page
    host: str = "127.0.0.1"  # only this machine; "0.0.0.0" to reach it over the network
    port: int = 8080
    quality: int = 70
    max_fps: float = 10.0  # frames encoded per second at most (only while someone watches)
    max_viewers: int = 4


@dataclass(frozen=True)
class ServiceConfig:
    log_level: str = "info"
    stall_timeout: float = 20.0  # a stage silent this long counts as stalled (no watchdog ping)
    status_interval: float = 5.0


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    snapshots: SnapshotsConfig = field(default_factory=SnapshotsConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    path: str = "<defaults>"

    def password(self) -> Optional[str]:
        """The MQTT password from its file or environment variable (never from the TOML)."""
        if self.mqtt.password_file:
            try:
                return Path(self.mqtt.password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(f"cannot read the MQTT password file: {exc.strerror}",
                                 "mqtt.password_file", "check the path and its permissions") from None
            except UnicodeDecodeError as exc:
                raise InputError(f"the MQTT password file is not UTF-8 text (byte {exc.start})",
                                 f"mqtt.password_file ({self.mqtt.password_file})",
                                 "write the password as UTF-8 text") from None
        if self.mqtt.password_env:
            value = os.environ.get(self.mqtt.password_env)
            if value is None:
                raise InputError(f"environment variable {self.mqtt.password_env} is not set",
                                 "mqtt.password_env", "set it in the service's environment file")
            return value
        return None

    @property
    def device_id(self) -> str:
        return self.mqtt.device_id or socket.gethostname()

    @property
    def topic_base(self) -> str:
        return f"{self.mqtt.topic_prefix.rstrip('/')}/{self.device_id}"

    def describe(self) -> Dict[str, Dict[str, Any]]:
        """The effective configuration, secrets masked, for `edge-app check` and the log."""
        out: Dict[str, Dict[str, Any]] = {}
        for section in SECTIONS:
            values = {f.name: getattr(getattr(self, section), f.name)
                      for f in fields(getattr(self, section))}
            out[section] = values
        for key in ("password_file", "password_env"):
            if out["mqtt"][key]:
                out["mqtt"][key] = out["mqtt"][key] + " (password: ******)"
        return out


SECTIONS = ("model", "detect", "source", "mqtt", "service", "events", "snapshots", "discovery", "live")
CHOICES = {
    ("model", "engine"): ("openvino", "opencv"),
    ("model", "hint"): ("auto", "throughput", "latency"),
    ("source", "kind"): ("auto", "picamera2", "opencv", "directory"),
    ("mqtt", "publish"): ("every", "detections", "changes"),
    ("mqtt", "qos"): (0, 1, 2),
    ("events", "qos"): (0, 1, 2),
    ("service", "log_level"): ("debug", "info", "warning", "error"),
}
SECRET_KEYS = {("mqtt", "password")}
MAX_REQUESTS = 64  # more requests than this buy nothing on any device and cost a frame each
MAX_HOST = 253  # the longest DNS name
# bytes of UTF-8: MQTT allows 65535 per string, but an id or topic part this long is a mistake
# (a pasted file), and an over-long one killed paho's network thread
MAX_MQTT_NAME = 1024


def _coerce(value: Any, default: Any, key: str, errors: List[str]) -> Any:
    kind = type(default)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
    elif isinstance(default, str):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    type_name = {bool: "true or false", int: "an integer", float: "a number",
                 tuple: "a list of strings", str: "a string"}[kind]
    errors.append(f"{key}: must be {type_name}, found {value!r}")
    return default


def _check_values(config: Config, errors: List[str]) -> None:
    for (section, key), choices in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            errors.append(f"{section}.{key}: {value!r} is not one of "
                          f"{', '.join(repr(c) for c in choices)}{did_you_mean(str(value), map(str, choices))}")
    for section in SECTIONS:  # every number finite, no NUL in any text
        current = getattr(config, section)
        for f in fields(current):
            value = getattr(current, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                errors.append(f"{section}.{f.name}: must be a finite number, found {value}")
            texts = value if isinstance(value, tuple) else (value,)
            if any(isinstance(t, str) and "\0" in t for t in texts):
                errors.append(f"{section}.{f.name}: contains a NUL character; remove it")
    m, d, s, q, v = config.model, config.detect, config.source, config.mqtt, config.service
    if not m.path:
        errors.append("model.path: required: the folder or .json written by `model-tools export`")
    if not 0 <= m.requests <= MAX_REQUESTS:
        errors.append(f"model.requests: must be 0 (the device's optimum) to {MAX_REQUESTS}, "
                      f"found {m.requests}")
    for key in ("confidence", "nms"):
        value = getattr(d, key)
        if value >= 0 and not 0 < value < 1:
            errors.append(f"detect.{key}: must be between 0 and 1 (exclusive), found {value}")
    if not 1 <= q.port <= 65535:
        errors.append(f"mqtt.port: {q.port} is not a TCP port (1-65535)")
    if q.enabled and not q.host:
        errors.append("mqtt.host: empty; give the broker's host name or address, or set mqtt.enabled = false")
    if len(q.host) > MAX_HOST:
        errors.append(f"mqtt.host: {len(q.host)} characters; a host name has at most {MAX_HOST}")
    if not 0 <= q.keepalive <= 65535:
        errors.append(f"mqtt.keepalive: must be 0 (off) to 65535 seconds, found {q.keepalive}")
    for key in ("client_id", "topic_prefix", "device_id"):
        if len(getattr(q, key).encode("utf-8")) > MAX_MQTT_NAME:
            errors.append(f"mqtt.{key}: longer than {MAX_MQTT_NAME} bytes; shorten it")
    if not q.topic_prefix.strip("/"):
        errors.append("mqtt.topic_prefix: empty; give one, e.g. \"edge-vision\"")
    elif q.topic_prefix.startswith("$"):
        errors.append(f"mqtt.topic_prefix: {q.topic_prefix!r} starts with '$', which brokers keep "
                      "for themselves ($SYS/...); choose another, e.g. \"edge-vision\"")
    if any(c in q.topic_prefix for c in "#+") or any(c in config.device_id for c in "#+/"):
        errors.append("mqtt.topic_prefix / mqtt.device_id: must not contain MQTT wildcards (# +) "
                      "and the device id no '/'")
    for key in ("max_rate", "stats_interval", "reconnect_min", "reconnect_max"):
        if getattr(q, key) < 0:
            errors.append(f"mqtt.{key}: must be >= 0")
    if not 1 <= q.queue_limit <= 1_000_000:
        errors.append(f"mqtt.queue_limit: must be 1 to 1000000 messages, found {q.queue_limit}")
    if not 65536 <= q.queue_bytes <= 2 ** 30:
        errors.append(f"mqtt.queue_bytes: must be 65536 to 1073741824 bytes (64 KiB to 1 GiB), "
                      f"found {q.queue_bytes}")
    elif config.snapshots.enabled and q.queue_bytes < config.snapshots.max_bytes:
        errors.append(f"mqtt.queue_bytes: {q.queue_bytes} cannot hold one snapshot of snapshots.max_bytes = "
                      f"{config.snapshots.max_bytes}; raise it, or lower snapshots.max_bytes")
    if q.reconnect_max < q.reconnect_min:
        errors.append("mqtt.reconnect_min / reconnect_max: need reconnect_min <= reconnect_max")
    if q.password_file and q.password_env:
        errors.append("mqtt.password_file / mqtt.password_env: give one, not both")
    if (q.password_file or q.password_env) and not q.username:
        errors.append("mqtt.username: required when a password is configured")
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(q, key)
        if path and not Path(path).is_file():
            errors.append(f"mqtt.{key}: file {path} does not exist")
    if bool(q.cert_file) != bool(q.key_file):
        errors.append("mqtt.cert_file / mqtt.key_file: a client certificate needs both")
    if s.retry_min <= 0 or s.retry_max < s.retry_min:
        errors.append("source.retry_min / retry_max: need 0 < retry_min <= retry_max")
    if not v.stall_timeout > 0:
        errors.append("service.stall_timeout: must be > 0")
    if not v.status_interval > 0:
        errors.append("service.status_interval: must be > 0")
    for key in ("width", "height", "fps"):
        if getattr(s, key) < 0:
            errors.append(f"source.{key}: must be >= 0 (0 = the device's default)")
    _check_event_sections(config, errors)


def _check_event_sections(config: Config, errors: List[str]) -> None:
    e, n, h, w = config.events, config.snapshots, config.discovery, config.live
    if not 0 < e.iou_threshold <= 1:
        errors.append(f"events.iou_threshold: must be in (0, 1], found {e.iou_threshold}")
    if e.max_missed < 0:
        errors.append("events.max_missed: must be >= 0 (frames)")
    if e.min_hits < 1:
        errors.append("events.min_hits: must be >= 1 (frames)")
    if e.update_interval < 0:
        errors.append("events.update_interval: must be >= 0 (seconds)")
    if n.max_bytes < 2000:
        errors.append(f"snapshots.max_bytes: {n.max_bytes} is too small for a JPEG; give at least 2000")
    if not 1 <= n.quality <= 100:
        errors.append(f"snapshots.quality: must be 1-100, found {n.quality}")
    if n.min_interval < 0:
        errors.append("snapshots.min_interval: must be >= 0 (seconds)")
    if n.folder_max_mb <= 0 or n.folder_max_files < 1:
        errors.append("snapshots.folder_max_mb / folder_max_files: must be > 0")
    if not h.prefix or any(c in h.prefix for c in "#+") or h.prefix != h.prefix.strip("/"):
        errors.append(f"discovery.prefix: {h.prefix!r} is not a topic prefix (no wildcards, no "
                      "leading or trailing '/'); Home Assistant's default is homeassistant")
    if not 1 <= w.port <= 65535:
        errors.append(f"live.port: {w.port} is not a TCP port (1-65535)")
    if not w.host:
        errors.append("live.host: empty; give 127.0.0.1 (this machine only) or an address to bind")
    if not 1 <= w.quality <= 100:
        errors.append(f"live.quality: must be 1-100, found {w.quality}")
    if w.max_fps <= 0:
        errors.append("live.max_fps: must be > 0")
    if w.max_viewers < 1:
        errors.append("live.max_viewers: must be at least 1")


def build(data: Dict[str, Any], path: str = "<config>",
          overrides: Optional[Dict[str, str]] = None) -> Config:
    """Config from parsed TOML plus `section.key=value` overrides; InputError lists every problem."""
    errors: List[str] = []
    merged: Dict[str, Dict[str, Any]] = {}
    for section, values in data.items():
        if section not in SECTIONS:
            errors.append(f"{section}: unknown section{did_you_mean(section, SECTIONS)}")
        elif not isinstance(values, dict):
            errors.append(f"{section}: must be a table ([{section}])")
        else:
            merged[section] = dict(values)
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or not key:
            errors.append(f"{dotted} (command line): expected section.key with a section among "
                          f"{', '.join(SECTIONS)}{did_you_mean(section, SECTIONS)}")
            continue
        merged.setdefault(section, {})[key] = value
    config = Config(path=path)
    for section, values in merged.items():
        current = getattr(config, section)
        known = {f.name: getattr(current, f.name) for f in fields(current)}
        updates = {}
        for key, value in values.items():
            if (section, key) in SECRET_KEYS:
                errors.append(f"{section}.{key}: secrets do not go in the config file; use "
                              f"{section}.password_file or {section}.password_env")
            elif key not in known:
                errors.append(f"{section}.{key}: unknown key{did_you_mean(key, known)}")
            else:
                updates[key] = _coerce(value, known[key], f"{section}.{key}", errors)
        config = replace(config, **{section: replace(current, **updates)})
    _check_values(config, errors)
    if errors:
        raise InputError(f"{len(errors)} problem{'s' if len(errors) > 1 else ''} in the "
                         "configuration:\n    " + "\n    ".join(errors), path,
                         "edit the file (or the --set option) as each line says")
    return config


def load(path: Optional[str], overrides: Optional[Dict[str, str]] = None) -> Config:
    data: Dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise InputError(f"cannot read config file: {exc.strerror}", path,
                             "check the path given with --config") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"not valid TOML: {exc}", path, "fix the syntax at the line named") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                             path, "save the config file as UTF-8") from None
        except RecursionError:
            raise InputError("arrays or tables nested too deeply to read", path,
                             "the config needs no nesting beyond [section] key = value") from None
        except ValueError as exc:  # Python's own limit, e.g. an integer of thousands of digits
            raise InputError(f"a value cannot be read: {exc}", path, "write ordinary numbers") from None
    return build(data, path or "<command line>", overrides)


def parse_overrides(items: List[str]) -> Dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: expected section.key=value", "--set",
                             "e.g. --set mqtt.host=broker.local")
        out[key.strip()] = value.strip()
    return out
