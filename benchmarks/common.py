"""Helpers shared by the benchmark scripts: timing and a random-weight model on disk."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as `python benchmarks/x.py` from anywhere

DARKNET_CFG = Path("/usr/share/darknet/cfg")
PHOTO = Path("/usr/share/darknet/data/dog.jpg")


def median_seconds(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_model(cfg_path: Path, workdir: Path, fp16: bool = True):
    """(model_dir, weights_path, names_path) for cfg_path with seeded random weights."""
    from model_tools import cfg, export, weights

    net = cfg.load(cfg_path)
    workdir.mkdir(parents=True, exist_ok=True)
    weights_path = workdir / "random.weights"
    weights.write(weights_path, weights.random(net, seed=1))
    names = [f"class{i}" for i in range(net.region.classes)]
    names_path = workdir / "names.txt"
    names_path.write_text("\n".join(names) + "\n")
    out = workdir / ("fp16" if fp16 else "fp32")
    export.export(net, weights.read(weights_path, net), names, out, fp16=fp16,
                  cfg_path=str(cfg_path), weights_path=str(weights_path))
    return out, weights_path, names_path
