"""The compiled reference (region_decode.c) that bench_decode.py times us against must find
exactly our detections, or the benchmark would compare different work."""
import numpy as np
import pytest

from edge_app.decode import RegionSpec, decode
from tests.edge.compiled_reference import RegionDecoder

ANCHORS = np.array([[1.08, 1.19], [3.42, 4.41], [6.63, 11.38], [9.42, 5.11], [16.62, 10.52]], np.float32)


def scene(classes, grid_h, grid_w, seed, objects):
    """Background with objectness far below any threshold, plus objects seen by a few
    neighbouring cells and anchors (so NMS has overlapping boxes to suppress)."""
    rng = np.random.default_rng(seed)
    num = len(ANCHORS)
    raw = rng.normal(0, 1.5, (num, 5 + classes, grid_h, grid_w)).astype(np.float32)
    raw[:, 4] = rng.normal(-5, 2, (num, grid_h, grid_w))
    for _ in range(objects):
        row, col, k = rng.integers(0, grid_h - 1), rng.integers(0, grid_w - 1), rng.integers(classes)
        for dr, dc, a in ((0, 0, 1), (0, 0, 2), (0, 1, 1), (1, 0, 2), (1, 1, 3)):
            raw[a, 4, row + dr, col + dc] = rng.normal(2, 1)
            raw[a, 5 + k, row + dr, col + dc] = rng.normal(4, 1)
    return raw.reshape(1, -1, grid_h, grid_w)


@pytest.mark.parametrize("softmax", [True, False])
@pytest.mark.parametrize("conf", [0.5, 0.25, 0.005])
@pytest.mark.parametrize("grid,classes,objects", [((13, 13), 27, 12), ((5, 7), 4, 6)])
def test_compiled_reference_finds_our_detections(softmax, conf, grid, classes, objects):
    raw = scene(classes, *grid, seed=classes + objects, objects=objects)
    labels = [f"c{k}" for k in range(classes)]
    frame_w, frame_h, net_w, net_h = 640, 480, 32 * grid[1], 32 * grid[0]
    ours = decode(raw, RegionSpec(classes, len(ANCHORS), ANCHORS, softmax), labels,
                  frame_w, frame_h, net_w, net_h, "resize", conf, 0.45)
    theirs = RegionDecoder(classes, len(ANCHORS), ANCHORS, softmax, *grid)(raw, conf, 0.45)
    assert len(ours) >= objects // 2  # the scene really has detections for NMS to work on
    assert len(ours) == len(theirs)
    frame = np.array([frame_w, frame_h, frame_w, frame_h])
    got = np.array([(d.class_id, d.confidence, d.x1, d.y1, d.x2, d.y2) for d in ours])
    want = np.concatenate([theirs[:, :2], np.clip(theirs[:, 2:] * frame, 0, frame)], axis=1)
    if len(ours) < 100:  # same order too: both best first (thousands of detections hold near-ties)
        assert got[:, 0].tolist() == want[:, 0].tolist()
    # the same set: each side in (class, x1, y1) order
    got = got[np.lexsort((got[:, 3], got[:, 2], got[:, 0]))]
    want = want[np.lexsort((want[:, 3], want[:, 2], want[:, 0]))]
    assert got[:, 0].tolist() == want[:, 0].tolist()
    np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=1e-5)
    np.testing.assert_allclose(got[:, 2:], want[:, 2:], rtol=1e-4, atol=1e-3)
