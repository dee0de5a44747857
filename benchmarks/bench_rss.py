"""The daemon's resident memory at full speed, on each Python stack, with glibc's default malloc
arenas and with the limit the daemon sets (edge_app/allocator.py) or the unit's environment.

`edge-app run` on the trained demo model (demo/model, the product's shipped example) and on a
416x416 yolov2-tiny-voc (FP16 IR; on the CPU plugin, a stand-in for the NCS2, its weights are
held in host memory as FP32, 63 MB, where on the Pi they live on the stick), a 640x480 clip read
as fast as inference takes it, publishing to a local Mosquitto; VmRSS sampled every 0.2 s after a warm-up. The
configurations take turns in every round (interleaved), and each figure is median [min–max] over
the rounds of the run's peak and median RSS.                              goal: peak <= 200 MB

  glibc default        MALLOC_ARENA_MAX=<8 x cores>, glibc's own limit on 64-bit (the daemon
                       leaves a limit from the environment alone)
  daemon's mallopt     nothing in the environment: the daemon limits arenas itself at start
  unit's environment   MALLOC_ARENA_MAX=2, as systemd/edge-app.service sets it

    python benchmarks/bench_rss.py [seconds per run, default 20] [rounds, default 2] [python ...]
  (default pythons: this one and .venv39's beside it, the Pi's Python 3.9 + OpenVINO 2022.3)
"""
import json
import os
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

from common import DARKNET_CFG, REPO, random_model

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
WARMUP = 5.0
MODES = {"glibc default": {"MALLOC_ARENA_MAX": str(8 * os.cpu_count())},
         "daemon's mallopt": {},
         "unit's environment": {"MALLOC_ARENA_MAX": "2"}}


def pythons():
    if len(sys.argv) > 3:
        return sys.argv[3:]
    found = [sys.executable]
    stack39 = Path(sys.executable).parent.parent.parent / ".venv39" / "bin" / "python"
    if stack39.exists():
        found.append(str(stack39))
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(path: Path, frames=60, size=(640, 480)):
    photos = sorted(Path("/usr/share/darknet/data").glob("*.jpg"))
    images = [cv2.resize(cv2.imread(str(p)), size) for p in photos]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for i in range(frames):
        writer.write(np.roll(images[i % len(images)], 5 * i, axis=1))
    writer.release()
    return path


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def run(python: str, config: Path, extra_env: dict):
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env.update(extra_env, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([python, "-m", "edge_app", "run", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    try:
        start = time.monotonic()
        while time.monotonic() - start < WARMUP + SECONDS:
            if proc.poll() is not None:
                raise SystemExit(f"edge-app run ended early ({proc.returncode}):\n{proc.stderr.read()[-2000:]}")
            if time.monotonic() - start >= WARMUP:
                samples.append(rss_mib(proc.pid))
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
    return max(samples), statistics.median(samples)


def main():
    broker_bin = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        (tmp / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([broker_bin, "-c", str(tmp / "m.conf")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            voc, _, _ = random_model(DARKNET_CFG / "yolov2-tiny-voc.cfg", tmp / "model", fp16=True)
            clip = make_clip(tmp / "clip.avi")
            for name, model_dir in (("demo model", REPO / "demo" / "model"), ("yolov2-tiny-voc 416", voc)):
                measure_model(name, model_dir, clip, port, tmp)
        finally:
            broker.kill()
            broker.wait()
    print("goal: peak <= 200 MB (190.7 MiB) on both stacks")


def measure_model(name, model_dir, clip, port, tmp):
    config = tmp / "edge-app.toml"
    sections = {"model": {"path": str(model_dir), "device": "CPU", "fallback": ""},
                "source": {"uri": str(clip), "loop": True, "realtime": False},
                "mqtt": {"host": "127.0.0.1", "port": port, "device_id": "rss", "stats_interval": 5.0},
                "service": {"log_level": "warning"}}
    config.write_text("".join(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                              for section, values in sections.items()))
    for python in pythons():
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip()
        peaks = {mode: [] for mode in MODES}
        medians = {mode: [] for mode in MODES}
        names = list(MODES)
        for r in range(ROUNDS):
            for mode in names[r % len(names):] + names[:r % len(names)]:
                peak, median = run(python, config, MODES[mode])
                peaks[mode].append(peak)
                medians[mode].append(median)
        print(f"{name}, Python {version} ({python}), {SECONDS:g} s at full speed x {ROUNDS} rounds:",
              flush=True)
        for mode in names:
            print(f"   {mode:20s} peak RSS {fmt(peaks[mode])} MiB, median RSS {fmt(medians[mode])} MiB")


def fmt(values):
    return f"{statistics.median(values):.0f} [{min(values):.0f}–{max(values):.0f}]"


if __name__ == "__main__":
    main()
