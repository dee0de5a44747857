"""The training box end to end with the real (Debian, CPU) darknet, at toy scale:
synthetic dataset → import → cfg → darknet trains a few hundred iterations → every checkpoint
evaluated through the edge path → best selected → exported IR loads in edge_app and detects."""
import json

import cv2
import pytest

from edge_app.detector import Detector
from edge_app.errors import InputError
from model_tools import darknet_log
from model_tools.pipeline import Pipeline, PipelineSpec
from model_tools.train import TrainingFailed, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, darknet_bin):
    root = tmp_path_factory.mktemp("pipeline")
    spec = PipelineSpec(workdir=str(root), name="toy", synth=240, synth_seed=5, width=128, height=96,
                        width_multiplier=0.25, batch=8, subdivisions=1, learning_rate=0.003, burn_in=20,
                        max_batches=300, darknet=darknet_bin)
    lines = []
    state = Pipeline(spec, progress=False, log=lines.append).run()
    return root, spec, state, lines


@pytest.mark.darknet
def test_pipeline_trains_evaluates_selects_and_exports(trained):
    root, spec, state, _ = trained
    rows = darknet_log.read_csv(root / "training" / "metrics.csv")
    assert rows[-1].iteration == 300
    # the metrics parsed live while darknet ran equal the saved log parsed afterwards
    offline = darknet_log.parse_file(root / "training" / "train.log")
    assert [(r.iteration, r.avg_loss) for r in offline] == [(r.iteration, r.avg_loss) for r in rows]
    assert all(r.region_count > 0 and 0 <= r.region_iou <= 1 for r in offline[5:])
    first, last = rows[:20], rows[-20:]
    assert sum(r.avg_loss for r in last) < sum(r.avg_loss for r in first)  # it learned something
    from model_tools.evaluate import read_rows

    evaluated = read_rows(root / "evaluation" / "evaluation.csv")
    names = [r["checkpoint"] for r in evaluated]
    assert {"toy-train_100.weights", "toy-train_200.weights", "toy-train_300.weights",
            "toy-train_final.weights"} <= set(names)
    best = state["select"]["best"]
    assert float(best["map"]) == max(float(r["map"]) for r in evaluated)
    assert "<== best" in (root / "selection.txt").read_text()
    for png in ("training/loss.png", "training/region.png", "evaluation/map.png", "model/pr_curve.png"):
        assert (root / png).stat().st_size > 5000, png
    meta = json.loads(next((root / "model").glob("*.json")).read_text())
    assert meta["ir"]["precision"] == "FP16" and meta["resize_mode"] == "letterbox"  # pjreddie trains letterboxed


@pytest.mark.darknet
def test_exported_model_detects_in_edge_app(trained):
    root, spec, state, _ = trained
    detector = Detector(root / "model", conf_threshold=0.005)
    image = (root / "dataset" / "valid.txt").read_text().split()[0]
    found = detector.detect(cv2.imread(image))
    assert found and all(0 <= d.x1 <= d.x2 <= 320 and 0 <= d.y1 <= d.y2 <= 240 for d in found)
    assert {d.label for d in found} <= {"Circle", "Cross", "Ring", "Square", "Star", "Triangle"}


@pytest.mark.darknet
def test_pipeline_resumes_without_redoing_work(trained, darknet_bin):
    root, spec, state, _ = trained
    lines = []
    Pipeline(spec, progress=False, log=lines.append).run()
    assert "== dataset: done before, same settings (skipped)" in lines
    assert "== cfg: done before, same settings (skipped)" in lines
    # training had reached max_batches: darknet is not started again, the metrics are kept
    assert any("training already reached max_batches=300" in l for l in lines)
    commands = [l for l in (root / "training" / "train.log").read_text().splitlines() if l.startswith("# ")]
    assert len(commands) == 1
    assert darknet_log.read_csv(root / "training" / "metrics.csv")[-1].iteration == 300


@pytest.mark.darknet
def test_training_failures_are_clear(tmp_path, darknet_bin, trained):
    root, spec, state, _ = trained
    bad = tmp_path / "bad.data"
    bad.write_text(f"classes=6\ntrain={tmp_path / 'missing.txt'}\nbackup={tmp_path / 'b'}\n")
    with pytest.raises(InputError, match="cannot read the train list"):  # checked before darknet starts
        train(bad, root / "toy-train.cfg", darknet=darknet_bin, workdir=tmp_path / "w", progress=False)
    # a learning rate that blows the loss up: stopped with the iteration named
    wild = tmp_path / "wild.cfg"
    wild.write_text((root / "toy-train.cfg").read_text().replace("learning_rate=0.003", "learning_rate=1000")
                    .replace("burn_in=20", "burn_in=0"))
    data = tmp_path / "wild.data"
    data.write_text((root / "dataset" / "toy.data").read_text().replace(
        f"backup={root / 'dataset' / 'backup'}", f"backup={tmp_path / 'wb'}"))
    with pytest.raises(TrainingFailed, match="NaN at iteration"):
        train(data, wild, darknet=darknet_bin, workdir=tmp_path / "w2", progress=False)


@pytest.mark.darknet
def test_region_head_on_cpu_darknet_is_caught(tmp_path, darknet_bin, trained):
    """pjreddie's CPU backward for [region] is empty: the driver notices and says so."""
    root, spec, state, _ = trained
    from model_tools import cfggen

    text = cfggen.tiny_yolov2(cfggen.TinySpec(classes=6, width=128, height=96, width_multiplier=0.25,
                                              batch=8, subdivisions=1, max_batches=400, burn_in=5,
                                              learning_rate=0.003, head="region"))
    cfg = tmp_path / "region.cfg"
    cfg.write_text(text)
    data = tmp_path / "r.data"
    data.write_text((root / "dataset" / "toy.data").read_text().replace(
        f"backup={root / 'dataset' / 'backup'}", f"backup={tmp_path / 'rb'}"))
    with pytest.raises(TrainingFailed, match="not updating the model") as info:
        train(data, cfg, darknet=darknet_bin, workdir=tmp_path / "w", progress=False)
    assert "--train-head yolo" in info.value.fix
