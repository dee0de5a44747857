"""The one reader of darknet .names files (one class name per line; the line number is the id).

Every command that needs class names (import, export, evaluate, pipeline) reads them here, so a
file is accepted or refused the same way everywhere: UTF-8, no blank line between names (it
would shift every later class id), no name twice (two ids for one class), trailing blank lines
ignored as darknet does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Union

from edge_app.errors import InputError
from edge_app.readers import read_text

FIX = "write one class name per line, each name once, no blank lines between them"


def parse_names(text: str, where: str) -> List[str]:
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    first_line: Dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
            raise InputError("empty class name (a blank line would shift every later class id)",
                             f"{where}:{number}", "remove the blank line")
        if any(ord(ch) < 32 for ch in name):
            raise InputError(f"class name {name!r} holds a control character", f"{where}:{number}", FIX)
        if name in first_line:
            raise InputError(f"class name '{name}' appears twice (first at line {first_line[name]})",
                             f"{where}:{number}", "keep one of the two lines")
        first_line[name] = number
    if not names:
        raise InputError("the names file holds no class names", where, FIX)
    return names


def read_names(path: Union[str, Path], classes: Optional[int] = None) -> List[str]:
    """Class names in id order; with `classes`, the count must match the model's."""
    names = parse_names(read_text(path, "names file", "pass the .names file with one class name per line"),
                        str(path))
    if classes is not None and len(names) != classes:
        raise InputError(f"names file has {len(names)} names but the cfg's [region] has "
                         f"classes={classes}", str(path),
                         "use the .names file the model was trained with, one name per line")
    return names
