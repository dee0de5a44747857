"""Build an OpenVINO model straight from a darknet cfg + weights, and save it as IR + metadata.

No TensorFlow, darkflow or ONNX in between: each darknet layer becomes the OpenVINO ops that
compute exactly what darknet computes.

- input: u8 image at network size, NHWC, BGR (what OpenCV and picamera2's RGB888 give). The
  u8 → float conversion, the BGR → RGB swap and the /255 happen inside the model; when the
  first layer is a convolution the swap and the scale are folded into its weights for free.
- convolutional: batch norm folded into weights and bias with the normalisation of the darknet
  fork that wrote the file (pjreddie: (x-m)/(sqrt(v)+1e-6); AlexeyAB: (x-m)/sqrt(v+1e-5)).
- maxpool: darknet's padding (size-1 in total, padding//2 before, the rest after; padded cells
  never win), so size 2 / stride 1 keeps 13x13 as darknet does.
- route: concatenation along channels. reorg: darknet's own (idiosyncratic) index shuffle.
- region: not applied; the raw output of the last convolution is the model output, decoded
  on the host by edge_app.decode.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from edge_app import metadata as meta
from edge_app.atomic import check_output_folder, prepare_output_dir, write_text
from edge_app.errors import InputError
from edge_app.metadata import sha256_file  # one home for the IR hashes the edge verifies
from edge_app.preprocess import INTERPOLATIONS
from model_tools.cfg import Conv, MaxPool, Network, Region, Reorg, Route
from model_tools.weights import ConvParams, Weights
from model_tools.weights_header import resize_mode_for

LEAKY_SLOPE = 0.1  # darknet's leaky activation


def _ops():
    from edge_app.runtime import import_openvino

    import_openvino()
    import openvino.opset8 as ops  # current OpenVINO; the training box always has it
    return ops


def fold_batchnorm(params: ConvParams, fork: str) -> tuple:
    """Weights and bias of one convolution with its batch norm folded in (float64 maths)."""
    weights = params.weights.astype(np.float64)
    bias = params.biases.astype(np.float64)
    if params.scales is None:
        return weights, bias
    var = params.rolling_variance.astype(np.float64)
    if fork == "alexeyab":
        denom = np.sqrt(var + 1e-5)
    else:
        denom = np.sqrt(var) + 1e-6
    factor = params.scales.astype(np.float64) / denom
    weights *= factor[:, None, None, None]  # in place: the same products, no second array (4 → 1.5 ms a 1M model)
    bias = bias - params.rolling_mean.astype(np.float64) * factor
    return weights, bias


def reorg(ops, x, shape, stride: int):
    """darknet's reorg (forward=0 in reorg_cpu), written as reshape/transpose.

    darknet reads its c x h x w input as if it were (c/s²) x (h·s) x (w·s) and writes
    out[off, c2, j, i] = in'[c2, j·s + off // s, i·s + off % s]; the flat result is then read as
    (c·s²) x (h/s) x (w/s). This is not the space-to-depth of other frameworks.
    """
    c, h, w = shape
    s = stride
    c2 = c // (s * s)
    x = ops.reshape(x, ops.constant(np.array([1, c2, h, s, w, s], np.int64)), False)
    x = ops.transpose(x, ops.constant(np.array([0, 3, 5, 1, 2, 4], np.int64)))
    return ops.reshape(x, ops.constant(np.array([1, c * s * s, h // s, w // s], np.int64)), False)


def _weights(values: np.ndarray):
    """A float32 Constant straight from the array: opset's constant() goes through a Python list
    of every value (4 of yolov2-tiny-voc's 5.5 s export)."""
    from edge_app.runtime import import_openvino

    ov = import_openvino()

    return ov.op.Constant(np.ascontiguousarray(values, np.float32))


def build(net: Network, weights: Weights, input_type=np.uint8):
    """The OpenVINO model for a validated network and its weights (float32 constants).
    input_type float32 takes pixel values on the 0..255 scale without u8 rounding (evaluate's
    reference mode feeds darknet's own float input that way)."""
    from edge_app.runtime import import_openvino

    ov = import_openvino()

    ops = _ops()
    fork = weights.header.fork
    image = ops.parameter([1, net.height, net.width, net.channels], input_type, name="image")
    image.output(0).get_tensor().set_names({"image"})
    x = ops.convert(image, "f32")
    x = ops.transpose(x, ops.constant(np.array([0, 3, 1, 2], np.int64)))  # NHWC -> NCHW, still BGR
    first_is_conv = isinstance(net.layers[0], Conv)
    if not first_is_conv:
        x = ops.gather(x, ops.constant(np.array([2, 1, 0], np.int64)), ops.constant(np.int64(1)))
        x = ops.multiply(x, ops.constant(np.float32(1.0 / 255.0)))

    outputs: List = []
    for layer, params in zip(net.layers, weights.layers):
        if isinstance(layer, Conv):
            w, b = fold_batchnorm(params, fork)
            if layer.index == 0:
                # input is BGR in 0..255: take RGB's weights in BGR order and scale by 1/255
                w = w[:, ::-1, :, :] / 255.0
            x = ops.convolution(x, _weights(w), [layer.stride] * 2,
                                [layer.pad] * 2, [layer.pad] * 2, [1, 1])
            x = ops.add(x, _weights(b.reshape(1, -1, 1, 1)))
            if layer.activation == "leaky":
                x = ops.prelu(x, ops.constant(np.array([LEAKY_SLOPE], np.float32)))
            elif layer.activation == "relu":
                x = ops.relu(x)
            elif layer.activation == "logistic":
                x = ops.sigmoid(x)
        elif isinstance(layer, MaxPool):
            before = layer.padding // 2
            after = layer.padding - before
            x = ops.max_pool(x, [layer.stride] * 2, [1, 1], [before] * 2, [after] * 2,
                             [layer.size] * 2, "floor", "explicit").output(0)
        elif isinstance(layer, Route):
            parts = [outputs[s] for s in layer.sources]
            x = parts[0] if len(parts) == 1 else ops.concat(parts, 1)
        elif isinstance(layer, Reorg):
            x = reorg(ops, x, layer.in_shape, layer.stride)
        elif isinstance(layer, Region):
            pass  # decoded on the host
        outputs.append(x)

    region_raw = outputs[-1]
    region_raw.output(0).get_tensor().set_names({meta.OUTPUT_NAME})
    result = ops.result(region_raw)
    model = ov.Model([result], [image], Path(net.path).stem)
    return model


def default_resize_mode(net: Network, weights: Weights) -> str:
    """The preprocessing the weights were trained with (weights_header.resize_mode_for)."""
    return resize_mode_for(net, weights.header)


def bundle_darknet(cfg_path: str, weights_path: str, folder: Path, stem: str,
                   weights: Optional[Weights] = None) -> Dict:
    """Copy the darknet cfg + weights beside the IR: the device's OpenCV-DNN engine (no
    OpenVINO, or no usable plugin) reads them. Returns their metadata entry. `weights` read
    from weights_path (weights.read) are written from the bytes read, hashed once."""
    names = {"cfg": f"{stem}.darknet.cfg", "weights": f"{stem}.darknet.weights"}
    if weights is not None and weights.source is not None:
        (folder / names["weights"]).write_bytes(weights.source)
        weights_sha256 = weights.sha256
    else:
        weights_sha256 = _copy_hashed(weights_path, folder / names["weights"])
    return {**names, "cfg_sha256": _copy_hashed(cfg_path, folder / names["cfg"]), "weights_sha256": weights_sha256}


def _copy_hashed(source: Union[str, Path], target: Path) -> str:
    """Copy a file; the sha256 of the bytes copied, read once (a 63 MB checkpoint was read four
    times per export: copied, its copy hashed, and hashed twice more for the source entries)."""
    import hashlib

    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            dst.write(block)
    return digest.hexdigest()


def darknet_files(data: Dict) -> List[str]:
    darknet = data.get("darknet")
    return [darknet["cfg"], darknet["weights"]] if darknet else []


def export(net: Network, weights: Weights, names: List[str], out_dir: Union[str, Path], *,
           fp16: bool = True, resize_mode: Optional[str] = None, interpolation: str = "darknet",
           cfg_path: str = "",
           weights_path: str = "", conf_threshold: float = 0.25,
           nms_threshold: float = 0.45, bundle: bool = True) -> Dict:
    """Write <stem>.xml/.bin and <stem>.json into out_dir; return the metadata. weights_path:
    the file `weights` were read from (its bytes go into the bundle, its hash into the metadata).
    bundle=False leaves the darknet cfg + weights out (bundle_darknet: what a device without a
    usable OpenVINO runs): for IRs that are never deployed, such as evaluation's, whose copy of
    each checkpoint cost its size again on disk and a write per checkpoint (63 MB for VOC's).

    Files are built in a temporary folder and moved in one by one, the metadata last: a reader
    that finds the metadata finds the IR it describes (it also carries the IR's sha256).
    """
    from edge_app.runtime import import_openvino

    ov = import_openvino()

    out_dir = Path(out_dir)
    stem = Path(cfg_path or net.path).stem
    region = net.region
    if resize_mode is None:
        resize_mode = default_resize_mode(net, weights)
    if resize_mode not in meta.RESIZE_MODES:
        raise InputError(f"resize mode '{resize_mode}' is unknown", "--resize-mode",
                         f"use one of: {', '.join(meta.RESIZE_MODES)}")
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"interpolation '{interpolation}' is unknown", "--interpolation",
                         f"use one of: {', '.join(INTERPOLATIONS)}")
    started = time.perf_counter()
    check_output_folder(out_dir)  # before the (slow) build: a file there fails now
    model = build(net, weights)
    prepare_output_dir(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        ov.save_model(model, str(tmp / f"{stem}.xml"), compress_to_fp16=fp16)
        darknet = bundle_darknet(cfg_path, weights_path, tmp, stem, weights) \
            if bundle and cfg_path and weights_path else None
        # the source files' hashes: the bundle's copies are their bytes
        cfg_sha256 = darknet["cfg_sha256"] if darknet else sha256_file(cfg_path) if cfg_path else None
        weights_sha256 = darknet["weights_sha256"] if darknet else \
            (weights.sha256 or sha256_file(weights_path)) if weights_path else None
        data = {
            "schema_version": meta.SCHEMA_VERSION,
            "model_id": f"{stem}-{weights_sha256[:12]}" if weights_sha256 else stem,
            "ir": {"xml": f"{stem}.xml", "bin": f"{stem}.bin",
                   "precision": "FP16" if fp16 else "FP32",
                   "xml_sha256": sha256_file(tmp / f"{stem}.xml"),
                   "bin_sha256": sha256_file(tmp / f"{stem}.bin")},
            "input": {"name": "image", "width": net.width, "height": net.height, "channels": 3,
                      "layout": "NHWC", "color": "BGR", "dtype": "u8"},
            "output": {"name": meta.OUTPUT_NAME, "layout": "NCHW",
                       "shape": [1, region.in_shape[0], region.in_shape[1], region.in_shape[2]]},
            "region": {"classes": region.classes, "coords": region.coords, "num": region.num,
                       "anchors": [float(a) for a in region.anchors],
                       "softmax": region.softmax},
            "labels": names,
            "resize_mode": resize_mode,
            # darknet's own resize arithmetic by default: the one the weights were trained and
            # `detector map` measured with
            "interpolation": interpolation,
            "thresholds": {"confidence": conf_threshold, "nms": nms_threshold},
            "source": {"cfg": os.path.basename(cfg_path), "weights": os.path.basename(weights_path),
                       "cfg_sha256": cfg_sha256, "weights_sha256": weights_sha256,
                       "darknet_fork": weights.header.fork, "seen": weights.header.seen},
        }
        if darknet:
            data["darknet"] = darknet
        meta.validate(data, "export")  # the contract the edge will check, checked here first
        # drop the old metadata first: no moment where it describes IR files it did not hash
        (out_dir / f"{stem}.json").unlink(missing_ok=True)
        for name in (f"{stem}.xml", f"{stem}.bin", *darknet_files(data)):
            os.replace(tmp / name, out_dir / name)
        # strict JSON: NaN or Infinity never reach a reader (validate refused them already)
        write_text(out_dir / f"{stem}.json", json.dumps(data, indent=2, allow_nan=False) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data["export_seconds"] = time.perf_counter() - started
    return data
