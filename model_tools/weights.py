"""Darknet .weights files: header, per-layer arrays, exact size checks, partial.

Layout: int32 major, minor, revision; then `seen` (images trained on) as uint64 when
major*10+minor >= 2 (and both < 1000), else as int32 — a 20- or 16-byte header. After the
header come float32 arrays, for each convolutional layer in cfg order:
biases[n]; if batch_normalize: scales[n], rolling_mean[n], rolling_variance[n]; weights[n*c*k*k].

The header size is read from the header itself, never assumed (darkflow assumed 16 bytes and
misread every 20-byte file by 4 bytes).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import List, Optional, Union

import numpy as np

from edge_app.atomic import write_bytes
from edge_app.errors import InputError
from model_tools.cfg import Conv, Network
from model_tools.weights_header import FORKS, KNOWN_STAMPS, PJREDDIE_HEADER, Header, parse_header  # noqa: F401


@dataclass(frozen=True)
class ConvParams:
    """One convolutional layer's arrays (views into the file's float array)."""

    biases: np.ndarray
    scales: Optional[np.ndarray]
    rolling_mean: Optional[np.ndarray]
    rolling_variance: Optional[np.ndarray]
    weights: np.ndarray  # (filters, channels, size, size)


@dataclass(frozen=True)
class Weights:
    header: Header
    floats: np.ndarray  # every parameter, in file order
    layers: tuple  # ConvParams or None per cfg layer
    # the file's bytes as read() found them (None for weights made here): hashed once for the
    # evaluation cache and the export's metadata, and written as they are into the export's bundle
    source: Optional[bytes] = field(default=None, repr=False, compare=False)

    @cached_property
    def sha256(self) -> Optional[str]:
        """The sha256 of the file's bytes, or None for weights made in memory."""
        import hashlib

        return None if self.source is None else hashlib.sha256(self.source).hexdigest()

    def to_bytes(self) -> bytes:
        return self.header.to_bytes() + self.floats.astype("<f4").tobytes()


def split_layers(net: Network, floats: np.ndarray) -> tuple:
    """Cut the flat float array into per-layer views, in darknet's order."""
    params: List[Optional[ConvParams]] = []
    offset = 0

    def take(count: int) -> np.ndarray:
        nonlocal offset
        part = floats[offset:offset + count]
        offset += count
        return part

    for layer in net.layers:
        if not isinstance(layer, Conv):
            params.append(None)
            continue
        n = layer.filters
        biases = take(n)
        scales = mean = var = None
        if layer.batch_normalize:
            scales, mean, var = take(n), take(n), take(n)
        weights = take(layer.weight_count).reshape(n, layer.in_shape[0], layer.size, layer.size)
        params.append(ConvParams(biases, scales, mean, var, weights))
    return tuple(params)


def describe_size_mismatch(net: Network, header: Header, found: int) -> str:
    """Explain a wrong file size: expected vs found, and what the file may be instead."""
    expected = header.size + 4 * net.param_count
    text = (f"weights file does not match the cfg {net.path}: the cfg needs "
            f"{expected} bytes ({header.size}-byte header + {net.param_count} floats), the file has "
            f"{found} bytes")
    body = found - header.size
    if body < 4 * net.param_count and body % 4 == 0:
        for n_layers in range(1, len(net.layers)):
            if 4 * net.param_count_upto(n_layers) == body:
                return text + (f"; it holds exactly the first {n_layers} layers — a partial "
                               "(pre-trained base) file, not a trained model")
        return text + "; the file is truncated or belongs to another cfg"
    return text + "; the file belongs to another cfg (different classes, filters or layers?)"


def read(path: Union[str, Path], net: Network) -> Weights:
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read weights file: {exc.strerror}", path,
                         "check the path given with --weights") from None
    header = parse_header(data, path)
    expected = header.size + 4 * net.param_count
    if len(data) != expected:
        raise InputError(describe_size_mismatch(net, header, len(data)), path,
                         "pass the weights that were trained with this cfg")
    floats = np.frombuffer(data, dtype="<f4", offset=header.size)
    if not np.all(np.isfinite(floats)):
        bad = int(np.argmax(~np.isfinite(floats)))
        raise InputError(f"weights file holds NaN or infinite values (first at float {bad}); "
                         "training diverged", path, "pick an earlier checkpoint")
    layers = split_layers(net, floats)
    for layer, params in zip(net.layers, layers):
        if params is not None and params.rolling_variance is not None and np.any(params.rolling_variance < 0):
            bad = int(np.argmax(params.rolling_variance < 0))
            raise InputError(
                f"the batch-norm variance of filter {bad} in the [convolutional] layer at "
                f"{net.path}:{layer.line} is negative ({float(params.rolling_variance[bad]):g}); "
                "a variance cannot be, and the exported model would output NaN", path,
                "the file is corrupt or belongs to another cfg: pass the weights trained with this cfg")
    return Weights(header, floats, layers, data)


def with_fork(weights: Weights, fork: Optional[str]) -> Weights:
    """The weights with the fork given by the user (None keeps the version stamp's)."""
    if not fork:
        return weights
    if fork not in FORKS:
        raise InputError(f"unknown darknet fork {fork!r}", "--fork", f"use one of: {', '.join(FORKS)}")
    return replace(weights, header=replace(weights.header, fork_override=fork))


def write(path: Union[str, Path], weights: Weights) -> None:
    write_bytes(path, weights.to_bytes())


def partial(net: Network, weights: Weights, n_layers: int, header: Optional[Header] = None) -> Weights:
    """The first `n_layers` layers, as `darknet partial cfg weights out N` saves them: seen reset
    to 0, and the source's version stamp kept (it names the fork, which decides the batch-norm
    epsilon at export), unless `header` is given."""
    if header is None:
        header = Header(weights.header.major, weights.header.minor, weights.header.revision, 0)
    if not 0 < n_layers <= len(net.layers):
        raise InputError(f"N={n_layers} is out of range: the cfg has {len(net.layers)} layers",
                         net.path, f"give N between 1 and {len(net.layers)}")
    count = net.param_count_upto(n_layers)
    floats = weights.floats[:count]
    return Weights(header, floats, split_layers_prefix(net, floats, n_layers))


def split_layers_prefix(net: Network, floats: np.ndarray, n_layers: int) -> tuple:
    prefix = Network(net.path, net.width, net.height, net.channels, net.letter_box,
                     net.layers[:n_layers])
    return split_layers(prefix, floats)


def random(net: Network, seed: int = 0, header: Header = PJREDDIE_HEADER) -> Weights:
    """Random but well-scaled weights for tests and demos (no pretrained weights exist here).

    Convolution weights are He-scaled so activations keep their magnitude through deep
    networks; batch-norm statistics are plausible (positive variances, small means).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for layer in net.layers:
        if not isinstance(layer, Conv):
            continue
        n = layer.filters
        fan_in = layer.in_shape[0] * layer.size * layer.size
        parts.append(rng.normal(0.0, 0.1, n))
        if layer.batch_normalize:
            parts += [rng.uniform(0.8, 1.2, n), rng.normal(0.0, 0.1, n), rng.uniform(0.5, 2.0, n)]
        parts.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), layer.weight_count))
    floats = np.concatenate(parts).astype("<f4") if parts else np.zeros(0, "<f4")
    return Weights(header, floats, split_layers(net, floats))
