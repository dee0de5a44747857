"""Where darknet training leaves a cfg's checkpoints, what they are named and in which order
they were written: for `train` (resuming) and `evaluate` (every checkpoint of a run). Without
numpy: `model-tools evaluate` finds its first checkpoint before it loads numpy
(model_tools.image_reader)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

from model_tools.dataset import read_data_file


def resolve_for_darknet(value: str, darknet_cwd: Union[str, Path]) -> Path:
    """A path from a .data file as darknet opens it: relative to the folder darknet runs in."""
    path = Path(value.strip())
    return path if path.is_absolute() else Path(darknet_cwd).resolve() / path


def backup_dir(data_file: Union[str, Path], darknet_cwd: Union[str, Path, None] = None) -> Path:
    """Where darknet saves the checkpoints of a .data file (its backup=, default "backup/"),
    resolved from darknet's working folder (default: the current one, as when run by hand).
    `train` and `evaluate` both use this."""
    data = read_data_file(data_file)
    return resolve_for_darknet(data.get("backup", "backup"), darknet_cwd or Path.cwd())


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


def checkpoint_iteration(path: Path) -> int:
    """Training iteration encoded in a darknet checkpoint name (-1 if unknown)."""
    stem = path.stem
    tail = stem.rsplit("_", 1)[-1]
    if tail.isdigit():
        return int(tail)
    return -1


def list_checkpoints(backup: Union[str, Path], cfg_stem: str) -> List[Path]:
    """Checkpoints of one cfg in a backup folder, in training order: `<cfg>_<i>.weights` of both
    forks, then `_last`, `.backup`, `_final`, `_best` (which have no iteration in their name)."""
    backup = Path(backup)
    numbered = sorted((p for p in backup.glob(f"{cfg_stem}_*.weights") if checkpoint_iteration(p) >= 0),
                      key=checkpoint_iteration)
    named = [backup / f"{cfg_stem}{suffix}" for suffix in
             ("_last.weights", ".backup", "_final.weights", "_best.weights")]
    return numbered + [p for p in named if p.exists()]
