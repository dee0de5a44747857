"""Inference throughput of the exported IR (OpenVINO CPU) vs OpenCV DNN on the same cfg and
weights, in the same run. Host preprocessing is included on both sides (frame → input).
    python benchmarks/bench_inference.py [cfg]     (default: yolov2-tiny-voc)
"""
import sys
import tempfile
import time
from pathlib import Path

import cv2

from common import DARKNET_CFG, PHOTO, median_seconds, random_model
from edge_app.detector import Detector


def throughput_async(detector, frame, seconds=5.0):
    queue = detector.engine.async_queue()
    tensor = detector.prepare(frame)
    done = [0]
    queue.set_callback(lambda request, userdata: done.__setitem__(0, done[0] + 1))
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        queue.start_async({0: tensor})
    queue.wait_all()
    return done[0] / (time.perf_counter() - start), len(queue)


def main():
    cfg_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DARKNET_CFG / "yolov2-tiny-voc.cfg"
    frame = cv2.imread(str(PHOTO))
    with tempfile.TemporaryDirectory() as tmp:
        for fp16 in (False, True):
            model_dir, weights_path, _ = random_model(cfg_path, Path(tmp), fp16)
            detector = Detector(model_dir)
            throughput = Detector(model_dir, hint="THROUGHPUT")
            w, h = detector.info.width, detector.info.height
            net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)

            def opencv():
                net.setInput(cv2.dnn.blobFromImage(frame, 1 / 255.0, (w, h), swapRB=True, crop=False))
                return net.forward()

            t_cv = median_seconds(opencv, repeat=30)
            t_sync = median_seconds(lambda: detector.raw(frame), repeat=30)
            fps_async, jobs = throughput_async(throughput, frame)
            precision = "FP16" if fp16 else "FP32"
            print(f"{cfg_path.stem} {precision} IR on OpenVINO CPU: sync {1 / t_sync:.1f} fps, "
                  f"async (THROUGHPUT hint, {jobs} requests) {fps_async:.1f} fps; OpenCV DNN {1 / t_cv:.1f} fps; "
                  f"ratio sync x{t_cv / t_sync:.2f}, async x{fps_async * t_cv:.2f}")


if __name__ == "__main__":
    main()
