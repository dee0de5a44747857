"""Inference of the exported IR on OpenVINO CPU against OpenCV DNN running the same cfg and
weights (its darknet importer), interleaved round by round; host preprocessing (frame → input)
included on both sides. Figures: fps as median [min–max] over the rounds; the ratio is taken
within each round (OpenCV time / OpenVINO time: above 1 means the IR is faster).
    python benchmarks/bench_inference.py [cfg] [rounds, default 7]   (default cfg: yolov2-tiny-voc)
"""
import sys
import tempfile
from pathlib import Path

import cv2

from common import DARKNET_CFG, PHOTO, interleaved, random_model, ratio_line, spread
from edge_app.detector import Detector


def main():
    cfg_path = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] else DARKNET_CFG / "yolov2-tiny-voc.cfg"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    frame = cv2.imread(str(PHOTO))
    with tempfile.TemporaryDirectory() as tmp:
        for fp16 in (False, True):
            model_dir, weights_path, _ = random_model(cfg_path, Path(tmp), fp16)
            detector = Detector(model_dir, hint="LATENCY")
            w, h = detector.info.width, detector.info.height
            net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)

            def opencv():
                net.setInput(cv2.dnn.blobFromImage(frame, 1 / 255.0, (w, h), swapRB=True, crop=False))
                return net.forward()

            t = interleaved({"openvino": lambda: detector.raw(frame), "opencv": opencv},
                            rounds, calls=10, warmup=3)
            fps = {k: [1 / x for x in v] for k, v in t.items()}
            precision = "FP16" if fp16 else "FP32"
            print(f"{cfg_path.stem} {precision} IR, one frame at a time: OpenVINO CPU {spread(fps['openvino'])} fps, "
                  f"OpenCV DNN {spread(fps['opencv'])} fps")
            print("   " + ratio_line("OpenCV time / OpenVINO time", t["opencv"], t["openvino"]))


if __name__ == "__main__":
    main()
