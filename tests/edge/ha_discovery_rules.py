"""Home Assistant's MQTT discovery rules, encoded from its documentation, as a validator for the
config messages a device publishes. Sources (read 2026-11):

  [MQTT]   https://www.home-assistant.io/integrations/mqtt/  sections "MQTT Discovery",
           "Discovery topic", "Discovery payload", "Using abbreviations", "Using availability
           topics", "Removing the device/entities"
  [SENSOR] https://www.home-assistant.io/integrations/sensor.mqtt/
  [BINARY] https://www.home-assistant.io/integrations/binary_sensor.mqtt/
  [CAMERA] https://www.home-assistant.io/integrations/camera.mqtt/
  [ENTITY] https://developers.home-assistant.io/docs/core/entity/#generic-properties (entity_category)

`problems(topic, payload, retained)` lists every broken rule (empty = valid). Value templates
are rendered with jinja2 against a sample state to check they give what the entity expects.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional

# [MQTT] "Discovery topic": <discovery_prefix>/<component>/[<node_id>/]<object_id>/config;
# node_id and object_id "must only consist of characters from the character class
# [a-zA-Z0-9_-] (alphanumerics, underscore and hyphen)"
ID = re.compile(r"^[a-zA-Z0-9_-]+$")
# [MQTT] the MQTT components supported by discovery (the ones this project may use, plus
# the rest of the documented list so that a typo is caught rather than a rare component)
COMPONENTS = {"alarm_control_panel", "binary_sensor", "button", "camera", "climate", "cover",
              "device_automation", "device_tracker", "event", "fan", "humidifier", "image",
              "lawn_mower", "light", "lock", "notify", "number", "scene", "select", "sensor",
              "siren", "switch", "tag", "text", "update", "vacuum", "valve", "water_heater"}
# [MQTT] "Using abbreviations": the abbreviations of the options used here (a payload may
# use either form; they are expanded before the checks)
ABBREVIATIONS = {"avty": "availability", "avty_t": "availability_topic", "pl_avail": "payload_available",
                 "pl_not_avail": "payload_not_available", "dev": "device", "uniq_id": "unique_id",
                 "obj_id": "object_id", "stat_t": "state_topic", "val_tpl": "value_template",
                 "stat_cla": "state_class", "unit_of_meas": "unit_of_measurement", "dev_cla": "device_class",
                 "ent_cat": "entity_category", "pl_on": "payload_on", "pl_off": "payload_off",
                 "t": "topic", "ic": "icon", "o": "origin", "avty_mode": "availability_mode"}
DEVICE_ABBREVIATIONS = {"ids": "identifiers", "cns": "connections", "mf": "manufacturer", "mdl": "model",
                        "sw": "sw_version", "hw": "hw_version", "name": "name", "sa": "suggested_area"}
ORIGIN_ABBREVIATIONS = {"sw": "sw_version", "url": "support_url"}
COMMON = {"name", "unique_id", "object_id", "device", "availability", "availability_topic",
          "payload_available", "payload_not_available", "availability_mode", "availability_template",
          "entity_category", "icon", "origin", "enabled_by_default", "json_attributes_topic",
          "json_attributes_template", "qos", "encoding", "default_entity_id", "platform"}
# [SENSOR], [BINARY], [CAMERA]: each component's own options (those this project might use)
OPTIONS = {
    "sensor": {"state_topic", "value_template", "unit_of_measurement", "state_class", "device_class",
               "expire_after", "force_update", "suggested_display_precision", "last_reset_value_template"},
    "binary_sensor": {"state_topic", "value_template", "payload_on", "payload_off", "device_class",
                      "expire_after", "force_update", "off_delay"},
    "camera": {"topic", "image_encoding"},
}
# [SENSOR] state_topic required; [BINARY] state_topic required; [CAMERA] topic required
REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}, "camera": {"topic"}}
# [SENSOR] state_class: measurement, measurement_angle, total, total_increasing
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
# [ENTITY] entity_category is "config" or "diagnostic"; sensors cannot be "config" (a sensor
# has nothing to configure; Home Assistant rejects it)
ENTITY_CATEGORIES = {"config", "diagnostic"}


def expand(payload: Dict[str, Any]) -> Dict[str, Any]:
    out = {ABBREVIATIONS.get(k, k): v for k, v in payload.items()}
    if isinstance(out.get("device"), dict):
        out["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in out["device"].items()}
    if isinstance(out.get("origin"), dict):
        out["origin"] = {ORIGIN_ABBREVIATIONS.get(k, k): v for k, v in out["origin"].items()}
    if isinstance(out.get("availability"), list):
        out["availability"] = [{ABBREVIATIONS.get(k, k): v for k, v in a.items()} if isinstance(a, dict) else a
                               for a in out["availability"]]
    return out


def parse_topic(topic: str, prefix: str) -> Optional[Dict[str, str]]:
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/")
    if len(parts) == 3:
        component, object_id, last = parts
        node_id = None
    elif len(parts) == 4:
        component, node_id, object_id, last = parts
    else:
        return None
    return {"component": component, "node_id": node_id, "object_id": object_id, "last": last}


def render(template: str, value: str) -> str:
    """A value template as Home Assistant renders it: `value` the payload, `value_json` the
    payload parsed as JSON ([MQTT] "Processing JSON", templating docs)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    env.filters.setdefault("float", lambda v, default=0.0: _number(float, v, default))
    env.filters["int"] = lambda v, default=0: _number(int, v, default)
    try:
        value_json = json.loads(value)
    except ValueError:
        value_json = None
    return env.from_string(template).render(value=value, value_json=value_json).strip()


def _number(kind, v, default):
    try:
        return kind(v)
    except (TypeError, ValueError):
        return default


def problems(topic: str, raw: bytes, retained: bool, prefix: str = "homeassistant",
             samples: Optional[Dict[str, str]] = None) -> List[str]:
    """Every rule the message breaks. `samples` maps a state topic to a payload published there,
    to render the value templates against."""
    found: List[str] = []
    parts = parse_topic(topic, prefix)
    if parts is None:
        return [f"{topic}: not <discovery_prefix>/<component>/[<node_id>/]<object_id>/config [MQTT]"]
    if parts["last"] != "config":
        found.append(f"{topic}: last level must be 'config' [MQTT]")
    if parts["component"] not in COMPONENTS:
        found.append(f"{topic}: component {parts['component']!r} is not a discovery component [MQTT]")
    for key in ("node_id", "object_id"):
        if parts[key] is not None and not ID.match(parts[key]):
            found.append(f"{topic}: {key} {parts[key]!r} has characters outside [a-zA-Z0-9_-] [MQTT]")
    # [MQTT] discovery messages are retained, or Home Assistant loses them on restart
    if not retained:
        found.append(f"{topic}: discovery config not retained [MQTT]")
    if raw == b"":
        return found  # [MQTT] an empty (retained) payload removes the entity
    try:
        payload = json.loads(raw)
    except ValueError:
        return found + [f"{topic}: payload is not JSON [MQTT 'Discovery payload']"]
    if not isinstance(payload, dict):
        return found + [f"{topic}: payload must be a JSON object (dictionary) [MQTT]"]
    payload = expand(payload)
    component = parts["component"]
    allowed = COMMON | OPTIONS.get(component, set())
    for key in payload:
        if key not in allowed:
            found.append(f"{topic}: unknown option {key!r} for {component} [{component} docs]")
    for key in REQUIRED.get(component, ()):
        if not payload.get(key):
            found.append(f"{topic}: {component} needs {key} [{component} docs]")
    # [MQTT] device registry: "Only works when unique_id is set"; unique_id makes the entity
    # editable in the UI and stable across restarts
    if not isinstance(payload.get("unique_id"), str) or not payload["unique_id"]:
        found.append(f"{topic}: unique_id missing [MQTT]")
    device = payload.get("device")
    if not isinstance(device, dict):
        found.append(f"{topic}: device mapping missing (one device per Pi) [MQTT]")
    elif not (device.get("identifiers") or device.get("connections")):
        # [MQTT] device: "At least one of identifiers or connections must be present"
        found.append(f"{topic}: device needs identifiers or connections [MQTT]")
    elif not isinstance(device.get("identifiers", []), (list, str)):
        found.append(f"{topic}: device identifiers must be a string or a list [MQTT]")
    # [MQTT] "Using availability topics": availability_topic (with payload_available /
    # payload_not_available) or an `availability` list of {topic, ...}; not both
    if "availability" in payload and "availability_topic" in payload:
        found.append(f"{topic}: availability and availability_topic must not be used together [MQTT]")
    entries = payload.get("availability")
    if entries is not None:
        if not isinstance(entries, list) or not entries or not all(isinstance(a, dict) and a.get("topic")
                                                                      for a in entries):
            found.append(f"{topic}: availability must be a non-empty list of mappings with a topic [MQTT]")
    elif "availability_topic" not in payload:
        found.append(f"{topic}: no availability: the entity would stay available when the Pi is gone")
    if "entity_category" in payload:
        if payload["entity_category"] not in ENTITY_CATEGORIES:
            found.append(f"{topic}: entity_category {payload['entity_category']!r} not in {sorted(ENTITY_CATEGORIES)} [ENTITY]")
        elif component == "sensor" and payload["entity_category"] == "config":
            found.append(f"{topic}: a sensor cannot have entity_category config [ENTITY]")
    if "state_class" in payload and payload["state_class"] not in STATE_CLASSES:
        found.append(f"{topic}: state_class {payload['state_class']!r} not in {sorted(STATE_CLASSES)} [SENSOR]")
    # value templates must give what the entity expects, rendered on a published sample
    sample = (samples or {}).get(payload.get("state_topic", ""))
    if sample is not None and payload.get("value_template"):
        result = render(payload["value_template"], sample)
        if component == "binary_sensor":
            # [BINARY] the rendered value is compared with payload_on / payload_off (default ON/OFF)
            if result not in (payload.get("payload_on", "ON"), payload.get("payload_off", "OFF")):
                found.append(f"{topic}: value_template gives {result!r}, neither payload_on nor payload_off [BINARY]")
        elif component == "sensor" and ("state_class" in payload or "unit_of_measurement" in payload):
            # [SENSOR] a sensor with a state_class or unit must have a numeric state
            try:
                float(result)
            except ValueError:
                found.append(f"{topic}: numeric sensor's value_template gives {result!r} [SENSOR]")
    for a in entries or []:
        if isinstance(a, dict) and a.get("value_template"):
            for state in ("online", "offline", "stopped"):
                rendered = render(a["value_template"], state)
                expected = a.get("payload_available", "online") if state == "online" else a.get("payload_not_available", "offline")
                if rendered != expected:
                    found.append(f"{topic}: availability template maps {state!r} to {rendered!r}")
    return found


def check_unique(configs: Dict[str, bytes]) -> List[str]:
    """[MQTT] unique_id must be unique across the entities of one component."""
    seen: Dict[tuple, str] = {}
    found = []
    for topic, raw in configs.items():
        if not raw:
            continue
        payload = expand(json.loads(raw))
        key = (topic.split("/")[1], payload.get("unique_id"))
        if key in seen:
            found.append(f"{topic}: unique_id {key[1]!r} also used by {seen[key]} [MQTT]")
        seen[key] = topic
    return found
