"""The MQTT payloads, built by pure functions. Their JSON Schemas are in edge_app/schemas/
(detections.schema.json, stats.schema.json); `schema` in each payload names the version."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from edge_app.detection import Detection

DETECTIONS_SCHEMA = "edge-vision/detections/1"
STATS_SCHEMA = "edge-vision/stats/1"


def detections_message(detections: Sequence[Detection], *, device_id: str, model_id: str,
                       frame_id: int, captured_at: float, frame_width: int, frame_height: int,
                       inference_ms: float, latency_ms: float) -> Dict[str, Any]:
    return {
        "schema": DETECTIONS_SCHEMA,
        "device_id": device_id,
        "model_id": model_id,
        "frame_id": frame_id,
        "captured_at": round(captured_at, 6),
        "frame": {"width": frame_width, "height": frame_height},
        "inference_ms": round(inference_ms, 3),
        "latency_ms": round(latency_ms, 3),
        "detections": [d.to_dict(frame_width, frame_height) for d in detections],
    }


class EncodedDetections(NamedTuple):
    """A detections message already rendered as its JSON text, with what the publish policy
    needs to see (the frame's labels, sorted)."""

    labels: Tuple[str, ...]
    json: str


# One detection as json.dumps(Detection.to_dict(...), separators=(",", ":")) writes it: same keys,
# same order (tests/edge/test_messages.py holds the two to the same text). '%.4f' and '%.5f' give
# the digits of round(v, 4) and round(v, 5) exactly (both are Python's correctly rounded dtoa),
# and json writes that float as repr() does: the same digits without trailing zeros, which
# rstrip removes; "0." and "1." then get their ".0" back. The label goes in last, so that no
# label text is ever touched by that.
_NUMBERS = ('"class_id":%d,"confidence":%s,"topleft":{"x":%d,"y":%d},'
            '"bottomright":{"x":%d,"y":%d},"box":{"x1":%s,"y1":%s,"x2":%s,"y2":%s}}')


@lru_cache(maxsize=1024)
def _label_field(label: str) -> str:
    return '{"label":' + json.dumps(label) + ","


def encode_detections(detections: Sequence[Detection], **fields: Any) -> EncodedDetections:
    """json.dumps(detections_message(detections, **fields), separators=(",", ":")), the same
    text, for a fraction of the instructions: one string format per detection instead of four
    dicts, and one decimal conversion per number instead of two (round() and repr()); the Pi's
    CPU pays for every message."""
    head = json.dumps(detections_message((), **fields), separators=(",", ":"))
    labels = tuple(sorted(d.label for d in detections))
    if not detections:
        return EncodedDetections(labels, head)
    width, height = fields["frame_width"], fields["frame_height"]
    right, bottom = width - 1, height - 1
    if not all(0 <= c <= 1 and 0 <= x1 <= width and 0 <= x2 <= width and 0 <= y1 <= height
               and 0 <= y2 <= height for _, _, c, x1, y1, x2, y2 in detections):
        # outside what decode produces (or NaN): leave it all to the reference builder
        return EncodedDetections(labels, _reference_text(detections, fields))
    numbers = "\n".join([_NUMBERS % (
        class_id, ("%.4f" % confidence).rstrip("0"),
        min(int(x1), right), min(int(y1), bottom), min(int(x2), right), min(int(y2), bottom),
        ("%.5f" % (x1 / width)).rstrip("0"), ("%.5f" % (y1 / height)).rstrip("0"),
        ("%.5f" % (x2 / width)).rstrip("0"), ("%.5f" % (y2 / height)).rstrip("0"))
        for class_id, _, confidence, x1, y1, x2, y2 in detections])
    if ":0.0000" in numbers:  # a value in (0, 0.0001): repr() writes it with an exponent
        return EncodedDetections(labels, _reference_text(detections, fields))
    numbers = numbers.replace(".,", ".0,").replace(".}", ".0}")
    body = ",".join([_label_field(d.label) + n for d, n in zip(detections, numbers.split("\n"))])
    # "detections" is the message's last key: its empty list is replaced by the rendered ones
    return EncodedDetections(labels, head[:-len("[]}")] + "[" + body + "]}")


def _reference_text(detections: Sequence[Detection], fields: Dict[str, Any]) -> str:
    return json.dumps(detections_message(detections, **fields), separators=(",", ":"))


def percentile(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100.0 * (len(ordered) - 1)))))
    return ordered[index]


def cpu_temperature(path: str = "/sys/class/thermal/thermal_zone0/temp") -> Optional[float]:
    """The SoC temperature in °C where the kernel exposes it (the Pi does), else None."""
    try:
        with open(path) as f:
            return int(f.read().strip()) / 1000.0
    except (OSError, ValueError):
        return None
