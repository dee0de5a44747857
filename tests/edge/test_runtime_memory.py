"""What loading a model leaves in the process (benchmarks/bench_rss.py has the figures): only the
configured device's OpenVINO plugin. The probes run in a fresh interpreter: the test process has
loaded other plugins and models already."""
import json
import os
import subprocess
import sys

from tests.conftest import REPO


def probe(code, *args):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


LOAD_ON_CPU = """
import json, re, sys
from edge_app.detector import Detector
detector = Detector(sys.argv[1], "CPU")  # alive: 2022.1 unloads plugins with their Core
print(json.dumps(sorted(set(re.findall(r"libopenvino_intel_\\w+_plugin\\.so", open("/proc/self/maps").read())))))
"""


def test_loading_a_model_on_cpu_loads_no_other_device_plugin(exported):
    # every OpenVINO wheel here ships a GPU plugin: asking for the list of all devices loads it
    # (and NPU's on current releases), 14-29 MiB that stay in the daemon for nothing. Device
    # plugins only: compiling may load the AUTO/BATCH meta-plugins, which are small
    plugins = probe(LOAD_ON_CPU, exported("tiny-224x160", fp16=True)[0])
    assert plugins == ["libopenvino_intel_cpu_plugin.so"]
