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


def interleaved(cases, rounds: int, calls: int = 1, warmup: int = 1):
    """Seconds per call of each case, one figure per round. The cases take turns within every
    round (A B C, then B C A, ...), so a neighbour's load on the shared machine hits all of them
    alike; a ratio is then taken within each round."""
    names = list(cases)
    for name in names:
        for _ in range(warmup):
            cases[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn = cases[name]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
    return times


def spread(values) -> str:
    """median [min–max] of a list, for printing."""
    return f"{statistics.median(values):.3g} [{min(values):.3g}–{max(values):.3g}]"


def ratios(numerator, denominator):
    """Per-round ratios of two same-length lists of figures measured in the same rounds."""
    return [n / d for n, d in zip(numerator, denominator)]


def ratio_line(label: str, numerator, denominator, rounds_label: str = "rounds") -> str:
    r = ratios(numerator, denominator)
    return (f"{label}: x{statistics.median(r):.3g} median, [{min(r):.3g}–{max(r):.3g}] over "
            f"{len(r)} interleaved {rounds_label}")


def synthetic_set(root: Path, images: int, name: str) -> Path:
    """A Flickr-27-style set of `images` synthetic 320x240 JPEGs (6 classes, seed 1), every
    image in the validation split; returns its darknet folder (root/ds, with <name>.data)."""
    from model_tools import dataset, synth

    annotations = synth.generate(root / "synth", images, seed=1, progress=False)
    dataset.build(dataset.import_flickr27(annotations), root / "ds", ratios=(0.0, 1.0, 0.0), name=name,
                  progress=False)
    return root / "ds"


def slim_cfg(path: Path, width: int, height: int) -> Path:
    """A 6-class Tiny YOLOv2 cfg at a quarter of the filters (the synthetic sets' model)."""
    from model_tools import cfggen

    path.write_text(cfggen.tiny_yolov2(cfggen.TinySpec(classes=6, width=width, height=height,
                                                       width_multiplier=0.25)))
    return path
