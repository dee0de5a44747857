"""Importers on hand-made files in each format, with the awkward cases, and a fuzz of
malformed annotations: listed exclusions or a clear InputError, never a traceback."""
import json
import random
import shutil

import cv2
import numpy as np
import pytest

from edge_app.errors import InputError
from model_tools import dataset
from tests.conftest import photo


def jpg(path, size=(200, 100), seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def flickr(tmp_path):
    images = tmp_path / "flickr_logos_27_dataset_images"
    images.mkdir()
    for i in range(8):
        jpg(images / f"{i}.jpg", seed=i)
    shutil.copy(images / "0.jpg", images / "copy_of_0.jpg")  # duplicate bytes
    (images / "cut.jpg").write_bytes(jpg(tmp_path / "full.jpg", seed=99).read_bytes()[:500])  # truncated
    lines = [
        "0.jpg Adidas 1 10 10 60 50",
        "0.jpg Adidas 1 10 10 60 50",  # repeated line: counts once
        "0.jpg Nike 1 100 20 150 90",  # second box in the same image
        "1.jpg Nike 2 0 0 0 40",  # zero-area
        "2.jpg Puma 6 20 20 80 80",  # subset 6 → test
        "3.jpg Puma 6 500 20 580 80",  # outside the 200x100 image
        "4.jpg Adidas 3 5 5 40 40 extra",  # wrong field count
        "5.jpg Adidas 3 5 5 forty 40",  # not a number
        "missing.jpg Nike 4 1 1 10 10",  # no such image
        "cut.jpg Nike 4 1 1 10 10",  # truncated JPEG
        "copy_of_0.jpg Adidas 5 10 10 60 50",  # same bytes as 0.jpg
        "6.jpg Adidas 5 -2 1 199 101",  # a hair outside: clipped, kept
        "7.jpg Nike 2 10 10 30 30",
    ]
    annotations = tmp_path / "flickr_logos_27_dataset_training_set_annotation.txt"
    annotations.write_text("\n".join(lines) + "\n")
    return annotations, images


def test_flickr27_awkward_cases_are_listed(flickr, tmp_path):
    annotations, images = flickr
    out = tmp_path / "out"
    report = dataset.build(dataset.import_flickr27(annotations, images), out, test_keys=["6"],
                           name="logos", progress=False)
    where = {w.split(":")[-1] if ":" in w else w: why for w, why in report.annotation_problems}
    assert "expected 7 fields" in where["7"] and "not a number" in where["8"]
    excluded = dict(report.excluded_images)
    assert excluded[str(images / "missing.jpg")] == "image file missing"
    assert "truncated" in excluded[str(images / "cut.jpg")]
    assert [d[0] for d in report.duplicates] == [str(images / "copy_of_0.jpg")]
    boxes = {w.rsplit(":", 1)[1]: why for w, why in report.excluded_boxes}
    assert "zero-area" in boxes["4"] and "outside" in boxes["6"]
    assert report.clipped_boxes == 1
    # class order: sorted, written once
    assert (out / "logos.names").read_text() == "Adidas\nNike\nPuma\n"
    # the repeated line counted once; two boxes in 0.jpg with exact YOLO values
    rows = (out / "img" / "0.txt").read_text().splitlines()
    assert rows == ["0 0.175000 0.300000 0.250000 0.400000", "1 0.625000 0.550000 0.250000 0.700000"]
    # 3.jpg's only box lies outside the image: the image is dropped, not kept as background
    assert (out / "test.txt").read_text().split() == [str(out / "img" / "2.jpg")]
    assert "all 1 of its boxes were excluded" in excluded[str(images / "3.jpg")]
    assert "images excluded: 4" in (out / "report.txt").read_text()  # missing, cut, 1 and 3
    data = dataset.read_data_file(out / "logos.data")
    assert data["classes"] == "3" and data["names"] == str(out / "logos.names")


def test_class_order_is_kept_across_imports(flickr, tmp_path):
    annotations, images = flickr
    out = tmp_path / "out"
    (out).mkdir()
    (out / "logos.names").write_text("Puma\nNike\nAdidas\n")  # an earlier import's order
    dataset.build(dataset.import_flickr27(annotations, images), out, name="logos", progress=False)
    assert (out / "img" / "0.txt").read_text().split("\n")[0].startswith("2 ")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.names").write_text("Puma\n")
    with pytest.raises(InputError, match="not in the class list"):
        dataset.build(dataset.import_flickr27(annotations, images), tmp_path / "other", progress=False)


def test_ratio_split_is_seeded_and_disjoint(tmp_path):
    images = tmp_path / "src"
    images.mkdir()
    lines = []
    for i in range(50):
        jpg(images / f"{i}.jpg", seed=i)
        lines.append(f"{i}.jpg A 1 1 1 20 20")
    (tmp_path / "a.txt").write_text("\n".join(lines))
    splits = []
    for run in range(2):
        out = tmp_path / f"out{run}"
        report = dataset.build(dataset.import_flickr27(tmp_path / "a.txt", images), out,
                               ratios=(0.8, 0.1, 0.1), seed=7, progress=False)
        assert report.splits == {"train": 40, "valid": 5, "test": 5}
        sets = [set(p.rsplit("/", 1)[1] for p in (out / f"{s}.txt").read_text().split())
                for s in ("train", "valid", "test")]
        assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        splits.append(sets)
    assert splits[0] == splits[1]


def test_output_inside_an_images_folder_is_refused(flickr, tmp_path):
    annotations, images = flickr
    with pytest.raises(InputError, match="would look for the labels"):
        dataset.build(dataset.import_flickr27(annotations, images), tmp_path / "images" / "out", progress=False)


def test_voc_difficult_and_one_based_boxes(tmp_path):
    root = tmp_path / "VOC2007"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    jpg(root / "JPEGImages" / "000001.jpg", (100, 50))
    jpg(root / "JPEGImages" / "000002.jpg", (100, 50), seed=1)
    (root / "Annotations" / "000001.xml").write_text(
        "<annotation><filename>000001.jpg</filename><size><width>100</width><height>50</height></size>"
        "<object><name>dog</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>50</xmax><ymax>25</ymax></bndbox></object>"
        "<object><name>cat</name><difficult>1</difficult><bndbox><xmin>51</xmin><ymin>26</ymin>"
        "<xmax>100</xmax><ymax>50</ymax></bndbox></object></annotation>")
    (root / "Annotations" / "000002.xml").write_text("<annotation><object>")  # malformed
    (root / "ImageSets" / "Main" / "val.txt").write_text("000001\n")
    imported = dataset.import_voc(root)
    assert imported.items[0].key == "val"
    assert any("unreadable XML" in why for _, why in imported.problems)
    out = tmp_path / "out"
    dataset.build(imported, out, valid_keys=["val"], progress=False)
    assert (out / "img" / "000001.txt").read_text().splitlines() == [
        "1 0.250000 0.250000 0.500000 0.500000", "0 0.750000 0.750000 0.500000 0.500000"]
    assert json.loads((out / "difficult.json").read_text()) == {"000001": [1]}
    assert (out / "valid.txt").read_text().strip().endswith("000001.jpg")


def test_open_img_csv_by_class_name(tmp_path):
    images = tmp_path / "train"
    images.mkdir()
    jpg(images / "abc.jpg", (200, 100))
    jpg(images / "def.jpg", (200, 100), seed=3)
    (tmp_path / "class-descriptions-boxable.csv").write_text("/m/019jd,Boat\n/m/0k4j,Car\n")  # v5: no header
    (tmp_path / "bbox.csv").write_text(
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"
        "abc,xclick,/m/019jd,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n"
        "abc,xclick,/m/0k4j,1,0.0,1.0,0.0,1.0,0,0,0,0,0\n"
        "def,xclick,/m/019jd,1,0.5,nan,0.2,0.6,0,0,0,0,0\n")
    imported = dataset.import_openimages(tmp_path / "bbox.csv", tmp_path / "class-descriptions-boxable.csv",
                                         images, ["Boat"])
    assert [i.image.name for i in imported.items] == ["abc.jpg"]
    assert "not finite" in imported.problems[0][1] and imported.problems[0][0].endswith(":4")
    out = tmp_path / "out"
    dataset.build(imported, out, ratios=(1.0, 0.0, 0.0), progress=False)
    assert (out / "img" / "abc.txt").read_text() == "0 0.300000 0.400000 0.400000 0.400000\n"
    with pytest.raises(InputError, match="did you mean 'Boat'"):
        dataset.import_openimages(tmp_path / "bbox.csv", tmp_path / "class-descriptions-boxable.csv",
                                  images, ["Boats"])


def test_yolo_folder_with_labels_sibling(tmp_path):
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    jpg(root / "images" / "a.jpg")
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n1 0.2 0.2\n")
    (root / "obj.names").write_text("logo\nother\n")
    imported = dataset.import_yolo(root)
    assert len(imported.items[0].boxes) == 1
    problems = [why for _, why in imported.problems]
    assert any("class id 7" in p for p in problems) and any("expected 5 fields" in p for p in problems)


def test_real_photo_is_accepted(tmp_path):
    assert dataset.image_size(photo("dog")) == (768, 576)


def mutate(line: str, rng: random.Random) -> str:
    fields = line.split()
    choice = rng.randrange(9)
    if choice == 0 and fields:
        fields.pop(rng.randrange(len(fields)))
    elif choice == 1:
        fields.append(rng.choice(["x", "1e309", "-0", "nan", "ß", ""]))
    elif choice == 2 and len(fields) > 3:
        fields[rng.randrange(3, len(fields))] = rng.choice(["-5", "1e12", "inf", "0x10", "3.5.1", "NaN"])
    elif choice == 3 and len(fields) > 1:
        fields[1] = rng.choice(["", "Ad idas", "#", "\x00", "Adidas"])
    elif choice == 4:
        return line[: rng.randrange(len(line) + 1)]
    elif choice == 5:
        return "".join(rng.choice("0123456789 .-abc\t") for _ in range(rng.randrange(30)))
    elif choice == 6 and fields:
        fields[0] = rng.choice(["../../etc/passwd", "nope.jpg", "0.jpg", "/", "cut.jpg"])
    elif choice == 7 and len(fields) == 7:
        fields[3], fields[5] = fields[5], fields[3]  # inverted box
    return " ".join(fields)


def test_fuzzed_annotations_never_crash(flickr, tmp_path):
    annotations, images = flickr
    base = annotations.read_text().splitlines()
    rng = random.Random(1234)
    for trial in range(60):
        fuzzed = tmp_path / f"fuzz{trial}.txt"
        fuzzed.write_bytes("\n".join(mutate(l, rng) if rng.random() < 0.6 else l for l in base).encode("utf-8", "surrogatepass"))
        out = tmp_path / f"fuzz_out{trial}"
        try:
            report = dataset.build(dataset.import_flickr27(fuzzed, images), out, progress=False)
        except InputError:
            continue
        listed = (len(report.annotation_problems) + len(report.excluded_images) + len(report.excluded_boxes)
                  + len(report.duplicates))
        assert report.boxes + listed >= 1
        for label_file in (out / "img").glob("*.txt"):
            for row in label_file.read_text().splitlines():
                k, *values = row.split()
                assert all(0.0 <= float(v) <= 1.0 for v in values), row
