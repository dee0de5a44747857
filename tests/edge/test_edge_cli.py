"""edge-app detect through a subprocess: JSON output, and clear errors for bad input."""
import json

import pytest


def test_detect_prints_darkflow_style_json(run_cli, exported, net_size_photos, tmp_path):
    model_dir = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    image = net_size_photos(224, 160)[0]
    result = run_cli("edge_app", "detect", "--model", model_dir, "--conf", "0.05",
                     "--draw", tmp_path / "drawn", image, check=True)
    record = json.loads(result.stdout.splitlines()[0])
    assert (record["width"], record["height"]) == (224, 160)
    assert record["detections"], "random weights at conf 0.05 give detections"
    d = record["detections"][0]
    assert set(d) >= {"label", "confidence", "topleft", "bottomright", "class_id", "box"}
    assert 0 <= d["topleft"]["x"] <= d["bottomright"]["x"] < 224
    assert (tmp_path / "drawn" / (image.stem + ".jpg")).stat().st_size > 1000


def test_missing_model(run_cli, tmp_path):
    result = run_cli("edge_app", "detect", "--model", tmp_path / "none", "x.jpg")
    assert result.returncode == 2 and "model not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_image(run_cli, exported, tmp_path):
    model_dir = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a jpeg")
    result = run_cli("edge_app", "detect", "--model", model_dir, junk)
    assert result.returncode == 2 and "junk.jpg" in result.stderr and "cannot read image" in result.stderr


def test_metadata_of_a_newer_major_version_is_refused(exported, tmp_path):
    import shutil

    from edge_app import metadata
    from edge_app.errors import InputError

    model_dir = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    meta_file = next(copy.glob("*.json"))
    data = json.loads(meta_file.read_text())
    data["schema_version"] = "2.0"
    meta_file.write_text(json.dumps(data))
    with pytest.raises(InputError, match="schema version 2.0"):
        metadata.load(copy)
    data["schema_version"] = "1.0"
    del data["region"]["anchors"]
    meta_file.write_text(json.dumps(data))
    with pytest.raises(InputError, match="region.anchors"):
        metadata.load(copy)


def test_precompiled_blob_is_used_and_gives_the_same_output(run_cli, exported, net_size_photos, tmp_path):
    import shutil

    import cv2
    import numpy as np

    from edge_app.detector import Detector

    copy = tmp_path / "model"
    shutil.copytree(exported("tiny-224x160", fp16=True, resize_mode="resize")[0], copy)
    image = cv2.imread(str(net_size_photos(224, 160)[1]))
    from_ir = Detector(copy)
    assert from_ir.adapter.source == "ir"
    result = run_cli("edge_app", "compile-blob", "--model", copy, "--device", "CPU", check=True)
    assert ".CPU." in result.stdout
    from_blob = Detector(copy)
    assert from_blob.adapter.source.startswith("blob ")
    np.testing.assert_allclose(from_blob.raw(image), from_ir.raw(image), rtol=0, atol=1e-5)
    # a blob that does not load (corrupt, other OpenVINO) falls back to the IR
    blob = next(copy.glob("*.blob"))
    blob.write_bytes(b"garbage")
    assert Detector(copy).adapter.source == "ir"
