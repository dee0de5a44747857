"""An FP16 IR's weights widened to FP32 once, into a file in the daemon's cache folder (never the
model's folder, which a device keeps read-only), for the CPU plugin of OpenVINO 2022.x to map
instead of holding them in its own memory.

An FP16 export stores each weight tensor as an f16 Const feeding a Convert to f32 marked
"decompression" (the MYRIAD plugin takes the f16 as it is). The CPU plugin of 2022.1/2022.3 folds
each pair into a new FP32 constant in the model it keeps for the compiled model's life: 60 MiB of
anonymous memory for a 416 yolov2-tiny-voc, beside the graph's copy of the constants (one per
process with two streams, none with one stream) and the repacked weights inference reads. Given
the same constants as FP32 already, in a buffer that maps this file read-only, the kept model
and, with one stream, the graph share that mapping: clean file pages, read once at
compile time and handed back to the kernel after (filepages.py). Current OpenVINO maps the .bin
itself and shares it at any stream count, so the adapter widens only for 2022.x
(benchmarks/bench_rss.py has the figures).

`widened_layout` is the pure part: the new IR text and where each constant's bytes go.
"""
from __future__ import annotations

import hashlib
import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from edge_app.atomic import atomic_path
from edge_app.errors import InputError
from edge_app.metadata import ModelInfo

log = logging.getLogger(__name__)

ALIGN = 64  # each constant starts on a cache line of the mapped file (the plugin wants >= 4)

# (offset in the IR's .bin, size there, offset in the widened file, widen f16 -> f32)
Piece = Tuple[int, int, int, bool]


def widened_layout(xml: bytes) -> Tuple[bytes, List[Piece], int]:
    """(the IR's XML with every f16 Const that feeds a decompression Convert made f32 and the
    Convert removed, the pieces of the widened weights file in order, its size in bytes).
    Other constants are copied as they are. An IR with nothing to widen gives no pieces."""
    root = ET.fromstring(xml)
    layers = root.find("layers")
    edges = root.find("edges")
    if layers is None or edges is None:
        return xml, [], 0
    by_id = {layer.get("id"): layer for layer in layers.findall("layer")}
    feeds = {}  # (to-layer) -> list of edges into it
    for edge in edges.findall("edge"):
        feeds.setdefault(edge.get("to-layer"), []).append(edge)
    widen = {}  # Const id -> Convert id
    for layer in by_id.values():
        if layer.get("type") != "Convert" or layer.find("rt_info/attribute[@name='decompression']") is None:
            continue
        data, inputs = layer.find("data"), feeds.get(layer.get("id"), [])
        source = by_id.get(inputs[0].get("from-layer")) if len(inputs) == 1 else None
        if (data is None or data.get("destination_type") != "f32" or source is None
                or source.get("type") != "Const" or source.find("data").get("element_type") != "f16"):
            continue
        users = [e for e in edges.findall("edge") if e.get("from-layer") == source.get("id")]
        if len(users) == 1:  # the Const is this Convert's alone
            widen[source.get("id")] = layer.get("id")
    if not widen:
        return xml, [], 0
    pieces: List[Piece] = []
    size = 0
    for layer in layers.findall("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        offset, length = int(data.get("offset")), int(data.get("size"))
        wide = layer.get("id") in widen
        size = -(-size // ALIGN) * ALIGN
        pieces.append((offset, length, size, wide))
        data.set("offset", str(size))
        if wide:
            length *= 2
            data.set("element_type", "f32")
            data.set("size", str(length))
            layer.find("output/port").set("precision", "FP32")
        size += length
    for const_id, convert_id in widen.items():
        convert = by_id[convert_id]
        out_port = convert.find("output/port").get("id")
        const_port = by_id[const_id].find("output/port").get("id")
        for edge in list(edges.findall("edge")):
            if edge.get("to-layer") == convert_id:
                edges.remove(edge)
            elif edge.get("from-layer") == convert_id and edge.get("from-port") == out_port:
                edge.set("from-layer", const_id)
                edge.set("from-port", const_port)
        layers.remove(convert)
    return ET.tostring(root), pieces, size


def widen_f16(data: np.ndarray) -> np.ndarray:
    """f16 bytes as f32 values, -0.0 made +0.0. The CPU plugin of 2022.x takes any f32 other than
    +0.0 whose exponent bits are all 0 for a subnormal, -0.0 included, and copies a constant
    holding one into memory of its own instead of sharing it. Widened f16 has no subnormals, but
    weights rounded to f16 may hold -0.0; x * -0.0 adds to a sum what x * +0.0 does."""
    wide = data.view(np.float16).astype(np.float32)
    wide[wide == 0] = 0.0
    return wide


LAYOUT = "1"  # a change to widened_layout's output changes it: files of the old layout are not read


def cache_folder() -> Path:
    """The daemon's cache: systemd's CacheDirectory= (/var/cache/edge-app for the unit), else
    $XDG_CACHE_HOME/edge-app, else ~/.cache/edge-app."""
    given = os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-app"


def widened_path(info: ModelInfo) -> Path:
    """Where the widened weights of this exact IR live: in the cache folder, named with the
    hashes of its .xml and .bin (metadata.load checks them) and the layout's version, so those
    of another export are never picked up."""
    ir = info.raw["ir"]
    digest = hashlib.sha256(f"{ir.get('xml_sha256')} {ir.get('bin_sha256')} {LAYOUT}".encode()).hexdigest()
    return cache_folder() / f"{info.xml.stem}.fp32.{digest[:12]}.bin"


def widened_weights(info: ModelInfo) -> Optional[Tuple[bytes, Path]]:
    """(the widened IR's XML, the path of its weights file), writing the file if it is not there
    yet; None if the IR has nothing to widen, is damaged (OpenVINO reading it as it is then says
    how), or the file cannot be written (no writable cache folder, a full disk: the
    caller loads the IR as it is, the weights then in OpenVINO's memory)."""
    try:
        xml, pieces, size = widened_layout(info.xml.read_bytes())
    except (ET.ParseError, AttributeError, TypeError, ValueError):  # OpenVINO's reading says what is wrong
        return None
    bin_size = info.bin.stat().st_size
    if not pieces or any(offset + length > bin_size for offset, length, _, _ in pieces):
        return None  # nothing to widen, or a .bin too short for the IR: OpenVINO's error again
    target = widened_path(info)
    if target.exists() and target.stat().st_size == size:
        return xml, target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source = np.memmap(info.bin, np.uint8, "r")
        with atomic_path(target) as tmp, open(tmp, "wb") as out:
            for offset, length, at, wide in pieces:
                out.seek(at)
                chunk = source[offset:offset + length]
                out.write((widen_f16(chunk) if wide else chunk).tobytes())
            out.truncate(size)
        del source
    except (OSError, InputError) as exc:
        log.warning("cannot write the model's weights as FP32 in %s (%s): the CPU plugin keeps "
                    "them in memory instead, 60 MiB more for a 416 yolov2-tiny-voc", target.parent, exc)
        return None
    log.info("weights widened to FP32 for the CPU plugin: %s (%.0f MiB)", target.name, size / 2 ** 20)
    return xml, target
