"""Validation images read and prepared in a child process, for `model-tools evaluate`.

Evaluation's own threads (evaluate.PreparedImages) share one Python lock with everything else
the command does: each image hands the lock over a few times, and while the main thread builds
the IR, reads the truths or decodes outputs, readers and main thread wait on each other. And
nothing can be read before numpy, OpenCV and OpenVINO are imported, a third of a short run on
one core while the other idles. A child forked at the very start of the command, before the
command imports numpy (no thread exists yet, so fork is safe), has its own lock and that idle
core: it imports numpy and OpenCV and prepares the images, for the first checkpoint's
preprocessing (its cfg and weights header say which), into memory shared with this process,
while this process imports, exports and compiles.

The child runs read_and_prepare, the very function the threads run: the same tensors to the
byte. It reads the images the budget keeps on THREADS threads of its own and reports each over
a pipe, in list order. An
image it cannot read is reported with the InputError the threads would raise, raised here when
that image is reached. If the child fails any other way (killed, no memory) the images it did
not report are read here instead. Never used when forking is not safe or possible (numpy
already imported, another thread alive, no os.fork): the threads then do it all.
"""
from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from edge_app.errors import InputError

# Prepared network inputs kept from one checkpoint to the next: 1000 images at 416x416 take
# 520 MB; past this budget the first images are kept and the rest read again for each checkpoint
PREPARED_BUDGET = 256 * 2 ** 20

Key = Tuple[int, int, str, str]  # width, height, resize mode, interpolation (evaluate.Preprocessing)

# The child's reading threads: decoding and resizing release its Python lock, and one thread
# alone fell behind inference on 1000 images
THREADS = 2

# Child → parent records: (index, width, height) for an image prepared into its slot, in list
# order; (index, ERROR, n) followed by n bytes of JSON [what, where, fix] where an image cannot
# be read (the child stops there)
_RECORD = struct.Struct("<iii")
_ERROR = -1


def read_and_prepare(path: Path, key: Key):
    """(network input, frame width, frame height) of one image file, prepared exactly as the Pi
    prepares a frame (edge_app.preprocess.prepare). InputError for a file that is not a
    readable image."""
    import cv2
    import numpy as np

    from edge_app.preprocess import prepare

    # the file's bytes decoded from memory: the very pixels of cv2.imread(path), EXIF orientation
    # included (tests/tools/test_prepared_images.py), for 15% less CPU (0.61 → 0.52 ms a 320x240 JPEG)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read the image ({exc.strerror or exc})", str(path),
                         "check the file and its permissions, or remove it from the list") from None
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if frame is None:
        raise InputError("not a readable image", str(path), "remove it from the list or re-import")
    return prepare(frame, *key), frame.shape[1], frame.shape[0]


def can_fork() -> bool:
    """Forking is safe here: numpy (whose BLAS starts threads) is not loaded and no other
    thread runs, so the child cannot inherit a lock some thread held."""
    import threading

    return hasattr(os, "fork") and "numpy" not in sys.modules and threading.active_count() == 1


class ImageReader:
    """A child process preparing images[:room] for `key` (see the module's docstring). Parent
    side: result(i), image i."""

    def __init__(self, pid: int, pipe, shared, images: List[Path], key: Key, slot: int):
        self._pid: Optional[int] = pid
        self._pipe = pipe
        self._shared = shared
        self.images = images
        self.key = key
        self._slot = slot
        self._ready: List[Tuple[int, int]] = []  # frame sizes of the images reported so far
        self._error: Optional[Tuple[int, InputError]] = None

    @classmethod
    def start(cls, images: Sequence[Path], cfg_path: Union[str, Path], weights_path: Union[str, Path],
              resize_mode: Optional[str], interpolation: str, budget: int) -> Optional["ImageReader"]:
        """Fork the child for the preprocessing of this cfg and checkpoint, or None (forking
        unsafe; a cfg or weights file that does not read: the caller reports what is wrong)."""
        import mmap

        from model_tools import cfg
        from model_tools.weights_header import parse_header, resize_mode_for

        if not can_fork() or not images:
            return None
        try:
            net = cfg.load(cfg_path)
            with open(weights_path, "rb") as f:
                header = parse_header(f.read(20), str(weights_path))
        except (InputError, OSError):
            return None
        key = (net.width, net.height, resize_mode or resize_mode_for(net, header), interpolation)
        slot = net.width * net.height * 3
        room = min(len(images), budget // slot)
        if room <= 0:
            return None
        images = list(images[:room])
        sys.stdout.flush()  # nothing buffered may be written twice
        sys.stderr.flush()
        try:
            shared = mmap.mmap(-1, room * slot)  # anonymous and shared: both processes see the bytes
            read_end, write_end = os.pipe()
        except OSError:  # no memory or descriptors to spare: the threads read
            return None
        try:
            pid = os.fork()
        except OSError:  # a process limit, no memory
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.close(read_end)
                _child(images, key, shared, slot, write_end)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        return cls(pid, os.fdopen(read_end, "rb"), shared, images, key, slot)

    def result(self, index: int):
        """(tensor, frame width, frame height) of images[index]: the child's, or read here if
        the child ended before it. The InputError the child met at this image is raised."""
        while len(self._ready) <= index and self._pid is not None:  # the child still runs
            self._next()
        if index < len(self._ready):
            import numpy as np

            width, height = self._ready[index]
            tensor = np.frombuffer(self._shared, np.uint8, self._slot, index * self._slot)
            return tensor.reshape(1, self.key[1], self.key[0], 3), width, height
        if self._error is not None and self._error[0] == index:
            raise self._error[1]
        return read_and_prepare(self.images[index], self.key)

    def _next(self) -> None:
        """Read one record from the child."""
        head = self._pipe.read(_RECORD.size)
        if len(head) < _RECORD.size:
            self.close()
            return
        index, width, height = _RECORD.unpack(head)
        if width == _ERROR:
            body = self._pipe.read(height)
            if len(body) == height:
                self._error = (index, InputError(*json.loads(body)))
            self.close()
        elif index == len(self._ready):
            self._ready.append((width, height))
        else:
            self.close()

    def close(self) -> None:
        """Stop the child if it still runs and reap it. Tensors already handed out stay valid."""
        import signal

        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self._pid, 0)
            self._pid = None
            self._pipe.close()


def _child(images: List[Path], key: Key, shared, slot: int, out: int) -> None:
    """The child's work: each image into its slot, reported in order."""
    import numpy as np

    def send(index: int, width: int, height: int, body: bytes = b"") -> None:
        data = _RECORD.pack(index, width, height) + body
        while data:
            data = data[os.write(out, data):]

    slots = np.frombuffer(shared, np.uint8).reshape(len(images), slot)

    def read(index: int):
        try:
            tensor, width, height = read_and_prepare(images[index], key)
        except InputError as exc:
            return exc
        if tensor.nbytes == slot:
            slots[index] = tensor.reshape(-1)
        return tensor.nbytes, width, height

    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(THREADS)
    try:
        for index, done in enumerate(pool.map(read, range(len(images)))):
            if isinstance(done, InputError):
                body = json.dumps([done.what, done.where, done.fix]).encode()
                send(index, _ERROR, len(body), body)
                return
            if done[0] != slot:
                return  # not the size the parent set aside: it reads the rest itself
            send(index, *done[1:])
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # what is queued after an error is not read
