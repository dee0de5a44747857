import numpy as np
import pytest

from edge_app.errors import InputError
from model_tools import anchors, cfg, cfggen


def test_generated_cfg_parses_and_fits_the_region(tmp_path):
    path = tmp_path / "logos.cfg"
    path.write_text(cfggen.tiny_yolov2(cfggen.TinySpec(classes=27, width=224, height=160, train_images=810)))
    net = cfg.load(path)
    assert (net.width, net.height) == (224, 160) and net.region.classes == 27
    assert net.layers[-2].filters == (27 + 5) * 5 and net.region.in_shape[1:] == (5, 7)
    text = path.read_text()
    assert "max_batches=54000" in text and "steps=43200,48600" in text  # 27 * 2000, 80% / 90%


def test_schedule_rule_of_thumb():
    assert cfggen.schedule(1, 100) == (6000, (4800, 5400))  # at least 6000
    assert cfggen.schedule(2, 9000) == (9000, (7200, 8100))  # at least the number of images
    assert cfggen.schedule(27, 810) == (54000, (43200, 48600))


def test_slim_variant_and_bad_sizes():
    slim = cfggen.tiny_yolov2(cfggen.TinySpec(classes=3, width_multiplier=0.25))
    assert "filters=8\n" in slim and "filters=256\n" in slim
    with pytest.raises(InputError, match="multiple of 32"):
        cfggen.tiny_yolov2(cfggen.TinySpec(classes=3, width=300))
    with pytest.raises(InputError, match="not divisible"):
        cfggen.tiny_yolov2(cfggen.TinySpec(classes=3, batch=64, subdivisions=3))


def test_kmeans_recovers_known_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, 1.0], [3.0, 1.5], [2.0, 4.0]])
    sizes = np.concatenate([c * rng.uniform(0.95, 1.05, (200, 2)) for c in centres])
    found, avg_iou = anchors.kmeans(sizes, 3)
    np.testing.assert_allclose(found, centres, rtol=0.05)
    assert avg_iou > 0.9
    with pytest.raises(InputError):
        anchors.kmeans(sizes[:2], 5)
