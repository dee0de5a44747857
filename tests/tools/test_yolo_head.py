"""A network trained with a [yolo] head is deployed as the equivalent [region] (Tiny YOLOv2)
model. Proof against the darknet binary: darknet's own detections with the [yolo] cfg equal
ours from the IR exported with the converted [region] cfg, same weights."""
import pytest

from edge_app.detector import Detector
from model_tools import cfg, cfggen, export, weights
from tests.edge.test_darknet import BOX_TOL, NMS, SCORE_TOL, THRESH, compare, darknet_valid, ours_as_darknet_prints


@pytest.mark.darknet
@pytest.mark.parametrize("size", [(224, 160), (416, 416)])
def test_yolo_head_equals_its_region_conversion(size, tmp_path, darknet_bin, net_size_photos):
    width, height = size
    spec = cfggen.TinySpec(classes=4, width=width, height=height, width_multiplier=0.5, head="yolo",
                           anchors=(0.8, 1.0, 1.6, 2.4, 3.2, 2.8, 4.0, 4.4, 6.0, 4.5))
    yolo_cfg = tmp_path / "y.cfg"
    yolo_cfg.write_text(cfggen.tiny_yolov2(spec))
    region_cfg = tmp_path / "r.cfg"
    region_cfg.write_text(cfggen.to_region(yolo_cfg.read_text(), str(yolo_cfg)))
    net = cfg.load(region_cfg)
    assert not net.region.softmax and net.region.anchors == pytest.approx(spec.anchors)
    w = weights.random(net, seed=4)
    weights_path = tmp_path / "w.weights"
    weights.write(weights_path, w)
    names = tmp_path / "names"
    names.write_text("a\nb\nc\nd\n")
    export.export(net, w, ["a", "b", "c", "d"], tmp_path / "m", fp16=False, resize_mode="letterbox",
                  cfg_path=str(region_cfg), weights_path=str(weights_path))
    images = net_size_photos(width, height)
    theirs = darknet_valid(darknet_bin, yolo_cfg, weights_path, names, images, tmp_path / "dk")
    ours = ours_as_darknet_prints(Detector(tmp_path / "m", conf_threshold=THRESH, nms_threshold=NMS), images)
    matched, only_theirs, only_ours, worst_score, worst_box = compare(ours, theirs)
    print(f"{width}x{height}: {matched} matched, worst score {worst_score:.1e}, box {worst_box:.3f} px")
    assert matched > 500 and not only_theirs and not only_ours
    assert worst_score <= SCORE_TOL and worst_box <= BOX_TOL
