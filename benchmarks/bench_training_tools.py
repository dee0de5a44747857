"""Training-box throughput, against references measured in the same run:
1. evaluation (export → OpenVINO CPU → edge decode → mAP) in images/s, vs `darknet detector valid`
   on the same images, cfg and weights (detections only, no mAP)
2. training-log parsing in MB/s, vs reading the same lines without parsing
    python benchmarks/bench_training_tools.py
"""
import subprocess
import tempfile
import time
from pathlib import Path

from common import median_seconds
from model_tools import cfg, cfggen, darknet_log, dataset, evaluate, synth, weights


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        annotations = synth.generate(tmp / "synth", 200, seed=1, progress=False)
        dataset.build(dataset.import_flickr27(annotations), tmp / "ds", ratios=(0.0, 1.0, 0.0),
                      name="b", progress=False)
        cfg_path = tmp / "b.cfg"
        cfg_path.write_text(cfggen.tiny_yolov2(cfggen.TinySpec(classes=6, width=224, height=160,
                                                               width_multiplier=0.25)))
        net = cfg.load(cfg_path)
        weights_path = tmp / "b_1.weights"
        weights.write(weights_path, weights.random(net, seed=1))
        names = (tmp / "ds" / "b.names").read_text().split()
        images = (tmp / "ds" / "valid.txt").read_text().split()

        start = time.perf_counter()
        evaluate.evaluate_checkpoints(cfg_path, names, tmp / "ds" / "valid.txt", [weights_path],
                                      tmp / "eval", progress=False)
        ours = len(images) / (time.perf_counter() - start)

        (tmp / "results").mkdir()
        (tmp / "b.data").write_text(f"classes=6\nvalid={tmp / 'ds' / 'valid.txt'}\n"
                                    f"names={tmp / 'ds' / 'b.names'}\nresults={tmp / 'results'}\n")
        start = time.perf_counter()
        subprocess.run(["darknet", "detector", "valid", str(tmp / "b.data"), str(cfg_path), str(weights_path)],
                       capture_output=True, check=True, cwd=tmp)
        theirs = len(images) / (time.perf_counter() - start)
        print(f"1. evaluation {ours:.0f} images/s (export + OpenVINO FP16 + decode + mAP, 224x160 slim "
              f"Tiny YOLOv2) vs darknet detector valid {theirs:.0f} images/s: ratio x{ours / theirs:.1f}")

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
        print(f"2. log parsing {size_mb / t_parse:.0f} MB/s ({size_mb:.0f} MB of seed 000's log, repeated) vs "
              f"reading the lines alone {size_mb / t_read:.0f} MB/s: parsing costs x{t_parse / t_read:.1f}")


if __name__ == "__main__":
    main()
