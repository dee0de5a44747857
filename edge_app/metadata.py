"""The model metadata file: the contract between the training box and the edge.

`model-tools export` writes `<stem>.json` beside `<stem>.xml`/`<stem>.bin`; the edge reads it to
know how to feed the model and decode its output. The format is documented in
docs/model-metadata.md and described by edge_app/schemas/model-metadata.schema.json. A file with
a newer major schema version is refused rather than half-understood.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

from edge_app.errors import InputError
from edge_app.preprocess import INTERPOLATIONS, LEGACY_INTERPOLATION
from edge_app.readers import load_json

SCHEMA_VERSION = "1.1"  # 1.1: `interpolation`
OUTPUT_NAME = "region_raw"
RESIZE_MODES = ("resize", "letterbox")


@dataclass(frozen=True)
class ModelInfo:
    """What the edge needs from the metadata, typed."""

    path: Path  # the metadata file
    model_id: str
    xml: Path
    bin: Path
    precision: str
    width: int
    height: int
    labels: Tuple[str, ...]
    classes: int
    num: int
    coords: int
    anchors: Tuple[float, ...]
    softmax: bool
    resize_mode: str
    conf_threshold: float
    nms_threshold: float
    raw: Dict[str, Any]
    # the resize arithmetic the model's numbers were measured with (edge_app.preprocess);
    # metadata from before the field keeps the behaviour it was deployed with
    interpolation: str = LEGACY_INTERPOLATION


def _need(data: Dict[str, Any], path: str, kind, where: str):
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise InputError(f"model metadata lacks '{path}'", where,
                             "re-export the model with `model-tools export`")
        node = node[key]
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or (kind in (int, float) and isinstance(node, bool)):
        raise InputError(f"model metadata '{path}' has the wrong type ({type(node).__name__})",
                         where, "re-export the model with `model-tools export`")
    return node


def _bad(what: str, where: str, key: str) -> InputError:
    return InputError(f"model metadata '{key}' {what}", where, "re-export the model with `model-tools export`")


def _plain_name(value: str) -> bool:
    return bool(value) and value not in (".", "..") and not any(c in value for c in "/\\\0")


MAX_SIDE = 16384  # network input side, far above any YOLOv2
MAX_CLASSES = 100000
MAX_ANCHORS = 1000
MAX_ANCHOR = 1000.0  # an anchor side in grid cells; NaN fails the comparison too
SHA256_DIGITS = frozenset("0123456789abcdef")


def validate(data: Dict[str, Any], where: str) -> None:
    """Check every field the edge relies on, types and values; raise InputError naming the
    first bad one. What passes here cannot crash the decode or the engine later."""
    version = _need(data, "schema_version", str, where)
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(f"model metadata has schema version {version}; this edge_app reads "
                         f"{SCHEMA_VERSION.split('.')[0]}.x", where,
                         "update edge_app on the device, or export with a matching model-tools")
    for key, kind in (("model_id", str), ("ir.xml", str), ("ir.bin", str), ("ir.precision", str),
                      ("ir.xml_sha256", str), ("ir.bin_sha256", str),
                      ("input.width", int), ("input.height", int), ("region.classes", int),
                      ("region.num", int), ("region.coords", int), ("region.anchors", list),
                      ("region.softmax", bool), ("labels", list), ("resize_mode", str),
                      ("thresholds.confidence", float), ("thresholds.nms", float),
                      ("output.shape", list)):
        _need(data, key, kind, where)
    if not data["model_id"] or any(ord(c) < 32 for c in data["model_id"]):
        raise _bad("is empty or holds control characters", where, "model_id")
    ir = data["ir"]
    for key, suffix in (("xml", ".xml"), ("bin", ".bin")):
        if not _plain_name(ir[key]) or not ir[key].endswith(suffix):
            raise _bad(f"must be a {suffix} file name in the model's folder, found {ir[key][:80]!r}",
                       where, f"ir.{key}")
        digest = ir[f"{key}_sha256"]
        if len(digest) != 64 or not set(digest) <= SHA256_DIGITS:
            raise _bad("is not a sha256 (64 hex digits)", where, f"ir.{key}_sha256")
    if ir["precision"] not in ("FP16", "FP32"):
        raise _bad(f"is {ir['precision'][:20]!r}, not FP16 or FP32", where, "ir.precision")
    for key in ("width", "height"):
        if not 1 <= data["input"][key] <= MAX_SIDE:
            raise _bad(f"is {data['input'][key]}, not between 1 and {MAX_SIDE}", where, f"input.{key}")
    region = data["region"]
    if region["coords"] != 4:
        raise _bad(f"is {region['coords']}; YOLOv2 boxes have 4", where, "region.coords")
    if not 1 <= region["num"] <= MAX_ANCHORS:
        raise _bad(f"is {region['num']}, not between 1 and {MAX_ANCHORS}", where, "region.num")
    if not 1 <= region["classes"] <= MAX_CLASSES:
        raise _bad(f"is {region['classes']}, not between 1 and {MAX_CLASSES}", where, "region.classes")
    if len(region["anchors"]) != 2 * region["num"]:
        raise InputError(f"model metadata has {len(region['anchors'])} anchor values for "
                         f"num={region['num']}", where, "re-export the model")
    for index, value in enumerate(region["anchors"]):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_ANCHOR:
            raise _bad(f"value {index} is {value!r}, not a positive number up to {MAX_ANCHOR} grid cells",
                       where, "region.anchors")
    labels = data["labels"]
    if len(labels) != region["classes"]:
        raise InputError(f"model metadata has {len(labels)} labels for "
                         f"{region['classes']} classes", where, "re-export with the right .names")
    seen = set()
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip() or any(ord(c) < 32 for c in label):
            raise _bad(f"entry {index} ({str(label)[:40]!r}) is not a class name", where, "labels")
        if label in seen:
            raise _bad(f"name '{label}' appears twice", where, "labels")
        seen.add(label)
    if data["resize_mode"] not in RESIZE_MODES:
        raise InputError(f"unknown resize_mode '{data['resize_mode'][:40]}'", where,
                         f"use one of {', '.join(RESIZE_MODES)}")
    interpolation = data.get("interpolation", LEGACY_INTERPOLATION)
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"unknown interpolation {interpolation!r}", where,
                         f"use one of {', '.join(INTERPOLATIONS)} (or update edge_app on the device)")
    for key in ("confidence", "nms"):
        value = data["thresholds"][key]
        if not (math.isfinite(value) and 0 < value < 1):
            raise _bad(f"is {value}, not a number between 0 and 1 (exclusive)", where, f"thresholds.{key}")
    shape = data["output"]["shape"]
    channels = (region["classes"] + region["coords"] + 1) * region["num"]
    if (len(shape) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
            or shape[:2] != [1, channels] or shape[2] > data["input"]["height"] or shape[3] > data["input"]["width"]):
        raise InputError(f"output shape {str(shape)[:80]} does not fit {region['num']} anchors x "
                         f"({region['classes']} classes + 5) = [1, {channels}, grid h, grid w]", where,
                         "re-export the model")


def check_ir(info: "ModelInfo", input_shape, output_shape) -> None:
    """The IR's own tensor shapes must be the ones the metadata describes (a metadata edited or
    copied from another export would otherwise decode garbage or fail at the first frame)."""
    want_in = [1, info.height, info.width, 3]
    want_out = list(info.raw["output"]["shape"])
    for what, found, want in (("input", input_shape, want_in), ("output", output_shape, want_out)):
        if [int(d) for d in found] != want:
            raise InputError(f"the model's {what} shape is {[int(d) for d in found]} but its metadata "
                             f"says {want}", str(info.path),
                             "the .json belongs to another export: copy the .xml, .bin and .json "
                             "of one export together")


def find(path: Union[str, Path]) -> Path:
    """Accept the metadata file itself, or a folder holding exactly one."""
    path = Path(path)
    if path.is_dir():
        candidates: List[Path] = []
        skipped: List[str] = []
        for json_path in sorted(path.glob("*.json")):
            try:
                data = load_json(json_path, "JSON file")
            except InputError as exc:
                skipped.append(f"{json_path.name}: {exc.what}")
                continue
            if isinstance(data, dict) and "schema_version" in data:
                candidates.append(json_path)
        if len(candidates) != 1:
            raise InputError(f"expected one model metadata file in the folder, found "
                             f"{len(candidates)}" + "".join(f"\n    unreadable {s}" for s in skipped[:3]),
                             str(path), "point at the <model>.json written by `model-tools export`")
        return candidates[0]
    if not path.exists():
        raise InputError("model not found", str(path),
                         "give the folder or the .json written by `model-tools export`")
    return path


def sha256_file(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: Union[str, Path]) -> ModelInfo:
    path = find(path)
    where = str(path)
    data = load_json(path, "model metadata", "re-export the model")
    if not isinstance(data, dict):
        raise InputError("model metadata must be a JSON object", where, "re-export the model")
    validate(data, where)
    folder = path.parent
    xml, bin_ = folder / data["ir"]["xml"], folder / data["ir"]["bin"]
    for file, key in ((xml, "xml_sha256"), (bin_, "bin_sha256")):
        try:
            digest = sha256_file(file)
        except OSError as exc:
            raise InputError(f"model file {file.name} named by the metadata cannot be read: "
                             f"{exc.strerror or exc}", where,
                             "copy the .xml, .bin and .json of the export together") from None
        if digest != data["ir"][key]:
            raise InputError(f"model file {file.name} is not the one exported with this metadata "
                             "(its sha256 differs: truncated, corrupted or replaced)", str(file),
                             "copy the .xml, .bin and .json of one export again")
    region = data["region"]
    return ModelInfo(path, data["model_id"], xml, bin_, data["ir"]["precision"],
                     data["input"]["width"], data["input"]["height"], tuple(data["labels"]),
                     region["classes"], region["num"], region["coords"],
                     tuple(float(a) for a in region["anchors"]), region["softmax"],
                     data["resize_mode"], float(data["thresholds"]["confidence"]),
                     float(data["thresholds"]["nms"]), data,
                     data.get("interpolation", LEGACY_INTERPOLATION))
