"""Importers on hand-made files in each format, with the awkward cases, and a fuzz of
malformed annotations: listed exclusions or a clear InputError, never a traceback."""
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


def voc_xml(stem, objects, size=(100, 50)):
    """A VOC annotation, one element per line (so that file:line points somewhere); objects are
    (name, difficult text or None, xmin, ymin, xmax, ymax)."""
    lines = ["<annotation>", f"<filename>{stem}.jpg</filename>",
             f"<size><width>{size[0]}</width><height>{size[1]}</height></size>"]
    for name, difficult, *bnd in objects:
        lines += ["<object>", f"<name>{name}</name>"]
        if difficult is not None:
            lines.append(f"<difficult>{difficult}</difficult>")
        lines += ["<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>".format(*bnd),
                  "</object>"]
    return "\n".join(lines + ["</annotation>"]) + "\n"


DOG = ("dog", "0", 1, 1, 50, 25)  # VOC's 1-based inclusive pixels: (0, 0)-(50, 25) → 1 .25 .25 .5 .5
CAT = ("cat", "1", 51, 26, 100, 50)  # difficult, → 0 .75 .75 .5 .5
DOG_ROW, CAT_ROW = "1 0.250000 0.250000 0.500000 0.500000", "0 0.750000 0.750000 0.500000 0.500000"


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for seed, (stem, objects) in enumerate({"000001": [DOG, CAT], "000002": [DOG, CAT], "000003": [CAT],
                                            "000004": [DOG, ("dog", None, 60, 5, 90, 45)]}.items()):
        jpg(root / "JPEGImages" / f"{stem}.jpg", (100, 50), seed=seed)
        (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(stem, objects))
    (root / "Annotations" / "000005.xml").write_text("<annotation>\n<object>\n<name>dog</nam>\n")  # malformed
    for name, stems in (("train", "000001 000004"), ("val", "000002"), ("test", "000003")):
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text(stems.replace(" ", "\n") + "\n")
    return root


def test_voc_difficult_boxes_go_where_alexeyab_reads_them(voc, tmp_path):
    imported = dataset.import_voc(voc)
    assert [i.key for i in imported.items] == ["train", "val", "test", "train"]
    bad = [where for where, why in imported.problems if "unreadable XML" in why]
    assert bad == [f"{voc / 'Annotations' / '000005.xml'}:3"]  # the line of the mismatched tag
    out = tmp_path / "out"
    report = dataset.build(imported, out, valid_keys=["val"], test_keys=["test"], name="voc", progress=False)
    img, hard = out / "img", out / "difficult"
    # every label file darknet trains or scores on holds the ordinary boxes only (darknet's voc_label.py)
    assert (img / "000001.txt").read_text().splitlines() == [DOG_ROW]
    assert (img / "000002.txt").read_text().splitlines() == [DOG_ROW]
    assert (img / "000003.txt").read_text() == ""
    assert len((img / "000004.txt").read_text().splitlines()) == 2  # no <difficult> element: an ordinary box
    # validation and test: the difficult boxes where AlexeyAB's detector map reads them
    for split, stem in (("valid", "000002"), ("test", "000003")):
        listed = (out / f"{split}-difficult.txt").read_text().splitlines()
        assert listed == [str(hard / f"{stem}.jpg")]
        assert len(listed) == len((out / f"{split}.txt").read_text().splitlines())
        assert dataset.darknet_label_path(listed[0], "alexeyab") == hard / f"{stem}.txt"
        assert (hard / f"{stem}.txt").read_text().splitlines() == [CAT_ROW]
    assert not (hard / "000001.txt").exists()  # training images get none
    data = dataset.read_data_file(out / "voc.data")
    assert data["difficult"] == str(out / "valid-difficult.txt") and data["valid"] == str(out / "valid.txt")
    assert not (out / "difficult.json").exists()
    assert (report.boxes, report.difficult_boxes, report.difficult_listed) == (4, 3, 2)
    assert "difficult boxes: 3" in report.text() and report.histogram == {"cat": 0, "dog": 4}
    dataset.check_labels(out / "voc.data", "alexeyab")

    from model_tools import evaluate

    images, truths = evaluate.ground_truth(data["valid"], ["cat", "dog"], data["difficult"])
    assert [p.name for p in images] == ["000002.jpg"]
    assert [(t[0], t[1], t[6]) for t in truths] == [("000002", 1, False), ("000002", 0, True)]
    assert truths[1][2:6] == pytest.approx((50, 25, 100, 50))


def test_voc_bad_difficult_flag_stops_the_import_at_its_line(voc, tmp_path, run_cli):
    xml = voc / "Annotations" / "000004.xml"
    xml.write_text(voc_xml("000004", [DOG, ("dog", "yes", 60, 5, 90, 45)]))
    with pytest.raises(InputError, match="not 0 or 1") as caught:
        dataset.import_voc(voc)
    assert caught.value.where == f"{xml}:11"  # the <difficult>yes</difficult> line
    out = tmp_path / "out"
    result = run_cli("model_tools", "import", "voc", voc, out)
    assert result.returncode == 2 and f"{xml}:11" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()  # nothing written


def test_imports_without_difficult_boxes_write_no_difficult_list(flickr, tmp_path):
    annotations, images = flickr
    out = tmp_path / "out"
    dataset.build(dataset.import_flickr27(annotations, images), out, test_keys=["6"], name="logos", progress=False)
    assert "difficult" not in dataset.read_data_file(out / "logos.data")
    assert not list(out.glob("*difficult*"))


def test_difficult_list_must_pair_with_the_validation_list(voc, tmp_path):
    out = tmp_path / "out"
    dataset.build(dataset.import_voc(voc), out, valid_keys=["val"], test_keys=["test"], name="voc", progress=False)
    (out / "valid-difficult.txt").write_text("")  # darknet would read past the end of this list
    with pytest.raises(InputError, match="0 lines for 1 validation images") as caught:
        dataset.check_labels(out / "voc.data", "alexeyab")
    assert caught.value.where == f"{out / 'voc.data'}: difficult="
    dataset.check_labels(out / "voc.data", "pjreddie")  # pjreddie has no difficult= key

    from model_tools import evaluate

    with pytest.raises(InputError, match="0 lines for 1 validation images"):
        evaluate.ground_truth(out / "valid.txt", ["cat", "dog"], out / "valid-difficult.txt")


def test_a_dataset_from_before_the_difficult_lists_is_refused_until_reimported(voc, tmp_path):
    from model_tools import evaluate

    out = tmp_path / "out"
    dataset.build(dataset.import_voc(voc), out, valid_keys=["val"], test_keys=["test"], name="voc", progress=False)
    (out / "difficult.json").write_text('{"000002": [1]}\n')  # what earlier imports wrote
    with pytest.raises(InputError, match="import the VOC dataset again"):
        evaluate.ground_truth(out / "valid.txt", ["cat", "dog"])
    dataset.build(dataset.import_voc(voc), out, valid_keys=["val"], test_keys=["test"], name="voc", progress=False)
    assert not (out / "difficult.json").exists()
    assert len(evaluate.ground_truth(out / "valid.txt", ["cat", "dog"])[1]) == 1


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
