"""Home Assistant MQTT discovery: the retained config messages that make a device appear in
Home Assistant without YAML (https://www.home-assistant.io/integrations/mqtt/, "MQTT
Discovery"). Pure functions; the daemon publishes them on every connect and when Home
Assistant announces itself on <prefix>/status.

One device per Pi (identifiers ["edge-vision-<device_id>"]). For each class of the model:
  sensor         <label> count     number of tracked objects in view (from the retained counts topic)
  binary_sensor  <label> present   ON while at least one is in view
  camera         <label> snapshot  the last snapshot of that class
and two diagnostic sensors, fps and inference time (from the stats topic). Every entity is
available while <prefix>/<device>/available says "online" ("offline" and "stopped" are not).

Topics: <discovery_prefix>/<component>/<node_id>/<object_id>/config with node_id the device id
and object_id the entity's role, both reduced to [a-zA-Z0-9_-]. A class that leaves the model
leaves a retained config behind; `stale_config` recognises it so that the daemon can clear it
with an empty retained payload, which is how Home Assistant is told to remove an entity.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence

from edge_app.snapshots import safe_name

COMPONENTS = ("sensor", "binary_sensor", "camera")


def device_block(device_id: str, model_id: str, version: str, name: str = "") -> Dict[str, Any]:
    return {"identifiers": [f"edge-vision-{device_id}"], "name": name or f"edge-vision {device_id}",
            "manufacturer": "edge-vision", "model": f"Tiny YOLOv2 detector ({model_id})",
            "sw_version": version}


def config_topic(prefix: str, component: str, node_id: str, object_id: str) -> str:
    return f"{prefix}/{component}/{safe_name(node_id)}/{safe_name(object_id)}/config"


def discovery_configs(*, prefix: str, topic_base: str, device_id: str, model_id: str, version: str,
                      labels: Sequence[str], device_name: str = "") -> Dict[str, Dict[str, Any]]:
    """Every config message of this device: {topic: payload}."""
    node = safe_name(device_id)
    device = device_block(device_id, model_id, version, device_name)
    availability = [{"topic": f"{topic_base}/available", "payload_available": "online",
                     "payload_not_available": "offline",
                     # "stopped" (clean shutdown) is unavailable too
                     "value_template": "{{ 'online' if value == 'online' else 'offline' }}"}]
    origin = {"name": "edge-vision", "sw_version": version}

    def entity(component: str, role: str, name: str, **options: Any):
        payload = {"name": name, "unique_id": f"edge_vision_{node}_{safe_name(role)}",
                   "device": device,
                   "availability": availability, "origin": origin}
        payload.update(options)
        return config_topic(prefix, component, node, role), payload

    entities = []
    for label in labels:
        slug = safe_name(label)
        count = f"(value_json.counts[{json.dumps(label)}] | default(0) | int)"
        entities.append(entity("sensor", f"{slug}_count", f"{label} count",
                               state_topic=f"{topic_base}/counts", value_template="{{ " + count + " }}",
                               state_class="measurement", icon="mdi:counter"))
        entities.append(entity("binary_sensor", f"{slug}_present", f"{label} present",
                               state_topic=f"{topic_base}/counts",
                               value_template="{{ 'ON' if " + count + " > 0 else 'OFF' }}",
                               payload_on="ON", payload_off="OFF", device_class="occupancy"))
        entities.append(entity("camera", f"{slug}_snapshot", f"{label} snapshot",
                               topic=f"{topic_base}/{slug}/snapshot"))
    entities.append(entity("sensor", "fps", "Frames per second", state_topic=f"{topic_base}/stats",
                           value_template="{{ value_json.fps }}", unit_of_measurement="fps",
                           state_class="measurement", entity_category="diagnostic", icon="mdi:speedometer"))
    entities.append(entity("sensor", "inference_ms", "Inference time", state_topic=f"{topic_base}/stats",
                           value_template="{{ value_json.inference_ms.p50 | float(0) }}",
                           unit_of_measurement="ms", device_class="duration", state_class="measurement",
                           entity_category="diagnostic"))
    return dict(entities)


def node_filter(prefix: str, device_id: str) -> str:
    """The subscription that sees every config this device ever published."""
    return f"{prefix}/+/{safe_name(device_id)}/+/config"


def stale_config(topic: str, payload: bytes, retained: bool, current: Dict[str, Any],
                 prefix: str, device_id: str) -> Optional[str]:
    """The topic to clear if this retained message is one of our configs that the current
    model no longer has (a class was removed), else None."""
    parts = topic.split("/")
    if not retained or not payload or len(parts) != len(prefix.split("/")) + 4:
        return None
    if not topic.startswith(prefix + "/") or parts[-3] != safe_name(device_id) or parts[-1] != "config":
        return None
    if parts[-4] not in COMPONENTS or topic in current:
        return None
    return topic


def attach(publisher, *, prefix: str, device_id: str, configs: Dict[str, Dict[str, Any]]) -> None:
    """Wire discovery into the MQTT adapter (before it connects): publish every config, retained,
    on each connect and whenever Home Assistant comes online (its birth message on
    <prefix>/status), and clear our retained configs the current model no longer has."""
    def publish_all() -> None:
        for topic, payload in configs.items():
            publisher.publish_raw(topic, json.dumps(payload, separators=(",", ":")), 1, True)

    def on_config(topic: str, payload: bytes, retained: bool) -> None:
        stale = stale_config(topic, payload, retained, configs, prefix, device_id)
        if stale is not None:
            publisher.publish_raw(stale, b"", 1, True)

    def on_status(topic: str, payload: bytes, retained: bool) -> None:
        if payload == b"online":
            publish_all()

    publisher.connect_hooks.append(publish_all)
    publisher.reserve(len(configs))
    publisher.subscribe(node_filter(prefix, device_id), on_config)
    publisher.subscribe(f"{prefix}/status", on_status)
