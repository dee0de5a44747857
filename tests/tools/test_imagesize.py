"""Image sizes from headers equal the decoded sizes; odd files fall back to decoding."""
import cv2
import numpy as np
import pytest

from model_tools import imagesize


@pytest.mark.parametrize("suffix, params", [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                                            (".png", []), (".bmp", [])])
@pytest.mark.parametrize("size", [(320, 240), (17, 301), (1, 1)])
def test_header_size_equals_decoded_size(tmp_path, suffix, params, size):
    image = np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / f"x{suffix}"
    cv2.imwrite(str(path), image, params)
    assert imagesize.image_size(path) == size
    if suffix != ".bmp":
        assert imagesize.header_size(path) == size


def test_jpeg_with_exif_and_garbage(tmp_path):
    ok, data = cv2.imencode(".jpg", np.zeros((30, 50, 3), np.uint8))
    data = data.tobytes()
    app1 = b"\xff\xe1" + (2 + 10).to_bytes(2, "big") + b"Exif\0\0\xff\xd9\xff\xc0"  # markers inside a segment
    path = tmp_path / "exif.jpg"
    path.write_bytes(data[:2] + app1 + data[2:])
    assert imagesize.header_size(path) == (50, 30)
    (tmp_path / "cut.jpg").write_bytes(data[:6])
    assert imagesize.header_size(tmp_path / "cut.jpg") is None
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(ValueError):
        imagesize.image_size(tmp_path / "text.jpg")
