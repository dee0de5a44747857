"""The detection structure shared by the MQTT publisher and the evaluator."""
from __future__ import annotations

from typing import Any, Dict, NamedTuple


class Detection(NamedTuple):
    """One object of one class in one frame.

    Coordinates are float pixels in the captured frame (not the network input), x1,y1 the
    top-left and x2,y2 the bottom-right corner, clamped to [0, width] x [0, height]. A box that
    passes the threshold for several classes appears once per class, as in darknet. A NamedTuple: cheap to make by the dozen per frame.
    """

    class_id: int
    label: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float

    def to_dict(self, frame_width: int, frame_height: int) -> Dict[str, Any]:
        """darkflow's JSON shape (label, confidence, topleft, bottomright as integer pixels)
        plus the class id and the box normalised to [0, 1] by the frame size."""
        right, bottom = frame_width - 1, frame_height - 1
        return {
            "label": self.label,
            "class_id": self.class_id,
            "confidence": round(float(self.confidence), 4),
            "topleft": {"x": min(int(self.x1), right), "y": min(int(self.y1), bottom)},
            "bottomright": {"x": min(int(self.x2), right), "y": min(int(self.y2), bottom)},
            "box": {"x1": round(self.x1 / frame_width, 5), "y1": round(self.y1 / frame_height, 5),
                    "x2": round(self.x2 / frame_width, 5), "y2": round(self.y2 / frame_height, 5)},
        }
