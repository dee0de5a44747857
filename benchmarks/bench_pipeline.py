"""The daemon's pipeline against references measured in the same run, on the same IR and device:

1. pipeline fps vs `benchmark_app` throughput (same IR, device, request count)    goal >= 0.95
2. host time per frame outside inference: resize, decode + NMS, message + JSON, MQTT publish
   call (the capture read is reported apart: a video file decodes JPEG, a Pi camera does not)
                                                                                   goal <= 1 ms median
3. capture → publish latency p50/p95, and fps vs a plain synchronous OpenCV-DNN loop
   (read, blobFromImage, forward, decode, publish)                                 goal >= 1.5x
A local Mosquitto receives everything (started here on a free port).
    python benchmarks/bench_pipeline.py [seconds per measurement, default 15]
"""
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common import DARKNET_CFG, random_model
from edge_app import config as config_mod
from edge_app.daemon import Daemon
from edge_app.detector import Detector
from edge_app.messages import detections_message

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
CFG = DARKNET_CFG / "yolov2-tiny-voc.cfg"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(path: Path, frames=100, size=(640, 480)):
    photos = sorted(Path("/usr/share/darknet/data").glob("*.jpg"))
    images = [cv2.resize(cv2.imread(str(p)), size) for p in photos]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for i in range(frames):
        writer.write(np.roll(images[i % len(images)], 5 * i, axis=1))
    writer.release()
    return path


def benchmark_app(xml: Path, requests: int) -> float:
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    out = subprocess.run([tool, "-m", str(xml), "-d", "CPU", "-hint", "throughput", "-nireq",
                          str(requests), "-t", str(int(SECONDS)), "-api", "async"],
                         capture_output=True, text=True).stdout
    match = re.search(r"Throughput:\s+([0-9.]+) FPS", out)
    if not match:
        raise SystemExit(f"benchmark_app printed no throughput:\n{out[-2000:]}")
    return float(match.group(1))


def run_daemon(model_dir: Path, clip: Path, port: int, requests: int = 0):
    cfg = config_mod.build({
        "model": {"path": str(model_dir), "device": "CPU", "fallback": "", "requests": requests},
        # paced at the clip's 30 fps, as a camera delivers frames
        "source": {"uri": str(clip), "loop": True, "realtime": True},
        "mqtt": {"host": "127.0.0.1", "port": port, "device_id": "bench", "stats_interval": 0},
    })
    daemon = Daemon(cfg)
    daemon.start()
    daemon.output.first_frame.wait(60)
    time.sleep(2.0)  # warm up
    start_frames, start = daemon.output.processed, time.monotonic()
    time.sleep(SECONDS)
    fps = (daemon.output.processed - start_frames) / (time.monotonic() - start)
    latency = list(daemon.output.latency_ms)
    jobs = daemon.inference.jobs
    daemon.stop_event.set()
    daemon.stop()
    return fps, jobs, np.percentile(latency, 50), np.percentile(latency, 95)


def host_time_per_frame(model_dir: Path, clip: Path, port: int, frames=300):
    """Median per-frame time of the host work around inference, step by step."""
    import paho.mqtt.client as mqtt

    detector = Detector(model_dir)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    video = cv2.VideoCapture(str(clip))
    steps = {"capture read (file: MJPEG decode)": [], "resize to network input": [],
             "decode + NMS": [], "message + JSON": [], "MQTT publish call": []}
    detections_seen = []
    for i in range(frames):
        t0 = time.perf_counter()
        ok, frame = video.read()
        if not ok:
            video = cv2.VideoCapture(str(clip))
            ok, frame = video.read()
        t1 = time.perf_counter()
        tensor = detector.prepare(frame)
        t2 = time.perf_counter()
        raw = detector.engine.infer(tensor)
        t3 = time.perf_counter()
        dets = detector.decode(raw, frame.shape[1], frame.shape[0])
        t4 = time.perf_counter()
        payload = json.dumps(detections_message(dets, device_id="bench", model_id="m", frame_id=i,
                                                captured_at=time.time(), frame_width=frame.shape[1],
                                                frame_height=frame.shape[0], inference_ms=1.0,
                                                latency_ms=1.0), separators=(",", ":"))
        t5 = time.perf_counter()
        client.publish("bench/detections", payload, qos=1)
        t6 = time.perf_counter()
        for key, value in zip(steps, (t1 - t0, t2 - t1, t4 - t3, t5 - t4, t6 - t5)):
            steps[key].append(value * 1e3)
        detections_seen.append(len(dets))
    client.disconnect()
    client.loop_stop()
    return {k: statistics.median(v) for k, v in steps.items()}, statistics.median(detections_seen)


def opencv_sync_loop(cfg: Path, weights: Path, clip: Path, port: int, detector: Detector):
    import paho.mqtt.client as mqtt

    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    last = [n for n in net.getLayerNames() if n.startswith("conv_")][-1]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    video = cv2.VideoCapture(str(clip))
    w, h = detector.info.width, detector.info.height
    latencies, done, start = [], 0, None
    while True:
        t0 = time.monotonic()
        ok, frame = video.read()
        if not ok:
            video = cv2.VideoCapture(str(clip))
            continue
        net.setInput(cv2.dnn.blobFromImage(frame, 1 / 255.0, (w, h), swapRB=True, crop=False))
        raw = net.forward(last)
        dets = detector.decode(raw, frame.shape[1], frame.shape[0])
        client.publish("bench/opencv", json.dumps([d.to_dict(frame.shape[1], frame.shape[0]) for d in dets]), qos=1)
        latencies.append((time.monotonic() - t0) * 1e3)
        done += 1
        if start is None and done == 10:
            start, done, latencies = time.monotonic(), 0, []
        if start is not None and time.monotonic() - start >= SECONDS:
            break
    client.disconnect()
    client.loop_stop()
    return done / (time.monotonic() - start), np.percentile(latencies, 50), np.percentile(latencies, 95)


def main():
    broker_bin = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        (tmp / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([broker_bin, "-c", str(tmp / "m.conf")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            model_dir, weights, _ = random_model(CFG, tmp / "model", fp16=True)
            clip = make_clip(tmp / "clip.avi")
            xml = next(model_dir.glob("*.xml"))

            requests = int(sys.argv[2]) if len(sys.argv) > 2 else 0
            fps, jobs, p50, p95 = run_daemon(model_dir, clip, port, requests)
            reference = benchmark_app(xml, jobs)
            print(f"1. pipeline {fps:.1f} fps vs benchmark_app {reference:.1f} fps ({jobs} requests, "
                  f"CPU, FP16 yolov2-tiny-voc): ratio {fps / reference:.3f} (goal >= 0.95)")

            demo = Path(__file__).resolve().parent.parent / "demo" / "model"
            cases = [("random-weight yolov2-tiny-voc", model_dir, clip)]
            if demo.exists():  # a trained model on its own kind of scene: a realistic decode load
                from model_tools.synth import make_clip as glyph_clip

                cases.append(("trained demo model", demo, glyph_clip(tmp / "demo.avi", frames=60, seed=777)))
            for name, model, video in cases:
                steps, median_dets = host_time_per_frame(model, video, port)
                outside = sum(v for k, v in steps.items() if not k.startswith("capture"))
                print(f"2. host time per frame outside inference, {name}: {outside:.3f} ms median sum "
                      f"(goal <= 1 ms; {median_dets:.0f} detections/frame):")
                for key, value in steps.items():
                    print(f"     {key:36s} {value:.3f} ms")

            cv_fps, cv_p50, cv_p95 = opencv_sync_loop(CFG, weights, clip, port, Detector(model_dir))
            print(f"3. capture→publish latency p50 {p50:.1f} ms, p95 {p95:.1f} ms; plain sync "
                  f"OpenCV-DNN loop {cv_fps:.1f} fps (latency p50 {cv_p50:.1f}, p95 {cv_p95:.1f} ms); "
                  f"pipeline/OpenCV fps ratio x{fps / cv_fps:.2f} (goal >= 1.5)")
        finally:
            broker.kill()


if __name__ == "__main__":
    main()
