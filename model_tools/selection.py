"""Choosing the checkpoint to deploy from evaluated rows (evaluation.csv)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Sequence, Union

from edge_app.errors import InputError


def select(rows: Sequence[Dict[str, object]]) -> Dict[str, object]:
    """The best checkpoint: highest mAP, ties broken by F1 (then the later checkpoint)."""
    if not rows:
        raise InputError("no evaluated checkpoints to choose from", "--backup",
                         "train first, or point at the folder holding the .weights")
    return max(enumerate(rows), key=lambda ir: (round(float(ir[1]["map"]), 6), round(float(ir[1]["f1"]), 6), ir[0]))[1]


def selection_report(rows: Sequence[Dict[str, object]], best: Dict[str, object]) -> str:
    lines = ["checkpoint                          mAP@0.5   F1     precision  recall  TP    FP    FN    avg IoU",
             "-" * 100]
    for r in rows:
        mark = "  <== best" if r is best else ""
        lines.append(f"{str(r['checkpoint'])[:34]:34s}  {100 * float(r['map']):6.2f}%  {float(r['f1']):.3f}  "
                     f"{float(r['precision']):9.3f}  {float(r['recall']):6.3f}  {int(r['tp']):4d}  {int(r['fp']):4d}  "
                     f"{int(r['fn']):4d}  {100 * float(r['avg_iou']):6.2f}%{mark}")
    lines.append("")
    lines.append(f"chosen: {best['checkpoint']} (mAP {100 * float(best['map']):.2f}%, F1 {float(best['f1']):.3f}); "
                 "rule: highest mAP, ties by F1")
    return "\n".join(lines) + "\n"


def read_rows(path: Union[str, Path]) -> List[Dict[str, object]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(f"cannot read evaluation results: {exc.strerror}", str(path),
                         "run model-tools evaluate first") from None
