"""Training logs written with the exact print formats of each darknet fork (the printf/ostream
calls of pjreddie 2018, AlexeyAB today, hank-ai today), for the parser's tests and benchmark.

Each writer returns the log text of `iterations` iterations and the values it printed, so a test
can compare what the parser reads with what was written.
"""
from __future__ import annotations

import random
from typing import Dict, List, Tuple

FORKS = ("pjreddie-v2", "pjreddie-v3", "alexeyab-v2", "alexeyab-v3", "hank-ai-v3")
ESC = "\x1b"


def _colour(text: str, code: str = "1;36") -> str:
    return f"{ESC}[{code}m{text}{ESC}[0m"


def _g(value: float, precision: int = 6) -> str:
    """iostream's default float output at a precision (C's %g)."""
    return f"{value:.{precision}g}"


def write(fork: str, iterations: int, subdivisions: int = 16, yolo_layers: Tuple[int, ...] = (16, 23),
          map_every: int = 0, seed: int = 0) -> Tuple[str, List[Dict]]:
    rnd = random.Random(seed)
    out: List[str] = []
    truth: List[Dict] = []
    loss_avg = -1.0
    last_map = best_map = -1.0
    for it in range(1, iterations + 1):
        loss = rnd.uniform(0.5, 40.0)
        loss_avg = loss if loss_avg < 0 else loss_avg * 0.9 + loss * 0.1
        iou_sum = count_sum = 0.0
        if fork in ("alexeyab-v2", "alexeyab-v3", "pjreddie-v2", "pjreddie-v3"):
            out.append("Loaded: %f seconds\n" % rnd.uniform(0, 0.01))
        for _ in range(subdivisions):
            for layer in (yolo_layers if fork.endswith("v3") else (0,)):
                count = rnd.randint(0, 12)
                iou = rnd.random()
                if count:
                    iou_sum += iou * count
                    count_sum += count
                r = [rnd.random() for _ in range(5)]
                if fork.endswith("v2"):
                    out.append("Region Avg IOU: %f, Class: %f, Obj: %f, No Obj: %f, Avg Recall: %f,  count: %d\n"
                               % (iou, r[0], r[1], r[2], r[3], count) if count else
                               "Region Avg IOU: -nan, Class: -nan, Obj: -nan, No Obj: %f, Avg Recall: -nan,  "
                               "count: 0\n" % r[2])
                elif fork == "pjreddie-v3":
                    out.append("Region %d Avg IOU: %f, Class: %f, Obj: %f, No Obj: %f, .5R: %f, .75R: %f,  count: %d\n"
                               % (layer, iou, r[0], r[1], r[2], r[3], r[4], count) if count else
                               "Region %d Avg IOU: -nan, Class: -nan, Obj: -nan, No Obj: %f, .5R: -nan, .75R: -nan,  "
                               "count: 0\n" % (layer, r[2]))
                elif fork == "alexeyab-v3":
                    # AlexeyAB replaces count 0 by 1 before printing, with IoU 0
                    out.append("v3 (%s loss, Normalizer: (iou: %.2f, obj: %.2f, cls: %.2f) Region %d Avg (IOU: %f), "
                               "count: %d, class_loss = %f, iou_loss = %f, total_loss = %f \n"
                               % ("ciou", 0.07, 1.0, 1.0, layer, iou if count else 0.0, max(count, 1),
                                  r[0] * 10, r[1] * 10, r[2] * 20))
                    if not count:
                        count_sum += 1
                else:  # hank-ai, verbose
                    out.append(f"v3 ciou loss, Normalizer: (iou: {_g(0.07, 2)}, obj: {_g(1.0, 2)}, cls: {_g(1.0, 2)}) "
                               f"Region {layer} Avg (IOU: {_g(iou if count else 0.0)}), count: {max(count, 1)}, "
                               f"class_loss: {_g(r[0] * 10)}, iou_loss: {_g(r[1] * 10)}, total_loss: {_g(r[2] * 20)}\n")
                    if not count:
                        count_sum += 1
        rate = 0.001 * min(1.0, (it / 1000) ** 4)
        images = it * 64
        row = {"iteration": it, "loss": loss, "avg_loss": loss_avg, "rate": rate, "images": images,
               "region_iou": iou_sum / count_sum if count_sum else float("nan"), "region_count": count_sum,
               "map": float("nan")}
        if fork.startswith("pjreddie"):
            out.append("%d: %f, %f avg, %f rate, %f seconds, %d images\n" % (it, loss, loss_avg, rate, 1.5, images))
        elif fork.startswith("alexeyab"):
            if map_every:
                out.append("\n (next mAP calculation at %d iterations) " % ((it // map_every + 1) * map_every))
                if last_map > 0:
                    out.append("\n Last accuracy mAP@%0.2f = %2.2f %%, best = %2.2f %% "
                               % (0.5, last_map * 100, best_map * 100))
            out.append("\x1b[H\x1b[J")
            out.append("%d/%d: loss=%0.1f hours left=%0.1f\x07" % (it, iterations, loss, 1.25))
            out.append("\n %d: %f, %f avg loss, %f rate, %f seconds, %d images, %f hours left\n"
                       % (it, loss, loss_avg, rate, 1.5, images, 1.25))
        else:
            out.append(f"{ESC}]2;{it}/{iterations}: loss={_g(loss, 1)} time=2 hours\x07")
            out.append(f"{_colour(str(it), '1;37')}: loss={_colour('%.3f' % loss)}, avg loss={_colour('%.3f' % loss_avg)}"
                       f", last={_colour('%.2f%%' % (last_map * 100)) if last_map > 0 else _colour('none', '0')}"
                       f", best={_colour('%.2f%%' % (best_map * 100)) if best_map > 0 else _colour('none', '0')}"
                       f", mAP={(it // map_every + 1) * map_every if map_every else _colour('DISABLED', '1;31')}"
                       f", rate={_g(rate, 8)}, load 64=7.0 milliseconds, train=523.4 milliseconds"
                       f", {images} images, time remaining=2 hours\n")
        if map_every and it % map_every == 0 and not fork.startswith("pjreddie"):
            last_map = rnd.random()
            best_map = max(best_map, last_map)
            row["map"] = last_map
            if fork.startswith("alexeyab"):
                out.append("\n calculation mAP (mean average precision)...\n Detection layer: 16 - type = 28 \n")
                out.append("class_id = 0, name = person, ap = %2.2f%%   \t (TP = 3, FP = 1) \n" % (last_map * 100))
                out.append("\n mean average precision (mAP@%0.2f) = %f, or %2.2f %% \n" % (0.5, last_map, last_map * 100))
                out.append("\n mean_average_precision (mAP@%0.2f) = %f \n" % (0.5, last_map))
                if last_map >= best_map:
                    out.append("New best mAP!\n")
            else:
                out.append("-> mean average precision (mAP@0.5)=" + _colour("%.2f%%" % (last_map * 100), "1;34") + "\n")
        truth.append(row)
    return "".join(out), truth
