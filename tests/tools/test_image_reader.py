"""`model-tools evaluate` prepares the validation images in a child process forked before it
imports numpy (model_tools.image_reader): the child's tensors are the threads' to the byte, an
unreadable image is the same InputError at the same image, a child that dies is made up for,
and no child outlives the command."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_tools import evaluate
from model_tools.image_reader import ImageReader, read_and_prepare
from tests.conftest import PHOTOS, REPO, photo

# Run in a fresh interpreter: this test process has numpy loaded, where the reader never forks.
SCRIPT = r"""
import json, os, signal, sys
from pathlib import Path
from edge_app.errors import InputError
from model_tools.image_reader import ImageReader

args = json.loads(sys.argv[1])
images = [Path(p) for p in args["images"]]
reader = ImageReader.start(images, args["cfg"], args["weights"], args["resize_mode"], "darknet", args["budget"])
if reader is None:
    print(json.dumps({"forked": False}))
    sys.exit(0)
import numpy as np  # loaded after the fork

pid = reader._pid
key = reader.key
if args["kill"]:  # before it reported a single image: each one is read here instead
    os.kill(pid, signal.SIGKILL)
results = []
for i in range(len(reader.images)):
    try:
        tensor, width, height = reader.result(i)
    except InputError as exc:
        results.append([exc.what, exc.where, exc.fix])
        break
    np.save(os.path.join(args["out"], f"{i}.npy"), tensor)
    results.append([width, height])
reported = len(reader._ready)
reader.close()
try:
    os.waitpid(pid, os.WNOHANG)
    reaped = False
except ChildProcessError:
    reaped = True
print(json.dumps({"forked": True, "key": key, "results": results, "reported": reported, "reaped": reaped}))
"""


def run_reader(tmp_path, images, cfg, weights, resize_mode=None, budget=256 << 20, kill=False):
    out = tmp_path / "tensors"
    out.mkdir(exist_ok=True)
    args = {"images": [str(p) for p in images], "cfg": str(cfg), "weights": str(weights),
            "resize_mode": resize_mode, "budget": budget, "kill": kill, "out": str(out)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(args)], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return report, out


@pytest.fixture
def jpegs(tmp_path):
    paths = []
    for name in PHOTOS:
        paths.append(tmp_path / f"{name}.jpg")
        shutil.copy(photo(name), paths[-1])
    return paths


@pytest.mark.parametrize("resize_mode", [None, "resize"], ids=["from-the-weights-header", "given"])
def test_the_child_prepares_the_tensors_the_threads_prepare(tmp_path, exported, jpegs, resize_mode):
    _, cfg, weights, _ = exported("tiny-224x160")
    report, out = run_reader(tmp_path, jpegs, cfg, weights, resize_mode)
    # random weights are written with pjreddie's stamp: letterboxed, as export would choose
    key = (224, 160, resize_mode or "letterbox", "darknet")
    assert report["forked"] and tuple(report["key"]) == key and report["reaped"]
    assert report["reported"] == len(jpegs)
    for i, path in enumerate(jpegs):
        tensor, width, height = read_and_prepare(path, key)
        assert report["results"][i] == [width, height]
        assert np.array_equal(np.load(out / f"{i}.npy"), tensor)


def test_an_unreadable_image_is_the_threads_input_error_at_that_image(tmp_path, exported, jpegs):
    _, cfg, weights, _ = exported("tiny-224x160")
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image\n")
    images = jpegs[:2] + [broken] + jpegs[2:]
    report, _ = run_reader(tmp_path, images, cfg, weights)
    with pytest.raises(evaluate.InputError) as expected:
        read_and_prepare(broken, (224, 160, "letterbox", "darknet"))
    assert len(report["results"]) == 3 and report["results"][2] == [expected.value.what, str(broken),
                                                                     expected.value.fix]
    assert report["reaped"]


def test_a_child_killed_early_is_made_up_for_here(tmp_path, exported, jpegs):
    _, cfg, weights, _ = exported("tiny-224x160")
    images = jpegs * 20  # far more than it reads before it is killed, right after the fork
    report, out = run_reader(tmp_path, images, cfg, weights, kill=True)
    key = (224, 160, "letterbox", "darknet")
    assert report["reported"] < len(images) and report["reaped"]
    assert len(report["results"]) == len(images)
    for i in (0, len(images) // 2, len(images) - 1):
        assert np.array_equal(np.load(out / f"{i}.npy"), read_and_prepare(images[i], key)[0])


def test_only_the_images_the_budget_keeps_are_read_by_the_child(tmp_path, exported, jpegs):
    _, cfg, weights, _ = exported("tiny-224x160")
    report, _ = run_reader(tmp_path, jpegs, cfg, weights, budget=2 * 224 * 160 * 3)
    assert report["forked"] and len(report["results"]) == 2 == report["reported"]


REFUSED = r"""
import json, mmap, os, sys
from pathlib import Path
from model_tools.image_reader import ImageReader


def refuse(*args, **kwargs):
    raise OSError(12, "Cannot allocate memory")


if sys.argv[1] == "fork":
    os.fork = refuse
else:
    mmap.mmap = refuse
before = len(os.listdir("/proc/self/fd"))
reader = ImageReader.start([Path(p) for p in sys.argv[4:]], sys.argv[2], sys.argv[3], None, "darknet", 1 << 28)
print(json.dumps({"reader": reader is not None, "descriptors_left": len(os.listdir("/proc/self/fd")) - before}))
"""


@pytest.mark.parametrize("refused", ["fork", "mmap"])
def test_no_memory_or_process_to_spare_leaves_the_reading_to_the_threads(exported, jpegs, refused):
    _, cfg, weights, _ = exported("tiny-224x160")
    done = subprocess.run([sys.executable, "-c", REFUSED, refused, str(cfg), str(weights), *map(str, jpegs)],
                          capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert json.loads(done.stdout) == {"reader": False, "descriptors_left": 0}


def test_no_fork_where_numpy_is_loaded(exported, jpegs):
    # this process: numpy loaded, its BLAS threads running — the threads read instead
    _, cfg, weights, _ = exported("tiny-224x160")
    assert ImageReader.start(jpegs, cfg, weights, None, "darknet", 256 << 20) is None


# `model-tools evaluate` in a fresh interpreter, saying whether it forked and what it left behind
COMMAND = r"""
import json, os, sys
from model_tools import image_reader
from model_tools.cli import main

forked = []
start = image_reader.ImageReader.start


def watched(*args):
    reader = start(*args)
    forked.append(reader is not None)
    return reader


image_reader.ImageReader.start = watched
code = main(sys.argv[1:])
try:
    os.waitpid(-1, os.WNOHANG)
    left = True
except ChildProcessError:
    left = False
print(json.dumps({"forked": forked, "child_left": left}))
sys.exit(code)
"""


def run_evaluate(*args):
    done = subprocess.run([sys.executable, "-c", COMMAND, "evaluate", *map(str, args), "--no-plots"],
                          capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=300)
    return done, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_command_scores_as_evaluation_in_process_and_leaves_no_child(tmp_path, exported, jpegs):
    _, cfg, weights, names = exported("tiny-224x160")
    valid = tmp_path / "valid.txt"
    valid.write_text("".join(f"{p}\n" for p in jpegs * 4))
    data = tmp_path / "photos.data"
    data.write_text(f"classes={len(Path(names).read_text().split())}\nvalid={valid}\nnames={names}\n")
    # the command (the child reads) and evaluation in this process (threads read): the same detections
    done, seen = run_evaluate(data, cfg, "--weights", weights, "--out", tmp_path / "cli")
    assert done.returncode == 0, done.stderr
    assert seen == {"forked": [True], "child_left": False}
    evaluate.evaluate_checkpoints(cfg, Path(names).read_text().split(), valid, [Path(weights)], tmp_path / "here",
                                  plot=False, progress=False)
    found = [evaluate.load_detections(next((tmp_path / run / "models").glob("*/detections-device.npz")))
             for run in ("cli", "here")]
    assert len(found[0].score) > 0 and found[0].stems == found[1].stems
    for column in ("image", "class_id", "score", "boxes"):
        assert np.array_equal(getattr(found[0], column), getattr(found[1], column))
    # an error after the fork (an --out that cannot be made): exit 2, one message, the child reaped
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output folder goes")
    done, seen = run_evaluate(data, cfg, "--weights", weights, "--out", blocked / "out")
    assert done.returncode == 2 and "Traceback" not in done.stderr and str(blocked) in done.stderr
    assert seen == {"forked": [True], "child_left": False}
    # every checkpoint of a backup folder (the README's command): the first one's preprocessing
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(weights, backup / f"{Path(cfg).stem}_100.weights")
    done, seen = run_evaluate(data, cfg, "--backup", backup, "--out", tmp_path / "backup-eval")
    assert done.returncode == 0, done.stderr
    assert seen == {"forked": [True], "child_left": False} and "_100.weights" in done.stdout
    # the reference mode reads no images for the device: no child
    done, seen = run_evaluate(data, cfg, "--weights", weights, "--out", tmp_path / "ref", "--mode", "reference")
    assert done.returncode == 0, done.stderr
    assert seen == {"forked": [], "child_left": False}
