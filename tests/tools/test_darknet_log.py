"""The training-log parser on the seeds' real excerpts and on every known line format."""
import math

import pytest

from model_tools import darknet_log
from tests.conftest import REPO

SEEDS = REPO.parent / "shared" / "seeds"


def seed(prefix):
    found = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not found:
        pytest.fail(f"seed {prefix} not found in {SEEDS}: the tests expect ../shared beside the checkout")
    return found[0]


def test_seed_000_alexeyab_excerpt():
    rows = darknet_log.parse_file(seed("000"))
    assert [r.iteration for r in rows][:2] == [1, 2]
    assert rows[0].loss == 27.552214 and rows[0].avg_loss == 27.552214 and rows[0].images == 256
    assert rows[0].region_count == 67 + 98 + 36 + 115 + 35 + 53 + 60 + 42
    assert {11000, 15000, 15300} <= {r.iteration for r in rows}
    last = [r for r in rows if r.iteration == 11000][-1]
    assert last.avg_loss == 0.08573


def test_seed_002_yolov3_with_nan_subdivisions():
    rows = darknet_log.parse_file(seed("002"))
    assert rows[0].iteration == 1631 and rows[0].avg_loss == 28.765835 and rows[0].images == 208768
    assert not math.isnan(rows[0].region_iou)  # -nan lines (count 0) do not poison the mean
    assert 0 < rows[0].region_iou < 1


def feed(lines):
    parser = darknet_log.Parser()
    return [r for r in (parser.feed(l) for l in lines) if r]


def test_alexeyab_title_ansi_and_hours_left():
    rows = feed(["\x1b[H\x1b[J1234/6000: loss=1.2 hours left=0.5\x07",
                 " 1234: 1.234000, 1.500000 avg loss, 0.001000 rate, 2.500000 seconds, 78976 images, 0.512000 hours left"])
    assert len(rows) == 1 and rows[0].iteration == 1234 and rows[0].hours_left == 0.512


def test_alexeyab_old_time_left_and_map_lines():
    rows = feed([" (next mAP calculation at 1000 iterations) ",
                 " mean_average_precision (mAP@0.50) = 0.612300 ",
                 "New best mAP!",
                 " 1000: 2.5, 2.7 avg loss, 0.001 rate, 3.1 seconds, 64000 images, 1.2 time left"])
    assert rows[0].map == 0.6123 and rows[0].hours_left == 1.2


def test_hank_ai_coloured_summary():
    rows = feed(["\x1b[1;32m1500: loss=3.012, avg loss=3.105, last=45.10%, best=47.22%, mAP=45.10%, "
                 "rate=0.002610, load 64=7 milliseconds, train=523 milliseconds, 96000 images, "
                 "time remaining=2 hours\x1b[0m"])
    assert rows[0].iteration == 1500 and rows[0].avg_loss == 3.105 and abs(rows[0].map - 0.451) < 1e-9


def test_yolov3_alexeyab_region_lines_both_eras():
    rows = feed(["v3 (mse loss, Normalizer: (iou: 0.75, cls: 1.00) Region 16 Avg (IOU: 0.500000, GIOU: 0.4), "
                 "Class: 0.9, Obj: 0.4, No Obj: 0.003, .5R: 0.7, .75R: 0.2, count: 8, class_loss = 1, "
                 "iou_loss = 2, total_loss = 3 ",
                 "v3 (iou loss, Normalizer: (iou: 0.07, obj: 1.00, cls: 1.00) Region 23 Avg (IOU: 0.700000), "
                 "count: 2, total_loss = 1.2 ",
                 " 10: 2.5, 2.7 avg, 0.001 rate, 3.1 seconds, 640 images"])
    assert rows[0].region_count == 10 and rows[0].region_iou == 0.5  # the 2nd line has IOU only


def test_unknown_lines_are_ignored_and_nan_loss_kept():
    rows = feed(["Loaded: 0.000 seconds", "Resizing", "608", "garbage: 1, 2, 3",
                 " 5: -nan, -nan avg, 0.001 rate, 1.0 seconds, 80 images"])
    assert len(rows) == 1 and math.isnan(rows[0].loss)


def test_csv_round_trip(tmp_path):
    rows = darknet_log.parse_file(seed("000"))
    darknet_log.write_csv(rows, tmp_path / "m.csv")
    back = darknet_log.read_csv(tmp_path / "m.csv")
    assert [r.iteration for r in back] == [r.iteration for r in rows]
    assert back[0].region_iou == rows[0].region_iou
