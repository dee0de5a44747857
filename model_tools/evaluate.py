"""Detection metrics with the definitions of AlexeyAB's `darknet detector map`, and the
evaluation of checkpoints through the exact path the Pi runs (export → OpenVINO → edge decode).

Matching: detections (all images, threshold 0.005, NMS 0.45) sorted by falling score; each one
is matched to the truth of its class with the highest IoU, if that IoU is > the IoU threshold
(0.5). The first detection to hit a truth is a TP; later hits on it and detections matching
nothing are FPs. Truths marked difficult (VOC) count neither way: a detection that hits one
is ignored, and they are not in the recall's denominator.
AP: area under the monotone precision envelope at every recall step (VOC2010+, darknet's
default), or the 11-point VOC2007 mean. At conf 0.25: precision, recall, F1, TP, FP, FN and
average IoU = sum of the TPs' IoU / (TP + FP).
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.errors import InputError

# (image id, class, score, x1, y1, x2, y2)
Detection = Tuple[str, int, float, float, float, float, float]
# (image id, class, x1, y1, x2, y2, difficult)
Truth = Tuple[str, int, float, float, float, float, bool]


def iou(a: Sequence[float], b: np.ndarray) -> np.ndarray:
    """IoU of box a (x1, y1, x2, y2) with each row of b."""
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray, points: int = 0) -> float:
    """points=0: area under the monotone envelope (VOC2010+); 11: VOC2007 11-point;
    101: COCO-style 101-point."""
    if len(recall) == 0:
        return 0.0
    if points:
        total = 0.0
        for t in np.linspace(0, 1, points):
            above = precision[recall >= t]
            total += above.max() if len(above) else 0.0
        return float(total / points)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


@dataclass
class ClassResult:
    name: str
    ap: float
    truths: int
    tp: int  # at the confidence threshold
    fp: int
    recall: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    precision: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


@dataclass
class Metrics:
    classes: List[ClassResult]
    map: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    avg_iou: float
    iou_threshold: float
    conf_threshold: float
    points: int
    images: int = 0
    seconds: float = 0.0

    def table(self) -> str:
        lines = [f" detections_count = {sum(c.tp + c.fp for c in self.classes)}, unique_truth_count = "
                 f"{sum(c.truths for c in self.classes)}"]
        for k, c in enumerate(self.classes):
            lines.append(f"class_id = {k}, name = {c.name}, ap = {100 * c.ap:.2f}%   \t (TP = {c.tp}, FP = {c.fp}) ")
        lines.append(f" for conf_thresh = {self.conf_threshold:.2f}, precision = {self.precision:.2f}, "
                     f"recall = {self.recall:.2f}, F1-score = {self.f1:.2f} ")
        lines.append(f" for conf_thresh = {self.conf_threshold:.2f}, TP = {self.tp}, FP = {self.fp}, "
                     f"FN = {self.fn}, average IoU = {100 * self.avg_iou:.2f} % ")
        kind = {0: "area under the curve", 11: "11-point", 101: "101-point"}.get(self.points, f"{self.points}-point")
        lines.append(f" IoU threshold = {100 * self.iou_threshold:.0f} %, used {kind} ")
        lines.append(f" mean average precision (mAP@{self.iou_threshold:.2f}) = {self.map:.6f}, or "
                     f"{100 * self.map:.2f} % ")
        return "\n".join(lines) + "\n"

    def summary(self) -> Dict[str, float]:
        return {"map": self.map, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "avg_iou": self.avg_iou,
                **{f"ap_{c.name}": c.ap for c in self.classes}}


def compute(detections: Sequence[Detection], truths: Sequence[Truth], names: Sequence[str],
            iou_threshold: float = 0.5, conf_threshold: float = 0.25, points: int = 0) -> Metrics:
    by_image: Dict[Tuple[str, int], List[int]] = {}
    truth_boxes = np.array([t[2:6] for t in truths], float).reshape(-1, 4)
    for index, t in enumerate(truths):
        by_image.setdefault((t[0], t[1]), []).append(index)
    taken = np.zeros(len(truths), bool)
    order = sorted(range(len(detections)), key=lambda i: -detections[i][2])
    # per detection: 1 = TP, 0 = FP, -1 = ignored (hit a difficult truth); and its IoU
    outcome = np.zeros(len(detections), int)
    best_iou = np.zeros(len(detections))
    for i in order:
        image, k, score, *box = detections[i]
        candidates = by_image.get((image, k), [])
        if not candidates:
            continue
        overlaps = iou(box, truth_boxes[candidates])
        j = int(np.argmax(overlaps))
        if overlaps[j] <= iou_threshold:
            continue
        t = candidates[j]
        best_iou[i] = overlaps[j]
        if truths[t][6]:
            outcome[i] = -1
        elif not taken[t]:
            taken[t] = True
            outcome[i] = 1
    results = []
    all_tp = all_fp = 0
    iou_sum = 0.0
    for k, name in enumerate(names):
        n_truth = sum(1 for t in truths if t[1] == k and not t[6])
        idx = [i for i in order if detections[i][1] == k and outcome[i] >= 0]
        hits = outcome[idx] if idx else np.zeros(0, int)
        tp_cum = np.cumsum(hits == 1)
        fp_cum = np.cumsum(hits == 0)
        recall = tp_cum / n_truth if n_truth else np.zeros(len(idx))
        precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
        ap = average_precision(recall, precision, points) if n_truth else 0.0
        at_conf = [i for i in idx if detections[i][2] >= conf_threshold]
        tp = int(sum(outcome[i] == 1 for i in at_conf))
        fp = len(at_conf) - tp
        iou_sum += float(sum(best_iou[i] for i in at_conf if outcome[i] == 1))
        all_tp += tp
        all_fp += fp
        results.append(ClassResult(name, ap, n_truth, tp, fp, recall, precision))
    n_truth_all = sum(c.truths for c in results)
    precision = all_tp / (all_tp + all_fp) if all_tp + all_fp else 0.0
    recall = all_tp / n_truth_all if n_truth_all else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    with_truths = [c.ap for c in results if c.truths]
    return Metrics(results, float(np.mean(with_truths)) if with_truths else 0.0, precision, recall, f1,
                   all_tp, all_fp, n_truth_all - all_tp, iou_sum / (all_tp + all_fp) if all_tp + all_fp else 0.0,
                   iou_threshold, conf_threshold, points)


# --------------------------------------------------------------------------------------------
# evaluating checkpoints through the edge path


def ground_truth(valid_list: Union[str, Path], names: Sequence[str]) -> Tuple[List[Path], List[Truth]]:
    """Images of a darknet list and their truths from the YOLO labels (+ difficult.json)."""
    from model_tools.dataset import image_size, label_path, read_labels

    valid_list = Path(valid_list)
    try:
        paths = [Path(p) for p in valid_list.read_text().split()]
    except OSError as exc:
        raise InputError(f"cannot read the validation list: {exc.strerror}", str(valid_list)) from None
    if not paths:
        raise InputError("the validation list is empty", str(valid_list), "import a dataset with a valid split")
    difficult_file = valid_list.parent / "difficult.json"
    difficult = json.loads(difficult_file.read_text()) if difficult_file.exists() else {}
    truths: List[Truth] = []
    for path in paths:
        try:
            width, height = image_size(path)
        except ValueError as exc:
            raise InputError(f"validation image {path}: {exc}", str(valid_list)) from None
        hard = set(difficult.get(path.stem, []))
        for index, (k, x1, y1, x2, y2) in enumerate(read_labels(label_path(path), width, height)):
            if k >= len(names):
                raise InputError(f"class id {k} in {label_path(path)} is beyond the {len(names)} names", str(label_path(path)))
            truths.append((path.stem, k, x1, y1, x2, y2, index in hard))
    return paths, truths


def detect_all(model_dir: Union[str, Path], images: Sequence[Path], threshold: float = 0.005,
               nms: float = 0.45, progress: bool = True, desc: str = "evaluating") -> Tuple[List[Detection], float]:
    """Run the exported model on every image with edge_app's Detector (as the Pi does)."""
    import cv2
    from tqdm import tqdm

    from edge_app.detector import Detector

    detector = Detector(model_dir, "CPU", threshold, nms)
    found: List[Detection] = []
    started = time.perf_counter()
    for path in tqdm(images, desc=desc, unit="img", disable=not progress, leave=False):
        frame = cv2.imread(str(path))
        for d in detector.detect(frame):
            found.append((path.stem, d.class_id, d.confidence, d.x1, d.y1, d.x2, d.y2))
    return found, time.perf_counter() - started


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


def write_csv(rows: Sequence[Dict[str, object]], path: Union[str, Path]) -> None:
    from edge_app.atomic import atomic_path

    keys: List[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)


def evaluate_checkpoints(cfg_path: Union[str, Path], names: Sequence[str], valid_list: Union[str, Path],
                         checkpoints: Sequence[Path], out_dir: Union[str, Path], *, fp16: bool = True,
                         resize_mode: Optional[str] = None, points: int = 0, progress: bool = True) -> List[Dict[str, object]]:
    """Export every checkpoint (FP16 by default, as the NCS2 runs it), detect on the validation
    list through edge_app, and score it. Exports are cached by the weights' hash, so a re-run
    only evaluates new checkpoints. Writes evaluation.csv and map.png into out_dir."""
    from model_tools import cfg as cfg_mod, export, plots, weights as weights_mod

    out_dir = Path(out_dir)
    net = cfg_mod.load(cfg_path)
    images, truths = ground_truth(valid_list, names)
    rows: List[Dict[str, object]] = []
    for checkpoint in checkpoints:
        digest = export.sha256_file(checkpoint)[:16]
        model_dir = out_dir / "models" / f"{checkpoint.name}-{digest}"
        result_file = model_dir / "result.json"
        if result_file.exists():
            rows.append(json.loads(result_file.read_text()))
            continue
        loaded = weights_mod.read(checkpoint, net)
        export.export(net, loaded, list(names), model_dir, fp16=fp16, resize_mode=resize_mode,
                      cfg_path=str(cfg_path), weights_path=str(checkpoint))
        found, seconds = detect_all(model_dir, images, progress=progress, desc=f"evaluating {checkpoint.name}")
        metrics = compute(found, truths, names, points=points)
        (model_dir / "map.txt").write_text(metrics.table())
        row: Dict[str, object] = {"checkpoint": checkpoint.name, "iteration": checkpoint_iteration(checkpoint),
                                  "images_seen": loaded.header.seen, "weights": str(checkpoint),
                                  "model_dir": str(model_dir), **metrics.summary(),
                                  "images_per_s": len(images) / max(seconds, 1e-9)}
        result_file.write_text(json.dumps(row, indent=1))
        rows.append(row)
    write_csv(rows, out_dir / "evaluation.csv")
    if rows:
        plots.map_per_checkpoint(rows, out_dir / "map.png")
    return rows


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
