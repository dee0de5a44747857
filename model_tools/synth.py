"""A synthetic logo-style dataset: distinct glyphs pasted on real photos, with known boxes.

No dataset can be downloaded here, so tests and the demo model train on this. Each class is a
glyph with its own shape and colours ("logos"); each image is a random crop of one of
darknet's sample photos with 1-3 glyphs at varied scale, position, rotation and lighting.
Output is written in Flickr Logos 27's annotation format (`file class subset x1 y1 x2 y2`,
subsets 1-6), so the same importer that reads the real dataset reads this one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

from edge_app.atomic import write_text

PHOTO_DIR = Path("/usr/share/darknet/data")

# name -> (shape, fill BGR, accent BGR)
GLYPHS = {
    "Circle": ("circle", (40, 40, 220), (255, 255, 255)),
    "Square": ("square", (200, 120, 20), (0, 230, 255)),
    "Triangle": ("triangle", (30, 180, 30), (255, 255, 255)),
    "Star": ("star", (0, 200, 255), (20, 20, 160)),
    "Cross": ("cross", (180, 40, 160), (255, 255, 255)),
    "Ring": ("ring", (20, 20, 20), (0, 140, 255)),
}


@dataclass(frozen=True)
class Box:
    label: str
    x1: int
    y1: int
    x2: int
    y2: int


def _polygon(shape: str, size: int) -> np.ndarray:
    c, r = size / 2, size / 2 * 0.95
    if shape == "triangle":
        angles = [-90, 30, 150]
        return np.array([(c + r * math.cos(math.radians(a)), c + r * math.sin(math.radians(a)) + r * 0.2)
                         for a in angles], np.int32)
    if shape == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            a = math.radians(-90 + 36 * i)
            pts.append((c + rad * math.cos(a), c + rad * math.sin(a)))
        return np.array(pts, np.int32)
    raise ValueError(shape)


def render_glyph(label: str, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """(BGR image, alpha mask) of one glyph, size x size; the glyph touches the borders."""
    import cv2

    shape, fill, accent = GLYPHS[label]
    image = np.zeros((size, size, 3), np.uint8)
    mask = np.zeros((size, size), np.uint8)
    c, r = size // 2, size // 2
    t = max(2, size // 8)
    if shape == "circle":
        for target, colour in ((image, fill), (mask, 255)):
            cv2.circle(target, (c, c), r - 1, colour, -1, cv2.LINE_AA)
        cv2.circle(image, (c, c), r // 2, accent, -1, cv2.LINE_AA)
    elif shape == "square":
        for target, colour in ((image, fill), (mask, 255)):
            cv2.rectangle(target, (0, 0), (size - 1, size - 1), colour, -1)
        cv2.rectangle(image, (t, t), (size - 1 - t, size - 1 - t), accent, t)
    elif shape in ("triangle", "star"):
        poly = _polygon(shape, size)
        for target, colour in ((image, fill), (mask, 255)):
            cv2.fillPoly(target, [poly], colour, cv2.LINE_AA)
        cv2.polylines(image, [poly], True, accent, max(1, t // 2), cv2.LINE_AA)
    elif shape == "cross":
        w = size // 3
        for target, colour in ((image, fill), (mask, 255)):
            cv2.rectangle(target, (w, 0), (2 * w, size - 1), colour, -1)
            cv2.rectangle(target, (0, w), (size - 1, 2 * w), colour, -1)
        cv2.rectangle(image, (w + t // 2, w + t // 2), (2 * w - t // 2, 2 * w - t // 2), accent, -1)
    elif shape == "ring":
        for target, colour in ((image, fill), (mask, 255)):
            cv2.circle(target, (c, c), r - 1, colour, t * 2, cv2.LINE_AA)
        cv2.circle(image, (c, c), r - 1 - t, accent, max(1, t // 2), cv2.LINE_AA)
    return image, mask


def load_backgrounds(photo_dir: Path = PHOTO_DIR) -> List[np.ndarray]:
    import cv2

    photos = [cv2.imread(str(p)) for p in sorted(photo_dir.glob("*.jpg"))]
    photos = [p for p in photos if p is not None]
    if not photos:
        from edge_app.errors import InputError

        raise InputError("no background photos found", str(photo_dir),
                         "install the Debian package 'darknet' (it ships sample photos)")
    return photos


def make_image(backgrounds: Sequence[np.ndarray], labels: Sequence[str], rng: np.random.Generator,
               size: Tuple[int, int] = (320, 240), max_objects: int = 3,
               scale: Tuple[float, float] = (0.12, 0.40)) -> Tuple[np.ndarray, List[Box]]:
    """One image and its boxes. Glyphs do not overlap each other."""
    import cv2

    width, height = size
    photo = backgrounds[rng.integers(len(backgrounds))]
    ph, pw = photo.shape[:2]
    crop = rng.uniform(0.5, 1.0)
    cw, ch = int(pw * crop), int(ph * crop)
    x0, y0 = rng.integers(0, pw - cw + 1), rng.integers(0, ph - ch + 1)
    image = cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], size, interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        image = image[:, ::-1].copy()
    boxes: List[Box] = []
    for _ in range(rng.integers(1, max_objects + 1)):
        label = labels[rng.integers(len(labels))]
        side = int(min(width, height) * rng.uniform(*scale))
        glyph, mask = render_glyph(label, side)
        angle = rng.uniform(-25, 25)
        rot = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
        glyph = cv2.warpAffine(glyph, rot, (side, side), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(mask, rot, (side, side), flags=cv2.INTER_LINEAR)
        for _attempt in range(20):
            x, y = rng.integers(0, width - side + 1), rng.integers(0, height - side + 1)
            if all(x + side <= b.x1 or b.x2 <= x or y + side <= b.y1 or b.y2 <= y for b in boxes):
                break
        else:
            continue
        ys, xs = np.nonzero(mask > 127)
        if len(xs) == 0:
            continue
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        region = image[y:y + side, x:x + side].astype(np.float32)
        image[y:y + side, x:x + side] = (alpha * glyph + (1 - alpha) * region).astype(np.uint8)
        boxes.append(Box(label, int(x + xs.min()), int(y + ys.min()), int(x + xs.max()) + 1,
                         int(y + ys.max()) + 1))
    # lighting: global gain and offset, plus a soft gradient
    gain, offset = rng.uniform(0.6, 1.3), rng.uniform(-30, 30)
    gradient = np.linspace(rng.uniform(-25, 0), rng.uniform(0, 25), width, dtype=np.float32)[None, :, None]
    image = np.clip(image.astype(np.float32) * gain + offset + gradient, 0, 255).astype(np.uint8)
    return image, boxes


def generate(out_dir: Union[str, Path], count: int, seed: int = 0, labels: Sequence[str] = tuple(GLYPHS),
             size: Tuple[int, int] = (320, 240), progress: bool = True) -> Path:
    """Write `count` images to out_dir/images and their boxes to out_dir/annotations.txt
    (Flickr Logos 27 format; subset = 1 + index % 6). Returns the annotation file."""
    import cv2

    from model_tools.progress import bar

    out_dir = Path(out_dir)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    backgrounds = load_backgrounds()
    lines = []
    for index in bar(range(count), progress, desc="synthesising", unit="img"):
        image, boxes = make_image(backgrounds, labels, rng, size)
        name = f"synth{seed:03d}_{index:05d}.jpg"
        if not cv2.imwrite(str(images / name), image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"cannot write {images / name}")
        subset = 1 + index % 6
        lines += [f"{name} {b.label} {subset} {b.x1} {b.y1} {b.x2} {b.y2}\n" for b in boxes]
    annotations = out_dir / "annotations.txt"
    write_text(annotations, "".join(lines))
    return annotations


def make_clip(path: Union[str, Path], frames: int = 60, seed: int = 777, size: Tuple[int, int] = (320, 240),
              fps: float = 10.0, objects: int = 3, labels: Sequence[str] = tuple(GLYPHS)) -> Path:
    """A video of glyphs moving (bouncing) over one background photo, and its ground truth:
    <path>.json = {"fps", "size", "labels", "frames": [[{"label", "box": [x1, y1, x2, y2]}...]...]}.
    Use a seed the training data did not use: the clip is then held out."""
    import json

    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    backgrounds = load_backgrounds()
    photo = backgrounds[rng.integers(len(backgrounds))]
    background = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    def apart(a_pos, a_side, b_pos, b_side, gap=4):
        return (a_pos[0] + a_side + gap <= b_pos[0] or b_pos[0] + b_side + gap <= a_pos[0]
                or a_pos[1] + a_side + gap <= b_pos[1] or b_pos[1] + b_side + gap <= a_pos[1])

    movers = []
    for i in range(objects):
        side = int(min(size) * rng.uniform(0.2, 0.32))
        label = labels[(i + rng.integers(len(labels))) % len(labels)]
        glyph, mask = render_glyph(label, side)
        for _attempt in range(100):
            pos = np.array([rng.uniform(0, width - side), rng.uniform(0, height - side)])
            if all(apart(pos, side, m[4], m[3]) for m in movers):
                break
        vel = rng.uniform(-1, 1, 2)
        vel = vel / np.linalg.norm(vel) * rng.uniform(4, 9)
        movers.append([label, glyph, mask, side, pos, vel])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    truth = []
    for _ in range(frames):
        image = background.copy()
        boxes = []
        for mover in movers:
            label, glyph, mask, side, pos, vel = mover
            x, y = int(pos[0]), int(pos[1])
            alpha = (mask.astype(np.float32) / 255.0)[..., None]
            region = image[y:y + side, x:x + side].astype(np.float32)
            image[y:y + side, x:x + side] = (alpha * glyph + (1 - alpha) * region).astype(np.uint8)
            ys, xs = np.nonzero(mask > 127)
            boxes.append({"label": label, "box": [int(x + xs.min()), int(y + ys.min()),
                                                  int(x + xs.max()) + 1, int(y + ys.max()) + 1]})
        writer.write(image)
        # move; glyphs bounce off the frame's edges and off each other, so none is ever hidden
        # and the ground truth holds only visible objects
        for index, mover in enumerate(movers):
            label, glyph, mask, side, pos, vel = mover
            new = pos + vel
            for axis, limit in ((0, width - side), (1, height - side)):
                if not 0 <= new[axis] <= limit:
                    vel[axis] = -vel[axis]
                    new[axis] = min(max(new[axis], 0), limit)
            if all(apart(new, side, other[4], other[3]) for j, other in enumerate(movers) if j != index):
                pos[:] = new
            else:
                vel *= -1
        truth.append(boxes)
    writer.release()
    write_text(path.with_suffix(".json"), json.dumps({"fps": fps, "size": list(size), "labels": list(labels),
                                                      "seed": seed, "frames": truth}) + "\n")
    return path
