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


def test_difficult_objects_are_ignored():
    truths = [("a", 0, *box(0, 0), False), ("a", 0, *box(50, 50), True)]
    dets = [("a", 0, 0.9, *box(0, 0)), ("a", 0, 0.8, *box(50, 50))]
    m = compute(dets, truths, ["logo"])
    assert (m.tp, m.fp, m.fn) == (1, 0, 0) and m.map == 1.0 and m.classes[0].truths == 1
    missed = compute([("a", 0, 0.9, *box(0, 0))], truths, ["logo"])
    assert missed.fn == 0 and missed.recall == 1.0  # missing a difficult object costs nothing


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
