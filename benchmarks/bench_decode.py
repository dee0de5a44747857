"""Decode + NMS per frame for a 13x13x5x(5+27) region output (Flickr Logos 27 size).

Goal: <= 0.2 ms median on the CI machine. Reference in the same run: the literal darknet loop
(tests/edge/reference.py), which is how a straightforward port such as darkflow's decodes.
    python benchmarks/bench_decode.py
"""
import numpy as np

from common import median_seconds
from edge_app.decode import RegionSpec, decode
from tests.edge import reference

CLASSES, NUM, GRID = 27, 5, 13
ANCHORS = np.array([1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52], np.float32)


def realistic_raw(seed=0, objects=12):
    """Mostly background, with objects each seen by a few neighbouring cells and anchors."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 1, (NUM, 5 + CLASSES, GRID, GRID)).astype(np.float32)
    raw[:, 4] = rng.normal(-6, 1, (NUM, GRID, GRID))
    for _ in range(objects):
        row, col, k = rng.integers(1, GRID - 1), rng.integers(1, GRID - 1), rng.integers(CLASSES)
        for dr, dc, a in ((0, 0, 2), (0, 0, 3), (0, 1, 2), (1, 0, 3)):
            raw[a, 4, row + dr, col + dc] = rng.normal(2.5, 0.5)
            raw[a, 5 + k, row + dr, col + dc] = rng.normal(6, 0.5)
    return raw.reshape(1, -1, GRID, GRID)


def main():
    spec = RegionSpec(CLASSES, NUM, ANCHORS.reshape(NUM, 2), True)
    labels = [f"c{i}" for i in range(CLASSES)]
    for name, conf, raw in (("empty scene, conf 0.25", 0.25, realistic_raw(objects=0)),
                            ("3 objects, conf 0.25", 0.25, realistic_raw(objects=3)),
                            ("12 objects, conf 0.25", 0.25, realistic_raw(objects=12)),
                            ("12 objects, evaluation conf 0.005", 0.005, realistic_raw())):
        def ours():
            return decode(raw, spec, labels, 640, 480, 416, 416, "resize", conf, 0.45)

        def loops():
            return reference.decode(raw, CLASSES, NUM, ANCHORS.tolist(), True, conf, 0.45)

        t_ours = median_seconds(ours, repeat=2000)
        t_ref = median_seconds(loops, repeat=5, warmup=1)
        print(f"decode+NMS {name}: {len(ours())} detections; median {t_ours * 1e3:.3f} ms; "
              f"literal darknet loop {t_ref * 1e3:.1f} ms; speed-up x{t_ref / t_ours:.0f}")
    print("goal: <= 0.2 ms median per frame at the deployment threshold")


if __name__ == "__main__":
    main()
