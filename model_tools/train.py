"""Drive `darknet detector train`: live progress, metrics CSV, resume, clear failures.

Works with the Debian pjreddie build (CPU, as in CI) and AlexeyAB/hank-ai builds with CUDA
(on the AWS box): the checkpoint names and log lines of both are understood.
"""
from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

import numpy as np

from edge_app.errors import InputError
from model_tools import darknet_log
from model_tools.dataset import read_data_file


class TrainingFailed(InputError):
    pass


def find_darknet(path: Optional[str]) -> str:
    candidate = path or os.environ.get("DARKNET") or "darknet"
    found = shutil.which(candidate)
    if not found:
        raise InputError(f"darknet binary {candidate!r} not found", "--darknet",
                         "install it (apt install darknet, or build AlexeyAB/hank-ai) or give --darknet PATH")
    return found


def checkpoint_base(cfg_path: Union[str, Path]) -> str:
    """The name darknet gives a cfg's checkpoints: the file name up to its first dot
    (darknet's basecfg), e.g. logos.v2.cfg -> logos_1000.weights."""
    return Path(cfg_path).name.split(".")[0]


def resume_point(backup: Path, cfg_stem: str) -> Optional[Path]:
    """The newest checkpoint of this cfg: pjreddie's .backup, AlexeyAB's _last, or _<i>."""
    candidates = [backup / f"{cfg_stem}.backup", backup / f"{cfg_stem}_last.weights",
                  *backup.glob(f"{cfg_stem}_[0-9]*.weights")]
    existing = [p for p in candidates if p.exists()]
    return max(existing, key=lambda p: p.stat().st_mtime) if existing else None


@dataclass
class TrainResult:
    rows: List[darknet_log.Row]
    log: Path
    csv: Path
    final: Optional[Path]


def max_batches(cfg_path: Path) -> int:
    from model_tools.cfg import parse_text

    net = parse_text(cfg_path.read_text(), str(cfg_path))[0]
    return net.int("max_batches", 0)


def train(data_file: Union[str, Path], cfg_path: Union[str, Path], weights: Optional[Union[str, Path]] = None,
          darknet: Optional[str] = None, workdir: Union[str, Path] = ".", resume: bool = True,
          progress: bool = True, extra_args: Optional[List[str]] = None) -> TrainResult:
    """Run darknet until it finishes; raise TrainingFailed on a non-zero exit or a NaN loss."""
    from tqdm import tqdm

    binary = find_darknet(darknet)
    data_file, cfg_path = Path(data_file).resolve(), Path(cfg_path).resolve()
    for path, flag in ((data_file, "data"), (cfg_path, "cfg")):
        if not path.is_file():
            raise InputError(f"{flag} file not found", str(path), f"check the {flag} path")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    data = read_data_file(data_file)
    backup = Path(data.get("backup", "backup"))
    if not backup.is_absolute():
        backup = workdir / backup
    backup.mkdir(parents=True, exist_ok=True)
    start_weights = Path(weights).resolve() if weights else None
    if resume:
        point = resume_point(backup, checkpoint_base(cfg_path))
        if point is not None:
            start_weights = point
    total = max_batches(cfg_path)
    log_path = workdir / "train.log"
    csv_path = workdir / "metrics.csv"
    previous = darknet_log.read_csv(csv_path) if resume and csv_path.exists() else []

    command = [binary, "detector", "train", str(data_file), str(cfg_path)]
    if start_weights:
        command.append(str(start_weights))
    command += extra_args or []
    if shutil.which("stdbuf"):  # darknet's stdio buffers a pipe in 4 KB blocks otherwise
        command = ["stdbuf", "-oL", "-eL"] + command
    rows = [r for r in previous if not start_weights or r.iteration <= _seen_iteration(start_weights, cfg_path)]
    parser = darknet_log.Parser()
    checked: set = set()
    tail: deque = deque(maxlen=30)
    bar = tqdm(total=total or None, desc="training", unit="it", disable=not progress,
               initial=rows[-1].iteration if rows else 0)
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8", errors="replace", buffering=1) as log:  # tail -f friendly
        log.write(f"\n# {' '.join(command)}\n")
        proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", bufsize=1, start_new_session=True)
        try:
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip("\n"))
                row = parser.feed(line)
                if row is None:
                    continue
                rows.append(row)
                if math.isnan(row.loss) or math.isnan(row.avg_loss):
                    _stop(proc)
                    darknet_log.write_csv(rows, csv_path)
                    raise TrainingFailed(
                        f"the loss became NaN at iteration {row.iteration}; training diverged", str(log_path),
                        "lower learning_rate in the cfg, or look for broken labels (model-tools import "
                        "report), then run again (it resumes from the last good checkpoint)")
                if row.iteration % 100 == 1 and row.iteration > 200:
                    _check_learning(cfg_path, backup, checkpoint_base(cfg_path), checked)
                bar.n = row.iteration
                bar.set_postfix(loss=f"{row.loss:.3f}", avg=f"{row.avg_loss:.3f}", refresh=False)
                bar.refresh()
                if len(rows) % 20 == 0:
                    darknet_log.write_csv(rows, csv_path)
            code = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        finally:
            bar.close()
            darknet_log.write_csv(rows, csv_path)
    if code != 0:
        raise TrainingFailed(f"darknet exited with code {code} after {time.monotonic() - started:.0f} s; "
                             "last lines:\n    " + "\n    ".join(tail), str(log_path),
                             "read the lines above (a missing file in the .data or list, a cfg darknet rejects)")
    final = next((p for p in (backup / f"{checkpoint_base(cfg_path)}_final.weights",) if p.exists()), None)
    if not rows and final is None:
        # pjreddie's darknet exits 0 on "Couldn't open file": no iteration, no weights = failure
        raise TrainingFailed("darknet ended without training a single iteration; last lines:\n    "
                             + "\n    ".join(tail), str(log_path),
                             "check the paths in the .data file and the image lists")
    return TrainResult(rows, log_path, csv_path, final)


def not_learning(cfg_path: Path, earlier: Path, later: Path) -> bool:
    """True when no convolution's biases or batch-norm scales moved between two checkpoints:
    gradients are not reaching the network (weight decay alone still shrinks the weights).
    This is what pjreddie darknet does on a CPU with a [region] head: its CPU backward pass of
    the region layer is empty."""
    from model_tools import cfg as cfg_mod, weights as weights_mod

    try:
        net = cfg_mod.load(cfg_path)
        a, b = weights_mod.read(earlier, net), weights_mod.read(later, net)
    except InputError:
        return False  # a head this tool does not plan ([yolo]): nothing to compare
    if a.header.seen == b.header.seen:
        return False
    for pa, pb in zip(a.layers, b.layers):
        if pa is None:
            continue
        if not np.array_equal(pa.biases, pb.biases) or (
                pa.scales is not None and not np.array_equal(pa.scales, pb.scales)):
            return False
    return True


def _check_learning(cfg_path: Path, backup: Path, base: str, checked: set) -> None:
    numbered = sorted((p for p in backup.glob(f"{base}_[0-9]*.weights")),
                      key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if len(numbered) >= 2 and (numbered[0], numbered[1]) not in checked:
        checked.add((numbered[0], numbered[1]))
        if not_learning(cfg_path, numbered[0], numbered[1]):
            raise TrainingFailed(
                f"darknet is not updating the model: no bias or batch-norm scale changed between "
                f"{numbered[0].name} and {numbered[1].name}. pjreddie darknet (the Debian package) "
                "cannot train a [region] head on the CPU: its CPU backward pass for that layer is empty",
                str(cfg_path), "train with a [yolo] head (model-tools pipeline --train-head yolo, the "
                "default), or use a CUDA build / AlexeyAB darknet")


def _seen_iteration(weights: Path, cfg_path: Path) -> int:
    """Iteration a checkpoint was saved at, from its header's `seen` and the cfg's batch."""
    from model_tools.cfg import parse_text
    from model_tools.weights import parse_header

    try:
        header = parse_header(weights.read_bytes()[:20], str(weights))
        batch = parse_text(cfg_path.read_text(), str(cfg_path))[0].int("batch", 1)
        return header.seen // max(batch, 1)
    except (InputError, OSError):
        return 1 << 62


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
