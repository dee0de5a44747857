"""The device's CPU fallback (edge_app.opencv_dnn: OpenCV DNN from the bundle's darknet cfg +
weights) against OpenVINO CPU on the same bundle, interleaved in the same run: synchronous
inference of one prepared frame (what a Pi without the stick does per frame).

Models: the trained demo model (demo/, 160x128) and a 416x416 yolov2-tiny with random weights.
Prints fps of each engine (median of rounds, with the min-max spread), the ratio, and the
network's GFLOPs with the effective GFLOP/s here, which the Pi estimate in the README uses.
    python benchmarks/bench_opencv_engine.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from common import DARKNET_CFG, PHOTO, REPO
from edge_app import metadata
from edge_app.detector import Detector
from edge_app.opencv_dnn import OpenCVNet


def conv_gflops(cfg_path: Path) -> float:
    """Multiply-adds x 2 of the convolutions, from model-tools' planned layer shapes."""
    from model_tools import cfg
    from model_tools.cfg import Conv

    net = cfg.load(cfg_path)
    total = 0
    for layer in net.layers:
        if isinstance(layer, Conv):
            c_in = layer.in_shape[0]
            c_out, h, w = layer.out_shape
            total += 2 * c_in * layer.size * layer.size * c_out * h * w
    return total / 1e9


def per_second(fn, seconds: float) -> float:
    fn()  # warm
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def bench(name: str, model_dir: Path, cfg_path: Path, rounds: int, seconds: float) -> None:
    detector = Detector(model_dir, "CPU")
    opencv = OpenCVNet(metadata.load(model_dir))
    tensor = detector.prepare(cv2.imread(str(PHOTO)))
    ov_fps, cv_fps = [], []
    for _ in range(rounds):  # interleaved: both see the same machine state
        ov_fps.append(per_second(lambda: detector.adapter.infer(tensor), seconds))
        cv_fps.append(per_second(lambda: opencv.forward(tensor), seconds))
    gflops = conv_gflops(cfg_path)
    ov, cv = statistics.median(ov_fps), statistics.median(cv_fps)
    print(f"{name} ({detector.info.width}x{detector.info.height}, {gflops:.2f} GFLOP/frame):")
    print(f"  OpenVINO CPU   {ov:7.1f} fps  (min {min(ov_fps):.1f}, max {max(ov_fps):.1f})")
    print(f"  OpenCV DNN     {cv:7.1f} fps  (min {min(cv_fps):.1f}, max {max(cv_fps):.1f}), "
          f"{cv * gflops:.1f} GFLOP/s effective")
    print(f"  ratio OpenCV/OpenVINO: {cv / ov:.2f}  (OpenCV {cv2.__version__}, "
          f"{cv2.getNumThreads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="per engine per round")
    args = parser.parse_args()
    from common import random_model
    from model_tools import cfg, export, weights

    with tempfile.TemporaryDirectory() as tmp:
        demo_cfg = REPO / "demo/demo.cfg"
        net = cfg.load(demo_cfg)
        names = (REPO / "demo/demo.names").read_text().split()
        demo_dir = Path(tmp) / "demo"
        export.export(net, weights.read(REPO / "demo/demo.weights", net), names, demo_dir,
                      cfg_path=str(demo_cfg), weights_path=str(REPO / "demo/demo.weights"))
        bench("demo model (FP16 IR)", demo_dir, demo_cfg, args.rounds, args.seconds)
        tiny_cfg = DARKNET_CFG / "yolov2-tiny.cfg"
        tiny_dir, _, _ = random_model(tiny_cfg, Path(tmp) / "tiny")
        bench("yolov2-tiny, random weights (FP16 IR)", tiny_dir, tiny_cfg, args.rounds, args.seconds)


if __name__ == "__main__":
    main()
