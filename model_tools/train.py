"""Drive `darknet detector train`: live progress, metrics CSV, resume, clear failures.

Works with the Debian pjreddie build (CPU, as in CI) and AlexeyAB/hank-ai builds with CUDA
(on the AWS box): the checkpoint names and log lines of both are understood.
"""
from __future__ import annotations

import fcntl
import math
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np

from edge_app.errors import InputError
from model_tools import darknet_log
from model_tools.checkpoints import backup_dir, checkpoint_base, resolve_for_darknet, resume_point  # noqa: F401


class TrainingFailed(InputError):
    pass


class Stopped(KeyboardInterrupt):
    """SIGTERM/SIGINT reached the driver; darknet has been stopped with it."""


@dataclass(frozen=True)
class Darknet:
    path: str
    fork: str   # "pjreddie", "alexeyab", "hank-ai" or "unknown"
    chosen_by: str  # "--darknet", "$DARKNET" or "PATH"

    def describe(self) -> str:
        return f"darknet {self.path} ({self.fork}, chosen by {self.chosen_by})"


def find_darknet(path: Optional[str]) -> Darknet:
    """The darknet binary to run and its fork. Without --darknet or $DARKNET the one on PATH is
    used, and the caller says so: on a box with Debian's package that is pjreddie's 2018 build."""
    if path:
        candidate, chosen_by = path, "--darknet"
    elif os.environ.get("DARKNET"):
        candidate, chosen_by = os.environ["DARKNET"], "$DARKNET"
    else:
        candidate, chosen_by = "darknet", "PATH"
    found = shutil.which(candidate)
    if not found:
        raise InputError(f"darknet binary {candidate!r} not found", chosen_by,
                         "install it (apt install darknet, or build AlexeyAB/hank-ai) or give --darknet PATH")
    return Darknet(found, darknet_fork(found), chosen_by)


def darknet_fork(binary: str) -> str:
    """Which fork a darknet binary is, from the training-summary format compiled into it
    (hank-ai keeps its code in libdarknet, so it is asked for its version instead)."""
    try:
        with open(binary, "rb") as f:
            image = f.read(64 * 1024 * 1024)
    except OSError:
        image = b""
    if b"avg loss, %f rate" in image:
        return "alexeyab"
    if b"%f avg, %f rate" in image:
        return "pjreddie"
    try:
        out = subprocess.run([binary, "version"], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        text = (out.stdout + out.stderr).decode("utf-8", "replace").lower()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return "hank-ai" if "hank" in text or "darknet v" in text else "unknown"


FORK_ONLY_FLAGS = {"-map": ("alexeyab", "hank-ai"), "-dont_show": ("alexeyab", "hank-ai")}


def darknet_flags(darknet: Darknet, map_: bool = False, dont_show: bool = False, gpus: str = "",
                  extra: Sequence[str] = ()) -> List[str]:
    """The flags appended to `darknet detector train`; a flag the chosen fork would silently
    ignore is an error (pjreddie has no -map)."""
    flags = (["-map"] if map_ else []) + (["-dont_show"] if dont_show else []) + (["-gpus", gpus] if gpus else [])
    flags += list(extra)
    for flag in flags:
        forks = FORK_ONLY_FLAGS.get(flag)
        if forks and darknet.fork not in forks and darknet.fork != "unknown":
            raise InputError(f"{flag} is a flag of {' and '.join(forks)} darknet; {darknet.describe()} ignores it",
                             flag, "give --darknet the AlexeyAB or hank-ai binary, or drop the flag")
    if gpus and not all(part.isdigit() for part in gpus.split(",")):
        raise InputError(f"-gpus wants GPU numbers such as 0,1, not {gpus!r}", "--gpus", "e.g. --gpus 0,1")
    return flags


NET_KEYS_DEFINING_THE_NETWORK = ("width", "height", "channels")
NETWORK_STAMP = ".network.sha256"


def network_digest(cfg_path: Union[str, Path]) -> str:
    """sha256 of what defines the trained network: every layer section with its options, and the
    [net] input size. Training settings ([net] learning_rate, max_batches, batch, ...) are left out,
    so raising max_batches still resumes; any change to a layer, the anchors or the size does not."""
    import hashlib

    from model_tools.cfg import parse_text

    path = Path(cfg_path)
    parts = []
    for section in parse_text(path.read_text(), str(path)):
        options = section.options
        if section.kind == "net":
            options = {k: v for k, v in options.items() if k in NET_KEYS_DEFINING_THE_NETWORK}
        parts.append(f"[{section.kind}]" + ";".join(f"{k}={options[k]}" for k in sorted(options)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def set_aside_other_network(backup: Path, cfg_path: Path, workdir: Path, log=print) -> None:
    """Checkpoints in `backup` trained with another network than cfg_path (per the stamp written
    beside them) are moved into a sub-folder, with the metrics of that run, so darknet never
    resumes from weights of another network (AlexeyAB would load them without complaint)."""
    digest = network_digest(cfg_path)
    base = checkpoint_base(cfg_path)
    stamp = backup / f"{base}{NETWORK_STAMP}"
    previous = stamp.read_text().strip() if stamp.exists() else ""
    checkpoints = [p for p in (backup / f"{base}.backup", *backup.glob(f"{base}_*.weights")) if p.exists()]
    if checkpoints and previous != digest:
        aside = backup / f"other-network-{(previous or 'unstamped')[:12]}"
        aside.mkdir(exist_ok=True)
        for p in checkpoints:
            p.replace(aside / p.name)
        for name in ("metrics.csv",):
            if (workdir / name).exists():
                (workdir / name).replace(aside / name)
        log(f"{len(checkpoints)} checkpoint(s) in {backup} belong to another network than {cfg_path.name} "
            f"(its layers, anchors or size changed): moved to {aside}; training starts afresh")
    if previous != digest:
        stamp.write_text(digest + "\n")


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


@contextmanager
def backup_lock(backup: Path) -> Iterator[None]:
    """One training per backup folder: a second darknet would overwrite the first one's checkpoints."""
    lock_path = backup / ".model-tools-train.lock"
    handle = open(lock_path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InputError(f"another model-tools train ({holder}) is training into this backup folder", str(backup),
                         "wait for it to finish or stop it; or give this run another backup= in its .data") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGTERM (systemd, kill) and SIGINT become `Stopped` so darknet is stopped with the driver."""
    def raise_stopped(signum, _frame):
        raise Stopped(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train(data_file: Union[str, Path], cfg_path: Union[str, Path], weights: Optional[Union[str, Path]] = None,
          darknet: Optional[str] = None, workdir: Union[str, Path] = "training", resume: bool = True,
          progress: bool = True, extra_args: Optional[List[str]] = None,
          darknet_cwd: Union[str, Path, None] = None, log=print) -> TrainResult:
    """Run darknet until it finishes; raise TrainingFailed on a non-zero exit, a NaN loss, labels
    darknet cannot open, or a network that does not learn. darknet runs in `darknet_cwd` (default:
    the current folder, as when run by hand), so relative paths in the .data mean what they mean
    to darknet; the log, metrics and plots go to `workdir`."""
    from tqdm import tqdm

    from model_tools.dataset import check_labels

    binary = find_darknet(darknet)
    log(f"using {binary.describe()}" + (" — give --darknet or set $DARKNET to choose another"
                                        if binary.chosen_by == "PATH" else ""))
    flags = list(extra_args or [])
    darknet_flags(binary, extra=flags)
    data_file, cfg_path = Path(data_file).resolve(), Path(cfg_path).resolve()
    for path, flag in ((data_file, "data"), (cfg_path, "cfg")):
        if not path.is_file():
            raise InputError(f"{flag} file not found", str(path), f"check the {flag} path")
    darknet_cwd = Path(darknet_cwd or Path.cwd()).resolve()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    check_labels(data_file, "pjreddie" if binary.fork == "pjreddie" else "alexeyab", base=darknet_cwd)
    backup = backup_dir(data_file, darknet_cwd)
    backup.mkdir(parents=True, exist_ok=True)
    with backup_lock(backup), _signals_stop():
        if resume:
            set_aside_other_network(backup, cfg_path, workdir, log)
        return _run(binary, data_file, cfg_path, weights, workdir, darknet_cwd, backup, resume, progress,
                    flags, tqdm, log)


def _run(binary: Darknet, data_file: Path, cfg_path: Path, weights, workdir: Path, darknet_cwd: Path,
         backup: Path, resume: bool, progress: bool, flags: List[str], tqdm, say) -> TrainResult:
    start_weights = Path(weights).resolve() if weights else None
    total = max_batches(cfg_path)
    log_path = workdir / "train.log"
    csv_path = workdir / "metrics.csv"
    previous = darknet_log.read_csv(csv_path) if resume and csv_path.exists() else []
    if resume:
        point = resume_point(backup, checkpoint_base(cfg_path))
        if point is not None:
            start_weights = point
            done_at = _seen_iteration(point, cfg_path)
            if total and total <= done_at < (1 << 62):
                # nothing left to train; and pjreddie may crash when started at max_batches
                # (its loader thread is still running when it exits)
                say(f"training already reached max_batches={total} ({point.name}); raise max_batches in "
                    f"{cfg_path.name} to train longer")
                final = backup / f"{checkpoint_base(cfg_path)}_final.weights"
                return TrainResult([r for r in previous if r.iteration <= done_at], log_path, csv_path,
                                   final if final.exists() else point)

    command = [binary.path, "detector", "train", str(data_file), str(cfg_path)]
    if start_weights:
        command.append(str(start_weights))
    command += flags
    if shutil.which("stdbuf"):  # darknet's stdio buffers a pipe in 4 KB blocks otherwise
        command = ["stdbuf", "-oL", "-eL"] + command
    # the metrics of the run being resumed, up to the checkpoint it resumes from
    rows = [r for r in previous if start_weights and r.iteration <= _seen_iteration(start_weights, cfg_path)]
    parser = darknet_log.Parser()
    learning = LearningCheck(cfg_path, backup, checkpoint_base(cfg_path))
    tail: deque = deque(maxlen=30)
    bar = tqdm(total=total or None, desc="training", unit="it", disable=not progress,
               initial=rows[-1].iteration if rows else 0)
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8", errors="replace", buffering=1) as log:  # tail -f friendly
        log.write(f"\n# in {darknet_cwd}: {' '.join(command)}\n")
        proc = subprocess.Popen(command, cwd=darknet_cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1,
                                start_new_session=True)  # its own process group: stopped as one
        try:
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip("\n"))
                row = parser.feed(line)
                if parser.missing_labels:
                    raise TrainingFailed(
                        "darknet cannot open the label file of an image (\"Can't open label file\"): it would "
                        "train on no objects; line: " + line.strip(), str(log_path),
                        "keep each image's .txt beside it (model-tools import does) and check the lists in "
                        f"{data_file}")
                if row is None:
                    continue
                rows.append(row)
                if math.isnan(row.loss) or math.isnan(row.avg_loss):
                    raise TrainingFailed(
                        f"the loss became NaN at iteration {row.iteration}; training diverged", str(log_path),
                        "lower learning_rate in the cfg, or look for broken labels (model-tools import "
                        "report), then run again (it resumes from the last good checkpoint)")
                learning.after(row.iteration)
                bar.n = row.iteration
                bar.set_postfix(loss=f"{row.loss:.3f}", avg=f"{row.avg_loss:.3f}", refresh=False)
                bar.refresh()
                if len(rows) % 20 == 0:
                    darknet_log.write_csv(rows, csv_path)
            code = proc.wait()
        finally:
            _stop(proc)
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


class LearningCheck:
    """Stops a run whose checkpoints stop changing. Looks at the newest checkpoint after every
    100th iteration — pjreddie's .backup and AlexeyAB/hank-ai's _last are written every 100, so the
    check works long before AlexeyAB's first numbered checkpoint (1000) — and compares it with the
    first one it saw at a different `seen`."""

    def __init__(self, cfg_path: Path, backup: Path, base: str):
        self.cfg_path, self.backup, self.base = cfg_path, backup, base
        self.first = None  # (seen, path name, parameters)
        self.done = False

    def after(self, iteration: int) -> None:
        if self.done or iteration % 100 != 1 or iteration < 100:
            return
        point = resume_point(self.backup, self.base)
        if point is None:
            return
        loaded = _parameters(self.cfg_path, point)
        if loaded is None:
            return
        if self.first is None:
            self.first = (loaded[0], point.name, loaded[1])
            return
        if loaded[0] == self.first[0]:
            return
        self.done = True
        if not _moved(self.first[2], loaded[1]):
            raise TrainingFailed(
                f"darknet is not updating the model: no bias or batch-norm scale changed between "
                f"{self.first[1]} (seen {self.first[0]}) and {point.name} (seen {loaded[0]}). pjreddie darknet "
                "(the Debian package) cannot train a [region] head on the CPU: its CPU backward pass for that "
                "layer is empty", str(self.cfg_path), "train with a [yolo] head (model-tools pipeline "
                "--train-head yolo, the default), or use a CUDA build / AlexeyAB darknet")


def _parameters(cfg_path: Path, weights_path: Path):
    """(seen, [(biases, scales) per conv]) of a checkpoint, or None if it cannot be read (darknet
    may be writing it, or the head is one this tool does not plan)."""
    from model_tools import cfg as cfg_mod, weights as weights_mod

    try:
        net = cfg_mod.load(cfg_path)
        w = weights_mod.read(weights_path, net)
    except (InputError, OSError, ValueError):
        return None
    return w.header.seen, [None if p is None else (p.biases.copy(), None if p.scales is None else p.scales.copy())
                           for p in w.layers]


def _moved(a, b) -> bool:
    for pa, pb in zip(a, b):
        if pa is None or pb is None:
            continue
        if not np.array_equal(pa[0], pb[0]) or (pa[1] is not None and not np.array_equal(pa[1], pb[1])):
            return True
    return False


def not_learning(cfg_path: Path, earlier: Path, later: Path) -> bool:
    """True when no convolution's biases or batch-norm scales moved between two checkpoints:
    gradients are not reaching the network (weight decay alone still shrinks the weights).
    This is what pjreddie darknet does on a CPU with a [region] head: its CPU backward pass of
    the region layer is empty."""
    a, b = _parameters(cfg_path, earlier), _parameters(cfg_path, later)
    if a is None or b is None or a[0] == b[0]:
        return False  # unreadable, or the same moment of training: nothing to compare
    return not _moved(a[1], b[1])


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
