"""metrics.match over every (detection, truth) pair at once against the matching written as the
VOC devkit and darknet's validate_detector_map state it: detections one by one in score order,
each claiming its best truth of the same image and class."""
import numpy as np
import pytest

from model_tools import metrics


def one_by_one(detections, truths, iou_threshold=0.5, reference=False):
    by_image = {}
    for index, t in enumerate(truths):
        by_image.setdefault((t[0], t[1]), []).append(index)
    taken = np.zeros(len(truths), bool)
    order = sorted(range(len(detections)), key=lambda i: -detections[i][2])
    outcome = np.zeros(len(detections), int)
    best_iou = np.zeros(len(detections))
    claimed = np.full(len(detections), -1)
    for i in order:
        image, k, score, *box = detections[i]
        candidates = by_image.get((image, k))
        if not candidates:
            continue
        overlaps = [metrics.iou(box, truths[t][2:6]) for t in candidates]
        if reference and any(o > iou_threshold and not truths[t][6] for o, t in zip(overlaps, candidates)):
            overlaps = [0.0 if truths[t][6] else o for o, t in zip(overlaps, candidates)]
        j = max(range(len(overlaps)), key=overlaps.__getitem__)
        if overlaps[j] <= iou_threshold:
            continue
        t = candidates[j]
        best_iou[i] = overlaps[j]
        claimed[i] = t
        if truths[t][6]:
            outcome[i] = -1
        elif not taken[t]:
            taken[t] = True
            outcome[i] = 1
    return order, outcome, best_iou, claimed


def scene(seed, images=6, classes=3):
    """Truths and detections crowded on a coarse grid: equal scores, equal overlaps, duplicate
    and identical boxes, difficult truths, images and classes without truths."""
    rng = np.random.default_rng(seed)
    grid = np.arange(0, 100, 10.0)

    def box():
        x, y = rng.choice(grid, 2)
        w, h = rng.choice(grid[1:5], 2)
        return float(x), float(y), float(x + w), float(y + h)

    truths = [(f"im{rng.integers(images - 1)}", int(rng.integers(classes)), *box(), bool(rng.random() < 0.2))
              for _ in range(rng.integers(0, 40))]
    detections = [(f"im{rng.integers(images)}", int(rng.integers(classes)), float(rng.choice([0.9, 0.5, 0.3, 0.1])),
                   *box()) for _ in range(rng.integers(0, 300))]
    detections += [(t[0], t[1], 0.5, *t[2:6]) for t in truths[:5]]  # exact hits, some twice
    return detections, truths


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("reference", [False, True])
def test_all_pairs_at_once_match_one_by_one(seed, reference, monkeypatch):
    # a few pairs at a time (and one detection's pairs over the budget) give the same matching
    monkeypatch.setattr(metrics, "PAIR_BUDGET", (2 ** 20, 1, 7, 50)[seed % 4])
    detections, truths = scene(seed)
    threshold = (0.5, 0.3, 0.0)[seed % 3]
    got = metrics.match(detections, truths, threshold, reference)
    want = one_by_one(detections, truths, threshold, reference)
    assert got[0].tolist() == want[0]
    for a, b in zip(got[1:], want[1:]):
        assert np.array_equal(a, b)


def test_a_scene_without_truths_or_detections():
    detections, truths = scene(3)
    for dets, ts in ((detections, []), ([], truths), ([], [])):
        got = metrics.match(dets, ts)
        assert got[0].tolist() == one_by_one(dets, ts)[0] and not got[1].any() and (got[3] == -1).all()
        assert len(got[1]) == len(got[2]) == len(got[3]) == len(dets)


@pytest.mark.parametrize("seed", range(6))
def test_columns_are_the_tuples_they_describe(seed):
    """Detections (as evaluation holds an early checkpoint's 100k) walk, index and compare as
    their tuples, and match and compute give on them what they give on the tuples."""
    detections, truths = scene(seed)
    columns = metrics.Detections.of(detections)
    assert list(columns) == detections and columns == detections and len(columns) == len(detections)
    assert [columns[i] for i in range(len(columns))] == detections and columns[2:5] == detections[2:5]
    assert all(type(a) is type(b) for d, e in zip(columns, detections) for a, b in zip(d, e))
    for got, want in zip(metrics.match(columns, truths), metrics.match(detections, truths)):
        assert np.array_equal(got, want)
    names = ["a", "b", "c"]
    for reference in (False, True):
        assert metrics.compute(columns, truths, names, reference=reference).table() == \
            metrics.compute(detections, truths, names, reference=reference).table()
    # images without detections among the stems, in another order: the same matching
    shuffled = metrics.Detections(["none", *reversed(columns.stems)], len(columns.stems) - columns.image,
                                  columns.class_id, columns.score, columns.boxes)
    assert shuffled == detections
    assert all(np.array_equal(a, b) for a, b in zip(metrics.match(shuffled, truths), metrics.match(detections, truths)))
