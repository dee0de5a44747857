"""`model-tools`: the training box's command line. Thin: each sub-command calls one function."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import List, Optional

from edge_app.errors import InputError, run_command
from model_tools.dataset import SOURCE_FORMATS


def cmd_check(args) -> int:
    from model_tools import cfg, weights

    net = cfg.load(args.cfg)
    print(f"{net.path}: {net.width}x{net.height}, {len(net.layers)} layers, "
          f"{net.param_count} parameters, region {net.region.num} anchors x "
          f"{net.region.classes} classes, grid {net.region.in_shape[2]}x{net.region.in_shape[1]}")
    for layer in net.layers:
        c, h, w = layer.out_shape
        print(f"  {layer.index:3d} {type(layer).__name__.lower():8s} -> {w:4d} x {h:4d} x {c:5d}")
    if args.weights:
        loaded = weights.with_fork(weights.read(args.weights, net), args.fork)
        h = loaded.header
        print(f"{args.weights}: darknet fork {h.fork_reason}")
        print(f"{args.weights}: version {h.major}.{h.minor}.{h.revision} ({h.fork}), "
              f"{h.size}-byte header, seen {h.seen}, sizes match the cfg")
    return 0


def cmd_partial(args) -> int:
    from model_tools import cfg, weights

    net = cfg.load(args.cfg)
    loaded = weights.read(args.weights, net)
    weights.write(args.out, weights.partial(net, loaded, args.n))
    print(f"wrote the first {args.n} layers to {args.out}")
    return 0


def cmd_random_weights(args) -> int:
    from model_tools import cfg, weights

    net = cfg.load(args.cfg)
    weights.write(args.out, weights.random(net, args.seed))
    print(f"wrote random weights ({net.param_count} parameters, seed {args.seed}) to {args.out}")
    return 0


def cmd_export(args) -> int:
    from model_tools import cfg, export, weights
    from model_tools.names import read_names

    net = cfg.load(args.cfg)
    loaded = weights.with_fork(weights.read(args.weights, net), args.fork)
    names = read_names(args.names, net.region.classes)
    print(f"darknet fork: {loaded.header.fork_reason}", file=sys.stderr if not
          (loaded.header.stamp_is_known or args.fork) else sys.stdout)
    data = export.export(net, loaded, names, args.output, fp16=not args.fp32,
                         resize_mode=args.resize_mode, interpolation=args.interpolation,
                         cfg_path=args.cfg, weights_path=args.weights, conf_threshold=args.conf,
                         nms_threshold=args.nms)
    print(f"exported {data['model_id']} ({data['ir']['precision']}, {data['resize_mode']}, "
          f"{data['interpolation']} interpolation) to "
          f"{args.output}/{data['ir']['xml']} in {data['export_seconds']:.2f} s")
    return 0


def _ratios(text: str):
    try:
        parts = tuple(float(v) for v in text.split("/"))
    except ValueError:
        parts = ()
    if (len(parts) != 3 or not all(math.isfinite(p) and p >= 0 for p in parts)
            or abs(sum(parts) - (100 if sum(parts) > 1.5 else 1)) > 1e-6):
        raise InputError(f"--split {text!r}: expected train/valid/test percentages summing to 100, e.g. 80/10/10",
                         "--split")
    total = sum(parts)
    return tuple(p / total for p in parts)


def cmd_synth(args) -> int:
    from model_tools import synth

    path = synth.generate(args.out, args.count, args.seed, size=(args.width, args.height))
    print(f"wrote {args.count} images and {path}")
    return 0


def cmd_synth_clip(args) -> int:
    from model_tools import synth

    path = synth.make_clip(args.out, args.frames, args.seed, (args.width, args.height), args.fps)
    print(f"wrote {path} and {path.with_suffix('.json')} (ground truth)")
    return 0


def cmd_import(args) -> int:
    from model_tools import dataset
    from model_tools.names import read_names

    ratios = _ratios(args.split)  # every option checked before the (long) import starts
    imported = dataset.import_source(args.format, args.source, images=args.images, names_file=args.names,
                                     descriptions=args.descriptions,
                                     classes=(args.classes or "").split(","))
    names = read_names(args.names) if args.names and args.format != "yolo" else None
    report = dataset.build(imported, args.out, names=names, ratios=ratios, seed=args.seed,
                           test_keys=args.test_key or (), valid_keys=args.valid_key or (), name=args.name)
    print(report.text(), end="")
    print(f"darknet layout written to {args.out} ({args.name}.data, report.txt)")
    return 0


def cmd_cfg(args) -> int:
    from edge_app.atomic import write_text
    from model_tools import cfggen

    anchors = [float(v) for v in args.anchors.split(",")] if args.anchors else None
    spec = cfggen.TinySpec(classes=args.classes, width=args.width, height=args.height,
                           width_multiplier=args.width_multiplier, anchors=anchors, batch=args.batch,
                           subdivisions=args.subdivisions, max_batches=args.max_batches or None,
                           train_images=args.train_images, learning_rate=args.learning_rate,
                           burn_in=args.burn_in, head=args.head)
    write_text(args.out, cfggen.tiny_yolov2(spec))
    print(f"wrote {args.out}" + (" (a [yolo] training head: `model-tools convert` makes the deployable "
                                 "[region] model of its checkpoints)" if args.head == "yolo" else ""))
    return 0


def cmd_convert(args) -> int:
    from model_tools import cfggen

    cfggen.convert(args.train_cfg, args.out_cfg, args.weights, args.weights_out)
    print(f"wrote {args.out_cfg}" + (f" and {args.weights_out}" if args.weights else ""))
    return 0


def cmd_anchors(args) -> int:
    from model_tools import anchors, cfg as cfg_mod

    net = cfg_mod.load(args.cfg)
    grid_h, grid_w = net.region.in_shape[1:]
    centroids, avg_iou = anchors.from_label_files(args.train_list, grid_w, grid_h, net.region.num, args.seed)
    values = ", ".join(f"{v:.4f}" for v in centroids.ravel())
    print(f"anchors ({net.region.num}, grid {grid_w}x{grid_h}, average IoU {100 * avg_iou:.2f}%): {values}")
    if args.write:
        from edge_app.atomic import write_text

        lines = Path(args.cfg).read_text().splitlines()
        in_region = False
        for i, line in enumerate(lines):
            stripped = "".join(line.split())
            if stripped.startswith("["):
                in_region = stripped == "[region]"
            elif in_region and stripped.startswith("anchors="):
                lines[i] = f"anchors={values}"
        write_text(args.cfg, "\n".join(lines) + "\n")
        print(f"written into {args.cfg}")
    return 0


def _darknet_flags(args) -> List[str]:
    """-map/-dont_show/-gpus/--darknet-arg as darknet flags, checked against the chosen fork."""
    from model_tools import train

    return train.darknet_flags(train.find_darknet(args.darknet), args.map, args.dont_show, args.gpus or "",
                               args.darknet_arg or ())


def _stopped(what: str) -> int:
    import sys

    print(f"\n{what} stopped (darknet with it); run the same command again to resume", file=sys.stderr)
    return 130


def cmd_train(args) -> int:
    from model_tools import plots, train

    try:
        result = train.train(args.data, args.cfg, args.weights, args.darknet, args.workdir,
                             resume=not args.no_resume, extra_args=_darknet_flags(args),
                             darknet_cwd=args.darknet_cwd)
    except KeyboardInterrupt:
        return _stopped("training")
    if result.rows:
        plots.training(result.rows, args.workdir)
    last = result.rows[-1] if result.rows else None
    print(f"training finished{f' at iteration {last.iteration}, avg loss {last.avg_loss:.4f}' if last else ''}; "
          f"log {result.log}, metrics {result.csv}")
    return 0


def cmd_parse_log(args) -> int:
    from model_tools import darknet_log, native, plots

    parsed = darknet_log.read_log(args.log)
    n = darknet_log.write_csv(parsed, args.csv)
    if args.plots:
        plots.training(parsed.rows, args.plots)
    notes = []
    if native.library() is None:
        notes.append(f"read with regexes line by line (slower); compiled log scanner: {native.status()}")
    if parsed.long_lines:
        notes.append(f"{parsed.long_lines} line(s) longer than {darknet_log.LINE_CAP} bytes were read up to "
                     "that length (no darknet line is that long)")
    if parsed.missing_labels:
        notes.append(f"darknet could not open {parsed.missing_labels} label file(s): those images were "
                     "trained as having no objects")
    print(f"{n} iterations from {parsed.bytes} bytes → {args.csv}" + "".join(f"\n  note: {x}" for x in notes))
    return 0


def cmd_evaluate(args) -> int:
    from model_tools import dataset

    from model_tools.names import read_names

    data = dataset.read_data_file(args.data)
    if not data.get("names"):
        raise InputError("the .data file names no names file", args.data, "add a line names=<file>")
    names = read_names(data["names"])
    valid = args.valid or data.get("valid")
    if args.weights:
        checkpoints = [Path(w) for w in args.weights]
    else:
        from model_tools.checkpoints import backup_dir, checkpoint_base, list_checkpoints

        # backup= is read as `model-tools train` reads it: from the folder darknet runs in (here)
        backup = args.backup or str(backup_dir(args.data))
        checkpoints = list_checkpoints(backup, checkpoint_base(args.train_cfg or args.cfg))
        if not checkpoints:
            raise InputError("no checkpoints found", backup,
                             "give --weights FILE ... or the --backup folder of this cfg")
    reader = _image_reader(args, valid, checkpoints[0])  # before numpy is loaded: see model_tools.image_reader
    try:
        return _evaluate(args, data, names, valid, checkpoints, reader)
    finally:
        if reader is not None:
            reader.close()


def _image_reader(args, valid, first_checkpoint: Path):
    """The child process that prepares the validation images for the first checkpoint, or None
    (reference mode, or a list that does not read: reported when it is read again)."""
    from model_tools import dataset
    from model_tools.image_reader import PREPARED_BUDGET, ImageReader

    if args.mode == "reference" or not valid:
        return None
    try:
        images = dataset.list_paths(valid)
    except InputError:
        return None
    return ImageReader.start(images, args.cfg, first_checkpoint, args.resize_mode, args.interpolation,
                             PREPARED_BUDGET)


def _evaluate(args, data, names, valid, checkpoints, reader) -> int:
    from model_tools import evaluate, selection

    difficult = args.difficult
    if difficult is None and data.get("difficult"):
        if args.valid and Path(args.valid).resolve() != Path(data.get("valid", "")).resolve():
            # the .data's difficult= pairs line by line with its valid=, not with another list
            print(f"note: --valid is not the .data's valid=, so its difficult= list is not used; give the list "
                  f"that goes with {args.valid} as --difficult (import writes test-difficult.txt for test.txt)")
        else:
            difficult = data["difficult"]
    computed: dict = {}
    rows = evaluate.evaluate_checkpoints(args.cfg, names, valid, checkpoints, args.out, fp16=not args.fp32,
                                         resize_mode=args.resize_mode, interpolation=args.interpolation,
                                         points=args.points, mode=args.mode, difficult_list=difficult or None,
                                         decoder=args.decoder, plot=False, keep=computed, reader=reader)
    for row in rows:
        print(f"== {row['checkpoint']}" + (f" (reference: images read with {args.decoder})" if row["decoder"] else ""))
        print(evaluate.side_by_side(computed[str(row['checkpoint'])]), end="")
    best = selection.select(rows)
    print(selection.selection_report(rows, best), end="")
    print(selection.uncertainty_note(rows, best), end="")
    sys.stdout.flush()
    if not args.no_plots:  # after the numbers: plotting is the slow part of a quick look
        from model_tools import plots

        plots.map_per_checkpoint(rows, Path(args.out) / "map.png")
        best_metrics = computed[str(best["checkpoint"])]
        plots.pr_curves(best_metrics.get("device", best_metrics.get("reference")), Path(args.out) / "pr_curve.png")
        print(f"plots: {Path(args.out) / 'map.png'}, {Path(args.out) / 'pr_curve.png'}")
    print(f"results: {Path(args.out) / 'evaluation.csv'}")
    return 0


def cmd_select(args) -> int:
    from edge_app.atomic import write_text
    from model_tools import evaluate, selection

    rows = evaluate.read_rows(Path(args.evaluation) / "evaluation.csv" if Path(args.evaluation).is_dir() else args.evaluation)
    best = evaluate.select(rows)
    report = evaluate.selection_report(rows, best) + selection.uncertainty_note(rows, best)
    print(report, end="")
    if args.report:
        write_text(args.report, report)
    return 0


def cmd_pipeline(args) -> int:
    from model_tools.pipeline import Pipeline, PipelineSpec

    spec = PipelineSpec(
        workdir=args.workdir, name=args.name, synth=args.synth, synth_seed=args.synth_seed,
        flickr27=args.flickr27 or "", images=args.images or "", voc=args.voc or "", yolo=args.yolo or "",
        names_file=args.names or "", split_keys=tuple(args.test_key or ()), valid_keys=tuple(args.valid_key or ()),
        ratios=_ratios(args.split), split_seed=args.seed, width=args.width, height=args.height,
        width_multiplier=args.width_multiplier, anchors=args.anchors, batch=args.batch,
        subdivisions=args.subdivisions, learning_rate=args.learning_rate, burn_in=args.burn_in,
        max_batches=args.max_batches, base_cfg=args.base_cfg or "", base_weights=args.base_weights or "",
        partial_layers=args.partial, darknet=args.darknet or "", fp16=not args.fp32, train_head=args.train_head,
        resize_mode=args.resize_mode or "", darknet_flags=tuple(_darknet_flags(args)))
    try:
        state = Pipeline(spec).run()
    except KeyboardInterrupt:
        return _stopped("the pipeline")
    export = state.get("export", {})
    print(f"pipeline done: model {export.get('model')}, validation mAP {100 * float(export.get('map', 0)):.2f}%")
    return 0


def _darknet_options(p) -> None:
    p.add_argument("--darknet", metavar="PATH",
                   help="darknet binary (default: $DARKNET, else darknet on PATH — said on screen)")
    p.add_argument("--map", action="store_true", help="darknet -map: mAP on valid= during training "
                   "(AlexeyAB/hank-ai), attached to the iteration it was computed at")
    p.add_argument("--dont-show", action="store_true", help="darknet -dont_show: no chart window (AlexeyAB/hank-ai)")
    p.add_argument("--gpus", metavar="LIST", help="darknet -gpus, e.g. 0,1")
    p.add_argument("--darknet-arg", action="append", metavar="ARG",
                   help="any other darknet flag, passed as is (repeat for several; e.g. --darknet-arg=-clear)")


def _model_options(p) -> None:
    p.add_argument("--width", type=int, default=416, help="network input width in pixels, a multiple of 32")
    p.add_argument("--height", type=int, default=416, help="network input height in pixels, a multiple of 32")
    p.add_argument("--width-multiplier", type=float, default=1.0, help="scale every layer's filters (0.25 = slim)")
    p.add_argument("--batch", type=int, default=64, help="images per training iteration")
    p.add_argument("--subdivisions", type=int, default=8, help="split each batch into this many passes (less memory)")
    p.add_argument("--learning-rate", type=float, default=0.001, help="darknet learning_rate")
    p.add_argument("--burn-in", type=int, default=1000, help="iterations of learning-rate warm-up")
    p.add_argument("--max-batches", type=int, default=0, help="0 = classes*2000, >= images, >= 6000")


def _split_options(p) -> None:
    p.add_argument("--split", default="80/10/10", help="train/valid/test percentages (random, seeded)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split")
    p.add_argument("--test-key", action="append", help="split key for the test set instead (Flickr subset 6: --test-key 6)")
    p.add_argument("--valid-key", action="append", help="split key for the validation set")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="validate a cfg (and weights) and print the layer plan")
    p.add_argument("cfg", help="darknet .cfg to check")
    p.add_argument("weights", nargs="?", help="weights to check against the cfg (optional)")
    p.add_argument("--fork", choices=("pjreddie", "alexeyab"),
                   help="the darknet that trained the weights (default: from their version stamp); "
                        "decides the batch-norm epsilon and the default resize")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("partial", help="first N layers of a weights file (as `darknet partial`)")
    p.add_argument("cfg", help="the cfg the weights were trained with")
    p.add_argument("weights", help="trained weights to cut")
    p.add_argument("out", help="file to write (e.g. model.conv.13)")
    p.add_argument("n", type=int, help="number of layers to keep")
    p.set_defaults(func=cmd_partial)

    p = sub.add_parser("random-weights", help="well-scaled random weights for a cfg (tests, demos)")
    p.add_argument("cfg", help="darknet .cfg")
    p.add_argument("out", help="weights file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=cmd_random_weights)

    p = sub.add_parser("export", help="darknet cfg + weights -> OpenVINO IR + model metadata")
    p.add_argument("--cfg", required=True, help="the deployable [region] cfg")
    p.add_argument("--weights", required=True, help="trained weights")
    p.add_argument("--names", required=True, help="class names file, one per line")
    p.add_argument("--fork", choices=("pjreddie", "alexeyab"),
                   help="the darknet that trained the weights (default: from their version stamp); "
                        "decides the batch-norm epsilon and the default resize")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--fp32", action="store_true", help="keep FP32 weights (default FP16, as the NCS2 computes)")
    p.add_argument("--resize-mode", choices=("resize", "letterbox"),
                   help="default: as the weights were trained: letterbox for pjreddie darknet or a cfg "
                        "with letter_box=1, plain resize for AlexeyAB")
    p.add_argument("--interpolation", choices=("darknet", "opencv-linear"), default="darknet",
                   help="resize arithmetic the device applies: darknet's resize_image (default; what "
                        "the weights were trained and `detector map` measured with) or cv2.resize")
    p.add_argument("--conf", type=float, default=0.25, help="default confidence threshold")
    p.add_argument("--nms", type=float, default=0.45, help="default NMS IoU threshold")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("synth", help="generate a synthetic logo dataset (Flickr Logos 27 format)")
    p.add_argument("out", help="folder to write the images and annotation file into")
    p.add_argument("--count", type=int, default=1000, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--width", type=int, default=320, help="image width in pixels")
    p.add_argument("--height", type=int, default=240, help="image height in pixels")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("synth-clip", help="a held-out demo video of moving glyphs, with ground truth")
    p.add_argument("out", help="video path (.avi); ground truth goes to the same name with .json")
    p.add_argument("--frames", type=int, default=60, help="number of frames")
    p.add_argument("--seed", type=int, default=777, help="random seed")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second")
    p.add_argument("--width", type=int, default=320, help="frame width in pixels")
    p.add_argument("--height", type=int, default=240, help="frame height in pixels")
    p.set_defaults(func=cmd_synth_clip)

    p = sub.add_parser("import", help="dataset → darknet layout (images, labels, names, lists, .data)")
    p.add_argument("format", choices=SOURCE_FORMATS, help="annotation format of the source")
    p.add_argument("source", help="flickr27: annotation file; voc: VOC folder; openimages: bbox CSV; yolo: folder")
    p.add_argument("out", help="dataset folder to write")
    p.add_argument("--images", help="image folder (flickr27, openimages)")
    p.add_argument("--descriptions", help="openimages class-descriptions CSV")
    p.add_argument("--classes", help="openimages: comma-separated class names, e.g. Boat")
    p.add_argument("--names", help="fixed class order (one per line)")
    p.add_argument("--name", default="dataset", help="base name of the .data and .names files")
    _split_options(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("cfg", help="write a Tiny YOLOv2 cfg for N classes")
    p.add_argument("out", help="cfg file to write")
    p.add_argument("--classes", type=int, required=True, help="number of classes (lines of the names file)")
    p.add_argument("--anchors", help="comma-separated w,h pairs in grid cells (default: yolov2-tiny-voc's, "
                                     "scaled to this input size; `model-tools anchors` fits them to a dataset)")
    p.add_argument("--train-images", type=int, default=0, help="number of training images, for the "
                                                                "max_batches rule")
    p.add_argument("--head", choices=("region", "yolo"), default="region",
                   help="region: the deployable Tiny YOLOv2 head; yolo: the equivalent training head, which "
                        "learns with every darknet build (convert its checkpoints with `model-tools convert`)")
    _model_options(p)
    p.set_defaults(func=cmd_cfg)

    p = sub.add_parser("convert", help="[yolo]-head training cfg (+ weights) -> the deployable [region] model")
    p.add_argument("train_cfg", help="the cfg darknet trained, ending in one [yolo] section using every anchor")
    p.add_argument("out_cfg", help="the [region] cfg to write (export/evaluate it with the trained weights)")
    p.add_argument("--weights", help="trained weights to check against the converted cfg and copy")
    p.add_argument("--weights-out", help="where to write the weights given with --weights")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("anchors", help="k-means anchors (1 - IoU) from the training labels")
    p.add_argument("cfg", help="cfg whose [region] grid and anchor count are used")
    p.add_argument("train_list", help="training image list (labels beside the images)")
    p.add_argument("--seed", type=int, default=0, help="k-means seed")
    p.add_argument("--write", action="store_true", help="write them into the cfg's [region]")
    p.set_defaults(func=cmd_anchors)

    p = sub.add_parser("train", help="run darknet training with live progress; resumes")
    p.add_argument("data", help="darknet .data file (train=, valid=, names=, backup=)")
    p.add_argument("cfg", help="the cfg darknet trains (its name names the checkpoints)")
    p.add_argument("weights", nargs="?", help="start weights (e.g. a partial .conv file)")
    _darknet_options(p)
    p.add_argument("--darknet-cwd", metavar="DIR",
                   help="folder darknet runs in; relative paths in the .data and lists are read from it "
                        "(default: the current folder, as when darknet is run by hand)")
    p.add_argument("--workdir", default="training", help="where train.log, metrics.csv and plots go")
    p.add_argument("--no-resume", action="store_true",
                   help="start from the given weights even if the backup folder holds a newer checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("parse-log", help="darknet training log → metrics CSV (+ plots)")
    p.add_argument("log", help="the output of `darknet detector train` (pjreddie, AlexeyAB or hank-ai)")
    p.add_argument("csv", help="metrics CSV to write, one row per iteration")
    p.add_argument("--plots", metavar="DIR", help="also draw loss/IoU/mAP plots into DIR")
    p.set_defaults(func=cmd_parse_log)

    p = sub.add_parser("evaluate", help="mAP of every checkpoint through the edge's OpenVINO path")
    p.add_argument("data", help="darknet .data file (names=, valid=, backup=)")
    p.add_argument("cfg", help="the deployable [region] cfg")
    p.add_argument("--weights", nargs="+", help="checkpoints (default: all in the backup folder)")
    p.add_argument("--train-cfg", help="the cfg darknet trained with, if it differs (its name names the checkpoints)")
    p.add_argument("--backup", help="checkpoint folder (default: backup= of the .data, resolved as darknet does)")
    p.add_argument("--valid", help="image list (default: valid= of the .data)")
    p.add_argument("--out", default="evaluation", help="folder for the exports, evaluation.csv and plots")
    p.add_argument("--points", type=int, default=0, choices=(0, 11, 101), help="0 = area under the curve")
    p.add_argument("--fp32", action="store_true", help="evaluate FP32 exports instead of FP16 (the NCS2 runs FP16)")
    p.add_argument("--resize-mode", choices=("resize", "letterbox"),
                   help="how images are fitted to the network (default: as trained)")
    p.add_argument("--interpolation", choices=("darknet", "opencv-linear"), default="darknet",
                   help="resize arithmetic of the exported model (device mode)")
    p.add_argument("--mode", choices=("device", "reference", "both"), default="device",
                   help="device: the number the Pi reaches (FP16 IR, u8 input, edge decode); reference: "
                        "darknet's own arithmetic and definitions, as `detector map`; both: side by side")
    p.add_argument("--decoder", choices=("stb", "opencv"), default="stb",  # evaluate.DECODERS
                   help="reference mode: read images as the darknet compared with does. stb: built without "
                        "OpenCV (AlexeyAB's default, the AWS bootstrap); opencv: built with it (Debian's "
                        "darknet, hank-ai, AlexeyAB OPENCV=1). JPEG pixels differ between the two")
    p.add_argument("--difficult", help="list pairing line by line with the validation list, whose images' labels "
                                       "are its difficult truths (default: difficult= of the .data, as AlexeyAB "
                                       "reads it, when --valid is the .data's valid=)")
    p.add_argument("--no-plots", action="store_true", help="numbers only (map.png and pr_curve.png skipped)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("select", help="best checkpoint by mAP (ties by F1), with a report")
    p.add_argument("evaluation", help="evaluation folder or its evaluation.csv")
    p.add_argument("--report", help="also write the selection report to this file")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("pipeline", help="dataset → cfg → partial → train → evaluate → select → export; resumable")
    p.add_argument("workdir", help="work folder holding every step's outputs and pipeline.json")
    p.add_argument("--name", default="model", help="model name (file names)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--synth", type=int, default=0, metavar="N", help="synthetic dataset of N images")
    src.add_argument("--flickr27", metavar="ANNOTATIONS", help="Flickr Logos 27 annotation file")
    src.add_argument("--voc", metavar="DIR", help="Pascal VOC folder")
    src.add_argument("--yolo", metavar="DIR", help="YOLO-format folder (images with .txt labels)")
    p.add_argument("--synth-seed", type=int, default=0, help="seed of the synthetic dataset")
    p.add_argument("--images", help="image folder (with --flickr27)")
    p.add_argument("--names", help="fixed class order (names file)")
    _split_options(p)
    _model_options(p)
    p.add_argument("--anchors", default="auto", help="auto (k-means), default, or numbers")
    p.add_argument("--train-head", choices=("yolo", "region"), default="yolo",
                   help="head darknet trains with; yolo (default) learns with every darknet build and is "
                        "converted to the equivalent [region] model; pjreddie's CPU build cannot train region")
    p.add_argument("--base-cfg", help="cfg of --base-weights (default: the generated one)")
    p.add_argument("--base-weights", help="pretrained weights to start from (with --partial)")
    p.add_argument("--partial", type=int, default=0, help="layers of the base weights to keep")
    _darknet_options(p)
    p.add_argument("--fp32", action="store_true", help="export FP32 instead of FP16 (the NCS2 runs FP16)")
    p.add_argument("--resize-mode", choices=("resize", "letterbox"),
                   help="how frames are fitted to the network (default: as the darknet fork trained)")
    p.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    code = run_command(build_parser(), argv)
    if argv is None:  # the program itself (not a caller in this process): end it now
        _exit_without_teardown(code)
    return code


def _exit_without_teardown(code: int) -> None:
    """End the process once the command is done, skipping the interpreter's teardown: freeing
    every object and module and unloading numpy's, OpenCV's and OpenVINO's libraries, 50-80 ms
    after every command (8% of evaluating 200 images) for memory the kernel reclaims anyway
    (mypy ends the same way). Done only when nothing can be lost: every file this package writes
    is written and closed before its command returns, the atexit handlers (logging's flush
    among them) run here, the output is flushed, and no other Python thread is alive. Not
    under a profiler or tracer (`python -m cProfile -m model_tools ...` writes its figures after
    the program returns)."""
    import atexit
    import os
    import threading

    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    if any(t is not threading.main_thread() and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return  # the interpreter waits for them, as usual
    atexit._run_exitfuncs()
    code = 0 if code is None else int(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: 120, as the ordinary exit says it
        code = code or 120
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
