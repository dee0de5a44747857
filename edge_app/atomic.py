"""Write files so that a reader sees the old content or the new, never half of it."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

from edge_app.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


@contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`.

    On any exception the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    prepare_output(target)
    # the temporary name is `.<name>.<8 random>.tmp`: keep it within the file-name limit
    prefix = f".{target.name[:NAME_MAX - 16]}."
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot create a file in {target.parent}: {exc.strerror or exc}",
                         str(target), "choose an output folder you can write to") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


NAME_MAX = 255  # bytes in one file name on Linux file systems


def prepare_output(target: Path) -> None:
    """Refuse an output path that cannot become a file, before anything is written; create
    its missing parent folders."""
    check_output_folder(target.parent)
    if len(target.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise InputError(f"output file name is {len(target.name.encode('utf-8', 'surrogateescape'))} "
                         f"bytes long; file systems allow {NAME_MAX}", str(target)[:200] + "...",
                         "use a shorter name")
    if target.is_dir():
        raise InputError("the output path is an existing folder, not a file", str(target),
                         "give a file name (inside the folder, if that is what you meant)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror or exc}", str(target.parent),
                         "choose an output folder you can write to") from None


def check_output_folder(folder: PathLike) -> None:
    """Refuse, before anything is written, a folder path that cannot be one: a name longer
    than file systems allow, or a component that is an existing file."""
    folder = Path(folder)
    for part in folder.parts:
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise InputError(f"a folder name in the output path is longer than {NAME_MAX} bytes",
                             str(folder)[:200] + "...", "use shorter names")
    for path in [folder, *folder.parents]:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} is a file, not a folder", str(folder),
                             "give a folder path for the output")


def prepare_output_dir(folder: PathLike) -> None:
    """check_output_folder, then create the folder."""
    folder = Path(folder)
    check_output_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror or exc}", str(folder),
                         "choose an output folder you can write to") from None


def write_bytes(target: PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))
