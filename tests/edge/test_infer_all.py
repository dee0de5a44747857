"""OpenVINOAdapter.infer_all: a pass over independent inputs with requests in flight (what
evaluation runs), on every OpenVINO API level the edge suite runs on."""
import cv2
import numpy as np
import pytest

from edge_app import metadata
from edge_app.runtime import OpenVINOAdapter


@pytest.fixture
def adapter_and_inputs(exported, net_size_photos):
    info = metadata.load(exported("tiny-224x160", fp16=True, resize_mode="resize")[0])
    adapter = OpenVINOAdapter(info, "CPU", hint="throughput")
    photos = [cv2.imread(str(p)) for p in net_size_photos(224, 160)]
    # more inputs than requests, each different: an output paired with another input shows
    inputs = [np.ascontiguousarray(np.roll(photo, shift, axis=1)[None]) for shift in (0, 7, 31) for photo in photos]
    return adapter, inputs


@pytest.mark.parametrize("requests", [1, 2, 5])
def test_outputs_come_in_input_order_with_their_userdata_as_one_at_a_time(adapter_and_inputs, requests):
    adapter, inputs = adapter_and_inputs
    expected = [adapter.infer(x) for x in inputs]
    got = list(adapter.infer_all(((x, f"image {i}") for i, x in enumerate(inputs)), requests))
    assert [userdata for userdata, _ in got] == [f"image {i}" for i in range(len(inputs))]
    assert len(inputs) > 5 and all(np.array_equal(o, e) for (_, o), e in zip(got, expected))
    assert len({o.tobytes() for _, o in got}) == len(inputs)  # the inputs do give distinct outputs


def test_a_pass_stopped_early_leaves_the_adapter_inferring_as_before(adapter_and_inputs):
    adapter, inputs = adapter_and_inputs
    expected = adapter.infer(inputs[-1])
    outputs = adapter.infer_all(((x, i) for i, x in enumerate(inputs)), 3)
    assert next(outputs)[0] == 0
    outputs.close()  # the requests still running are waited for, not abandoned
    assert np.array_equal(adapter.infer(inputs[-1]), expected)
    assert [i for i, _ in adapter.infer_all(((x, i) for i, x in enumerate(inputs[:2])), 3)] == [0, 1]
