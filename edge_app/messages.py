"""The MQTT payloads, built by pure functions. Their JSON Schemas are in edge_app/schemas/
(detections.schema.json, stats.schema.json); `schema` in each payload names the version."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

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
