"""evaluate's reference mode against darknet itself: the Debian darknet's `detector valid`
detections and our own reference-mode detections of the same weights on the same images, both
scored by the same code (model_tools.metrics, darknet's definitions): AP equal within 0.1 point
per class. pjreddie's valid letterboxes, so both sides letterbox.

Which decoder the reference uses: Debian builds darknet with OpenCV, so it reads every image with
cv::imread (test_darknet_decoder.py reads its pixels back). Our side therefore reads with
decoder="opencv" here, on PNG (where the decoders agree) and on JPEG (where they do not). The
default decoder, stb (AlexeyAB built without OpenCV), cannot be compared with a darknet in CI:
test_darknet_decoder.py checks its pixels against ones AlexeyAB's loader produced."""
import subprocess
from pathlib import Path

import cv2
import pytest

from model_tools import cfg as cfg_mod, dataset, evaluate, metrics, synth, weights as weights_mod

DEMO = Path(__file__).resolve().parents[2] / "demo"


def make_valid_set(root: Path, suffix: str):
    """40 synthetic images as a validation set, stored as `suffix` (synth writes 4:2:0 JPEGs; PNG
    copies hold exactly the pixels OpenCV decoded from them)."""
    annotations = synth.generate(root / "synth", 40, seed=4242, progress=False)
    lines = []
    for line in annotations.read_text().splitlines():
        name, *rest = line.split()
        stored = Path(name).with_suffix(suffix).name
        if not (root / "synth" / "images" / stored).exists():
            image = cv2.imread(str(root / "synth" / "images" / name))
            cv2.imwrite(str(root / "synth" / "images" / stored), image)
        lines.append(" ".join([stored, *rest]))
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    names = (DEMO / "demo.names").read_text().split()
    out = root / "ds"
    dataset.build(dataset.import_flickr27(root / "list.txt", root / "synth" / "images"), out, names=names,
                  ratios=(0.0, 1.0, 0.0), progress=False, name="demo")
    assert all(p.endswith(suffix) for p in (out / "valid.txt").read_text().split())
    return root, out, names


@pytest.fixture(scope="module")
def valid_set(tmp_path_factory):
    return make_valid_set(tmp_path_factory.mktemp("refmap"), ".png")


@pytest.fixture(scope="module")
def valid_set_jpeg(tmp_path_factory):
    return make_valid_set(tmp_path_factory.mktemp("refmap-jpeg"), ".jpg")


def test_metrics_match_darknets_definitions_on_a_hand_made_case():
    names = ["a", "b", "c"]  # "c" has no truth: darknet still divides by 3
    truths = [("i1", 0, 0, 0, 10, 10, False), ("i1", 1, 20, 20, 30, 30, False)]
    # image i1's box order: a low-score box claims the truth first, then a high-score one
    dets = [("i1", 0, 0.1, 0, 0, 10, 10), ("i1", 0, 0.9, 0, 0, 10, 9), ("i1", 1, 0.8, 20, 20, 30, 30)]
    ours = metrics.compute(dets, truths, names)
    ref = metrics.compute(dets, truths, names, reference=True)
    assert ours.map == pytest.approx(1.0) and ref.map == pytest.approx(2 / 3)
    # at 0.25 ours: the 0.9 box is the TP; darknet: the 0.1 box claimed the truth first, so FP
    assert (ours.classes[0].tp, ours.classes[0].fp) == (1, 0)
    assert (ref.classes[0].tp, ref.classes[0].fp) == (0, 1)
    assert ours.detections_count == 2 and ref.detections_count == 3
    assert metrics.compute(dets, truths, names, points=11, reference=True).map == pytest.approx(2 / 3)


@pytest.mark.darknet
@pytest.mark.parametrize("stored_as", ["valid_set", "valid_set_jpeg"])
def test_reference_mode_equals_darknets_own_detections(stored_as, request, darknet_bin, tmp_path):
    root, out, names = request.getfixturevalue(stored_as)
    data = tmp_path / "valid.data"
    data.write_text(f"classes={len(names)}\ntrain={out / 'valid.txt'}\nvalid={out / 'valid.txt'}\n"
                    f"names={out / 'demo.names'}\nbackup={tmp_path}\nresults={tmp_path / 'results'}\neval=voc\n")
    (tmp_path / "results").mkdir()
    ran = subprocess.run([darknet_bin, "detector", "valid", str(data), str(DEMO / "demo.cfg"),
                          str(DEMO / "demo.weights")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    theirs = metrics.read_comp4(tmp_path / "results" / "comp4_det_test_", names)

    images, truths = evaluate.ground_truth(out / "valid.txt", names)
    net = cfg_mod.load(DEMO / "demo.cfg")
    loaded = weights_mod.read(DEMO / "demo.weights", net)
    assert loaded.header.fork == "pjreddie"
    ours, _ = evaluate.detect_reference(net, loaded, images, "letterbox", progress=False, decoder="opencv")
    sizes = {p.stem: cv2.imread(str(p)).shape[1::-1] for p in images}
    ours = [(i, k, s, *metrics.comp4_box(*box, *sizes[i])) for i, k, s, *box in ours]

    m_theirs = metrics.compute(theirs, truths, names, reference=True)
    m_ours = metrics.compute(ours, truths, names, reference=True)
    assert len(theirs) > 50 and m_theirs.map > 0.3  # a model that detects, not an empty comparison
    print("darknet", len(theirs), [round(100 * c.ap, 3) for c in m_theirs.classes], "ours", len(ours),
          [round(100 * c.ap, 3) for c in m_ours.classes])
    for a, b in zip(m_theirs.classes, m_ours.classes):
        assert abs(a.ap - b.ap) <= 0.001, (a.name, a.ap, b.ap)
    assert abs(m_theirs.map - m_ours.map) <= 0.001
    assert abs(len(theirs) - len(ours)) <= max(2, len(theirs) // 100)
    if len(theirs) == len(ours):  # score for score (comp4 prints 6 decimals): 1.3e-6 when measured
        print("largest score gap", score_gap(theirs, ours))
        assert score_gap(theirs, ours) <= 2e-6
    if stored_as == "valid_set_jpeg":  # the decoder matters here: stb's pixels give other scores (4e-3)
        stb, _ = evaluate.detect_reference(net, loaded, images, "letterbox", progress=False, decoder="stb")
        assert score_gap(theirs, stb) > 1e-4


def score_gap(a, b) -> float:
    """Largest score difference between two detection lists, pairing each image's and class's
    scores in sorted order (inf when their counts differ)."""
    groups = {}
    for side, found in enumerate((a, b)):
        for image, class_id, score, *_ in found:
            groups.setdefault((image, class_id), ([], []))[side].append(score)
    gap = 0.0
    for left, right in groups.values():
        if len(left) != len(right):
            return float("inf")
        gap = max([gap] + [abs(x - y) for x, y in zip(sorted(left), sorted(right))])
    return gap


def test_evaluate_cli_both_modes_one_pass_cached(valid_set, run_cli, tmp_path):
    root, out, names = valid_set
    data = out / "demo.data"
    ev = tmp_path / "ev"
    args = ("evaluate", str(data), str(DEMO / "demo.cfg"), "--weights", str(DEMO / "demo.weights"),
            "--mode", "both", "--out", str(ev))
    first = run_cli("model_tools", *args, "--no-plots")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "device  reference" in first.stdout and "mAP@0.50" in first.stdout
    assert not (ev / "map.png").exists()  # --no-plots
    rows = evaluate.read_rows(ev / "evaluation.csv")
    assert float(rows[0]["map"]) > 0.3 and float(rows[0]["ref_map"]) > 0.3
    cached = sorted((ev / "models").rglob("detections-*"))
    assert [p.name for p in cached] == ["detections-device.npz", "detections-reference-stb.npz"]
    stamps = [p.stat().st_mtime_ns for p in cached]
    second = run_cli("model_tools", *args)  # same settings: detections reused, plots drawn after the numbers
    assert second.returncode == 0, second.stderr[-2000:]
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert (ev / "map.png").exists() and (ev / "pr_curve.png").exists()
    assert first.stdout.split("checkpoint")[0] == second.stdout.split("checkpoint")[0]
    # another interpolation is another cache entry, not a stale hit
    third = run_cli("model_tools", *args, "--no-plots", "--interpolation", "opencv-linear", "--mode", "device")
    assert third.returncode == 0, third.stderr[-2000:]
    assert len(list((ev / "models").rglob("detections-device.npz"))) == 2
    # a damaged cache is detected again (the model compiled then), to the same figures
    cached[0].write_bytes(cached[0].read_bytes()[:200])  # cut short
    fourth = run_cli("model_tools", *args, "--no-plots")
    assert fourth.returncode == 0, fourth.stderr[-2000:]
    assert fourth.stdout.split("checkpoint")[0] == first.stdout.split("checkpoint")[0]
    assert evaluate.load_detections(cached[0])


def synth_voc(root: Path, count: int) -> Path:
    """The synthetic glyphs as a Pascal VOC folder, every 3rd object marked difficult, every
    image in the val set."""
    annotations = synth.generate(root / "synth", count, seed=4242, progress=False)
    voc = root / "VOC"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    objects: dict = {}
    for line in annotations.read_text().splitlines():
        name, label, _subset, *box = line.split()
        objects.setdefault(name, []).append((label, *map(int, box)))
    counter = 0
    for name, boxes in objects.items():
        stem = Path(name).stem
        (voc / "JPEGImages" / name).write_bytes((root / "synth" / "images" / name).read_bytes())
        parts = [f"<annotation><filename>{name}</filename>"]
        for label, x1, y1, x2, y2 in boxes:
            parts.append(f"<object><name>{label}</name><difficult>{int(counter % 3 == 0)}</difficult>"
                         f"<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
                         "</bndbox></object>")
            counter += 1
        (voc / "Annotations" / f"{stem}.xml").write_text("\n".join(parts) + "</annotation>\n")
    (voc / "ImageSets" / "Main" / "val.txt").write_text("".join(f"{Path(n).stem}\n" for n in objects))
    return voc


def test_evaluate_reads_the_difficult_list_import_writes(tmp_path, run_cli):
    """import voc → the .data's difficult= → evaluate (both modes): the difficult objects leave
    the truths (unique_truth_count = the ordinary objects of the XML files), detections on them
    leave darknet's detections_count and the AP curves, so mAP rises against the same labels
    scored without the list."""
    voc = synth_voc(tmp_path, 40)
    ds = tmp_path / "ds"
    run_cli("model_tools", "import", "voc", voc, ds, "--names", DEMO / "demo.names", "--name", "demo",
            "--valid-key", "val", check=True)
    xml = "".join(p.read_text() for p in (voc / "Annotations").glob("*.xml"))
    ordinary, hard = xml.count("<difficult>0</difficult>"), xml.count("<difficult>1</difficult>")
    assert hard > 5 and dataset.read_data_file(ds / "demo.data")["difficult"] == str(ds / "valid-difficult.txt")
    figures = {}
    for run, extra in (("list", ()), ("none", ("--difficult", ""))):
        out = tmp_path / f"ev-{run}"
        result = run_cli("model_tools", "evaluate", ds / "demo.data", DEMO / "demo.cfg", "--weights",
                         DEMO / "demo.weights", "--mode", "both", "--out", out, "--no-plots", *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        table = next((out / "models").glob("*/map.txt")).read_text()
        device, reference = table.split("--- reference ---")
        figures[run] = {name: (int(_field(part, "detections_count")), int(_field(part, "unique_truth_count")),
                               float(_field(part, "(mAP@0.50)")))
                        for name, part in (("device", device), ("reference", reference))}
        row = evaluate.read_rows(out / "evaluation.csv")[0]
        assert row["difficult"] == (str(ds / "valid-difficult.txt") if run == "list" else "")
    print(figures)
    for mode in ("device", "reference"):
        with_list, without = figures["list"][mode], figures["none"][mode]
        assert with_list[1] == without[1] == ordinary  # the label files hold the ordinary objects only
        assert with_list[2] > without[2]  # detections of difficult objects were FPs without the list
    # darknet drops a detection matched to a difficult box from its count
    assert figures["list"]["reference"][0] < figures["none"]["reference"][0]


def _field(table: str, key: str) -> str:
    """The number after `key =` in a map.txt table."""
    return table.split(key, 1)[1].split("=", 1)[1].split()[0].rstrip(",")
