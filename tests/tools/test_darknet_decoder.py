"""evaluate's reference mode reads each image as the darknet it reproduces does
(evaluate.read_as_darknet): with stb_image (libstb) like AlexeyAB built without OpenCV, with
cv2.imread like a darknet built with OpenCV — Debian's, which CI has.

The stb pixels are checked against what AlexeyAB's own load_image_stb gave on the lead's machine
(stored: tests/data/darknet_decode/README.md); the OpenCV pixels against what the Debian binary
itself loads, read back through a network that outputs its input."""
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.errors import InputError
from model_tools import evaluate

DATA = Path(__file__).resolve().parents[1] / "data" / "darknet_decode"
FILES = sorted(p for p in DATA.iterdir() if p.suffix in (".jpg", ".png") and not p.name.endswith(".darknet.png"))
JPEGS = [p for p in FILES if p.suffix == ".jpg"]
PNGS = [p for p in FILES if p.suffix == ".png"]


def alexeyab_pixels(path: Path) -> np.ndarray:
    """What AlexeyAB darknet without OpenCV loaded from path, as BGR u8 (stored losslessly)."""
    stored = cv2.imread(str(path) + ".darknet.png", cv2.IMREAD_COLOR)
    assert stored is not None, f"{path}.darknet.png is missing"
    return stored


def test_the_fixtures_are_the_kinds_we_claim():
    assert len(JPEGS) == 11 and len(PNGS) == 4
    # EXIF orientation 6 stored in the file: a viewer (and OpenCV) turns the 61x45 picture upright
    assert cv2.imread(str(DATA / "exif_rotate90.jpg"), cv2.IMREAD_COLOR).shape[:2] == (61, 45)
    assert cv2.imread(str(DATA / "rgb16.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(DATA / "rgba.png"), cv2.IMREAD_UNCHANGED).shape[2] == 4


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_stb_decoder_gives_alexeyabs_pixels(path):
    frame = evaluate.read_as_darknet(path, "stb")
    expected = alexeyab_pixels(path)
    assert frame.dtype == np.uint8 and frame.flags["C_CONTIGUOUS"]
    assert frame.shape == expected.shape
    gap = int(np.abs(frame.astype(int) - expected).max())
    assert gap == 0, f"{path.name}: off by up to {gap} levels"


def test_stb_ignores_exif_orientation_as_darknet_does():
    assert evaluate.read_as_darknet(DATA / "exif_rotate90.jpg", "stb").shape == (45, 61, 3)


def test_the_stored_pixels_tell_the_two_decoders_apart():
    # libjpeg-turbo's JPEG pixels are not stb_image's (a few levels, tens on 4:2:2 colour edges):
    # the check above fails if reference mode read JPEGs with OpenCV
    same = [p.name for p in JPEGS if np.array_equal(evaluate.read_as_darknet(p, "opencv"), alexeyab_pixels(p))]
    assert same == []
    gaps = {p.name: int(np.abs(evaluate.read_as_darknet(p, "opencv").astype(int) - alexeyab_pixels(p)).max())
            for p in JPEGS if p.name != "exif_rotate90.jpg"}
    assert gaps["yuv422.jpg"] > 10 and min(gaps.values()) >= 1, gaps
    # lossless files: the same pixels either way (alpha dropped, 16 bits cut to their high byte)
    for p in PNGS:
        assert np.array_equal(evaluate.read_as_darknet(p, "opencv"), alexeyab_pixels(p)), p.name


def loaded_by_darknet(darknet_bin: str, image: Path, tmp_path: Path) -> np.ndarray:
    """The pixels a pjreddie darknet's load_image_color gives for image, as BGR u8: `classifier
    predict` on a network of one 1x1 maxpool (output = input) at the image's own size (its
    letterbox is then the identity), every output printed as a "class" in % with 2 decimals,
    enough to tell the 256 levels of x/255 apart."""
    height, width = cv2.imread(str(image), cv2.IMREAD_COLOR).shape[:2]
    n = width * height * 3
    cfg, names, data, weights = (tmp_path / f"identity.{ext}" for ext in ("cfg", "names", "data", "weights"))
    cfg.write_text(f"[net]\nbatch=1\nsubdivisions=1\nwidth={width}\nheight={height}\nchannels=3\n\n"
                   "[maxpool]\nsize=1\nstride=1\n")
    names.write_text("".join(f"{i}\n" for i in range(n)))
    data.write_text(f"classes={n}\nnames={names}\ntop={n}\n")
    weights.write_bytes(struct.pack("<iiiQ", 0, 2, 0, 0))  # header only: a maxpool has no weights
    ran = subprocess.run([darknet_bin, "classifier", "predict", str(data), str(cfg), str(weights), str(image)],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    percent = np.full(n, np.nan)
    for line in ran.stdout.splitlines():
        value, index = line.split("%: ")
        percent[int(index)] = float(value)
    assert not np.isnan(percent).any()
    chw = np.rint(percent * 255 / 100).astype(np.uint8).reshape(3, height, width)  # RGB planes
    return np.ascontiguousarray(chw[::-1].transpose(1, 2, 0))


@pytest.mark.darknet
def test_debian_darknet_reads_images_with_opencv(darknet_bin, tmp_path):
    """Debian builds darknet with OpenCV: its load_image is cv::imread, EXIF orientation included.
    So the CI reference (test_reference_map.py) is matched with decoder="opencv", and stb's
    pixels can only be checked against the stored AlexeyAB ones above."""
    for path in FILES:
        theirs = loaded_by_darknet(darknet_bin, path, tmp_path)
        assert np.array_equal(theirs, evaluate.read_as_darknet(path, "opencv")), path.name
        if path.suffix == ".jpg":
            stb = evaluate.read_as_darknet(path, "stb")
            assert theirs.shape != stb.shape or not np.array_equal(theirs, stb), path.name


@pytest.mark.parametrize("decoder", evaluate.DECODERS)
def test_unreadable_images_are_input_errors_naming_the_file(tmp_path, decoder):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all\n")
    broken = tmp_path / "broken.png"  # a sound header, then pixel data that is not zlib
    png = (DATA / "rgba.png").read_bytes()
    broken.write_bytes(png[:png.index(b"IDAT") + 4] + bytes(64) + png[-12:])
    for path in (text, broken, tmp_path / "missing.jpg"):
        with pytest.raises(InputError, match="not a readable image") as caught:
            evaluate.read_as_darknet(path, decoder)
        assert str(path) in str(caught.value)


def test_unknown_decoder_is_an_input_error():
    with pytest.raises(InputError, match="unknown image decoder 'pillow'"):
        evaluate.read_as_darknet(DATA / "yuv420.jpg", "pillow")


def test_evaluate_stops_with_exit_2_on_an_image_it_cannot_decode(run_cli, tmp_path):
    demo = Path(__file__).resolve().parents[2] / "demo"
    images = tmp_path / "img"
    images.mkdir()
    png = (DATA / "rgba.png").read_bytes()
    bad = images / "broken.png"  # its header gives a size, so ground truth is read; decoding fails
    bad.write_bytes(png[:png.index(b"IDAT") + 4] + bytes(64) + png[-12:])
    (images / "broken.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "valid.txt").write_text(f"{bad}\n")
    data = tmp_path / "v.data"
    data.write_text(f"classes=6\nvalid={tmp_path / 'valid.txt'}\nnames={demo / 'demo.names'}\n")
    ran = run_cli("model_tools", "evaluate", data, demo / "demo.cfg", "--weights", demo / "demo.weights",
                  "--mode", "reference", "--out", tmp_path / "ev", "--no-plots")
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert "not a readable image" in ran.stderr and str(bad) in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not list((tmp_path / "ev").rglob("detections-*"))


def test_libstb_is_a_training_box_dependency_only():
    import configparser

    setup = configparser.ConfigParser()
    setup.read(DATA.parents[2] / "setup.cfg")
    extras = setup["options.extras_require"]
    assert "libstb" in extras["train"]
    assert all("libstb" not in text for text in (setup["options"]["install_requires"], extras["pi"], extras["cpu"]))
    edge = DATA.parents[2] / "edge_app"
    assert [p.name for p in edge.rglob("*.py") if "libstb" in p.read_text()] == []
