"""Snapshots: the best frame of a tracked object with its box drawn, as a size-capped JPEG, and a
bounded folder of them on the SD card (oldest deleted first, total size and count capped)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

from edge_app.detection import Detection

log = logging.getLogger(__name__)

GREEN = (0, 255, 0)


def annotate(image, boxes: Sequence[Tuple[str, float, Tuple[float, float, float, float]]]):
    """A copy of the BGR image with each (label, score, box) drawn."""
    import cv2

    out = image.copy()
    for label, score, (x1, y1, x2, y2) in boxes:
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, GREEN, 2)
        cv2.putText(out, f"{label} {score:.2f}", (p1[0], max(p1[1] - 4, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, GREEN, 1, cv2.LINE_AA)
    return out


def annotate_detections(image, detections: Sequence[Detection]):
    return annotate(image, [(d.label, d.confidence, (d.x1, d.y1, d.x2, d.y2)) for d in detections])


def encode_jpeg(image, quality: int = 80) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def encode_capped(image, max_bytes: int, quality: int = 80) -> Optional[bytes]:
    """A JPEG of at most max_bytes: lower quality first, then halve the size; None if even a
    small, coarse picture does not fit (the caller counts it)."""
    import cv2

    current = image
    while True:
        for q in (quality, 60, 40, 25):
            if q > quality:
                continue
            data = encode_jpeg(current, q)
            if len(data) <= max_bytes:
                return data
        height, width = current.shape[:2]
        if min(width, height) < 64:
            return None
        current = cv2.resize(current, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


def safe_name(text: str) -> str:
    """Letters, digits, '-' and '_' only: fit for an MQTT topic level, a Home Assistant id and a
    file name (labels come from the model's names file and may hold spaces or '/')."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in text) or "_"


class SnapshotFolder:
    """JPEGs in one folder, named <time>-<label>-<track id>.jpg; after each write the oldest are
    deleted until the folder holds at most max_files files and max_bytes bytes."""

    def __init__(self, folder: str, max_bytes: int, max_files: int):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written = 0
        self.deleted = 0

    def save(self, data: bytes, label: str, track_id: int, at: float) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(at)) + f"{at % 1:.3f}"[1:]
        path = self.folder / f"{stamp}-{safe_name(label)}-{track_id}.jpg"
        tmp = path.with_suffix(".jpg.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.written += 1
        self.prune()
        return path

    def prune(self) -> None:
        files = []
        for p in self.folder.glob("*.jpg"):
            try:
                st = p.stat()
            except OSError:
                continue
            files.append((st.st_mtime, p.name, st.st_size, p))
        files.sort()
        total = sum(f[2] for f in files)
        while files and (len(files) > self.max_files or total > self.max_bytes):
            _, _, size, p = files.pop(0)
            try:
                p.unlink()
                self.deleted += 1
            except OSError as exc:
                log.warning("cannot delete old snapshot %s: %s", p, exc)
            total -= size
