"""Shared fixtures: real photos, real cfgs, random-weight models exported by our own tools.

No pretrained weights exist here: models get well-scaled random weights (model-tools
random-weights) and are exported through the real `model-tools export` code path.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DARKNET_SHARE = Path("/usr/share/darknet")
PHOTOS = ("dog", "eagle", "giraffe", "horses", "person")
TEST_CFGS = {
    "yolov2-tiny-voc": DARKNET_SHARE / "cfg/yolov2-tiny-voc.cfg",
    "yolov2-tiny": DARKNET_SHARE / "cfg/yolov2-tiny.cfg",
    "yolov2-voc": DARKNET_SHARE / "cfg/yolov2-voc.cfg",
    "tiny-224x160": REPO / "tests/data/tiny-224x160.cfg",
}


def require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path}: install the Debian package 'darknet' "
                    "(scripts/test.sh does)")
    return path


@pytest.fixture(scope="session", autouse=True)
def cache_directory(tmp_path_factory):
    """The daemon's cache folder (edge_app/widen.py), for this process and the daemons it starts:
    a test run writes nothing into the user's ~/.cache or a model's folder."""
    folder = tmp_path_factory.mktemp("edge-app-cache")
    os.environ["CACHE_DIRECTORY"] = str(folder)
    yield folder


@pytest.fixture(scope="session")
def darknet_bin() -> str:
    found = shutil.which("darknet")
    if not found:
        pytest.fail("darknet binary not on PATH: apt-get install darknet (scripts/test.sh does)")
    return found


def photo(name: str) -> Path:
    return require(DARKNET_SHARE / "data" / f"{name}.jpg", "darknet sample photo")


@pytest.fixture(scope="session")
def run_cli():
    """Run a console command through `python -m` in a subprocess, as a user would."""

    def run(module: str, *args, check: bool = False, python: str = sys.executable,
            cwd=None, env=None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
        result = subprocess.run([python, "-m", module, *map(str, args)], capture_output=True,
                                text=True, cwd=cwd, env=full_env, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"{module} {args} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    return run


def model_tools_python() -> str:
    """The interpreter that runs model-tools: this one, or the training-box one named by
    MODEL_TOOLS_PYTHON when the edge tests run under the Pi's Python 3.9 + OpenVINO 2022.3."""
    return os.environ.get("MODEL_TOOLS_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, run_cli):
    """exported(cfg_name, fp16=False, resize_mode='letterbox') -> (model_dir, cfg, weights, names).

    Random weights (seed 1) exported by the real `model-tools export` in a subprocess, cached for
    the session. Letterbox by default: on network-size images it is the identity, as in darknet.
    """
    cache = {}
    root = tmp_path_factory.mktemp("models")

    def make(cfg_name: str, fp16: bool = False, resize_mode: str = "letterbox"):
        key = (cfg_name, fp16, resize_mode)
        if key in cache:
            return cache[key]
        cfg = TEST_CFGS[cfg_name]
        base = root / cfg_name
        base.mkdir(exist_ok=True)
        weights = base / f"{cfg_name}.weights"
        names = base / "names.txt"
        python = model_tools_python()
        if not weights.exists():
            run_cli("model_tools", "random-weights", cfg, weights, "--seed", 1, python=python,
                    check=True)
            classes = int(_region_option(cfg, "classes"))
            names.write_text("".join(f"class{i}\n" for i in range(classes)))
        out = base / f"{'fp16' if fp16 else 'fp32'}-{resize_mode}"
        run_cli("model_tools", "export", "--cfg", cfg, "--weights", weights, "--names", names,
                "-o", out, "--resize-mode", resize_mode, *([] if fp16 else ["--fp32"]),
                python=python, check=True)
        cache[key] = (out, cfg, weights, names)
        return cache[key]

    return make


def _region_option(cfg: Path, key: str) -> str:
    in_region = False
    for line in cfg.read_text().splitlines():
        line = "".join(line.split())
        if line.startswith("["):
            in_region = line == "[region]"
        elif in_region and line.startswith(key + "="):
            return line.split("=", 1)[1]
    raise KeyError(key)


@pytest.fixture(scope="session")
def net_size_photos(tmp_path_factory):
    """photos(width, height) -> list of PNG paths: real photos resized to the network size.

    At network size darknet's letterbox and resize are the identity and PNG is lossless, so
    darknet, OpenCV DNN and our u8 input all see exactly the same pixels.
    """
    import cv2

    root = tmp_path_factory.mktemp("photos")

    def make(width: int, height: int):
        paths = []
        for name in PHOTOS:
            path = root / f"{name}_{width}x{height}.png"
            if not path.exists():
                image = cv2.imread(str(photo(name)))
                cv2.imwrite(str(path), cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
            paths.append(path)
        return paths

    return make


# Property-based tests (tests/fuzz.py): deterministic in CI (derandomize; no example database
# written into the checkout); per-test example counts are set with tests.fuzz.examples().
from hypothesis import HealthCheck, settings  # noqa: E402

_HYPOTHESIS_COMMON = dict(deadline=None, database=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture,
                                                 HealthCheck.filter_too_much])
for _profile in ("ci", "dev", "deep"):
    settings.register_profile(_profile, **_HYPOTHESIS_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
