"""Choosing the checkpoint to deploy from evaluated rows (evaluation.csv)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np

from edge_app.errors import InputError
from model_tools.metrics import Detection, Detections, Truth, match


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


def bootstrap_map_difference(a: Sequence[Detection], b: Sequence[Detection], truths: Sequence[Truth],
                             names: Sequence[str], resamples: int = 300, seed: int = 0,
                             iou_threshold: float = 0.5) -> np.ndarray:
    """mAP(a) − mAP(b) on `resamples` bootstrap resamples of the validation images (the same
    resample for both, drawn with replacement). Matching is per image, so each detection keeps
    its TP/FP outcome in every resample; an image drawn n times weighs n."""
    a, b = Detections.of(a), Detections.of(b)

    def used(dets: Detections) -> List[str]:  # the image ids its detections name
        return [dets.stems[i] for i in np.unique(dets.image).tolist()]

    images = sorted({t[0] for t in truths} | set(used(a)) | set(used(b)))
    index = {name: i for i, name in enumerate(images)}
    truth_img = np.array([index[t[0]] for t in truths if not t[6]], int)
    truth_cls = np.array([t[1] for t in truths if not t[6]], int)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(images), np.full(len(images), 1 / len(images)), size=resamples).astype(float)

    def prepared(dets):
        """Per class: the images of its true positives in score order, and for each of them
        how many false positives of each image rank before it."""
        order, outcome, _, _ = match(dets, truths, iou_threshold)
        order = np.asarray(order, int)
        classes = dets.class_id[order]
        images_of = np.array([index.get(stem, -1) for stem in dets.stems], int)[dets.image][order]
        outcome = outcome[order]
        per_class = []
        for k in range(len(names)):
            mine = classes == k
            tp_at = np.flatnonzero(mine & (outcome == 1))
            fp_at = np.flatnonzero(mine & (outcome == 0))  # -1: on a difficult truth, counts for nothing
            before = np.searchsorted(tp_at, fp_at)  # the first true positive each false positive precedes
            counts = np.zeros((len(tp_at) + 1, len(images)))
            np.add.at(counts, (before, images_of[fp_at]), 1.0)
            per_class.append((images_of[tp_at], np.cumsum(counts, axis=0)[:-1]))
        return per_class

    def maps(per_class):
        result = np.zeros(resamples)
        counted = np.zeros(resamples)
        for k, (tp_images, fp_before) in enumerate(per_class):
            n_truth = weights[:, truth_img[truth_cls == k]].sum(axis=1)
            result += _resampled_ap(weights[:, tp_images], weights @ fp_before.T, n_truth)
            counted += n_truth > 0
        return result / np.maximum(counted, 1)

    return maps(prepared(a)) - maps(prepared(b))


def _resampled_ap(tp_weight: np.ndarray, fp_before: np.ndarray, n_truth: np.ndarray) -> np.ndarray:
    """metrics.average_precision (area under the envelope) of each resample (a row): the weight
    in it of each true positive in score order, and the weight of the false positives ranked
    before each. Only true positives add recall, and the envelope's maximum over the points
    from one on is reached at a true positive (a false positive only lowers precision): so
    AP = sum over true positives of recall added × the best precision at it or after it.
    A resample with no truth of the class scores 0."""
    if tp_weight.shape[1] == 0:
        return np.zeros(len(n_truth))
    tp = np.cumsum(tp_weight, axis=1)
    precision = tp / np.maximum(tp + fp_before, 1e-12)
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    ap = (tp_weight * envelope).sum(axis=1) / np.maximum(n_truth, 1e-12)
    return np.where(n_truth > 0, ap, 0.0)


def uncertainty_note(rows: Sequence[Dict[str, object]], best: Dict[str, object], resamples: int = 300) -> str:
    """Whether the best checkpoint's lead over the runner-up is larger than the evaluation's
    own uncertainty (paired bootstrap over the validation images, 90% interval of the mAP
    difference). Empty when there is no runner-up or its detections are not cached."""
    import json

    from model_tools.evaluate import detections_path, ground_truth, load_detections

    others = [r for r in rows if r is not best]
    if not others:
        return ""
    second = max(others, key=lambda r: float(r["map"]))
    # the row's main figure is the device's unless only the reference was computed
    mode = "reference" if best.get("mode") == "reference" else "device"
    try:
        names = json.loads(str(best["names"]))
        loaded = [load_detections(detections_path(str(r["model_dir"]), mode, str(r.get("decoder") or "")))
                  for r in (best, second)]
    except (KeyError, OSError, ValueError):
        return "(no cached detections to estimate the uncertainty: re-run model-tools evaluate)\n"
    _, truths = ground_truth(str(best["valid"]), names, str(best.get("difficult") or "") or None)
    diff = bootstrap_map_difference(loaded[0], loaded[1], truths, names, resamples)
    low, high = np.percentile(diff, [5, 95])
    lead = float(best["map"]) - float(second["map"])
    text = (f"lead over {second['checkpoint']}: {100 * lead:+.2f} points of mAP; 90% bootstrap interval over the "
            f"validation images {100 * low:+.2f} … {100 * high:+.2f}")
    if low <= 0:
        return (text + f"\nWARNING: {best['checkpoint']} and {second['checkpoint']} are closer than the evaluation's "
                "uncertainty: this validation set cannot tell them apart (more validation images would)\n")
    return text + " — the lead is larger than the uncertainty\n"
