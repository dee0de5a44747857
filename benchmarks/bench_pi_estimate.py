"""The Raspberry Pi 3B+'s host budget per frame, estimated from instruction counts.

Runs the host work of one frame under valgrind's callgrind on this machine, step by step
(counters zeroed before a step, dumped after it, FRAMES frames per step after a warm-up), and
converts instructions to milliseconds on the Pi's Cortex-A53 at the stated assumptions:

  ms = instructions / (IPC x 1.4 GHz), IPC 0.5 (pessimistic) to 0.8 (optimistic)
  x86-64 instruction counts stand in for ARMv7's; vector code is held to 128-bit SSE (NEON's
  width) by disabling AVX/AVX2 dispatch in numpy, OpenCV and edge_app's compiled resize
  (NPY_DISABLE_CPU_FEATURES, OPENCV_CPU_DISABLE, EDGE_APP_NATIVE_SIMD) for the run. The darknet
  resize is counted compiled (edge_app.native, what a Pi with gcc builds at install) and, for
  a Pi without a compiler, in its numpy version.

Steps: network input (the camera delivering the network size: a contiguous view; or the host
resizing 640x480, with each interpolation a model's metadata may name: darknet's arithmetic,
model-tools export's default, or OpenCV's linear resize), the completion callback's copy of the output, decode + NMS (13x13 grid,
5 anchors, 27 classes: Flickr Logos 27 at 416x416), the detections message (as published now,
and the dict + json.dumps of before, for comparison), and the MQTT publish at QoS 1 to a local
Mosquitto including paho's network thread until the broker's acknowledgement.

Goals: <= 5 ms per frame for a 416 network fed at network size by the camera, <= 12 ms when
the host resizes 640x480 (at the pessimistic end of the range).
    python benchmarks/bench_pi_estimate.py [frames per step, default 40]
Needs valgrind (apt-get install valgrind) and a C compiler.
"""
import ctypes
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 40
CLOCK_HZ = 1.4e9
IPC = (0.5, 0.8)
GOALS = {"camera at network size": 5.0, "host resizes 640x480": 12.0}
NO_WIDE_VECTORS = {"OPENBLAS_NUM_THREADS": "1","NPY_DISABLE_CPU_FEATURES": "AVX AVX2 FMA3 F16C AVX512F AVX512CD AVX512_SKX",
                   "OPENCV_CPU_DISABLE": "AVX,AVX2,FMA3,FP16,AVX_512F,AVX512_SKX",
                   "EDGE_APP_NATIVE_SIMD": "128"}


def build_marks(folder: Path) -> Path:
    target = folder / "libmarks.so"
    subprocess.run([shutil.which("cc") or "gcc", "-O2", "-shared", "-fPIC", "-o", str(target),
                    str(HERE / "callgrind_marks.c")], check=True, capture_output=True)
    return target


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(marks_path: str, port: int) -> None:
    """Inside valgrind: run each step FRAMES times between a zero and a dump."""
    sys.path.insert(0, str(HERE))
    import numpy as np
    import paho.mqtt.client as mqtt

    from bench_decode import ANCHORS, CLASSES, NUM, realistic_raw
    from edge_app.decode import RegionSpec, decode
    from edge_app.messages import detections_message, encode_detections
    from edge_app.preprocess import INTERPOLATIONS, prepare

    import cv2

    # one thread: a pool's idle spinning would be counted as work (the total work of a resize
    # split over threads is about the same)
    cv2.setNumThreads(1)
    marks = ctypes.CDLL(marks_path)
    spec = RegionSpec(CLASSES, NUM, ANCHORS.reshape(NUM, 2), True)
    labels = [f"logo-{i}" for i in range(CLASSES)]
    camera = {"network": np.random.default_rng(1).integers(0, 255, (416, 416, 3), np.uint8),
              "vga": np.random.default_rng(2).integers(0, 255, (480, 640, 3), np.uint8)}
    def step(name, fn):
        for _ in range(3):  # warm-up: first calls import, allocate, fill caches
            fn()
        marks.marks_zero()
        for _ in range(FRAMES):
            fn()
        marks.marks_dump(name.encode())

    step("nothing (the marks' own cost)", lambda: None)
    step("prepare camera at network size", lambda: prepare(camera["network"], 416, 416, "resize"))
    for interpolation in INTERPOLATIONS:
        step(f"prepare host resizes 640x480|{interpolation}",
             lambda: prepare(camera["vga"], 416, 416, "resize", interpolation))
    from edge_app import native, preprocess

    print(f"darknet resize: {native.status()}", flush=True)
    step("prepare host resizes 640x480|darknet, numpy (a Pi without gcc)",
         lambda: preprocess._darknet_resize_numpy(camera["vga"], 416, 416, True))
    texts = {}
    for objects in (0, 3, 12):
        raw = realistic_raw(objects=objects)
        step(f"callback copy of the output|{objects}", lambda: raw.copy())
        step(f"decode + NMS|{objects}", lambda: decode(raw, spec, labels, 416, 416, 416, 416, "resize", 0.25, 0.45))
        dets = decode(raw, spec, labels, 416, 416, 416, 416, "resize", 0.25, 0.45)
        fields = dict(device_id="pi-1", model_id="logos27", frame_id=1, captured_at=time.time(),
                      frame_width=416, frame_height=416, inference_ms=61.234, latency_ms=95.678)
        step(f"message (before: dict + json.dumps)|{objects}",
             lambda: json.dumps(detections_message(dets, **fields), separators=(",", ":")))
        step(f"message|{objects}", lambda: encode_detections(dets, **fields))
        texts[objects] = encode_detections(dets, **fields).json
        print(f"{objects} objects: {len(dets)} detections", flush=True)
    # paho's network thread runs only now: idle, it would still add its polling to other steps
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pi-estimate")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for objects, text in texts.items():
        step(f"MQTT publish, QoS 1, until acknowledged|{objects}",
             lambda: client.publish("pi/detections", text, qos=1).wait_for_publish(5))
    client.disconnect()
    client.loop_stop()


def read_counts(folder: Path):
    """{step name: instructions} from the dumps that the client requests triggered."""
    counts = {}
    for dump in folder.glob("cg.out.*"):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (.*)$", text, re.M)
        summary = re.search(r"^summary: (\d+)", text, re.M)
        if trigger and summary:
            counts[trigger.group(1)] = int(summary.group(1))
    if os.environ.get("PI_ESTIMATE_RAW"):
        print(counts)
    overhead = counts.pop("nothing (the marks' own cost)")
    return {name: max(0, value - overhead) / FRAMES for name, value in counts.items()}


def ms(instructions: float) -> str:
    slow, fast = (instructions / (ipc * CLOCK_HZ) * 1e3 for ipc in IPC)
    return f"{fast:.2f}–{slow:.2f} ms"


def main():
    if os.environ.get("PI_ESTIMATE_MARKS"):
        measure(os.environ["PI_ESTIMATE_MARKS"], int(os.environ["PI_ESTIMATE_PORT"]))
        return
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        (tmp / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(tmp / "m.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            env = dict(os.environ, PI_ESTIMATE_MARKS=str(build_marks(tmp)), PI_ESTIMATE_PORT=str(port),
                       PYTHONPATH=str(HERE.parent), **NO_WIDE_VECTORS)
            run = subprocess.run([valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out.%p",
                                  sys.executable, __file__, str(FRAMES)], env=env, capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"the run under valgrind failed:\n{run.stderr[-3000:]}")
            print(run.stdout, end="")
        finally:
            broker.kill()
            broker.wait()
        counts = read_counts(tmp)
    print(f"instructions per frame under callgrind ({FRAMES} frames per step, 128-bit vectors), and the "
          f"Pi 3B+ estimate at IPC {IPC[1]}–{IPC[0]}, {CLOCK_HZ / 1e9:g} GHz:")
    prepare = {"camera at network size": counts.pop("prepare camera at network size")}
    for name in sorted(n for n in counts if n.startswith("prepare host resizes")):
        prepare[f"host resizes 640x480, {name.split('|')[1]}"] = counts[name]
    for name, value in prepare.items():
        print(f"  network input, {name:55s} {value / 1e3:9.1f} k  {ms(value)}")
    for objects in (0, 3, 12):
        print(f"  scene with {objects} objects:")
        per_scene = {}
        for name in ("callback copy of the output", "decode + NMS", "message (before: dict + json.dumps)",
                     "message", "MQTT publish, QoS 1, until acknowledged"):
            value = counts[f"{name}|{objects}"]
            print(f"    {name:44s} {value / 1e3:9.1f} k  {ms(value)}")
            if not name.startswith("message (before"):
                per_scene[name] = value
        for case, value in prepare.items():
            goal = GOALS["camera at network size" if case == "camera at network size" else "host resizes 640x480"]
            total = value + sum(per_scene.values())
            slow = total / (IPC[0] * CLOCK_HZ) * 1e3
            print(f"    total, {case:53s} {total / 1e3:9.1f} k  {ms(total)}  goal <= {goal:g} ms: "
                  f"{'met' if slow <= goal else 'NOT met'} at IPC {IPC[0]}")
    print("  not counted: thread hand-overs and wake-ups, the interpreter's GIL switches, the kernel's "
          "network stack; the daemon's own per-thread CPU figure (bench_pipeline.py) includes them")


if __name__ == "__main__":
    main()
