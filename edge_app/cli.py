"""`edge-app`: the device's command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from edge_app.errors import InputError


def read_image(path: str):
    import cv2

    frame = cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError("cannot read image (missing, unreadable or not an image)", path,
                         "give a JPEG or PNG file")
    return frame


def draw(frame, detections):
    import cv2

    out = frame.copy()
    for d in detections:
        p1, p2 = (int(d.x1), int(d.y1)), (int(d.x2), int(d.y2))
        cv2.rectangle(out, p1, p2, (0, 255, 0), 2)
        cv2.putText(out, f"{d.label} {d.confidence:.2f}", (p1[0], max(p1[1] - 4, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
    return out


def cmd_detect(args) -> int:
    from edge_app.atomic import atomic_path
    from edge_app.detector import Detector

    detector = Detector(args.model, args.device, args.conf, args.nms)
    for path in args.images:
        frame = read_image(path)
        detections = detector.detect(frame)
        height, width = frame.shape[:2]
        print(json.dumps({"image": path, "width": width, "height": height,
                          "model_id": detector.info.model_id,
                          "detections": [d.to_dict(width, height) for d in detections]}))
        if args.draw:
            import cv2

            target = Path(args.draw) / (Path(path).stem + ".jpg")
            with atomic_path(target) as tmp:
                if not cv2.imwrite(str(tmp.with_suffix(".jpg")), draw(frame, detections)):
                    raise InputError("cannot write the annotated image", str(target))
                tmp.with_suffix(".jpg").replace(tmp)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("detect", help="run the model on image files, print detections as JSON lines")
    p.add_argument("--model", required=True, help="export folder or its .json metadata")
    p.add_argument("--device", default="CPU", help="OpenVINO device (MYRIAD for the NCS2)")
    p.add_argument("--conf", type=float, help="confidence threshold (default: the model's)")
    p.add_argument("--nms", type=float, help="NMS IoU threshold (default: the model's)")
    p.add_argument("--draw", metavar="DIR", help="also write annotated images into DIR")
    p.add_argument("images", nargs="+")
    p.set_defaults(func=cmd_detect)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"edge-app {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
