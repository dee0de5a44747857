"""What loading a model leaves in the process (benchmarks/bench_rss.py has the figures): only the
configured device's OpenVINO plugin, none of the IR's weights file pages that OpenVINO keeps
mapped but no longer reads, and none of the pages of read-only file mappings (libraries' code)
that compiling read. The probes run in a fresh interpreter: the test process has loaded
other plugins and models already."""
import inspect
import json
import mmap
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from edge_app import metadata
from edge_app.detector import Detector
from edge_app.filepages import page_out, read_only_mappings
from edge_app.runtime import CPU_STREAMS_SHARE_WEIGHTS, openvino_api, performance_hint, release
from edge_app.widen import cache_folder, widen_f16, widened_path, widened_weights
from tests.conftest import REPO

PAGE = mmap.PAGESIZE


def resident_kib(path):
    """Resident kB of every mapping of `path` in a process; None if it maps no part of it."""
    target, total, inside = os.path.realpath(path), None, False
    with open("/proc/self/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                inside = len(fields) >= 6 and fields[5] == target
            elif inside and fields[0] == "Rss:":
                total = (total or 0) + int(fields[1])
    return total


def written(path, data):
    """`data` in a file, on disk: the kernel reclaims no dirty page (one not written back yet)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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


PAGED_OUT = """
import json, os, sys
import cv2, numpy as np
from edge_app.detector import Detector
""" + inspect.getsource(resident_kib) + """
detector = Detector(sys.argv[1], "CPU")
resident = resident_kib(detector.info.bin)
np.save(sys.argv[3], detector.raw(cv2.imread(sys.argv[2])))
after_inference = resident_kib(detector.info.bin)
detector.adapter.export_blob()  # reads the model's constants again: from the file
print(json.dumps({"size_kib": detector.info.bin.stat().st_size // 1024, "resident": resident,
                  "after_inference": after_inference}))
"""


def test_the_weights_file_pages_openvino_keeps_mapped_leave_memory_and_come_back_intact(
        exported, net_size_photos, tmp_path):
    model = tmp_path / "model"  # a file of its own: pages another mapping shares are not reclaimed
    shutil.copytree(exported("tiny-224x160", fp16=True, resize_mode="resize")[0], model)
    photo = net_size_photos(224, 160)[1]
    report = probe(PAGED_OUT, model, photo, tmp_path / "raw.npy")
    # current OpenVINO maps the .bin for the compiled model's life; 2022.x reads it and maps nothing
    if report["resident"] is not None:
        assert report["resident"] < 0.05 * report["size_kib"], report
        assert report["after_inference"] < 0.05 * report["size_kib"], report  # inference does not read them
    image = cv2.imread(str(photo))
    reference = Detector(exported("tiny-224x160", fp16=True, resize_mode="resize")[0]).raw(image)
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npy"), reference)
    from_blob = Detector(model)  # exported after the page-out: the constants read back are right
    assert from_blob.adapter.source.startswith("blob ")
    np.testing.assert_allclose(from_blob.raw(image), reference, rtol=0, atol=1e-5)


def test_page_out_reclaims_a_read_only_file_mapping_and_reads_it_back(tmp_path):
    path = tmp_path / "weights.bin"
    data = np.random.default_rng(1).integers(0, 256, 256 * PAGE, dtype=np.uint8)
    with open(path, "wb") as f:  # on disk and out of the page cache, as a model file long written
        f.write(data.tobytes())
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as m:
        view = np.frombuffer(m, np.uint8)
        try:
            assert int(view[::PAGE].sum()) >= 0  # touch every page
            assert resident_kib(path) == 256 * PAGE // 1024
            assert read_only_mappings(path) and page_out(path) == 256 * PAGE
            assert resident_kib(path) < 16 * PAGE // 1024
            assert np.array_equal(view, data)  # read again, from the file
        finally:
            del view  # before the mapping closes


def test_page_out_leaves_a_writable_mapping_and_an_unmapped_file_alone(tmp_path):
    path = tmp_path / "state.bin"
    path.write_bytes(bytes(16 * PAGE))
    assert page_out(path) == 0  # not mapped
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[:] = b"\1" * len(m)
        assert read_only_mappings(path) == [] and page_out(path) == 0
        assert resident_kib(path) == 16 * PAGE // 1024


EVERY_FILE = """
import json, mmap, os, sys
import numpy as np
from edge_app.detector import Detector
""" + inspect.getsource(resident_kib) + """
with open(sys.argv[2], "rb") as f:  # stands for a library's code: read-only, read before loading
    m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
view = np.frombuffer(m, np.uint8)
touched = int(view[::mmap.PAGESIZE].sum())
before = resident_kib(sys.argv[2])
detector = Detector(sys.argv[1], "CPU")
print(json.dumps({"before": before, "after": resident_kib(sys.argv[2])}))
"""


def test_loading_a_model_hands_back_the_pages_of_every_read_only_file_mapping(exported, tmp_path):
    # compiling runs OpenVINO's transformations and every library's start-up code once: 33 of the
    # daemon's 80 MiB of file-backed RSS at full speed (416 yolov2-tiny-voc, current OpenVINO). A file of the test's own stands for them: the libraries'
    # pages are shared with whatever else runs OpenVINO on this machine, and shared pages stay
    path = tmp_path / "code.bin"
    written(path, np.random.default_rng(2).integers(0, 256, 64 * PAGE, dtype=np.uint8).tobytes())
    report = probe(EVERY_FILE, exported("tiny-224x160", fp16=True)[0], path)
    assert report["before"] == 64 * PAGE // 1024
    assert report["after"] < 8 * PAGE // 1024, report


def test_page_out_of_every_file_reclaims_read_only_mappings_and_leaves_writable_ones(tmp_path):
    code, state = tmp_path / "code.bin", tmp_path / "state.bin"
    written(code, bytes(range(256)) * (64 * PAGE // 256))
    state.write_bytes(bytes(16 * PAGE))
    with open(code, "rb") as c, mmap.mmap(c.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as m, \
            open(state, "r+b") as s, mmap.mmap(s.fileno(), 0) as w:
        view = np.frombuffer(m, np.uint8)
        try:
            assert int(view[::PAGE].sum()) >= 0
            w[:] = b"\1" * len(w)
            assert resident_kib(code) == 64 * PAGE // 1024
            assert page_out() >= 64 * PAGE
            assert resident_kib(code) < 8 * PAGE // 1024
            assert resident_kib(state) == 16 * PAGE // 1024  # written: not the file's pages any more
            assert view.tobytes() == code.read_bytes()  # read again, from the file
        finally:
            del view


ADDED_ANON = """
import json, sys
import cv2, numpy as np
from edge_app import metadata
from edge_app.detector import Detector
from edge_app.runtime import CPU_STREAMS_SHARE_WEIGHTS, openvino_api, performance_hint, release


def anonymous_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/smaps_rollup") if line.startswith("Anonymous:"))


model, how, hint = sys.argv[1:4]
info = metadata.load(model)
Core, _, version = openvino_api()
core = Core()
before = anonymous_kib()
if how == "adapter":
    held = Detector(model, "CPU", hint=hint)
else:  # OpenVINO on the IR as it is
    held = core.compile_model(core.read_model(str(info.xml), str(info.bin)), "CPU", {"PERFORMANCE_HINT": hint})
print(json.dumps({"added_kib": anonymous_kib() - before, "version": version}))
"""


def test_openvino_2022_maps_an_fp16_irs_weights_widened_instead_of_holding_copies(exported, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(exported("yolov2-tiny-voc", fp16=True)[0], model)
    fp32_kib = 2 * metadata.load(model).bin.stat().st_size // 1024
    plain = probe(ADDED_ANON, model, "plain", "THROUGHPUT")
    if not plain["version"].startswith("2022."):
        pytest.skip("current OpenVINO maps the .bin and shares it itself: the adapter widens nothing")
    assert plain["added_kib"] > 2.5 * fp32_kib, plain  # the three copies the widening is for
    adapter = probe(ADDED_ANON, model, "adapter", "THROUGHPUT")
    assert adapter["added_kib"] < plain["added_kib"] - 0.8 * fp32_kib, (adapter, plain, fp32_kib)
    one_stream = probe(ADDED_ANON, model, "adapter", "LATENCY")  # the graph shares the mapping too
    assert one_stream["added_kib"] < 1.5 * fp32_kib, (one_stream, fp32_kib)


def test_the_widened_ir_computes_what_the_fp16_ir_does(exported, net_size_photos, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(exported("tiny-224x160", fp16=True, resize_mode="resize")[0], model)
    model.chmod(0o555)  # as on a device: the model's folder read-only, the cache folder writable
    info = metadata.load(model)
    before = sorted(p.name for p in model.iterdir())
    xml, weights = widened_weights(info)
    assert weights.parent == cache_folder() and sorted(p.name for p in model.iterdir()) == before
    root = ET.fromstring(xml)
    layers = {layer.get("id"): layer for layer in root.iter("layer")}
    assert not [layer for layer in layers.values() if layer.get("type") == "Convert"
                and layer.find("rt_info/attribute[@name='decompression']") is not None]
    assert {c.find("data").get("element_type") for c in layers.values() if c.get("type") == "Const"} <= {"f32", "i64"}
    assert all(e.get("from-layer") in layers and e.get("to-layer") in layers for e in root.iter("edge"))
    assert weights.stat().st_size == max(int(c.find("data").get("offset")) + int(c.find("data").get("size"))
                                         for c in layers.values() if c.get("type") == "Const")
    (tmp_path / "widened.xml").write_bytes(xml)
    Core = openvino_api()[0]
    core = Core()
    image = np.ascontiguousarray(cv2.imread(str(net_size_photos(224, 160)[0]))[None])
    outputs = []
    for xml_path, bin_path in ((info.xml, info.bin), (tmp_path / "widened.xml", weights)):
        request = core.compile_model(core.read_model(str(xml_path), str(bin_path)), "CPU").create_infer_request()
        request.infer({0: image})
        outputs.append(request.get_output_tensor(0).data.copy())
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=0, atol=1e-5)
    assert widened_weights(info) == (xml, weights)  # written once, then found


def test_widening_makes_negative_zero_positive_and_keeps_every_other_value():
    halves = np.array([-0.0, 0.0, 1.5, -2.0, 6e-8, -6e-8, 65504.0], np.float16)  # with f16 subnormals
    wide = widen_f16(halves.view(np.uint8))
    assert wide.dtype == np.float32 and not np.signbit(wide[0])
    np.testing.assert_array_equal(wide[1:], halves[1:].astype(np.float32))
    bits = wide.view(np.uint32)
    assert not np.any((bits & 0x7F800000 == 0) & (bits != 0))  # no f32 the plugin takes for subnormal


def test_weights_that_cannot_be_written_leave_the_ir_as_it_is(exported, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(exported("tiny-224x160", fp16=True)[0], model)
    info = metadata.load(model)
    widened_path(info).unlink(missing_ok=True)  # a load on OpenVINO 2022.x wrote it
    widened_path(info).mkdir()  # in the way, as a read-only folder or a full disk would be
    try:
        assert widened_weights(info) is None
        assert not [p for p in cache_folder().iterdir() if p.name.endswith(".tmp")]
    finally:
        widened_path(info).rmdir()


def test_the_default_hint_holds_the_weights_once_on_every_openvino(exported, tmp_path):
    # before 2024.2 the CPU plugin clones the weights when it runs more than one stream
    # (runtime.py, CPU_STREAMS_SHARE_WEIGHTS): there "auto" keeps one stream, elsewhere THROUGHPUT's
    # streams share them. 416 yolov2-tiny-voc, FP32 weights 60 MiB: auto adds 74 MiB on 2026.4,
    # 2022.3 and 2022.1; throughput 74, 132 and 131 MiB
    model = tmp_path / "model"
    shutil.copytree(exported("yolov2-tiny-voc", fp16=True)[0], model)
    fp32_kib = 2 * metadata.load(model).bin.stat().st_size // 1024
    auto = probe(ADDED_ANON, model, "adapter", "auto")
    throughput = probe(ADDED_ANON, model, "adapter", "throughput")
    assert auto["added_kib"] < 1.5 * fp32_kib, (auto, fp32_kib)
    if release(auto["version"]) < CPU_STREAMS_SHARE_WEIGHTS:
        assert throughput["added_kib"] > auto["added_kib"] + 0.8 * fp32_kib, (throughput, auto, fp32_kib)


def test_auto_is_one_stream_only_on_a_cpu_plugin_that_clones_the_weights_for_streams():
    assert release("2022.3.1-9227-cf2c7da5689-releases/2022/3") == (2022, 3)
    assert release("2024.2.0-15519-5c0f38f83f6-releases/2024/2") == (2024, 2)
    assert release("custom_HEAD_abc") == (0, 0)  # a build without a release number: the old behaviour assumed
    assert performance_hint("auto", "CPU", "2022.1.0-7019") == "LATENCY"
    assert performance_hint("auto", "CPU", "2024.1.0-15008") == "LATENCY"
    assert performance_hint("auto", "CPU", "2024.2.0-15519") == "THROUGHPUT"
    assert performance_hint("auto", "MYRIAD", "2022.1.0-7019") == "THROUGHPUT"  # weights on the stick
    assert performance_hint("auto", "MYRIAD.1.2-ma2480", "2022.1.0-7019") == "THROUGHPUT"
    assert performance_hint("throughput", "CPU", "2022.3.1") == "THROUGHPUT"  # asked for: as asked
    assert performance_hint("latency", "CPU", "2026.4.1") == "LATENCY"
    assert performance_hint(None, "CPU", "2022.3.1") is None
