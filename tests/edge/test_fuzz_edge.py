"""Property-based tests (hypothesis) over the edge's inputs: model metadata, the model folder,
the IR files, the TOML config, and images given to `detect` — in process and through the CLI.

Each property: a valid result or InputError (exit 2 with a message from the CLI); never
another exception, never a hang, nothing written after a failure. Runs on both stacks
(Python 3.11 + current OpenVINO, and the Pi's Python 3.9 + OpenVINO 2022.3).
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, strategies as st

from edge_app import config as config_mod, metadata
from edge_app.cli import read_image
from edge_app.decode import RegionSpec, decode
from tests.conftest import REPO, photo
from tests.fuzz import (IN_PROCESS, SUBPROCESS, assert_cli_error_or_success, examples, files_under,
                        mutated, result_or_input_error)

MODEL = "tiny-224x160"


@pytest.fixture(scope="module")
def model(exported):
    folder, *_ = exported(MODEL, fp16=True)
    meta_path = metadata.find(folder)
    return folder, meta_path, json.loads(meta_path.read_text())


def model_copy(folder: Path, tmp: Path) -> Path:
    """The export's files in a new folder: the IR as symlinks (no copy per example)."""
    out = tmp / "model"
    out.mkdir()
    for file in folder.iterdir():
        if file.suffix in (".xml", ".bin"):
            (out / file.name).symlink_to(file)
        elif file.suffix == ".json":
            shutil.copy(file, out / file.name)
    return out


def check_usable(info: metadata.ModelInfo) -> None:
    """What accepted metadata promises: the decode runs on an output of the shape it names."""
    assert info.num >= 1 and info.classes == len(info.labels) == len(set(info.labels))
    assert all(math.isfinite(a) and a > 0 for a in info.anchors)
    assert 0 < info.conf_threshold < 1 and 0 < info.nms_threshold < 1
    shape = info.raw["output"]["shape"]
    raw = np.random.default_rng(0).normal(0, 2, shape).astype(np.float32)
    detections = decode(raw, RegionSpec.from_info(info), info.labels, 640, 480, info.width, info.height,
                        info.resize_mode, info.conf_threshold, info.nms_threshold)
    for d in detections:
        assert math.isfinite(d.x1) and math.isfinite(d.confidence)


def leaf_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from leaf_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield prefix + (index,)
            yield from leaf_paths(value, prefix + (index,))


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, -1, 1, 2**31, 10**6]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "x.bin", "model.xml", "", "a" * 5000, "FP64",
                     "letterbox", "0" * 64, "\x00", "dup"]),
    st.lists(st.integers(-3, 3), max_size=4), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def mutated_metadata(draw, seed: dict):
    data = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(leaf_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, list) and draw(st.booleans()):
            parent.append(draw(JSON_VALUES))
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return data


@examples(IN_PROCESS)
@given(data=st.data())
def test_metadata_values_property(model, data):
    folder, meta_path, seed = model
    changed = data.draw(mutated_metadata(seed))
    with tempfile.TemporaryDirectory() as tmp:
        copy_dir = model_copy(folder, Path(tmp))
        (copy_dir / meta_path.name).write_text(json.dumps(changed))
        info, _ = result_or_input_error(metadata.load, copy_dir)
    if info is not None:
        check_usable(info)


@examples(IN_PROCESS)
@given(data=st.data())
def test_metadata_bytes_property(model, data):
    folder, meta_path, _ = model
    blob = data.draw(mutated(meta_path.read_bytes()))
    with tempfile.TemporaryDirectory() as tmp:
        copy_dir = model_copy(folder, Path(tmp))
        (copy_dir / meta_path.name).write_bytes(blob)
        info, _ = result_or_input_error(metadata.load, copy_dir)
    if info is not None:
        check_usable(info)


@examples(IN_PROCESS // 2)
@given(st.lists(st.one_of(st.binary(max_size=40), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                          st.just(b"[" * 100000), st.just(b"\xff\xfe{}")), min_size=1, max_size=3))
def test_other_json_files_in_the_model_folder(model, others):
    """A model folder may hold other .json files (a note, a deep array, garbage): the metadata
    is still found, or the error says what was found."""
    folder, meta_path, _ = model
    with tempfile.TemporaryDirectory() as tmp:
        copy_dir = model_copy(folder, Path(tmp))
        for index, blob in enumerate(others):
            (copy_dir / f"other{index}.json").write_bytes(blob)
        info, _ = result_or_input_error(metadata.load, copy_dir)
        assert info is not None and info.path.name == meta_path.name


# --------------------------------------------------------------------------------------------
# the IR files: a changed .xml or .bin is refused by its sha256 before OpenVINO reads it


@examples(IN_PROCESS // 4)
@given(data=st.data())
def test_ir_files_property(model, data):
    folder, meta_path, seed = model
    target = data.draw(st.sampled_from([seed["ir"]["xml"], seed["ir"]["bin"]]))
    original = (folder / target).read_bytes()
    if target.endswith(".bin"):  # whole-file mutations; flips anywhere in 100s of KB
        blob = data.draw(st.one_of(st.just(b""), st.just(original + b"junk"),
                                   st.integers(0, len(original) - 1).map(lambda n: original[:n]),
                                   st.integers(0, len(original) - 1).map(
                                       lambda n: original[:n] + bytes([original[n] ^ 1]) + original[n + 1:])))
    else:
        blob = data.draw(mutated(original))
    with tempfile.TemporaryDirectory() as tmp:
        copy_dir = model_copy(folder, Path(tmp))
        (copy_dir / target).unlink()
        (copy_dir / target).write_bytes(blob)
        info, error = result_or_input_error(metadata.load, copy_dir)
    if blob != original:
        assert error is not None and "sha256" in error.what


# --------------------------------------------------------------------------------------------
# edge TOML (parsing entry; the value rules are tests/edge/test_config.py's)


@examples(IN_PROCESS)
@given(mutated((REPO / "systemd/edge-app.toml").read_bytes()))
def test_edge_config_property(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edge-app.toml"
        path.write_bytes(data)
        config, _ = result_or_input_error(config_mod.load, str(path), {"model.path": "/models/x"})
    if config is not None:
        assert isinstance(config, config_mod.Config)


# --------------------------------------------------------------------------------------------
# images given to `detect`

IMAGE_SEEDS = {}


def image_seed(kind: str) -> bytes:
    if kind not in IMAGE_SEEDS:
        image = cv2.resize(cv2.imread(str(photo("dog"))), (96, 64), interpolation=cv2.INTER_AREA)
        IMAGE_SEEDS[kind] = cv2.imencode(f".{kind}", image)[1].tobytes()
    return IMAGE_SEEDS[kind]


@pytest.fixture(scope="module")
def detector(model):
    from edge_app.detector import Detector

    return Detector(model[0], "CPU")


@examples(IN_PROCESS)
@given(st.sampled_from(["jpg", "png", "bmp"]).flatmap(lambda kind: mutated(image_seed(kind))))
def test_image_input_property(detector, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image"
        path.write_bytes(data)
        frame, _ = result_or_input_error(read_image, str(path))
    if frame is not None:
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        for d in detector.detect(frame):
            assert 0 <= d.x1 <= d.x2 <= frame.shape[1] and 0 <= d.y1 <= d.y2 <= frame.shape[0]


@examples(SUBPROCESS // 2)
@given(blob=st.sampled_from(["jpg", "png"]).flatmap(lambda kind: mutated(image_seed(kind))),
       conf=st.sampled_from(["0.25", "nan", "inf", "-1", "0", "1.5"]))
def test_detect_cli_property(run_cli, model, blob, conf):
    """`detect` on a good image and a mutated one: exit 0 with both drawn, or exit 2 with
    nothing drawn (every image is checked before the first output)."""
    with tempfile.TemporaryDirectory() as tmp:
        good = Path(tmp) / "good.jpg"
        good.write_bytes(image_seed("jpg"))
        bad = Path(tmp) / "fuzzed.jpg"
        bad.write_bytes(blob)
        drawn = Path(tmp) / "drawn"
        result = run_cli("edge_app", "detect", "--model", model[0], "--conf", conf, "--draw", drawn, good, bad)
        if assert_cli_error_or_success(result, "detect"):
            assert files_under(drawn) == [] and result.stdout == ""
        else:
            assert len(result.stdout.splitlines()) == 2 and len(files_under(drawn)) == 2


# --------------------------------------------------------------------------------------------
# model-file corruption through check, run and detect


def _rehash(copy_dir: Path, meta_name: str) -> None:
    """Make the metadata's hashes match the files again: the corruption then reaches OpenVINO."""
    data = json.loads((copy_dir / meta_name).read_text())
    for key in ("xml", "bin"):
        data["ir"][f"{key}_sha256"] = metadata.sha256_file(copy_dir / data["ir"][key])
    (copy_dir / meta_name).write_text(json.dumps(data))


CORRUPTIONS = {
    "xml-empty": ("xml", lambda b: b""),
    "xml-truncated": ("xml", lambda b: b[: len(b) // 2]),
    "xml-garbage": ("xml", lambda b: bytes(range(256)) * 4),
    "bin-empty": ("bin", lambda b: b""),
    "bin-truncated": ("bin", lambda b: b[: len(b) // 3]),
    "bin-appended-junk": ("bin", lambda b: b + b"\0" * 64),
}


def corrupted_model(folder: Path, tmp: Path, kind: str, rehash: bool) -> Path:
    copy_dir = model_copy(folder, tmp)
    meta_name = metadata.find(copy_dir).name
    data = json.loads((copy_dir / meta_name).read_text())
    if kind == "metadata-num":  # consistent metadata that disagrees with the IR
        data["region"]["num"] = 1
        data["region"]["anchors"] = data["region"]["anchors"][:2]
        data["output"]["shape"][1] = data["region"]["classes"] + 5
    elif kind == "metadata-size":
        data["input"]["width"] = data["input"]["width"] + 32
    else:
        key, change = CORRUPTIONS[kind]
        target = copy_dir / data["ir"][key]
        blob = change(target.read_bytes())
        target.unlink()
        target.write_bytes(blob)
    (copy_dir / meta_name).write_text(json.dumps(data))
    if rehash:
        _rehash(copy_dir, meta_name)
    return copy_dir


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS) + ["metadata-num", "metadata-size"])
def test_model_file_corruption_in_check_run_detect(run_cli, model, tmp_path, kind):
    """Each corrupted model: `check` says NOT READY with the model's error, `run` and `detect`
    exit 2 with one message; no traceback. The IR corruptions run twice: caught by the sha256,
    and (with the hashes rewritten to match) by OpenVINO's reader."""
    # appended junk is invisible to OpenVINO (it reads only the offsets the .xml names): only
    # the hash can catch it
    rehashes = (False,) if kind == "bin-appended-junk" else (False, True) if kind in CORRUPTIONS else (True,)
    for rehash in rehashes:
        work = tmp_path / f"{kind}-{rehash}"
        work.mkdir()
        model_dir = corrupted_model(model[0], work, kind, rehash)
        image = work / "dog.jpg"
        image.write_bytes(image_seed("jpg"))
        detect = run_cli("edge_app", "detect", "--model", model_dir, image)
        assert detect.returncode == 2 and "Traceback" not in detect.stderr, detect.stderr
        assert "error:" in detect.stderr and detect.stdout == ""
        args = ["--model", model_dir, "--source", image.parent, "--device", "CPU",
                "--set", "mqtt.enabled=false", "--set", "model.fallback="]
        check = run_cli("edge_app", "check", *args)
        assert check.returncode == 1 and "model: FAILED" in check.stdout, check.stdout + check.stderr
        assert "Traceback" not in check.stderr
        run = run_cli("edge_app", "run", *args)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert "error:" in run.stderr
        expected = "sha256" if not rehash else "shape" if kind.startswith("metadata") else ""
        assert expected in detect.stderr + check.stdout
