import pytest

from edge_app.errors import InputError
from model_tools import cfg
from model_tools.cfg import MaxPool, Reorg, Route
from tests.conftest import DARKNET_SHARE, TEST_CFGS

TINY = """[net]
width=416
height=416
channels=3

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
size=1
stride=1
pad=1
filters=35
activation=linear

[region]
anchors=1,1, 2,2, 3,3, 4,4, 5,5
classes=2
num=5
softmax=1
"""


def plan(text, name="t.cfg"):
    return cfg.plan(cfg.parse_text(text, name), name)


def error_of(text):
    with pytest.raises(InputError) as info:
        plan(text)
    return info.value


@pytest.mark.parametrize("name, size, grid, params", [
    ("yolov2-tiny-voc", (416, 416), (125, 13, 13), 15867885),
    ("yolov2-tiny", (416, 416), (425, 13, 13), 11237145),
    ("yolov2-voc", (416, 416), (125, 13, 13), 50676061),
    ("yolov2", (608, 608), (425, 19, 19), 50983561),
])
def test_darknet_yolov2_cfgs(name, size, grid, params):
    net = cfg.load(DARKNET_SHARE / f"cfg/{name}.cfg")
    assert (net.width, net.height) == size
    assert net.region.in_shape == grid
    # yolov2-tiny-voc: 63,471,540 bytes of floats, i.e. darkflow's 63,471,556 minus its 16-byte header
    assert net.param_count == params


def test_yolov2_voc_route_and_reorg_shapes():
    net = cfg.load(DARKNET_SHARE / "cfg/yolov2-voc.cfg")
    routes = [l for l in net.layers if isinstance(l, Route)]
    reorg = next(l for l in net.layers if isinstance(l, Reorg))
    assert routes[0].sources == (16,) and routes[0].out_shape == (512, 26, 26)
    assert reorg.in_shape == (64, 26, 26) and reorg.out_shape == (256, 13, 13)
    assert routes[1].sources == (27, 24) and routes[1].out_shape == (1280, 13, 13)


def test_custom_non_square_cfg():
    net = cfg.load(TEST_CFGS["tiny-224x160"])
    assert (net.width, net.height) == (224, 160)
    assert net.region.in_shape == (40, 5, 7)
    pool = [l for l in net.layers if isinstance(l, MaxPool)][-1]
    assert (pool.size, pool.stride, pool.padding) == (2, 1, 1) and pool.out_shape == (128, 5, 7)


def test_darknet_line_rules():
    text = TINY.replace("filters=16", "  filters = 16   # inline comment").replace(
        "[maxpool]", "; a comment\n[max]")
    net = plan(text)
    assert isinstance(net.layers[1], MaxPool) and net.layers[0].filters == 16


def test_last_filters_must_fit_region():
    err = error_of(TINY.replace("filters=35", "filters=30"))
    assert err.where == "t.cfg:22"  # the filters= line
    assert "(2 + 4 + 1) * 5 = 35" in err.what and "filters=35" in err.fix


def test_input_size_must_be_a_multiple_of_the_total_stride():
    err = error_of(TINY.replace("width=416", "width=417"))
    assert err.where == "t.cfg:2" and "multiple of 2" in err.what
    with pytest.raises(InputError) as info:
        cfg.plan(cfg.parse_text((DARKNET_SHARE / "cfg/yolov2-tiny-voc.cfg").read_text()
                                .replace("width=416", "width=400"), "v.cfg"), "v.cfg")
    assert "not a multiple of 32" in info.value.what and "416x416" in info.value.fix


def test_unknown_section_suggests_the_right_one():
    err = error_of(TINY.replace("[maxpool]", "[maxpoll]"))
    assert err.where == "t.cfg:14" and "did you mean 'maxpool'" in err.what


def test_unsupported_layer_is_named():
    err = error_of(TINY.replace("[region]", "[yolo]"))
    assert "[yolo] is not supported" in err.what and err.where == "t.cfg:25"


def test_missing_option():
    err = error_of(TINY.replace("width=416\n", ""))
    assert "needs option 'width'" in err.what and err.where == "t.cfg:1"


def test_unknown_option_suggests_spelling():
    err = error_of(TINY.replace("batch_normalize=1", "batch_normalise=1"))
    assert "did you mean 'batch_normalize'" in err.what and err.where == "t.cfg:7"


@pytest.mark.parametrize("change, fragment", [
    (("activation=leaky", "activation=swish"), "activation 'swish'"),
    (("[net]", "[net\n"), "malformed section header"),
    (("classes=2", "classes=2\nclasses=3"), "set twice"),
    (("anchors=1,1, 2,2, 3,3, 4,4, 5,5", "anchors=1,1"), "2 anchor values"),
    (("stride=2", "stride=2\ngroups=2"), "unknown option 'groups'"),
    (("filters=16", "filters=sixteen"), "must be an integer"),
    (("activation=linear", "activation=leaky"), "must use activation=linear"),
])
def test_malformed_cfgs(change, fragment):
    err = error_of(TINY.replace(*change))
    assert fragment in err.what and err.where.startswith("t.cfg")


def test_route_out_of_range():
    text = TINY.replace("[convolutional]\nsize=1", "[route]\nlayers=-5\n\n[convolutional]\nsize=1")
    err = error_of(text)
    assert "route refers to layer -5" in err.what


def test_unsupported_option_value():
    text = TINY.replace("activation=leaky", "activation=leaky\ndilation=2")
    err = error_of(text)
    assert "dilation=2 is not supported" in err.what and err.where == "t.cfg:13"
