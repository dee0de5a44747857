"""`model-tools pipeline`: dataset → cfg → (partial) → train → evaluate → select → export, resumable.

Every step writes its outputs into the work folder and records, in pipeline.json, the settings
it ran with. Running the same command again skips the steps that are done with the same
settings, resumes training from the newest checkpoint, and evaluates only new checkpoints.
Changing a step's settings re-runs that step and the ones after it.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from edge_app.atomic import write_text
from edge_app.errors import InputError
from model_tools.names import read_names


@dataclass
class PipelineSpec:
    workdir: str
    name: str = "model"
    # dataset source: exactly one
    synth: int = 0  # generate this many synthetic images (seed = synth_seed)
    synth_seed: int = 0
    synth_size: Tuple[int, int] = (320, 240)
    flickr27: str = ""  # annotation file
    images: str = ""  # image folder for flickr27
    voc: str = ""
    yolo: str = ""
    names_file: str = ""  # fixed class order
    split_keys: Tuple[str, ...] = ()  # e.g. ("6",) = Flickr subset 6 → test
    valid_keys: Tuple[str, ...] = ()
    ratios: Tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    # model
    width: int = 416
    height: int = 416
    width_multiplier: float = 1.0
    anchors: str = "auto"  # "auto" (k-means), "default", or comma-separated numbers
    num_anchors: int = 5
    batch: int = 64
    subdivisions: int = 8
    learning_rate: float = 0.001
    burn_in: int = 1000
    max_batches: int = 0  # 0 = rule of thumb
    train_head: str = "yolo"  # "yolo" learns with every darknet; "region" not on pjreddie's CPU build
    # partial weights from a base model
    base_cfg: str = ""
    base_weights: str = ""
    partial_layers: int = 0
    # tools
    darknet: str = ""
    darknet_flags: Tuple[str, ...] = ()  # e.g. ("-map", "-dont_show")
    fp16: bool = True
    resize_mode: str = ""  # "" = as trained


STEPS = ("dataset", "cfg", "partial", "train", "evaluate", "select", "export")
STEP_INPUTS = {
    "dataset": ("synth", "synth_seed", "synth_size", "flickr27", "images", "voc", "yolo", "names_file",
                "split_keys", "valid_keys", "ratios", "split_seed"),
    "cfg": ("width", "height", "width_multiplier", "anchors", "num_anchors", "batch", "subdivisions",
            "learning_rate", "burn_in", "max_batches", "train_head"),
    "partial": ("base_cfg", "base_weights", "partial_layers"),
    "train": (),
    "evaluate": ("fp16", "resize_mode"),
    "select": (),
    "export": ("fp16", "resize_mode"),
}


class Pipeline:
    def __init__(self, spec: PipelineSpec, progress: bool = True, log=print):
        self.spec = spec
        self.root = Path(spec.workdir).resolve()
        self.progress = progress
        self.log = log
        self.state_file = self.root / "pipeline.json"
        self.state: Dict[str, Dict] = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        sources = [bool(spec.synth), bool(spec.flickr27), bool(spec.voc), bool(spec.yolo)]
        if sum(sources) != 1 and "dataset" not in self.state:
            raise InputError("give exactly one dataset source", "--synth / --flickr27 / --voc / --yolo",
                             "e.g. --synth 3000 for a synthetic logo dataset")

    # paths
    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def data_file(self) -> Path:
        return self.dataset_dir / f"{self.spec.name}.data"

    @property
    def difficult_list(self) -> Optional[str]:
        """The .data's difficult= (VOC imports): the validation images' difficult boxes."""
        from model_tools.dataset import read_data_file

        return read_data_file(self.data_file).get("difficult") or None

    @property
    def names_path(self) -> Path:
        return self.dataset_dir / f"{self.spec.name}.names"

    @property
    def cfg_path(self) -> Path:
        """The deployed Tiny YOLOv2 ([region]) cfg: evaluated and exported."""
        return self.root / f"{self.spec.name}.cfg"

    @property
    def train_cfg_path(self) -> Path:
        """What darknet trains: the same network, with the head of spec.train_head."""
        return self.root / f"{self.spec.name}-train.cfg"

    def _settings(self, step: str) -> Dict:
        spec = asdict(self.spec)
        return {k: spec[k] for k in STEP_INPUTS[step]}

    def _outputs(self, step: str) -> List[Path]:
        return {"dataset": [self.data_file, self.names_path], "cfg": [self.cfg_path, self.train_cfg_path]}.get(step, [])

    def _done(self, step: str) -> bool:
        record = self.state.get(step)
        return (bool(record) and record.get("settings") == json.loads(json.dumps(self._settings(step)))
                and all(p.exists() for p in self._outputs(step)))

    def _mark(self, step: str, **outputs) -> None:
        self.state[step] = {"settings": self._settings(step), **outputs}
        write_text(self.state_file, json.dumps(self.state, indent=1, default=str) + "\n")

    def _invalidate_after(self, step: str) -> None:
        for later in STEPS[STEPS.index(step) + 1:]:
            self.state.pop(later, None)

    # steps
    def run(self) -> Dict:
        self.root.mkdir(parents=True, exist_ok=True)
        for step in STEPS:
            if step in ("train", "evaluate", "select", "export") or not self._done(step):
                if step not in ("train", "evaluate", "select", "export"):
                    self._invalidate_after(step)
                self.log(f"== {step}")
                getattr(self, f"step_{step}")()
            else:
                self.log(f"== {step}: done before, same settings (skipped)")
        return self.state

    def step_dataset(self) -> None:
        from model_tools import dataset, synth

        spec = self.spec
        names = None
        if spec.names_file:
            names = read_names(spec.names_file)
        if spec.synth:
            annotations = synth.generate(self.root / "synth", spec.synth, spec.synth_seed,
                                         size=tuple(spec.synth_size), progress=self.progress)
            imported = dataset.import_flickr27(annotations)
        else:
            fmt = next(f for f in ("flickr27", "voc", "yolo") if getattr(spec, f))
            imported = dataset.import_source(fmt, getattr(spec, fmt), images=spec.images,
                                             names_file=spec.names_file)
        if self.dataset_dir.exists():
            shutil.rmtree(self.dataset_dir)
        report = dataset.build(imported, self.dataset_dir, names=names, ratios=tuple(spec.ratios),
                               seed=spec.split_seed, test_keys=spec.split_keys, valid_keys=spec.valid_keys,
                               name=spec.name, progress=self.progress)
        self.log(report.text())
        if report.splits.get("train", 0) == 0 or report.splits.get("valid", 0) == 0:
            raise InputError("the dataset has no training or no validation images", str(self.dataset_dir),
                             "check the split settings and the report above")
        self._mark("dataset", splits=report.splits)

    def step_cfg(self) -> None:
        from model_tools import anchors as anchors_mod, cfggen

        spec = self.spec
        classes = len(read_names(self.names_path))
        if spec.anchors == "auto":
            centroids, avg_iou = anchors_mod.from_label_files(str(self.dataset_dir / "train.txt"),
                                                              spec.width // 32, spec.height // 32,
                                                              spec.num_anchors)
            anchors = [round(float(v), 4) for v in centroids.ravel()]
            self.log(f"anchors (k-means, avg IoU {avg_iou:.3f}): {anchors}")
        elif spec.anchors == "default":
            anchors = list(cfggen.default_anchors(spec.width, spec.height))
        else:
            anchors = [float(v) for v in spec.anchors.split(",")]
        train_images = len((self.dataset_dir / "train.txt").read_text().split())
        text = cfggen.tiny_yolov2(cfggen.TinySpec(
            classes=classes, width=spec.width, height=spec.height, width_multiplier=spec.width_multiplier,
            anchors=anchors, batch=spec.batch, subdivisions=spec.subdivisions,
            learning_rate=spec.learning_rate, burn_in=spec.burn_in,
            max_batches=spec.max_batches or None, train_images=train_images, head=spec.train_head))
        write_text(self.train_cfg_path, text)
        if spec.train_head == "yolo":
            cfggen.convert(self.train_cfg_path, self.cfg_path)  # the same step as `model-tools convert`
        else:
            write_text(self.cfg_path, text)
        self._mark("cfg", anchors=anchors)

    def step_partial(self) -> None:
        from model_tools import cfg as cfg_mod, weights

        spec = self.spec
        if not spec.base_weights:
            self._mark("partial", weights=None)
            return
        base_net = cfg_mod.load(spec.base_cfg or self.cfg_path)
        out = self.root / f"{Path(spec.base_weights).stem}.conv.{spec.partial_layers}"
        weights.write(out, weights.partial(base_net, weights.read(spec.base_weights, base_net),
                                           spec.partial_layers))
        self._mark("partial", weights=str(out))

    def step_train(self) -> None:
        from model_tools import plots, train

        start = self.state.get("partial", {}).get("weights")
        result = train.train(self.data_file, self.train_cfg_path, start, self.spec.darknet or None,
                             self.root / "training", progress=self.progress,
                             extra_args=list(self.spec.darknet_flags), darknet_cwd=self.root, log=self.log)
        if result.rows:
            plots.training(result.rows, self.root / "training")
        self.state["train"] = {"settings": {}, "iterations": result.rows[-1].iteration if result.rows else 0}
        write_text(self.state_file, json.dumps(self.state, indent=1, default=str) + "\n")

    def step_evaluate(self) -> None:
        from model_tools import evaluate
        from model_tools.train import backup_dir, checkpoint_base

        names = read_names(self.names_path)
        backup = backup_dir(self.data_file, self.root)
        checkpoints = evaluate.list_checkpoints(backup, checkpoint_base(self.train_cfg_path))
        rows = evaluate.evaluate_checkpoints(self.cfg_path, names, self.dataset_dir / "valid.txt",
                                             checkpoints, self.root / "evaluation", fp16=self.spec.fp16,
                                             resize_mode=self.spec.resize_mode or None,
                                             difficult_list=self.difficult_list, progress=self.progress)
        self.state["evaluate"] = {"settings": self._settings("evaluate"), "rows": len(rows)}
        write_text(self.state_file, json.dumps(self.state, indent=1, default=str) + "\n")

    def step_select(self) -> None:
        from model_tools import evaluate

        rows = evaluate.read_rows(self.root / "evaluation" / "evaluation.csv")
        best = evaluate.select(rows)
        report = evaluate.selection_report(rows, best)
        write_text(self.root / "selection.txt", report)
        self.log(report)
        self.state["select"] = {"settings": {}, "best": best}
        write_text(self.state_file, json.dumps(self.state, indent=1, default=str) + "\n")

    def step_export(self) -> None:
        from model_tools import cfg as cfg_mod, evaluate, export, plots, weights

        best = self.state["select"]["best"]
        net = cfg_mod.load(self.cfg_path)
        names = read_names(self.names_path)
        out = self.root / "model"
        data = export.export(net, weights.read(best["weights"], net), names, out, fp16=self.spec.fp16,
                             resize_mode=self.spec.resize_mode or None, cfg_path=str(self.cfg_path),
                             weights_path=str(best["weights"]))
        # the chosen model's evaluation on the validation set, through the exported IR
        images, truths = evaluate.ground_truth(self.dataset_dir / "valid.txt", names, self.difficult_list)
        found, _ = evaluate.detect_all(out, images, progress=self.progress)
        metrics = evaluate.compute(found, truths, names)
        write_text(out / "map.txt", metrics.table())
        plots.pr_curves(metrics, out / "pr_curve.png")
        self.log(f"exported {data['model_id']} to {out} (validation mAP {100 * metrics.map:.2f}%)")
        self.state["export"] = {"settings": self._settings("export"), "model": str(out), "map": metrics.map}
        write_text(self.state_file, json.dumps(self.state, indent=1, default=str) + "\n")
