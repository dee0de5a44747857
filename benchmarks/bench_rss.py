"""The daemon's resident memory at full speed on each Python + OpenVINO stack, against what
OpenVINO alone costs for the same model loaded as a plain script would load it.

`edge-app run` on the trained demo model (demo/model, the product's shipped example) and on a
416x416 yolov2-tiny-voc (FP16 IR, random weights; on the CPU plugin, a stand-in for the NCS2,
its weights are held in host memory as FP32 where on the Pi they live on the stick), a 640x480
clip decoded as fast as inference takes its frames (source.every_frame: a camera delivers its
frames at its own rate, a file read flat out would keep a core decoding frames then dropped),
publishing to a local Mosquitto; VmRSS sampled every 0.2 s after a warm-up. The configurations
take turns in every round (interleaved); each figure is median [min–max] over the rounds.
                                                                           goal: peak <= 200 MB

  daemon                    as shipped: the daemon limits malloc to 2 arenas itself (allocator.py),
                            hands back the file pages compiling read (filepages.py), on 2022.x
                            maps an FP16 IR's weights widened to FP32 (widen.py); model.hint =
                            "auto": a stream per core, but one stream and 2 requests on a CPU
                            plugin that copies the weights for streams (before 2024.2, runtime.py)
  daemon, hint throughput   model.hint = "throughput": a stream per core on every OpenVINO
  daemon, hint latency      model.hint = "latency": one stream on every core, 1 request
  daemon, glibc arenas      MALLOC_ARENA_MAX=<8 x cores>, glibc's own limit on 64-bit (the
                            daemon leaves a limit from the environment alone)
  OpenVINO alone            no daemon: numpy, OpenCV and OpenVINO imported, the IR read (as it
                            is: FP16, held by 2022.x) and compiled with the daemon's hint (THROUGHPUT: on the CPU plugin, one
                            stream per core, each with its own activations), the plugin's optimal
                            number of requests kept busy on one random frame, 2 malloc arenas
  OpenVINO alone, 1 stream  the same with the LATENCY hint (one stream on every core): what
                            fewer streams would save in memory and cost in fps

Per run, at its end: anonymous memory, file-backed memory (libraries, mapped files) and the IR's
.bin pages resident (current OpenVINO maps the .bin; the daemon hands those pages back after
compiling, edge_app/filepages.py, as it does every page of a file mapping compiling read, but
only those no other process maps: a neighbour running the same venv's OpenVINO keeps them in
the daemon's RSS, so the resident pages other processes map too are shown); fps: the daemon's from its stats messages, OpenVINO alone's
from its own count. Then per model: OpenVINO alone's RSS by stage (the imports, what compiling
added, what the running requests added at the peak); 1 stream against the hint's streams; the
daemon above OpenVINO alone without its .bin pages, and the daemon's fps over OpenVINO alone's.

    python benchmarks/bench_rss.py [seconds per run, default 20] [rounds, default 2] [python ...]
  (default pythons: this one, and .venv39 (Python 3.9 + OpenVINO 2022.3, the Pi's) and
  .venv39-ov2022.1 beside it when they exist)
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from common import DARKNET_CFG, REPO

PREPARE = sys.argv[1:2] == ["--prepare"]
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 and not PREPARE else 20.0
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 and not PREPARE else 2
WARMUP = 5.0
MIB = 2 ** 20
CONFIGS = ("daemon", "daemon, hint throughput", "daemon, hint latency", "daemon, glibc arenas", "OpenVINO alone",
           "OpenVINO alone, 1 stream")
GLIBC_ARENAS = {"MALLOC_ARENA_MAX": str(8 * os.cpu_count())}

# no daemon code: what a bare script costs for this model on this stack
ALONE = r"""
import ctypes, sys, time


def stage(name):  # resident and anonymous MiB now
    mib = {l.split()[0]: int(l.split()[1]) / 1024 for l in open("/proc/self/smaps_rollup")
           if l.split()[0].endswith(":")}
    print("stage", name, mib["Rss:"], mib["Anonymous:"], flush=True)


import cv2, numpy as np
ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX, as the daemon
try:
    import openvino as ov
    Core, Queue = ov.Core, ov.AsyncInferQueue
except (ImportError, AttributeError):  # OpenVINO 2022.x
    from openvino.runtime import Core, AsyncInferQueue as Queue
stage("imports")
core = Core()
compiled = core.compile_model(core.read_model(sys.argv[1]), "CPU", {"PERFORMANCE_HINT": sys.argv[2]})
stage("compiled")
queue = Queue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
frame = np.random.default_rng(1).integers(0, 256, tuple(compiled.inputs[0].shape), dtype=np.uint8)
done = [0]
queue.set_callback(lambda request, userdata: done.__setitem__(0, done[0] + 1))
next_report = time.monotonic()
while True:
    queue.start_async({0: frame})
    if time.monotonic() >= next_report:
        print(time.monotonic(), done[0], flush=True)
        next_report += 1.0
"""


def pythons():
    if len(sys.argv) > 3:
        return sys.argv[3:]
    found = [sys.executable]
    root = Path(sys.executable).parent.parent.parent
    for venv in (".venv39", ".venv39-ov2022.1"):
        if (root / venv / "bin" / "python").exists():
            found.append(str(root / venv / "bin" / "python"))
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(tmp: Path) -> dict:
    """In a child process (see the docstring): the two models and the clip; what the runs need."""
    from common import random_model
    from edge_app import metadata

    voc, _, _ = random_model(DARKNET_CFG / "yolov2-tiny-voc.cfg", tmp / "model", fp16=True)
    models = {}
    for name, model_dir in (("demo model", REPO / "demo" / "model"), ("yolov2-tiny-voc 416", voc)):
        info = metadata.load(model_dir)
        models[name] = {"dir": str(model_dir), "xml": str(info.xml), "bin": str(info.bin),
                        "precision": info.precision, "size": f"{info.width}x{info.height}"}
    return {"models": models, "clip": str(make_clip(tmp / "clip.avi"))}


def make_clip(path: Path, frames=60, size=(640, 480)):
    import cv2
    import numpy as np

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


def memory_split(pid: int, bin_path: Path) -> dict:
    """MiB of the process's anonymous and file-backed resident memory, of the .bin's pages, and of
    pages other processes map too (libraries of a venv that a neighbour uses: the kernel hands
    back only pages no other process maps, filepages.py)."""
    target, inside, split = os.path.realpath(bin_path), False, {"anon": 0.0, "rss": 0.0, "bin": 0.0, "shared": 0.0}
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                inside = len(fields) >= 6 and fields[5] == target
            elif fields[0] == "Rss:":
                split["rss"] += int(fields[1]) / 1024
                split["bin"] += int(fields[1]) / 1024 if inside else 0.0
            elif fields[0] == "Anonymous:":
                split["anon"] += int(fields[1]) / 1024
            elif fields[0] in ("Shared_Clean:", "Shared_Dirty:"):
                split["shared"] += int(fields[1]) / 1024
    return {"anon": split["anon"], "files": split["rss"] - split["anon"], "bin": split["bin"],
            "shared": split["shared"]}


class Stats:
    """The daemon's stats messages: fps over the measured window from frames processed."""

    def __init__(self, port: int):
        self.received = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.received.append(
            (time.monotonic(), json.loads(m.payload))) if m.topic.endswith("/stats") else None
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("#")
        self.client.loop_start()

    def fps(self, since: float) -> float:
        window = [s for t, s in self.received if t >= since]
        if len(window) < 2:
            return float("nan")
        first, last = window[0], window[-1]
        return ((last["frames"]["processed"] - first["frames"]["processed"])
                / (last["uptime_s"] - first["uptime_s"]))

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def run(python: str, command: list, extra_env: dict, bin_path: Path, stats=None):
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env.update(extra_env, PYTHONPATH=str(REPO))
    # cwd: `python -m` puts the working directory before PYTHONPATH; run this checkout's daemon
    proc = subprocess.Popen([python, *command], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    counts, stages = [], {}
    reader = threading.Thread(target=read_lines, args=(proc.stdout, counts, stages), daemon=True)
    reader.start()
    samples = []
    try:
        start = time.monotonic()
        if stats is not None:
            stats.received.clear()
        while time.monotonic() - start < WARMUP + SECONDS:
            if proc.poll() is not None:
                raise SystemExit(f"{command[:2]} ended early ({proc.returncode}):\n{proc.stderr.read()[-2000:]}")
            if time.monotonic() - start >= WARMUP:
                samples.append(rss_mib(proc.pid))
            time.sleep(0.2)
        split = memory_split(proc.pid, bin_path)
    finally:
        proc.terminate()
        proc.wait(30)
        reader.join(5)
    if stats is not None:
        fps = stats.fps(start + WARMUP)
    else:
        window = [(t, n) for t, n in counts if t >= start + WARMUP]
        fps = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) if len(window) > 1 else float("nan")
    return {"peak": max(samples), "median": statistics.median(samples), "fps": fps, "stages": stages, **split}


def read_lines(stream, counts, stages):
    """OpenVINO alone's output: "stage <name> <rss MiB> <anon MiB>", then "<time> <inferences>"."""
    for line in stream:
        fields = line.split()
        if fields[0] == "stage":
            stages[fields[1]] = (float(fields[2]), float(fields[3]))
        else:
            counts.append((float(fields[0]), float(fields[1])))


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
            stats = Stats(port)
            made = subprocess.run([sys.executable, __file__, "--prepare", str(tmp)], capture_output=True,
                                  text=True, check=True)
            setup = json.loads(made.stdout.splitlines()[-1])
            wanted = os.environ.get("BENCH_RSS_MODELS", "")  # e.g. "416": only the models named so
            for name, model in setup["models"].items():
                if wanted in name:
                    measure_model(name, model, Path(setup["clip"]), port, tmp, stats)
            stats.close()
        finally:
            broker.kill()
            broker.wait()
    print("goal: peak <= 200 MB (190.7 MiB) on both stacks")


def measure_model(name, model, clip, port, tmp, stats):
    bin_path = Path(model["bin"])
    config = tmp / "edge-app.toml"
    sections = {"model": {"path": model["dir"], "device": "CPU", "fallback": ""},
                "source": {"uri": str(clip), "loop": True, "realtime": False, "every_frame": True},
                "mqtt": {"host": "127.0.0.1", "port": port, "device_id": "rss", "stats_interval": 5.0},
                "service": {"log_level": "warning"}}
    config.write_text("".join(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                              for section, values in sections.items()))
    daemon = ["-m", "edge_app", "run", "--config", str(config)]
    commands = {"daemon": daemon, "daemon, glibc arenas": daemon,
                "daemon, hint throughput": daemon + ["--set", "model.hint=throughput"],
                "daemon, hint latency": daemon + ["--set", "model.hint=latency"],
                "OpenVINO alone": ["-c", ALONE, model["xml"], "THROUGHPUT"],
                "OpenVINO alone, 1 stream": ["-c", ALONE, model["xml"], "LATENCY"]}
    bin_mib = bin_path.stat().st_size / MIB
    weights = f"{model['precision']} IR, .bin {bin_mib:.1f} MiB" + (
        f", {2 * bin_mib:.0f} MiB as the CPU plugin's FP32" if model["precision"] == "FP16" else "")
    for python in pythons():
        version = subprocess.run([python, "-c", "import sys; from edge_app.runtime import openvino_api; "
                                  "print(sys.version.split()[0], 'OpenVINO', openvino_api()[2].split('-')[0])"],
                                 capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        results = {config_name: [] for config_name in CONFIGS}
        names = list(CONFIGS)
        for r in range(ROUNDS):
            for config_name in names[r % len(names):] + names[:r % len(names)]:
                is_daemon = config_name.startswith("daemon")
                env = GLIBC_ARENAS if config_name == "daemon, glibc arenas" else {}
                results[config_name].append(run(python, commands[config_name], env, bin_path,
                                                stats if is_daemon else None))
        print(f"{name} ({model['size']}, {weights}), Python {version.stdout.strip()} ({python}), "
              f"{SECONDS:g} s at full speed x {ROUNDS} rounds:", flush=True)
        for config_name in names:
            runs = results[config_name]
            print(f"   {config_name:24s} peak RSS {fmt(runs, 'peak')} MiB, median {fmt(runs, 'median')}; "
                  f"anon {fmt(runs, 'anon')}, file-backed {fmt(runs, 'files')} of which the .bin "
                  f"{fmt(runs, 'bin')}; mapped by other processes too {fmt(runs, 'shared')}; {fmt(runs, 'fps', '.3g')} fps")
        alone = results["OpenVINO alone"]
        imports = [r["stages"]["imports"] for r in alone]  # (rss, anon) MiB
        compiled = [r["stages"]["compiled"] for r in alone]
        print(f"   OpenVINO alone by stage: imports {fmt_values([i[0] for i in imports])} "
              f"(anon {fmt_values([i[1] for i in imports])}), compiling "
              f"{fmt_values([c[0] - i[0] for c, i in zip(compiled, imports)], '+.0f')} "
              f"(anon {fmt_values([c[1] - i[1] for c, i in zip(compiled, imports)], '+.0f')}), requests running "
              f"{fmt_values([r['peak'] - c[0] for r, c in zip(alone, compiled)], '+.0f')} "
              f"(anon {fmt_values([r['anon'] - c[1] for r, c in zip(alone, compiled)], '+.0f')}) MiB")
        one = results["OpenVINO alone, 1 stream"]
        print(f"   OpenVINO alone, 1 stream against THROUGHPUT's streams: "
              f"{fmt_values([o['peak'] - a['peak'] for o, a in zip(one, alone)], '+.0f')} MiB peak, fps "
              f"x{fmt_values([o['fps'] / a['fps'] for o, a in zip(one, alone)], '.2f')} (per round)")
        for other in ("daemon, hint throughput", "daemon, hint latency"):
            print(f"   daemon (auto) against {other[8:]}: "
                  f"{fmt_values([d['peak'] - o['peak'] for d, o in zip(results['daemon'], results[other])], '+.0f')} "
                  f"MiB peak, fps x{fmt_values([d['fps'] / o['fps'] for d, o in zip(results['daemon'], results[other])], '.2f')} (per round)")
        above = [d["peak"] - (a["peak"] - a["bin"]) for d, a in zip(results["daemon"], results["OpenVINO alone"])]
        speed = [d["fps"] / a["fps"] for d, a in zip(results["daemon"], results["OpenVINO alone"])]
        print(f"   daemon above OpenVINO alone without its .bin pages: {fmt_values(above, '+.0f')} MiB "
              f"(peak, per round); fps x{fmt_values(speed, '.2f')}", flush=True)


def fmt(runs, key, spec=".0f"):
    return fmt_values([run[key] for run in runs], spec)


def fmt_values(values, spec=".0f"):
    return f"{statistics.median(values):{spec}} [{min(values):{spec}}–{max(values):{spec}}]"


if __name__ == "__main__":
    if PREPARE:
        print(json.dumps(prepare(Path(sys.argv[2]))))
    else:
        main()
