"""The model metadata file: the contract between the training box and the edge.

`model-tools export` writes `<stem>.json` beside `<stem>.xml`/`<stem>.bin`; the edge reads it to
know how to feed the model and decode its output. The format is documented in
docs/model-metadata.md and described by edge_app/schemas/model-metadata.schema.json. A file with
a newer major schema version is refused rather than half-understood.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

from edge_app.errors import InputError
from edge_app.preprocess import INTERPOLATIONS, LEGACY_INTERPOLATION

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
    if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
        raise InputError(f"model metadata '{path}' has the wrong type ({type(node).__name__})",
                         where, "re-export the model with `model-tools export`")
    return node


def validate(data: Dict[str, Any], where: str) -> None:
    """Check every field the edge relies on; raise InputError naming the first bad one."""
    version = _need(data, "schema_version", str, where)
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(f"model metadata has schema version {version}; this edge_app reads "
                         f"{SCHEMA_VERSION.split('.')[0]}.x", where,
                         "update edge_app on the device, or export with a matching model-tools")
    for key, kind in (("model_id", str), ("ir.xml", str), ("ir.bin", str), ("ir.precision", str),
                      ("input.width", int), ("input.height", int), ("region.classes", int),
                      ("region.num", int), ("region.coords", int), ("region.anchors", list),
                      ("region.softmax", bool), ("labels", list), ("resize_mode", str),
                      ("thresholds.confidence", float), ("thresholds.nms", float)):
        _need(data, key, kind, where)
    region = data["region"]
    if len(region["anchors"]) != 2 * region["num"]:
        raise InputError(f"model metadata has {len(region['anchors'])} anchor values for "
                         f"num={region['num']}", where, "re-export the model")
    if len(data["labels"]) != region["classes"]:
        raise InputError(f"model metadata has {len(data['labels'])} labels for "
                         f"{region['classes']} classes", where, "re-export with the right .names")
    if data["resize_mode"] not in RESIZE_MODES:
        raise InputError(f"unknown resize_mode '{data['resize_mode']}'", where,
                         f"use one of {', '.join(RESIZE_MODES)}")
    interpolation = data.get("interpolation", LEGACY_INTERPOLATION)
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"unknown interpolation {interpolation!r}", where,
                         f"use one of {', '.join(INTERPOLATIONS)} (or update edge_app on the device)")
    expected = [1, (region["classes"] + region["coords"] + 1) * region["num"]]
    shape = data.get("output", {}).get("shape", expected)
    if list(shape[:2]) != expected:
        raise InputError(f"output shape {shape} does not fit {region['num']} anchors x "
                         f"({region['classes']} classes + 5)", where, "re-export the model")


def find(path: Union[str, Path]) -> Path:
    """Accept the metadata file itself, or a folder holding exactly one."""
    path = Path(path)
    if path.is_dir():
        candidates: List[Path] = []
        for json_path in sorted(path.glob("*.json")):
            try:
                if "schema_version" in json.loads(json_path.read_text(encoding="utf-8")):
                    candidates.append(json_path)
            except (OSError, ValueError):
                continue
        if len(candidates) != 1:
            raise InputError(f"expected one model metadata file in the folder, found "
                             f"{len(candidates)}", str(path),
                             "point at the <model>.json written by `model-tools export`")
        return candidates[0]
    if not path.exists():
        raise InputError("model not found", str(path),
                         "give the folder or the .json written by `model-tools export`")
    return path


def load(path: Union[str, Path]) -> ModelInfo:
    path = find(path)
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read model metadata: {exc.strerror}", where) from None
    except ValueError as exc:
        raise InputError(f"model metadata is not valid JSON: {exc}", where,
                         "re-export the model") from None
    if not isinstance(data, dict):
        raise InputError("model metadata must be a JSON object", where, "re-export the model")
    validate(data, where)
    folder = path.parent
    xml, bin_ = folder / data["ir"]["xml"], folder / data["ir"]["bin"]
    for file in (xml, bin_):
        if not file.exists():
            raise InputError(f"model file {file.name} named by the metadata is missing", where,
                             "copy the .xml, .bin and .json of the export together")
    region = data["region"]
    return ModelInfo(path, data["model_id"], xml, bin_, data["ir"]["precision"],
                     data["input"]["width"], data["input"]["height"], tuple(data["labels"]),
                     region["classes"], region["num"], region["coords"],
                     tuple(float(a) for a in region["anchors"]), region["softmax"],
                     data["resize_mode"], float(data["thresholds"]["confidence"]),
                     float(data["thresholds"]["nms"]), data,
                     data.get("interpolation", LEGACY_INTERPOLATION))
