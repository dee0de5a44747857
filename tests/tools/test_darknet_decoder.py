"""evaluate's reference mode reads images as the darknet it reproduces does. The expected pixels
are the RGB bytes stb_image v2.30 (the copy AlexeyAB darknet ships in 3rdparty/stb, commit 59596d78)
decodes from these files with req_comp = 3, as darknet's load_image_stb asks; measured once on the
lead's machine by a throwaway program linked against that header, recorded here as sha256."""
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.errors import InputError
from model_tools import evaluate

JPEGS = Path(__file__).resolve().parents[1] / "data" / "jpeg"
DARKNET_STB_RGB_SHA256 = {
    "yuv420.jpg": "1f88d0bde046f53b5dc6c1a56560017c8a4dfd7224bc0a7e6739f518af8a5acb",
    "yuv422.jpg": "85702193495a4a3e3f0d1138b4a3bb7400a09b534bc8a235a382300abce3c2a2",
    "yuv444.jpg": "c832a68349c28cbf46d70d5b87f811edd0d9fa38431c210894d8c7e8c5ba4562",
    "progressive.jpg": "b094bf0aa3221e1d906563b09f20e817a02d381aabae361fb648cd3430721b94",
    "gray.jpg": "c4a31102a82d530b039b93682cdc0b6df5130799d7f734827d5215b0fb52df3b",  # grey → 3 equal channels
}


def rgb_digest(bgr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(bgr[:, :, ::-1]).tobytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(DARKNET_STB_RGB_SHA256))
def test_stb_decoder_gives_darknets_pixels(name):
    frame = evaluate.read_as_darknet(JPEGS / name, "stb")
    assert frame.shape == (45, 61, 3) and frame.dtype == np.uint8
    assert rgb_digest(frame) == DARKNET_STB_RGB_SHA256[name]


def test_opencv_decoder_differs_from_stb_on_jpeg_and_agrees_on_png(tmp_path):
    # the check above can tell the decoders apart: libjpeg-turbo's pixels are not stb_image's
    differing = [n for n in DARKNET_STB_RGB_SHA256
                 if rgb_digest(evaluate.read_as_darknet(JPEGS / n, "opencv")) != DARKNET_STB_RGB_SHA256[n]]
    assert len(differing) >= 3, differing
    # a lossless file decodes the same either way
    png = tmp_path / "same.png"
    cv2.imwrite(str(png), evaluate.read_as_darknet(JPEGS / "yuv420.jpg", "opencv"))
    assert np.array_equal(evaluate.read_as_darknet(png, "stb"), evaluate.read_as_darknet(png, "opencv"))


@pytest.mark.parametrize("decoder", evaluate.DECODERS)
def test_unreadable_image_names_the_file(tmp_path, decoder):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="not a readable image") as err:
        evaluate.read_as_darknet(bad, decoder)
    assert str(bad) in str(err.value)


def test_unknown_decoder_is_an_input_error():
    with pytest.raises(InputError, match="unknown image decoder"):
        evaluate.read_as_darknet(JPEGS / "yuv420.jpg", "pillow")
