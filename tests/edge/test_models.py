"""The exported IR, run by edge_app on OpenVINO, against OpenCV DNN's darknet importer.

OpenCV reads the same cfg + weights independently; its last convolution's output is the raw
region tensor our IR returns. These tests also run under Python 3.9 + OpenVINO 2022.3.1 (the
Pi's stack), on IRs exported by the training-box OpenVINO.
"""
import json

import numpy as np
import pytest

from edge_app import metadata
from edge_app.decode import RegionSpec, region_candidates
from edge_app.detector import Detector
from tests.conftest import REPO, TEST_CFGS

FP32_BOUND = 1e-4  # max abs error / output range (issue requirement)
FP16_BOUND = 2e-3  # measured worst case 4.9e-4 over these cfgs and photos; 4x margin


def opencv_raw(cfg, weights, image):
    import cv2

    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    last_conv = [name for name in net.getLayerNames() if name.startswith("conv_")][-1]
    h, w = image.shape[:2]
    net.setInput(cv2.dnn.blobFromImage(image, 1 / 255.0, (w, h), swapRB=True, crop=False))
    raw, region = net.forward([last_conv, "detection_out"])
    return raw, region


@pytest.mark.parametrize("cfg_name", list(TEST_CFGS))
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_ir_output_matches_opencv_dnn(cfg_name, fp16, exported, net_size_photos):
    import cv2

    model_dir, cfg, weights, _ = exported(cfg_name, fp16)
    detector = Detector(model_dir)
    info = detector.info
    assert info.precision == ("FP16" if fp16 else "FP32")
    worst = 0.0
    for path in net_size_photos(info.width, info.height):
        image = cv2.imread(str(path))
        ours = detector.raw(image)
        ref, _ = opencv_raw(cfg, weights, image)
        assert ours.shape == ref.shape
        span = float(ref.max() - ref.min())
        assert span > 1.0  # a live network, not a constant output
        worst = max(worst, float(np.abs(ours - ref).max()) / span)
    print(f"{cfg_name} {'FP16' if fp16 else 'FP32'}: max abs error / range = {worst:.2e}")
    assert worst <= (FP16_BOUND if fp16 else FP32_BOUND)


def test_decoded_boxes_match_opencv_region_layer(exported, net_size_photos):
    """Box geometry and objectness from our decoder equal OpenCV's region layer, cell by cell."""
    import cv2

    model_dir, cfg, weights, _ = exported("yolov2-tiny-voc")
    info = metadata.load(model_dir)
    image = cv2.imread(str(net_size_photos(info.width, info.height)[2]))
    raw, region = opencv_raw(cfg, weights, image)
    spec = RegionSpec.from_info(info)
    c = region_candidates(raw, spec, 0.0)
    first_class = c.class_id == 0  # softmax > 0: one entry per anchor and cell
    grid = raw.shape[-2] * raw.shape[-1]
    b = c.boxes[first_class]
    ours = np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)
    ours = ours.reshape(spec.num, grid, 4).transpose(1, 0, 2).reshape(-1, 4)  # OpenCV: cell-major
    np.testing.assert_allclose(ours, region[:, :4], rtol=1e-5, atol=1e-6)
    objectness = 1 / (1 + np.exp(-raw.reshape(spec.num, -1, grid)[:, 4]))
    np.testing.assert_allclose(objectness.T.ravel(), region[:, 4], rtol=1e-5, atol=1e-6)


def test_metadata_matches_json_schema_and_cfg(exported):
    jsonschema = pytest.importorskip("jsonschema")
    model_dir, cfg, weights, names = exported("tiny-224x160", fp16=True, resize_mode="resize")
    info = metadata.load(model_dir)
    schema = json.loads((REPO / "edge_app/schemas/model-metadata.schema.json").read_text())
    jsonschema.validate(info.raw, schema)
    assert (info.width, info.height, info.classes, info.num) == (224, 160, 3, 5)
    assert info.anchors == (0.8, 1.0, 1.6, 2.4, 3.2, 2.8, 4.0, 4.4, 6.0, 4.5)
    assert info.labels == ("class0", "class1", "class2")
    assert info.resize_mode == "resize" and info.precision == "FP16"
    import hashlib
    assert info.raw["source"]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # the bundle for OpenCV DNN: the checkpoint's bytes as they are, under the same hash
    assert (model_dir / info.raw["darknet"]["weights"]).read_bytes() == weights.read_bytes()
    assert info.raw["darknet"]["weights_sha256"] == info.raw["source"]["weights_sha256"]
    assert info.raw["ir"]["bin_sha256"] == hashlib.sha256(info.bin.read_bytes()).hexdigest()


def test_fp16_ir_is_half_the_size(exported):
    fp32 = metadata.load(exported("yolov2-tiny-voc", fp16=False)[0])
    fp16 = metadata.load(exported("yolov2-tiny-voc", fp16=True)[0])
    assert fp16.bin.stat().st_size < 0.55 * fp32.bin.stat().st_size


def test_engine_reports_the_openvino_api_in_use(exported):
    from edge_app.runtime import openvino_api

    _, _, version = openvino_api()
    detector = Detector(exported("tiny-224x160")[0])
    assert detector.adapter.version == version and version
    print("OpenVINO", version)
