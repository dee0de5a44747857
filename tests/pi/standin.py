"""Stand-ins for Intel's OpenVINO runtime archives, which cannot be downloaded here.

As small as possible: the layout (top folder, setupvars.sh, runtime/lib/<arch>/ with
plugins.xml and the plugin libraries as empty files) is what the installer inspects; there is
no Python runtime inside, so a device installed from one runs the OpenCV-DNN engine.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Iterable

SETUPVARS = """#!/bin/bash
# STAND-IN for OpenVINO's setupvars.sh (tests/pi/standin.py): like the real one, it parses
# (and so consumes) the positional parameters of the script that sources it.
while [ $# -gt 0 ]; do shift; done
export INTEL_OPENVINO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
echo "[setupvars.sh] OpenVINO environment initialized (stand-in)"
"""


def archive(path: Path, top: str, plugins: Iterable[str], arch: str = "armv7l") -> Path:
    """Write a .tgz stand-in with these plugin library names under runtime/lib/<arch>/."""
    plugins = list(plugins)
    entries = {f"{top}/setupvars.sh": SETUPVARS.encode()}
    xml = "".join(f'  <plugin name="{name}" location="{lib}"/>\n' for name, lib in
                  ((p.split("_")[-2].upper() if p.startswith("libopenvino_") else p, p)
                   for p in plugins if "lugin" in p))
    entries[f"{top}/runtime/lib/{arch}/plugins.xml"] = \
        f"<ie>\n <plugins>\n{xml} </plugins>\n</ie>\n".encode()
    for lib in plugins:
        entries[f"{top}/runtime/lib/{arch}/{lib}"] = b""  # empty: a name, not a library
    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


# what the real archives hold (docs/ncs2-runtimes.md): 2022.3 armhf has the ARM CPU plugin and
# no MYRIAD; the 2022.1 Raspbian runtime has MYRIAD
PLUGINS_2022_3_ARMHF = ("libopenvino_arm_cpu_plugin.so", "libopenvino_auto_plugin.so")
PLUGINS_2022_1_RASPBIAN = ("libopenvino.so", "libopenvino_intel_myriad_plugin.so",
                           "libopenvino_hetero_plugin.so")
PLUGINS_2021_4_RASPBIAN = ("libinference_engine.so", "libmyriadPlugin.so", "libHeteroPlugin.so")
