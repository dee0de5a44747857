"""Property-based tests (hypothesis) over every model-tools input: cfg, weights, .names, .data,
the four annotation formats, --split, and the CLI paths that read them.

Each property: mutated real input → a valid result or InputError (exit 2 with a message through
the CLI); never another exception, never a hang, nothing written after a failure. See
tests/fuzz.py for the mutations and the example counts.
"""
from __future__ import annotations

import math
import shutil
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, strategies as st

from model_tools import cfg as cfg_mod, dataset, weights as weights_mod
from model_tools.cli import _ratios
from model_tools.names import read_names
from tests.conftest import DARKNET_SHARE, REPO, photo
from tests.fuzz import (IN_PROCESS, SUBPROCESS, TOKENS, assert_cli_error_or_success, examples,
                        files_under, mutated, result_or_input_error)

TINY_CFG = REPO / "tests/data/tiny-224x160.cfg"
CFG_SEEDS = [TINY_CFG.read_bytes(), (DARKNET_SHARE / "cfg/yolov2-tiny-voc.cfg").read_bytes()]


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def check_network(net: cfg_mod.Network) -> None:
    """What a cfg accepted by `check` promises the weights reader and the exporter."""
    assert net.width > 0 and net.height > 0 and net.layers
    for layer in net.layers:
        assert all(d > 0 for d in layer.out_shape), layer
        if isinstance(layer, (cfg_mod.Conv, cfg_mod.MaxPool)):
            assert layer.size > 0 and layer.stride > 0
    assert net.param_count <= cfg_mod.MAX_PARAMS
    region = net.region
    assert all(math.isfinite(a) and a > 0 for a in region.anchors)
    assert len(region.anchors) == 2 * region.num


# --------------------------------------------------------------------------------------------
# cfg


@examples(IN_PROCESS * 3)
@given(st.sampled_from(CFG_SEEDS).flatmap(mutated))
def test_cfg_parser_property(data):
    with tempfile.TemporaryDirectory() as tmp:
        net, _ = result_or_input_error(cfg_mod.load, _write(Path(tmp), "fuzz.cfg", data))
        if net is not None:
            check_network(net)


@examples(IN_PROCESS // 8)
@given(mutated(CFG_SEEDS[0], max_ops=2))
def test_a_cfg_that_check_accepts_exports(data):
    """`check` saying yes means export works: no size=0 maxpool that only OpenVINO refuses."""
    from model_tools import export

    with tempfile.TemporaryDirectory() as tmp:
        net, _ = result_or_input_error(cfg_mod.load, _write(Path(tmp), "fuzz.cfg", data))
        if net is None or net.param_count > 2_000_000:
            return
        check_network(net)
        weights = weights_mod.random(net, seed=0)
        names = [f"c{i}" for i in range(net.region.classes)]
        out = Path(tmp) / "model"
        meta, _ = result_or_input_error(export.export, net, weights, names, out, fp16=False)
        assert meta is not None, "a cfg that check accepts must export"
        assert meta["output"]["shape"][1] == net.region.in_shape[0]


# --------------------------------------------------------------------------------------------
# weights


# A few thousand parameters: every byte of the file is in reach of the mutations.
MINI_CFG = """[net]
width=64
height=64
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=1
[convolutional]
filters=14
size=1
stride=1
activation=linear
[region]
anchors=1,1.5,2.5,3
classes=2
num=2
"""


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("mini") / "mini.cfg"
    path.write_text(MINI_CFG)
    net = cfg_mod.load(path)
    # float indices of the batch-norm variances, where a negative value is silent garbage
    variances, offset = [], 0
    for layer in net.layers:
        if isinstance(layer, cfg_mod.Conv):
            if layer.batch_normalize:
                variances += range(offset + 3 * layer.filters, offset + 4 * layer.filters)
            offset += layer.param_count
    return net, weights_mod.random(net, seed=3).to_bytes(), variances


SPECIAL_FLOATS = [struct.pack("<f", v) for v in (float("nan"), float("inf"), -1.0, -1e-3, 3e38, 0.0)]


@st.composite
def mutated_weights(draw, seed: bytes, variances):
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("header", "float", "variance", "flip", "truncate", "append")))
        if op == "variance" and len(data) == len(seed):
            at = 20 + 4 * draw(st.sampled_from(variances))
            data[at:at + 4] = draw(st.sampled_from(SPECIAL_FLOATS))
        elif op == "header":  # version stamp and `seen`: what decides the header size and the fork
            at = draw(st.sampled_from((0, 4, 8, 12, 16)))
            data[at:at + 4] = struct.pack("<i", draw(st.sampled_from((0, 1, 2, 5, 7, 10, -1, 999, 1000, 2**31 - 1))))
        elif op == "float" and len(data) >= 24:
            at = 20 + 4 * draw(st.integers(0, (len(data) - 20) // 4 - 1))
            data[at:at + 4] = draw(st.sampled_from(SPECIAL_FLOATS))
        elif op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


@examples(IN_PROCESS)
@given(data=st.data())
def test_weights_reader_property(tiny_weights, data):
    net, seed, variances = tiny_weights
    blob = data.draw(mutated_weights(seed, variances))
    with tempfile.TemporaryDirectory() as tmp:
        loaded, _ = result_or_input_error(weights_mod.read, _write(Path(tmp), "fuzz.weights", blob), net)
    if loaded is not None:
        assert np.all(np.isfinite(loaded.floats))
        for params in loaded.layers:
            if params is not None and params.rolling_variance is not None:
                assert np.all(params.rolling_variance >= 0), "a negative variance makes the model output NaN"
        assert loaded.header.fork in ("pjreddie", "alexeyab")


# --------------------------------------------------------------------------------------------
# .names and .data

NAMES_SEED = b"Adidas\nNike\nPuma\n"
DATA_SEED = b"classes=3\ntrain=/data/train.txt\nvalid=/data/valid.txt\nnames=/data/x.names\nbackup=backup\neval=voc\n"


@examples(IN_PROCESS)
@given(mutated(NAMES_SEED))
def test_names_reader_property(data):
    with tempfile.TemporaryDirectory() as tmp:
        names, _ = result_or_input_error(read_names, _write(Path(tmp), "x.names", data))
    if names is not None:
        assert names and len(set(names)) == len(names) and all(n and n == n.strip() for n in names)


@examples(IN_PROCESS)
@given(mutated(DATA_SEED))
def test_data_file_reader_property(data):
    with tempfile.TemporaryDirectory() as tmp:
        values, _ = result_or_input_error(dataset.read_data_file, _write(Path(tmp), "x.data", data))
    if values is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())


@examples(IN_PROCESS)
@given(st.one_of(
    st.tuples(*[st.floats(allow_nan=True, allow_infinity=True)] * 3).map(lambda t: "/".join(map(repr, t))),
    st.text(max_size=30),
    st.sampled_from(["80/10/10", "nan/50/50", "inf/-inf/100", "100/0/0", "-10/60/50", "1e309/0/0"])))
def test_split_option_property(text):
    ratios, _ = result_or_input_error(_ratios, text)
    if ratios is not None:
        assert len(ratios) == 3 and all(math.isfinite(r) and 0 <= r <= 1 for r in ratios)
        assert abs(sum(ratios) - 1) < 1e-9


# --------------------------------------------------------------------------------------------
# the four annotation formats, import + build (in-process)

SIZE = (64, 48)
LABELS = {"dog": "Dog", "eagle": "Bird", "horses": "Horse"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Small copies of real photos in each format's layout, plus a 'secret' image outside the
    dataset that no annotation may import (absolute paths, `..`)."""
    root = tmp_path_factory.mktemp("fuzz-sources")
    small = {}
    for stem in LABELS:
        image = cv2.resize(cv2.imread(str(photo(stem))), SIZE, interpolation=cv2.INTER_AREA)
        small[stem] = cv2.imencode(".jpg", image)[1].tobytes()
    secret = root / "secret.jpg"
    secret.write_bytes(cv2.imencode(".jpg", np.full((48, 64, 3), 77, np.uint8))[1].tobytes())
    ds = root / "ds"
    for sub in ("flickr/images", "voc/Annotations", "voc/JPEGImages", "voc/ImageSets/Main",
                "oi/images", "yolo/images", "yolo/labels"):
        (ds / sub).mkdir(parents=True)
    for stem, data in small.items():
        for sub in ("flickr/images", "voc/JPEGImages", "oi/images", "yolo/images"):
            (ds / sub / f"{stem}.jpg").write_bytes(data)
    (ds / "flickr/annotations.txt").write_text(
        "dog.jpg Dog 1 5 5 40 30\neagle.jpg Bird 2 10 4 60 40\nhorses.jpg Horse 6 1 1 30 30\n"
        "horses.jpg Dog 6 20 10 50 40\n")
    for stem, label in LABELS.items():
        difficult = ("<object><name>Dog</name><difficult>1</difficult><bndbox><xmin>30</xmin><ymin>20</ymin>"
                     "<xmax>60</xmax><ymax>44</ymax></bndbox></object>") if stem != "horses" else ""
        (ds / "voc/Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>64</width><height>48</height>"
            f"</size><object><name>{label}</name><difficult>0</difficult><bndbox><xmin>5</xmin>"
            f"<ymin>6</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>{difficult}</annotation>\n")
    (ds / "voc/ImageSets/Main/train.txt").write_text("dog\neagle\n")
    (ds / "voc/ImageSets/Main/val.txt").write_text("horses\n")
    (ds / "oi/boxes.csv").write_text(
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded\n"
        "dog,xclick,/m/0bt9lr,1,0.1,0.6,0.1,0.7,0\neagle,xclick,/m/015p6,1,0.2,0.9,0.1,0.8,1\n"
        "horses,xclick,/m/03k3r,1,0.05,0.5,0.05,0.6,0\n")
    (ds / "oi/descriptions.csv").write_text("/m/0bt9lr,Dog\n/m/015p6,Bird\n/m/03k3r,Horse\n")
    (ds / "yolo/obj.names").write_text("Dog\nBird\nHorse\n")
    for index, stem in enumerate(LABELS):
        (ds / "yolo/labels" / f"{stem}.txt").write_text(f"{index} 0.4 0.5 0.3 0.4\n0 0.7 0.6 0.2 0.2\n")
    tokens = TOKENS + [str(secret).encode(), b"../../../secret.jpg", b"../../secret", b"../secret"]
    return ds, secret, tokens


FORMATS = {
    "flickr27": (["flickr/annotations.txt"], lambda ds: dataset.import_flickr27(ds / "flickr/annotations.txt", ds / "flickr/images")),
    "voc": (["voc/Annotations/dog.xml", "voc/Annotations/eagle.xml", "voc/ImageSets/Main/train.txt"],
            lambda ds: dataset.import_voc(ds / "voc")),
    "openimages": (["oi/boxes.csv", "oi/descriptions.csv"],
                   lambda ds: dataset.import_openimages(ds / "oi/boxes.csv", ds / "oi/descriptions.csv",
                                                        ds / "oi/images", ["Dog", "Bird", "Horse"])),
    "yolo": (["yolo/labels/dog.txt", "yolo/labels/eagle.txt", "yolo/obj.names"], lambda ds: dataset.import_yolo(ds / "yolo")),
}


def check_built(out: Path, report, secret: bytes) -> None:
    """A dataset written by a successful import is usable by darknet and holds only dataset files."""
    assert report.images >= 1, "an import that kept no image must fail, not write an empty dataset"
    names = read_names(next(out.glob("*.names")))
    listed = []
    for split in ("train", "valid", "test"):
        listed += (out / f"{split}.txt").read_text().split()
    assert len(listed) == report.images
    for image in listed:
        path = Path(image)
        assert path.is_file() and out in path.parents
        assert path.read_bytes() != secret, "an annotation imported a file from outside the dataset"
        label = dataset.label_path(path)
        for row in label.read_text().splitlines():
            k, *values = row.split()
            assert 0 <= int(k) < len(names)
            assert all(0.0 <= float(v) <= 1.0 for v in values), row
    data = dataset.read_data_file(next(out.glob("*.data")))
    if "difficult" in data:  # AlexeyAB reads it line for line with valid=, unchecked
        dataset.read_difficult_list(data["difficult"], len(dataset.list_paths(data["valid"])), "difficult=")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@examples(IN_PROCESS // 2)
@given(data=st.data())
def test_annotation_import_property(sources, fmt, data):
    ds_seed, secret, tokens = sources
    files, importer = FORMATS[fmt]
    target = data.draw(st.sampled_from(files))
    blob = data.draw(mutated((ds_seed / target).read_bytes(), tokens=tokens))
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        shutil.copytree(ds_seed, ds)
        (ds / target).write_bytes(blob)
        out = Path(tmp) / "out"

        def run():
            return dataset.build(importer(ds), out, name="fuzz", ratios=(0.6, 0.2, 0.2), progress=False)

        report, error = result_or_input_error(run)
        if error is not None:
            assert files_under(out) == [], f"a failed import left files: {files_under(out)[:5]}"
        else:
            check_built(out, report, secret.read_bytes())


# --------------------------------------------------------------------------------------------
# through the real CLI (fewer examples: a subprocess each)


@examples(SUBPROCESS)
@given(data=st.data())
def test_import_cli_property(run_cli, sources, data):
    ds_seed, secret, tokens = sources
    blob = data.draw(mutated((ds_seed / "flickr/annotations.txt").read_bytes(), tokens=tokens))
    names = data.draw(st.one_of(st.none(), mutated(b"Bird\nDog\nHorse\n")))
    split = data.draw(st.sampled_from(["80/10/10", "nan/0/100", "inf/0/0", "60/20/20"]))
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        shutil.copytree(ds_seed, ds)
        (ds / "flickr/annotations.txt").write_bytes(blob)
        extra = []
        if names is not None:
            extra = ["--names", _write(Path(tmp), "given.names", names)]
        out = Path(tmp) / "out"
        result = run_cli("model_tools", "import", "flickr27", ds / "flickr/annotations.txt", out,
                         "--images", ds / "flickr/images", "--split", split, *extra)
        if assert_cli_error_or_success(result, "import"):
            assert files_under(out) == []


@examples(SUBPROCESS)
@given(st.sampled_from(CFG_SEEDS).flatmap(mutated))
def test_check_and_random_weights_cli_property(run_cli, data):
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = _write(Path(tmp), "fuzz.cfg", data)
        assert_cli_error_or_success(run_cli("model_tools", "check", cfg_path), "check")
        out = Path(tmp) / "out" / "random.weights"
        if assert_cli_error_or_success(run_cli("model_tools", "random-weights", cfg_path, out), "random-weights"):
            assert not out.parent.exists() or files_under(out.parent) == []


@pytest.mark.parametrize("output", ["existing-file", "existing-folder", "under-a-file", "long-name"])
def test_output_paths_that_cannot_be_written(run_cli, tmp_path, output):
    """Each writing command refuses an output it cannot create, with exit 2 and nothing
    written: a folder where a file goes (random-weights, cfg), a file where a folder goes
    (import, export), a path under a file, a name longer than file systems allow."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n")
    target = {"existing-file": blocker, "existing-folder": tmp_path,
              "under-a-file": blocker / "x" / "out", "long-name": tmp_path / ("n" * 300)}[output]
    annotations = tmp_path / "a.txt"
    annotations.write_text("dog.jpg Dog 1 1 1 10 10\n")
    before = {p: p.read_bytes() for p in files_under(tmp_path)}
    file_outputs = [("random-weights", TINY_CFG, target), ("cfg", target, "--classes", 2)]
    folder_outputs = [("import", "flickr27", annotations, target, "--images", DARKNET_SHARE / "data")]
    commands = {"existing-file": folder_outputs, "existing-folder": file_outputs}.get(
        output, file_outputs + folder_outputs)
    for command in commands:
        result = run_cli("model_tools", *command)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (command, result.stderr)
        assert "error:" in result.stderr
        assert {p: p.read_bytes() for p in files_under(tmp_path)} == before


@examples(IN_PROCESS)
@given(mutated(b"0 0.4 0.5 0.3 0.4\n2 0.7 0.6 0.2 0.2\n"))
def test_label_file_reader_property(data):
    """Ground-truth labels (evaluate, anchors): every line understood, or InputError at file:line."""
    with tempfile.TemporaryDirectory() as tmp:
        rows, error = result_or_input_error(dataset.read_labels, _write(Path(tmp), "x.txt", data), 640, 480)
    if rows is not None:
        assert all(math.isfinite(v) for row in rows for v in row[1:])
    else:
        assert "x.txt" in error.where
