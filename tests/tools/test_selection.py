"""select tells when the best two checkpoints are closer than the evaluation's uncertainty."""
import numpy as np
import pytest

from model_tools import evaluate, metrics, selection

NAMES = ["a", "b"]


def scene(n_images, seed):
    rng = np.random.default_rng(seed)
    truths, good, noisy = [], [], []
    for i in range(n_images):
        image = f"im{i}"
        for k in range(2):
            x, y = rng.uniform(0, 200, 2)
            truths.append((image, k, x, y, x + 40, y + 40, False))
            good.append((image, k, 0.9 - 0.1 * rng.random(), x + 1, y, x + 41, y + 40))
            # the noisy model misses by a shift half the time and scores at random
            shift = 30 if rng.random() < 0.5 else 0
            noisy.append((image, k, rng.random(), x + shift, y, x + 40 + shift, y + 40))
    return truths, good, noisy


def test_bootstrap_interval_separates_clear_leads_from_ties():
    truths, good, noisy = scene(60, 1)
    diff = selection.bootstrap_map_difference(good, noisy, truths, NAMES, resamples=100)
    observed = metrics.compute(good, truths, NAMES).map - metrics.compute(noisy, truths, NAMES).map
    assert observed > 0.3 and np.percentile(diff, 5) > 0
    assert abs(np.median(diff) - observed) < 0.1  # resamples centre on the observed difference
    same = selection.bootstrap_map_difference(good, good, truths, NAMES, resamples=50)
    assert np.all(same == 0)


@pytest.mark.parametrize("mode, decoder", [("device", ""), ("reference", "stb")])
def test_report_warns_when_the_lead_is_inside_the_uncertainty(tmp_path, mode, decoder):
    import json

    truths, good, noisy = scene(30, 2)
    # a near-copy of the noisy model: one detection's score changed
    twin = list(noisy)
    twin[0] = twin[0][:2] + (min(1.0, twin[0][2] + 0.3),) + twin[0][3:]
    valid = tmp_path / "valid.txt"
    rows = []
    for name, dets in (("one", noisy), ("two", twin)):
        folder = tmp_path / name
        folder.mkdir()
        evaluate.save_detections(evaluate.detections_path(folder, mode, decoder), dets, 1.0)
        m = metrics.compute(dets, truths, NAMES)
        rows.append({"checkpoint": name, "map": m.map, "f1": m.f1, "model_dir": str(folder), "mode": mode, "decoder": decoder,
                     "valid": str(valid), "names": json.dumps(NAMES), "difficult": ""})
    # ground truth comes from the validation list: write it in darknet's layout
    import cv2

    lines = []
    by_image = {}
    for t in truths:
        by_image.setdefault(t[0], []).append(t)
    for image, ts in by_image.items():
        path = tmp_path / "img" / f"{image}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.zeros((300, 300, 3), np.uint8))
        path.with_suffix(".txt").write_text("".join(
            f"{k} {(x1 + x2) / 600} {(y1 + y2) / 600} {(x2 - x1) / 300} {(y2 - y1) / 300}\n"
            for _, k, x1, y1, x2, y2, _ in ts))
        lines.append(str(path))
    valid.write_text("\n".join(lines) + "\n")
    best = selection.select(rows)
    note = selection.uncertainty_note(rows, best, resamples=100)
    assert "closer than the evaluation's uncertainty" in note


def test_each_resample_scores_what_the_metrics_give_its_images_drawn_again():
    """The bootstrap's mAPs against metrics.compute on each resample built image by image (an
    image drawn n times is there n times), difficult truths and classes absent from some
    resamples included."""
    truths, good, noisy = scene(12, 3)
    truths[0] = truths[0][:6] + (True,)  # difficult: a detection on it counts for nothing
    # class b's truths in two images only: many resamples have none (its AP does not count there)
    truths = [t for t in truths if t[1] == 0 or t[0] in ("im4", "im5")]
    images = sorted({t[0] for t in truths} | {d[0] for d in good} | {d[0] for d in noisy})
    resamples = 40
    draws = np.random.default_rng(0).multinomial(len(images), np.full(len(images), 1 / len(images)), size=resamples)
    diff = selection.bootstrap_map_difference(good, noisy, truths, NAMES, resamples=resamples, seed=0)

    def resampled(items, counts):
        return [(f"{item[0]}#{copy}",) + tuple(item[1:]) for item in items
                for copy in range(counts[images.index(item[0])])]

    for r, counts in enumerate(draws):
        expected = (metrics.compute(resampled(good, counts), resampled(truths, counts), NAMES).map
                    - metrics.compute(resampled(noisy, counts), resampled(truths, counts), NAMES).map)
        assert abs(diff[r] - expected) < 1e-12, (r, diff[r], expected)
    assert len(set(np.round(diff, 9))) > 10  # the resamples do differ


@pytest.mark.parametrize("stems", [["im 1", "ünïcode", "x" * 300], []])
def test_cached_detections_come_back_exactly(tmp_path, stems):
    rng = np.random.default_rng(1)
    found = [(stem, int(k), float(np.float32(c)), *map(float, rng.uniform(-5, 500, 4)))
             for stem in stems for k, c in zip(rng.integers(0, 80, 50), rng.uniform(0, 1, 50))]
    path = evaluate.detections_path(tmp_path, "device")
    evaluate.save_detections(path, found, 2.5)
    back = evaluate.load_detections(path)
    assert back == found and all(type(a) is type(b) for d, e in zip(back, found) for a, b in zip(d, e))
    whole = path.read_bytes()
    import io

    one_array = io.BytesIO()
    np.save(one_array, np.arange(3))
    for damaged in (whole[:len(whole) // 2], b"", b"PK\x03\x04junk", one_array.getvalue()):
        path.write_bytes(damaged)
        with pytest.raises(ValueError):
            evaluate.load_detections(path)


def test_a_detections_file_naming_an_image_twice_is_refused(tmp_path):
    path = evaluate.detections_path(tmp_path, "device")
    np.savez(path, stems=np.array(["a", "a"]), image=np.array([0, 1], np.int32), class_id=np.zeros(2, np.int32),
             values=np.zeros((2, 5)), seconds=np.float64(1))
    with pytest.raises(ValueError, match="listed twice"):
        evaluate.load_detections(path)
