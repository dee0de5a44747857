"""PNG plots of training and evaluation (matplotlib, no display needed)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Sequence, Union


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Union[str, Path]) -> Path:
    from edge_app.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def training(rows, out_dir: Union[str, Path]) -> List[Path]:
    """loss.png (loss, avg loss) and region.png (IOU, recall, objectness) over iterations."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    it = [r.iteration for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(it, [r.loss for r in rows], lw=0.6, alpha=0.5, label="loss")
    ax.plot(it, [r.avg_loss for r in rows], lw=1.5, label="avg loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    finite = [r.avg_loss for r in rows if not math.isnan(r.avg_loss)]
    if finite and max(finite) / max(min(finite), 1e-9) > 50:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("darknet training loss")
    paths = [_save(fig, out_dir / "loss.png")]
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, label in (("region_iou", "avg IOU"), ("region_recall", "recall"), ("region_obj", "obj"),
                        ("region_no_obj", "no obj")):
        ax.plot(it, [getattr(r, name) for r in rows], lw=1, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("region layer statistics (per iteration, count-weighted)")
    paths.append(_save(fig, out_dir / "region.png"))
    return paths


def map_per_checkpoint(results: Sequence[Dict[str, object]], path: Union[str, Path]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [str(r["checkpoint"]) for r in results]
    ax.plot(range(len(results)), [float(r["map"]) for r in results], "o-", label="mAP@0.5")
    ax.plot(range(len(results)), [float(r["f1"]) for r in results], "s--", label="F1 @ conf 0.25")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("checkpoints on the validation set")
    return _save(fig, path)


def pr_curves(metrics, path: Union[str, Path]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    for c in metrics.classes:
        if len(c.recall):
            ax.plot(c.recall, c.precision, lw=1.2, label=f"{c.name} (AP {100 * c.ap:.1f}%)")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"precision-recall, mAP@{metrics.iou_threshold:.2f} = {100 * metrics.map:.2f}%")
    return _save(fig, path)
