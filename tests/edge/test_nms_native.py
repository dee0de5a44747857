"""The compiled suppression (edge_app/native/dknms.c) keeps exactly what the numpy version keeps,
in the same order, on crowds like evaluation's (threshold 0.005, untrained weights) and on the
awkward cases: ties in score, identical and nested boxes, boxes without area, NaN coordinates."""
import numpy as np
import pytest

from edge_app import decode, native


@pytest.fixture
def numpy_only(monkeypatch):
    """Runs the numpy version for the duration of a `with`-less call: see both()."""
    if native.library() is None:
        pytest.skip(f"compiled library not available: {native.status()}")

    def run(fn):
        monkeypatch.setenv("EDGE_APP_NATIVE", "0")
        native.reset()
        try:
            assert native.library() is None
            return fn()
        finally:
            monkeypatch.delenv("EDGE_APP_NATIVE")
            native.reset()
    return run


def crowd(rng, n, classes, ties=False, degenerate=False):
    centre = rng.uniform(0, 1, (n, 2))
    half = rng.uniform(0.01, 0.3, (n, 2))
    if degenerate:  # no area, copies of one box, a box inside another, NaN
        half[rng.random(n) < 0.1, 0] = 0.0
        same = rng.random(n) < 0.1
        centre[same], half[same] = centre[0], half[0]
        half[rng.random(n) < 0.05] *= 0.25
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    if degenerate:
        boxes[rng.random(n) < 0.02, rng.integers(0, 4)] = np.nan
    score = rng.uniform(0.005, 1, n).astype(np.float32)
    if ties:
        score = np.round(score, 1).astype(np.float32)
    return decode.Candidates(boxes, score, rng.integers(0, classes, n))


@pytest.mark.parametrize("n", [65, 200, 400, 401, 2500])
@pytest.mark.parametrize("threshold", [0.005, 0.45, 0.9, 1.0])
def test_compiled_suppression_keeps_what_numpy_keeps(numpy_only, n, threshold):
    rng = np.random.default_rng(n + int(threshold * 1000))
    for classes, ties, degenerate in [(1, False, False), (6, True, False), (20, False, True), (80, True, True)]:
        c = crowd(rng, n, classes, ties, degenerate)
        compiled = decode.nms(c, threshold)
        assert np.array_equal(compiled, numpy_only(lambda: decode.nms(c, threshold))), (classes, ties, degenerate)


def _loop_keep(boxes, threshold):
    """Greedy suppression one pair at a time, in Python floats (IEEE doubles, as numpy's)."""
    keep = [True] * len(boxes)
    for i, (ax1, ay1, ax2, ay2) in enumerate(boxes):
        if not keep[i]:
            continue
        area_a = (ax2 - ax1) * (ay2 - ay1)
        for j in range(i + 1, len(boxes)):
            bx1, by1, bx2, by2 = boxes[j]
            inter = max(min(ax2, bx2) - max(ax1, bx1), 0.0) * max(min(ay2, by2) - max(ay1, by1), 0.0)
            union = area_a + (bx2 - bx1) * (by2 - by1) - inter
            if keep[j] and inter / max(union, 1e-30) > threshold:
                keep[j] = False
    return keep


def test_compiled_suppression_against_a_plain_loop():
    """Groups one after the other, each suppressing only within itself."""
    if native.library() is None:
        pytest.skip(f"compiled library not available: {native.status()}")
    rng = np.random.default_rng(11)
    c = crowd(rng, 600, 1)
    starts = np.array([0, 150, 151, 151, 420, 600])  # groups of 150, 1, 0, 269 and 180 rows
    keep = decode._suppress(c.boxes, starts, 0.3)
    expected = []
    for start, stop in zip(starts[:-1], starts[1:]):
        expected += _loop_keep(c.boxes[start:stop].tolist(), 0.3)
    assert keep.tolist() == expected
    assert 0 < keep.sum() < len(keep)


def test_a_batch_of_frames_of_every_crowd_decodes_as_without_the_library(numpy_only):
    """Frames of every size class nms() knows (<= 64, 65-400, > 400 candidates, none, a few) in
    one batch, with scores tied across cells and classes: the detections and their order are the
    same one frame at a time, and the same without the compiled library."""
    rng = np.random.default_rng(5)
    classes = 20
    s = decode.RegionSpec(classes, 2, np.array([[1.0, 1.5], [3.0, 2.0]], np.float32), True)
    raw = rng.normal(0, 3, (6, 2 * (5 + classes), 6, 8)).astype(np.float32)
    objectness = raw.reshape(6, 2, 5 + classes, 6, 8)[:, :, 4]
    objectness[0] -= 9.0  # few cells pass
    objectness[1] -= 6.0
    objectness[2] = -40.0  # none
    objectness[3] = -40.0
    objectness[3, 0, 2, 3] = 9.0  # one cell
    objectness[5] += 3.0  # nearly all
    logits = raw.reshape(6, 2, 5 + classes, 6, 8)[:, :, 5:]
    logits[[1, 5], :, :, 0] = 0.0  # a row of cells whose classes all tie in score, across cells
    objectness[[1, 5], :, 0] = 2.0  # too: the order of equal scores is nms()'s
    sizes = [(640, 480), (333, 200), (500, 400), (200, 333), (416, 416), (100, 999)]
    counts = np.bincount(decode.region_candidates(raw, s, 0.005).frame, minlength=6)
    assert counts[0] <= 64 < counts[1] <= 400 < counts[5] and counts[2] == 0 < counts[3] <= 20, counts
    batch = decode.decode_batch(raw, s, sizes, 224, 160, "letterbox", 0.005, 0.45)
    one_by_one = [decode.decode_batch(raw[i:i + 1], s, [sizes[i]], 224, 160, "letterbox", 0.005, 0.45)
                  for i in range(6)]
    columns = [np.concatenate([getattr(f, name) + (i if name == "frame" else 0) for i, f in enumerate(one_by_one)])
               for name in decode.Found._fields]
    for got, want in zip(batch, columns):
        assert np.array_equal(got, want)
    for got, want in zip(batch, numpy_only(lambda: decode.decode_batch(raw, s, sizes, 224, 160, "letterbox",
                                                                       0.005, 0.45))):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.005, 0.45, 1.0, float("nan")])
def test_one_call_for_a_whole_batch_keeps_and_orders_as_nms_frame_by_frame(threshold):
    """dk_nms_frames (decode._nms_frames) against nms() of each frame: frames of none, one, a
    few (<= 64), some (65-400) and many (> 400) rows, scores tied within and across classes (in
    a frame of > 400 rows nms() orders tied rows class by class, below that row by row),
    degenerate and NaN boxes."""
    if native.library() is None:
        pytest.skip(f"compiled library not available: {native.status()}")
    rng = np.random.default_rng(3 if np.isnan(threshold) else int(abs(threshold) * 1000) + 7)
    sizes = [0, 1, 2, 30, 64, 65, 0, 200, 400, 401, 1500, 1, 0]
    frames = [crowd(rng, n, classes, ties=True, degenerate=True) if n else None
              for n, classes in zip(sizes, [1, 1, 3, 6, 6, 20, 1, 6, 80, 6, 20, 1, 1])]
    present = [f for f in frames if f is not None]
    batch = decode.Candidates(np.concatenate([f.boxes for f in present]), np.concatenate([f.score for f in present]),
                              np.concatenate([f.class_id for f in present]))
    bounds = np.r_[0, np.cumsum(sizes)]
    expected = np.concatenate([start + decode.nms(f, threshold)
                               for start, f in zip(bounds, frames) if f is not None])
    got = decode._nms_frames(batch, bounds, threshold)
    assert got.dtype.kind == "i" and np.array_equal(got, expected)
    ties = [f for f in present if len(f) > 400][0]
    assert len(np.unique(ties.score)) < len(ties)  # the class-by-class tie rule is exercised
