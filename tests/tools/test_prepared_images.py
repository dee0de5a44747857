"""Evaluation reads and prepares each validation image once for every checkpoint of the same
input (model_tools.evaluate.PreparedImages), and still scores each one as the Pi runs it."""
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app import metadata
from edge_app.detector import Detector
from edge_app.errors import InputError
from edge_app.preprocess import prepare
from model_tools import evaluate
from model_tools.evaluate import PreparedImages, detect_all, evaluate_checkpoints
from model_tools.image_reader import read_and_prepare
from tests.conftest import PHOTOS, photo


@pytest.fixture
def jpegs(tmp_path):
    """The darknet photos (each its own size) as JPEGs of this test's own, to remove at will."""
    paths = []
    for name in PHOTOS:
        path = tmp_path / f"{name}.jpg"
        shutil.copy(photo(name), path)
        paths.append(path)
    return paths


def as_the_pi_runs_it(model, paths):
    detector = Detector(model, "CPU", 0.005, 0.45)
    found = []
    for path in paths:
        found += [(path.stem, d.class_id, d.confidence, d.x1, d.y1, d.x2, d.y2)
                  for d in detector.detect(cv2.imread(str(path)))]
    return found


def test_a_second_checkpoint_reuses_the_prepared_images_and_scores_the_same(exported, jpegs):
    model = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    expected = as_the_pi_runs_it(model, jpegs)
    assert expected  # random weights and a 0.005 threshold: boxes on every photo
    prepared = PreparedImages(jpegs)
    first, _ = detect_all(model, prepared, progress=False)
    for path in jpegs:
        path.unlink()  # kept in memory: the next checkpoint does not read them again
    second, _ = detect_all(model, prepared, progress=False)
    assert first == expected and second == expected


def test_past_the_budget_the_first_images_are_kept_and_the_rest_read_again(exported, jpegs):
    model = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    expected = as_the_pi_runs_it(model, jpegs)
    prepared = PreparedImages(jpegs, budget=2 * 224 * 160 * 3)  # room for two inputs
    assert detect_all(model, prepared, progress=False)[0] == expected
    for path in jpegs[:2]:
        path.unlink()
    assert detect_all(model, prepared, progress=False)[0] == expected
    jpegs[2].unlink()
    with pytest.raises(InputError) as failure:
        detect_all(model, prepared, progress=False)
    assert failure.value.where == str(jpegs[2])


def test_another_preprocessing_prepares_the_images_anew(exported, jpegs):
    resized = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    boxed = exported("tiny-224x160", fp16=True, resize_mode="letterbox")[0]
    prepared = PreparedImages(jpegs)
    assert detect_all(resized, prepared, progress=False)[0] == as_the_pi_runs_it(resized, jpegs)
    assert detect_all(boxed, prepared, progress=False)[0] == as_the_pi_runs_it(boxed, jpegs)
    assert detect_all(resized, prepared, progress=False)[0] == as_the_pi_runs_it(resized, jpegs)


def reader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("read")]


def test_reading_started_before_the_model_exists_gives_the_inputs_the_pi_prepares(jpegs):
    key = (224, 160, "resize", "darknet")  # what export will write into the metadata
    prepared = PreparedImages(jpegs)
    prepared.start(key)  # evaluation starts it, then exports and compiles the checkpoint
    got = list(prepared.inputs(key))
    for path in jpegs:
        path.unlink()
    again = list(prepared.inputs(key))  # the same preprocessing: nothing is read again
    prepared.close()
    for (tensor, width, height), (kept, _, _), path in zip(got, again, jpegs):
        frame = cv2.imread(str(photo(path.stem)))
        assert (width, height) == (frame.shape[1], frame.shape[0])
        assert np.array_equal(tensor, prepare(frame, *key)) and np.array_equal(kept, tensor)
    assert len(got) == len(jpegs) == len(again)
    assert not reader_threads()


def test_a_failed_export_leaves_no_reading_behind(tmp_path, exported, jpegs):
    _, cfg, weights, names = exported("tiny-224x160", fp16=True, resize_mode="resize")
    valid = tmp_path / "valid.txt"
    valid.write_text("".join(f"{p}\n" for p in jpegs * 50))  # enough reading to outlast the export
    out = tmp_path / "out"
    out.mkdir()
    (out / "models").write_text("a file where the exported models go")
    with pytest.raises(InputError) as failure:  # held, as a caller reporting it holds it
        evaluate_checkpoints(cfg, Path(names).read_text().split(), valid, [Path(weights)], out, plot=False,
                             progress=False)
    assert failure.value.where.startswith(str(out / "models"))
    for thread in reader_threads():
        thread.join(timeout=30)  # the images being read finish, the queued ones are dropped, the readers end
    assert not reader_threads()


def test_a_bad_label_found_while_the_model_compiles_stops_the_reading(tmp_path, exported, jpegs):
    # the truths are read while the model compiles and the reader threads decode the images: an
    # error there ends all three; the export already written is whole (its metadata checks out)
    _, cfg, weights, names = exported("tiny-224x160", fp16=True, resize_mode="resize")
    valid = tmp_path / "valid.txt"
    valid.write_text("".join(f"{p}\n" for p in jpegs * 50))
    jpegs[-1].with_suffix(".txt").write_text("0 0.5 0.5 nan 0.2\n")
    out = tmp_path / "out"
    with pytest.raises(InputError) as failure:
        evaluate_checkpoints(cfg, Path(names).read_text().split(), valid, [Path(weights)], out, plot=False,
                             progress=False)
    assert failure.value.where.startswith(str(jpegs[-1].with_suffix(".txt")))
    for thread in reader_threads():
        thread.join(timeout=30)
    assert not reader_threads() and not [t for t in threading.enumerate() if t.name.startswith("compile")]
    exports = list((out / "models").iterdir())
    assert len(exports) == 1
    metadata.load(exports[0])  # complete: the IR its metadata hashes is there


@pytest.mark.parametrize("backlog", [0, 2 ** 40], ids=["decoded-after-every-submission", "decoded-at-the-end"])
def test_outputs_decoded_in_batches_of_any_size_score_as_the_pi(monkeypatch, exported, jpegs, backlog):
    model = exported("tiny-224x160", fp16=True, resize_mode="resize")[0]
    monkeypatch.setattr(evaluate, "DECODE_BACKLOG", backlog)
    assert detect_all(model, jpegs * 3, progress=False)[0] == as_the_pi_runs_it(model, jpegs * 3)


DECODER_FIXTURES = sorted(p for p in (Path(__file__).resolve().parents[1] / "data" / "darknet_decode").iterdir()
                          if p.suffix in (".jpg", ".png") and not p.name.endswith(".darknet.png"))


@pytest.mark.parametrize("path", DECODER_FIXTURES, ids=lambda p: p.name)
def test_images_are_read_with_the_pixels_and_orientation_of_imread(path):
    # the reader decodes the file's bytes from memory (cheaper than cv2.imread's own file reading):
    # every kind of file must still give imread's frame — EXIF rotation, CMYK, grey, 16-bit PNG, alpha
    key = (32, 24, "letterbox", "darknet")
    tensor, width, height = read_and_prepare(path, key)
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert (width, height) == (frame.shape[1], frame.shape[0])
    assert np.array_equal(tensor, prepare(frame, *key))


def test_an_unreadable_file_is_an_input_error_naming_it(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image\n")
    (tmp_path / "folder.jpg").mkdir()
    for name in ("empty.jpg", "text.jpg", "folder.jpg", "missing.jpg"):
        with pytest.raises(InputError) as failure:
            read_and_prepare(tmp_path / name, (32, 24, "resize", "darknet"))
        assert failure.value.where == str(tmp_path / name)


def test_evaluation_scores_an_ir_without_the_darknet_bundle(tmp_path, exported, jpegs):
    # an IR that is scored, never deployed: no copy of the checkpoint beside it, the sources' hashes kept
    import hashlib

    _, cfg, weights, names = exported("tiny-224x160", fp16=True, resize_mode="resize")
    valid = tmp_path / "valid.txt"
    valid.write_text("".join(f"{p}\n" for p in jpegs))
    out = tmp_path / "out"
    evaluate_checkpoints(cfg, Path(names).read_text().split(), valid, [Path(weights)], out, plot=False,
                         progress=False)
    model_dir = next((out / "models").iterdir())
    assert not list(model_dir.glob("*.darknet.*"))
    info = metadata.load(model_dir)
    assert "darknet" not in info.raw
    assert info.raw["source"]["weights_sha256"] == hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    assert info.raw["source"]["cfg_sha256"] == hashlib.sha256(Path(cfg).read_bytes()).hexdigest()
