"""Training-box throughput, against references measured in the same run:
1. evaluation end to end from the command line (`python -m model_tools evaluate`, device mode:
   export → OpenVINO CPU → edge decode → mAP, no cache hits, --no-plots) in images/s, vs the
   Debian darknet's `detector valid` on the same images, cfg and weights (detections only, no
   mAP; the strongest peer CI has), for one checkpoint and for ten, interleaved round by round;
   reference mode (`--mode reference`: images read with stb_image, float input, FP32) beside it
2. reading the validation JPEGs as reference mode does (libstb's stb_image, as darknet built
   without OpenCV) vs cv2.imread (libjpeg-turbo, what it used before), ms per image
3. training-log parsing in MB/s, vs reading the same lines without parsing (needs ../shared)
    python benchmarks/bench_training_tools.py [rounds, default 3] [parts, default 1,2,3]
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import interleaved, median_seconds, ratio_line, slim_cfg, spread, synthetic_set
from model_tools import cfg, darknet_log, weights

REPO = Path(__file__).resolve().parent.parent


def main(rounds: int = 3, parts=(1, 2, 3)):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic_set(tmp, 200, "b")
        cfg_path = slim_cfg(tmp / "b.cfg", 224, 160)
        net = cfg.load(cfg_path)
        weights_path = tmp / "b_1.weights"
        weights.write(weights_path, weights.random(net, seed=1))
        images = (tmp / "ds" / "valid.txt").read_text().split()

        (tmp / "results").mkdir()
        data = tmp / "b.data"
        data.write_text(f"classes=6\nvalid={tmp / 'ds' / 'valid.txt'}\n"
                        f"names={tmp / 'ds' / 'b.names'}\nresults={tmp / 'results'}\n")
        checkpoints = [weights_path]
        for seed in range(2, 11):
            checkpoints.append(tmp / f"b_{seed}.weights")
            weights.write(checkpoints[-1], weights.random(net, seed=seed))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        runs = iter(range(10 ** 6))

        def ours(n, mode="device"):
            out = tmp / f"eval{next(runs)}"  # a fresh folder: no cached detections
            subprocess.run([sys.executable, "-m", "model_tools", "evaluate", str(tmp / "ds" / "b.data"),
                            str(cfg_path), "--weights", *map(str, checkpoints[:n]), "--out", str(out),
                            "--mode", mode, "--no-plots"], capture_output=True, check=True, cwd=tmp, env=env)
            shutil.rmtree(out)

        def darknet(n):
            for w in checkpoints[:n]:
                subprocess.run(["darknet", "detector", "valid", str(data), str(cfg_path), str(w)],
                               capture_output=True, check=True, cwd=tmp)

        for n in ((1, 10) if 1 in parts else ()):
            times = interleaved({"ours": lambda: ours(n), "reference": lambda: ours(n, "reference"),
                                 "darknet": lambda: darknet(n)}, rounds, warmup=0)
            per_s = {k: [n * len(images) / t for t in v] for k, v in times.items()}
            print(f"1. evaluation, {n} checkpoint(s) of {len(images)} images (224x160 slim Tiny YOLOv2): "
                  f"model-tools evaluate {spread(per_s['ours'])} images/s (reference mode "
                  f"{spread(per_s['reference'])}), darknet detector valid {spread(per_s['darknet'])} images/s")
            print("   " + ratio_line("ours / darknet images/s", per_s["ours"], per_s["darknet"]))
            print("   " + ratio_line("reference mode / darknet images/s", per_s["reference"], per_s["darknet"]))

        if 2 in parts:
            import cv2

            from model_tools.evaluate import read_as_darknet

            def read_all(read):
                for path in images:
                    read(path)

            times = interleaved({"stb": lambda: read_all(lambda p: read_as_darknet(Path(p), "stb")),
                                 "opencv": lambda: read_all(lambda p: cv2.imread(p, cv2.IMREAD_COLOR))},
                                rounds=max(5, rounds), warmup=1)
            ms = {k: [1000 * t / len(images) for t in v] for k, v in times.items()}
            height, width = cv2.imread(images[0]).shape[:2]
            print(f"2. reading {len(images)} synth JPEGs ({width}x{height}, 4:2:0) as reference mode does "
                  f"(libstb, as darknet without OpenCV) {spread(ms['stb'])} ms/image, cv2.imread "
                  f"{spread(ms['opencv'])} ms/image")
            print("   " + ratio_line("libstb / cv2.imread time", ms["stb"], ms["opencv"]))

        if 3 in parts:
            seeds = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"
            seed_log = next(iter(sorted(seeds.glob("000_*.txt"))), None)
            if seed_log is None:
                raise SystemExit(f"seed 000 not found in {seeds}: ../shared must be beside the checkout")
            text = seed_log.read_text(errors="replace")
            big = tmp / "big.log"
            big.write_text(text * max(1, int(20e6 / len(text))))
            size_mb = big.stat().st_size / 1e6

            def parse():
                return sum(1 for _ in darknet_log.parse_lines(open(big, errors="replace")))

            def read():
                return sum(1 for _ in open(big, errors="replace"))

            t_parse = median_seconds(parse, repeat=3, warmup=1)
            t_read = median_seconds(read, repeat=3, warmup=1)
            print(f"3. log parsing {size_mb / t_parse:.0f} MB/s ({size_mb:.0f} MB of seed 000's log, repeated) vs "
                  f"reading the lines alone {size_mb / t_read:.0f} MB/s: parsing costs x{t_parse / t_read:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3,
         tuple(int(x) for x in sys.argv[2].split(",")) if len(sys.argv) > 2 else (1, 2, 3))
