"""`model-tools`: the training box's command line. Thin: each sub-command calls one function."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from edge_app.errors import InputError


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
        loaded = weights.read(args.weights, net)
        h = loaded.header
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

    net = cfg.load(args.cfg)
    loaded = weights.read(args.weights, net)
    names = export.read_names(args.names, net.region.classes)
    data = export.export(net, loaded, names, args.output, fp16=not args.fp32,
                         resize_mode=args.resize_mode, cfg_path=args.cfg,
                         weights_path=args.weights, conf_threshold=args.conf,
                         nms_threshold=args.nms)
    print(f"exported {data['model_id']} ({data['ir']['precision']}, {data['resize_mode']}) to "
          f"{args.output}/{data['ir']['xml']} in {data['export_seconds']:.2f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="validate a cfg (and weights) and print the layer plan")
    p.add_argument("cfg")
    p.add_argument("weights", nargs="?")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("partial", help="first N layers of a weights file (as `darknet partial`)")
    p.add_argument("cfg")
    p.add_argument("weights")
    p.add_argument("out")
    p.add_argument("n", type=int)
    p.set_defaults(func=cmd_partial)

    p = sub.add_parser("random-weights", help="well-scaled random weights for a cfg (tests, demos)")
    p.add_argument("cfg")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_random_weights)

    p = sub.add_parser("export", help="darknet cfg + weights -> OpenVINO IR + model metadata")
    p.add_argument("--cfg", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--names", required=True)
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--fp32", action="store_true", help="keep FP32 weights (default FP16, as the NCS2 computes)")
    p.add_argument("--resize-mode", choices=("resize", "letterbox"),
                   help="default: letterbox if the cfg says letter_box=1, else plain resize")
    p.add_argument("--conf", type=float, default=0.25, help="default confidence threshold")
    p.add_argument("--nms", type=float, default=0.45, help="default NMS IoU threshold")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"model-tools {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
