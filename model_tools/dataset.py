"""Datasets → darknet's layout: img/ (each image with its YOLO .txt beside it), .names,
train/valid/test lists, .data.

Labels sit beside their images because that is the one place every darknet fork finds them:
AlexeyAB/hank-ai only map `/JPEGImages/` and COCO folders to `/labels/` (their general
`/images/`→`/labels/` swap is commented out), pjreddie replaces the first "images",
"JPEGImages" and "raw" anywhere in the path. The folder is therefore not called "images", and
`darknet_label_path` + `check_labels` say, before training, where each fork will look.

Importers turn each source format into the same list of items (an image and its boxes in
pixels); `build` validates the images and boxes, splits by image, and writes the layout. Bad
items are excluded and listed in the report with their file:line, never silently dropped, and
nothing in the annotations can make it raise anything but an InputError.

Difficult boxes (Pascal VOC's <difficult>1</difficult>) follow darknet's convention: both
forks' scripts/voc_label.py leave them out of every label file, the training ones included, so
a training image holds only the objects the model is asked to find (one whose every box is
difficult trains as a background image, as with voc_label.py). For the validation and test
images they are written where AlexeyAB's `detector map` reads them (voc_label_difficult.py's
scheme, in a folder of their own): difficult/<stem>.txt, listed line for line with the split by
valid-difficult.txt / test-difficult.txt, and the .data's difficult= names the validation one.
There darknet drops a detection that overlaps only a difficult box instead of counting it as a
false positive, and a missed difficult box costs no recall; `model-tools evaluate` reads the same list.

Class order is deterministic: the order of an existing .names in the output folder, or of
--names, or sorted names; it is written once and reused, so re-imports never scramble labels
(seed 000 took it from a Python set, whose order changes between runs).
"""
from __future__ import annotations

import csv
import hashlib
import os
import random
import shutil
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union
from xml.parsers import expat

from edge_app.atomic import NAME_MAX, check_output_folder, write_text
from edge_app.errors import InputError
from edge_app.readers import read_text
from model_tools.names import read_names

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Darknet forks by how they find labels: hank-ai kept AlexeyAB's rules.
FORKS = ("alexeyab", "pjreddie")
IMAGE_FOLDER = "img"  # not "images": pjreddie would look for the labels in a "labels" folder


@dataclass
class Box:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    difficult: bool = False
    where: str = ""  # file:line of the annotation
    normalised: bool = False  # coordinates in [0, 1] (Open Images, YOLO) until sized


@dataclass
class Item:
    image: Path
    boxes: List[Box] = field(default_factory=list)
    key: Optional[str] = None  # split key: Flickr subset, VOC list name
    where: str = ""


@dataclass
class Imported:
    items: List[Item]
    problems: List[Tuple[str, str]] = field(default_factory=list)  # (where, what)
    labels_seen: List[str] = field(default_factory=list)  # in first-seen order


def _add(items: "OrderedDict[str, Item]", image: Path, box: Optional[Box], key, where: str) -> None:
    item = items.get(str(image))
    if item is None:
        item = items[str(image)] = Item(image, [], key, where)
    if box is not None:
        item.boxes.append(box)


def _inside(folder: Path, name: str) -> Path:
    """`folder/name` for a file name taken from an annotation; ValueError when the name could
    reach outside the dataset (absolute, `..`) or is no usable file name."""
    if not name or "\0" in name or any(ord(ch) < 32 for ch in name):
        raise ValueError(f"image name {name!r} is empty or holds control characters")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"image name {name!r} points outside the image folder {folder}; "
                         "annotations may only name files inside it")
    return folder / relative


def _csv_rows(path: Union[str, Path], what: str):
    """(line number, fields) for each row of a UTF-8 CSV; InputError at the line that is
    not UTF-8 or not CSV (e.g. a field longer than the csv module's limit)."""
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", str(path)) from None
    with f:
        reader = csv.reader(f)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise InputError(f"{what} is not UTF-8 text", f"{path}:{reader.line_num + 1}",
                                 "save the file as UTF-8") from None
            except csv.Error as exc:
                raise InputError(f"{what} is not readable CSV: {exc}", f"{path}:{reader.line_num}",
                                 "use the CSV file as downloaded from Open Images") from None
            yield reader.line_num, row


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} is not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is not finite: {text!r}")
    return value


# --------------------------------------------------------------------------------------------
# importers


def import_flickr27(annotation_file: Union[str, Path], image_dir: Union[str, Path, None] = None) -> Imported:
    """`<image> <class> <subset 1..6> <x1> <y1> <x2> <y2>` per line (pixels). Repeated lines
    count once; the subset becomes the split key."""
    annotation_file = Path(annotation_file)
    image_dir = Path(image_dir) if image_dir else annotation_file.parent / "images"
    lines = read_text(annotation_file, "annotations").splitlines()
    items: "OrderedDict[str, Item]" = OrderedDict()
    problems, seen_lines, labels = [], set(), []
    for number, line in enumerate(lines, 1):
        where = f"{annotation_file}:{number}"
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 7:
            problems.append((where, f"expected 7 fields (file class subset x1 y1 x2 y2), found {len(fields)}"))
            continue
        if tuple(fields) in seen_lines:
            continue  # the dataset repeats some lines verbatim
        seen_lines.add(tuple(fields))
        name, label, subset = fields[0], fields[1], fields[2]
        try:
            image = _inside(image_dir, name)
            x1, y1, x2, y2 = (_number(v, where, k) for v, k in zip(fields[3:], ("x1", "y1", "x2", "y2")))
        except ValueError as exc:
            problems.append((where, str(exc)))
            continue
        if label not in labels:
            labels.append(label)
        _add(items, image, Box(label, x1, y1, x2, y2, where=where), subset, where)
    return Imported(list(items.values()), problems, labels)


def _read_xml(path: Path) -> Tuple[ET.Element, Dict[int, int]]:
    """An XML file's element tree and the line each element starts on (keyed by id(element),
    valid while the tree lives): ElementTree alone keeps no line numbers. expat.ExpatError
    (with .lineno) on a syntax error."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    lines: Dict[int, int] = {}

    def start(tag, attrs):
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.Parse(path.read_bytes(), True)
    return builder.close(), lines


def _voc_difficult(obj: ET.Element, where: str) -> bool:
    """An object's <difficult> flag: 1 or 0, absent or empty = 0. Any other value is an
    InputError: read either way it would silently move boxes in or out of the evaluation."""
    text = (obj.findtext("difficult") or "").strip()
    if text in ("", "0", "1"):
        return text == "1"
    raise InputError(f"<difficult> is {text[:40]!r}, not 0 or 1", where,
                     "VOC marks a difficult object with <difficult>1</difficult>, any other with 0 "
                     "(or no <difficult> element); correct the file and import again")


def import_voc(root: Union[str, Path], lists: Sequence[str] = ("train", "val", "test")) -> Imported:
    """Pascal VOC: Annotations/<id>.xml (1-based pixel boxes) with JPEGImages/<id>.jpg; the
    ImageSets/Main/<list>.txt an id appears in is its split key. Each box keeps its
    <difficult> flag (`build` decides where difficult boxes go). A file that is not XML is
    excluded and listed (file:line); a <difficult> that is neither 0 nor 1 stops the import
    with an InputError at its file:line."""
    root = Path(root)
    key_of: Dict[str, str] = {}
    for name in lists:
        path = root / "ImageSets" / "Main" / f"{name}.txt"
        if path.exists():
            for line in read_text(path, "VOC image set").split():
                key_of.setdefault(line.strip(), name)
    items: "OrderedDict[str, Item]" = OrderedDict()
    problems, labels = [], []
    xml_files = sorted((root / "Annotations").glob("*.xml"))
    if not xml_files:
        raise InputError("no Annotations/*.xml found", str(root), "point at the VOC folder (VOC2007, VOC2012)")
    for xml_path in xml_files:
        where = str(xml_path)
        try:
            tree, line_of = _read_xml(xml_path)
        except expat.ExpatError as exc:
            problems.append((f"{xml_path}:{exc.lineno}", f"unreadable XML: {expat.ErrorString(exc.code)} "
                             f"(column {exc.offset + 1})"))
            continue
        except OSError as exc:
            problems.append((where, f"unreadable file: {exc.strerror or exc}"))
            continue
        filename = (tree.findtext("filename") or f"{xml_path.stem}.jpg").strip()
        try:
            image = _inside(root / "JPEGImages", filename)
        except ValueError as exc:
            problems.append((where, str(exc)))
            continue
        _add(items, image, None, key_of.get(xml_path.stem), where)
        for index, obj in enumerate(tree.findall("object")):
            box_where = f"{xml_path}:{line_of[id(obj)]}"
            hard = obj.find("difficult")
            difficult = _voc_difficult(obj, box_where if hard is None else f"{xml_path}:{line_of[id(hard)]}")
            label = (obj.findtext("name") or "").strip()
            bnd = obj.find("bndbox")
            if not label or bnd is None:
                problems.append((box_where, f"object {index + 1} has no name or no bndbox"))
                continue
            try:
                # VOC is 1-based and inclusive: pixel x covers [x-1, x) in 0-based continuous terms
                x1, y1, x2, y2 = (_number(bnd.findtext(k) or "", box_where, k)
                                  for k in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError as exc:
                problems.append((box_where, f"object {index + 1}: {exc}"))
                continue
            if label not in labels:
                labels.append(label)
            items[str(image)].boxes.append(Box(label, x1 - 1, y1 - 1, x2, y2, difficult, box_where))
    return Imported(list(items.values()), problems, labels)


def import_openimages(bbox_csv: Union[str, Path], descriptions_csv: Union[str, Path],
                      image_dir: Union[str, Path], classes: Sequence[str]) -> Imported:
    """Open Images boxes (normalised XMin/XMax/YMin/YMax, LabelName a MID) for the classes
    named (display names, e.g. "Boat"); images are <ImageID>.jpg in image_dir."""
    mid_to_name: Dict[str, str] = {}
    for _, row in _csv_rows(descriptions_csv, "class descriptions"):
        if len(row) >= 2 and row[0] not in ("LabelName", "MID"):
            mid_to_name[row[0].strip()] = row[1].strip()
    wanted = {mid: name for mid, name in mid_to_name.items() if name in set(classes)}
    missing = set(classes) - set(wanted.values())
    if missing:
        from edge_app.errors import did_you_mean

        name = sorted(missing)[0]
        raise InputError(f"class {name!r} is not in the class descriptions{did_you_mean(name, mid_to_name.values())}",
                         str(descriptions_csv), "use the DisplayName column's spelling")
    items: "OrderedDict[str, Item]" = OrderedDict()
    problems: List[Tuple[str, str]] = []
    image_dir = Path(image_dir)
    need = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
    column: Dict[str, int] = {}
    for number, row in _csv_rows(bbox_csv, "bbox CSV"):
        if not column:
            missing_columns = [k for k in need if k not in row]
            if missing_columns:
                raise InputError(f"bbox CSV lacks columns {missing_columns}", f"{bbox_csv}:{number}",
                                 "use <subset>-annotations-bbox.csv, whose first line names the columns")
            column = {k: row.index(k) for k in need}
            continue
        where = f"{bbox_csv}:{number}"
        if len(row) <= max(column.values()):
            if row:
                problems.append((where, f"row has {len(row)} fields, fewer than the header's columns"))
            continue
        mid = row[column["LabelName"]].strip()
        if mid not in wanted:
            continue
        try:
            image = _inside(image_dir, f"{row[column['ImageID']].strip()}.jpg")
            x1, x2, y1, y2 = (_number(row[column[k]], where, k) for k in ("XMin", "XMax", "YMin", "YMax"))
        except ValueError as exc:
            problems.append((where, str(exc)))
            continue
        _add(items, image, Box(wanted[mid], x1, y1, x2, y2, where=where, normalised=True), None, where)
    if not column:
        raise InputError("bbox CSV is empty", str(bbox_csv), "use <subset>-annotations-bbox.csv")
    return Imported(list(items.values()), problems, [wanted[m] for m in wanted])


def import_yolo(folder: Union[str, Path], names_file: Union[str, Path, None] = None) -> Imported:
    """An existing YOLO-format folder: images with a same-stem .txt beside them or in a
    sibling labels/ folder, and a .names file (class id = line number)."""
    folder = Path(folder)
    names_file = Path(names_file) if names_file else next(iter(sorted(folder.glob("*.names"))), None)
    if names_file is None or not names_file.exists():
        raise InputError("no .names file", str(folder), "pass --names with one class per line")
    names = read_names(names_file)
    items: List[Item] = []
    problems: List[Tuple[str, str]] = []
    for image in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        candidates = [image.with_suffix(".txt")]
        parts = list(image.parts)
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] in ("images", "JPEGImages"):
                candidates.append(Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt"))
                break
        label_file = next((c for c in candidates if c.exists()), None)
        item = Item(image, [], None, str(image))
        lines: List[str] = []
        if label_file is not None:
            try:
                lines = read_text(label_file, "label file").splitlines()
            except InputError as exc:
                problems.append((exc.where or str(label_file), exc.what))
                continue
        if lines:
            for number, line in enumerate(lines, 1):
                where = f"{label_file}:{number}"
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 5:
                    problems.append((where, f"expected 5 fields (class cx cy w h), found {len(fields)}"))
                    continue
                try:
                    cls = int(fields[0])
                    cx, cy, w, h = (_number(v, where, k) for v, k in zip(fields[1:], ("cx", "cy", "w", "h")))
                except ValueError as exc:
                    problems.append((where, str(exc)))
                    continue
                if not 0 <= cls < len(names):
                    problems.append((where, f"class id {cls} is not in {names_file} ({len(names)} names)"))
                    continue
                item.boxes.append(Box(names[cls], cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2,
                                      where=where, normalised=True))
        items.append(item)
    return Imported(items, problems, names)


SOURCE_FORMATS = ("flickr27", "voc", "openimages", "yolo")


def import_source(fmt: str, source: Union[str, Path], *, images: Union[str, Path, None] = None,
                  names_file: Union[str, Path, None] = None, descriptions: Union[str, Path, None] = None,
                  classes: Sequence[str] = ()) -> Imported:
    """The one dispatch from a source format to its importer (the CLI and the pipeline)."""
    if fmt == "flickr27":
        return import_flickr27(source, images or None)
    if fmt == "voc":
        return import_voc(source)
    if fmt == "openimages":
        classes = [c.strip() for c in classes if c.strip()]
        if not (descriptions and images and classes):
            raise InputError("openimages needs --descriptions, --images and --classes", "import openimages",
                             "e.g. --descriptions class-descriptions-boxable.csv --images DIR --classes Boat")
        return import_openimages(source, descriptions, images, classes)
    if fmt == "yolo":
        return import_yolo(source, names_file or None)
    raise InputError(f"unknown dataset format {fmt!r}", "format", f"use one of: {', '.join(SOURCE_FORMATS)}")


# --------------------------------------------------------------------------------------------
# validation


def image_size(path: Path) -> Tuple[int, int]:
    """(width, height) of a complete, readable image; ValueError saying why not."""
    import cv2

    if not path.exists():
        raise ValueError("image file missing")
    data = path.read_bytes()
    if not data:
        raise ValueError("image file is empty")
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise ValueError("JPEG is truncated (no end-of-image marker)")
    if suffix == ".png" and b"IEND" not in data[-16:]:
        raise ValueError("PNG is truncated (no IEND chunk)")
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a readable image")
    return image.shape[1], image.shape[0]


@dataclass
class Report:
    images: int = 0
    boxes: int = 0
    excluded_images: List[Tuple[str, str]] = field(default_factory=list)
    excluded_boxes: List[Tuple[str, str]] = field(default_factory=list)
    annotation_problems: List[Tuple[str, str]] = field(default_factory=list)
    duplicates: List[Tuple[str, str]] = field(default_factory=list)
    histogram: Dict[str, int] = field(default_factory=dict)
    splits: Dict[str, int] = field(default_factory=dict)
    clipped_boxes: int = 0
    difficult_boxes: int = 0  # VOC <difficult>1</difficult>: not in the label files
    difficult_listed: int = 0  # of those, in the valid/test difficult lists

    def text(self) -> str:
        out = [f"images kept: {self.images}, boxes kept: {self.boxes}",
               "splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()),
               "class histogram (boxes):"]
        out += [f"  {label:24s} {count}" for label, count in self.histogram.items()]
        if self.difficult_boxes:
            out.append(f"difficult boxes: {self.difficult_boxes}, not in the label files (darknet's convention); "
                       f"{self.difficult_listed} of them (valid, test) in {DIFFICULT_FOLDER}/, listed by "
                       f"{difficult_list_name('valid')} (the .data's difficult=) and {difficult_list_name('test')}, "
                       "ignored by the evaluation")
        if self.clipped_boxes:
            out.append(f"boxes clipped to the image border (less than 2% outside): {self.clipped_boxes}")
        for title, rows in (("annotation lines not understood", self.annotation_problems),
                            ("images excluded", self.excluded_images),
                            ("boxes excluded", self.excluded_boxes),
                            ("duplicate images (kept the first)", self.duplicates)):
            out.append(f"{title}: {len(rows)}")
            out += [f"  {where}: {why}" for where, why in rows]
        return "\n".join(out) + "\n"


def _check_box(box: Box, width: int, height: int) -> Tuple[Optional[Tuple[float, float, float, float]], str, bool]:
    """(clean pixel box or None, why excluded, clipped?)."""
    x1, y1, x2, y2 = box.x1, box.y1, box.x2, box.y2
    if box.normalised:
        x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
    if x2 <= x1 or y2 <= y1:
        return None, f"zero-area or inverted box ({box.x1:g},{box.y1:g})-({box.x2:g},{box.y2:g})", False
    tol_x, tol_y = 0.02 * width, 0.02 * height
    if x1 < -tol_x or y1 < -tol_y or x2 > width + tol_x or y2 > height + tol_y:
        return None, (f"box ({x1:g},{y1:g})-({x2:g},{y2:g}) lies outside the {width}x{height} image"), False
    clipped = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
    if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
        return None, "box is less than a pixel wide or high", False
    return clipped, "", clipped != (x1, y1, x2, y2)


def class_order(labels_seen: Sequence[str], out_dir: Path, names: Optional[Sequence[str]]) -> List[str]:
    existing = sorted(out_dir.glob("*.names")) if out_dir.exists() else []
    if existing:
        order = read_names(existing[0])
        source = str(existing[0])
    elif names:
        order, source = list(names), "--names"
    else:
        return sorted(set(labels_seen))
    unknown = [label for label in labels_seen if label not in order]
    if unknown:
        raise InputError(f"classes {unknown[:5]} are not in the class list", source,
                         "add them to the .names (at the end, to keep existing ids), or use a new output folder")
    return order


def split_items(items: List[Item], ratios: Optional[Tuple[float, float, float]], seed: int,
                test_keys: Sequence[str] = (), valid_keys: Sequence[str] = ()) -> Dict[str, List[Item]]:
    """Each image in exactly one split: by key when keys are given, else shuffled by ratio."""
    if test_keys or valid_keys:
        splits: Dict[str, List[Item]] = {"train": [], "valid": [], "test": []}
        for item in items:
            name = "test" if item.key in test_keys else "valid" if item.key in valid_keys else "train"
            splits[name].append(item)
        return splits
    train_r, valid_r, _ = ratios or (0.8, 0.1, 0.1)
    order = sorted(items, key=lambda i: str(i.image))
    random.Random(seed).shuffle(order)
    n_train = int(round(len(order) * train_r))
    n_valid = int(round(len(order) * valid_r))
    return {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
            "test": order[n_train + n_valid:]}


def _stored_suffix(image: Path) -> str:
    """The suffix an image is stored under: one every fork maps to .txt (pjreddie knows
    .jpg .png .JPG .JPEG only, so .jpeg becomes .jpg and other formats are re-encoded as .png)."""
    suffix = image.suffix.lower()
    return ".jpg" if suffix in (".jpg", ".jpeg") else ".png"


def _stem_is_safe(out_dir: Path, stem: str) -> bool:
    probe = out_dir / IMAGE_FOLDER / f"{stem}.jpg"
    return all(darknet_label_path(probe, fork) == beside_label_path(probe) for fork in FORKS)


def _place(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    if src.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        import cv2  # e.g. .bmp: pjreddie would not find its label; PNG keeps every pixel

        image = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
        if image is None or not cv2.imwrite(str(dst), image):
            raise InputError("cannot re-encode the image as PNG", str(src))
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build(imported: Imported, out_dir: Union[str, Path], *, names: Optional[Sequence[str]] = None,
          ratios: Optional[Tuple[float, float, float]] = None, seed: int = 0,
          test_keys: Sequence[str] = (), valid_keys: Sequence[str] = (), name: str = "dataset",
          progress: bool = True) -> Report:
    """Validate, split and write the darknet layout into out_dir; returns the report."""
    from model_tools.progress import bar

    out_dir = Path(out_dir).resolve()
    probe = out_dir / IMAGE_FOLDER / "probe.jpg"
    for fork in FORKS:
        if darknet_label_path(probe, fork) != beside_label_path(probe):
            raise InputError(f"{fork} darknet would look for the labels of images in this folder elsewhere "
                             f"({darknet_label_path(probe, fork)})", str(out_dir),
                             "darknet rewrites 'images', 'JPEGImages' and 'raw' anywhere in an image's path; "
                             "choose an output folder whose path contains none of them")
    check_output_folder(out_dir)
    if not name or "/" in name or name.startswith(".") or len(name.encode()) > NAME_MAX - 16:
        raise InputError(f"dataset name {name!r} is not a plain file name", "--name",
                         "use letters, digits, '-' or '_', e.g. --name logos")
    report = Report(annotation_problems=list(imported.problems))
    labels_seen = [label for label in imported.labels_seen if _label_problem(label) is None]
    classes = class_order(labels_seen, out_dir, names)
    kept: List[Item] = []
    sizes: Dict[str, Tuple[int, int]] = {}
    digests: Dict[str, str] = {}
    stems: Dict[str, str] = {}
    for item in bar(imported.items, progress, desc="checking images", unit="img"):
        try:
            width, height = image_size(item.image)
            digest = hashlib.sha1(item.image.read_bytes()).hexdigest()
        except (ValueError, OSError) as exc:
            report.excluded_images.append((str(item.image), str(exc)))
            continue
        if digest in digests:
            report.duplicates.append((str(item.image), f"same bytes as {digests[digest]}"))
            continue
        digests[digest] = str(item.image)
        stem = item.image.stem
        if not _stem_is_safe(out_dir, stem):  # a name darknet would rewrite, e.g. "raw_1"
            stem = f"img_{digest[:8]}"
        elif len(stem.encode("utf-8", "surrogateescape")) > STEM_MAX:
            # keep the image under a shorter name: the label and temporary files add to it
            stem = stem.encode("utf-8", "surrogateescape")[:STEM_MAX - 9].decode("utf-8", "ignore")
            stem = f"{stem}_{digest[:8]}"
        if stem in stems:  # two folders with the same file name: keep both, renamed
            stem = f"{stem}_{digest[:8]}"
        stems[stem] = str(item.image)
        boxes = []
        for box in item.boxes:
            clean, why, clipped = _check_box(box, width, height)
            why = _label_problem(box.label) or why
            if clean is None or why:
                report.excluded_boxes.append((box.where or str(item.image), why))
                continue
            report.clipped_boxes += clipped
            boxes.append(Box(box.label, *clean, difficult=box.difficult, where=box.where))
        if item.boxes and not boxes:
            # Every box of this image was excluded. Kept, it would train as a background image
            # and teach the model that the (mis-annotated) object is not there: dropped instead.
            report.excluded_images.append((str(item.image), f"all {len(item.boxes)} of its boxes were "
                                           "excluded (see 'boxes excluded'); not kept as a background image"))
            continue
        kept.append(Item(item.image, boxes, item.key, stem))
        sizes[stem] = (width, height)
    if not kept:
        reasons = (report.excluded_images + report.annotation_problems + report.duplicates)[:3]
        raise InputError(
            f"no usable image: {len(imported.items)} images named, {len(report.excluded_images)} "
            f"excluded, {len(report.annotation_problems)} annotation lines not understood"
            + "".join(f"\n    {where}: {why}" for where, why in reasons),
            str(out_dir), "check the annotation file and the image folder (--images); nothing was written")

    created = not out_dir.exists()
    try:
        return _write_layout(kept, sizes, classes, report, out_dir, ratios=ratios, seed=seed,
                             test_keys=test_keys, valid_keys=valid_keys, name=name, progress=progress)
    except BaseException as exc:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)  # a failed import leaves nothing behind
        if isinstance(exc, OSError):
            raise InputError(f"cannot write the dataset: {exc.strerror or exc}", str(exc.filename or out_dir),
                             "free space or choose another output folder") from None
        raise


STEM_MAX = 200  # bytes of an image's stem in the output; longer ones are shortened


def _label_problem(label: str) -> Optional[str]:
    if not label.strip() or any(ord(ch) < 32 for ch in label) or len(label.encode()) > 200:
        return f"class name {label[:40]!r} is empty, too long or holds control characters"
    return None


def _write_layout(kept: List[Item], sizes: Dict[str, Tuple[int, int]], classes: List[str], report: Report,
                  out_dir: Path, *, ratios, seed, test_keys, valid_keys, name, progress) -> Report:
    from model_tools.progress import bar

    splits = split_items(kept, ratios, seed, test_keys, valid_keys)
    images_dir = out_dir / IMAGE_FOLDER
    images_dir.mkdir(parents=True, exist_ok=True)
    with_difficult = any(b.difficult for item in kept for b in item.boxes)
    if with_difficult:
        (out_dir / DIFFICULT_FOLDER).mkdir(exist_ok=True)
    histogram: Counter = Counter()
    for split, split_items_ in splits.items():
        lines, difficult_lines = [], []
        for item in bar(split_items_, progress, desc=f"writing {split}", unit="img"):
            stem = item.where
            width, height = sizes[stem]
            target = images_dir / f"{stem}{_stored_suffix(item.image)}"
            _place(item.image, target)
            rows, difficult_rows = [], []
            for b in item.boxes:
                cx, cy = (b.x1 + b.x2) / 2 / width, (b.y1 + b.y2) / 2 / height
                bw, bh = (b.x2 - b.x1) / width, (b.y2 - b.y1) / height
                row = f"{classes.index(b.label)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n"
                (difficult_rows if b.difficult else rows).append(row)
                if not b.difficult:
                    histogram[b.label] += 1
            write_text(beside_label_path(target), "".join(rows))
            lines.append(f"{target}\n")
            report.boxes += len(rows)
            report.difficult_boxes += len(difficult_rows)
            if with_difficult and split in DIFFICULT_SPLITS:
                # one line per image, an empty file when it has none: darknet pairs the lists by
                # line, and reports (and appends to bad.list) every label file it cannot open
                stand_in = difficult_image_path(out_dir, target)
                write_text(darknet_label_path(stand_in, "alexeyab"), "".join(difficult_rows))
                difficult_lines.append(f"{stand_in}\n")
                report.difficult_listed += len(difficult_rows)
        report.splits[split] = len(lines)
        write_text(out_dir / f"{split}.txt", "".join(lines))
        if with_difficult and split in DIFFICULT_SPLITS:
            write_text(out_dir / difficult_list_name(split), "".join(difficult_lines))
    report.images = sum(report.splits.values())
    report.histogram = {label: histogram.get(label, 0) for label in classes}
    names_path = out_dir / f"{name}.names"
    if not names_path.exists():
        write_text(names_path, "".join(f"{c}\n" for c in classes))
    backup = out_dir / "backup"
    backup.mkdir(exist_ok=True)
    difficult_line = f"difficult={out_dir / difficult_list_name('valid')}\n" if with_difficult else ""
    write_text(out_dir / f"{name}.data", f"classes={len(classes)}\ntrain={out_dir / 'train.txt'}\n"
               f"valid={out_dir / 'valid.txt'}\n{difficult_line}test={out_dir / 'test.txt'}\n"
               f"names={names_path}\nbackup={backup}\neval=voc\n")
    legacy = out_dir / LEGACY_DIFFICULT_JSON
    if legacy.exists():  # an earlier import's record, now wrong: the labels no longer hold those boxes
        legacy.unlink()
    write_text(out_dir / "report.txt", report.text())
    return report


# Difficult boxes (VOC's <difficult>1</difficult>), where AlexeyAB's `detector map` reads them:
# the .data's difficult= names a list parallel to valid= (line i ↔ image i); darknet turns each
# line into a label path as it does an image's, and a detection of that class overlapping one of
# those boxes (IoU > the threshold) is dropped instead of counted. The listed images need not
# exist: only their label files are read. pjreddie has no such key.
DIFFICULT_FOLDER = "difficult"
DIFFICULT_SPLITS = ("valid", "test")  # the training labels leave them out (darknet's voc_label.py)
LEGACY_DIFFICULT_JSON = "difficult.json"  # written by imports before the difficult lists


def difficult_list_name(split: str) -> str:
    return f"{split}-difficult.txt"


def difficult_image_path(out_dir: Path, image: Path) -> Path:
    """The line of the difficult list that stands for `image`: its name in the difficult folder,
    so that darknet's label path for it is difficult/<stem>.txt."""
    return out_dir / DIFFICULT_FOLDER / image.name


def read_data_file(path: Union[str, Path]) -> Dict[str, str]:
    """darknet .data: key=value lines."""
    out: Dict[str, str] = {}
    lines = read_text(path, ".data file").splitlines()
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise InputError(f"expected key=value, found {line!r}", f"{path}:{number}")
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def read_labels(label_file: Path, width: int, height: int) -> List[Tuple[int, float, float, float, float]]:
    """(class, x1, y1, x2, y2) in pixels from a YOLO .txt."""
    rows: List[Tuple[int, float, float, float, float]] = []
    if not label_file.exists():
        return rows
    for number, line in enumerate(read_text(label_file, "label file").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:  # a ground-truth line skipped silently would change every score computed from it
            if len(fields) != 5:
                raise ValueError(f"expected 5 fields (class cx cy w h), found {len(fields)}")
            k = int(fields[0])
            cx, cy, w, h = (_number(v, "", name) for v, name in zip(fields[1:], ("cx", "cy", "w", "h")))
        except ValueError as exc:
            raise InputError(f"label line not understood: {exc}", f"{label_file}:{number}",
                             "fix or remove the line (YOLO format: class cx cy w h, normalised)") from None
        rows.append((k, (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                     (cy + h / 2) * height))
    return rows


def beside_label_path(image_path: Union[str, Path]) -> Path:
    """The label file next to an image: same folder, same stem, .txt."""
    return Path(image_path).with_suffix(".txt")


def darknet_label_path(image_path: Union[str, Path], fork: str) -> Path:
    """The label file a darknet fork opens for an image, by its own string rewriting.

    pjreddie (Debian's darknet): the first "images", then "JPEGImages", then "raw" anywhere in
    the path → "labels"; then the first ".jpg", ".png", ".JPG", ".JPEG" → ".txt".
    AlexeyAB and hank-ai: only COCO's /images/{train,val}{2014,2017}/ and /JPEGImages/ → labels
    (the first occurrence of each), then the extension at the end → .txt.
    """
    text = str(image_path)
    if fork == "pjreddie":
        for old, new in (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"),
                         (".jpg", ".txt"), (".png", ".txt"), (".JPG", ".txt"), (".JPEG", ".txt")):
            text = text.replace(old, new, 1)
        return Path(text)
    if fork not in FORKS:
        raise ValueError(f"unknown darknet fork {fork!r}")
    for year in ("train2017", "val2017", "train2014", "val2014"):
        text = text.replace(f"/images/{year}/", f"/labels/{year}/", 1)
    text = text.replace("/JPEGImages/", "/labels/", 1)
    text = text.strip()
    for ext in (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM",
                ".tiff", ".TIFF"):
        if text.endswith(ext):
            text = text[:-len(ext)] + ".txt"
    return Path(text)


def label_path(image_path: Union[str, Path]) -> Path:
    """The labels of an image as darknet reads them: beside it (every fork), else where a fork
    rewrites the path to (datasets laid out for one fork, e.g. VOC's JPEGImages → labels)."""
    beside = beside_label_path(image_path)
    if beside.suffix == ".txt" and beside.exists():  # the usual layout: no other path to build
        return beside
    forks = (darknet_label_path(image_path, f) for f in FORKS)
    return next((c for c in forks if c.suffix == ".txt" and c.exists()), beside)


@dataclass
class LabelCheck:
    images: int
    boxes: int
    empty: int  # images whose label file has no box (negatives)


def check_labels(data_file: Union[str, Path], fork: Optional[str] = None,
                 base: Union[str, Path, None] = None, lists: Sequence[str] = ("train", "valid")) -> LabelCheck:
    """Before training: will darknet (`fork`, or every fork when None) find a label file for
    every image in the .data's train and valid lists, and are there any objects to learn?

    Relative paths (in the .data and in the lists) are resolved from `base`, the folder
    darknet runs in (default: the current one). Raises InputError naming the first images
    whose labels darknet would not open and where it would look; and when the training list
    holds no object at all — darknet would train on nothing and still exit 0.
    """
    base = Path(base) if base is not None else Path.cwd()
    data_file = Path(data_file)
    data = read_data_file(data_file)
    forks = [fork] if fork else list(FORKS)
    for fork_name in forks:
        if fork_name not in FORKS:
            raise InputError(f"unknown darknet fork {fork_name!r}", "--fork", f"use one of {', '.join(FORKS)}")
    result = LabelCheck(0, 0, 0)
    train_boxes = 0
    for key in lists:
        if key not in data:
            if key == "train":
                raise InputError("the .data file has no train= line", str(data_file), "re-run model-tools import")
            continue
        list_path = _resolve(data[key], base)
        text = read_text(list_path, f"the {key} list (named by {data_file}: {key}=)",
                         "paths in a .data are resolved from the folder darknet runs in")
        images = [line.strip() for line in text.splitlines() if line.strip()]
        if not images:
            raise InputError(f"the {key} list {list_path} is empty", f"{data_file}: {key}=",
                             "import a dataset with images in that split")
        missing: List[str] = []
        for number, image in enumerate(images, 1):
            image_path = _resolve(image, base)
            if not image_path.exists():
                missing.append(f"{list_path}:{number}: image {image_path} does not exist")
                continue
            for fork_name in forks:
                label = _resolve(str(darknet_label_path(image, fork_name)), base)
                if label.suffix != ".txt" or label == image_path or not label.is_file():
                    missing.append(f"{list_path}:{number}: {fork_name} darknet opens {label} for {image_path}: "
                                   + ("not a .txt path" if label.suffix != ".txt" or label == image_path
                                      else "no such file"))
                    break
            else:
                boxes = _count_boxes(label)
                result.images += 1
                result.boxes += boxes
                result.empty += boxes == 0
                if key == "train":
                    train_boxes += boxes
        if missing:
            shown = "\n  ".join(missing[:5])
            more = f"\n  … and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise InputError(f"darknet would not find the labels of {len(missing)} of {len(images)} images in the "
                             f"{key} list (it would train or score them as having no objects):\n  {shown}{more}",
                             f"{data_file}: {key}=",
                             "put each image's .txt beside it (model-tools import does), and keep 'images', "
                             "'JPEGImages' and 'raw' out of the image paths")
    if train_boxes == 0:
        raise InputError("the training list holds no object: every label file is empty", f"{data_file}: train=",
                         "check the import report (boxes kept) and the class names")
    if "valid" in lists and data.get("valid") and data.get("difficult") and "alexeyab" in forks:
        valid = _resolve(data["valid"], base)
        count = len(list_paths(valid, f"the valid list (named by {data_file}: valid=)"))
        read_difficult_list(_resolve(data["difficult"], base), count, f"{data_file}: difficult=")
    return result


def list_paths(path: Union[str, Path], what: str = "image list") -> List[Path]:
    """The paths of a darknet list file: one per non-blank line, as darknet reads it (a path may
    hold spaces)."""
    return [Path(line.strip()) for line in read_text(path, what).splitlines() if line.strip()]


def read_difficult_list(path: Union[str, Path], images: int, where: str) -> List[Path]:
    """The lines of a difficult= list (see DIFFICULT_FOLDER), which must pair one to one with
    the `images` lines of the validation list: AlexeyAB reads line i for image i without a
    bound check, so a shorter list reads past its end, and any other count means the two lists
    were not made together. InputError otherwise."""
    listed = list_paths(path, "difficult list (difficult= in the .data)")
    if len(listed) != images:
        raise InputError(f"the difficult list {path} has {len(listed)} lines for {images} validation images",
                         where, "darknet pairs the two lists line by line: give one line per validation "
                         "image (model-tools import writes both), or drop the difficult list")
    return listed


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path.strip())
    return candidate if candidate.is_absolute() else base / candidate


def _count_boxes(label_file: Path) -> int:
    try:
        return sum(1 for line in label_file.read_text(errors="replace").splitlines() if len(line.split()) == 5)
    except OSError:
        return 0
