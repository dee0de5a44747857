import numpy as np
import pytest

from edge_app.decode import Candidates, RegionSpec, decode, decode_batch, nms, region_candidates
from edge_app.preprocess import boxes_to_frame, letterbox_size
from tests.edge import reference

ANCHORS = np.array([[1.0, 1.0], [2.0, 3.0]], np.float32)


def spec(classes=3, softmax=True):
    return RegionSpec(classes, len(ANCHORS), ANCHORS, softmax)


def raw_with_one_box(classes=3, grid=(4, 5), anchor=1, row=2, col=3, t=(0.0, 0.0, 0.0, 0.0),
                     obj=10.0, class_logits=(0.0, 5.0, 0.0)):
    raw = np.full((1, 2 * (5 + classes), *grid), -20.0, np.float32)  # objectness ~ 0 elsewhere
    base = anchor * (5 + classes)
    raw[0, base:base + 4, row, col] = t
    raw[0, base + 4, row, col] = obj
    raw[0, base + 5:base + 5 + classes, row, col] = class_logits
    return raw


def test_one_cell_decodes_to_darknet_box():
    raw = raw_with_one_box(t=(0.0, 0.0, np.log(2.0), 0.0))
    c = region_candidates(raw, spec(), 0.1)
    assert len(c) == 1 and c.class_id[0] == 1
    grid_h, grid_w = 4, 5
    cx, cy, w, h = (3 + 0.5) / grid_w, (2 + 0.5) / grid_h, 2.0 * 2.0 / grid_w, 3.0 / grid_h
    # centre from the cell + σ(0); size exp(log 2) * anchor_w / W and exp(0) * anchor_h / H
    assert c.boxes[0] == pytest.approx([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    softmax = np.exp(5.0) / (np.exp(5.0) + 2.0)
    assert c.score[0] == pytest.approx(softmax / (1 + np.exp(-10.0)), rel=1e-6)


def test_logistic_classes_when_softmax_is_off():
    raw = raw_with_one_box(class_logits=(0.0, 2.0, 1.0))
    c = region_candidates(raw, spec(softmax=False), 0.3)
    obj = 1 / (1 + np.exp(-10.0))
    got = dict(zip(c.class_id.tolist(), c.score.tolist()))
    assert got == pytest.approx({0: obj * 0.5, 1: obj / (1 + np.exp(-2.0)), 2: obj / (1 + np.exp(-1.0))})


def test_threshold_is_strict_like_darknet():
    raw = raw_with_one_box(obj=50.0, class_logits=(0.0, 0.0, 0.0))  # each class prob = 1/3
    third = float(np.float32(1.0) / np.float32(3.0))
    assert len(region_candidates(raw, spec(), 0.3)) == 3
    assert len(region_candidates(raw, spec(), third + 1e-6)) == 0


def boxes(*rows):
    """Candidates from (cx, cy, w, h, score, class) rows."""
    a = np.array(rows, float)
    corners = np.concatenate([a[:, :2] - a[:, 2:4] / 2, a[:, :2] + a[:, 2:4] / 2], axis=1)
    return Candidates(corners, a[:, 4], a[:, 5].astype(int))


def test_nms_suppressed_box_does_not_suppress_others():
    # A beats B (IoU 0.6); B would beat C (IoU 0.6) but is gone, and A-C overlap is small,
    # so C stays (darknet's `if (prob == 0) continue`). D is another class on top of A: kept.
    c = boxes((0.50, 0.5, 0.2, 0.2, 0.9, 0), (0.55, 0.5, 0.2, 0.2, 0.8, 0),
              (0.60, 0.5, 0.2, 0.2, 0.7, 0), (0.50, 0.5, 0.2, 0.2, 0.6, 1))
    iou = reference.box_iou
    rows = [(0.50, 0.5, 0.2, 0.2), (0.55, 0.5, 0.2, 0.2), (0.60, 0.5, 0.2, 0.2)]
    assert iou(rows[0], rows[1]) > 0.45 and iou(rows[1], rows[2]) > 0.45 and iou(rows[0], rows[2]) < 0.45
    assert nms(c, 0.45).tolist() == [0, 2, 3]


def test_nms_threshold_is_strict():
    # two boxes with IoU exactly 0.5: suppressed at 0.45, kept at 0.5 (darknet: iou > thresh)
    c = boxes((0.5, 0.5, 0.25, 0.25, 0.9, 0), (0.5, 0.5, 0.25, 0.125, 0.8, 0))  # exact in binary
    assert nms(c, 0.45).tolist() == [0]
    assert nms(c, 0.5).tolist() == [0, 1]


def test_vectorised_decode_equals_literal_darknet_loops():
    rng = np.random.default_rng(3)
    classes, num = 6, 2
    raw = rng.normal(0, 2, (1, num * (5 + classes), 7, 9)).astype(np.float32)
    s = RegionSpec(classes, num, ANCHORS, True)
    ours = region_candidates(raw, s, 0.05)
    ours = ours.take(nms(ours, 0.45))
    ref = reference.decode(raw, classes, num, ANCHORS.ravel().tolist(), True, 0.05, 0.45)
    assert len(ref) > 20  # enough boxes for NMS to matter
    b = ours.boxes
    centre, size = (b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]
    got = sorted(zip(ours.class_id.tolist(), ours.score.tolist(), *centre.T.tolist(), *size.T.tolist()))
    want = sorted(ref)
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose(np.array(got)[:, 1:], np.array(want)[:, 1:], rtol=1e-5, atol=1e-6)


def test_letterbox_size_uses_darknet_integer_arithmetic():
    assert letterbox_size(640, 480, 416, 416) == (416, 312)
    assert letterbox_size(480, 640, 416, 416) == (312, 416)
    assert letterbox_size(333, 200, 224, 160) == (224, 134)  # 200*224//333 = 134


def test_a_sliver_of_a_frame_keeps_a_pixel_in_the_letterbox():
    # darknet's arithmetic gives 9*24//1001 = 0 columns: an empty image, boxes divided by zero
    assert letterbox_size(9, 1001, 32, 24) == (1, 24) and letterbox_size(1001, 9, 24, 32) == (24, 1)
    wide, tall = letterbox_size(np.array([9, 640]), np.array([1001, 480]), 32, 24)
    assert wide.tolist() == [1, 32] and tall.tolist() == [24, 24]
    boxes = boxes_to_frame(np.array([[0.25, 0.25, 0.75, 0.75]]), 9, 1001, 32, 24, "letterbox")
    assert np.isfinite(boxes).all() and (boxes >= 0).all() and (boxes[:, 2] <= 9).all()


def test_letterbox_box_maps_back_to_frame():
    # centre box of half the network size, frame 640x480 letterboxed into 416x416 (312 high)
    got = boxes_to_frame(np.array([[0.25, 0.25, 0.75, 0.75]]), 640, 480, 416, 416, "letterbox")
    assert got[0] == pytest.approx([160, 80, 480, 400])


def test_resize_box_maps_back_and_clamps():
    got = boxes_to_frame(np.array([[-0.1, 0.4, 0.3, 0.6]]), 640, 480, 416, 416, "resize")
    assert got[0] == pytest.approx([0, 192, 192, 288])


def test_decode_returns_frame_pixel_detections_best_first():
    raw = raw_with_one_box(class_logits=(3.0, 5.0, 0.0))
    dets = decode(raw, spec(), ["a", "b", "c"], 500, 400, 160, 128, "resize", 0.1, 0.45)
    assert [d.label for d in dets] == ["b", "a"]
    d = dets[0]
    assert (d.x1 + d.x2) / 2 == pytest.approx(3.5 / 5 * 500)
    assert d.to_dict(500, 400)["topleft"] == {"x": int(d.x1), "y": int(d.y1)}


def test_empty_scene_decodes_to_nothing_with_consistent_shapes():
    raw = np.full((1, 2 * 8, 4, 5), -20.0, np.float32)  # no cell's objectness passes
    c = region_candidates(raw, spec(), 0.25)
    assert len(c) == 0 and c.boxes.shape == (0, 4) and len(nms(c, 0.45)) == 0
    assert decode(raw, spec(), ["a", "b", "c"], 640, 480, 160, 128, "resize", 0.25, 0.45) == []


@pytest.mark.parametrize("classes,softmax,mode", [(3, True, "letterbox"), (20, True, "resize"),
                                                   (80, False, "letterbox")])
def test_a_batch_decodes_as_its_frames_one_by_one(classes, softmax, mode):
    # the evaluator decodes a checkpoint's outputs as one batch, the Pi one frame at a time:
    # the detections must be the same to the bit (same order, same floats)
    rng = np.random.default_rng(classes)
    s = RegionSpec(classes, len(ANCHORS), ANCHORS, softmax)
    raw = rng.normal(0, 3, (7, 1, 2 * (5 + classes), 6, 8)).astype(np.float32)
    raw[2] = -30.0  # a frame with no candidate at all, between others
    sizes = [(640, 480), (333, 200), (500, 400), (200, 333), (416, 416), (100, 999), (640, 480)]
    labels = [f"c{k}" for k in range(classes)]
    batch = decode_batch(raw, s, sizes, 224, 160, mode, 0.01, 0.45)
    one_by_one = [(i, *d) for i, ((w, h), r) in enumerate(zip(sizes, raw))
                  for d in decode(r, s, labels, w, h, 224, 160, mode, 0.01, 0.45)]
    assert len(one_by_one) > 100 and 2 not in batch.frame.tolist()
    got = list(zip(batch.frame.tolist(), batch.class_id.tolist(), batch.score.tolist(), *batch.boxes.T.tolist()))
    assert got == [(i, k, conf, x1, y1, x2, y2) for i, k, _, conf, x1, y1, x2, y2 in one_by_one]


def test_letterbox_size_of_a_batch_is_each_frames():
    w = np.array([640, 480, 333, 1, 1000, 416])
    h = np.array([480, 640, 200, 999, 1, 416])
    new_w, new_h = letterbox_size(w, h, 224, 160)
    each = [letterbox_size(a, b, 224, 160) for a, b in zip(w.tolist(), h.tolist())]
    assert list(zip(new_w.tolist(), new_h.tolist())) == each
