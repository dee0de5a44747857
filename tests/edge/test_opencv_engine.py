"""The OpenCV-DNN engine (no OpenVINO) against the OpenVINO engine on the same frames.

Both read the same export bundle: OpenVINO its FP32 IR, OpenCV the darknet cfg + weights the
export copied beside it. The raw region input and the decoded detections must agree.
"""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from edge_app import metadata
from edge_app.detector import Detector
from edge_app.errors import InputError
from edge_app.opencv_dnn import OpenCVNet, without_region
from edge_app.runtime import OpenVINOAdapter
from tests.conftest import REPO, photo, PHOTOS


def frames():
    """Real photos at their own sizes (letterbox and resize do real work on them)."""
    return [cv2.imread(str(photo(name))) for name in PHOTOS]


@pytest.mark.parametrize("cfg_name", ["tiny-224x160", "yolov2-tiny"])
def test_opencv_raw_output_matches_openvino(exported, cfg_name):
    model_dir, _, _, _ = exported(cfg_name)
    info = metadata.load(model_dir)
    assert info.raw["darknet"]["cfg"].endswith(".darknet.cfg")
    openvino, opencv = OpenVINOAdapter(info, "CPU"), OpenCVNet(info)
    detector = Detector(model_dir, "CPU")
    for frame in frames():
        tensor = detector.prepare(frame)
        ours, ref = opencv.forward(tensor), openvino.infer(tensor)
        assert ours.shape == ref.shape == tuple(info.raw["output"]["shape"])
        scale = float(np.abs(ref).max())
        assert scale > 0
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5 * scale)


def test_demo_detections_equal(tmp_path, run_cli):
    """The trained demo model: same detections from both engines on every photo."""
    from tests.conftest import model_tools_python

    out = tmp_path / "demo"
    run_cli("model_tools", "export", "--cfg", REPO / "demo/demo.cfg", "--weights",
            REPO / "demo/demo.weights", "--names", REPO / "demo/demo.names", "-o", out, "--fp32",
            python=model_tools_python(), check=True)
    clip = tmp_path / "clip.avi"
    run_cli("model_tools", "synth-clip", clip, "--frames", 12, "--seed", 777,
            python=model_tools_python(), check=True)
    capture = cv2.VideoCapture(str(clip))
    clip_frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        clip_frames.append(frame)
    assert len(clip_frames) == 12
    detector = Detector(out, "CPU", conf_threshold=0.05)
    opencv = OpenCVNet(detector.info)
    total = 0
    for frame in clip_frames:
        tensor = detector.prepare(frame)
        ref = detector.decode(detector.adapter.infer(tensor), frame.shape[1], frame.shape[0])
        ours = detector.decode(opencv.forward(tensor), frame.shape[1], frame.shape[0])
        assert [d.label for d in ours] == [d.label for d in ref]
        for a, b in zip(ours, ref):
            assert abs(a.confidence - b.confidence) < 1e-4
            np.testing.assert_allclose(a[3:7], b[3:7], atol=1e-2)
        total += len(ref)
    assert total > 0, "no detections at all: the comparison would prove nothing"


def test_missing_darknet_files_is_a_clear_error(exported, tmp_path):
    model_dir, _, _, _ = exported("tiny-224x160")
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    info = metadata.load(copy)
    (copy / info.raw["darknet"]["weights"]).write_bytes(b"\0" * 64)
    with pytest.raises(InputError, match="does not match its sha256"):
        OpenCVNet(metadata.load(copy))
    meta_path = next(copy.glob("*.json"))
    data = json.loads(meta_path.read_text())
    del data["darknet"]
    meta_path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="carries no darknet cfg"):
        OpenCVNet(metadata.load(copy))


def test_without_region_keeps_everything_before_the_last_region():
    text = "[net]\nwidth=32\n[convolutional]\nfilters=5\n[region]\nclasses=0\n"
    assert without_region(text) == "[net]\nwidth=32\n[convolutional]\nfilters=5\n"
    with pytest.raises(InputError, match="no \\[region\\]"):
        without_region("[net]\n[yolo]\n")


def test_opencv_adapter_async_interface(exported):
    """open / submit / callback / drain as the pipeline uses them; an error reaches the
    callback in place of the output."""
    import threading

    from edge_app.runtime import open_adapter

    model_dir, _, _, _ = exported("tiny-224x160")
    info = metadata.load(model_dir)
    adapter = open_adapter(info, "MYRIAD", engine="opencv")  # the device does not apply
    assert (adapter.runtime, adapter.device) == ("OpenCV DNN", "CPU")
    detector = Detector(model_dir, "CPU")
    tensors = [detector.prepare(frame) for frame in frames()]
    results = {}
    lock = threading.Lock()

    def callback(userdata, output, error):
        with lock:
            results[userdata] = (output, error)

    assert adapter.open(4, callback) == 1
    for i, tensor in enumerate(tensors):
        assert adapter.wait_for_free_slot(timeout=60)
        adapter.submit(tensor, i)
    adapter.wait_for_free_slot(timeout=60)
    adapter.submit(np.zeros((1, 3, 3, 3), np.uint8), "bad")  # wrong size for the network
    assert adapter.drain(timeout=120)
    assert sorted(k for k in results if k != "bad") == list(range(len(tensors)))
    for i, tensor in enumerate(tensors):
        output, error = results[i]
        assert error is None
        np.testing.assert_array_equal(output, adapter.infer(tensor))
    output, error = results["bad"]
    assert output is None and error is not None
    assert adapter.in_flight == 0 and adapter.callback_error is None


@pytest.mark.parametrize("model_section,expected", [
    ({"engine": "opencv"}, "OpenCV DNN"),
    # no such OpenVINO device, nor the fallback one: OpenVINO cannot run it here at all
    ({"device": "MYRIAD", "fallback": "NPU"}, "OpenCV DNN"),
    ({"device": "MYRIAD", "fallback": "opencv"}, "OpenCV DNN"),
    ({"device": "MYRIAD", "fallback": "CPU"}, "OpenVINO"),
])
def test_engine_selection_and_fallback_are_loud(exported, caplog, model_section, expected):
    from edge_app import config
    from edge_app.daemon import load_detector

    model_dir, _, _, _ = exported("tiny-224x160")
    cfg = config.build({"model": {"path": str(model_dir), **model_section}})
    with caplog.at_level("WARNING"):
        detector = load_detector(cfg)
    assert detector.adapter.runtime == expected
    if expected == "OpenCV DNN":
        assert "OpenCV" in caplog.text and "***" in caplog.text


def test_no_fallback_means_no_opencv(exported):
    from edge_app import config
    from edge_app.daemon import load_detector

    model_dir, _, _, _ = exported("tiny-224x160")
    cfg = config.build({"model": {"path": str(model_dir), "device": "NPU", "fallback": ""}})
    with pytest.raises(InputError, match="NPU"):
        load_detector(cfg)


def test_unknown_engine_is_a_config_error():
    from edge_app import config

    with pytest.raises(InputError, match="model.engine"):
        config.build({"model": {"path": "m", "engine": "tensorrt"}})


def test_check_reports_the_runtime_and_the_ncs2_verdict(exported, run_cli, tmp_path):
    """edge-app check prints the OpenVINO version, its devices and the plain NCS2 verdict (no
    OpenVINO wheel here has the MYRIAD plugin: the 2022.1 wheel names it, its library is absent)."""
    model_dir, _, _, _ = exported("tiny-224x160")
    clip = tmp_path / "one.png"
    cv2.imwrite(str(clip), frames()[0])
    result = run_cli("edge_app", "check", "--model", model_dir, "--source", tmp_path,
                     "--set", "mqtt.enabled=false", "--set", "source.kind=directory")
    out = result.stdout
    assert "runtime: OpenVINO 20" in out and "devices: CPU" in out, out
    assert "NCS2: this OpenVINO has no MYRIAD plugin: the NCS2 will not be used; install" in out
    assert "FALLING BACK" in result.stderr and "ready" in out
