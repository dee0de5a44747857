"""`edge-app`: the device's command line."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import List, Optional

from edge_app.errors import InputError, run_command


def read_image(path: str):
    """A BGR frame from an image file; InputError saying why not (decoded from bytes, so any
    file name works, whatever its encoding)."""
    import cv2
    import numpy as np

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image: {exc.strerror or exc}", path, "give a JPEG or PNG file") from None
    try:
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:  # the decoder refusing the bytes (e.g. dimensions beyond its limit)
        frame = None
    if frame is None:
        raise InputError("cannot read image: not an image (empty, truncated, too large or another format)", path,
                         "give a JPEG or PNG file")
    return frame


def check_threshold(value, flag: str) -> None:
    if value is not None and not (math.isfinite(value) and 0 < value < 1):
        raise InputError(f"{value} is not a threshold between 0 and 1 (exclusive)", flag, f"e.g. {flag} 0.25")


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
    from edge_app.atomic import NAME_MAX, atomic_path, check_output_folder
    from edge_app.detector import Detector

    check_threshold(args.conf, "--conf")
    check_threshold(args.nms, "--nms")
    if args.draw:
        check_output_folder(args.draw)
        for path in args.images:
            name = Path(path).stem + ".jpg"
            if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX - 20:
                raise InputError(f"the annotated image's name would be {len(name.encode('utf-8', 'surrogateescape'))}"
                                 " bytes long, too long for a file name", path, "rename the image")
    detector = Detector(args.model, args.device, args.conf, args.nms)
    for path in args.images:  # every image is checked before anything is printed or written
        read_image(path)
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


def config_from_args(args):
    from edge_app import config as cfg

    overrides = cfg.parse_overrides(args.set or [])
    for flag, key in (("model", "model.path"), ("source", "source.uri"), ("device", "model.device")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    return cfg.load(args.config, overrides)


def readable(frame, detections, show: int = 5) -> str:
    """One line per frame: the best `show` detections, then how many more."""
    found = "  ".join(f"{d.label} {d.confidence:.2f} [{d.x1:.0f},{d.y1:.0f} {d.x2:.0f},{d.y2:.0f}]"
                      for d in detections[:show])
    if len(detections) > show:
        found += f"  (+{len(detections) - show} more)"
    return f"frame {frame.index:6d}  {len(detections)} detection{'s' if len(detections) != 1 else ''}" \
        + (f"  {found}" if found else "")


def describe_event(message) -> str:
    """One readable line per event message."""
    a = message["after"]
    x1, y1, x2, y2 = a["box"]["pixels"]
    text = f"event {message['type']:6s} {a['label']} #{a['id']}"
    if message["type"] == "end":
        return text + (f"  seen frames {a['first_frame']}-{a['last_frame']} ({a['frames_seen']} frames), "
                       f"top score {a['top_score']:.2f}, {a['end_time'] - a['start_time']:.1f} s")
    return text + f"  frame {a['last_frame']}  score {a['score']:.2f} (top {a['top_score']:.2f})  [{x1},{y1} {x2},{y2}]"


def jsonl_writer(path: str):
    """Every processed frame's detections message (the MQTT payload), one per line, to a file."""
    out = open(path, "w", buffering=1)
    return lambda message: out.write(message.json + "\n")


def cmd_run(args) -> int:
    from edge_app.daemon import Daemon
    from edge_app.notify import setup_logging

    config = config_from_args(args)
    setup_logging(config.service.log_level)
    sinks, writers = [], []
    if args.jsonl:
        writers.append(jsonl_writer(args.jsonl))
    if args.print:
        sinks.append(lambda frame, detections, infer_ms, latency_ms:
                     print(readable(frame, detections), flush=True))
    listeners = []
    if args.events:
        events_out = open(args.events, "w", buffering=1)
        listeners.append(lambda message: events_out.write(json.dumps(message) + "\n"))
    if args.print:
        listeners.append(lambda message: print(describe_event(message), flush=True))
    started = time.monotonic()
    while True:  # more than once only when SIGHUP reloads the configuration
        daemon = Daemon(config, sinks, event_listeners=listeners, detection_writers=writers)
        daemon.reload = lambda: config_from_args(args)
        code = daemon.run()
        if daemon.next_config is None:
            break
        config = daemon.next_config
        setup_logging(config.service.log_level)
    if args.print and daemon.objects is not None:
        print(f"events: {daemon.objects.events_sent} ({daemon.objects.snapshots_sent} snapshots published)"
              + (f"; best frames saved in {config.snapshots.folder}" if config.snapshots.folder else ""))
    if args.print and daemon.output is not None:
        elapsed = time.monotonic() - started
        frames = daemon.output.processed
        print(f"summary: {frames} frames in {elapsed:.1f} s ({frames / max(elapsed, 1e-9):.1f} fps), "
              f"{daemon.capture.mailbox.dropped} dropped; detections per class: "
              + (", ".join(f"{k} {v}" for k, v in sorted(daemon.per_class.items())) or "none"))
    return code


def cmd_check(args) -> int:
    """Validate config, model, device, camera and broker; print a readiness report."""
    from edge_app.capture import check_source
    from edge_app.daemon import load_detector
    from edge_app.mqtt import check_broker

    config = config_from_args(args)
    print(f"config {config.path}: ok")
    for section, values in config.describe().items():
        print(f"  [{section}] " + ", ".join(f"{k}={v!r}" for k, v in values.items()))
    from edge_app.runtime_report import openvino_report

    for line in openvino_report().lines():
        print(f"runtime: {line}")
    from edge_app import native

    print(f"darknet resize: {'compiled' if native.library() else 'numpy fallback, slower'}: {native.status()}")
    failures = 0
    checks = [("model", lambda: _model_report(load_detector(config), config)),
              ("source", lambda: check_source(config.source))]
    if config.mqtt.enabled:
        checks.append(("broker", lambda: check_broker(config)))
    for name, check in checks:
        try:
            print(f"{name}: ok: {check()}")
        except InputError as exc:
            failures += 1
            print(f"{name}: FAILED: {exc}")
    print("ready" if not failures else f"NOT READY: {failures} check(s) failed")
    return 0 if not failures else 1


def _model_report(detector, config) -> str:
    from edge_app.daemon import check_classes

    info = detector.info
    check_classes(config.detect.classes, info.labels)
    return (f"{info.model_id} ({info.precision}, {info.width}x{info.height}, {info.classes} classes) "
            f"on {detector.adapter.describe()}")


def cmd_compile_blob(args) -> int:
    from edge_app import metadata
    from edge_app.runtime import OpenVINOAdapter

    started = time.monotonic()
    path = OpenVINOAdapter(metadata.load(args.model), args.device).export_blob()
    print(f"compiled for {args.device} in {time.monotonic() - started:.1f} s: {path}")
    return 0


def cmd_watch(args) -> int:
    """Subscribe and print events, counts, snapshots and detections readably (and stats with --all)."""
    import paho.mqtt.client as mqtt

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            print(f"broker refused the connection: {reason_code}", file=sys.stderr)
            return
        client.subscribe(f"{args.prefix}/{args.device}/#", qos=1)

    def on_message(client, userdata, msg):
        leaf = msg.topic.rsplit("/", 1)[-1]
        device = msg.topic.split("/")[-2]
        if leaf == "snapshot":
            text = ""
        else:
            text = msg.payload.decode("utf-8", "replace")
        if leaf == "available":
            print(f"{device}: {text}", flush=True)
        elif leaf == "events":
            data = json.loads(text)
            print(f"{data['device_id']} {describe_event(data)}", flush=True)
        elif leaf == "counts":
            data = json.loads(text)
            seen = ", ".join(f"{k} {v}" for k, v in data["counts"].items() if v) or "nothing"
            print(f"{data['device_id']} in view: {seen}", flush=True)
        elif leaf == "snapshot":
            label = msg.topic.split("/")[-2]
            print(f"{msg.topic.split('/')[-3]} snapshot of {label}: {len(msg.payload)} bytes JPEG", flush=True)
        elif args.events_only:
            return
        elif leaf == "detections":
            data = json.loads(text)
            found = "  ".join(f"{d['label']} {d['confidence']:.2f} "
                              f"[{d['topleft']['x']},{d['topleft']['y']} "
                              f"{d['bottomright']['x']},{d['bottomright']['y']}]"
                              for d in data["detections"])
            print(f"{device} frame {data['frame_id']}: {found or '-'}", flush=True)
        elif args.all:
            print(f"{device} {leaf}: {text}", flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(args.host, args.port)
    except OSError as exc:
        raise InputError(f"broker unreachable: {exc}", f"{args.host}:{args.port}",
                         "start the broker or give --host/--port") from None
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        pass
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

    for name, func, text in (("run", cmd_run, "run the daemon: capture → inference → MQTT"),
                             ("check", cmd_check, "validate config, model, device, source and broker")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", help="TOML config file (see systemd/edge-app.toml)")
        p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override one config value (repeatable)")
        p.add_argument("--model", help="= --set model.path=...")
        p.add_argument("--source", help="= --set source.uri=...")
        p.add_argument("--device", help="= --set model.device=...")
        if name == "run":
            p.add_argument("--print", action="store_true",
                           help="print detections as they happen and a summary at the end")
            p.add_argument("--jsonl", metavar="FILE", help="also write every frame's detections message to FILE")
            p.add_argument("--events", metavar="FILE", help="also write every event message to FILE (JSON lines)")
        p.set_defaults(func=func)

    p = sub.add_parser("compile-blob", help="precompile the model for a device (faster start-up); "
                                            "edge-app picks the blob up by itself")
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="MYRIAD")
    p.set_defaults(func=cmd_compile_blob)

    p = sub.add_parser("watch", help="subscribe and print detections readably")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--prefix", default="edge-vision")
    p.add_argument("--device", default="+", help="device id (default: all)")
    p.add_argument("--all", action="store_true", help="also print stats")
    p.add_argument("--events-only", action="store_true",
                   help="events, counts and snapshots only (no per-frame detections)")
    p.set_defaults(func=cmd_watch)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
