"""The live view's cost on the pipeline: `edge-app run` (demo model on the CPU, a synthetic clip
looping as fast as it can be processed, every frame, no MQTT) with live.enabled, its processed
frames per second measured from /status.json over windows of a few seconds, the conditions
taking turns round by round:

  nobody    no viewer connected (the sink returns at once)
  stalled   one viewer that connects to /stream.mjpg and never reads
  watching  one viewer reading the stream as fast as it comes

Figures: fps median [min-max] over the rounds, and per-round ratios to `nobody` (1.0 = no cost).
    python benchmarks/bench_liveview.py [rounds, default 5] [seconds per window, default 4]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import REPO, ratio_line, spread
from model_tools import synth


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frames(port) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=10) as r:
        return json.loads(r.read())["frames"]


def window(port, seconds) -> float:
    start_frames, start = frames(port), time.monotonic()
    time.sleep(seconds)
    return (frames(port) - start_frames) / (time.monotonic() - start)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    with tempfile.TemporaryDirectory() as tmp:
        clip = synth.make_clip(Path(tmp) / "clip.avi", frames=60, seed=777)
        port = free_port()
        config = Path(tmp) / "edge-app.toml"
        config.write_text(f"""[model]\npath = "{REPO / 'demo/model'}"\ndevice = "CPU"\nfallback = ""\n
[detect]\nconfidence = 0.4\n[source]\nuri = "{clip}"\nloop = true\nrealtime = false\nevery_frame = true\n
[mqtt]\nenabled = false\n[service]\nlog_level = "warning"\n[live]\nenabled = true\nport = {port}\n""")
        proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--config", str(config)],
                                env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.DEVNULL)
        try:
            end = time.monotonic() + 60
            while True:
                try:
                    frames(port)
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise SystemExit("the daemon did not start")
                    time.sleep(0.2)
            time.sleep(2.0)  # warm-up

            def nobody():
                return window(port, seconds)

            def stalled():
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
                try:
                    time.sleep(0.5)
                    return window(port, seconds)
                finally:
                    s.close()

            def watching():
                stop = threading.Event()

                def read():
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=10) as r:
                        while not stop.is_set() and r.read(65536):
                            pass
                reader = threading.Thread(target=read, daemon=True)
                reader.start()
                try:
                    time.sleep(0.5)
                    return window(port, seconds)
                finally:
                    stop.set()

            cases = {"nobody": nobody, "stalled": stalled, "watching": watching}
            names = list(cases)
            fps = {name: [] for name in names}
            for r in range(rounds):
                for name in names[r % 3:] + names[:r % 3]:
                    fps[name].append(cases[name]())
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"pipeline fps, demo model on CPU, {rounds} rounds of {seconds:.0f} s windows")
    for name in names:
        print(f"  {name:9s} {spread(fps[name])} fps")
    print(ratio_line("stalled viewer / nobody", fps["stalled"], fps["nobody"]))
    print(ratio_line("watching viewer / nobody", fps["watching"], fps["nobody"]))


if __name__ == "__main__":
    main()
