"""Training-log parsing in MB/s on logs in each fork's real line formats, against `grep -c` on the
same file in the same run: the cases take turns in every round (benchmarks/common.interleaved),
and the ratio to grep's time is taken within each round; medians and [min–max] over the rounds.

The logs are written with the forks' exact print formats (tests/tools/log_formats.py): YOLOv2 and
YOLOv3 for pjreddie and AlexeyAB, YOLOv3 for hank-ai, 16 subdivisions, -map every 100 iterations.
Cases: `parse` is darknet_log.read_log (the rows as a table, what parse-log writes); `command` the
whole `python -m model_tools parse-log LOG CSV` (start-up, parse, CSV written and synced);
`grep` is `grep -c images LOG` (a pass over the file in C that counts lines). Besides wall-clock
MB/s, each case's MB per second of CPU time it used (this process's or its child's, getrusage):
on the shared 2-core machine the wall clock also counts the time others hold the cores.
    python benchmarks/bench_log_parse.py [--mb 60] [--rounds 5] [--fallback] [--forks a,b]
--fallback also times the regex fallback (the parser without its compiled scanner).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, interleaved, ratios, spread

from model_tools import darknet_log, native  # noqa: E402
from tests.tools import log_formats  # noqa: E402


def build(fork: str, path: Path, megabytes: float) -> float:
    text, _ = log_formats.write(fork, 300, subdivisions=16, map_every=100, seed=1)
    data = text.encode()
    repeats = max(1, -(-int(megabytes * 1e6) // len(data)))
    with open(path, "wb") as f:
        for _ in range(repeats):
            f.write(data)
    return len(data) * repeats / 1e6


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def with_cpu_time(fn, spent: list):
    def run():
        start = cpu_seconds()
        fn()
        spent.append(cpu_seconds() - start)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=60, help="size of each log in MB (default 60)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--fallback", action="store_true", help="also time the regex fallback")
    ap.add_argument("--forks", default=",".join(log_formats.FORKS), help="comma-separated (default: all)")
    args = ap.parse_args()
    if native.library() is None:
        sys.exit(f"the compiled log scanner is {native.status()}: build it first "
                 "(python setup.py build_ext --inplace)")
    print(f"scanner: {native.status()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for fork in args.forks.split(","):
            log = tmp / f"{fork}.log"
            size = build(fork, log, args.mb)
            env = dict(os.environ, PYTHONPATH=str(REPO))
            cases = {
                "parse": lambda: darknet_log.read_log(log),
                "command": lambda: subprocess.run(
                    [sys.executable, "-m", "model_tools", "parse-log", str(log), str(tmp / "m.csv")],
                    stdout=subprocess.DEVNULL, check=True, env=env),
                "grep": lambda: subprocess.run(["grep", "-c", "images", str(log)], stdout=subprocess.DEVNULL,
                                               check=True),
            }
            if args.fallback:
                cases["fallback"] = lambda: darknet_log.read_log(log, use_native=False)
            rows = len(darknet_log.read_log(log).table)
            cpu = {name: [] for name in cases}
            times = interleaved({name: with_cpu_time(fn, cpu[name]) for name, fn in cases.items()}, args.rounds)
            print(f"{fork}: {size:.1f} MB, {rows} iterations, {args.rounds} interleaved rounds", flush=True)
            for name in times:
                line = f"  {name:9s} {spread([size / t for t in times[name]])} MB/s"
                if name != "grep":
                    line += (f" ({spread([size / t for t in cpu[name][1:]])} MB per CPU second); "
                             f"time / grep's x{spread(ratios(times[name], times['grep']))}")
                print(line, flush=True)


if __name__ == "__main__":
    main()
