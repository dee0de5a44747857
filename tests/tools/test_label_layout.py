"""Labels where every darknet fork finds them: our model of each fork's path rewriting, the
check run before training, and the Debian (pjreddie) darknet itself reading the imported layout."""
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.errors import InputError
from model_tools import dataset


def jpg(path, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return path


@pytest.mark.parametrize("image, fork, label", [
    ("/d/images/a.jpg", "alexeyab", "/d/images/a.txt"),  # the general swap is commented out in AlexeyAB
    ("/d/images/a.jpg", "pjreddie", "/d/labels/a.txt"),
    ("/d/VOC2007/JPEGImages/a.jpg", "alexeyab", "/d/VOC2007/labels/a.txt"),
    ("/d/VOC2007/JPEGImages/a.jpg", "pjreddie", "/d/VOC2007/labels/a.txt"),
    ("/coco/images/val2017/a.jpg", "alexeyab", "/coco/labels/val2017/a.txt"),
    ("/d/drawings/a.jpg", "pjreddie", "/d/dlabelsings/a.txt"),  # "raw" anywhere
    ("/d/img/a.jpeg", "pjreddie", "/d/img/a.jpeg"),  # pjreddie has no .jpeg rule: it would read the image
    ("/d/img/a.jpeg", "alexeyab", "/d/img/a.txt"),
    ("/d/img/a.jpg", "alexeyab", "/d/img/a.txt"),
    ("/d/img/a.jpg", "pjreddie", "/d/img/a.txt"),
])
def test_each_forks_label_path(image, fork, label):
    assert dataset.darknet_label_path(image, fork) == Path(label)


def imported(tmp_path, names=("raw_0.jpg", "b.jpeg", "c.jpg")):
    src = tmp_path / "src"
    lines = []
    for i, name in enumerate(names):
        jpg(src / name, seed=i)
        lines.append(f"{name} A {1 + i % 6} 5 5 30 30")
    (tmp_path / "ann.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    dataset.build(dataset.import_flickr27(tmp_path / "ann.txt", src), out, ratios=(0.34, 0.66, 0.0), progress=False)
    return out


def test_import_puts_labels_where_both_forks_look(tmp_path):
    out = imported(tmp_path)
    listed = (out / "train.txt").read_text().split() + (out / "valid.txt").read_text().split()
    assert len(listed) == 3
    for image in listed:
        assert Path(image).parent == out / dataset.IMAGE_FOLDER
        assert Path(image).suffix == ".jpg"  # .jpeg stored as .jpg: pjreddie has no .jpeg rule
        assert "raw" not in Path(image).name  # renamed: pjreddie would rewrite it
        for fork in dataset.FORKS:
            label = dataset.darknet_label_path(image, fork)
            assert label == Path(image).with_suffix(".txt") and label.read_text().startswith("0 ")
    check = dataset.check_labels(out / "dataset.data")
    assert (check.images, check.boxes, check.empty) == (3, 3, 0)


def test_check_names_each_file_whose_labels_a_fork_misses(tmp_path):
    # the layout the old import wrote: images/ and labels/ side by side
    root = tmp_path / "old"
    lines = []
    for i in range(3):
        image = jpg(root / "images" / f"{i}.jpg", seed=i)
        (root / "labels").mkdir(exist_ok=True)
        (root / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        lines.append(str(image))
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "old.data").write_text(f"classes=1\ntrain={root / 'train.txt'}\nvalid={root / 'train.txt'}\n")
    assert dataset.check_labels(root / "old.data", "pjreddie").boxes == 6  # train + valid
    with pytest.raises(InputError) as caught:
        dataset.check_labels(root / "old.data", "alexeyab")
    assert "3 of 3 images" in str(caught.value) and str(root / "images" / "0.txt") in str(caught.value)
    with pytest.raises(InputError, match="3 of 3 images"):
        dataset.check_labels(root / "old.data")  # every fork


def test_check_refuses_training_on_no_object(tmp_path):
    out = imported(tmp_path, names=("a.jpg", "b.jpg"))
    for label in (out / dataset.IMAGE_FOLDER).glob("*.txt"):
        label.write_text("")
    with pytest.raises(InputError, match="no object"):
        dataset.check_labels(out / "dataset.data")


def test_check_resolves_relative_paths_from_darknets_folder(tmp_path):
    imported(tmp_path, names=("a.jpg", "b.jpg"))
    rel = tmp_path / "rel.data"
    rel.write_text("classes=1\ntrain=out/train.txt\nvalid=out/valid.txt\n")
    assert dataset.check_labels(rel, base=tmp_path).images == 2
    with pytest.raises(InputError, match="cannot read the train list"):
        dataset.check_labels(rel, base=tmp_path / "elsewhere")


def test_output_folder_darknet_would_rewrite_is_refused(tmp_path):
    src = tmp_path / "src"
    jpg(src / "a.jpg")
    (tmp_path / "ann.txt").write_text("a.jpg A 1 5 5 30 30\n")
    for bad in ("raw_data", "JPEGImages", "my_images"):
        with pytest.raises(InputError, match="would look for the labels"):
            dataset.build(dataset.import_flickr27(tmp_path / "ann.txt", src), tmp_path / bad / "out", progress=False)


TINY_CFG = """[net]
batch=2
subdivisions=1
width=32
height=32
channels=3
learning_rate=0.001
max_batches=1
policy=constant

[convolutional]
filters=6
size=1
stride=1
pad=1
activation=linear

[region]
anchors=1,1
classes=1
coords=4
num=1
softmax=1
"""


def darknet_train(darknet_bin, data, tmp_path):
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    (tmp_path / "backup").mkdir(exist_ok=True)
    return subprocess.run([darknet_bin, "detector", "train", str(data), str(cfg)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.darknet
def test_debian_darknet_reads_the_imported_layout_and_the_check_agrees(tmp_path, darknet_bin):
    out = imported(tmp_path, names=("a.jpg", "b.jpg", "c.jpg"))
    data = tmp_path / "t.data"
    data.write_text(f"classes=1\ntrain={out / 'train.txt'}\nvalid={out / 'valid.txt'}\n"
                    f"names={out / 'dataset.names'}\nbackup={tmp_path / 'backup'}\n")
    assert dataset.check_labels(data, "pjreddie").boxes == 3
    ran = darknet_train(darknet_bin, data, tmp_path)
    assert "Couldn't open file" not in ran.stderr + ran.stdout
    assert (tmp_path / "backup" / "tiny_final.weights").exists(), ran.stderr[-2000:]

    # move the labels away: the check and the real darknet both see it
    for label in (out / dataset.IMAGE_FOLDER).glob("*.txt"):
        label.rename(label.with_suffix(".moved"))
    with pytest.raises(InputError, match="would not find the labels"):
        dataset.check_labels(data, "pjreddie")
    ran = darknet_train(darknet_bin, data, tmp_path)
    assert "Couldn't open file" in ran.stderr + ran.stdout
    assert str(out / dataset.IMAGE_FOLDER) in ran.stderr + ran.stdout
