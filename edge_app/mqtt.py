"""MQTT publishing (paho-mqtt 2.x) under <topic_prefix>/<device_id>/:

  available   retained "online" on every connect, "offline" as the will (the broker sends it
              when the device vanishes), "stopped" on a clean shutdown
  detections  one JSON message per processed frame (policy: every / detections / changes)
  stats       JSON every stats_interval seconds
  events, counts, <label>/snapshot   tracked objects (edge_app/objects.py)

Other modules add what they need at the boundary without knowing paho: `on_connect` hooks
(Home Assistant discovery republishes its configs on every connect), `subscribe(filter,
handler)` (renewed on every connect) and `publish_raw` for bytes and topics outside the base.

A broker outage never blocks the pipeline: paho's network loop runs in its own thread and
reconnects by itself. QoS >= 1 messages produced while disconnected (JSON and bytes: snapshots
too) wait in an outage queue of mqtt.queue_limit messages and mqtt.queue_bytes bytes at most,
and go out, in order, right after "online" on the reconnect. When it is full the OLDEST message
gives way to the new one (counted as overflow): a subscriber wants the present state of the
scene more than the distant past, and frame ids show the gap. The byte bound is what keeps a
long outage within a 1 GB Pi's memory: a snapshot is up to snapshots.max_bytes (150 kB), and
1000 of them were 150 MB.

Stopping (SIGTERM) during an outage: the broker gets STOP_GRACE seconds to come back, so the
queue and the retained "stopped" can still go out; whatever is undelivered then is dropped
and the log says how many. If "stopped" could not be published, the retained availability is
what the broker last had: "offline" (our will) if it saw the connection die, otherwise
whatever it kept (see docs/mqtt.md).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from edge_app.config import Config
from edge_app.errors import InputError
from edge_app.messages import EncodedDetections

log = logging.getLogger(__name__)

AVAILABLE, DETECTIONS, STATS = "available", "detections", "stats"
STOP_GRACE = 5.0  # seconds a stop waits for an absent broker (well inside systemd's stop timeout)
# paho's own queue is a backstop (a broker that takes messages but never acknowledges them), not
# a policy. On a connect it holds at once, before any PUBACK can come back: "online", the flushed
# outage queue, what the on-connect hooks send (discovery: 3 configs per class) and the frames
# produced while those are acknowledged. This margin covers the last and the hooks' declared
# bursts are added (reserve()); sized from the outage queue alone, a small queue_limit dropped
# frames and discovery configs on every reconnect.
# A frame is not one message: the objects sink sends an event per tracked object that starts,
# changes or ends, then counts and snapshots, and the output stage may send frames back to back;
# a stop ends every object in view at once. In a busy scene that is hundreds of messages handed
# over faster than paho's 20 in flight are acknowledged (the outage test: up to 160 events per
# frame, 270 at the stop, 350 unacknowledged against a healthy local Mosquitto). A margin of 64
# refused them (MQTT_ERR_QUEUE_SIZE), and with them the next frame's detections (a frame missing
# right after a flushed outage queue) and the retained "stopped".
IN_FLIGHT_MARGIN = 1000


def payload_bytes(payload: Union[str, bytes]) -> int:
    """A payload's size on the wire (text goes as UTF-8)."""
    return len(payload.encode("utf-8")) if isinstance(payload, str) else len(payload)


class Publisher:
    def __init__(self, config: Config):
        import paho.mqtt.client as mqtt

        self._mqtt = mqtt
        self.config = config
        self.cfg = config.mqtt
        self.base = config.topic_base
        self.connected = False
        self.published = 0  # messages handed to paho
        self.delivered = 0  # acknowledged by the broker (QoS>=1) or written (QoS 0)
        self.overflow = 0  # QoS>=1 messages dropped (the oldest) because the outage queue was full
        self.dropped_offline = 0  # QoS 0 messages produced while disconnected
        self.skipped = 0  # frames not published by policy or rate limit
        self.connects = 0
        self.last_error = ""
        self._last_signature: Optional[tuple] = None
        self._last_sent = 0.0
        self._lock = threading.Lock()
        self._stopping = False
        self.connect_hooks: List[Callable[[], None]] = []
        self.subscriptions: List[Tuple[str, Callable[[str, bytes, bool], None]]] = []
        # (topic, payload, qos, retain) produced while disconnected, and their payloads' bytes;
        # the lock orders publishing against the flush on reconnect, so messages keep their order
        self._outage: Deque[Tuple[str, Union[str, bytes], int, bool]] = deque()
        self._outage_bytes = 0
        self._send_lock = threading.Lock()

        client_id = self.cfg.client_id or f"edge-app-{config.device_id}"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=True)
        self._connect_burst = 1  # "online"
        client.reconnect_delay_set(max(1, int(self.cfg.reconnect_min)),
                                   max(1, int(self.cfg.reconnect_max)))
        client.will_set(self.topic(AVAILABLE), "offline", qos=1, retain=True)
        secure_client(client, config)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client
        self._size_paho_queue()

    def _size_paho_queue(self) -> None:
        self.client.max_queued_messages_set(self.cfg.queue_limit + self._connect_burst + IN_FLIGHT_MARGIN)

    def reserve(self, messages: int) -> None:
        """An on-connect hook declares how many messages it sends at once (see IN_FLIGHT_MARGIN)."""
        self._connect_burst += messages
        self._size_paho_queue()

    def topic(self, leaf: str) -> str:
        return f"{self.base}/{leaf}"

    # -- connection -----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; returns at once, reachable broker or not."""
        try:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        except (ValueError, OSError) as exc:
            raise InputError(f"bad broker address {self.cfg.host}:{self.cfg.port}: {exc}",
                             "mqtt.host", "give a host name or IP address") from None
        self.client.loop_start()
        log.info("MQTT: connecting to %s:%d as %s (topics %s/...)", self.cfg.host, self.cfg.port,
                 self.client._client_id.decode(), self.base)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            # a refused CONNACK is not a connection: stay disconnected, paho retries
            self.connected = False
            self.last_error = f"broker refused the connection: {reason_code}"
            log.error("MQTT: %s", self.last_error)
            return
        with self._send_lock:
            client.publish(self.topic(AVAILABLE), "online", qos=1, retain=True)
            waiting = len(self._outage)
            while self._outage:
                self._hand_over(*self._outage.popleft())
            self._outage_bytes = 0
            self.connected = True
        self.connects += 1
        log.info("MQTT: connected to %s:%d%s", self.cfg.host, self.cfg.port,
                 f"; sending the {waiting} message(s) of the outage" if waiting else "")
        for topic_filter, _ in self.subscriptions:
            client.subscribe(topic_filter, qos=1)
        for hook in self.connect_hooks:
            try:
                hook()
            except Exception:  # a hook's bug must not take the connection down
                log.exception("MQTT: on-connect hook failed")

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes, bool], None]) -> None:
        """handler(topic, payload, retained) for every message matching the filter."""
        self.subscriptions.append((topic_filter, handler))
        if self.connected:
            self.client.subscribe(topic_filter, qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        for topic_filter, handler in self.subscriptions:
            if self._mqtt.topic_matches_sub(topic_filter, msg.topic):
                try:
                    handler(msg.topic, msg.payload, bool(msg.retain))
                except Exception:
                    log.exception("MQTT: handler for %s failed", topic_filter)

    def _on_connect_fail(self, client, userdata) -> None:
        # paho retries by itself but keeps the cause (refused, unreachable, a TLS handshake
        # failure) to itself: probe once to say why, and only when the cause changes
        reason = connect_failure_reason(self.cfg)
        if reason != self.last_error:
            self.last_error = reason
            log.warning("MQTT: cannot connect to %s:%d: %s; retrying in the background",
                        self.cfg.host, self.cfg.port, reason)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected
        self.connected = False
        if was and not self._stopping:
            self.last_error = f"disconnected: {reason_code}"
            log.warning("MQTT: %s; reconnecting in the background", self.last_error)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            self.delivered += 1

    @property
    def queued(self) -> int:
        """Messages not yet delivered: handed to paho, or waiting for the broker to return."""
        return max(0, self.published - self.delivered) + len(self._outage)

    @property
    def outage_bytes(self) -> int:
        """Bytes of the messages waiting for the broker to return."""
        return self._outage_bytes

    # -- publishing -----------------------------------------------------------------------

    def publish(self, leaf: str, payload: Union[Dict[str, Any], str], qos: Optional[int] = None,
                retain: bool = False) -> bool:
        """payload: a JSON-able dict, or its JSON text already rendered."""
        qos = self.cfg.qos if qos is None else qos
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        return self._publish(self.topic(leaf), text, qos, retain)

    def _publish(self, topic: str, payload: Union[str, bytes], qos: int, retain: bool) -> bool:
        """To paho when connected; else QoS 0 is dropped and QoS >= 1 waits in the outage queue."""
        with self._send_lock:
            if self.connected:
                return self._hand_over(topic, payload, qos, retain)
            if qos == 0:
                self.dropped_offline += 1
                return False
            return self._hold(topic, payload, qos, retain)

    def _hold(self, topic: str, payload: Union[str, bytes], qos: int, retain: bool) -> bool:
        """Queue a message for the reconnect; the oldest give way to stay within queue_limit
        messages and queue_bytes bytes (see the module's docstring)."""
        size = payload_bytes(payload)
        if size > self.cfg.queue_bytes:  # alone larger than the whole queue (config checks prevent it)
            self.overflow += 1
            return False
        while self._outage and (len(self._outage) >= self.cfg.queue_limit
                                or self._outage_bytes + size > self.cfg.queue_bytes):
            self._outage_bytes -= payload_bytes(self._outage.popleft()[1])
            self.overflow += 1
        self._outage.append((topic, payload, qos, retain))
        self._outage_bytes += size
        return True

    def _hand_over(self, topic: str, payload: Union[bytes, str], qos: int, retain: bool) -> bool:
        """The one place a message goes to paho: counted as published, or as overflow when
        paho's queue is full."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self.overflow += 1
            return False
        with self._lock:
            self.published += 1
        return True

    def publish_raw(self, topic: str, payload: Union[bytes, str], qos: int = 1, retain: bool = False) -> bool:
        """Bytes or text to any topic (snapshots, Home Assistant discovery), as publish(): to
        paho when connected; offline, QoS 0 is dropped and counted, QoS >= 1 is queued."""
        return self._publish(topic, payload, qos, retain)

    def send(self, leaf: str, payload: Union[Dict[str, Any], bytes], qos: int, retain: bool) -> bool:
        """A JSON payload or bytes under this device's base topic."""
        if isinstance(payload, (bytes, bytearray)):
            return self.publish_raw(self.topic(leaf), bytes(payload), qos, retain)
        return self.publish(leaf, payload, qos, retain)

    def detections(self, message: Union[Dict[str, Any], EncodedDetections]) -> bool:
        """Publish one frame's message if the policy and the rate limit let it through."""
        if isinstance(message, EncodedDetections):  # rendered cheaply by messages.encode_detections
            signature, message = message.labels, message.json
        else:
            signature = tuple(sorted(d["label"] for d in message["detections"]))
        policy = self.cfg.publish
        if policy == "detections" and not signature:
            self.skipped += 1
            return False
        if policy == "changes" and signature == self._last_signature:
            self.skipped += 1
            return False
        now = time.monotonic()
        if self.cfg.max_rate and now - self._last_sent < 1.0 / self.cfg.max_rate:
            self.skipped += 1
            return False
        if self.publish(DETECTIONS, message):
            self._last_signature = signature
            self._last_sent = now
            return True
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Clean shutdown: retained "stopped", wait for delivery, disconnect (no will). In an
        outage, the broker first gets STOP_GRACE seconds to come back (see the docstring)."""
        self._stopping = True
        end = time.monotonic() + timeout
        if not self.connected:
            self.client.loop_stop()  # from here this thread runs the network loop itself
            log.warning("MQTT: stopping while the broker is unreachable; waiting up to %.0f s for "
                        "it, %d message(s) queued", STOP_GRACE, self.queued)
            self._reconnect_within(time.monotonic() + STOP_GRACE)
            end = time.monotonic() + timeout
            wait = self.client.loop
        else:
            wait = time.sleep
        stopped = None
        if self.connected:
            stopped = self.client.publish(self.topic(AVAILABLE), "stopped", qos=1, retain=True)
            if stopped.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
                # the queue is full (a broker that just came back): is_published() would raise;
                # wait for the backlog only, and leave without DISCONNECT so that the broker
                # publishes the will ("offline") instead of a stale "online"
                self.overflow += 1
                while time.monotonic() < end and self.queued > 0:
                    wait(0.05)
                log.warning("MQTT: no room for \"stopped\"; leaving without DISCONNECT so that the "
                            "broker publishes the will (\"offline\"); %d message(s) undelivered",
                            self.queued)
                self.client.loop_stop()
                return
            while time.monotonic() < end and (self.queued > 0 or not stopped.is_published()):
                wait(0.05)
        undelivered = self.queued
        if undelivered:
            log.warning("MQTT: dropping %d queued QoS %d message(s) the broker did not take",
                        undelivered, self.cfg.qos)
        if stopped is None or not stopped.is_published():
            log.warning("MQTT: could not publish the retained availability \"stopped\"; the broker "
                        "keeps what it had: \"offline\" (the will) if it saw the connection drop")
        self.client.disconnect()
        self.client.loop_stop()

    def _reconnect_within(self, deadline: float) -> None:
        while not self.connected and time.monotonic() < deadline:
            try:
                self.client.reconnect()
            except (OSError, ValueError):  # still away: refused, unreachable, no route
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
                continue
            while not self.connected and time.monotonic() < deadline:
                if self.client.loop(0.1) != self._mqtt.MQTT_ERR_SUCCESS:
                    break  # the connection failed again: try anew


def connect_failure_reason(q, timeout: float = 3.0) -> str:
    """Why a connection to the broker of config section q (mqtt) fails: a TCP connect and,
    with TLS, a handshake with the same CA and client certificate paho uses."""
    try:
        sock = socket.create_connection((q.host, q.port), timeout=timeout)
    except OSError as exc:
        return f"broker unreachable ({exc.strerror or exc})"
    with sock:
        if not q.tls:
            return "the broker accepts TCP connections but the MQTT connection failed"
        try:
            context = ssl.create_default_context(cafile=q.ca_file or None)
            if q.cert_file:
                context.load_cert_chain(q.cert_file, q.key_file or None)
            with context.wrap_socket(sock, server_hostname=q.host):
                pass
        except ssl.SSLError as exc:
            return (f"TLS handshake failed: {getattr(exc, 'verify_message', None) or exc.reason or exc} "
                    "(check mqtt.ca_file signs the broker's certificate and mqtt.host is a name or "
                    "address in it)")
        except OSError as exc:
            return f"TLS handshake failed: {exc}"
    return "a TLS probe succeeded, but the MQTT connection failed (is the broker's listener TLS?)"


def secure_client(client, config: Config) -> None:
    """Credentials and TLS on a paho client: the one setup `run` and `check` share. Bad TLS
    files are an InputError; a password sent in clear or a world-readable password file is
    warned about."""
    q = config.mqtt
    if q.username:
        password = config.password()
        if password is not None and not q.tls:
            log.warning("MQTT: the password for %s travels unencrypted (mqtt.tls = false); "
                        "enable TLS on the broker and set mqtt.tls = true", q.username)
        if q.password_file:
            try:
                if os.stat(q.password_file).st_mode & 0o004:
                    log.warning("MQTT: the password file %s is readable by every user; "
                                "chmod 640 it (group edge-app)", q.password_file)
            except OSError:
                pass  # password() has just read it; a race with its removal is not ours to report
        client.username_pw_set(q.username, password)
    if q.tls:
        try:
            client.tls_set(ca_certs=q.ca_file or None, certfile=q.cert_file or None,
                           keyfile=q.key_file or None, cert_reqs=ssl.CERT_REQUIRED)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise InputError(f"cannot load the TLS files: {exc}", "mqtt.ca_file / cert_file / key_file",
                             "give PEM files (-----BEGIN CERTIFICATE-----) readable by the service") from None


def check_broker(config: Config, timeout: float = 5.0) -> str:
    """Connect once and disconnect, for `edge-app check`; InputError if it fails."""
    import paho.mqtt.client as mqtt

    done = threading.Event()
    result: Dict[str, Any] = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edge-app-check-{config.device_id}")
    secure_client(client, config)
    client.on_connect = on_connect
    where = f"mqtt.host/mqtt.port ({config.mqtt.host}:{config.mqtt.port})"
    try:
        client.connect(config.mqtt.host, config.mqtt.port, keepalive=10)
    except (OSError, ValueError) as exc:
        raise InputError(f"broker unreachable: {exc}", where,
                         "start the broker, or fix the address; the daemon itself keeps retrying") from None
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise InputError(f"broker did not answer within {timeout:.0f} s", where)
        if result["rc"].is_failure:
            raise InputError(f"broker refused the connection: {result['rc']}", "mqtt.username",
                             "check the user name, password and the broker's ACL")
    finally:
        client.disconnect()
        client.loop_stop()
    return f"{config.mqtt.host}:{config.mqtt.port} accepted the connection"
