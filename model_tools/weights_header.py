"""The 16- or 20-byte header of a darknet .weights file (model_tools.weights reads the rest):
which darknet wrote it, how many images it was trained on, and what follows from that. Without
numpy, so that `model-tools evaluate` knows a checkpoint's preprocessing before it loads numpy
(model_tools.image_reader)."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from edge_app.errors import InputError


@dataclass(frozen=True)
class Header:
    major: int
    minor: int
    revision: int
    seen: int

    @property
    def seen_is_64bit(self) -> bool:
        return (self.major * 10 + self.minor) >= 2 and self.major < 1000 and self.minor < 1000

    @property
    def size(self) -> int:
        return 20 if self.seen_is_64bit else 16

    def to_bytes(self) -> bytes:
        return struct.pack("<iiiQ" if self.seen_is_64bit else "<iiii", self.major, self.minor, self.revision,
                           self.seen)

    fork_override: Optional[str] = None  # the user's --fork, when the stamp is not to be trusted

    @property
    def fork(self) -> str:
        """Which darknet wrote the file: the user's --fork, else by the version it stamps
        (pjreddie 0.1.0/0.2.0, AlexeyAB 0.2.5). It decides the batch-norm epsilon and the
        default resize, so `fork_reason` says where the answer came from."""
        if self.fork_override:
            return self.fork_override
        return "alexeyab" if self.revision >= 5 else "pjreddie"

    @property
    def stamp_is_known(self) -> bool:
        return (self.major, self.minor, self.revision) in KNOWN_STAMPS

    @property
    def fork_reason(self) -> str:
        stamp = f"{self.major}.{self.minor}.{self.revision}"
        if self.fork_override:
            return f"{self.fork_override}, as given with --fork (file stamp {stamp})"
        if self.stamp_is_known:
            return f"{self.fork}, from the version stamp {stamp} it writes"
        return (f"{self.fork}, GUESSED from the unknown version stamp {stamp} (revision "
                f"{'>=' if self.revision >= 5 else '<'} 5); pass --fork pjreddie|alexeyab to be sure")


FORKS = ("pjreddie", "alexeyab")
KNOWN_STAMPS = {(0, 1, 0): "pjreddie", (0, 2, 0): "pjreddie", (0, 2, 5): "alexeyab"}

# What `darknet partial` writes: pjreddie's version stamp and seen reset to 0.
PJREDDIE_HEADER = Header(0, 2, 0, 0)


def parse_header(data: bytes, where: str) -> Header:
    if len(data) < 16:
        raise InputError(f"file is {len(data)} bytes, too short for a darknet weights header "
                         "(16 or 20 bytes)", where, "check that this is a .weights file")
    major, minor, revision = struct.unpack("<iii", data[:12])
    probe = Header(major, minor, revision, 0)
    if probe.seen_is_64bit:
        if len(data) < 20:
            raise InputError("file ends inside the 20-byte weights header", where)
        (seen,) = struct.unpack("<Q", data[12:20])
    else:
        (seen,) = struct.unpack("<i", data[12:16])
    return Header(major, minor, revision, seen)


def resize_mode_for(net, header: Header) -> str:
    """The preprocessing weights were trained with, by their header: pjreddie trains (and
    tests) on letterboxed images, AlexeyAB on plain resizes unless the cfg (net, a
    cfg.Network) says letter_box=1."""
    return "letterbox" if net.letter_box or header.fork == "pjreddie" else "resize"
