"""`model-tools evaluate` end to end from the command line vs AlexeyAB darknet's `detector map`,
on the same images, cfg and weights, interleaved round by round, with a third figure beside
them: the floor of any Python + OpenVINO evaluation on this machine.

AlexeyAB darknet is not part of this project and nothing here builds it: give the path of a
`darknet` you built from its sources (CPU: `make GPU=0 CUDNN=0 OPENCV=0 AVX=1 OPENMP=1`).

- ours: `python -m model_tools evaluate DATA CFG --weights W... --out <fresh> --no-plots`
  (export, OpenVINO CPU, edge decode and NMS, mAP, the report; a fresh --out: no cache hits)
- alexeyab: `darknet detector map DATA CFG W -dont_show`, once per checkpoint
- floor (one checkpoint): a Python process that only imports numpy, OpenCV and OpenVINO, compiles the IR our
  run exported, reads the JPEGs (cv2.imread + cv2.resize, two threads) and runs them (four
  requests in flight): no export, no decode, no NMS, no mAP, no report. What any evaluation
  in Python on OpenVINO pays at least; ours / floor is our own overhead.

    python benchmarks/bench_evaluate_alexeyab.py DARKNET [rounds, default 5] [IMAGESxCHECKPOINTS ...]
    (default 200x1 200x10 1000x1; synthetic 320x240 JPEGs, a 160x128 slim Tiny YOLOv2, random
    weights; --trained: the demo model's trained weights instead, see trained()), or with a model
    of your own:
    python benchmarks/bench_evaluate_alexeyab.py DARKNET ROUNDS --data D --cfg C --weights W [W ...]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, interleaved, ratio_line, slim_cfg, spread, synthetic_set

FLOOR = """
import sys
from concurrent.futures import ThreadPoolExecutor
import numpy, cv2
sys.modules.setdefault("openvino.tools.ovc", None)
import openvino as ov
xml, listing, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
paths = open(listing).read().split()
pool = ThreadPoolExecutor(2)
inputs = [pool.submit(lambda p: cv2.resize(cv2.imread(p), (width, height))[None], p) for p in paths]
compiled = ov.Core().compile_model(xml, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
queue = ov.AsyncInferQueue(compiled, 4)
outputs = []
queue.set_callback(lambda request, _: outputs.append(request.get_output_tensor(0).data.copy()))
for future in inputs:
    queue.start_async({0: future.result()})
queue.wait_all()
assert len(outputs) == len(paths)
"""


def synthetic(tmp: Path, images: int, checkpoints: int):
    """(data, cfg, weights) of a synthetic Flickr-27-style set: 320x240 JPEGs, 6 classes."""
    from model_tools import cfg, weights

    folder = synthetic_set(tmp / f"s{images}", images, "s")
    cfg_path = tmp / "slim.cfg"
    if not cfg_path.exists():
        slim_cfg(cfg_path, 160, 128)
    net = cfg.load(cfg_path)
    paths = []
    for seed in range(1, checkpoints + 1):
        paths.append(tmp / f"slim_{seed}.weights")
        if not paths[-1].exists():
            weights.write(paths[-1], weights.random(net, seed=seed))
    return folder / "s.data", cfg_path, paths


def trained(tmp: Path, checkpoints: int):
    """(cfg, weights) of the demo model (trained on synthetic logos like the sets here) as both
    darknets read it alike: its cfg with a softmax region (AlexeyAB's region layer leaves the
    class scores of softmax=0 unactivated, ours applies the logistic the [yolo] training head
    used), its weights stamped as AlexeyAB writes them (weights.KNOWN_STAMPS: plain resize for both; the Debian-trained file
    says pjreddie, whose letterbox AlexeyAB's detector map does not do). Both then report the same
    mAP (92.25% on 200 images). Several checkpoints: copies of the one file."""
    from dataclasses import replace

    from model_tools import cfg, weights

    cfg_path = tmp / "demo-softmax.cfg"
    text = (REPO / "demo" / "demo.cfg").read_text()
    if "\nsoftmax=0\n" not in text:
        raise SystemExit("demo/demo.cfg has no softmax=0 line any more: update trained()")
    cfg_path.write_text(text.replace("\nsoftmax=0\n", "\nsoftmax=1\n"))
    demo = weights.read(REPO / "demo" / "demo.weights", cfg.load(cfg_path))
    major, minor, revision = next(s for s, fork in weights.KNOWN_STAMPS.items() if fork == "alexeyab")
    stamped = replace(demo, header=replace(demo.header, major=major, minor=minor, revision=revision))
    paths = [tmp / f"demo_{i}.weights" for i in range(1, checkpoints + 1)]
    for path in paths:
        weights.write(path, stamped)
    return cfg_path, paths


def compare(darknet: str, data: Path, cfg_path: Path, checkpoints, rounds: int, tmp: Path) -> None:
    from model_tools import cfg
    from model_tools.dataset import list_paths, read_data_file

    net = cfg.load(cfg_path)
    listing = Path(read_data_file(data)["valid"])
    images = len(list_paths(listing))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    runs = iter(range(10 ** 6))
    model = {}

    def ours():
        out = tmp / f"eval{next(runs)}"
        subprocess.run([sys.executable, "-m", "model_tools", "evaluate", str(data), str(cfg_path), "--weights",
                        *map(str, checkpoints), "--out", str(out), "--no-plots"],
                       capture_output=True, check=True, env=env)
        if not model:  # the first checkpoint's IR, for the floor
            xml = next((out / "models").glob(f"{checkpoints[0].name}-*/*.xml"))
            keep = tmp / "floor-model"
            shutil.copytree(xml.parent, keep)
            model["xml"] = keep / xml.name
        shutil.rmtree(out)

    def alexeyab():
        for weights_path in checkpoints:
            subprocess.run([darknet, "detector", "map", str(data), str(cfg_path), str(weights_path), "-dont_show"],
                           capture_output=True, check=True, cwd=tmp)

    def floor():
        subprocess.run([sys.executable, "-c", FLOOR, str(model["xml"]), str(listing), str(net.width),
                        str(net.height)], capture_output=True, check=True)

    ours()  # a first run outside the rounds: the floor's IR, the page cache warm for all three
    cases = {"ours": ours, "alexeyab": alexeyab}
    if len(checkpoints) == 1:  # the floor of one checkpoint (of several it would read the images again)
        cases["floor"] = floor
    times = interleaved(cases, rounds, warmup=0)
    shutil.rmtree(model["xml"].parent)
    per_s = {k: [images * len(checkpoints) / t for t in v] for k, v in times.items()}
    print(f"{images} images x {len(checkpoints)} checkpoint(s), {net.width}x{net.height}: model-tools evaluate "
          f"{spread(per_s['ours'])} images/s, AlexeyAB detector map {spread(per_s['alexeyab'])}"
          + (f", floor {spread(per_s['floor'])}" if "floor" in per_s else ""))
    print("   " + ratio_line("ours / AlexeyAB images/s", per_s["ours"], per_s["alexeyab"]))
    if "floor" in per_s:
        print("   " + ratio_line("floor / AlexeyAB images/s", per_s["floor"], per_s["alexeyab"]))
        print("   " + ratio_line("ours / floor images/s", per_s["ours"], per_s["floor"]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("darknet", help="an AlexeyAB (or hank-ai) darknet binary")
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("sizes", nargs="*", default=["200x1", "200x10", "1000x1"],
                        help="IMAGESxCHECKPOINTS of the synthetic set")
    parser.add_argument("--trained", action="store_true", help="the demo model's trained weights (trained())")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--cfg", type=Path)
    parser.add_argument("--weights", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if not shutil.which(args.darknet):
        raise SystemExit(f"{args.darknet}: not an executable darknet")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data:
            if not (args.cfg and args.weights):
                raise SystemExit("--data needs --cfg and --weights")
            compare(args.darknet, args.data, args.cfg, args.weights, args.rounds, tmp)
            return
        for size in args.sizes:
            images, checkpoints = map(int, size.split("x"))
            data, cfg_path, weights_paths = synthetic(tmp, images, 0 if args.trained else checkpoints)
            if args.trained:
                cfg_path, weights_paths = trained(tmp, checkpoints)
            compare(args.darknet, data, cfg_path, weights_paths, args.rounds, tmp)


if __name__ == "__main__":
    main()
