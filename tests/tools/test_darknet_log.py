"""The training-log parser on the seeds' real excerpts, on logs written with each fork's exact print
formats (tests/tools/log_formats.py), and on hostile input (linearity, binary files, huge numbers)."""
import math
import subprocess
import sys

import pytest

from model_tools import darknet_log, log_grammar
from tests.conftest import REPO
from tests.tools import log_formats

SEEDS = REPO.parent / "shared" / "seeds"

try:  # Python 3.11+
    import re._parser as sre_parse
except ImportError:  # Python 3.9/3.10
    import sre_parse


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


@pytest.mark.parametrize("fork", log_formats.FORKS)
@pytest.mark.parametrize("line_by_line", [False, True], ids=["file", "live"])
def test_every_fork_format_read_back_exactly(fork, line_by_line, tmp_path):
    text, truth = log_formats.write(fork, 25, subdivisions=4, map_every=10, seed=3)
    if line_by_line:
        parser, rows = darknet_log.Parser(), []
        for line in text.splitlines(keepends=True):
            row = parser.feed(line)
            rows += [row] if row else []
    else:
        (tmp_path / "train.log").write_text(text)
        rows = darknet_log.parse_file(tmp_path / "train.log")
    loss_digits = 1e-3 if fork.startswith("hank") else 1e-6  # hank-ai prints the loss with 3 decimals
    assert [r.iteration for r in rows] == [t["iteration"] for t in truth]
    for row, want in zip(rows, truth):
        assert row.avg_loss == pytest.approx(want["avg_loss"], abs=loss_digits)
        assert row.images == want["images"]
        assert row.region_count == want["region_count"]
        assert row.region_iou == pytest.approx(want["region_iou"], abs=1e-5)  # today's AlexeyAB line keeps its IoU
        if math.isnan(want["map"]):
            assert math.isnan(row.map), f"iteration {row.iteration} got a mAP that belongs elsewhere"
        else:  # printed after the summary line, attached to that iteration; the last one too
            assert row.map == pytest.approx(want["map"], abs=1e-4)
    if not fork.startswith("pjreddie"):
        assert [r.iteration for r in rows if not math.isnan(r.map)] == [10, 20]


def feed(lines):
    parser = darknet_log.Parser()
    return [r for r in (parser.feed(l) for l in lines) if r]


def test_alexeyab_map_line_sets_the_iteration_printed_before_it():
    parser = darknet_log.Parser()
    row = parser.feed(" 1000: 2.5, 2.7 avg loss, 0.001 rate, 3.1 seconds, 64000 images, 1.2 time left\n")
    assert row.iteration == 1000 and row.hours_left == 1.2 and math.isnan(row.map)
    assert parser.feed(" mean_average_precision (mAP@0.50) = 0.612300 \n") is None
    assert row.map == 0.6123  # the row the caller already holds is completed
    nxt = parser.feed(" 1001: 2.5, 2.7 avg loss, 0.001 rate, 3.1 seconds, 64064 images, 1.2 hours left\n")
    assert math.isnan(nxt.map)


def test_hank_ai_summary_mAP_field_is_the_next_calculation_not_a_value():
    rows = feed(["\x1b]2;1500/6000: loss=3 time=2 hours\x07\x1b[1;37m1500\x1b[0m: loss=\x1b[1;36m3.012\x1b[0m, "
                 "avg loss=\x1b[1;36m3.105\x1b[0m, last=\x1b[0;34m45.10%\x1b[0m, best=\x1b[1;34m47.22%\x1b[0m, "
                 "mAP=2000, rate=0.00261, load 64=7.0 milliseconds, train=523.4 milliseconds, 96000 images, "
                 "time remaining=2 hours\n",
                 "-> mean average precision (mAP@0.5)=\x1b[1;34m51.20%\x1b[0m\n"])
    assert rows[0].iteration == 1500 and rows[0].avg_loss == 3.105 and rows[0].rate == 0.00261
    assert rows[0].map == pytest.approx(0.512)


def test_unknown_lines_are_ignored_and_nan_loss_kept():
    rows = feed(["Loaded: 0.000 seconds", "Resizing", "608", "garbage: 1, 2, 3",
                 " 5: -nan, -nan avg, 0.001 rate, 1.0 seconds, 80 images"])
    assert len(rows) == 1 and math.isnan(rows[0].loss)


def test_missing_label_files_are_counted():
    parser = darknet_log.Parser()
    parser.feed("Can't open label file. (This can be normal only if you use MSCOCO): data/img/a.txt \n")
    assert parser.missing_labels == 1


def test_csv_round_trip(tmp_path):
    rows = darknet_log.parse_file(seed("000"))
    darknet_log.write_csv(rows, tmp_path / "m.csv")
    back = darknet_log.read_csv(tmp_path / "m.csv")
    assert [r.iteration for r in back] == [r.iteration for r in rows]
    assert back[0].region_iou == rows[0].region_iou
    assert ",," in (tmp_path / "m.csv").read_text()  # NaN (not measured) is an empty cell


# --- hostile input -------------------------------------------------------------------------------

def test_every_template_has_a_bounded_width_and_a_literal_where_it_is_searched():
    """The structural guarantee of linear time: a template is tried once at a line start, or
    (matched anywhere) once where its first literal occurs, and one attempt reads at most
    MAX_MATCH_CHARS bytes, whatever the line."""
    for template in darknet_log.TEMPLATES:
        parsed = sre_parse.parse(template.regex.pattern.decode("latin-1"))
        assert parsed.getwidth()[1] <= darknet_log.MAX_MATCH_CHARS, template
        assert log_grammar.max_width(template.parts) <= darknet_log.MAX_MATCH_CHARS, template
        if template.anywhere:
            assert str(parsed[0][0]) == "LITERAL", template


@pytest.mark.parametrize("line", [
    " avg" * 250_000,                                     # a summary hint on every 4th byte
    "\x1b[" * 500_000,                                     # the ANSI case that took 45 s
    "1500: loss=1, avg loss=1" + ", x=1" * 200_000,        # the hank-ai case that took 20 s
    "Region Avg IOU: " * 60_000,
    "mean average precision (mAP@0.5)=" * 30_000,
    "9" * 1_000_000,
])
def test_pathological_lines_parse_to_nothing_and_leave_later_lines_intact(line, tmp_path):
    good = " 7: 1.0, 2.0 avg, 0.001 rate, 1.0 seconds, 64 images\n"
    (tmp_path / "train.log").write_text(good + line + "\n" + good.replace(" 7:", " 8:"))
    result = darknet_log.read_log(tmp_path / "train.log")
    assert [r.iteration for r in result.rows] == [7, 8]
    assert result.long_lines == (1 if len(line) > darknet_log.LINE_CAP else 0)


def test_lines_longer_than_the_cap_are_cut_at_block_ends_and_reported(monkeypatch):
    import io

    monkeypatch.setattr(darknet_log, "LINE_CAP", 100)
    parser = darknet_log.Parser()
    stream = io.BytesIO(b" 2: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n" + b"x" * 1000
                        + b"\n 3: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n" + b"y" * 300 + b"\n")
    sizes, rows = [], []
    for block in darknet_log.blocks(stream, parser, "log", block_bytes=64):
        sizes.append(len(block))
        rows += parser.feed_block(block)
    assert max(sizes) <= 64 + 100 + 1  # memory bounded by block + cap
    assert [r.iteration for r in rows] == [2, 3] and parser.long_lines == 2


def test_numbers_with_thousands_of_digits_do_not_match(tmp_path):
    (tmp_path / "train.log").write_text(
        "9" * 5000 + ": 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n"
        " 4: 1" + "0" * 5000 + ", 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n"
        " 5: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n")
    assert [r.iteration for r in darknet_log.parse_file(tmp_path / "train.log")] == [5]


def test_non_utf8_bytes_are_harmless(tmp_path):
    (tmp_path / "train.log").write_bytes(b"\xff\xfe caf\xe9 \x80\n 5: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n")
    assert [r.iteration for r in darknet_log.parse_file(tmp_path / "train.log")] == [5]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "model_tools", *map(str, args)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_cli_jpeg_as_log_is_a_clear_error(tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "photo.jpg"), np.zeros((8, 8, 3), np.uint8))
    done = run_cli("parse-log", tmp_path / "photo.jpg", tmp_path / "m.csv")
    assert done.returncode == 2 and "JPEG" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "m.csv").exists()


def test_cli_log_without_iterations_is_an_error(tmp_path):
    (tmp_path / "train.log").write_text("Loaded: 0.1 seconds\nCouldn't open file: data/train.txt\n")
    done = run_cli("parse-log", tmp_path / "train.log", tmp_path / "m.csv")
    assert done.returncode == 2 and "no darknet iteration summary" in done.stderr
    assert not (tmp_path / "m.csv").exists()


def test_cli_reports_bytes_and_rows(tmp_path):
    text, _ = log_formats.write("alexeyab-v3", 12, subdivisions=2)
    (tmp_path / "train.log").write_text(text)
    done = run_cli("parse-log", tmp_path / "train.log", tmp_path / "m.csv")
    assert done.returncode == 0, done.stderr
    assert "12 iterations" in done.stdout
    assert len(darknet_log.read_csv(tmp_path / "m.csv")) == 12
