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
