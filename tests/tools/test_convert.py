"""`model-tools cfg --head yolo` and `model-tools convert`: the training head and its deployable
[region] model, through the same step the pipeline uses; default anchors scaled to the grid."""
import subprocess
import sys

from model_tools import cfg, cfggen, weights
from tests.conftest import REPO


def run(*args):
    return subprocess.run([sys.executable, "-m", "model_tools", *map(str, args)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_cfg_writes_the_yolo_head_and_convert_makes_the_region_model(tmp_path):
    done = run("cfg", tmp_path / "t.cfg", "--classes", "3", "--width", "160", "--height", "128", "--head", "yolo",
               "--width-multiplier", "0.25")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "t.cfg").read_text()
    assert "[yolo]" in text and "[region]" not in text
    trained = weights.random(cfg.plan(cfg.parse_text(cfggen.to_region(text)), "x"), seed=1,
                             header=weights.Header(0, 2, 5, 6400))
    (tmp_path / "t_1000.weights").write_bytes(trained.to_bytes())
    done = run("convert", tmp_path / "t.cfg", tmp_path / "d.cfg", "--weights", tmp_path / "t_1000.weights",
               "--weights-out", tmp_path / "d.weights")
    assert done.returncode == 0, done.stderr
    net = cfg.load(tmp_path / "d.cfg")
    assert net.region.classes == 3 and net.region.num == 5
    assert (tmp_path / "d.weights").read_bytes() == (tmp_path / "t_1000.weights").read_bytes()
    # the same function the pipeline's cfg step calls writes the same file
    cfggen.convert(tmp_path / "t.cfg", tmp_path / "p.cfg")
    assert (tmp_path / "p.cfg").read_text() == (tmp_path / "d.cfg").read_text()


def test_convert_refuses_a_region_cfg_and_weights_that_do_not_fit(tmp_path):
    (tmp_path / "r.cfg").write_text(cfggen.tiny_yolov2(cfggen.TinySpec(classes=2, width=96, height=64)))
    done = run("convert", tmp_path / "r.cfg", tmp_path / "o.cfg")
    assert done.returncode == 2 and "[yolo]" in done.stderr and not (tmp_path / "o.cfg").exists()
    (tmp_path / "y.cfg").write_text(cfggen.tiny_yolov2(cfggen.TinySpec(classes=2, width=96, height=64, head="yolo")))
    (tmp_path / "w.weights").write_bytes(b"\0" * 400)
    done = run("convert", tmp_path / "y.cfg", tmp_path / "o.cfg", "--weights", tmp_path / "w.weights",
               "--weights-out", tmp_path / "o.weights")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "o.cfg").exists() and not (tmp_path / "o.weights").exists()


def test_default_anchors_are_scaled_to_the_grid():
    assert cfggen.default_anchors(416, 416) == cfggen.DEFAULT_ANCHORS
    small = cfggen.default_anchors(160, 128)  # a 5x4 grid: the same share of the image as at 13x13
    assert small[8] == round(16.62 * 5 / 13, 4) and small[9] == round(10.52 * 4 / 13, 4)
    text = cfggen.tiny_yolov2(cfggen.TinySpec(classes=1, width=160, height=128))
    assert cfg.plan(cfg.parse_text(text), "x").region.anchors[8] == small[8]


def test_every_option_has_help_text():
    from model_tools.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [f"{name} {action.dest}" for name, p in sub.choices.items() for action in p._actions
               if action.help is None and action.dest != "help"]
    assert not missing, missing
