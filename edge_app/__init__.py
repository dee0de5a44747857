"""Edge half of edge-vision: capture, OpenVINO inference, YOLOv2 decode, MQTT publish."""

__version__ = "0.1.0"
