"""Decoded detections against the darknet binary's own (`darknet detector valid`).

darknet writes every detection at threshold 0.005 after NMS 0.45 into
<results>/comp4_det_test_<class>.txt as `image prob x1 y1 x2 y2` (1-based pixels, clamped to
[1, width/height]), letterboxing the image first. Our side: the FP32 IR through edge_app's
Detector (letterbox mode) at the same thresholds.
"""
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from edge_app.detector import Detector

BOX_TOL = 1.0  # pixels
SCORE_TOL = 1e-3
THRESH, NMS = 0.005, 0.45


def darknet_valid(darknet_bin, cfg, weights, names, images, workdir: Path):
    """Run `darknet detector valid` and parse its comp4 files → {(image, class): [(p, box)]}."""
    # pjreddie's validate loads 4 images ahead unconditionally: give it at least 4
    images = list(images) + [images[-1]] * max(0, 4 - len(images))
    results = workdir / "results"
    results.mkdir(parents=True, exist_ok=True)
    (workdir / "valid.txt").write_text("".join(f"{p}\n" for p in images))
    labels = names.read_text().split()
    (workdir / "run.data").write_text(f"classes={len(labels)}\nvalid={workdir / 'valid.txt'}\n"
                                      f"names={names}\nresults={results}\n")
    proc = subprocess.run([darknet_bin, "detector", "valid", str(workdir / "run.data"), str(cfg),
                           str(weights)], capture_output=True, text=True, cwd=workdir, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import cv2

    sizes = {Path(p).stem: cv2.imread(str(p)).shape[1::-1] for p in images}
    found = defaultdict(list)
    for k, label in enumerate(labels):
        for line in (results / f"comp4_det_test_{label}.txt").read_text().splitlines():
            image, prob, *box = line.split()
            x1, y1, x2, y2 = map(float, box)
            w, h = sizes[image]
            # darknet clamps only xmin/ymin from below and xmax/ymax from above; a box lying
            # wholly in the letterbox padding comes out inverted. Ours are clamped into the
            # frame on both sides; bring darknet's to the same convention.
            box = np.array([min(x1, w + 1), min(y1, h + 1), max(x2, 1), max(y2, 1)])
            found[(image, k)].append((float(prob), box))
    return found


def ours_as_darknet_prints(detector, images):
    import cv2

    found = defaultdict(list)
    for path in images:
        frame = cv2.imread(str(path))
        h, w = frame.shape[:2]
        for d in detector.detect(frame):
            box = np.array([max(d.x1 + 1, 1), max(d.y1 + 1, 1), min(d.x2 + 1, w), min(d.y2 + 1, h)])
            found[(Path(path).stem, d.class_id)].append((d.confidence, box))
    return found


def compare(ours, theirs, score_tol=SCORE_TOL, box_tol=BOX_TOL):
    """Greedy one-to-one matching per (image, class); returns (matched, unmatched lists)."""
    matched, only_theirs, only_ours = 0, [], []
    worst_score = worst_box = 0.0
    for key in set(ours) | set(theirs):
        remaining = list(ours.get(key, []))
        for prob, box in sorted(theirs.get(key, []), key=lambda t: -t[0]):
            best = None
            for i, (p, b) in enumerate(remaining):
                if abs(p - prob) <= score_tol and np.abs(b - box).max() <= box_tol:
                    if best is None or abs(p - prob) < abs(remaining[best][0] - prob):
                        best = i
            if best is None:
                only_theirs.append((key, prob, box))
                continue
            p, b = remaining.pop(best)
            worst_score = max(worst_score, abs(p - prob))
            worst_box = max(worst_box, float(np.abs(b - box).max()))
            matched += 1
        only_ours += [(key, p, b) for p, b in remaining]
    return matched, only_theirs, only_ours, worst_score, worst_box


def borderline(items, score_tol):
    """Detections so close to the threshold that a 1e-3 difference can flip them."""
    return [i for i in items if i[1] <= THRESH + score_tol]


@pytest.mark.darknet
@pytest.mark.parametrize("cfg_name", ["yolov2-tiny-voc", "tiny-224x160", "yolov2-voc"])
def test_detections_match_darknet_binary(cfg_name, darknet_bin, exported, net_size_photos, tmp_path):
    model_dir, cfg, weights, names = exported(cfg_name)
    detector = Detector(model_dir, conf_threshold=THRESH, nms_threshold=NMS)
    images = net_size_photos(detector.info.width, detector.info.height)
    theirs = darknet_valid(darknet_bin, cfg, weights, names, images, tmp_path)
    ours = ours_as_darknet_prints(detector, images)
    matched, only_theirs, only_ours, worst_score, worst_box = compare(ours, theirs)
    print(f"{cfg_name}: {matched} detections matched; worst score diff {worst_score:.2e}, "
          f"worst box diff {worst_box:.3f} px; unmatched darknet {len(only_theirs)}, ours "
          f"{len(only_ours)}")
    assert matched > 500  # random weights give many detections at 0.005: a real comparison
    assert borderline(only_theirs, SCORE_TOL) == only_theirs
    assert borderline(only_ours, SCORE_TOL) == only_ours
    assert len(only_theirs) + len(only_ours) <= 0.001 * matched


@pytest.mark.darknet
def test_letterbox_geometry_matches_darknet(darknet_bin, exported, tmp_path):
    """Non-square frames: darknet letterboxes them; boxes must come back to the same pixels.

    The frames are 416x208 and 208x416, so darknet's own resize step is the identity and only
    the letterbox padding and the box correction are exercised. darknet pads with 0.5, a u8
    input holds 127/255 at best. The measured worst score difference this causes is 5.4e-4,
    inside the usual 1e-3, but it reorders near-equal overlapping boxes, so NMS can keep the
    other one of a pair (and that cascades): 0.7% of the kept boxes differ, measured. So every
    box darknet keeps must be among ours before NMS, exactly, and the kept sets may differ
    by at most 2%.
    """
    import cv2

    from tests.conftest import photo

    model_dir, cfg, weights, names = exported("yolov2-tiny-voc")
    detector = Detector(model_dir, conf_threshold=THRESH, nms_threshold=NMS)
    images = []
    for name, size in (("dog", (416, 208)), ("person", (208, 416)), ("horses", (416, 208)),
                       ("eagle", (208, 416))):
        path = tmp_path / f"{name}_{size[0]}x{size[1]}.png"
        cv2.imwrite(str(path), cv2.resize(cv2.imread(str(photo(name))), size, interpolation=cv2.INTER_AREA))
        images.append(path)
    theirs = darknet_valid(darknet_bin, cfg, weights, names, images, tmp_path)
    ours = ours_as_darknet_prints(detector, images)
    matched, only_theirs, only_ours, worst_score, worst_box = compare(ours, theirs)
    print(f"letterbox: {matched} matched; worst score diff {worst_score:.2e}, worst box diff "
          f"{worst_box:.3f} px; unmatched darknet {len(only_theirs)}, ours {len(only_ours)}")
    assert matched > 500 and worst_box <= BOX_TOL and worst_score <= SCORE_TOL
    assert len(only_theirs) + len(only_ours) <= 0.02 * matched
    # every box darknet kept is one of ours before NMS, to 1 px and 1e-3
    before_nms = ours_as_darknet_prints(
        Detector(model_dir, conf_threshold=THRESH, nms_threshold=0.0), images)
    _, missing, _, _, _ = compare(before_nms, theirs)
    assert missing == []
