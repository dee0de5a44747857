"""The events, snapshots, discovery and live sections: documented in the example config with
their defaults, bad values reported with their key paths."""
import re
from dataclasses import fields

import pytest

from edge_app import config
from edge_app.errors import InputError
from tests.conftest import REPO


@pytest.mark.parametrize("section", ["events", "snapshots", "discovery", "live"])
def test_every_key_is_in_the_example_config_with_its_default(section):
    text = (REPO / "systemd/edge-app.toml").read_text()
    block = text.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
    example = config.load(str(REPO / "systemd/edge-app.toml"))
    defaults = getattr(config.Config(), section)
    for f in fields(defaults):
        assert re.search(rf"^{f.name} = ", block, re.M), f"{section}.{f.name} not documented"
        assert getattr(getattr(example, section), f.name) == getattr(defaults, f.name), f"{section}.{f.name}"


def test_live_view_is_off_and_local_by_default():
    c = config.Config()
    assert c.live.enabled is False and c.live.host == "127.0.0.1"


def test_bad_values_are_listed_with_their_keys():
    with pytest.raises(InputError) as info:
        config.build({"model": {"path": "m"}, "events": {"iou_threshold": 0, "min_hits": 0, "qos": 5},
                      "snapshots": {"max_bytes": 10, "quality": 0},
                      "discovery": {"prefix": "home/#"}, "live": {"port": 0, "max_fps": 0, "hots": "x"}})
    text = info.value.what
    for key in ("events.iou_threshold", "events.min_hits", "events.qos", "snapshots.max_bytes",
                "snapshots.quality", "discovery.prefix", "live.port", "live.max_fps"):
        assert key in text, key
    assert "live.hots: unknown key (did you mean 'host'?)" in text
