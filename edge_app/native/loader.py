"""One optional compiled library beside its package, loaded with ctypes: no Python C API, so one
build serves every Python version, and building needs a C compiler but no python3-dev.

The one home of how such a library is found (setuptools names it like an extension module,
e.g. _dkresize.cpython-39-arm-linux-gnueabihf.so; it holds no Python code, so any of them fits
any interpreter on the machine that built it), checked (its ABI version against the Python
side's), turned off (an environment variable set to 0), and explained (status(): one line saying
what runs and, when it is not the library, why and how to get it). Used by edge_app.native (the
resize) and model_tools.native (the log scanner).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Callable, Optional


class Unusable(Exception):
    """Raised by a configure step: the library loaded but must not be used (the message says why)."""


class CompiledLibrary:
    def __init__(self, folder: Path, stem: str, abi_symbol: str, abi_version: int, off_env: str,
                 not_built: str, rebuild: str, configure: Callable[[ctypes.CDLL], str]):
        """configure(lib) declares the functions' types and returns what to add to the status
        line (or raises Unusable); not_built / rebuild: how to get a (fresh) build."""
        self.folder = folder
        self.stem, self.abi_symbol, self.abi_version = stem, abi_symbol, abi_version
        self.off_env, self.not_built, self.rebuild = off_env, not_built, rebuild
        self.configure = configure
        self._lib: Optional[ctypes.CDLL] = None
        self._status: Optional[str] = None

    def _find(self) -> Optional[Path]:
        found = sorted(self.folder.glob(self.stem + "*.so")) + sorted(self.folder.glob(self.stem + "*.pyd"))
        return found[0] if found else None

    def _load(self):
        if os.environ.get(self.off_env, "1") == "0":
            return None, f"turned off by {self.off_env}=0"
        path = self._find()
        if path is None:
            return None, f"not built (no C compiler when it was installed); {self.not_built}"
        try:
            lib = ctypes.CDLL(str(path))
            if getattr(lib, self.abi_symbol)() != self.abi_version:
                return None, f"{path.name} is from another version of this package; {self.rebuild}"
        except (OSError, AttributeError) as exc:  # e.g. built for another machine
            return None, f"{path.name} cannot be loaded ({exc}); {self.rebuild} on this machine"
        try:
            detail = self.configure(lib)
        except Unusable as exc:
            return None, str(exc)
        return lib, f"loaded {path.name}" + (f" ({detail})" if detail else "")

    def library(self) -> Optional[ctypes.CDLL]:
        """The loaded library, or None (see status())."""
        if self._status is None:
            self._lib, self._status = self._load()
        return self._lib

    def status(self) -> str:
        self.library()
        assert self._status is not None
        return self._status

    def reset(self) -> None:
        """Forget the loaded state (tests switch the environment variable)."""
        self._lib = self._status = None
