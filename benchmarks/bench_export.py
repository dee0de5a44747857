"""Export time of yolov2-tiny-voc (cfg + weights → FP16 IR + metadata), end to end in-process,
against the part no exporter can skip: OpenVINO serialising the same graph to an FP16 IR
(ov.save_model of the model our build produced). The ratio is what reading the cfg and weights,
building the graph, hashing and writing the metadata add on top. Interleaved rounds; each
figure median [min–max], the ratio taken within each round. (No darknet-to-IR converter exists
to compare with: OpenVINO's Model Optimizer dropped its darknet path, and OpenCV's importer loads
a network, it does not export one.)
    python benchmarks/bench_export.py [rounds, default 5]
"""
import shutil
import sys
import tempfile
from pathlib import Path

import openvino as ov

from common import DARKNET_CFG, interleaved, ratio_line, spread
from model_tools import cfg, export, weights

CFG = DARKNET_CFG / "yolov2-tiny-voc.cfg"


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    net = cfg.load(CFG)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights_path = tmp / "w.weights"
        weights.write(weights_path, weights.random(net, seed=1))
        names = [f"c{i}" for i in range(net.region.classes)]
        graph = export.build(net, weights.read(weights_path, net))

        def run_export():
            shutil.rmtree(tmp / "out", ignore_errors=True)
            loaded = cfg.load(CFG)
            export.export(loaded, weights.read(weights_path, loaded), names, tmp / "out",
                          cfg_path=str(CFG), weights_path=str(weights_path))

        def save_only():
            ov.save_model(graph, str(tmp / "save" / "m.xml"), compress_to_fp16=True)

        t = interleaved({"export": run_export, "save": save_only}, rounds, warmup=1)
        size = sum(p.stat().st_size for p in (tmp / "out").iterdir()) / 1e6
        print(f"export yolov2-tiny-voc to FP16 IR ({size:.1f} MB written): {spread(t['export'])} s; "
              f"ov.save_model of the same graph {spread(t['save'])} s")
        print("   " + ratio_line("export / OpenVINO's save alone", t["export"], t["save"]))


if __name__ == "__main__":
    main()
