"""The daemon against `benchmark_app` (OpenVINO's own throughput tool) on the same IR, device
number of requests and performance hint, interleaved: daemon, benchmark_app, daemon, benchmark_app, ... (A B A B,
PAIRS pairs, default 5). Per pair the ratio daemon fps / benchmark_app fps; printed as median
[min–max] over the pairs.                                                       goal >= 0.95

In the same daemon runs: host CPU per frame as the daemon itself measures it (every thread but
OpenVINO's, see edge_app/cputime.py; includes paho's network thread and the callback's copy),
and capture → publish latency. The frames come from a clip at the network size (a camera asked
for the network size), MJPEG-decoded by the capture thread only as fast as they are taken
(source.every_frame: no decoding of frames that would be dropped). A local Mosquitto receives
every message at QoS 1.
    python benchmarks/bench_pipeline.py [seconds per run, default 10] [pairs, default 5]
"""
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

from common import DARKNET_CFG, random_model, ratio_line, spread
from edge_app import config as config_mod
from edge_app.daemon import Daemon

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
PAIRS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
CFG = DARKNET_CFG / "yolov2-tiny-voc.cfg"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(path: Path, size, frames=100):
    photos = sorted(Path("/usr/share/darknet/data").glob("*.jpg"))
    images = [cv2.resize(cv2.imread(str(p)), size) for p in photos]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for i in range(frames):
        writer.write(np.roll(images[i % len(images)], 5 * i, axis=1))
    writer.release()
    return path


def benchmark_app(xml: Path, requests: int, hint: str) -> float:
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    out = subprocess.run([tool, "-m", str(xml), "-d", "CPU", "-hint", hint.lower(), "-nireq",
                          str(requests), "-t", str(int(SECONDS)), "-api", "async"],
                         capture_output=True, text=True).stdout
    match = re.search(r"Throughput:\s+([0-9.]+) FPS", out)
    if not match:
        raise SystemExit(f"benchmark_app printed no throughput:\n{out[-2000:]}")
    return float(match.group(1))


def run_daemon(model_dir: Path, clip: Path, port: int):
    cfg = config_mod.build({
        "model": {"path": str(model_dir), "device": "CPU", "fallback": ""},
        "source": {"uri": str(clip), "loop": True, "realtime": False, "every_frame": True},
        "mqtt": {"host": "127.0.0.1", "port": port, "device_id": "bench", "stats_interval": 0, "qos": 1},
    })
    daemon = Daemon(cfg)
    daemon.start()
    try:
        daemon.output.first_frame.wait(60)
        time.sleep(2.0)  # warm up
        daemon.host_cpu_ms_per_frame()  # starts the measured window
        start_frames, start = daemon.output.processed, time.monotonic()
        time.sleep(SECONDS)
        frames = daemon.output.processed - start_frames
        fps = frames / (time.monotonic() - start)
        host_ms = daemon.host_cpu_ms_per_frame()
        by_thread = {("paho network" if name.startswith("paho") else name): ms
                     for name, ms in daemon.host_cpu.by_thread.items()}
        latency = list(daemon.output.latency_ms)
        inference = list(daemon.output.inference_ms)
        jobs = daemon.inference.jobs
        hint = daemon.detector.adapter.hint  # what model.hint = "auto" chose on this OpenVINO
        # requests in flight on average / requests: what a request stands idle between its
        # result and its next frame is the rest
        busy = fps * statistics.mean(inference[-frames:]) / 1e3 / jobs
    finally:
        daemon.stop_event.set()
        daemon.stop()
    return {"fps": fps, "jobs": jobs, "hint": hint, "host_ms": host_ms, "by_thread": by_thread, "busy": busy,
            "infer_p50": float(np.percentile(inference, 50)), "p50": float(np.percentile(latency, 50)),
            "p95": float(np.percentile(latency, 95))}


def print_host(runs):
    host = [r["host_ms"] for r in runs]
    print(f"     all host threads {spread(host)} ms over {len(runs)} runs")
    no_capture = [r["host_ms"] - r["by_thread"].get("capture", 0.0) for r in runs]
    print(f"     without the capture thread (its MJPEG file decode; a Pi camera hands over decoded "
          f"frames) {spread(no_capture)} ms")
    for name in sorted({n for r in runs for n in r["by_thread"]}):
        print(f"       {name:28s} {spread([r['by_thread'].get(name, 0.0) for r in runs])} ms")


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
            model_dir, _, _ = random_model(CFG, tmp / "model", fp16=True)
            xml = next(model_dir.glob("*.xml"))
            clip = make_clip(tmp / "clip.avi", (416, 416))
            daemon_runs, app_fps = [], []
            for pair in range(PAIRS):
                daemon_runs.append(run_daemon(model_dir, clip, port))
                app_fps.append(benchmark_app(xml, daemon_runs[-1]["jobs"], daemon_runs[-1]["hint"]))
                print(f"  pair {pair + 1}: daemon {daemon_runs[-1]['fps']:.2f} fps, "
                      f"benchmark_app {app_fps[-1]:.2f} fps", flush=True)
            fps = [r["fps"] for r in daemon_runs]
            jobs = sorted({r["jobs"] for r in daemon_runs})
            print(f"1. yolov2-tiny-voc FP16 IR, CPU, {'/'.join(map(str, jobs))} requests, hint "
                  f"{daemon_runs[0]['hint']}, {SECONDS:g} s runs: "
                  f"daemon {spread(fps)} fps, benchmark_app {spread(app_fps)} fps")
            print("   " + ratio_line("daemon / benchmark_app", fps, app_fps, "A B pairs") + " (goal >= 0.95)")
            print(f"   the daemon's requests busy {spread([r['busy'] for r in daemon_runs])} of the time "
                  f"(fps x mean submit -> result / requests)")
            print("2. host CPU per frame measured inside the daemon (all threads but OpenVINO's), "
                  "random weights (most cells pass the objectness floor: a heavy decode):")
            print_host(daemon_runs)
            print(f"3. capture -> publish latency: p50 {spread([r['p50'] for r in daemon_runs])} ms, "
                  f"p95 {spread([r['p95'] for r in daemon_runs])} ms (every_frame: a frame read waits for a "
                  f"free request); submit -> result p50 {spread([r['infer_p50'] for r in daemon_runs])} ms")

            demo = Path(__file__).resolve().parent.parent / "demo" / "model"
            if demo.exists():  # a trained model on its own kind of scene: a realistic decode load
                from edge_app import metadata
                from model_tools.synth import make_clip as glyph_clip

                info = metadata.load(demo)
                glyphs = glyph_clip(tmp / "demo.avi", frames=60, seed=777)
                runs = [run_daemon(demo, glyphs, port) for _ in range(3)]
                print(f"4. trained demo model ({info.width}x{info.height}, 320x240 clip resized by the host), "
                      f"{spread([r['fps'] for r in runs])} fps; host CPU per frame inside the daemon:")
                print_host(runs)
        finally:
            broker.kill()
            broker.wait()


if __name__ == "__main__":
    main()
