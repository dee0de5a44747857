"""Evaluation of checkpoints: the detection pass (through the exact path the Pi runs — export →
OpenVINO → edge decode — or darknet's own arithmetic in reference mode) and its caching; the
metrics themselves are model_tools.metrics, the choice between checkpoints model_tools.selection.
"""
from __future__ import annotations

import csv
import json
import time
from collections import deque
from contextlib import closing
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.errors import InputError
from model_tools.checkpoints import checkpoint_iteration, list_checkpoints  # noqa: F401
from model_tools.image_reader import PREPARED_BUDGET, ImageReader, read_and_prepare
from model_tools.metrics import (ClassResult, Detection, Detections, Metrics, Truth,  # noqa: F401
                                 average_precision, compute, iou)

# --------------------------------------------------------------------------------------------
# evaluating checkpoints through the edge path


def ground_truth(valid_list: Union[str, Path], names: Sequence[str],
                 difficult_list: Union[str, Path, None] = None) -> Tuple[List[Path], List[Truth]]:
    """Images of a darknet list and their truths, read as AlexeyAB's `detector map` reads them:
    each image's label file (see dataset.label_path), and with `difficult_list` (the .data's
    difficult=, which `model-tools import` writes for VOC) the label file of line i of that list
    as image i's difficult truths. Image sizes come from the headers."""
    paths = validation_images(valid_list)
    return paths, _truths(paths, Path(valid_list), names, difficult_list)


def validation_images(valid_list: Union[str, Path]) -> List[Path]:
    """The images of a darknet list; InputError for an empty list."""
    from model_tools.dataset import list_paths

    paths = list_paths(valid_list)
    if not paths:
        raise InputError("the validation list is empty", str(valid_list), "import a dataset with a valid split")
    return paths


def _truths(paths: List[Path], valid_list: Path, names: Sequence[str],
            difficult_list: Union[str, Path, None]) -> List[Truth]:
    from model_tools.dataset import LEGACY_DIFFICULT_JSON, label_path, read_difficult_list, read_labels
    from model_tools.imagesize import image_size

    difficult_paths: List[Optional[Path]] = [None] * len(paths)
    if difficult_list:
        difficult_paths = list(read_difficult_list(difficult_list, len(paths), str(difficult_list)))
    else:
        _refuse_legacy_difficult(valid_list.parent / LEGACY_DIFFICULT_JSON)
    truths: List[Truth] = []
    for path, hard_path in zip(paths, difficult_paths):
        try:
            width, height = image_size(path)
        except ValueError as exc:
            raise InputError(f"validation image {path}: {exc}", str(valid_list)) from None
        sources = [(label_path(path), False)] + ([(label_path(hard_path), True)] if hard_path else [])
        for source, hard in sources:
            for k, x1, y1, x2, y2 in read_labels(source, width, height):
                if k >= len(names):
                    raise InputError(f"class id {k} is beyond the {len(names)} names", str(source))
                truths.append((path.stem, k, x1, y1, x2, y2, hard))
    return truths


def _refuse_legacy_difficult(record: Path) -> None:
    """Imports before the difficult lists kept VOC's difficult boxes in the label files and
    their indices in difficult.json: darknet counts those boxes as ordinary truths, so no figure
    computed on such a dataset can match its own. Say so rather than score it either way."""
    from edge_app.readers import load_json

    if record.exists() and load_json(record, record.name):
        raise InputError("this dataset was imported before difficult boxes moved out of the label files: "
                         "its labels hold VOC's difficult objects, which darknet would score as ordinary ones",
                         str(record), "import the VOC dataset again (model-tools import voc ...): the new "
                         "layout writes them where darknet's difficult= reads them")


READERS, READ_AHEAD = 2, 8  # threads reading validation images, images read ahead of inference
# Outputs are decoded in batches of this many bytes, not one by one between submissions: each
# return to a few requests in flight left the runtime's threads spinning idle, costing ~20% more
# CPU for the same work (200 images, 2 cores: 165-200 → 140-170 ms for inference and decode);
# and a batch decodes in one numpy pass (decode_batch), not image by image (200 outputs of a
# trained slim model: 34 → 13 ms; of random weights, 94k detections: 450 → 260 ms). 8 MiB is
# ~100 outputs of a 416 VOC model, whose candidates at threshold 0.005 take ~10x that.
DECODE_BACKLOG = 8 * 2 ** 20
# The outputs left when inference ends are decoded in two halves on two threads (numpy's array
# work and the compiled NMS release Python's lock), if there are at least twice this many
DECODE_SPLIT_MIN = 4

# How a frame becomes the network input: preprocess.prepare's arguments after the frame, which
# the exported metadata holds (Detector.preprocessing) and the export settings decide beforehand
Preprocessing = Tuple[int, int, str, str]  # width, height, resize mode, interpolation


class PreparedImages:
    """The validation images as network inputs (read and prepared exactly as the Pi prepares a
    frame, edge_app.preprocess), each made once per preprocessing and reused by every
    checkpoint that shares it, up to `budget` bytes. Reading can start before the model exists
    (start()): the images are read while the checkpoint is exported and compiled."""

    def __init__(self, images: Sequence[Path], budget: int = PREPARED_BUDGET, reader: Optional[ImageReader] = None):
        """reader: a child process already preparing the first images (image_reader), used if
        its preprocessing is the first one asked for."""
        self.images = list(images)
        self.budget = budget
        self._key: Optional[Preprocessing] = None
        self._pool = None
        self._kept: List = []  # futures of the first images' inputs, for self._key
        self._reader, self._offered = None, reader

    def start(self, key: Preprocessing) -> None:
        """Begin reading and preparing the images the budget keeps, for this preprocessing:
        those the child process was offered for it (image_reader) come from there, the rest
        from READERS threads (OpenCV's JPEG decoding and the resize release the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        if key == self._key:
            return
        offered, self._offered = self._offered, None  # the child serves the first preprocessing only
        self.close()
        width, height = key[:2]
        room = self.budget // (width * height * 3)
        self._key, self._pool = key, ThreadPoolExecutor(READERS, thread_name_prefix="read")
        self._kept = []
        if offered is not None and offered.key == key and offered.images == self.images[:len(offered.images)]:
            self._reader = offered
            self._kept = [_Reported(offered, i) for i in range(min(room, len(offered.images)))]
        elif offered is not None:
            offered.close()
        self._kept += [self._pool.submit(read_and_prepare, path, key) for path in self.images[len(self._kept):room]]

    def close(self) -> None:
        """Stop reading (what is queued is dropped) and forget the kept inputs."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for reader in (self._reader, self._offered):
            if reader is not None:
                reader.close()
        self._key, self._pool, self._kept, self._reader, self._offered = None, None, [], None, None

    def inputs(self, key: Preprocessing) -> Iterator[Tuple[np.ndarray, int, int]]:
        """(tensor, frame width, frame height) of every image in order, for this preprocessing:
        the kept ones, then the others read READ_AHEAD ahead of the caller."""
        self.start(key)
        pool = self._pool
        for future in self._kept:
            yield future.result()
        rest = iter(self.images[len(self._kept):])
        ahead: Deque = deque(pool.submit(read_and_prepare, path, key) for path in islice(rest, READ_AHEAD))
        try:
            while ahead:
                item = ahead.popleft().result()
                following = next(rest, None)
                if following is not None:
                    ahead.append(pool.submit(read_and_prepare, following, key))
                yield item
        finally:
            for future in ahead:  # stopped early (an error, a closed generator)
                future.cancel()


class _Reported:
    """An image the child process prepares, as the future of a thread's would be."""

    def __init__(self, reader: ImageReader, index: int):
        self.reader, self.index = reader, index

    def result(self):
        return self.reader.result(self.index)


def open_detector(model_dir: Union[str, Path], threshold: float = 0.005, nms: float = 0.45, core=None):
    """edge_app's Detector on the exported model, compiled for this machine's CPU as evaluation
    runs it (the throughput hint: a stream per core). core: an OpenVINO Core to compile with,
    shared between checkpoints (a new one loads the CPU plugin again, ~25 ms)."""
    from edge_app import metadata
    from edge_app.detector import Detector
    from edge_app.runtime import OpenVINOAdapter

    info = metadata.load(model_dir)  # checks the IR's sha256: once
    # no page-out after compiling: this process compiles the next checkpoint right after
    adapter = OpenVINOAdapter(info, "CPU", core=core, hint="throughput", page_out_after_compile=False)
    return Detector(info, "CPU", threshold, nms, adapter=adapter)


def detect_all(model_dir: Union[str, Path], images: Union[Sequence[Path], PreparedImages],
               threshold: float = 0.005, nms: float = 0.45, progress: bool = True,
               desc: str = "evaluating", core=None) -> Tuple[Detections, float]:
    """Run the exported model on every image with edge_app's Detector (as the Pi does):
    open_detector, then detect_with."""
    return detect_with(open_detector(model_dir, threshold, nms, core), images, progress, desc)


def detect_with(detector, images: Union[Sequence[Path], PreparedImages], progress: bool = True,
                desc: str = "evaluating") -> Tuple[Detections, float]:
    """Every image through an open_detector Detector: its detections and the seconds taken. The
    images are independent: a stream per core, each with requests in flight, images read ahead
    (PreparedImages), and the outputs decoded in batches (DECODE_BACKLOG).
    images: paths, or PreparedImages shared between checkpoints."""
    from model_tools.progress import bar

    if not isinstance(images, PreparedImages):
        with closing(PreparedImages(images, budget=0)) as own:
            return detect_with(detector, own, progress, desc)
    prepared = images
    image_of = {}  # an image id (the file's stem) → its place in stems: two files of one stem are one image
    image = np.array([image_of.setdefault(path.stem, len(image_of)) for path in prepared.images], np.int64)
    stems = list(image_of)
    adapter = detector.adapter
    found: List = []  # decoded batches (Found), their frames numbered by image
    outputs: List[Tuple[Tuple[int, int, int], np.ndarray]] = []  # in image order, not yet decoded

    def decode(part: List):  # -> decode.Found, its frames numbered by image
        batch = detector.decode_batch(np.stack([output for _, output in part]),
                                      [(width, height) for (_, width, height), _ in part])
        first = part[0][0][0]  # outputs hold consecutive images
        return batch._replace(frame=image[first + batch.frame])

    def decode_outputs(last: bool = False) -> None:
        half = len(outputs) // 2 if last and len(outputs) >= 2 * DECODE_SPLIT_MIN else 0
        if half:  # inference is over: its second core decodes the first half meanwhile
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
                head = pool.submit(decode, outputs[:half])
                tail = decode(outputs[half:])
                found.extend([head.result(), tail])
        elif outputs:
            found.append(decode(outputs))
        outputs.clear()

    started = time.perf_counter()
    inputs = bar(prepared.inputs(detector.preprocessing), progress, desc=desc, unit="img", total=len(stems),
                 leave=False)
    # a second request queued behind each running one: no stream idles while this thread
    # collects an output and starts the next
    requests = 2 * adapter.optimal_requests()
    for userdata, output in adapter.infer_all(((tensor, (i, width, height))
                                               for i, (tensor, width, height) in enumerate(inputs)), requests):
        outputs.append((userdata, output))
        if len(outputs) * output.nbytes > DECODE_BACKLOG:
            decode_outputs()
    decode_outputs(last=True)
    seconds = time.perf_counter() - started
    if not found:
        return Detections(stems, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, 4))), seconds
    return Detections(stems, *(np.concatenate(column) for column in zip(*found))), seconds


def _compile_beside(model_dir: Path, core, work):
    """open_detector(model_dir), compiled on a worker thread while this one calls `work`
    (OpenVINO releases the GIL while it compiles; the truths of 200 images take ~20 ms). An
    error on either side is raised once both have ended."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="compile") as pool:
        compiling = pool.submit(open_detector, model_dir, core=core)
        work()
        return compiling.result()


def _new_core():
    from edge_app.runtime import openvino_api

    return openvino_api()[0]()


def darknet_order(candidates, kept: np.ndarray, classes: int) -> np.ndarray:
    """Indices of the kept (box, class) candidates in the order darknet's `detector map` walks
    them: boxes as do_nms_sort leaves them — one stable sort per class by that class's prob,
    the last class's sort deciding — then each box's classes in id order."""
    if len(kept) == 0:
        return kept
    # the candidates of one cell (anchor, row, col) carry the very same box floats
    cell_keys = [tuple(b) for b in candidates.boxes.tolist()]
    cells: Dict[tuple, int] = {}
    cell_of = np.array([cells.setdefault(key, len(cells)) for key in cell_keys])
    probs = np.zeros((len(cells), classes))
    probs[cell_of, candidates.class_id] = candidates.score  # before NMS, as each sort sees them
    # lexsort: last key primary; ties keep the candidates' (darknet's box index) order
    box_order = np.lexsort([np.arange(len(cells))] + [-probs[:, k] for k in range(classes)])
    rank = np.empty(len(cells), int)
    rank[box_order] = np.arange(len(cells))
    return kept[np.lexsort((candidates.class_id[kept], rank[cell_of[kept]]))]


# How the darknet being reproduced reads an image file (load_image in its image.c), each then
# divided by 255:
# - "stb": built without OpenCV (AlexeyAB's Makefile default, our AWS bootstrap): stb_image's
#   stbi_load(path, 3) — grey replicated, alpha dropped, 16-bit PNG cut to 8 bits, EXIF
#   orientation ignored. libstb 0.8 carries the same stb_image (v2.30) as AlexeyAB's 3rdparty/stb.
# - "opencv": built with OpenCV (Debian's darknet, hank-ai, AlexeyAB with OPENCV=1):
#   cv::imread(path, IMREAD_COLOR) — libjpeg-turbo, EXIF orientation applied.
# PNG pixels are the same either way; JPEG pixels differ by a few levels (tens at saturated
# colour edges of 4:2:2 files), enough to move a class's AP against `detector map` by 1.5-1.7 points.
DECODERS = ("stb", "opencv")


def read_as_darknet(path: Path, decoder: str = "stb") -> np.ndarray:
    """An image file as the darknet build with that decoder holds it, as a BGR u8 (h, w, 3) array
    (BGR: the channel order of every frame in this code; the model swaps to RGB itself)."""
    if decoder == "stb":
        try:
            import libstb
        except ImportError:
            raise InputError("reading images as darknet without OpenCV needs libstb, which is not installed",
                             "--decoder stb", "pip install 'edge-vision[train]' (or libstb)") from None
        try:
            rgb = libstb.imread(str(path), channels=3, orient=False)
        except (OSError, libstb.Error) as exc:
            raise InputError(f"not a readable image ({exc})", str(path),
                             "remove it from the list or re-import") from None
        return np.ascontiguousarray(rgb[:, :, ::-1])
    if decoder == "opencv":
        import cv2

        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError("not a readable image", str(path), "remove it from the list or re-import")
        return frame
    raise InputError(f"unknown image decoder {decoder!r}", "--decoder", f"use one of {', '.join(DECODERS)}")


def detect_reference(net, weights, images: Sequence[Path], resize_mode: str, threshold: float = 0.005,
                     nms_threshold: float = 0.45, progress: bool = True, desc: str = "reference",
                     decoder: str = "stb") -> Tuple[List[Detection], float]:
    """darknet's own numbers for a network: each image read as that darknet build reads it
    (`decoder`, see DECODERS), float input (no u8 rounding) resized with darknet's arithmetic,
    FP32 weights, darknet's decode and NMS, unclipped boxes, each image's detections in
    darknet's box order. What `detector map` computes, through OpenVINO on the CPU."""
    from edge_app.decode import RegionSpec, nms, region_candidates
    from edge_app.preprocess import boxes_to_frame, prepare_float
    from edge_app.runtime import import_openvino
    from model_tools import export
    from model_tools.progress import bar

    ov = import_openvino()

    compiled = ov.Core().compile_model(export.build(net, weights, input_type=np.float32), "CPU")
    request = compiled.create_infer_request()
    region = net.region
    spec = RegionSpec(region.classes, region.num, np.asarray(region.anchors, np.float32).reshape(region.num, 2),
                      region.softmax, region.coords)
    found: List[Detection] = []
    started = time.perf_counter()
    for path in bar(images, progress, desc=desc, unit="img", leave=False):
        frame = read_as_darknet(path, decoder)
        request.infer({0: prepare_float(frame, net.width, net.height, resize_mode)})
        raw = request.get_output_tensor(0).data
        candidates = region_candidates(raw, spec, threshold)
        kept = darknet_order(candidates, nms(candidates, nms_threshold), spec.classes)
        boxes = boxes_to_frame(candidates.boxes[kept], frame.shape[1], frame.shape[0], net.width, net.height,
                               resize_mode, clip=False)
        found += [(path.stem, int(k), float(s), *map(float, b))
                  for k, s, b in zip(candidates.class_id[kept], candidates.score[kept], boxes)]
    return found, time.perf_counter() - started


def write_csv(rows: Sequence[Dict[str, object]], path: Union[str, Path]) -> None:
    from edge_app.atomic import atomic_path

    keys: List[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)


MODES = ("device", "reference", "both")


def cache_key(cfg_path: Union[str, Path], weights_sha256: str, images: Sequence[Path], **settings) -> str:
    """What defines a checkpoint's detections: the cfg's and the weights' bytes, the image list
    and the preprocessing/precision settings. A changed cfg never reuses old detections."""
    import hashlib

    from model_tools.export import sha256_file

    h = hashlib.sha256()
    for part in (sha256_file(cfg_path), weights_sha256, "\n".join(map(str, images)),
                 json.dumps(settings, sort_keys=True)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def detections_path(model_dir: Union[str, Path], mode: str, decoder: str = "") -> Path:
    """Where a checkpoint's detections are cached: one file per mode ("device", "reference"),
    and for reference mode per image decoder."""
    return Path(model_dir) / (f"detections-{mode}.npz" if mode == "device" else f"detections-{mode}-{decoder}.npz")


def save_detections(path: Path, found: Sequence[Detection], seconds: float) -> None:
    """Detections as columns in an .npz (binary floats: exact, and ~5x faster than JSON's float
    text for the 100k detections of an early checkpoint at threshold 0.005)."""
    from edge_app.atomic import atomic_path

    columns = Detections.of(found)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # straight into the file: no growing buffer
        np.savez(f, stems=np.array(columns.stems, str), image=columns.image.astype(np.int32),
                 class_id=columns.class_id.astype(np.int32), values=np.column_stack([columns.score, columns.boxes]),
                 seconds=np.float64(seconds))


def load_detections(path: Path) -> Detections:
    """save_detections' detections; ValueError for a file that is not one (damaged, cut short)."""
    import zipfile

    try:
        saved = np.load(path)  # no pickles: allow_pickle is off
        if not isinstance(saved, np.lib.npyio.NpzFile):
            raise ValueError("a single array")
        with saved:
            stems, image, class_id, values = (saved[k] for k in ("stems", "image", "class_id", "values"))
    except (KeyError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(f"{path}: not a detections file ({exc})") from None
    if values.ndim != 2 or values.shape[1] != 5 or not len(image) == len(class_id) == len(values) \
            or (len(image) and not 0 <= image.min() <= image.max() < len(stems)):
        raise ValueError(f"{path}: inconsistent detections arrays")
    names = stems.tolist()
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: an image id is listed twice")
    return Detections(names, image, class_id, values[:, 0], values[:, 1:])


def _scored_detections(path: Path, detect, score) -> Tuple[Metrics, Optional[float]]:
    """score(detections) of the detections at path if a previous run wrote them, else of
    detect()'s (and the seconds it took), written to path meanwhile on a second thread: the
    file's writing and checksum release Python's lock, the scoring is numpy's (200 images of
    an untrained model: 10 ms of writing beside 20 ms of scoring). An error on either side is
    raised once both have ended."""
    from concurrent.futures import ThreadPoolExecutor

    if path.exists():
        try:
            cached = load_detections(path)
        except (OSError, ValueError):
            cached = None  # a damaged cache is recomputed
        if cached is not None:
            return score(cached), None
    found, seconds = detect()
    with ThreadPoolExecutor(1, thread_name_prefix="save") as pool:
        saving = pool.submit(save_detections, path, found, seconds)
        scored = score(found)  # should it fail, leaving the block still waits for the file to be whole
        saving.result()
    return scored, seconds


def _row_metrics(metrics: Metrics, prefix: str = "") -> Dict[str, object]:
    return {f"{prefix}{k}": v for k, v in metrics.summary().items()}


def evaluate_checkpoints(cfg_path: Union[str, Path], names: Sequence[str], valid_list: Union[str, Path],
                         checkpoints: Sequence[Path], out_dir: Union[str, Path], *, fp16: bool = True,
                         resize_mode: Optional[str] = None, interpolation: str = "darknet", points: int = 0,
                         mode: str = "device", difficult_list: Union[str, Path, None] = None,
                         decoder: str = "stb", progress: bool = True, plot: bool = True,
                         keep: Optional[Dict[str, Dict[str, Metrics]]] = None,
                         reader: Optional[ImageReader] = None) -> List[Dict[str, object]]:
    """Score every checkpoint on the validation list, one detection pass each, cached on disk
    (keyed on cfg + weights + images + settings) and reused by every report and plot.

    mode "device": export (FP16 by default, as the NCS2 runs it) and detect through edge_app,
    with the metadata's preprocessing — the number the device will reach. "reference": darknet's
    own arithmetic and definitions (detector map's number), images read as the darknet build
    compared with reads them (`decoder`, see DECODERS). "both": the two side by side; the
    device's stays the row's main figure. Difficult truths (`difficult_list`, the .data's
    difficult=) count in both modes, each by its own definitions (model_tools.metrics: the VOC
    devkit's for device, detector map's for reference). keep, if given, receives each checkpoint's Metrics
    ({checkpoint name: {"device"|"reference": Metrics}}) for plots without recomputation.
    Writes evaluation.csv (and map.png when plot) into out_dir."""
    from edge_app.runtime import import_openvino
    from model_tools import cfg as cfg_mod, export, weights as weights_mod

    if mode not in MODES:
        raise InputError(f"unknown evaluation mode {mode!r}", "--mode", f"use one of {', '.join(MODES)}")
    if decoder not in DECODERS:
        raise InputError(f"unknown image decoder {decoder!r}", "--decoder", f"use one of {', '.join(DECODERS)}")
    out_dir = Path(out_dir)
    net = cfg_mod.load(cfg_path)
    images = validation_images(valid_list)

    @lru_cache(maxsize=None)
    def truths() -> List[Truth]:  # read once: while the first checkpoint compiles, or when first needed
        return _truths(images, Path(valid_list), names, difficult_list)

    # read once for every checkpoint of the same input size
    prepared = PreparedImages(images, reader=reader if mode in ("device", "both") else None)
    core = None  # one OpenVINO Core for every checkpoint, made when first needed
    rows: List[Dict[str, object]] = []
    try:
        for checkpoint in checkpoints:
            loaded = weights_mod.read(checkpoint, net)
            chosen_resize = resize_mode or export.default_resize_mode(net, loaded)
            key = cache_key(cfg_path, loaded.sha256, images, fp16=fp16, resize_mode=chosen_resize,
                            interpolation=interpolation)
            model_dir = out_dir / "models" / f"{checkpoint.name}-{key}"
            row: Dict[str, object] = {"checkpoint": checkpoint.name, "iteration": checkpoint_iteration(checkpoint),
                                      "images_seen": loaded.header.seen, "weights": str(checkpoint),
                                      "model_dir": str(model_dir), "mode": mode,
                                      "decoder": "" if mode == "device" else decoder, "valid": str(valid_list),
                                      "difficult": str(difficult_list or ""), "names": json.dumps(list(names))}
            computed: Dict[str, Metrics] = {}
            if mode in ("device", "both"):
                detector = None
                if not detections_path(model_dir, "device").exists():
                    # the images are read (by the command's child process, or reader threads) while
                    # this thread exports and compiles; OpenVINO is imported first: its import is
                    # Python work, which ran 2x slower with reader threads beside it (40 → 90 ms)
                    import_openvino()
                    prepared.start((net.width, net.height, chosen_resize, interpolation))
                    # an IR to score, never deployed: no darknet bundle (model-tools export makes that)
                    export.export(net, loaded, list(names), model_dir, fp16=fp16, resize_mode=chosen_resize,
                                  interpolation=interpolation, cfg_path=str(cfg_path), weights_path=str(checkpoint),
                                  bundle=False)
                    core = _new_core() if core is None else core
                    detector = _compile_beside(model_dir, core, truths)  # truths() keeps what it read
                computed["device"], seconds = _scored_detections(  # a damaged cache is recomputed: compile then
                    detections_path(model_dir, "device"),
                    lambda: detect_with(detector or open_detector(model_dir, core=core), prepared, progress=progress,
                                        desc=f"evaluating {checkpoint.name}"),
                    lambda found: compute(found, truths(), names, points=points))
                if seconds:
                    row["images_per_s"] = len(images) / max(seconds, 1e-9)
            if mode in ("reference", "both"):
                model_dir.mkdir(parents=True, exist_ok=True)
                # one file per decoder: detections made with the other one are not reused
                computed["reference"], _ = _scored_detections(
                    detections_path(model_dir, "reference", decoder),
                    lambda: detect_reference(net, loaded, images, chosen_resize, progress=progress,
                                             desc=f"reference {checkpoint.name}", decoder=decoder),
                    lambda found: compute(found, truths(), names, points=points, reference=True))
            main = computed.get("device", computed.get("reference"))
            row.update(_row_metrics(main))
            if mode == "both":
                row.update(_row_metrics(computed["reference"], "ref_"))
            from edge_app.atomic import write_text

            write_text(model_dir / "map.txt", "".join(
                f"--- {name} ---\n{m.table()}" for name, m in computed.items()))
            if keep is not None:
                keep[checkpoint.name] = computed
            rows.append(row)
    finally:
        prepared.close()  # an error: no reading goes on behind it
    write_csv(rows, out_dir / "evaluation.csv")
    if plot and rows:
        from model_tools import plots

        plots.map_per_checkpoint(rows, out_dir / "map.png")
    return rows


def side_by_side(computed: Dict[str, Metrics]) -> str:
    """Device and reference figures of one checkpoint in two columns."""
    if set(computed) != {"device", "reference"}:
        return "".join(m.table() for m in computed.values())
    dev, ref = computed["device"], computed["reference"]
    lines = [f"{'':24s} {'device':>10s} {'reference':>10s}   (reference = darknet detector map)"]
    for d, r in zip(dev.classes, ref.classes):
        lines.append(f"AP {d.name[:21]:21s} {100 * d.ap:9.2f}% {100 * r.ap:9.2f}%")
    lines.append(f"{'mAP@' + format(dev.iou_threshold, '.2f'):24s} {100 * dev.map:9.2f}% {100 * ref.map:9.2f}%")
    for label, a, b in (("precision", dev.precision, ref.precision), ("recall", dev.recall, ref.recall),
                        ("F1", dev.f1, ref.f1)):
        lines.append(f"{label + ' @ conf ' + format(dev.conf_threshold, '.2f'):24s} {a:10.3f} {b:10.3f}")
    lines.append(f"{'TP / FP / FN':24s} {dev.tp:>4d}/{dev.fp}/{dev.fn} {ref.tp:>6d}/{ref.fp}/{ref.fn}")
    lines.append(f"{'detections_count':24s} {dev.detections_count:10d} {ref.detections_count:10d}")
    return "\n".join(lines) + "\n"


# the choice between checkpoints lives in model_tools.selection
from model_tools.selection import read_rows, select, selection_report  # noqa: E402,F401
