"""The detections message built as text (encode_detections) must be byte for byte what the
dict builder + json.dumps published before, and valid against its schema."""
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_app.detection import Detection
from edge_app.messages import detections_message, encode_detections
from tests.conftest import REPO

FIELDS = dict(device_id="pi-1", model_id="m-ü\"1", frame_id=7, captured_at=1764200000.123456789,
              frame_width=640, frame_height=480, inference_ms=12.34567, latency_ms=45.6789)


def reference(detections, **fields):
    return json.dumps(detections_message(detections, **fields), separators=(",", ":"))


def random_detections(rng, count, width=640, height=480):
    out = []
    for _ in range(count):
        x1, x2 = sorted(rng.uniform(0, width) for _ in range(2))
        y1, y2 = sorted(rng.uniform(0, height) for _ in range(2))
        k = rng.randrange(30)
        # labels holding what the number trimming looks for must pass through untouched
        out.append(Detection(k, f"class {k} \"é\" :1.500,:0.00001}}", rng.random(), x1, y1, x2, y2))
    return out


def test_encoded_message_is_the_same_text_and_schema_valid():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "edge_app/schemas/detections.schema.json").read_text())
    rng = random.Random(11)
    for count in (0, 1, 3, 40):
        dets = random_detections(rng, count)
        encoded = encode_detections(dets, **FIELDS)
        assert encoded.json == reference(dets, **FIELDS)
        assert encoded.labels == tuple(sorted(d.label for d in dets))
        jsonschema.validate(json.loads(encoded.json), schema)


def test_edges_of_the_frame_and_of_the_number_formats():
    # boxes on the frame's edges (0 and the full size), tiny (exponent notation below 1e-4),
    # exact halves at the rounding digit, and confidences of 0, 1 and just above a tie
    w, h = 640, 480
    dets = [Detection(0, "a", 1.0, 0.0, 0.0, float(w), float(h)),
            Detection(1, "b", 0.0, 0.0032, 0.00048, 0.004, 0.0048),  # 5e-06, 1e-06, 6.25e-06, 1e-05
            Detection(2, "c", 0.00005, 0.0064, 0.048, 0.032, 0.0024),  # 1e-05, 0.0001, 5e-05
            Detection(3, "d", 0.12345, 0.008, 0.0072, 200.0, 60.0),  # halves: 1.25e-05, 1.5e-05
            Detection(4, "e", 0.99995, 320.0032, 240.0024, 639.9968, 479.9976)]
    assert encode_detections(dets, **FIELDS).json == reference(dets, **FIELDS)


def detection_at(value, digits):
    """A detection whose confidence (4 digits) or every box corner (5 digits) is value."""
    w, h = 640, 480
    if digits == 4:
        return Detection(1, "x", value, 10.0, 10.0, 20.0, 20.0)
    return Detection(1, "x", 0.5, value * w, value * h, value * w, value * h)


coordinate = st.floats(min_value=0, max_value=1, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(coordinate, coordinate, coordinate, coordinate, coordinate), max_size=5))
def test_any_detections_encode_to_the_same_text(rows):
    w, h = 640, 480
    dets = [Detection(i, f"c{i}", c, a * w, b * h, x * w, y * h) for i, (c, a, b, x, y) in enumerate(rows)]
    assert encode_detections(dets, **FIELDS).json == reference(dets, **FIELDS)


@pytest.mark.parametrize("digits,scale", [(4, 10000), (5, 100000)])
def test_numbers_next_to_halves_of_the_last_digit(digits, scale):
    # values whose scaled form is a half, or one ulp either side of it: the hard cases
    import math

    for start in range(0, scale, 997):
        halves = [(units + 0.5) / scale for units in range(start, min(start + 40, scale))]
        dets = [detection_at(v, digits) for half in halves
                for v in (math.nextafter(half, 0), half, math.nextafter(half, 2))]
        assert encode_detections(dets, **FIELDS).json == reference(dets, **FIELDS), start


def test_special_values_take_the_exact_path():
    dets = [Detection(0, "n", float("nan"), 1.0, 2.0, 3.0, 4.0), Detection(1, "z", 0.5, -0.0, 2.0, 3.0, 4.0),
            Detection(2, "neg", 0.5, -3.0, -2.0, 1e12, 4.0)]
    assert encode_detections(dets, **FIELDS).json == reference(dets, **FIELDS)
