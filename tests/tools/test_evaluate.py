"""Evaluation maths on cases checkable by hand (AlexeyAB's detector map definitions)."""
import numpy as np
import pytest

from model_tools.evaluate import average_precision, compute, select

NAMES = ["logo", "other"]


def box(x, y, s=10):
    return (x, y, x + s, y + s)


def test_perfect_detections_give_ap_one():
    truths = [("a", 0, *box(0, 0), False), ("a", 1, *box(50, 50), False), ("b", 0, *box(20, 20), False)]
    dets = [("a", 0, 0.9, *box(0, 0)), ("a", 1, 0.8, *box(50, 50)), ("b", 0, 0.7, *box(20, 20))]
    m = compute(dets, truths, NAMES)
    assert m.map == 1.0 and (m.tp, m.fp, m.fn) == (3, 0, 0) and m.f1 == 1.0 and m.avg_iou == 1.0


def known_curve():
    """4 truths; by falling score: TP, FP, TP, TP, FP → recall .25 .25 .5 .75 .75,
    precision 1 .5 .667 .75 .6."""
    truths = [("a", 0, *box(100 * i, 0), False) for i in range(4)]
    dets = [("a", 0, 0.9, *box(0, 0)), ("a", 0, 0.8, *box(0, 500)), ("a", 0, 0.7, *box(100, 0)),
            ("a", 0, 0.6, *box(200, 0)), ("a", 0, 0.5, *box(900, 900))]
    return dets, truths


def test_known_pr_curve_area_under_envelope():
    dets, truths = known_curve()
    m = compute(dets, truths, ["logo"])
    np.testing.assert_allclose(m.classes[0].recall, [0.25, 0.25, 0.5, 0.75, 0.75])
    np.testing.assert_allclose(m.classes[0].precision, [1, 0.5, 2 / 3, 0.75, 0.6])
    # 0.25*1 + 0.25*0.75 + 0.25*0.75 + 0.25*0
    assert m.map == pytest.approx(0.625)


def test_known_pr_curve_eleven_points():
    dets, truths = known_curve()
    m = compute(dets, truths, ["logo"], points=11)
    # t = 0, .1, .2 → 1; t = .3 ... .7 → .75; t = .8, .9, 1 → 0
    assert m.map == pytest.approx((3 * 1 + 5 * 0.75) / 11)


def test_duplicates_are_false_positives():
    truths = [("a", 0, *box(0, 0), False)]
    dets = [("a", 0, 0.9, *box(0, 0)), ("a", 0, 0.8, *box(1, 1)), ("a", 0, 0.7, *box(0, 1))]
    m = compute(dets, truths, ["logo"])
    assert (m.tp, m.fp, m.fn) == (1, 2, 0)
    assert m.precision == pytest.approx(1 / 3) and m.map == 1.0  # recall 1 reached at precision 1


def test_difficult_truths_neither_cost_recall_nor_make_false_positives():
    """One image: an ordinary truth A found, a difficult D found first (higher score), a
    difficult E missed. As darknet counts them (either definition): AP 1, recall 1."""
    a, d, e = box(0, 0), box(50, 50), box(100, 100)
    dets = [("i", 0, 0.95, *d), ("i", 0, 0.9, *a)]
    hard = [("i", 0, *a, False), ("i", 0, *d, True), ("i", 0, *e, True)]
    # the same boxes without the difficult list: the label file holds A only, so the
    # detection of D is an FP ranked above the TP (AP 0.5) ...
    no_list = compute(dets, hard[:1], ["logo"], reference=True)
    assert (no_list.map, no_list.tp, no_list.fp, no_list.detections_count) == (0.5, 1, 1, 2)
    # ... and with D and E as ordinary truths, E's miss costs recall
    ordinary = compute(dets, [t[:6] + (False,) for t in hard], ["logo"], reference=True)
    assert ordinary.recall == pytest.approx(2 / 3) and ordinary.map == pytest.approx(2 / 3) and ordinary.fn == 1
    for reference in (False, True):
        m = compute(dets, hard, ["logo"], reference=reference)
        assert m.map == 1.0 and m.classes[0].truths == 1 and (m.tp, m.fn, m.recall) == (1, 0, 1.0)
        assert m.detections_count == 1  # darknet drops the detection of D from its list
    # at the confidence threshold darknet still counts that detection as an FP; ours ignores it
    assert compute(dets, hard, ["logo"], reference=True).fp == 1
    assert compute(dets, hard, ["logo"]).fp == 0


def test_an_ordinary_truth_wins_over_a_closer_difficult_one_in_darknet():
    """A detection overlapping an ordinary truth (IoU .82) and a difficult one (IoU 1): darknet
    (detector map) matches it to the ordinary truth, the VOC devkit (ours) to the best IoU."""
    truths = [("i", 0, *box(0, 0), False), ("i", 0, *box(1, 0), True)]
    det = ("i", 0, 0.8, *box(1, 0))
    ref = compute([det], truths, ["logo"], reference=True)
    ours = compute([det], truths, ["logo"])
    assert (ref.tp, ref.fp, ref.map) == (1, 0, 1.0)
    assert (ours.tp, ours.fp, ours.fn, ours.map) == (0, 0, 1, 0.0)
    # a second detection on the same ordinary truth: darknet's duplicate FP, ours ignored
    dets = [("i", 0, 0.9, *box(0, 0)), det]
    ref = compute(dets, truths, ["logo"], reference=True)
    ours = compute(dets, truths, ["logo"])
    assert (ref.tp, ref.fp, ref.detections_count) == (1, 1, 2) and ref.map == 1.0
    assert (ours.tp, ours.fp, ours.detections_count) == (1, 0, 1) and ours.map == 1.0


def test_wrong_class_and_low_iou_are_false_positives():
    truths = [("a", 0, *box(0, 0), False)]
    m = compute([("a", 1, 0.9, *box(0, 0)), ("a", 0, 0.8, *box(6, 0))], truths, NAMES)  # IoU 4/16=.25
    assert (m.tp, m.fp, m.fn) == (0, 2, 1) and m.map == 0.0


def test_conf_threshold_counts_and_average_iou():
    truths = [("a", 0, *box(0, 0), False), ("b", 0, *box(0, 0), False)]
    dets = [("a", 0, 0.9, 0, 0, 10, 8), ("b", 0, 0.2, *box(0, 0))]  # the second is below 0.25
    m = compute(dets, truths, ["logo"])
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)
    assert m.avg_iou == pytest.approx(0.8) and m.recall == 0.5 and m.precision == 1.0
    assert m.map == 1.0  # AP uses every detection down to the collection threshold


def test_eleven_and_area_differ_on_the_same_curve():
    recall = np.array([0.5, 1.0])
    precision = np.array([1.0, 0.5])
    assert average_precision(recall, precision) == pytest.approx(0.75)
    assert average_precision(recall, precision, 11) == pytest.approx((6 * 1 + 5 * 0.5) / 11)


def test_select_by_map_then_f1():
    rows = [{"checkpoint": "a", "map": 0.8, "f1": 0.7}, {"checkpoint": "b", "map": 0.9, "f1": 0.6},
            {"checkpoint": "c", "map": 0.9, "f1": 0.8}, {"checkpoint": "d", "map": 0.85, "f1": 0.99}]
    assert select(rows)["checkpoint"] == "c"
