"""Training-log parsing in MB/s on logs in each fork's real line formats, against `grep -c` on the
same file in the same run (interleaved: parse, grep, parse, grep, ...; medians and spread).

The logs are written with the forks' exact print formats (tests/tools/log_formats.py): YOLOv2 and
YOLOv3 for pjreddie and AlexeyAB, YOLOv3 for hank-ai, 16 subdivisions, -map every 100 iterations.
    python benchmarks/bench_log_parse.py [--mb 60] [--pairs 5] [--cli]
--cli also times the whole `model-tools parse-log` command (start-up, parse, CSV) the same way.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO

sys.path.insert(0, str(REPO))
from model_tools import darknet_log  # noqa: E402
from tests.tools import log_formats  # noqa: E402


def build(fork: str, path: Path, megabytes: float) -> float:
    text, _ = log_formats.write(fork, 300, subdivisions=16, map_every=100, seed=1)
    data = text.encode()
    repeats = max(1, int(megabytes * 1e6 / len(data)))
    with open(path, "wb") as f:
        for _ in range(repeats):
            f.write(data)
    return len(data) * repeats / 1e6


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def spread(times):
    return f"{min(times):.3f}-{max(times):.3f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=60, help="size of each log in MB (default 60)")
    ap.add_argument("--pairs", type=int, default=5, help="interleaved measurement pairs (default 5)")
    ap.add_argument("--cli", action="store_true", help="also time the whole parse-log command")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for fork in log_formats.FORKS:
            log = tmp / f"{fork}.log"
            size = build(fork, log, args.mb)
            rows = len(darknet_log.read_log(log).rows)  # warm-up, and the row count

            def parse():
                darknet_log.read_log(log)

            def grep():
                subprocess.run(["grep", "-c", "images", str(log)], stdout=subprocess.DEVNULL, check=True)

            def cli():
                subprocess.run([sys.executable, "-m", "model_tools", "parse-log", str(log), str(tmp / "m.csv")],
                               stdout=subprocess.DEVNULL, check=True, env={"PYTHONPATH": str(REPO)})

            ours, theirs, whole = [], [], []
            for _ in range(args.pairs):
                ours.append(timed(parse))
                theirs.append(timed(grep))
                if args.cli:
                    whole.append(timed(cli))
            p, g = statistics.median(ours), statistics.median(theirs)
            line = (f"{fork:12s} {size:5.1f} MB, {rows} iterations: parse {size / p:6.1f} MB/s ({spread(ours)}), "
                    f"grep -c {size / g:6.0f} MB/s ({spread(theirs)}): parsing takes x{p / g:.0f} grep's time")
            if args.cli:
                line += f"; whole parse-log command {size / statistics.median(whole):.1f} MB/s ({spread(whole)})"
            print(line, flush=True)


if __name__ == "__main__":
    main()
