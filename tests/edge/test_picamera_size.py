"""The size the Pi camera is asked for (no camera here: the decision is a pure function, and
make_source hands the model's size to the picamera2 source)."""
from edge_app.capture import Picamera2Source, make_source, picamera_size
from edge_app.config import SourceConfig
from edge_app.preprocess import letterbox_size

V2_SENSOR = (3280, 2464)  # Camera Module v2, 4:3
V3_SENSOR = (4608, 2592)  # Camera Module 3, 16:9


def test_resize_mode_gets_the_network_size():
    assert picamera_size((0, 0), (416, 416, "resize"), V2_SENSOR) == (416, 416)
    assert picamera_size((0, 0), (224, 160, "resize"), V3_SENSOR) == (224, 160)


def test_letterbox_mode_gets_the_scaled_image_inside_the_letterbox():
    # the host then only pads: letterbox_size of the delivered frame is the frame itself
    for sensor in (V2_SENSOR, V3_SENSOR):
        width, height = picamera_size((0, 0), (416, 416, "letterbox"), sensor)
        assert width % 2 == 0 and height % 2 == 0
        assert letterbox_size(width, height, 416, 416) == (width, height)
    assert picamera_size((0, 0), (416, 416, "letterbox"), V2_SENSOR) == (416, 312)
    assert picamera_size((0, 0), (416, 416, "letterbox"), V3_SENSOR) == (416, 234)


def test_a_size_the_user_set_is_kept_and_no_model_means_the_default():
    assert picamera_size((1280, 720), (416, 416, "resize"), V2_SENSOR) == (1280, 720)
    assert picamera_size((0, 0), None, V2_SENSOR) == (640, 480)


def test_make_source_hands_the_network_to_the_pi_camera():
    source = make_source(SourceConfig(uri="picamera2"), (416, 416, "resize"))
    assert isinstance(source, Picamera2Source) and source.network == (416, 416, "resize")
