"""Decode + NMS per frame for a 13x13x5x(5+27) region output (Flickr Logos 27 size), against the
compiled peers a user would pick, timed in the same run, interleaved round by round:

- a compiled C decode + NMS (tests/edge/region_decode.c: the algorithm of darknet's region layer
  and darkflow's Cython box constructor, written here, built with cc -O2, called via ctypes;
  tests/edge/test_compiled_reference.py checks its detections equal ours)
- OpenCV DNN's own region layer on the same raw output (a net of one [region] layer, loaded by
  OpenCV's darknet importer), plus the numpy pick of the boxes above the threshold

Each figure: seconds per frame as median [min–max] over the rounds; each ratio is taken within a
round (peer time / our time: above 1 means we are faster).
    python benchmarks/bench_decode.py [rounds, default 7]
"""
import struct
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from common import interleaved, ratio_line, spread
from edge_app.decode import RegionSpec, decode
from tests.edge.compiled_reference import RegionDecoder

CLASSES, NUM, GRID = 27, 5, 13
ANCHORS = np.array([1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52], np.float32)
NMS = 0.45


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


def opencv_region_net(folder: Path, thresh: float):
    """OpenCV DNN with a single [region] layer fed the raw output as its input blob."""
    cfg = folder / f"region-{thresh}.cfg"
    cfg.write_text(f"[net]\nwidth={GRID}\nheight={GRID}\nchannels={NUM * (5 + CLASSES)}\n\n"
                   f"[region]\nanchors={','.join(f'{a:g}' for a in ANCHORS)}\nclasses={CLASSES}\n"
                   f"coords=4\nnum={NUM}\nsoftmax=1\nthresh={thresh}\nnms_threshold={NMS}\n")
    weights = folder / "none.weights"
    weights.write_bytes(struct.pack("<iiiq", 0, 2, 0, 0))  # header only: the layer has no weights
    return cv2.dnn.readNetFromDarknet(str(cfg), str(weights))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    spec = RegionSpec(CLASSES, NUM, ANCHORS.reshape(NUM, 2), True)
    labels = [f"c{i}" for i in range(CLASSES)]
    compiled = RegionDecoder(CLASSES, NUM, ANCHORS, True, GRID, GRID)
    print(f"decode + NMS per frame, {GRID}x{GRID}x{NUM} anchors x {CLASSES} classes, NMS {NMS}; "
          f"ms median [min-max] over {rounds} interleaved rounds")
    with tempfile.TemporaryDirectory() as tmp:
        for name, conf, raw in (("empty scene, conf 0.25", 0.25, realistic_raw(objects=0)),
                                ("3 objects, conf 0.25", 0.25, realistic_raw(objects=3)),
                                ("12 objects, conf 0.25", 0.25, realistic_raw(objects=12)),
                                ("12 objects, evaluation conf 0.005", 0.005, realistic_raw())):
            net = opencv_region_net(Path(tmp), conf)

            def ours():
                return decode(raw, spec, labels, 640, 480, 416, 416, "resize", conf, NMS)

            def c_reference():
                return compiled(raw, conf, NMS)

            def opencv():
                net.setInput(raw)
                out = net.forward()
                row, k = np.nonzero(out[:, 5:] > conf)
                return k, out[row, 5 + k], out[row, :4]

            n_ours, n_c, n_cv = len(ours()), len(c_reference()), len(opencv()[0])
            if n_c != n_ours:
                raise SystemExit(f"{name}: the C reference finds {n_c} detections, we find {n_ours}")
            t = interleaved({"ours": ours, "c": c_reference, "opencv": opencv}, rounds, calls=200)
            ms = {k: [x * 1e3 for x in v] for k, v in t.items()}
            print(f"{name}: {n_ours} detections (C reference {n_c}, OpenCV region layer {n_cv})")
            print(f"   ours (numpy) {spread(ms['ours'])} ms; C reference {spread(ms['c'])} ms; "
                  f"OpenCV DNN region layer {spread(ms['opencv'])} ms")
            print("   " + ratio_line("C reference time / ours", t["c"], t["ours"]))
            print("   " + ratio_line("OpenCV DNN region layer time / ours", t["opencv"], t["ours"]))
    print("OpenCV's region layer applies its own NMS variant, hence a different detection count.")


if __name__ == "__main__":
    main()
