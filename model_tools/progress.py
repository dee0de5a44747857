"""Progress bars for the long loops of the CLI: tqdm's on an interactive terminal, none in a log
or a pipe (where a bar is noise), and then tqdm is not even imported (30 ms of every command)."""
from __future__ import annotations

import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def bar(items: Iterable[T], enabled: bool = True, **tqdm_args) -> Iterable[T]:
    """items, wrapped in a tqdm bar when enabled and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, **tqdm_args)
