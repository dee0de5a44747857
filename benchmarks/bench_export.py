"""Export time of yolov2-tiny-voc (cfg + weights → FP16 IR + metadata), against loading the same
cfg + weights into OpenCV DNN in the same run.
    python benchmarks/bench_export.py
"""
import tempfile
from pathlib import Path

import cv2

from common import DARKNET_CFG, median_seconds
from model_tools import cfg, export, weights

CFG = DARKNET_CFG / "yolov2-tiny-voc.cfg"


def main():
    net = cfg.load(CFG)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights_path = tmp / "w.weights"
        weights.write(weights_path, weights.random(net, seed=1))
        names = [f"c{i}" for i in range(net.region.classes)]

        def run_export():
            export.export(cfg.load(CFG), weights.read(weights_path, net), names, tmp / "out",
                          cfg_path=str(CFG), weights_path=str(weights_path))

        t_export = median_seconds(run_export, repeat=5, warmup=1)
        t_cv = median_seconds(lambda: cv2.dnn.readNetFromDarknet(str(CFG), str(weights_path)),
                              repeat=5, warmup=1)
        size = sum(p.stat().st_size for p in (tmp / "out").iterdir()) / 1e6
        print(f"export yolov2-tiny-voc to FP16 IR: median {t_export:.2f} s ({size:.1f} MB written); "
              f"OpenCV DNN load {t_cv:.2f} s; ratio x{t_export / t_cv:.1f}")


if __name__ == "__main__":
    main()
