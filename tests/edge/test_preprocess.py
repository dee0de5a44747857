"""darknet's resize arithmetic: the fast table version against a line-by-line transcription of
darknet's resize_image loops in float32, and its place in the metadata contract."""
import json

import numpy as np
import pytest

from edge_app import metadata, preprocess
from edge_app.errors import InputError

F = np.float32


def darknet_resize_transcribed(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """darknet's image.c resize_image, loop for loop, every operation in float32 (C float)."""
    im_h, im_w, channels = im.shape
    part = np.zeros((im_h, w, channels), F)
    resized = np.zeros((h, w, channels), F)
    w_scale = F(im_w - 1) / F(w - 1)
    h_scale = F(im_h - 1) / F(h - 1)
    for k in range(channels):
        for r in range(im_h):
            for c in range(w):
                if c == w - 1 or im_w == 1:
                    val = F(im[r, im_w - 1, k])
                else:
                    sx = F(c) * w_scale
                    ix = int(sx)
                    dx = F(sx - F(ix))
                    val = F(F(F(1) - dx) * F(im[r, ix, k])) + F(dx * F(im[r, ix + 1, k]))
                part[r, c, k] = val
    for k in range(channels):
        for r in range(h):
            sy = F(r) * h_scale
            iy = int(sy)
            dy = F(sy - F(iy))
            for c in range(w):
                resized[r, c, k] = F(F(1) - dy) * part[iy, c, k]
            if r == h - 1 or im_h == 1:
                continue
            for c in range(w):
                resized[r, c, k] = F(resized[r, c, k] + F(dy * part[iy + 1, c, k]))
    return resized


@pytest.mark.parametrize("in_size, out_size", [((37, 23), (16, 12)), ((7, 5), (16, 13)), ((64, 48), (41, 41)),
                                               ((20, 30), (20, 17))])
def test_table_resize_is_darknets_arithmetic_bit_for_bit(in_size, out_size):
    rng = np.random.default_rng(sum(in_size + out_size))
    image_u8 = rng.integers(0, 256, (in_size[1], in_size[0], 3), dtype=np.uint8)
    # darknet loads pixels as (float)(byte / 255.)
    unit = (image_u8.astype(np.float64) / 255.0).astype(F)
    expected = darknet_resize_transcribed(unit, *out_size)
    got = preprocess.darknet_resize(unit, *out_size)
    assert got.dtype == F and got.shape == expected.shape
    assert np.array_equal(got, expected)
    # the device's u8 path: the same arithmetic on 0..255, rounded once
    on_255 = darknet_resize_transcribed(image_u8.astype(F), *out_size)
    device = preprocess.resize(image_u8, *out_size, "darknet")
    assert device.dtype == np.uint8
    assert np.abs(device.astype(F) - on_255).max() <= 0.5 + 1e-4


def test_darknet_and_opencv_sample_at_different_places():
    ramp = np.tile(np.arange(0, 250, 10, dtype=np.uint8)[None, :, None], (4, 1, 3))  # 25 columns
    dk = preprocess.resize(ramp, 13, 4, "darknet")
    cv = preprocess.resize(ramp, 13, 4, "opencv-linear")
    # corners aligned: darknet's first and last columns are the input's first and last
    assert dk[0, 0, 0] == 0 and dk[0, -1, 0] == 240
    assert cv[0, -1, 0] != 240
    assert not np.array_equal(dk, cv)


def test_float_input_keeps_darknets_values_and_letterbox_pad():
    frame = np.random.default_rng(3).integers(0, 256, (30, 60, 3), dtype=np.uint8)
    tensor = preprocess.prepare_float(frame, 32, 32, "letterbox")
    assert tensor.shape == (1, 32, 32, 3) and tensor.dtype == F
    assert tensor[0, 0, 0, 0] == F(0.5) * F(255)  # darknet pads with 0.5
    unit = (frame.astype(np.float64) / 255.0).astype(F)
    inner = darknet_resize_transcribed(unit, 32, 16)
    assert np.array_equal(tensor[0, 8:24], inner * F(255))


def test_metadata_records_interpolation_and_old_files_keep_theirs(exported, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(exported("tiny-224x160", fp16=True, resize_mode="resize")[0], model_dir)
    info = metadata.load(model_dir)
    assert info.interpolation == "darknet" and info.raw["schema_version"] == metadata.SCHEMA_VERSION
    data = json.loads(info.path.read_text())
    del data["interpolation"]
    data["schema_version"] = "1.0"
    info.path.write_text(json.dumps(data))
    assert metadata.load(model_dir).interpolation == "opencv-linear"
    data["interpolation"] = "bicubic"
    info.path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown interpolation"):
        metadata.load(model_dir)


# --- the compiled resize (edge_app.native) and its numpy fallback ---------------------------

NATIVE_SIZES = [((37, 23), (16, 12)), ((7, 5), (16, 13)), ((64, 48), (41, 41)), ((20, 30), (20, 17)),
                ((640, 480), (416, 416)), ((1, 1), (3, 2)), ((2, 9), (1, 1)), ((5, 1), (4, 3)),
                ((640, 480), (416, 312)), ((33, 17), (33, 17 * 3)),
                # byte shuffles: a 16-byte window fits some groups of 4 elements but not others
                # (1280 -> 416), none (1920 -> 416: the plain path), or no row at all (5 wide)
                ((1280, 720), (416, 416)), ((1920, 1080), (416, 234)), ((5, 40), (17, 9))]


@pytest.fixture
def native_lib():
    from edge_app import native

    lib = native.library()
    if lib is None:
        pytest.skip(f"compiled resize not available: {native.status()}")
    return lib


def test_ci_builds_the_compiled_resize():
    """scripts/test.sh sets EDGE_REQUIRE_NATIVE=1: there the library must load, so the tests of
    the compiled path above cannot all be skipped unnoticed."""
    import os

    from edge_app import native

    if os.environ.get("EDGE_REQUIRE_NATIVE") != "1":
        pytest.skip("EDGE_REQUIRE_NATIVE is not set")
    assert native.library() is not None, native.status()


@pytest.fixture(params=["plain", "128", "best"])
def simd_level(request, native_lib):
    """Every instruction-set level of the compiled resize (see dkresize.c) this CPU has."""
    from edge_app import native

    wanted = native.SIMD_LEVELS[request.param]
    if native_lib.dk_set_simd(wanted) != wanted and request.param != "best":
        native_lib.dk_set_simd(2)
        pytest.skip(f"this CPU has no {request.param} level")
    yield request.param
    native_lib.dk_set_simd(2)


@pytest.mark.parametrize("in_size, out_size", NATIVE_SIZES)
@pytest.mark.parametrize("channels", [3, 1, 4])
def test_compiled_resize_gives_the_numpy_values(native_lib, simd_level, in_size, out_size, channels):
    rng = np.random.default_rng(sum(in_size + out_size) + channels)
    image_u8 = rng.integers(0, 256, (in_size[1], in_size[0], channels), dtype=np.uint8)
    unit = (image_u8.astype(np.float64) / 255.0).astype(F)
    # float: darknet's values bit for bit
    got = preprocess.darknet_resize(unit, *out_size)
    assert got.shape == (out_size[1], out_size[0], channels)
    assert np.array_equal(got, preprocess._darknet_resize_numpy(unit, *out_size))
    # u8: the same float values rounded the same way (half to even)
    device = preprocess.darknet_resize(image_u8, *out_size, u8=True)
    assert np.array_equal(device, preprocess._darknet_resize_numpy(image_u8, *out_size, True))
    if max(in_size) <= 64 and min(out_size) > 1:  # the transcription divides by out - 1
        assert np.array_equal(preprocess.darknet_resize(unit, *out_size), darknet_resize_transcribed(unit, *out_size))


def test_compiled_resize_rounds_half_to_even(native_lib):
    # a 2-pixel row stretched to 3: the middle column is exactly halfway between its neighbours
    image = np.array([[[1], [2]], [[4], [7]]], np.uint8)
    got = preprocess.darknet_resize(image, 3, 2, u8=True)
    assert got[:, 1, 0].tolist() == [2, 6]  # 1.5 → 2, 5.5 → 6 (cvRound: half to even)
    assert got[:, 1, 0].tolist() == preprocess._darknet_resize_numpy(image, 3, 2, True)[:, 1, 0].tolist()


def test_compiled_resize_takes_views_of_a_frame(native_lib):
    frame = np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    view = frame[10:110, 20:150]  # rows not contiguous with each other
    assert np.array_equal(preprocess.darknet_resize(view, 64, 48, u8=True),
                          preprocess._darknet_resize_numpy(np.ascontiguousarray(view), 64, 48, True))
    flipped = frame[:, ::-1]  # negative column stride: copied first
    assert np.array_equal(preprocess.darknet_resize(flipped, 64, 48, u8=True),
                          preprocess._darknet_resize_numpy(np.ascontiguousarray(flipped), 64, 48, True))


def test_numpy_fallback_when_the_library_is_off(monkeypatch):
    from edge_app import native

    frame = np.random.default_rng(6).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    monkeypatch.setenv("EDGE_APP_NATIVE", "0")
    native.reset()
    try:
        assert native.library() is None and "EDGE_APP_NATIVE=0" in native.status()
        assert np.array_equal(preprocess.resize(frame, 32, 24, "darknet"),
                              preprocess._darknet_resize_numpy(frame, 32, 24, True))
    finally:
        monkeypatch.delenv("EDGE_APP_NATIVE")
        native.reset()


def test_a_library_built_for_another_machine_is_refused_with_a_reason(tmp_path, monkeypatch):
    from edge_app import native

    fake = tmp_path / "_dkresize.cpython-39-arm-linux-gnueabihf.so"
    fake.write_bytes(b"\x7fELF not really")
    monkeypatch.setattr(native.LIBRARY, "folder", tmp_path)
    native.reset()
    try:
        assert native.library() is None
        assert "cannot be loaded" in native.status() and "reinstall edge_app" in native.status()
    finally:
        monkeypatch.undo()
        native.reset()


def test_an_unknown_simd_level_is_refused_with_a_reason(monkeypatch, native_lib):
    from edge_app import native

    monkeypatch.setenv("EDGE_APP_NATIVE_SIMD", "avx512")
    native.reset()
    try:
        assert native.library() is None
        assert "EDGE_APP_NATIVE_SIMD='avx512' is not one of plain, 128, best" in native.status()
    finally:
        monkeypatch.delenv("EDGE_APP_NATIVE_SIMD")
        native.reset()
    assert native.library() is not None
