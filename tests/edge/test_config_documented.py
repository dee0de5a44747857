"""systemd/edge-app.toml is the configuration's documentation: it names every key of every
section (commented out or set), and as shipped it is a valid configuration."""
from __future__ import annotations

import re
from dataclasses import fields

from edge_app import config as edge_config
from tests.conftest import REPO

SAMPLE = REPO / "systemd/edge-app.toml"


def documented_keys():
    keys, section = set(), None
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        header = re.match(r"\s*#?\s*\[(\w+)\]\s*$", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"\s*#?\s*(\w+)\s*=", line)
        if key and section:
            keys.add(f"{section}.{key.group(1)}")
    return keys


def test_the_sample_config_documents_every_key():
    defaults = edge_config.Config()
    every = {f"{section}.{f.name}" for section in edge_config.SECTIONS
             for f in fields(getattr(defaults, section))}
    missing = sorted(every - documented_keys())
    assert not missing, f"systemd/edge-app.toml does not document: {', '.join(missing)}"
    unknown = sorted(documented_keys() - every)
    assert not unknown, f"systemd/edge-app.toml documents keys that do not exist: {unknown}"


def test_the_sample_config_is_valid():
    config = edge_config.load(str(SAMPLE))
    assert config.model.path and config.mqtt.topic_prefix
