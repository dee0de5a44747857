"""Darknet .cfg files: parse, validate and lay out a YOLOv2 network.

The parser follows darknet's own reading rules (all whitespace removed from a line, `#` and
`;` start comments, `[section]` headers, `key=value` options) and keeps the line number of
every section and option, so that every validation error can say file:line and how to fix it.

`plan()` turns the sections into typed layer specs with input/output shapes (C, H, W). Those
specs are what the weights reader sizes arrays by and what the exporter builds from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from edge_app.errors import InputError, did_you_mean

Shape = Tuple[int, int, int]  # (channels, height, width)

# darknet accepts these short names for the same layer types
SECTION_ALIASES = {
    "network": "net",
    "conv": "convolutional",
    "max": "maxpool",
}

SUPPORTED = ("net", "convolutional", "maxpool", "route", "reorg", "region")

# Layer types darknet knows but this exporter does not build (YOLOv2 region models only).
KNOWN_UNSUPPORTED = (
    "yolo", "upsample", "shortcut", "connected", "dropout", "softmax", "avgpool", "local",
    "crnn", "rnn", "gru", "lstm", "crop", "cost", "detection", "batchnorm", "normalization",
    "deconvolutional", "logistic", "l2norm", "iseg", "activation", "scale_channels",
    "sam", "gaussian_yolo", "conv_lstm", "contrastive", "implicit", "empty", "silence",
)

ACTIVATIONS = ("leaky", "linear", "relu", "logistic")

# Sanity limits far above any YOLOv2 (yolov2-voc: 51M parameters, 416x416, largest activation
# 5.5M values) and below what would exhaust a training box: a cfg beyond them is a typo, and
# `random-weights` or `export` would otherwise try to allocate gigabytes before failing.
MAX_PARAMS = 1 << 28  # 1 GiB of float32 weights
MAX_ACTIVATION = 1 << 28  # values in one layer's output
MAX_DIGITS = 12  # an integer option longer than this is a typo

# Options that change inference when set to a non-default value this exporter cannot honour.
# section -> {option: default value as darknet reads it}
UNSUPPORTED_OPTION_VALUES = {
    "convolutional": {"groups": "1", "dilation": "1", "binary": "0", "xnor": "0",
                      "antialiasing": "0", "flipped": "0", "share_index": None,
                      "deform": "0", "assisted_excitation": "0"},
    "maxpool": {"maxpool_depth": "0", "antialiasing": "0", "out_channels": None},
    "route": {"groups": "1", "group_id": "0"},
    "reorg": {"reverse": "0", "flatten": "0", "extra": "0"},
    "region": {"background": "0", "tree": None, "map": None, "coords": "4",
               "softmax_tree": None},
}

# Options a layer uses for inference, plus the training-only ones darknet reads for it.
KNOWN_OPTIONS = {
    "net": {
        "batch", "subdivisions", "width", "height", "channels", "momentum", "decay", "angle",
        "saturation", "exposure", "hue", "learning_rate", "burn_in", "max_batches", "policy",
        "steps", "scales", "step", "gamma", "power", "letter_box", "mosaic", "inputs",
        "max_crop", "min_crop", "aspect", "flip", "blur", "gaussian_noise", "mixup", "cutmix",
        "track", "time_steps", "adam", "B1", "B2", "eps", "random", "burn_in_power",
        "learning_rate_min", "sgdr_cycle", "sgdr_mult", "seq_scales", "label_smooth_eps",
        "resize_step", "attention", "adversarial_lr", "max_chart_loss", "loss_scale",
        "dynamic_minibatch", "optimized_memory", "workspace_size_limit_MB", "center",
        "contrastive", "unsupervised", "equidistant_point", "mosaic_bound", "ema_alpha",
    },
    "convolutional": {"filters", "size", "stride", "stride_x", "stride_y", "pad", "padding",
                      "activation", "batch_normalize", "stopbackward", "dontload",
                      "dontloadscales", "learning_rate", "train", "cbn"},
    "maxpool": {"size", "stride", "stride_x", "stride_y", "padding", "train"},
    "route": {"layers", "stopbackward"},
    "reorg": {"stride"},
    "region": {"anchors", "classes", "num", "jitter", "rescore", "object_scale",
               "noobject_scale", "class_scale", "coord_scale", "absolute", "thresh", "random",
               "bias_match", "max", "focal_loss", "resize", "log", "sqrt", "max_delta",
               "nms_kind", "beta_nms", "iou_thresh", "mask"},
}
for _section, _opts in UNSUPPORTED_OPTION_VALUES.items():
    KNOWN_OPTIONS.setdefault(_section, set()).update(_opts)
KNOWN_OPTIONS["region"].add("softmax")


@dataclass
class Section:
    """One [section] of a cfg file, with the line numbers needed for error messages."""

    kind: str
    path: str
    line: int
    options: Dict[str, str] = field(default_factory=dict)
    option_lines: Dict[str, int] = field(default_factory=dict)

    def where(self, key: Optional[str] = None) -> str:
        line = self.option_lines.get(key, self.line) if key else self.line
        return f"{self.path}:{line}"

    def _raw(self, key: str, default: Optional[str]) -> str:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise InputError(
                f"[{self.kind}] needs option '{key}'", self.where(),
                f"add a line '{key}=<value>' to the [{self.kind}] section that starts here")
        return default

    def int(self, key: str, default: Optional[int] = None) -> int:
        raw = self._raw(key, None if default is None else str(default))
        return _int(raw, key, self.where(key))

    def str(self, key: str, default: Optional[str] = None) -> str:
        return self._raw(key, default)

    def floats(self, key: str) -> List[float]:
        raw = self._raw(key, None)
        try:
            values = [float(v) for v in raw.split(",") if v != ""]
        except ValueError:
            raise InputError(f"option '{key}' must be a comma-separated list of numbers, "
                             f"found '{_short(raw)}'", self.where(key)) from None
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"option '{key}' holds a value that is not a finite number: "
                             f"'{_short(raw)}'", self.where(key), "write ordinary decimal numbers")
        return values

    def ints(self, key: str) -> List[int]:
        raw = self._raw(key, None)
        return [_int(v, key, self.where(key)) for v in raw.split(",") if v != ""]


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _int(raw: str, key: str, where: str) -> int:
    digits = raw.lstrip("+-")
    if not digits.isdigit() or not digits.isascii():
        raise InputError(f"option '{key}' must be an integer, found '{_short(raw)}'", where,
                         f"write '{key}=<integer>'")
    if len(digits) > MAX_DIGITS:
        raise InputError(f"option '{key}' is an integer of {len(digits)} digits", where,
                         f"write a sensible value for '{key}'")
    return int(raw)


def parse_text(text: str, path: str = "<cfg>") -> List[Section]:
    """Split cfg text into sections, following darknet's line rules."""
    sections: List[Section] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = "".join(raw_line.split())  # darknet strips every whitespace character
        if not line or line[0] in "#;":
            continue
        if "#" in line:  # darknet has no inline comments; a trailing '# ...' is clearly one
            line = line[: line.index("#")]
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise InputError(f"malformed section header '{raw_line.strip()}'",
                                 f"{path}:{number}", "write the header as [name], e.g. [convolutional]")
            kind = line[1:-1].lower()
            sections.append(Section(SECTION_ALIASES.get(kind, kind), path, number))
            continue
        if not sections:
            raise InputError(f"option '{raw_line.strip()}' appears before any [section]",
                             f"{path}:{number}", "start the file with a [net] section")
        if "=" not in line:
            raise InputError(f"expected 'key=value', found '{raw_line.strip()}'", f"{path}:{number}",
                             "write options as key=value, or comment the line out with '#'")
        key, value = line.split("=", 1)
        section = sections[-1]
        if key in section.options:
            raise InputError(f"option '{key}' is set twice in this [{section.kind}] section "
                             f"(first at line {section.option_lines[key]})", f"{path}:{number}",
                             "keep one of the two lines")
        section.options[key] = value
        section.option_lines[key] = number
    return sections


# ---------------------------------------------------------------------------------------------
# Typed layer specs


@dataclass(frozen=True)
class Conv:
    index: int
    line: int
    in_shape: Shape
    out_shape: Shape
    filters: int
    size: int
    stride: int
    pad: int
    batch_normalize: bool
    activation: str

    @property
    def weight_count(self) -> int:
        return self.filters * self.in_shape[0] * self.size * self.size

    @property
    def param_count(self) -> int:
        """Floats this layer holds in a weights file."""
        return self.filters * (4 if self.batch_normalize else 1) + self.weight_count


@dataclass(frozen=True)
class MaxPool:
    index: int
    line: int
    in_shape: Shape
    out_shape: Shape
    size: int
    stride: int
    padding: int  # total padding; darknet puts padding//2 before and the rest after

    param_count = 0


@dataclass(frozen=True)
class Route:
    index: int
    line: int
    in_shape: Shape
    out_shape: Shape
    sources: Tuple[int, ...]  # absolute layer indices, concatenated along channels

    param_count = 0


@dataclass(frozen=True)
class Reorg:
    index: int
    line: int
    in_shape: Shape
    out_shape: Shape
    stride: int

    param_count = 0


@dataclass(frozen=True)
class Region:
    index: int
    line: int
    in_shape: Shape
    out_shape: Shape
    classes: int
    num: int
    coords: int
    anchors: Tuple[float, ...]
    softmax: bool

    param_count = 0


Layer = Union[Conv, MaxPool, Route, Reorg, Region]


@dataclass(frozen=True)
class Network:
    """A validated YOLOv2 network: input size and the layer specs in darknet order."""

    path: str
    width: int
    height: int
    channels: int
    letter_box: bool
    layers: Tuple[Layer, ...]

    @property
    def region(self) -> Region:
        return self.layers[-1]  # validated: the last layer is [region]

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    def param_count_upto(self, n_layers: int) -> int:
        return sum(layer.param_count for layer in self.layers[:n_layers])


def load(path: Union[str, Path]) -> Network:
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read cfg file: {exc.strerror}", path,
                         "check the path given with --cfg") from None
    return plan(parse_text(text, path), path)


def plan(sections: List[Section], path: str = "<cfg>") -> Network:
    """Validate sections and compute every layer's shapes."""
    if not sections or sections[0].kind != "net":
        where = sections[0].where() if sections else path
        raise InputError("the first section must be [net]", where,
                         "start the cfg with a [net] section holding width, height and channels")
    for section in sections:
        _check_section(section, first=section is sections[0])

    net = sections[0]
    width, height, channels = net.int("width"), net.int("height"), net.int("channels", 3)
    if width <= 0 or height <= 0:
        raise InputError(f"network size {width}x{height} must be positive", net.where("width"))
    if channels != 3:
        raise InputError(f"channels={channels}: only 3-channel (colour) networks are supported",
                         net.where("channels"), "set channels=3")

    layers: List[Layer] = []
    shape: Shape = (channels, height, width)
    params = 0
    for index, section in enumerate(sections[1:]):
        layer = _make_layer(section, index, shape, layers)
        layers.append(layer)
        shape = layer.out_shape
        params += layer.param_count
        values = shape[0] * shape[1] * shape[2]
        if params > MAX_PARAMS or values > MAX_ACTIVATION:
            what = (f"{params} parameters up to here" if params > MAX_PARAMS
                    else f"an output of {shape[2]}x{shape[1]}x{shape[0]} = {values} values")
            raise InputError(f"[{section.kind}] gives the network {what}, beyond this tool's limit "
                             f"of {MAX_PARAMS if params > MAX_PARAMS else MAX_ACTIVATION} (YOLOv2 "
                             "needs about 50M parameters)", section.where(),
                             "check filters=, width= and height= for a typo")

    _check_region_model(sections, layers, width, height, path)
    return Network(path, width, height, channels, net.int("letter_box", 0) == 1, tuple(layers))


def _check_section(section: Section, first: bool) -> None:
    if section.kind not in SUPPORTED:
        if section.kind in KNOWN_UNSUPPORTED:
            raise InputError(
                f"layer type [{section.kind}] is not supported: this exporter builds YOLOv2 "
                f"region models ({', '.join('[' + s + ']' for s in SUPPORTED[1:])})",
                section.where(), "use a YOLOv2 / Tiny YOLOv2 cfg")
        raise InputError(f"unknown section [{section.kind}]{did_you_mean(section.kind, SUPPORTED)}",
                         section.where(), "fix the section name; darknet would refuse this cfg too")
    if section.kind == "net" and not first:
        raise InputError("[net] may only appear once, as the first section", section.where())
    for key, default in UNSUPPORTED_OPTION_VALUES.get(section.kind, {}).items():
        if key in section.options and (default is None or section.options[key] != default):
            raise InputError(
                f"[{section.kind}] option {key}={section.options[key]} is not supported by the "
                "exporter", section.where(key),
                f"remove the line{'' if default is None else f' or set {key}={default}'}")
    known = KNOWN_OPTIONS[section.kind]
    for key in section.options:
        if key not in known:
            raise InputError(f"unknown option '{key}' in [{section.kind}]{did_you_mean(key, known)}",
                             section.where(key), "fix the spelling or remove the line")


def _make_layer(section: Section, index: int, shape: Shape, previous: List[Layer]) -> Layer:
    c, h, w = shape
    kind = section.kind
    if kind == "convolutional":
        filters = section.int("filters", 1)
        size = section.int("size", 1)
        stride = section.int("stride", 1)
        if filters <= 0 or size <= 0 or stride <= 0:
            raise InputError("filters, size and stride must be positive", section.where())
        if "stride_x" in section.options or "stride_y" in section.options:
            sx, sy = section.int("stride_x", stride), section.int("stride_y", stride)
            if sx != stride or sy != stride:
                raise InputError("different strides in x and y are not supported",
                                 section.where("stride_x" if "stride_x" in section.options else "stride_y"),
                                 "use stride= alone")
        pad = size // 2 if section.int("pad", 0) else section.int("padding", 0)
        if pad < 0:
            raise InputError(f"padding={pad} must not be negative", section.where("padding"),
                             "use pad=1 (same padding) or padding=<n> with n >= 0")
        activation = section.str("activation", "logistic")
        if activation not in ACTIVATIONS:
            raise InputError(f"activation '{activation}' is not supported"
                             f"{did_you_mean(activation, ACTIVATIONS)}", section.where("activation"),
                             f"use one of: {', '.join(ACTIVATIONS)}")
        out_h = (h + 2 * pad - size) // stride + 1
        out_w = (w + 2 * pad - size) // stride + 1
        if out_h <= 0 or out_w <= 0:
            raise InputError(f"a {size}x{size} convolution does not fit its {w}x{h} input",
                             section.where(), "use a larger network size or a smaller kernel")
        return Conv(index, section.line, shape, (filters, out_h, out_w), filters, size, stride, pad,
                    section.int("batch_normalize", 0) == 1, activation)
    if kind == "maxpool":
        stride = section.int("stride", 1)
        size = section.int("size", stride)
        padding = section.int("padding", size - 1)
        if size <= 0 or stride <= 0:
            raise InputError(f"maxpool size={size} and stride={stride} must be positive",
                             section.where("size" if size <= 0 else "stride"),
                             "use e.g. size=2 stride=2 (halves the grid) or size=2 stride=1")
        if padding < 0:
            raise InputError(f"maxpool padding={padding} must not be negative", section.where("padding"),
                             "remove the padding line (darknet's default is size-1)")
        if "stride_x" in section.options or "stride_y" in section.options:
            if section.int("stride_x", stride) != stride or section.int("stride_y", stride) != stride:
                raise InputError("different strides in x and y are not supported", section.where(),
                                 "use stride= alone")
        out_h = (h + padding - size) // stride + 1
        out_w = (w + padding - size) // stride + 1
        if out_h <= 0 or out_w <= 0:
            raise InputError(f"a size-{size} maxpool does not fit its {w}x{h} input", section.where())
        return MaxPool(index, section.line, shape, (c, out_h, out_w), size, stride, padding)
    if kind == "route":
        sources = []
        for ref in section.ints("layers"):
            src = index + ref if ref < 0 else ref
            if not 0 <= src < index:
                raise InputError(f"route refers to layer {ref}, which resolves to {src}; "
                                 f"only layers 0..{index - 1} come before this one",
                                 section.where("layers"), "use negative offsets (-1 = previous layer)")
            sources.append(src)
        if not sources:
            raise InputError("route needs at least one layer", section.where("layers"))
        shapes = [previous[s].out_shape for s in sources]
        if len({s[1:] for s in shapes}) != 1:
            raise InputError(f"route joins layers of different sizes "
                             f"{', '.join(f'{s[2]}x{s[1]}' for s in shapes)}",
                             section.where("layers"), "route layers with the same width and height")
        return Route(index, section.line, shape, (sum(s[0] for s in shapes),) + shapes[0][1:],
                     tuple(sources))
    if kind == "reorg":
        stride = section.int("stride", 1)
        if stride <= 0 or h % stride or w % stride:
            raise InputError(f"reorg stride {stride} does not divide its {w}x{h} input",
                             section.where("stride"), "use a network size divisible by 32")
        return Reorg(index, section.line, shape, (c * stride * stride, h // stride, w // stride), stride)
    # region
    classes = section.int("classes", 20)
    num = section.int("num", 1)
    coords = section.int("coords", 4)
    anchors = tuple(section.floats("anchors")) if "anchors" in section.options else ()
    if classes <= 0 or num <= 0:
        raise InputError("classes and num must be positive", section.where())
    bad = [a for a in anchors if not a > 0]
    if bad:
        raise InputError(f"anchor value {bad[0]:g} is not positive: anchors are box widths and "
                         "heights in grid cells", section.where("anchors"),
                         "write positive width,height pairs (`model-tools anchors` computes them)")
    if len(anchors) != 2 * num:
        raise InputError(f"region has num={num} but {len(anchors)} anchor values; it needs "
                         f"{2 * num} (a width and a height per anchor)",
                         section.where("anchors" if anchors else "num"),
                         "give num width,height pairs in anchors=, or change num=")
    return Region(index, section.line, shape, shape, classes, num, coords, anchors,
                  section.int("softmax", 0) == 1)


def _check_region_model(sections: List[Section], layers: List[Layer], width: int, height: int, path: str) -> None:
    net = sections[0]
    regions = [layer for layer in layers if isinstance(layer, Region)]
    if not regions:
        raise InputError("the cfg has no [region] layer", path,
                         "end the cfg with a YOLOv2 [region] section")
    region = layers[-1]
    if not isinstance(region, Region) or len(regions) > 1:
        raise InputError("[region] must be the last section, and there can be only one",
                         f"{path}:{regions[0].line}")
    before = layers[-2] if len(layers) >= 2 else None
    if not isinstance(before, Conv):
        raise InputError("the layer before [region] must be a [convolutional] layer",
                         f"{path}:{region.line}")
    expected = (region.classes + region.coords + 1) * region.num
    if before.filters != expected:
        raise InputError(
            f"the last [convolutional] has filters={before.filters}, but the [region] below needs "
            f"(classes + coords + 1) * num = ({region.classes} + {region.coords} + 1) * {region.num} "
            f"= {expected}", sections[before.index + 1].where("filters"),
            f"set filters={expected} in the [convolutional] section at line {before.line}")
    if before.activation != "linear":
        raise InputError("the convolution feeding [region] must use activation=linear "
                         "(the region layer applies its own logistic and softmax)",
                         f"{path}:{before.line}", "set activation=linear")
    total = 1
    for layer in layers:
        if isinstance(layer, (Conv, MaxPool)):
            total *= layer.stride
    for layer in layers:
        if isinstance(layer, (Conv, MaxPool)) and layer.stride > 1:
            _, h, w = layer.in_shape
            if h % layer.stride or w % layer.stride:
                raise InputError(
                    f"network size {width}x{height} is not a multiple of {total}, the total stride "
                    f"of this network: the stride-{layer.stride} layer at line {layer.line} gets a "
                    f"{w}x{h} input and its output cells would not line up with the image",
                    net.where("width"),
                    f"use width and height that are multiples of {total} (e.g. "
                    f"{-(-width // total) * total}x{-(-height // total) * total})")
