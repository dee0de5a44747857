"""Bad input through the real command lines: a clear message, exit 2, nothing written."""
import hashlib
import os
import subprocess
import sys

import pytest

from model_tools import cfg, weights
from tests.conftest import REPO, TEST_CFGS

CFG = TEST_CFGS["tiny-224x160"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    w = root / "good.weights"
    weights.write(w, weights.random(cfg.load(CFG), seed=3))
    names = root / "names.txt"
    names.write_text("a\nb\nc\n")
    return root, w, names


def export(run_cli, cfg_path, weights_path, names, out):
    return run_cli("model_tools", "export", "--cfg", cfg_path, "--weights", weights_path,
                   "--names", names, "-o", out)


def assert_refused(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def tree(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_truncated_weights(run_cli, good, tmp_path):
    root, w, names = good
    bad = tmp_path / "bad.weights"
    bad.write_bytes(w.read_bytes()[:-100])
    out = tmp_path / "out"
    assert_refused(export(run_cli, CFG, bad, names, out), "bad.weights", "bytes", "fix:")
    assert tree(out) == []


def test_weights_of_another_cfg(run_cli, good, tmp_path):
    root, w, names = good
    out = tmp_path / "out"
    result = export(run_cli, TEST_CFGS["yolov2-tiny-voc"], w, names, out)
    assert_refused(result, "does not match the cfg", "yolov2-tiny-voc.cfg")
    assert tree(out) == []


def test_malformed_cfg_names_file_and_line(run_cli, good, tmp_path):
    root, w, names = good
    broken = tmp_path / "broken.cfg"
    broken.write_text(CFG.read_text().replace("filters=40", "filters=41"))
    out = tmp_path / "out"
    result = export(run_cli, broken, w, names, out)
    line = next(i for i, l in enumerate(broken.read_text().splitlines(), 1) if l == "filters=41")
    assert_refused(result, f"broken.cfg:{line}", "filters=40")
    assert tree(out) == []


def test_unknown_layer(run_cli, good, tmp_path):
    root, w, names = good
    broken = tmp_path / "yolo.cfg"
    broken.write_text(CFG.read_text().replace("[reorg]", "[upsample]"))
    assert_refused(export(run_cli, broken, w, names, tmp_path / "out"), "[upsample] is not supported")


def test_names_that_do_not_fit(run_cli, good, tmp_path):
    root, w, _ = good
    names = tmp_path / "two.names"
    names.write_text("a\nb\n")
    assert_refused(export(run_cli, CFG, w, names, tmp_path / "out"), "2 names", "classes=3")


def test_missing_files(run_cli, good, tmp_path):
    root, w, names = good
    assert_refused(export(run_cli, tmp_path / "nope.cfg", w, names, tmp_path / "o"), "nope.cfg")
    assert_refused(export(run_cli, CFG, tmp_path / "nope.weights", names, tmp_path / "o"),
                   "nope.weights")


def test_failed_export_leaves_previous_export_intact(run_cli, good, tmp_path):
    root, w, names = good
    out = tmp_path / "model"
    assert export(run_cli, CFG, w, names, out).returncode == 0
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    assert sorted(before) == ["tiny-224x160.bin", "tiny-224x160.darknet.cfg", "tiny-224x160.darknet.weights",
                              "tiny-224x160.json", "tiny-224x160.xml"]  # the darknet pair: OpenCV-DNN engine
    bad = tmp_path / "bad.weights"
    bad.write_bytes(w.read_bytes()[:-4])
    assert_refused(export(run_cli, CFG, bad, names, out), "bytes")
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    assert after == before


def test_partial_out_of_range(run_cli, good, tmp_path):
    root, w, _ = good
    out = tmp_path / "p.conv"
    assert_refused(run_cli("model_tools", "partial", CFG, w, out, 99), "out of range")
    assert not out.exists()


def test_check_prints_the_plan(run_cli, good):
    root, w, _ = good
    result = run_cli("model_tools", "check", CFG, w, check=True)
    assert "224x160" in result.stdout and "grid 7x5" in result.stdout
    assert "sizes match the cfg" in result.stdout


def test_output_into_a_reader_that_has_gone_ends_quietly():
    """`model-tools check x.cfg | head -1`: the rest of the output has nobody to read it (both
    command lines share edge_app.errors.run_command, which says so)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before the first line is written
    result = subprocess.run([sys.executable, "-m", "model_tools", "check", CFG], stdout=write_end,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")
